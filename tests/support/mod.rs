//! Helpers shared by the integration test files. Each test file uses only
//! some of them.

#![allow(dead_code, reason = "each test file uses only some helpers")]

use ws_edge::protocol::Event;

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
