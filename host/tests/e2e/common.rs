//! Starting servers and speaking raw HTTP / WebSocket frames.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_edge_host::{Limits, Monitor, Reloader, Server, ServerBuilder};
/// The example and test components, by constant (`programs::GUEST_PANIC`).
pub use ws_edge_test_programs as programs;

/// An upper bound for any single step of a test, so a bug fails the test
/// instead of hanging it.
pub const STEP: Duration = Duration::from_secs(20);

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf()
}

/// Limits for tests: a small instance pool (many servers share one process's
/// address space) and short timeouts.
pub fn test_limits() -> Limits {
    Limits {
        max_connections: 64,
        shutdown_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// A server running on a tokio task until it is shut down or dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin listener's address, when the builder asked for one.
    pub admin: Option<SocketAddr>,
    pub monitor: Monitor,
    pub reloader: Reloader,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Serves `component` (a path, one of the [`programs`] constants) with
    /// `limits`.
    pub async fn start(component: &str, limits: Limits) -> TestServer {
        TestServer::start_file(PathBuf::from(component), limits).await
    }

    /// Serves the component at `path` with `limits`.
    pub async fn start_file(path: PathBuf, limits: Limits) -> TestServer {
        TestServer::start_with_env(path, limits, std::iter::empty::<(String, String)>()).await
    }

    /// Serves the component at `path` with `limits` and `env` in every
    /// instance's environment (the component's configuration, as
    /// `ws-edge serve --env KEY=VALUE` sets it).
    pub async fn start_with_env<K, V>(
        path: impl Into<PathBuf>,
        limits: Limits,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> TestServer
    where
        K: Into<String>,
        V: Into<String>,
    {
        let env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        TestServer::start_configured(path, limits, |mut builder| {
            for (key, value) in env {
                builder = builder.env(key, value);
            }
            builder
        })
        .await
    }

    /// Serves the component at `path` with `limits` and whatever else
    /// `configure` sets on the builder (pub/sub, admin listener, ...).
    pub async fn start_configured(
        path: impl Into<PathBuf>,
        limits: Limits,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> TestServer {
        // The demo page on, as for the bundled echo: the browser tests load
        // it whatever they serve.
        let builder = Server::builder()
            .component_file(path)
            .demo_page(true)
            .listen("127.0.0.1:0".parse().expect("valid address"))
            .limits(limits);
        let server = configure(builder).bind().await.expect("server binds");
        let addr = server.local_addr();
        let admin = server.admin_addr();
        let monitor = server.monitor();
        let reloader = server.reloader();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            admin,
            monitor,
            reloader,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Serves the echo component with [`test_limits`].
    pub async fn echo() -> TestServer {
        TestServer::start(programs::ECHO, test_limits()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(STEP, task)
                .await
                .expect("server stops in time")
                .expect("server task did not panic")
                .expect("server run returned Ok");
        }
    }
}

/// The guest library's settings that raise a component's frame, message and
/// output limits to `bytes`, for [`TestServer::start_with_env`].
pub fn raised_limits(bytes: usize) -> [(&'static str, String); 3] {
    [
        ("WS_EDGE_MAX_FRAME_PAYLOAD", bytes.to_string()),
        ("WS_EDGE_MAX_MESSAGE", bytes.to_string()),
        ("WS_EDGE_HIGH_WATER_MARK", bytes.to_string()),
    ]
}

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects a tokio-tungstenite client to `url`.
pub async fn connect(url: &str) -> Client {
    let (ws, response) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("handshake succeeds");
    assert_eq!(response.status().as_u16(), 101);
    ws
}

/// The next data or close message (pings and pongs are skipped).
pub async fn next_message(ws: &mut Client) -> Message {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("message in time")
            .expect("stream not ended")
            .expect("no protocol error");
        match msg {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Sends `text` and asserts it comes back as the same text.
pub async fn assert_echo(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
    match next_message(ws).await {
        Message::Text(got) => assert_eq!(got.as_str(), text),
        other => panic!("expected the text echo of {text:?}, got {other:?}"),
    }
}

/// Expects the server to close with `code`.
pub async fn expect_close(ws: &mut Client, code: u16) {
    match next_message(ws).await {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), code, "close frame {frame:?}")
        }
        other => panic!("expected a close with {code}, got {other:?}"),
    }
}

/// A parsed HTTP response from a raw exchange.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a response head from `buf` if it is complete.
fn parse_response(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).expect("response head is UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header has a colon");
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Some((
        RawResponse {
            status,
            headers,
            body: Vec::new(),
        },
        end,
    ))
}

/// Sends `request` on a fresh TCP connection and reads the response until
/// the server closes the connection (rejections) or the head is complete
/// (`101`). Returns the response and the open stream.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (RawResponse, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    read_response(&mut stream)
        .await
        .map(|r| (r, stream))
        .expect("a response")
}

/// Reads one response from `stream` (see [`raw_exchange`]). The head is read
/// byte by byte so that frames sent right after a `101` stay in the stream.
pub async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some((mut response, _)) = parse_response(&buf) {
            if response.status == 101 {
                return Some(response);
            }
            // Rejections close the connection: read the body to the end.
            let mut body = Vec::new();
            tokio::time::timeout(STEP, stream.read_to_end(&mut body))
                .await
                .expect("server closes after a rejection")
                .expect("read body");
            if let Some(len) = response.header("content-length") {
                assert_eq!(
                    len.parse::<usize>().ok(),
                    Some(body.len()),
                    "Content-Length matches"
                );
            }
            response.body = body;
            return Some(response);
        }
        let n = tokio::time::timeout(STEP, stream.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        if n == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
}

/// A valid upgrade request for `path` with extra header lines.
pub fn upgrade_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads one unmasked server frame: (fin, opcode, payload).
pub async fn read_server_frame(stream: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let (fin, _rsv, opcode, payload) = read_server_frame_rsv(stream).await;
    (fin, opcode, payload)
}

/// Reads one unmasked server frame: (fin, RSV bits (`0x70` mask), opcode,
/// payload).
pub async fn read_server_frame_rsv(stream: &mut TcpStream) -> (bool, u8, u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tokio::time::timeout(STEP, stream.read_exact(&mut head))
        .await
        .expect("frame in time")
        .expect("read frame header");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).await.expect("len16");
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).await.expect("len64");
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("fits")];
    stream.read_exact(&mut payload).await.expect("payload");
    (head[0] & 0x80 != 0, head[0] & 0x70, head[0] & 0x0f, payload)
}

