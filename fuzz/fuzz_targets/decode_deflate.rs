//! A `Connection` with permessage-deflate negotiated, fed a client's frames:
//! valid compressed messages (fragmented or not), hostile compressed
//! payloads, truncated streams, bombs, plain messages and RSV1 where the RFC
//! forbids it, in arbitrary chunks.
//!
//! Must never panic. Oracles: the chunked run gives the same events, output
//! and state as feeding everything at once; no message exceeds the message
//! limit; text is UTF-8; the server's output is well-formed frames whose
//! compressed messages inflate (with the client's inflater) to exactly what
//! the echo handler sent; and when every message the client sent was valid
//! and within the limit, the handler saw exactly those messages.

#![no_main]

use arbitrary::Arbitrary;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use libfuzzer_sys::fuzz_target;
use ws_edge::Parsed;
use ws_edge::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate, negotiate};
use ws_edge::protocol::{
    Config, Connection, Event, FrameHeader, OpCode, Outbox, RSV1, State, write_frame,
};

const KEY: [u8; 4] = [0xa1, 0x0b, 0x5c, 0x3e];

#[derive(Arbitrary, Debug)]
enum Op {
    /// A valid compressed message from the client's compressor, split into
    /// `frames` frames.
    Compressed { text: bool, data: Vec<u8>, frames: u8 },
    /// A plain message.
    Plain { text: bool, data: Vec<u8> },
    /// Any single frame, RSV bits and opcode as given: hostile compressed
    /// payloads, RSV1 on control and continuation frames.
    Raw { first: u8, payload: Vec<u8> },
    /// A compressed message with `cut` bytes missing at the end.
    Truncated { data: Vec<u8>, cut: u8 },
    /// `len` bytes of one value, compressed: small on the wire, large when
    /// inflated.
    Bomb { len: u32, byte: u8, frames: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    flags: u8,
    seed: u16,
    ops: Vec<Op>,
}

#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

const OFFERS: [&str; 4] = [
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=8; client_max_window_bits=10",
];

fn setup(flags: u8) -> (Config, DeflateParams) {
    let mut c = Config::default();
    if flags & 1 != 0 {
        c.max_frame_payload = 300;
        c.max_message = 1000;
    } else {
        c.max_message = 16 * 1024;
    }
    if flags & 2 != 0 {
        c.fragment_threshold = Some(50);
    }
    let config = DeflateConfig {
        threshold: if flags & 4 != 0 { 0 } else { 64 },
        level: if flags & 8 != 0 { 6 } else { 1 },
        ..DeflateConfig::default()
    };
    let params = negotiate(OFFERS[usize::from(flags >> 4) % OFFERS.len()], &config)
        .expect("the offers are acceptable");
    (c, params)
}

/// The client's compressor: the negotiated client window and takeover.
struct Client {
    z: Compress,
    bits: u8,
    takeover: bool,
}

impl Client {
    fn new(p: &DeflateParams) -> Self {
        let bits = p.client_max_window_bits.clamp(9, 15);
        Client {
            z: Compress::new_with_window_bits(Compression::new(1), false, bits),
            bits,
            takeover: !p.client_no_context_takeover,
        }
    }

    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.takeover {
            self.z = Compress::new_with_window_bits(Compression::new(1), false, self.bits);
        }
        let mut out = Vec::with_capacity(data.len() + data.len() / 100 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity() + 64);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("compress");
            input = &input[(self.z.total_in() - before) as usize..];
            if input.is_empty() && out.capacity() - out.len() >= 64 {
                break;
            }
        }
        if out.is_empty() {
            // Nothing new since the last flush: an empty message is one
            // empty stored block's header (RFC 7692 §7.2.3.6).
            return vec![0x00];
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }
}

/// Appends `payload` as a message of up to `frames` frames, RSV1 on the
/// first if `rsv1`.
fn message(wire: &mut Vec<u8>, opcode: OpCode, rsv1: bool, payload: &[u8], frames: u8) {
    let n = usize::from(frames % 4) + 1;
    let size = payload.len().div_ceil(n).max(1);
    let mut chunks: Vec<&[u8]> = payload.chunks(size).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for (i, c) in chunks.iter().enumerate() {
        let op = if i == 0 { opcode } else { OpCode::Continuation };
        let start = wire.len();
        write_frame(wire, i + 1 == chunks.len(), op, Some(KEY), c);
        if i == 0 && rsv1 {
            wire[start] |= RSV1;
        }
    }
}

