//! A WebSocket client that negotiates permessage-deflate (RFC 7692), for the
//! `deflate-json` / `deflate-random` scenarios and `idle --deflate`.
//! tokio-tungstenite has no permessage-deflate, so this speaks the frames
//! itself with the ws-edge core's codec in the client's role, and counts the
//! bytes each way on the wire.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_edge::Parsed;
use ws_edge::deflate::{PerMessageDeflate, parse_response};
use ws_edge::protocol::{Extension, FrameHeader, OpCode, RSV1, write_frame};

/// What Chromium offers.
const OFFER: &str = "permessage-deflate; client_max_window_bits";
const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];

/// A connection offering permessage-deflate: negotiated, or (only when
/// connected with `require` off) declined and plain.
pub struct DeflateClient {
    tcp: TcpStream,
    /// `None`: the server declined; messages go plain.
    codec: Option<PerMessageDeflate>,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// Bytes the server sent after the handshake (frame headers included).
    pub bytes_in: u64,
    /// Bytes we sent after the handshake.
    pub bytes_out: u64,
}

impl DeflateClient {
    /// Connects to `url` (`ws://HOST:PORT/...`) offering permessage-deflate.
    /// The client compresses every message at level 1, with context
    /// takeover, as browsers do (they compress at zlib's default level).
    pub async fn connect(url: &str) -> Result<DeflateClient> {
        Self::connect_with(url, true).await
    }

    /// [`DeflateClient::connect`]; with `require` off a server that declines
    /// is served plain (the baseline of `idle --deflate`).
    pub async fn connect_with(url: &str, require: bool) -> Result<DeflateClient> {
        let rest = url.strip_prefix("ws://").context("ws:// URL")?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut tcp = TcpStream::connect(hostport).await?;
        tcp.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {OFFER}\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(4096);
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                bail!("response head too long");
            }
            let mut chunk = [0u8; 2048];
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                bail!("server closed during the handshake");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
        if !head.starts_with("HTTP/1.1 101") {
            bail!(
                "handshake refused: {}",
                head.lines().next().unwrap_or_default()
            );
        }
        let answer = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        let codec = match answer {
            Some(answer) => {
                let params = parse_response(&answer, 0, 1)
                    .map_err(|e| anyhow::anyhow!("bad answer {answer:?}: {e}"))?;
                Some(PerMessageDeflate::client(params))
            }
            None if require => bail!("the server did not negotiate permessage-deflate"),
            None => None,
        };
        buf.drain(..end);
        Ok(DeflateClient {
            tcp,
            codec,
            buf,
            scratch: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
        })
    }

    /// Sends one message, compressed (unless compression does not pay).
    pub async fn send(&mut self, opcode: OpCode, payload: &[u8]) -> Result<()> {
        self.scratch.clear();
        let rsv = self
            .codec
            .as_mut()
            .and_then(|c| c.encode_message(opcode, payload, &mut self.scratch));
        let body: &[u8] = if rsv.is_some() {
            &self.scratch
        } else {
            payload
        };
        let mut frame = Vec::with_capacity(body.len() + 14);
        write_frame(&mut frame, true, opcode, Some(MASK), body);
        if rsv.is_some() {
            frame[0] |= RSV1;
        }
        self.tcp.write_all(&frame).await?;
        self.bytes_out += frame.len() as u64;
        Ok(())
    }

    /// Receives the next data message (control frames are skipped),
    /// inflated.
    pub async fn recv(&mut self) -> Result<(OpCode, Vec<u8>)> {
        let mut message: Option<(OpCode, bool, Vec<u8>)> = None;
        loop {
            let parsed = FrameHeader::parse(&self.buf).map_err(|e| anyhow::anyhow!("{e}"))?;
            let Parsed::Complete { consumed, value: h } = parsed else {
                self.fill().await?;
                continue;
            };
            let len = usize::try_from(h.payload_len)?;
            if self.buf.len() < consumed + len {
                self.fill().await?;
                continue;
            }
            let payload = self.buf[consumed..consumed + len].to_vec();
            self.buf.drain(..consumed + len);
            self.bytes_in += (consumed + len) as u64;
            if h.opcode.is_control() {
                if h.opcode == OpCode::Close {
                    bail!("server closed the connection");
                }
                continue;
            }
            let (opcode, compressed, mut data) = match message.take() {
                Some(m) => m,
                None => (h.opcode, h.rsv & RSV1 != 0, Vec::new()),
            };
            data.extend_from_slice(&payload);
            if !h.fin {
                message = Some((opcode, compressed, data));
                continue;
            }
            if !compressed {
                return Ok((opcode, data));
            }
            let mut out = Vec::with_capacity(data.len() * 4);
            self.codec
                .as_mut()
                .context("RSV1 without permessage-deflate")?
                .decode(opcode, RSV1, &data, true, usize::MAX, &mut out)
                .map_err(|e| anyhow::anyhow!("inflating the server's message: {e}"))?;
            return Ok((opcode, out));
        }
    }

    async fn fill(&mut self) -> Result<()> {
        let start = self.buf.len();
        self.buf.resize(start + 64 * 1024, 0);
        let n = self.tcp.read(&mut self.buf[start..]).await?;
        self.buf.truncate(start + n);
        if n == 0 {
            bail!("server closed the TCP connection");
        }
        Ok(())
    }

    /// Sends `payload` and checks the echo.
    pub async fn round_trip(&mut self, opcode: OpCode, payload: &[u8]) -> Result<()> {
        self.send(opcode, payload).await?;
        let (op, data) = self.recv().await?;
        if op != opcode || data != payload {
            bail!("echo differs from the message sent");
        }
        Ok(())
    }

    /// Sends a close frame and waits (bounded by the caller) for the
    /// server's close and TCP close.
    pub async fn close(mut self) -> Result<()> {
        let mut frame = Vec::new();
        write_frame(
            &mut frame,
            true,
            OpCode::Close,
            Some(MASK),
            &1000u16.to_be_bytes(),
        );
        self.tcp.write_all(&frame).await?;
        let mut scratch = [0u8; 4096];
        while self.tcp.read(&mut scratch).await? != 0 {}
        Ok(())
    }
}

/// 64 KiB of JSON-like text (records of a chat/feed API with varied
/// words and numbers): what permessage-deflate is for. Differs per `seed`.
pub fn json_text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "alpha", "bravo", "update", "price", "status", "online", "offline", "message", "room",
        "lobby", "user", "delta", "ticker", "volume", "open", "close", "high", "low", "event",
        "sensor", "reading", "ok", "warning", "error",
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = String::with_capacity(len + 256);
    s.push('[');
    let mut id = 0u64;
    while s.len() < len {
        let r = next();
        let w = |k: u64| WORDS[(k % WORDS.len() as u64) as usize];
        s.push_str(&format!(
            "{{\"id\":{id},\"ts\":{},\"user\":\"{}{}\",\"type\":\"{}\",\"value\":{}.{:02},\"text\":\"{} {} {}\"}},",
            1_764_000_000_000u64 + (r >> 40),
            w(r >> 3),
            (r >> 9) % 1000,
            w(r >> 17),
            (r >> 23) % 10_000,
            (r >> 37) % 100,
            w(r >> 43),
            w(r >> 48),
            w(r >> 53),
        ));
        id += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

/// `len` random bytes (incompressible). Differs per `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let j = json_text(65536, 1);
        assert_eq!(j.len(), 65536);
        assert!(std::str::from_utf8(&j).is_ok());
        assert_ne!(json_text(65536, 2), j);
        assert_eq!(random_bytes(100, 1).len(), 100);
    }
}
