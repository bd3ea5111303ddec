//! A small raw WebSocket client over TCP: exactly the bytes each case needs
//! (malformed ones included), every read bounded by a timeout.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

/// The RFC 6455 §1.3 sample key and the accept value it must produce.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`KEY`].
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// How long any single step (connect, one expected frame) may take unless a
/// case says otherwise.
pub const STEP: Duration = Duration::from_secs(5);

/// Frame opcodes.
pub mod op {
    /// Continuation frame.
    pub const CONT: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// A case's failure: what was expected and what happened.
pub type Check<T = ()> = Result<T, String>;

/// The upgrade request for `path`, with `\r\n` line ends.
pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// One client frame: masked with a fixed key unless `masked` is false.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xFA, 0x21, 0x3D];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// A complete, masked, unfragmented client frame.
pub fn msg(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, payload, true)
}

/// A masked close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    msg(op::CLOSE, &payload)
}

/// Connects to `addr` within [`STEP`].
pub async fn connect(addr: SocketAddr) -> Check<TcpStream> {
    match timeout(STEP, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
        Err(_) => Err(format!("connect to {addr}: timed out")),
    }
}

/// An HTTP response head as the client saw it.
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The head, status line to empty line, as text.
    pub text: String,
}

impl Head {
    /// Whether a header line `name: value` is present (name
    /// case-insensitive, value exact).
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.text.lines().any(|line| {
            line.split_once(':')
                .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case(name) && v.trim() == value)
        })
    }
}

/// A client connection: the socket and what was read past the last frame.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame the server sent.
#[derive(Debug)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame (1005 for an empty one).
    pub fn close_code(&self) -> u16 {
        match self.payload.as_slice() {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 1005,
        }
    }
}

/// What a read found instead of a frame.
#[derive(Debug)]
pub enum NoFrame {
    /// The server closed the stream cleanly (FIN).
    Eof,
    /// Nothing arrived in time.
    Timeout,
    /// The socket failed (a reset, for example).
    Io(io::Error),
    /// The server sent bytes that are not a valid server frame.
    Bad(String),
}

impl std::fmt::Display for NoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoFrame::Eof => write!(f, "end of stream"),
            NoFrame::Timeout => write!(f, "nothing arrived in time"),
            NoFrame::Io(e) => write!(f, "socket error: {e}"),
            NoFrame::Bad(why) => write!(f, "bad frame: {why}"),
        }
    }
}

