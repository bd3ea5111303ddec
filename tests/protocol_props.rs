//! Property tests for `ws_edge::protocol`: round trips, chunking
//! independence, masking.

use proptest::prelude::*;
use ws_edge::Parsed;
use ws_edge::protocol::{
    Config, Connection, Event, FrameHeader, OpCode, Outbox, State, apply_mask, write_frame,
};

mod support;
use support::{Ev, header, own, write_frame_rsv};

/// Everything observable after feeding: events, output bytes, final state.
type Outcome = (Vec<Ev>, Vec<u8>, State);

fn small_config() -> Config {
    Config {
        max_frame_payload: 3000,
        max_message: 6000,
        ..Config::default()
    }
}

/// Feeds `wire` split at the given cut points (as fractions of its length).
fn run_chunked(wire: &[u8], cuts: &[usize], in_place: bool) -> Outcome {
    let mut c = Connection::new(small_config(), 0);
    let mut evs = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|&x| x % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    for w in points.windows(2) {
        let mut piece = wire[w[0]..w[1]].to_vec();
        if in_place {
            c.receive_mut(&mut piece, 0, |e, _| evs.push(own(e)));
        } else {
            c.receive(&piece, 0, |e, _| evs.push(own(e)));
        }
    }
    (evs, c.take_output(), c.state().clone())
}

#[derive(Clone, Debug)]
enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        any::<String>().prop_map(Msg::Text),
        prop::collection::vec(any::<u8>(), 0..2000).prop_map(Msg::Binary),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Msg::Ping),
    ]
}

