//! Arbitrary bytes fed into a `Connection` in arbitrary chunks.
//!
//! Must never panic. Also checks, as a differential oracle, that the chunked
//! run gives the same events, output and state as feeding everything at
//! once; that text events are UTF-8; that nothing follows the close event;
//! and that the output is a sequence of well-formed unmasked server frames.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_edge::Parsed;
use ws_edge::protocol::{Config, Connection, Event, FrameHeader, State};

#[derive(Debug, PartialEq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

/// A deterministic echo handler that sometimes closes.
fn handle(e: Event<'_>, out: &mut ws_edge::protocol::Outbox<'_>, log: &mut Vec<Ev>) {
    assert!(
        !matches!(log.last(), Some(Ev::Close(..))),
        "event after close"
    );
    let ev = match e {
        Event::Text(s) => {
            assert!(std::str::from_utf8(s.as_bytes()).is_ok());
            if s.starts_with('q') {
                let _ = out.close(4000, s);
            } else {
                let _ = out.send_text(s);
            }
            Ev::Text(s.to_owned())
        }
        Event::Binary(b) => {
            let _ = out.send_binary(b);
            Ev::Binary(b.to_vec())
        }
        Event::Ping(p) => {
            let _ = out.ping(p);
            Ev::Ping(p.to_vec())
        }
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close(c, r) => {
            assert!(out.send_text("x").is_err());
            Ev::Close(c.as_u16(), r.to_owned())
        }
    };
    log.push(ev);
}

fn config(flags: u8) -> Config {
    let mut c = Config::default();
    if flags & 1 != 0 {
        c.max_frame_payload = 200;
        c.max_message = 500;
    }
    if flags & 2 != 0 {
        c.fragment_threshold = Some(7);
    }
    if flags & 4 != 0 {
        c.auto_pong = false;
    }
    if flags & 8 != 0 {
        c.high_water_mark = 64;
    }
    c
}

fn check_output(mut b: &[u8]) {
    while !b.is_empty() {
        let Parsed::Complete {
            consumed: n,
            value: h,
        } = FrameHeader::parse(b).expect("server header parses")
        else {
            panic!("incomplete server header")
        };
        assert!(h.mask.is_none());
        let len = h.payload_len as usize;
        assert!(b.len() >= n + len, "truncated server frame");
        b = &b[n + len..];
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (flags, mut seed) = (data[0], u16::from_le_bytes([data[1], data[2]]) as u32 | 1);
    let stream = &data[3..];
    let cfg = config(flags);

    // One shot.
    let mut one = Connection::new(cfg.clone(), 0);
    let mut log1 = Vec::new();
    one.receive(stream, 0, |e, o| handle(e, o, &mut log1));

    // Chunked, sizes from a xorshift PRNG; in place with flag 32, and with
    // flag 64 through `receive_owned` (an echo may go out from the input
    // buffer), taking the output after every chunk so that the buffer can
    // be adopted again, unless a small high-water mark makes taking it
    // change what is refused.
    let mut two = Connection::new(cfg, 0);
    let mut log2 = Vec::new();
    let mut out2 = Vec::new();
    let drain = flags & 64 != 0 && flags & 8 == 0;
    let mut rest = stream;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = 1 + (seed as usize % if flags & 16 != 0 { 4 } else { 64 });
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        if flags & 64 != 0 {
            let mut owned = piece.to_vec();
            two.receive_owned(&mut owned, 0, |e, o| handle(e, o, &mut log2));
            if drain {
                out2.extend_from_slice(&two.take_output());
            }
        } else if flags & 32 != 0 {
            let mut owned = piece.to_vec();
            two.receive_mut(&mut owned, 0, |e, o| handle(e, o, &mut log2));
        } else {
            two.receive(piece, 0, |e, o| handle(e, o, &mut log2));
        }
    }
    out2.extend_from_slice(two.output());

    assert_eq!(log1, log2);
    assert_eq!(one.output(), &out2[..]);
    assert_eq!(one.state(), two.state());
    assert_eq!(one.is_closed(), matches!(log1.last(), Some(Ev::Close(..))));
    check_output(one.output());

    // Timers and teardown must not panic either.
    let mut now = 0;
    for _ in 0..4 {
        match one.deadline() {
            Some(d) => now = d,
            None => break,
        }
        one.tick(now, |e, o| handle(e, o, &mut log1));
    }
    one.close(1001, "bye", now);
    one.disconnected(now, |e, o| handle(e, o, &mut log1));
    assert!(matches!(one.state(), State::Closed(_)));
    let _ = one.take_output();
});
