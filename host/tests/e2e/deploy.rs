//! The host as a deployment runs it: TLS (`wss://`) with a test CA made
//! here, several components routed by path, reload without dropping
//! anyone, and the metrics scraped and parsed by a real Prometheus parser.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData as _,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use ws_edge_host::{Limits, Server};

use crate::common::*;

/// A test CA and a server certificate it signed for `localhost` and
/// `127.0.0.1`, written as PEM files in a directory of their own.
pub(crate) struct TestPki {
    pub(crate) dir: PathBuf,
    pub(crate) ca: CertificateDer<'static>,
    /// The server key's SubjectPublicKeyInfo (DER), for Chromium's pin.
    pub(crate) spki: Vec<u8>,
}

impl TestPki {
    pub(crate) fn new(tag: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!(
            "ws-edge-e2e-pki-{}-{tag}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("pki dir");
        TestPki::issue(&dir)
    }

    /// Issues a new CA and server pair into `dir` (replacing the files).
    fn issue(dir: &Path) -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ws-edge test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write CA");
        TestPki {
            dir: dir.to_owned(),
            ca: ca_cert.der().clone(),
            spki: key.subject_public_key_info(),
        }
    }

    /// Replaces the files with a new CA and server pair.
    pub(crate) fn reissue(&self) -> TestPki {
        TestPki::issue(&self.dir)
    }

    pub(crate) fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A TLS connector trusting only this CA.
    fn connector(&self) -> TlsConnector {
        self.connector_with(
            rustls::crypto::ring::default_provider(),
            rustls::DEFAULT_VERSIONS,
        )
    }

