//! Echo server built on tokio-tungstenite, used as the reference peer in the
//! ws-edge benchmarks and as a known-good target for `scripts/autobahn.sh`.
//!
//! `peer-tokio-tungstenite [--listen ADDR] [--tls-cert FILE --tls-key FILE]`
//! (default `127.0.0.1:0`) prints `listening on ws://ADDR` (`wss://` with
//! TLS) once bound, then echoes every text and binary message. Pings are
//! answered and close frames replied to by tungstenite.
//!
//! With `--tls-cert` (a PEM certificate chain) and `--tls-key` (its PEM
//! private key) it terminates TLS with tokio-rustls and the ring provider,
//! configured as `ws-edge serve --tls-cert/--tls-key` is (host/src/tls.rs):
//! rustls' safe default protocol versions, no client authentication, ALPN
//! `http/1.1`, rustls' other defaults.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

struct Args {
    listen: String,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

const USAGE: &str = "usage: peer-tokio-tungstenite [--listen ADDR] [--tls-cert FILE --tls-key FILE]  (default 127.0.0.1:0)";

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        listen: String::from("127.0.0.1:0"),
        tls_cert: None,
        tls_key: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => parsed.listen = args.next().context("--listen needs an address")?,
            "--tls-cert" => {
                parsed.tls_cert = Some(args.next().context("--tls-cert needs a file")?.into())
            }
            "--tls-key" => {
                parsed.tls_key = Some(args.next().context("--tls-key needs a file")?.into())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if parsed.tls_cert.is_some() != parsed.tls_key.is_some() {
        bail!("--tls-cert and --tls-key go together");
    }
    Ok(parsed)
}

/// The acceptor for a PEM certificate chain and private key.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("reading the certificate chain {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!("no certificate in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("reading the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the key does not fit the certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Echoes until the client closes; returns the stream.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<S> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(ws.into_inner())
}

async fn serve(stream: TcpStream, tls: Option<TlsAcceptor>) -> Result<()> {
    stream.set_nodelay(true)?;
    match tls {
        Some(acceptor) => {
            let mut tls = echo(acceptor.accept(stream).await?).await?;
            // A TLS connection ends with a close_notify alert (RFC 8446 6.1).
            tls.shutdown().await?;
        }
        None => {
            echo(stream).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(&args.listen).await?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    println!("listening on {scheme}://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            // Protocol and TLS errors from clients end only that connection.
            let _ = serve(stream, tls).await;
        });
    }
}
