//! permessage-deflate through the handshake and the connection: negotiation
//! in the 101, compressed messages in and out, the RFC 7692 frame rules and
//! the message limit on inflated bytes.

use flate2::{Compress, Compression, FlushCompress};
use ws_edge::Parsed;
use ws_edge::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate, negotiate};
use ws_edge::handshake::{AcceptOptions, HandshakeConfig, Request, Transport};
use ws_edge::protocol::{
    CloseCode, Config, Connection, Event, OpCode, ProtocolError, RSV1, State, write_frame,
};

mod support;
use support::{Ev, head_with, own, write_frame_rsv};

const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

fn request(extra: &[&str]) -> Request {
    let head = head_with(extra);
    let Parsed::Complete { value, .. } =
        Request::from_head(&head, Transport::default(), &HandshakeConfig::default())
    else {
        panic!("complete head")
    };
    value.expect("valid request")
}

fn params(offer: &str, config: &DeflateConfig) -> DeflateParams {
    negotiate(offer, config).expect("accepted")
}

fn conn(offer: &str, config: &DeflateConfig, limits: Config) -> Connection {
    Connection::with_extension(
        limits,
        Box::new(PerMessageDeflate::new(params(offer, config))),
        0,
    )
}

/// What a client compressor sends for `msg` (sync flush, tail removed).
fn compress(z: &mut Compress, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 1024);
    z.compress_vec(msg, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn client_compressor() -> Compress {
    Compress::new_with_window_bits(Compression::new(6), false, 15)
}

/// Frames `payload` as a client message of frames of at most `frag` bytes,
/// RSV1 on the first.
fn client_message(opcode: OpCode, rsv: u8, payload: &[u8], frag: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[]]
    } else {
        payload.chunks(frag).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        let op = if i == 0 { opcode } else { OpCode::Continuation };
        let r = if i == 0 { rsv } else { 0 };
        write_frame_rsv(&mut wire, i + 1 == chunks.len(), r, op, Some(KEY), c);
    }
    wire
}

fn feed(c: &mut Connection, data: &[u8]) -> Vec<Ev> {
    let mut evs = Vec::new();
    c.receive(data, 0, |e, _| evs.push(own(e)));
    evs
}

/// Echoes every message back, like the bundled echo component.
fn feed_echo(c: &mut Connection, data: &[u8], chunk: usize) -> Vec<Ev> {
    let mut evs = Vec::new();
    for piece in data.chunks(chunk) {
        c.receive(piece, 0, |e, out| {
            match e {
                Event::Text(t) => out.send_text(t).unwrap(),
                Event::Binary(b) => out.send_binary(b).unwrap(),
                _ => {}
            }
            evs.push(own(e));
        });
    }
    evs
}

/// The server's frames: (fin, rsv, opcode, payload).
fn server_frames(mut b: &[u8]) -> Vec<(bool, u8, OpCode, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (h, n) = support::header(b);
        let len = h.payload_len as usize;
        out.push((h.fin, h.rsv, h.opcode, b[n..n + len].to_vec()));
        b = &b[n + len..];
    }
    out
}

/// Reassembles and inflates the server's messages as a client would.
fn client_reads(output: &[u8], inflater: &mut PerMessageDeflate) -> Vec<(OpCode, bool, Vec<u8>)> {
    use ws_edge::protocol::Extension;
    let mut msgs = Vec::new();
    let mut cur: Option<(OpCode, u8, Vec<u8>)> = None;
    for (fin, rsv, op, payload) in server_frames(output) {
        if op.is_control() {
            continue;
        }
        let (op0, rsv0, mut buf) = cur.take().unwrap_or((op, rsv, Vec::new()));
        buf.extend_from_slice(&payload);
        if fin {
            let data = if rsv0 & RSV1 != 0 {
                let mut out = Vec::new();
                inflater
                    .decode(op0, rsv0, &buf, true, usize::MAX, &mut out)
                    .unwrap();
                out
            } else {
                buf
            };
            msgs.push((op0, rsv0 & RSV1 != 0, data));
        } else {
            cur = Some((op0, rsv0, buf));
        }
    }
    msgs
}

