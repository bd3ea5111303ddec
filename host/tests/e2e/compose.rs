//! The composed components: the generic protocol component with a handler
//! plugged in by `wac plug`, served by the unchanged `ws-edge` binary. One
//! suite, run against the handler in each language — Rust
//! (`examples/compose/handler`, `make compose`), Python
//! (`examples/handler-py`) and JavaScript (`examples/handler-js`, both
//! `make compose-polyglot`) — which must behave identically.
//!
//! Each flavour is one test, against one server process, because compiling
//! a Python or JavaScript component takes seconds: raw frames, a
//! tokio-tungstenite client, Python `websockets`, headless Chromium, and a
//! handler that throws (its connection ends with `1011`, or the request gets
//! `500`, the others go on, and the error text is in the host's log).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

use crate::browser::Browser;
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_ws-edge");

/// How long the server may take to compile a component at start: the
/// Python one (18 MB) takes ~20 s on a busy 2-core machine.
const START: Duration = Duration::from_secs(240);

/// The language of the plugged-in handler.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    Rust,
    Python,
    JavaScript,
}

impl Flavor {
    /// The composed component: the flavour's environment variable (what
    /// `make e2e` sets), else where `make compose` / `make
    /// compose-polyglot` write it. Missing is a failure, not a skip.
    fn component(self) -> PathBuf {
        let (var, file, make) = match self {
            Flavor::Rust => ("WS_EDGE_COMPOSED_WASM", "composed.wasm", "make compose"),
            Flavor::Python => (
                "WS_EDGE_COMPOSED_PY_WASM",
                "composed_py.wasm",
                "make compose-polyglot",
            ),
            Flavor::JavaScript => (
                "WS_EDGE_COMPOSED_JS_WASM",
                "composed_js.wasm",
                "make compose-polyglot",
            ),
        };
        let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
            workspace()
                .join("target/guests/wasm32-wasip2/guest")
                .join(file)
        });
        assert!(
            path.is_file(),
            "the composed component {} ({self:?} handler) is missing: run `{make}` (or `make \
             e2e`, which runs it), or point {var} at a component built by `wac plug`",
            path.display()
        );
        path
    }
}

