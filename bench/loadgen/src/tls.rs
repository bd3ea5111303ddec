//! The TLS client of the `tls-handshake` and `tls-echo64` scenarios:
//! rustls through tokio-rustls with the ring provider (the host's stack),
//! trusting only the CA certificate given with `--ca`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A client configuration that trusts the PEM certificates in `ca` and
/// nothing else. Session resumption is off, so every connection makes a
/// full handshake (key exchange and the server's certificate signature);
/// ALPN offers `http/1.1`, as browsers do for a WebSocket.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .map_err(|e| anyhow!("reading the CA certificate {}: {e}", ca.display()))?
    {
        let cert = cert.map_err(|e| anyhow!("reading {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("a CA certificate in {}", ca.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!("no certificate in {}", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The host of a `wss://HOST:PORT/...` URL, as the server name to verify.
pub fn server_name(url: &str) -> Result<ServerName<'static>> {
    let rest = url
        .strip_prefix("wss://")
        .context("a TLS scenario needs a wss:// URL")?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => hostport.rsplit_once(':').map_or(hostport, |(h, _)| h),
    };
    ServerName::try_from(host.to_owned()).with_context(|| format!("bad server name {host:?}"))
}

/// The TLS handshake over `tcp`.
pub async fn handshake(
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>> {
    TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .context("TLS handshake")
}

/// What one handshake with the server negotiated, for the log: protocol
/// version, cipher suite, key exchange group.
pub async fn describe(config: &Arc<ClientConfig>, url: &str) -> Result<String> {
    let name = server_name(url)?;
    let hostport = url
        .strip_prefix("wss://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_default();
    let tls = handshake(config, name, TcpStream::connect(hostport).await?).await?;
    let (_, session) = tls.get_ref();
    let show = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    Ok(format!(
        "{}, {}, {}",
        show(session.protocol_version().map(|v| format!("{v:?}"))),
        show(
            session
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
        ),
        show(
            session
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_urls() {
        assert_eq!(
            server_name("wss://127.0.0.1:8443/").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("wss://localhost:1/x").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(
            server_name("wss://[::1]:443/").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert!(server_name("ws://127.0.0.1:1/").is_err());
    }
}