fn json(n: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"seq\":{i},\"room\":\"lobby\",\"text\":\"message number {}\"}},",
            i % 13
        ));
        i += 1;
    }
    s.truncate(n);
    s
}

#[test]
fn accept_answers_the_first_acceptable_offer() {
    let mut r = request(&[
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=20",
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover, foo",
    ]);
    let accepted = r
        .accept(&AcceptOptions::new().deflate(DeflateConfig::default()))
        .unwrap();
    assert_eq!(
        accepted.response.header("Sec-WebSocket-Extensions"),
        Some(&b"permessage-deflate; server_no_context_takeover"[..])
    );
    assert!(accepted.deflate.unwrap().server_no_context_takeover);
}

#[test]
fn off_by_default_and_without_an_offer() {
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits";
    let accepted = request(&[offer]).accept(&AcceptOptions::new()).unwrap();
    assert_eq!(accepted.response.header("Sec-WebSocket-Extensions"), None);
    assert_eq!(accepted.deflate, None);
    let accepted = request(&[])
        .accept(&AcceptOptions::new().deflate(DeflateConfig::default()))
        .unwrap();
    assert_eq!(accepted.response.header("Sec-WebSocket-Extensions"), None);
    assert_eq!(accepted.deflate, None);
}

#[test]
fn compressed_messages_round_trip_in_every_shape() {
    let limits = Config {
        fragment_threshold: Some(4096),
        ..Config::default()
    };
    for config in [DeflateConfig::default(), DeflateConfig::low_memory()] {
        let mut c = conn("permessage-deflate", &config, limits.clone());
        // A client that honours client_no_context_takeover starts each
        // message afresh.
        let fresh = config.client_no_context_takeover;
        let mut client_z = client_compressor();
        let compress = |z: &mut Compress, m: &[u8]| {
            if fresh {
                *z = client_compressor();
            }
            compress(z, m)
        };
        let mut client_inflater = PerMessageDeflate::client(params("permessage-deflate", &config));
        let small = json(100);
        let big = json(60_000);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let mut wire = Vec::new();
        // Compressed text in one frame, fragmented in 1000-byte frames, a
        // plain text, incompressible binary compressed, an empty compressed
        // message.
        let z = compress(&mut client_z, small.as_bytes());
        wire.extend(client_message(OpCode::Text, RSV1, &z, usize::MAX));
        let z = compress(&mut client_z, big.as_bytes());
        wire.extend(client_message(OpCode::Text, RSV1, &z, 1000));
        wire.extend(client_message(OpCode::Text, 0, big.as_bytes(), 7000));
        let z = compress(&mut client_z, &noise);
        wire.extend(client_message(OpCode::Binary, RSV1, &z, 3000));
        wire.extend(client_message(OpCode::Binary, RSV1, &[0x00], usize::MAX));
        for chunk in [usize::MAX, 1337, 1] {
            let mut c2 = conn("permessage-deflate", &config, limits.clone());
            let evs = feed_echo(&mut c2, &wire, chunk);
            assert_eq!(
                evs,
                [
                    Ev::Text(small.clone()),
                    Ev::Text(big.clone()),
                    Ev::Text(big.clone()),
                    Ev::Binary(noise.clone()),
                    Ev::Binary(Vec::new()),
                ],
                "chunks of {chunk}"
            );
            if chunk == 1 {
                c = c2;
            }
        }
        // What the echo sent back: the small text under the threshold and
        // the random bytes plain, the large texts compressed and
        // fragmented, all readable by the client.
        let out = c.take_output();
        let frames = server_frames(&out);
        assert!(
            frames
                .iter()
                .filter(|f| f.2 == OpCode::Continuation)
                .count()
                > 0
        );
        assert!(
            frames
                .iter()
                .all(|f| f.2 != OpCode::Continuation || f.1 == 0)
        );
        let msgs = client_reads(&out, &mut client_inflater);
        let got: Vec<(bool, Vec<u8>)> = msgs.into_iter().map(|m| (m.1, m.2)).collect();
        assert_eq!(
            got,
            [
                (false, small.clone().into_bytes()),
                (true, big.clone().into_bytes()),
                (true, big.clone().into_bytes()),
                (false, noise.clone()),
                (false, Vec::new()),
            ]
        );
        // Compressed, the big text took far fewer bytes.
        let compressed: usize = frames
            .iter()
            .filter(|f| f.2 != OpCode::Binary)
            .map(|f| f.3.len())
            .sum();
        assert!(compressed < big.len() / 2, "{compressed}");
    }
}

