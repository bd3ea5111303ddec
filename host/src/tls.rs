//! TLS termination (`--tls-cert`, `--tls-key`): rustls through tokio-rustls,
//! with the ring provider.
//!
//! The certificate chain and key are read at start (an unreadable,
//! malformed or mismatched pair is an error then) and again on
//! [`Tls::reload`]; a reload swaps the acceptor for new handshakes only, so
//! open connections keep the session they have. A pair that fails to load
//! on reload leaves the previous one serving.
//!
//! The pump reads and writes without waiting ([`crate::conn::Socket`]); for
//! a TLS stream that is a poll with a no-op waker, and readiness is
//! "rustls holds plaintext or the socket is readable".

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, anyhow};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::conn::{Socket, poll_now};

/// The server's certificate and key files and the acceptor made from them.
pub(crate) struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

impl Tls {
    /// Reads the PEM certificate chain at `cert` and the PEM private key at
    /// `key`; fails with the reason when either is missing, unreadable or
    /// malformed, or when they do not belong together.
    pub(crate) fn load(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let config = server_config(cert, key)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            acceptor: RwLock::new(TlsAcceptor::from(Arc::new(config))),
        })
    }

    /// Reads the files again; new handshakes use the new pair. On error the
    /// previous pair keeps serving.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.cert, &self.key)?;
        *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) =
            TlsAcceptor::from(Arc::new(config));
        Ok(())
    }

    /// The acceptor for the next handshake.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A rustls server configuration for the pair of files. ALPN offers only
/// `http/1.1`: a WebSocket upgrade is an HTTP/1.1 request.
fn server_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("reading the certificate chain {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("reading the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Socket for TlsStream<TcpStream> {
    const TLS: bool = true;

    async fn readable(&mut self) -> io::Result<()> {
        let (tcp, session) = self.get_mut();
        // Records read earlier may hold plaintext the last read did not
        // take, or the peer's close_notify: `try_read` takes those now.
        // Otherwise wait for the socket. An invalid record is an error here:
        // rustls keeps the error, so reporting it later would make the
        // pump spin.
        match session.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {
                tcp.readable().await
            }
            Ok(_) => Ok(()),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        poll_now(|cx| Pin::new(&mut *self).poll_read(cx, &mut buf))?;
        Ok(buf.filled().len())
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        poll_now(|cx| Pin::new(&mut *self).poll_write(cx, buf))
    }

    fn has_pending_output(&self) -> bool {
        self.get_ref().1.wants_write()
    }
}