impl Conn {
    /// Wraps a connected socket.
    pub fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes` completely within [`STEP`].
    pub async fn send(&mut self, bytes: &[u8]) -> Check {
        match timeout(STEP, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write: timed out (the host does not read)".into()),
        }
    }

    /// Reads more bytes until `deadline`; `Ok(false)` at end of stream.
    async fn fill(&mut self, deadline: Instant) -> Result<bool, NoFrame> {
        let mut chunk = [0u8; 16 * 1024];
        match timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(NoFrame::Timeout),
            Ok(Err(e)) => Err(NoFrame::Io(e)),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    /// Reads an HTTP response head (up to 64 KiB) within `wait`.
    pub async fn read_head(&mut self, wait: Duration) -> Check<Head> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                self.buf.drain(..end + 4);
                let status = text
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
                return Ok(Head { status, text });
            }
            if self.buf.len() > 64 * 1024 {
                return Err("response head longer than 64 KiB".into());
            }
            match self.fill(deadline).await {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => {
                    return Err("the host closed the connection without a response".into());
                }
                Ok(false) => return Err("the host closed the connection mid-response".into()),
                Err(e) => return Err(format!("waiting for a response: {e}")),
            }
        }
    }

    /// Reads the next frame within `wait`.
    pub async fn frame(&mut self, wait: Duration) -> Result<Frame, NoFrame> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            if !self.fill(deadline).await? {
                return Err(if self.buf.is_empty() {
                    NoFrame::Eof
                } else {
                    NoFrame::Bad("end of stream inside a frame".into())
                });
            }
        }
    }

    /// Reads one data message (reassembling fragments, answering nothing),
    /// skipping pings and pongs; its opcode and payload.
    pub async fn message(&mut self, wait: Duration) -> Check<(u8, Vec<u8>)> {
        let deadline = Instant::now() + wait;
        let mut opcode = None;
        let mut data = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = self
                .frame(left)
                .await
                .map_err(|e| format!("waiting for a message: {e}"))?;
            match f.opcode {
                op::PING | op::PONG => continue,
                op::CLOSE => {
                    return Err(format!(
                        "expected a message, got a close frame with {}",
                        f.close_code()
                    ));
                }
                op::CONT if opcode.is_none() => return Err("continuation without a start".into()),
                op::CONT => {}
                other => opcode = Some(other),
            }
            data.extend_from_slice(&f.payload);
            if f.fin {
                return Ok((opcode.unwrap_or(op::TEXT), data));
            }
        }
    }

    /// Expects the text message `want`.
    pub async fn expect_text(&mut self, want: &str, wait: Duration) -> Check {
        let (opcode, data) = self.message(wait).await?;
        if opcode != op::TEXT || data != want.as_bytes() {
            return Err(format!(
                "expected the text {want:?}, got opcode {opcode} {:?}",
                String::from_utf8_lossy(&data[..data.len().min(80)])
            ));
        }
        Ok(())
    }

    /// Sends `text` and expects it back.
    pub async fn echo(&mut self, text: &str) -> Check {
        self.send(&msg(op::TEXT, text.as_bytes())).await?;
        self.expect_text(text, STEP).await
    }

    /// Expects a close frame with `code` (pings and data before it are
    /// skipped); returns its reason.
    pub async fn expect_close(&mut self, code: u16, wait: Duration) -> Check<String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = self
                .frame(left)
                .await
                .map_err(|e| format!("expected a close frame with {code}, got {e}"))?;
            if f.opcode == op::CLOSE {
                return if f.close_code() == code {
                    Ok(String::from_utf8_lossy(f.payload.get(2..).unwrap_or_default()).into())
                } else {
                    Err(format!(
                        "expected close code {code}, got {}",
                        f.close_code()
                    ))
                };
            }
        }
    }

    /// Expects the host to end the stream cleanly (FIN, no reset) within
    /// `wait`, with no bytes before it.
    pub async fn expect_eof(&mut self, wait: Duration) -> Check {
        match self.frame(wait).await {
            Err(NoFrame::Eof) => Ok(()),
            Ok(f) => Err(format!(
                "expected the host to close the stream, got a frame (opcode {})",
                f.opcode
            )),
            Err(e) => Err(format!("expected the host to close the stream, got {e}")),
        }
    }
}

/// Parses one server frame from the front of `buf`: `None` if incomplete.
fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, NoFrame> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b1 & 0x80 != 0 {
        return Err(NoFrame::Bad("the server masked a frame".into()));
    }
    if b0 & 0x70 != 0 {
        return Err(NoFrame::Bad(format!("reserved bits set: {b0:#04x}")));
    }
    let (len, at) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > 16 << 20 {
        return Err(NoFrame::Bad(format!("a {len}-byte frame")));
    }
    let end = at + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            payload: buf[at..end].to_vec(),
        },
        end,
    )))
}

/// Connects, sends `request` and reads the response head.
pub async fn request(addr: SocketAddr, request: &[u8], wait: Duration) -> Check<(Head, Conn)> {
    let mut conn = Conn::new(connect(addr).await?);
    conn.send(request).await?;
    let head = conn.read_head(wait).await?;
    Ok((head, conn))
}

/// Expects `status` for `request`, then the host closing the connection.
pub async fn expect_status(addr: SocketAddr, req: &[u8], status: u16, wait: Duration) -> Check {
    let (head, mut conn) = request(addr, req, wait).await?;
    if head.status != status {
        return Err(format!(
            "expected status {status}, got {}",
            head.text.lines().next().unwrap_or_default()
        ));
    }
    // Skip a body, then the host must close.
    let deadline = Instant::now() + STEP;
    loop {
        match conn.fill(deadline).await {
            Ok(true) => {
                if conn.buf.len() > 1 << 20 {
                    return Err("more than 1 MiB after the response".into());
                }
            }
            Ok(false) => return Ok(()),
            Err(e) => return Err(format!("after the {status} response: {e}")),
        }
    }
}

/// Opens a WebSocket on `path`: expects `101` with the right accept value.
pub async fn open(addr: SocketAddr, path: &str) -> Check<Conn> {
    let (head, conn) = request(addr, &upgrade_request(path), STEP).await?;
    check_101(&head)?;
    Ok(conn)
}

/// Checks a `101` response head.
pub fn check_101(head: &Head) -> Check {
    if head.status != 101 {
        return Err(format!(
            "expected 101, got {}",
            head.text.lines().next().unwrap_or_default()
        ));
    }
    if !head.has("Sec-WebSocket-Accept", ACCEPT) {
        return Err(format!(
            "101 without the right Sec-WebSocket-Accept: {:?}",
            head.text
        ));
    }
    Ok(())
}