/// Builds the client's bytes; also the messages the handler must see when
/// every op was valid and within `max` (else `None`).
fn build(ops: &[Op], params: &DeflateParams, max: usize) -> (Vec<u8>, Option<Vec<Ev>>) {
    let mut client = Client::new(params);
    let mut wire = Vec::new();
    let mut expected = Some(Vec::new());
    for op in ops {
        match op {
            Op::Compressed { text, data, frames } => {
                let data = if *text {
                    String::from_utf8_lossy(data).into_owned().into_bytes()
                } else {
                    data.clone()
                };
                let z = client.compress(&data);
                let opcode = if *text { OpCode::Text } else { OpCode::Binary };
                message(&mut wire, opcode, true, &z, *frames);
                if data.len() > max || z.len() > 300 {
                    expected = None;
                }
                if let Some(e) = &mut expected {
                    e.push(if *text {
                        Ev::Text(data)
                    } else {
                        Ev::Binary(data)
                    });
                }
            }
            Op::Plain { text, data } => {
                let data = if *text {
                    String::from_utf8_lossy(data).into_owned().into_bytes()
                } else {
                    data.clone()
                };
                let opcode = if *text { OpCode::Text } else { OpCode::Binary };
                message(&mut wire, opcode, false, &data, 0);
                if data.len() > 300 {
                    expected = None;
                }
                if let Some(e) = &mut expected {
                    e.push(if *text {
                        Ev::Text(data)
                    } else {
                        Ev::Binary(data)
                    });
                }
            }
            Op::Raw { first, payload } => {
                let start = wire.len();
                write_frame(&mut wire, true, OpCode::Binary, Some(KEY), payload);
                wire[start] = *first;
                expected = None;
            }
            Op::Truncated { data, cut } => {
                let mut z = client.compress(data);
                z.truncate(z.len().saturating_sub(usize::from(*cut) + 1));
                message(&mut wire, OpCode::Binary, true, &z, 0);
                expected = None;
            }
            Op::Bomb { len, byte, frames } => {
                // Past either message limit, small enough to keep the
                // executions fast (the client's compressor slides its
                // window every 32 KiB).
                let len = (*len as usize) % (48 * 1024);
                let z = client.compress(&vec![*byte; len]);
                message(&mut wire, OpCode::Binary, true, &z, *frames);
                expected = None;
            }
        }
    }
    (wire, expected)
}

fn handle(e: Event<'_>, out: &mut Outbox<'_>, log: &mut Vec<Ev>, max: usize) {
    assert!(
        !matches!(log.last(), Some(Ev::Close(..))),
        "event after close"
    );
    let ev = match e {
        Event::Text(s) => {
            assert!(s.len() <= max, "{} > {max}", s.len());
            let _ = out.send_text(s);
            Ev::Text(s.as_bytes().to_vec())
        }
        Event::Binary(b) => {
            assert!(b.len() <= max, "{} > {max}", b.len());
            let _ = out.send_binary(b);
            Ev::Binary(b.to_vec())
        }
        Event::Ping(p) => Ev::Ping(p.to_vec()),
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close(c, r) => Ev::Close(c.as_u16(), r.to_owned()),
    };
    log.push(ev);
}

