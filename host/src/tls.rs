//! TLS termination (`--tls-cert`, `--tls-key`): rustls through tokio-rustls,
//! with the ring provider.
//!
//! The certificate chain and key are read at start (an unreadable,
//! malformed or mismatched pair is an error then) and again on
//! [`Tls::reload`]; a reload swaps the acceptor for new handshakes only, so
//! open connections keep the session they have. A pair that fails to load
//! on reload leaves the previous one serving.
//!
//! Cipher suites: when the client's favourite suite is an AES-GCM one, the
//! server picks `TLS_AES_128_GCM_SHA256` (and its TLS 1.2 counterparts)
//! whatever the client listed first; a client that puts ChaCha20-Poly1305
//! first keeps its choice. OpenSSL, Node and rustls clients list
//! AES-256-GCM-SHA384 first, and its SHA-384 key schedule costs the server
//! more per handshake than SHA-256 (which has CPU instructions) for no
//! security a 128-bit key lacks; a ChaCha20-first client says it has no
//! AES instructions. The policy is Go's crypto/tls.
//!
//! The pump reads and writes without waiting ([`crate::conn::Socket`]); for
//! a TLS stream that is a poll with a no-op waker, and readiness is
//! "rustls holds plaintext or the socket is readable".

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, anyhow};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ClientHello;
use rustls::{CipherSuite, ServerConfig, SupportedCipherSuite};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::conn::{Socket, poll_now};

/// The server's certificate and key files and the configurations made from
/// them.
pub(crate) struct Tls {
    cert: PathBuf,
    key: PathBuf,
    configs: RwLock<Arc<Configs>>,
}

/// The two configurations a handshake chooses between, sharing one
/// certificate: see the module's docs for which one a client gets.
pub(crate) struct Configs {
    /// The server's order: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.
    aes128_first: Arc<ServerConfig>,
    /// rustls' default: the client's order.
    client_order: Arc<ServerConfig>,
}

impl Configs {
    /// The configuration for a client that offered `hello`.
    pub(crate) fn for_client(&self, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        let favourite = hello.cipher_suites().iter().find_map(|offered| {
            self.client_order
                .crypto_provider()
                .cipher_suites
                .iter()
                .find(|ours| ours.suite() == *offered)
        });
        match favourite.map(rank) {
            Some(Rank::ChaCha20) => self.client_order.clone(),
            _ => self.aes128_first.clone(),
        }
    }
}

/// The bulk ciphers the server tells apart, in its order of preference.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Rank {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20,
    Other,
}

/// Which bulk cipher `suite` uses.
fn rank(suite: &SupportedCipherSuite) -> Rank {
    match suite.suite() {
        CipherSuite::TLS13_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Rank::Aes128Gcm,
        CipherSuite::TLS13_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Rank::Aes256Gcm,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Rank::ChaCha20,
        _ => Rank::Other,
    }
}

impl Tls {
    /// Reads the PEM certificate chain at `cert` and the PEM private key at
    /// `key`; fails with the reason when either is missing, unreadable or
    /// malformed, or when they do not belong together.
    pub(crate) fn load(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            configs: RwLock::new(Arc::new(configs(cert, key)?)),
        })
    }

    /// Reads the files again; new handshakes use the new pair. On error the
    /// previous pair keeps serving.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let configs = configs(&self.cert, &self.key)?;
        *self.configs.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(configs);
        Ok(())
    }

    /// The configurations for the next handshake.
    pub(crate) fn configs(&self) -> Arc<Configs> {
        self.configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The configurations for the pair of files, read once: both present the
/// same certificate with the same key. ALPN offers only `http/1.1`: a
/// WebSocket upgrade is an HTTP/1.1 request.
fn configs(cert: &Path, key: &Path) -> anyhow::Result<Configs> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("reading the certificate chain {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("reading the private key {}: {e}", key.display()))?;
    let mut client_order = builder(rustls::crypto::ring::default_provider())?
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    client_order.alpn_protocols = vec![b"http/1.1".to_vec()];

    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(rank);
    let mut aes128_first =
        builder(provider)?.with_cert_resolver(client_order.cert_resolver.clone());
    aes128_first.alpn_protocols = client_order.alpn_protocols.clone();
    // One session cache for both, bounded once. (rustls resumes a session
    // with the suite it was made with only, so a client resumes through the
    // configuration its hello chose the first time.)
    aes128_first.session_storage = client_order.session_storage.clone();
    aes128_first.ignore_client_order = true;
    Ok(Configs {
        aes128_first: Arc::new(aes128_first),
        client_order: Arc::new(client_order),
    })
}

/// A configuration builder with `provider`, rustls' safe default protocol
/// versions and no client certificates, waiting for the server's.
fn builder(
    provider: rustls::crypto::CryptoProvider,
) -> anyhow::Result<rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>> {
    Ok(ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .with_no_client_auth())
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
