//! Helpers shared by the integration test files. Each test file uses only
//! some of them.

#![allow(dead_code, reason = "each test file uses only some helpers")]

use ws_edge::Parsed;
use ws_edge::protocol::{Event, FrameHeader, OpCode, write_frame};

/// An owned copy of an [`Event`], so tests can collect and compare events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

/// Copies a borrowed event out of the callback.
pub fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Text(s) => Ev::Text(s.to_owned()),
        Event::Binary(b) => Ev::Binary(b.to_vec()),
        Event::Ping(b) => Ev::Ping(b.to_vec()),
        Event::Pong(b) => Ev::Pong(b.to_vec()),
        Event::Close(c, r) => Ev::Close(c.as_u16(), r.to_owned()),
    }
}

/// A minimal valid upgrade head for `/ws` with extra header lines.
pub fn head_with(extra: &[&str]) -> Vec<u8> {
    let mut s = String::from(
        "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n",
    );
    for line in extra {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Parses a whole frame header at the start of `buf`: the header and its
/// length. Panics if the header is invalid or incomplete.
pub fn header(buf: &[u8]) -> (FrameHeader, usize) {
    match FrameHeader::parse(buf).expect("valid header") {
        Parsed::Complete { consumed, value } => (value, consumed),
        Parsed::Incomplete => panic!("incomplete header"),
    }
}

/// Appends a whole frame with RSV bits to `out`, the payload masked with
/// `mask` if one is given: what an extension-speaking client sends. The
/// RSV bits sit in the first byte, outside the masked payload.
pub fn write_frame_rsv(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let start = out.len();
    write_frame(out, fin, opcode, mask, payload);
    out[start] |= rsv & 0x70;
}