/// A `ws-edge serve` process and everything it has logged so far.
struct Served {
    child: Child,
    addr: std::net::SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Served {
    async fn start(flavor: Flavor) -> Served {
        let mut child = tokio::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--demo-page"])
            .arg(flavor.component())
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ws-edge starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = tokio::time::timeout(START, stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("{flavor:?}: no `listening on` line in time"))
            .expect("read stdout");
        let Some(line) = line else {
            let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("{flavor:?}: ws-edge exited at start:\n{log}");
        };
        let addr = line
            .strip_prefix("listening on ws://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("ip:port");
        Served { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Waits until the log holds `text`; fails with the whole log if it
    /// does not within [`STEP`].
    async fn expect_log(&self, text: &str) {
        let found = tokio::time::timeout(STEP, async {
            while !self
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(text)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if found.is_err() {
            let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("the host's log lacks {text:?}:\n{log}");
        }
    }

    /// SIGTERM, and a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("exits within the shutdown timeout")
            .expect("wait");
        assert!(exit.success(), "exit status {exit}");
    }
}

/// Sends a masked text frame and expects one unfragmented text frame back.
async fn text_round_trip(stream: &mut tokio::net::TcpStream, send: &str, expect: &str) {
    stream
        .write_all(&client_frame(true, 0x1, send.as_bytes()))
        .await
        .expect("write frame");
    let (fin, opcode, payload) = read_server_frame(stream).await;
    assert!(fin);
    assert_eq!(opcode, 0x1, "text frame");
    assert_eq!(String::from_utf8_lossy(&payload), expect);
}

async fn selects_a_protocol_and_transforms_messages(served: &Served) {
    let request = upgrade_request("/compose", "Sec-WebSocket-Protocol: plain.v1, SHOUT.v1\r\n");
    let (response, mut stream) = raw_exchange(served.addr, &request).await;
    assert_eq!(response.status, 101, "{response:?}");
    // The handler prefers shout.v1; the protocol component echoes the
    // client's spelling.
    assert_eq!(response.header("sec-websocket-protocol"), Some("SHOUT.v1"));
    assert_eq!(response.header("x-handler"), Some("compose-example"));
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );

    text_round_trip(&mut stream, "hello", "#1 HELLO").await;
    stream
        .write_all(&client_frame(true, 0x2, &[1, 2, 3, 250]))
        .await
        .expect("write frame");
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!((opcode, payload), (0x2, vec![250, 3, 2, 1]));
    // A message in two fragments reaches the handler as one.
    stream
        .write_all(&client_frame(false, 0x1, "grüße, ".as_bytes()))
        .await
        .expect("write frame");
    stream
        .write_all(&client_frame(true, 0x0, "welt".as_bytes()))
        .await
        .expect("write frame");
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!(opcode, 0x1);
    assert_eq!(String::from_utf8_lossy(&payload), "#3 GRÜSSE, WELT");

    // `bye`: a reply, then the handler's close.
    text_round_trip(&mut stream, "bye", "#4 goodbye").await;
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!(opcode, 0x8, "close frame");
    assert_eq!(payload, b"\x03\xe8bye");
}

async fn keeps_state_per_connection(served: &Served) {
    let mut clients = [
        connect(&served.url("/compose")).await,
        connect(&served.url("/compose?x=1")).await,
    ];
    for (i, text, expect) in [
        (0, "a", "#1 a"),
        (0, "b", "#2 b"),
        (1, "c", "#1 c"),
        (0, "d", "#3 d"),
    ] {
        let ws = &mut clients[i];
        futures_util::SinkExt::send(&mut *ws, Message::text(text))
            .await
            .expect("send");
        match next_message(ws).await {
            Message::Text(got) => assert_eq!(got.as_str(), expect),
            other => panic!("expected {expect:?}, got {other:?}"),
        }
    }
}

async fn rejects_and_validation_stays_in_the_protocol_component(served: &Served) {
    let (r, _) = raw_exchange(served.addr, &upgrade_request("/elsewhere", "")).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.header("x-websocket-reject-reason"),
        Some("/elsewhere is not served here")
    );
    assert_eq!(r.header("x-handler"), Some("compose-example"));
    assert_eq!(r.body, b"only /compose is served here\n");

    // Never reaches the handler: the protocol component answers 426.
    let v7 = String::from_utf8(upgrade_request("/compose", ""))
        .expect("ascii")
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7");
    let (r, _) = raw_exchange(served.addr, v7.as_bytes()).await;
    assert_eq!(r.status, 426, "{r:?}");
    assert_eq!(r.header("x-handler"), None);
}

async fn python_websockets_client(served: &Served) {
    let mut command = tokio::process::Command::new(venv_python());
    command
        .arg(script("compose_client.py"))
        .arg(format!("ws://{}", served.addr));
    expect_ok(command, "python client", STEP).await;
}

async fn chromium_client(served: &Served) {
    let mut browser = Browser::launch().await;
    let page = browser.open(&format!("http://{}/", served.addr)).await;
    let result = browser
        .eval(
            &page,
            r#"new Promise((resolve, reject) => {
                const ws = new WebSocket(`ws://${location.host}/compose`, ["plain.v1", "shout.v1"]);
                ws.binaryType = "arraybuffer";
                const got = [];
                ws.onopen = () => {
                    ws.send("héllo");
                    ws.send(new Uint8Array([1, 2, 3]));
                    ws.send("bye");
                };
                ws.onmessage = (e) => got.push(typeof e.data === "string"
                    ? e.data : Array.from(new Uint8Array(e.data)).join(","));
                ws.onclose = (e) => resolve({ protocol: ws.protocol, got, code: e.code, reason: e.reason });
                setTimeout(() => reject(new Error("no close in 10 s")), 10000);
            })"#,
        )
        .await;
    assert_eq!(
        result,
        json!({
            "protocol": "shout.v1",
            "got": ["#1 HÉLLO", "3,2,1", "#3 goodbye"],
            "code": 1000,
            "reason": "bye",
        })
    );
    browser.close().await;
}

/// A handler that throws ends only its own connection: `1011` after the
/// upgrade, `500` before it; the bystander and later connections are
/// served, and the error text reaches the host's log.
async fn a_throwing_handler_ends_only_its_connection(served: &Served) {
    let mut bystander = connect(&served.url("/compose")).await;
    let mut victim = connect(&served.url("/compose")).await;
    futures_util::SinkExt::send(&mut bystander, Message::text("before"))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut bystander).await,
        Message::text("#1 before")
    );
    futures_util::SinkExt::send(&mut victim, Message::text("throw"))
        .await
        .expect("send");
    expect_close(&mut victim, 1011).await;
    served
        .expect_log("handler failure: asked to throw by message #1")
        .await;

    let (r, _) = raw_exchange(served.addr, &upgrade_request("/compose/throw", "")).await;
    assert_eq!(r.status, 500, "{r:?}");
    served
        .expect_log("handler failure: asked to throw by a request for /compose/throw")
        .await;
    served.expect_log("kind=trap").await;

    futures_util::SinkExt::send(&mut bystander, Message::text("after"))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut bystander).await,
        Message::text("#2 after")
    );
    let mut fresh = connect(&served.url("/compose")).await;
    futures_util::SinkExt::send(&mut fresh, Message::text("new"))
        .await
        .expect("send");
    assert_eq!(next_message(&mut fresh).await, Message::text("#1 new"));
}

async fn suite(flavor: Flavor) {
    let served = Served::start(flavor).await;
    selects_a_protocol_and_transforms_messages(&served).await;
    keeps_state_per_connection(&served).await;
    rejects_and_validation_stays_in_the_protocol_component(&served).await;
    python_websockets_client(&served).await;
    chromium_client(&served).await;
    a_throwing_handler_ends_only_its_connection(&served).await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_rust_handler() {
    suite(Flavor::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_python_handler() {
    suite(Flavor::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_javascript_handler() {
    suite(Flavor::JavaScript).await;
}