/// Writes `chunk` to a client that never reads, up to 4 000 times (far more
/// than loopback socket buffers hold), until the server drops the
/// connection. Returns how many chunks were written before the write failed,
/// or `None` if all of them went through. Fails the test if the server
/// neither drops the connection nor keeps reading within [`STEP`].
pub async fn write_until_dropped(stream: &mut TcpStream, chunk: &[u8]) -> Option<usize> {
    tokio::time::timeout(STEP, async {
        for sent in 0..4000 {
            if stream.write_all(chunk).await.is_err() {
                return Some(sent);
            }
        }
        None
    })
    .await
    .expect("the server drops the connection within the step")
}

/// A raw HTTP/1.1 request to the admin listener; the status and the body.
pub async fn admin_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("admin connects");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut response))
        .await
        .expect("admin answers in time")
        .expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A client script next to the tests (`host/tests/e2e/NAME`).
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(name)
}

/// The venv's Python, which `make test` creates with `websockets`.
pub fn venv_python() -> PathBuf {
    let python = workspace().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test` (or `python3 -m venv .venv && \
         .venv/bin/pip install websockets`) to install the Python client",
        python.display()
    );
    python
}

/// Runs a client program to completion within `limit` and expects it to
/// print "ok".
pub async fn expect_ok(mut command: tokio::process::Command, what: &str, limit: Duration) {
    let output = tokio::time::timeout(
        limit,
        command
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} finishes in time"))
    .unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'websockets'"),
        "the venv lacks `websockets`: run `make test` or `.venv/bin/pip install websockets`"
    );
    assert!(output.status.success(), "{what} failed:\n{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ok",
        "{stderr}"
    );
}