#[test]
fn a_small_frame_that_inflates_past_the_limit_closes_with_1009() {
    let limits = Config {
        max_message: 1 << 20,
        ..Config::default()
    };
    let mut c = conn("permessage-deflate", &DeflateConfig::default(), limits);
    let mut z = Compress::new_with_window_bits(Compression::new(9), false, 15);
    let bomb = compress(&mut z, &vec![b'a'; 64 << 20]);
    assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
    // Only the first 16 KiB of the bomb, not even the whole message.
    let mut wire = Vec::new();
    write_frame_rsv(
        &mut wire,
        false,
        RSV1,
        OpCode::Text,
        Some(KEY),
        &bomb[..16 * 1024],
    );
    let evs = feed(&mut c, &wire);
    let err = ProtocolError::MessageTooLarge;
    assert_eq!(evs, [Ev::Close(1009, err.reason().to_owned())]);
    assert!(matches!(c.state(), State::Closed(_)));
    let frames = server_frames(&c.take_output());
    assert_eq!(frames.last().unwrap().3[..2], 1009u16.to_be_bytes());
}

#[test]
fn a_message_at_the_limit_passes() {
    let limits = Config {
        max_message: 100_000,
        ..Config::default()
    };
    let mut c = conn(
        "permessage-deflate",
        &DeflateConfig::default(),
        limits.clone(),
    );
    let mut z = client_compressor();
    let m = json(100_000);
    let wire = client_message(OpCode::Text, RSV1, &compress(&mut z, m.as_bytes()), 500);
    assert_eq!(feed(&mut c, &wire), [Ev::Text(m.clone())]);
    let mut c = conn("permessage-deflate", &DeflateConfig::default(), limits);
    let mut z = client_compressor();
    let m = json(100_001);
    let wire = client_message(OpCode::Text, RSV1, &compress(&mut z, m.as_bytes()), 500);
    assert_eq!(
        feed(&mut c, &wire),
        [Ev::Close(1009, "message too large".into())]
    );
}

#[test]
fn rsv1_rules() {
    let d = DeflateConfig::default();
    let mut z = client_compressor();
    let hello = compress(&mut z, b"hello");
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        // RSV1 on a continuation frame.
        (
            {
                let mut w = Vec::new();
                write_frame_rsv(&mut w, false, RSV1, OpCode::Text, Some(KEY), &hello[..2]);
                write_frame_rsv(
                    &mut w,
                    true,
                    RSV1,
                    OpCode::Continuation,
                    Some(KEY),
                    &hello[2..],
                );
                w
            },
            ProtocolError::ReservedBits,
        ),
        // A compressed control frame.
        (
            {
                let mut w = Vec::new();
                write_frame_rsv(&mut w, true, RSV1, OpCode::Ping, Some(KEY), &hello);
                w
            },
            ProtocolError::ReservedBits,
        ),
        // RSV2 is not ours.
        (
            {
                let mut w = Vec::new();
                write_frame_rsv(&mut w, true, RSV1 | 0x20, OpCode::Text, Some(KEY), &hello);
                w
            },
            ProtocolError::ReservedBits,
        ),
        // Garbage that is not deflate.
        (
            client_message(OpCode::Binary, RSV1, &[0xff, 0xff, 0xff, 0xff], 100),
            ProtocolError::InvalidCompressedData,
        ),
        // Valid deflate of invalid UTF-8 in a text message.
        (
            client_message(
                OpCode::Text,
                RSV1,
                &compress(&mut client_compressor(), b"\xc3\x28ab"),
                100,
            ),
            ProtocolError::InvalidUtf8,
        ),
    ];
    for (i, (wire, err)) in cases.into_iter().enumerate() {
        let mut c = conn("permessage-deflate", &d, Config::default());
        let evs = feed(&mut c, &wire);
        assert_eq!(
            evs,
            [Ev::Close(
                err.close_code().as_u16(),
                err.reason().to_owned()
            )],
            "case {i}"
        );
    }
    assert_eq!(
        ProtocolError::InvalidCompressedData.close_code(),
        CloseCode::INVALID_PAYLOAD
    );
    // Without the extension RSV1 is an error even on a data frame.
    let mut c = Connection::new(Config::default(), 0);
    let evs = feed(&mut c, &client_message(OpCode::Text, RSV1, &hello, 100));
    assert_eq!(evs, [Ev::Close(1002, "unexpected RSV bits".into())]);
}