/// Reads the server's frames back as the client would: the data messages,
/// compressed ones inflated with the client's inflater.
fn read_output(mut b: &[u8], p: &DeflateParams) -> Vec<Ev> {
    let bits = p.server_max_window_bits.clamp(9, 15);
    let mut inflater = Decompress::new_with_window_bits(false, bits);
    let mut msgs = Vec::new();
    let mut cur: Option<(OpCode, bool, Vec<u8>)> = None;
    while !b.is_empty() {
        let Parsed::Complete { consumed, value: h } =
            FrameHeader::parse(b).expect("server header parses")
        else {
            panic!("incomplete server header")
        };
        assert!(h.mask.is_none());
        let len = h.payload_len as usize;
        assert!(b.len() >= consumed + len, "truncated server frame");
        let payload = &b[consumed..consumed + len];
        b = &b[consumed + len..];
        if h.opcode.is_control() {
            assert_eq!(h.rsv, 0);
            continue;
        }
        if h.opcode != OpCode::Continuation {
            assert!(cur.is_none(), "interleaved server messages");
            assert!(h.rsv == 0 || h.rsv == RSV1);
            assert!(
                h.rsv == 0 || p.server_max_window_bits >= 9,
                "compressed with an 8-bit window"
            );
            cur = Some((h.opcode, h.rsv == RSV1, Vec::new()));
        } else {
            assert_eq!(h.rsv, 0, "RSV1 on a server continuation frame");
        }
        let (opcode, compressed, mut data) = cur.take().expect("a message to continue");
        data.extend_from_slice(payload);
        if !h.fin {
            cur = Some((opcode, compressed, data));
            continue;
        }
        let data = if compressed {
            if p.server_no_context_takeover {
                inflater = Decompress::new_with_window_bits(false, bits);
            }
            data.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(data.len() * 8 + 1024);
            let before = inflater.total_in();
            loop {
                let used = (inflater.total_in() - before) as usize;
                if out.capacity() - out.len() < 1024 {
                    out.reserve(out.capacity());
                }
                inflater
                    .decompress_vec(&data[used..], &mut out, FlushDecompress::Sync)
                    .expect("the server's compressed output inflates");
                if (inflater.total_in() - before) as usize == data.len()
                    && out.capacity() > out.len()
                {
                    break;
                }
            }
            out
        } else {
            data
        };
        msgs.push(if opcode == OpCode::Text {
            Ev::Text(data)
        } else {
            Ev::Binary(data)
        });
    }
    msgs
}

fn connection(config: &Config, params: &DeflateParams) -> Connection {
    Connection::with_extension(
        config.clone(),
        Box::new(PerMessageDeflate::new(params.clone())),
        0,
    )
}

fuzz_target!(|input: Input| {
    let (config, params) = setup(input.flags);
    let max = config.max_message as usize;
    let (wire, expected) = build(&input.ops, &params, max);

    let mut one = connection(&config, &params);
    let mut log1 = Vec::new();
    one.receive(&wire, 0, |e, o| handle(e, o, &mut log1, max));

    let mut two = connection(&config, &params);
    let mut log2 = Vec::new();
    let mut seed = u32::from(input.seed) | 1;
    let mut rest = &wire[..];
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = 1 + (seed as usize % if input.flags & 64 != 0 { 5 } else { 700 });
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        if input.flags & 128 != 0 {
            let mut owned = piece.to_vec();
            two.receive_mut(&mut owned, 0, |e, o| handle(e, o, &mut log2, max));
        } else {
            two.receive(piece, 0, |e, o| handle(e, o, &mut log2, max));
        }
    }

    assert_eq!(log1, log2);
    assert_eq!(one.output(), two.output());
    assert_eq!(one.state(), two.state());

    // What the echo sent is what the client reads back.
    let echoed: Vec<Ev> = log1
        .iter()
        .filter(|e| matches!(e, Ev::Text(_) | Ev::Binary(_)))
        .cloned()
        .collect();
    let read = read_output(one.output(), &params);
    // Sends refused for backpressure are missing from the output, in order.
    let mut it = echoed.iter();
    for m in &read {
        assert!(it.any(|e| e == m), "server sent {m:?} that was not echoed");
    }

    if let Some(expected) = expected {
        let data: Vec<Ev> = log1
            .iter()
            .filter(|e| !matches!(e, Ev::Close(..)))
            .cloned()
            .collect();
        assert_eq!(data, expected);
        assert!(matches!(one.state(), State::Open));
    }

    one.close(1001, "bye", 0);
    one.disconnected(0, |e, o| handle(e, o, &mut log1, max));
    assert!(matches!(one.state(), State::Closed(_)));
});