/// Client frames for the messages, each data message cut into fragments of
/// `frag` bytes (0 = unfragmented), with a ping in the middle of every
/// fragmented message.
fn encode_client(msgs: &[Msg], frag: usize, key: [u8; 4]) -> (Vec<u8>, Vec<Ev>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for m in msgs {
        let (op, bytes) = match m {
            Msg::Text(s) => (OpCode::Text, s.as_bytes()),
            Msg::Binary(b) => (OpCode::Binary, &b[..]),
            Msg::Ping(p) => {
                write_frame(&mut wire, true, OpCode::Ping, Some(key), p);
                expected.push(Ev::Ping(p.clone()));
                continue;
            }
        };
        if frag == 0 || bytes.len() <= frag {
            write_frame(&mut wire, true, op, Some(key), bytes);
        } else {
            let chunks: Vec<&[u8]> = bytes.chunks(frag).collect();
            for (i, ch) in chunks.iter().enumerate() {
                let opc = if i == 0 { op } else { OpCode::Continuation };
                write_frame(&mut wire, i + 1 == chunks.len(), opc, Some(key), ch);
                if i == 0 {
                    write_frame(&mut wire, true, OpCode::Ping, Some(key), b"mid");
                    expected.push(Ev::Ping(b"mid".to_vec()));
                }
            }
        }
        expected.push(match m {
            Msg::Text(s) => Ev::Text(s.clone()),
            Msg::Binary(b) => Ev::Binary(b.clone()),
            Msg::Ping(_) => unreachable!("handled above"),
        });
    }
    (wire, expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn client_encode_then_decode_round_trips(
        msgs in prop::collection::vec(msg(), 0..8),
        frag in 0usize..600,
        key in any::<[u8; 4]>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let (wire, expected) = encode_client(&msgs, frag, key);
        let (evs, _, state) = run_chunked(&wire, &cuts, false);
        prop_assert_eq!(evs, expected);
        prop_assert_eq!(state, State::Open);
    }

    #[test]
    fn server_encode_then_decode_round_trips(
        msgs in prop::collection::vec(msg(), 0..8),
        threshold in prop::option::of(1usize..700),
    ) {
        let mut c = Connection::new(Config { fragment_threshold: threshold, ..Config::default() }, 0);
        for m in &msgs {
            match m {
                Msg::Text(s) => c.send_text(s).unwrap(),
                Msg::Binary(b) => c.send_binary(b).unwrap(),
                Msg::Ping(p) => c.ping(p).unwrap(),
            }
        }
        // Decode the server's frames as a peer would, reassembling messages.
        let out = c.take_output();
        let mut b = &out[..];
        let mut got = Vec::new();
        let mut partial: Option<(OpCode, Vec<u8>)> = None;
        while !b.is_empty() {
            let (h, n) = header(b);
            prop_assert!(h.mask.is_none());
            let p = &b[n..n + h.payload_len as usize];
            if let Some(t) = threshold {
                prop_assert!(h.opcode.is_control() || p.len() <= t);
            }
            b = &b[n + p.len()..];
            match h.opcode {
                OpCode::Ping => got.push(Ev::Ping(p.to_vec())),
                OpCode::Continuation => partial.as_mut().unwrap().1.extend_from_slice(p),
                op => partial = Some((op, p.to_vec())),
            }
            if h.fin && !h.opcode.is_control() {
                let (op, data) = partial.take().unwrap();
                got.push(if op == OpCode::Text { Ev::Text(String::from_utf8(data).unwrap()) } else { Ev::Binary(data) });
            }
        }
        let expected: Vec<Ev> = msgs.iter().map(|m| match m {
            Msg::Text(s) => Ev::Text(s.clone()),
            Msg::Binary(b) => Ev::Binary(b.clone()),
            Msg::Ping(p) => Ev::Ping(p.clone()),
        }).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn any_chunking_of_arbitrary_bytes_gives_the_one_shot_outcome(
        wire in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let one = run_chunked(&wire, &[], false);
        prop_assert_eq!(&run_chunked(&wire, &cuts, false), &one);
        prop_assert_eq!(&run_chunked(&wire, &cuts, true), &one);
    }

    #[test]
    fn any_chunking_of_mutated_valid_streams_gives_the_one_shot_outcome(
        msgs in prop::collection::vec(msg(), 1..6),
        frag in 0usize..300,
        key in any::<[u8; 4]>(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (mut wire, _) = encode_client(&msgs, frag, key);
        for (at, x) in flips {
            let i = at % wire.len();
            wire[i] ^= x;
        }
        let one = run_chunked(&wire, &[], false);
        // Byte at a time as well as random cuts.
        let every: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(&run_chunked(&wire, &every, false), &one);
        prop_assert_eq!(&run_chunked(&wire, &cuts, false), &one);
        prop_assert_eq!(&run_chunked(&wire, &cuts, true), &one);
    }

    #[test]
    fn header_write_then_parse_round_trips(
        fin in any::<bool>(),
        rsv in 0u8..8,
        op in prop::sample::select(vec![OpCode::Continuation, OpCode::Text, OpCode::Binary, OpCode::Close, OpCode::Ping, OpCode::Pong]),
        mask in prop::option::of(any::<[u8; 4]>()),
        len in prop_oneof![0u64..130, 65530u64..65540, 0u64..(1 << 63)],
    ) {
        let h = FrameHeader { fin, rsv: rsv << 4, opcode: op, mask, payload_len: len };
        let mut v = Vec::new();
        h.write(&mut v);
        prop_assert_eq!(v.len(), h.encoded_len());
        prop_assert_eq!(
            FrameHeader::parse(&v),
            Ok(Parsed::Complete { consumed: v.len(), value: h })
        );
        prop_assert_eq!(FrameHeader::parse(&v[..v.len() - 1]), Ok(Parsed::Incomplete));
    }

}

#[test]
fn rsv_frames_round_trip_through_the_header_codec() {
    let mut v = Vec::new();
    write_frame_rsv(
        &mut v,
        true,
        0x70,
        OpCode::Binary,
        Some([1, 2, 3, 4]),
        b"abc",
    );
    let (h, n) = header(&v);
    assert_eq!((h.rsv, n, h.payload_len), (0x70, 6, 3));
    let mut p = v[n..].to_vec();
    apply_mask(&mut p, [1, 2, 3, 4], 0);
    assert_eq!(p, b"abc");
}

/// Sends every data message back as it came.
fn echo(e: Event<'_>, out: &mut Outbox<'_>) {
    match e {
        Event::Text(t) => {
            let _ = out.send_text(t);
        }
        Event::Binary(b) => {
            let _ = out.send_binary(b);
        }
        _ => {}
    }
}

proptest! {
    /// `receive_owned` (an echo of a frame that is a whole input goes out
    /// from the input buffer) writes the same bytes as `receive`.
    #[test]
    fn receive_owned_echoes_the_same_bytes_as_receive(
        msgs in prop::collection::vec(msg(), 1..8),
        key in any::<[u8; 4]>(),
        take_each in any::<bool>(),
    ) {
        let frames: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| {
                let mut f = Vec::new();
                match m {
                    Msg::Text(t) => write_frame(&mut f, true, OpCode::Text, Some(key), t.as_bytes()),
                    Msg::Binary(b) => write_frame(&mut f, true, OpCode::Binary, Some(key), b),
                    Msg::Ping(p) => write_frame(&mut f, true, OpCode::Ping, Some(key), p),
                }
                f
            })
            .collect();
        let mut copying = Connection::new(small_config(), 0);
        for f in &frames {
            copying.receive(f, 0, echo);
        }
        let expected = copying.take_output();
        let mut owned = Connection::new(small_config(), 0);
        let mut got = Vec::new();
        for f in &frames {
            let mut input = f.clone();
            owned.receive_owned(&mut input, 0, echo);
            // Taking the output each time lets the next echo be adopted too.
            if take_each {
                got.extend(owned.take_output());
            }
        }
        got.extend(owned.take_output());
        prop_assert_eq!(got, expected);
    }
}