#[test]
fn threshold_decides_what_is_compressed() {
    let config = DeflateConfig {
        threshold: 1000,
        ..DeflateConfig::default()
    };
    let mut c = conn("permessage-deflate", &config, Config::default());
    let under = json(999);
    let over = json(1000);
    c.send_text(&under).unwrap();
    c.send_text(&over).unwrap();
    let frames = server_frames(&c.take_output());
    assert_eq!(frames[0].1, 0);
    assert_eq!(frames[0].3, under.as_bytes());
    assert_eq!(frames[1].1, RSV1);
    assert!(frames[1].3.len() < 500);
    // window bits 8: never compressed.
    let mut c = conn(
        "permessage-deflate; server_max_window_bits=8",
        &config,
        Config::default(),
    );
    c.send_text(&over).unwrap();
    assert_eq!(server_frames(&c.take_output())[0].1, 0);
}

#[test]
fn plain_messages_still_work_after_compressed_ones() {
    let mut c = conn(
        "permessage-deflate",
        &DeflateConfig::default(),
        Config::default(),
    );
    let mut z = client_compressor();
    let mut wire = Vec::new();
    for i in 0..5 {
        let m = format!("message {i} {}", json(300));
        if i % 2 == 0 {
            wire.extend(client_message(
                OpCode::Text,
                RSV1,
                &compress(&mut z, m.as_bytes()),
                64,
            ));
        } else {
            write_frame(&mut wire, true, OpCode::Text, Some(KEY), m.as_bytes());
        }
    }
    let evs = feed(&mut c, &wire);
    assert_eq!(evs.len(), 5);
    for (i, e) in evs.iter().enumerate() {
        let Ev::Text(t) = e else { panic!("{e:?}") };
        assert!(t.starts_with(&format!("message {i} ")));
    }
}

#[test]
fn the_failure_does_not_depend_on_how_the_input_is_split() {
    // Valid deflate of invalid UTF-8, then corrupt data, in one message.
    let mut z = client_compressor();
    let mut payload = compress(&mut z, b"ok \xff\xfe then");
    payload.extend_from_slice(&[0xff; 8]);
    let wire = client_message(OpCode::Text, RSV1, &payload, usize::MAX);
    // Valid text that passes the limit, then corrupt data.
    let mut z = client_compressor();
    let mut big = compress(&mut z, json(5000).as_bytes());
    big.extend_from_slice(&[0xff; 8]);
    let big = client_message(OpCode::Text, RSV1, &big, usize::MAX);
    let limits = Config {
        max_message: 1000,
        ..Config::default()
    };
    for (wire, code) in [(wire, 1007), (big, 1009)] {
        let mut whole = conn(
            "permessage-deflate",
            &DeflateConfig::default(),
            limits.clone(),
        );
        let expected = feed(&mut whole, &wire);
        assert!(
            matches!(expected.last(), Some(Ev::Close(c, _)) if *c == code),
            "{expected:?}"
        );
        for chunk in [1, 3, 17] {
            let mut c = conn(
                "permessage-deflate",
                &DeflateConfig::default(),
                limits.clone(),
            );
            let mut evs = Vec::new();
            for piece in wire.chunks(chunk) {
                evs.extend(feed(&mut c, piece));
            }
            assert_eq!(evs, expected, "chunks of {chunk}");
        }
    }
}