    /// A TLS connector trusting only this CA, offering `provider`'s cipher
    /// suites in its order and the protocol `versions`.
    fn connector_with(
        &self,
        provider: rustls::crypto::CryptoProvider,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("CA is a valid root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

type TlsClient = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A WebSocket client over TLS to `path` on `server`, trusting `pki`'s CA.
async fn connect_tls(
    pki: &TestPki,
    server: &TestServer,
    path: &str,
) -> Result<(TlsClient, u16), String> {
    let tcp = TcpStream::connect(server.addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio::time::timeout(STEP, pki.connector().connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .map_err(|e| format!("TLS: {e}"))?;
    let url = format!("wss://localhost:{}{path}", server.addr.port());
    let (ws, response) = tokio::time::timeout(STEP, tokio_tungstenite::client_async(url, tls))
        .await
        .expect("upgrade in time")
        .map_err(|e| format!("upgrade: {e}"))?;
    Ok((ws, response.status().as_u16()))
}

async fn tls_echo(ws: &mut TlsClient, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("echo in time")
            .expect("open")
            .expect("no error");
        match msg {
            Message::Text(t) => {
                assert_eq!(t.as_str(), text);
                return;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected the echo of {text:?}, got {other:?}"),
        }
    }
}

/// Serves with TLS from `pki` and `configure`'s other settings.
async fn start_tls(
    pki: &TestPki,
    component: &str,
    limits: Limits,
    configure: impl FnOnce(ws_edge_host::ServerBuilder) -> ws_edge_host::ServerBuilder,
) -> TestServer {
    let (cert, key) = (pki.cert(), pki.key());
    TestServer::start_configured(component, limits, move |b| configure(b.tls(cert, key))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_serves_rustls_and_python_clients_and_tells_the_guest() {
    let pki = TestPki::new("wss");
    let server = start_tls(&pki, programs::ECHO, test_limits(), |b| b).await;

    let (mut ws, status) = connect_tls(&pki, &server, "/").await.expect("wss connects");
    assert_eq!(status, 101);
    tls_echo(&mut ws, "hello over TLS").await;
    let big = "x".repeat(60_000);
    tls_echo(&mut ws, &big).await;
    ws.close(None).await.expect("close");

    // A plain-text client gets no HTTP answer from a TLS listener.
    let mut plain = TcpStream::connect(server.addr).await.expect("connect");
    plain
        .write_all(&upgrade_request("/", ""))
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(STEP, plain.read(&mut buf))
        .await
        .expect("the server answers or closes in time")
        .unwrap_or(0);
    assert!(
        !buf[..n].starts_with(b"HTTP/1.1 101"),
        "a plain-text upgrade must not succeed on a TLS listener"
    );

    // Python `websockets` with an SSL context that trusts the test CA.
    let python = workspace().join(".venv/bin/python");
    let script = r#"
import asyncio, ssl, sys
from websockets.asyncio.client import connect
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with connect(sys.argv[1], ssl=ctx) as ws:
        await ws.send("from python over wss")
        print(await ws.recv())
asyncio.run(main())
"#;
    let output = tokio::time::timeout(
        STEP,
        tokio::process::Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(format!("wss://localhost:{}/py", server.addr.port()))
            .arg(pki.ca_file())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python finishes in time")
    .expect("python runs");
    assert!(
        output.status.success(),
        "python wss client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "from python over wss"
    );
    server.shutdown().await;

    // `transport.tls` reaches the guest: chat-auth marks its cookie
    // `Secure` over TLS only.
    let secure = start_tls(&pki, programs::CHAT_AUTH, test_limits(), |b| b).await;
    let clear = TestServer::start(programs::CHAT_AUTH, test_limits()).await;
    let over_tls = chat_auth_cookie_tls(&pki, &secure).await;
    assert!(over_tls.contains("Secure"), "{over_tls}");
    let request = upgrade_request(
        "/?token=alice-secret",
        "Sec-WebSocket-Protocol: chat.v1\r\nOrigin: http://localhost:8080\r\n",
    );
    let (response, _) = raw_exchange(clear.addr, &request).await;
    assert_eq!(response.status, 101, "{response:?}");
    let in_clear = response.header("set-cookie").expect("cookie").to_owned();
    assert!(!in_clear.contains("Secure"), "{in_clear}");
    secure.shutdown().await;
    clear.shutdown().await;
}

/// A TLS connection through `connector` to `server`, upgraded to a
/// WebSocket: the `101` head has been read.
async fn upgraded_tls(
    connector: &TlsConnector,
    server: &TestServer,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake");
    tls.write_all(&upgrade_request("/", ""))
        .await
        .expect("write");
    let head = read_head_tls(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls
}

/// The cipher suite the server picks for a client offering `suites`, in
/// that order, over TLS `version`.
async fn suite_picked(
    pki: &TestPki,
    server: &TestServer,
    suites: &[rustls::CipherSuite],
    version: &'static rustls::SupportedProtocolVersion,
) -> rustls::CipherSuite {
    let mut provider = rustls::crypto::ring::default_provider();
    let all = std::mem::take(&mut provider.cipher_suites);
    provider.cipher_suites = suites
        .iter()
        .map(|s| *all.iter().find(|c| c.suite() == *s).expect("ring has it"))
        .collect();
    let tls = upgraded_tls(&pki.connector_with(provider, &[version]), server).await;
    tls.get_ref()
        .1
        .negotiated_cipher_suite()
        .expect("negotiated")
        .suite()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_prefers_aes_128_gcm_unless_the_client_prefers_chacha20() {
    use rustls::CipherSuite as S;
    let pki = TestPki::new("suites");
    let server = start_tls(&pki, programs::ECHO, test_limits(), |b| b).await;
    let v13 = &rustls::version::TLS13;
    let v12 = &rustls::version::TLS12;
    // OpenSSL's, Node's and rustls' order: AES-256 first.
    let aes256_first = [
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_CHACHA20_POLY1305_SHA256,
        S::TLS13_AES_128_GCM_SHA256,
    ];
    assert_eq!(
        suite_picked(&pki, &server, &aes256_first, v13).await,
        S::TLS13_AES_128_GCM_SHA256
    );
    // A client without AES instructions puts ChaCha20 first and keeps it.
    let chacha_first = [
        S::TLS13_CHACHA20_POLY1305_SHA256,
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_AES_128_GCM_SHA256,
    ];
    assert_eq!(
        suite_picked(&pki, &server, &chacha_first, v13).await,
        S::TLS13_CHACHA20_POLY1305_SHA256
    );
    // What the client offers bounds the choice.
    assert_eq!(
        suite_picked(&pki, &server, &[S::TLS13_AES_256_GCM_SHA384], v13).await,
        S::TLS13_AES_256_GCM_SHA384
    );
    // TLS 1.2 the same way (the test certificate's key is ECDSA).
    let tls12_aes256_first = [
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    assert_eq!(
        suite_picked(&pki, &server, &tls12_aes256_first, v12).await,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resume_their_tls_sessions_with_either_suite_policy() {
    use rustls::CipherSuite as S;
    let pki = TestPki::new("resume");
    let server = start_tls(&pki, programs::ECHO, test_limits(), |b| b).await;
    // Clients sharing one ticket store, as one browser would: AES-first
    // ones (the server picks AES-128) and ChaCha20-first ones (the server
    // honours that). rustls resumes a session with its own suite only, so
    // the first ChaCha20 handshake is a full one.
    let store = Arc::new(rustls::client::ClientSessionMemoryCache::new(8));
    // rustls resumes only between configs with the same verifier and the
    // same client certificate resolver (the same `Arc`s).
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("CA is a valid root");
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .expect("verifier");
    let no_cert: Arc<dyn rustls::client::ResolvesClientCert> = Arc::new(NoClientCert);
    let client = |first: S| {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites.sort_by_key(|c| c.suite() != first);
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_cert_resolver(no_cert.clone());
        config.resumption = rustls::client::Resumption::store(store.clone());
        TlsConnector::from(Arc::new(config))
    };
    let mut seen = Vec::new();
    for first in [
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_CHACHA20_POLY1305_SHA256,
        S::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        // The tickets arrive after the handshake; reading the 101 takes them.
        let tls = upgraded_tls(&client(first), &server).await;
        let session = tls.get_ref().1;
        seen.push((
            session.handshake_kind(),
            session.negotiated_cipher_suite().map(|s| s.suite()),
        ));
    }
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(
        seen,
        [
            (Some(Full), Some(S::TLS13_AES_128_GCM_SHA256)),
            (Some(Resumed), Some(S::TLS13_AES_128_GCM_SHA256)),
            (Some(Full), Some(S::TLS13_CHACHA20_POLY1305_SHA256)),
            (Some(Resumed), Some(S::TLS13_CHACHA20_POLY1305_SHA256)),
        ]
    );
    server.shutdown().await;
}

/// A client without a certificate.
#[derive(Debug)]
struct NoClientCert;

impl rustls::client::ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Reads a response head over `tls` byte by byte (frames after a `101`
/// stay unread).
async fn read_head_tls(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(STEP, tls.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "server closed: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("UTF-8 head")
}

/// The `Set-Cookie` chat-auth answers with over TLS.
async fn chat_auth_cookie_tls(pki: &TestPki, server: &TestServer) -> String {
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = pki.connector().connect(name, tcp).await.expect("TLS");
    let request = upgrade_request(
        "/?token=alice-secret",
        "Sec-WebSocket-Protocol: chat.v1\r\nOrigin: http://localhost:8080\r\n",
    );
    tls.write_all(&request).await.expect("write");
    let head = read_head_tls(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a Set-Cookie header")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_in_the_tls_handshake_is_dropped_at_the_head_timeout() {
    let pki = TestPki::new("stall");
    let limits = Limits {
        head_timeout: Duration::from_millis(500),
        ..test_limits()
    };
    let server = start_tls(&pki, programs::ECHO, limits, |b| b).await;
    // Half a ClientHello record header, then nothing.
    let mut stalled = TcpStream::connect(server.addr).await.expect("connect");
    stalled.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    let mut buf = [0u8; 16];
    let started = std::time::Instant::now();
    let n = tokio::time::timeout(STEP, stalled.read(&mut buf))
        .await
        .expect("the server drops the stalled client in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "a stalled TLS client gets no bytes, only the close");
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Others are served meanwhile and after.
    let (mut ws, _) = connect_tls(&pki, &server, "/").await.expect("connects");
    tls_echo(&mut ws, "still serving").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_an_error_at_start() {
    let pki = TestPki::new("bad");
    let other = TestPki::new("other");
    let bind = |cert: PathBuf, key: PathBuf| async move {
        Server::builder()
            .listen("127.0.0.1:0".parse().expect("address"))
            .limits(test_limits())
            .tls(cert, key)
            .bind()
            .await
    };
    let missing = bind(pki.dir.join("nope.pem"), pki.key()).await;
    let missing = missing
        .err()
        .expect("a missing certificate fails")
        .to_string();
    assert!(missing.contains("nope.pem"), "{missing}");

    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let err = bind(garbage.clone(), pki.key()).await;
    assert!(err.is_err(), "a file without a certificate fails");
    let err = bind(pki.cert(), garbage).await;
    assert!(err.is_err(), "a file without a key fails");

    let mismatched = bind(pki.cert(), other.key()).await;
    let mismatched = format!("{:#}", mismatched.err().expect("a mismatched pair fails"));
    assert!(mismatched.contains("does not fit"), "{mismatched}");

    // The CLI exits non-zero with the reason.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ws-edge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.cert())
        .arg("--tls-key")
        .arg(other.key())
        .kill_on_drop(true)
        .output()
        .await
        .expect("ws-edge runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not fit"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_reloads_without_dropping_open_connections() {
    let pki = TestPki::new("reload");
    let server = start_tls(&pki, programs::ECHO, test_limits(), |b| b).await;
    let (mut old, _) = connect_tls(&pki, &server, "/").await.expect("connects");
    tls_echo(&mut old, "before").await;

    let renewed = pki.reissue();
    let outcomes = server.reloader.reload().await;
    let tls = outcomes
        .iter()
        .find(|r| r.route == "tls")
        .expect("a tls outcome");
    assert!(tls.outcome.is_ok(), "{outcomes:?}");

    // The open connection goes on; new ones get the new certificate.
    tls_echo(&mut old, "after").await;
    let (mut new, _) = connect_tls(&renewed, &server, "/")
        .await
        .expect("the new CA is trusted");
    tls_echo(&mut new, "new certificate").await;
    let refused = connect_tls(&pki, &server, "/").await;
    assert!(refused.is_err(), "the old CA no longer verifies the server");

    // A broken pair is refused and the current one keeps serving.
    std::fs::write(renewed.key(), "broken\n").expect("write");
    let outcomes = server.reloader.reload().await;
    let tls = outcomes
        .iter()
        .find(|r| r.route == "tls")
        .expect("a tls outcome");
    assert!(tls.outcome.is_err(), "{outcomes:?}");
    let (mut again, _) = connect_tls(&renewed, &server, "/")
        .await
        .expect("still the renewed certificate");
    tls_echo(&mut again, "still").await;
    server.shutdown().await;
}

/// A copy of a component at a path a test may overwrite.
fn scratch_component(tag: &str, from: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "ws-edge-e2e-{tag}-{}-{}.wasm",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::copy(from, &path).expect("copy component");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_components_by_longest_prefix_and_404_without_an_instance() {
    let server = TestServer::start_configured(programs::ECHO, test_limits(), |b| {
        b.route("/a", programs::REJECT)
            .route("/a/b/", programs::ECHO)
            .route("/panic", programs::GUEST_PANIC)
            .no_default_route()
    })
    .await;
    let status = |path: &'static str| {
        let addr = server.addr;
        async move { raw_exchange(addr, &upgrade_request(path, "")).await.0 }
    };
    assert_eq!(status("/a").await.status, 403);
    assert_eq!(status("/a/c?x=1").await.status, 403);
    assert_eq!(status("/a/b").await.status, 101);
    assert_eq!(status("/a/b/c").await.status, 101);
    assert_eq!(status("/panic/ok").await.status, 101);
    let created = server.monitor.instances_created();
    let missing = status("/ab").await;
    assert_eq!(missing.status, 404, "{missing:?}");
    assert_eq!(status("/").await.status, 404);
    assert_eq!(
        server.monitor.instances_created(),
        created,
        "a 404 from the host costs no instance"
    );
    // Echo over a route, with a real client.
    let mut ws = connect(&server.url("/a/b/room")).await;
    assert_echo(&mut ws, "routed").await;
    server.shutdown().await;

    // With a default route, unmatched paths go to it; the demo page stays
    // (the test server turns it on).
    let server = TestServer::start_configured(programs::REJECT, test_limits(), |b| {
        b.route("/echo", programs::ECHO)
    })
    .await;
    assert_eq!(
        raw_exchange(server.addr, &upgrade_request("/elsewhere", ""))
            .await
            .0
            .status,
        403
    );
    let mut ws = connect(&server.url("/echo")).await;
    assert_echo(&mut ws, "echo route").await;
    let (page, _) = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(page.status, 200);
    server.shutdown().await;

    // A bad route is an error at start.
    let err = Server::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .limits(test_limits())
        .route("chat", programs::ECHO)
        .bind()
        .await;
    assert!(err.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_serves_new_connections_with_the_new_version_and_keeps_open_ones() {
    let file = scratch_component("reload", programs::ECHO);
    let server = TestServer::start_configured(programs::ECHO, test_limits(), |b| {
        b.route("/live", file.clone())
            .admin_listen("127.0.0.1:0".parse().expect("address"))
    })
    .await;
    let mut open = connect(&server.url("/live")).await;
    assert_echo(&mut open, "v1").await;

    // The file now holds a component that rejects; reload over the admin
    // endpoint.
    std::fs::copy(programs::REJECT, &file).expect("overwrite");
    let admin = server.admin.expect("admin");
    let (status, body) = admin_request(admin, "POST", "/reload", &[], b"").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/live ok generation 1"), "{body}");
    assert_echo(&mut open, "still v1").await;
    let (response, _) = raw_exchange(server.addr, &upgrade_request("/live", "")).await;
    assert_eq!(response.status, 403, "new connections get the new version");

    // A file that is not a component is refused; the last good version
    // keeps serving.
    std::fs::write(&file, b"\0asm garbage").expect("overwrite");
    let outcomes = server.reloader.reload().await;
    let live = outcomes
        .iter()
        .find(|r| r.route == "/live")
        .expect("outcome");
    assert!(live.outcome.is_err(), "{outcomes:?}");
    let (status, body) = admin_request(admin, "POST", "/reload", &[], b"").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("/live refused"), "{body}");
    let (response, _) = raw_exchange(server.addr, &upgrade_request("/live", "")).await;
    assert_eq!(response.status, 403);
    assert_echo(&mut open, "v1 to the end").await;
    open.close(None).await.expect("close");
    server.shutdown().await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_prometheus_client_and_match_the_traffic() {
    let server = TestServer::start_configured(programs::ECHO, test_limits(), |b| {
        b.route("/r", programs::REJECT)
            .admin_listen("127.0.0.1:0".parse().expect("address"))
    })
    .await;
    let mut sent = 0;
    for i in 0..3 {
        let mut ws = connect(&server.url("/echo")).await;
        let text = format!("message {i}");
        assert_echo(&mut ws, &text).await;
        sent += text.len();
        ws.close(None).await.expect("close");
    }
    for _ in 0..2 {
        let (response, _) = raw_exchange(server.addr, &upgrade_request("/r", "")).await;
        assert_eq!(response.status, 403);
    }
    // Let the connections finish.
    let deadline = tokio::time::Instant::now() + STEP;
    while server.monitor.live_connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) =
        admin_request(server.admin.expect("admin"), "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);

    let python = workspace().join(".venv/bin/python");
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        key = s.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"
        out[key] = s.value
print(json.dumps(out))
"#;
    let mut child = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(body.as_bytes()).await.expect("write");
    drop(stdin);
    let output = tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .expect("parser in time")
        .expect("parser output");
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics: {}\n{body}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("parser prints JSON");
    let value = |key: &str| {
        samples
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("no sample {key} in {samples}"))
    };
    assert_eq!(
        value("ws_edge_handshakes_total{route=default,status=101}"),
        3.0
    );
    assert_eq!(value("ws_edge_handshakes_total{route=/r,status=403}"), 2.0);
    assert_eq!(value("ws_edge_open_connections{}"), 0.0);
    assert_eq!(value("ws_edge_instances_in_use{}"), 0.0);
    // Each echo is at least the masked frame in and the frame out.
    assert!(value("ws_edge_received_bytes_total{}") >= sent as f64);
    assert!(value("ws_edge_sent_bytes_total{}") >= sent as f64);
    // One text message each way per echo connection (closes are control
    // frames).
    assert_eq!(value("ws_edge_messages_received_total{}"), 3.0);
    assert_eq!(value("ws_edge_messages_sent_total{}"), 3.0);
    assert!(value("ws_edge_guest_call_seconds_count{export=handle-head}") >= 5.0);
    assert!(value("ws_edge_guest_call_seconds_count{export=connection.receive}") >= 3.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_tls_record_ends_only_its_connection() {
    let pki = TestPki::new("corrupt");
    let server = start_tls(&pki, programs::ECHO, test_limits(), |b| b).await;
    let (mut bystander, _) = connect_tls(&pki, &server, "/").await.expect("connects");

    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = pki.connector().connect(name, tcp).await.expect("TLS");
    tls.write_all(&upgrade_request("/", ""))
        .await
        .expect("write");
    let head = read_head_tls(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // An application-data record that cannot decrypt, then silence: the
    // server must end the connection (not wait, not spin).
    let mut garbage = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    garbage.extend([0xa5; 32]);
    let raw = tls.get_mut().0;
    raw.write_all(&garbage).await.expect("write garbage");
    let mut sink = [0u8; 256];
    let closed = tokio::time::timeout(STEP, async {
        loop {
            match raw.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server closes a connection with a corrupt record"
    );
    tls_echo(&mut bystander, "unaffected").await;
    server.shutdown().await;
}
