//! Behaviour tests for `ws_edge::protocol`: RFC 6455 §5.7 examples, frame
//! rules, the close handshake, sending, timers and the extension hook.

use ws_edge::protocol::{
    CloseCode, CloseFrame, Config, Connection, Ending, Event, Extension, OpCode, ProtocolError,
    RSV1, RSV2, RSV3, SendError, State, Timer, truncate_reason, write_frame,
};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

mod support;
use support::{Ev, own, write_frame_rsv};

fn conn() -> Connection {
    Connection::new(Config::default(), 0)
}

fn feed(c: &mut Connection, data: &[u8]) -> Vec<Ev> {
    let mut evs = Vec::new();
    c.receive(data, 0, |e, _| evs.push(own(e)));
    evs
}

fn feed_bytewise(c: &mut Connection, data: &[u8]) -> Vec<Ev> {
    let mut evs = Vec::new();
    for b in data {
        c.receive(std::slice::from_ref(b), 0, |e, _| evs.push(own(e)));
    }
    evs
}

/// A masked client frame.
fn client(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_frame(&mut v, fin, opcode, Some(KEY), payload);
    v
}

/// Decodes the server's (unmasked) output into (fin, rsv, opcode, payload).
fn server_frames(mut b: &[u8]) -> Vec<(bool, u8, OpCode, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (h, n) = support::header(b);
        assert!(h.mask.is_none(), "server frames are unmasked");
        let len = h.payload_len as usize;
        out.push((h.fin, h.rsv, h.opcode, b[n..n + len].to_vec()));
        b = &b[n + len..];
    }
    out
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// Asserts the connection failed with `err`: close frame with its code on
/// the wire, a close event, state closed.
fn assert_failed(c: &mut Connection, evs: &[Ev], err: ProtocolError) {
    let code = err.close_code().as_u16();
    assert_eq!(
        evs.last(),
        Some(&Ev::Close(code, err.reason().to_owned())),
        "events: {evs:?}"
    );
    let frames = server_frames(&c.take_output());
    let last = frames.last().expect("a close frame");
    assert_eq!((last.0, last.2), (true, OpCode::Close));
    assert_eq!(last.3, close_payload(code, err.reason()));
    assert_eq!(
        c.state(),
        &State::Closed(Ending::Failed(CloseFrame {
            code: CloseCode::new(code),
            reason: err.reason().to_owned()
        }))
    );
    assert_eq!(c.deadline(), None);
}

// ---- RFC 6455 §5.7 examples, byte for byte ----

#[test]
fn rfc_5_7_single_frame_masked_text_is_received() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(client(true, OpCode::Text, b"Hello"), wire);
    let mut c = conn();
    assert_eq!(feed(&mut c, &wire), vec![Ev::Text("Hello".into())]);
    let mut c = conn();
    assert_eq!(feed_bytewise(&mut c, &wire), vec![Ev::Text("Hello".into())]);
}

#[test]
fn rfc_5_7_single_frame_unmasked_text_is_sent() {
    let mut c = conn();
    c.send_text("Hello").unwrap();
    assert_eq!(c.take_output(), [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_5_7_fragmented_unmasked_text_is_sent() {
    let cfg = Config {
        fragment_threshold: Some(3),
        ..Config::default()
    };
    let mut c = Connection::new(cfg, 0);
    c.send_text("Hello").unwrap();
    assert_eq!(
        c.take_output(),
        [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
    );
}

#[test]
fn rfc_5_7_fragmented_text_is_received_when_masked() {
    let mut wire = client(false, OpCode::Text, b"Hel");
    wire.extend(client(true, OpCode::Continuation, b"lo"));
    assert_eq!(&wire[..2], [0x01, 0x83]);
    let mut c = conn();
    assert_eq!(feed(&mut c, &wire), vec![Ev::Text("Hello".into())]);
}

#[test]
fn rfc_5_7_unmasked_ping_is_sent_and_masked_ping_answered() {
    let mut c = conn();
    c.ping(b"Hello").unwrap();
    assert_eq!(c.take_output(), [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    let evs = feed(&mut c, &client(true, OpCode::Ping, b"Hello"));
    assert_eq!(evs, vec![Ev::Ping(b"Hello".to_vec())]);
    // Automatic pong: the §5.7 pong example, unmasked.
    assert_eq!(c.take_output(), [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_5_7_masked_pong_is_received() {
    let wire = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut c = conn();
    assert_eq!(feed(&mut c, &wire), vec![Ev::Pong(b"Hello".to_vec())]);
    assert!(c.output().is_empty());
}

#[test]
fn rfc_5_7_256_byte_binary_uses_16_bit_length() {
    let mut c = conn();
    let data = vec![0xAB; 256];
    c.send_binary(&data).unwrap();
    let out = c.take_output();
    assert_eq!(&out[..4], [0x82, 0x7E, 0x01, 0x00]);
    assert_eq!(&out[4..], &data[..]);
}

#[test]
fn rfc_5_7_64k_binary_uses_64_bit_length() {
    let cfg = Config {
        fragment_threshold: None,
        ..Config::default()
    };
    let mut c = Connection::new(cfg, 0);
    let data = vec![0x5A; 65536];
    c.send_binary(&data).unwrap();
    let out = c.take_output();
    assert_eq!(&out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&out[10..], &data[..]);
    // And received back (masked) at exactly the 64 KiB frame limit.
    let mut c = conn();
    let evs = feed(&mut c, &client(true, OpCode::Binary, &data));
    assert_eq!(evs, vec![Ev::Binary(data)]);
}

// ---- frame rules (issue §1, §2) ----

#[test]
fn unmasked_client_frame_is_1002() {
    // The RFC's unmasked example, as a client would wrongly send it.
    let mut c = conn();
    let evs = feed(&mut c, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_failed(&mut c, &evs, ProtocolError::UnmaskedFrame);
}

#[test]
fn each_rsv_bit_without_extension_is_1002() {
    for rsv in [RSV1, RSV2, RSV3] {
        let mut wire = Vec::new();
        write_frame_rsv(&mut wire, true, rsv, OpCode::Text, Some(KEY), b"x");
        let mut c = conn();
        let evs = feed(&mut c, &wire);
        assert_failed(&mut c, &evs, ProtocolError::ReservedBits);
    }
}

#[test]
fn reserved_opcodes_are_1002_from_the_first_byte() {
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        let mut c = conn();
        let evs = feed(&mut c, &[0x80 | op]);
        assert_failed(&mut c, &evs, ProtocolError::ReservedOpcode);
    }
}

#[test]
fn control_frame_over_125_bytes_is_1002() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let mut c = conn();
        let evs = feed(&mut c, &client(true, op, &[b'a'; 126]));
        assert_failed(&mut c, &evs, ProtocolError::ControlFrameTooLong);
    }
    let mut c = conn();
    assert_eq!(
        feed(&mut c, &client(true, OpCode::Ping, &[7; 125])),
        vec![Ev::Ping(vec![7; 125])]
    );
}

#[test]
fn fragmented_control_frame_is_1002() {
    let mut c = conn();
    let evs = feed(&mut c, &client(false, OpCode::Ping, b"x"));
    assert_failed(&mut c, &evs, ProtocolError::FragmentedControlFrame);
}

#[test]
fn continuation_without_message_is_1002() {
    let mut c = conn();
    let evs = feed(&mut c, &client(true, OpCode::Continuation, b"x"));
    assert_failed(&mut c, &evs, ProtocolError::UnexpectedContinuation);
}

#[test]
fn new_data_frame_inside_fragmented_message_is_1002() {
    let mut wire = client(false, OpCode::Text, b"a");
    wire.extend(client(true, OpCode::Binary, b"b"));
    let mut c = conn();
    let evs = feed(&mut c, &wire);
    assert_failed(&mut c, &evs, ProtocolError::ExpectedContinuation);
}

#[test]
fn control_frames_may_interleave_with_fragments() {
    let mut wire = client(false, OpCode::Text, b"He");
    wire.extend(client(true, OpCode::Ping, b"p"));
    wire.extend(client(false, OpCode::Continuation, b""));
    wire.extend(client(true, OpCode::Pong, b"q"));
    wire.extend(client(true, OpCode::Continuation, b"llo"));
    let mut c = conn();
    let evs = feed_bytewise(&mut c, &wire);
    assert_eq!(
        evs,
        vec![
            Ev::Ping(b"p".to_vec()),
            Ev::Pong(b"q".to_vec()),
            Ev::Text("Hello".into())
        ]
    );
}

#[test]
fn length_with_top_bit_is_1002_before_the_header_completes() {
    let mut c = conn();
    // Only 3 of the 14 header bytes: the top length byte is already wrong.
    let evs = feed(&mut c, &[0x82, 0xFF, 0x80]);
    assert_failed(&mut c, &evs, ProtocolError::LengthTopBit);
}

#[test]
fn frame_over_limit_is_1009_from_the_header_alone() {
    let mut c = conn();
    // Header of a masked binary frame of 65537 bytes; no payload follows.
    let mut wire = vec![0x82, 0xFF];
    wire.extend_from_slice(&65537u64.to_be_bytes());
    wire.extend_from_slice(&KEY);
    let evs = feed(&mut c, &wire);
    assert_failed(&mut c, &evs, ProtocolError::FrameTooLarge);
}

#[test]
fn message_over_limit_is_1009_from_the_fragment_header() {
    let cfg = Config {
        max_message: 100,
        ..Config::default()
    };
    let mut c = Connection::new(cfg, 0);
    let mut evs = feed(&mut c, &client(false, OpCode::Binary, &[1; 60]));
    assert!(evs.is_empty());
    let mut wire = vec![0x80, 0x80 | 41];
    wire.extend_from_slice(&KEY); // header only: 60 + 41 > 100
    evs.extend(feed(&mut c, &wire));
    assert_failed(&mut c, &evs, ProtocolError::MessageTooLarge);
    // An unfragmented message is limited too.
    let mut c = Connection::new(
        Config {
            max_message: 100,
            ..Config::default()
        },
        0,
    );
    let evs = feed(&mut c, &client(true, OpCode::Text, &[b'a'; 101]));
    assert_failed(&mut c, &evs, ProtocolError::MessageTooLarge);
}

#[test]
fn invalid_utf8_in_single_frame_is_1007() {
    let mut c = conn();
    let evs = feed(&mut c, &client(true, OpCode::Text, b"ab\xFFcd"));
    assert_failed(&mut c, &evs, ProtocolError::InvalidUtf8);
}

#[test]
fn invalid_utf8_fails_fast_before_the_message_ends() {
    // First fragment already invalid: fail without waiting for FIN.
    let mut c = conn();
    let evs = feed(&mut c, &client(false, OpCode::Text, b"ok \xC0\xAF"));
    assert_failed(&mut c, &evs, ProtocolError::InvalidUtf8);

    // Byte at a time inside one frame: the close appears right after the
    // first invalid byte arrives, not later.
    let text = b"hello \xCE\xBA\xE1\xBD\xB9\xED\xA0\x80 world"; // U+D800 encoded: invalid at 0xA0
    let wire = client(true, OpCode::Text, text);
    let bad_at = wire.len() - text.len() + 12; // index of 0xA0 in the wire
    let mut c = conn();
    for (i, b) in wire.iter().enumerate() {
        let evs = feed(&mut c, std::slice::from_ref(b));
        if i < bad_at {
            assert!(evs.is_empty() && !c.is_closed(), "closed early at {i}");
        } else {
            assert_failed(&mut c, &evs, ProtocolError::InvalidUtf8);
            break;
        }
    }
    assert!(c.is_closed());
}

#[test]
fn code_point_split_across_fragments_is_valid() {
    // U+1F600 = F0 9F 98 80, split 1 + 2 + 1 over three fragments.
    let mut wire = client(false, OpCode::Text, b"a\xF0");
    wire.extend(client(false, OpCode::Continuation, b"\x9F\x98"));
    wire.extend(client(true, OpCode::Continuation, b"\x80b"));
    let mut c = conn();
    assert_eq!(feed(&mut c, &wire), vec![Ev::Text("a\u{1F600}b".into())]);
}

#[test]
fn split_code_point_broken_in_next_fragment_fails_at_that_fragment() {
    let mut c = conn();
    assert!(feed(&mut c, &client(false, OpCode::Text, b"a\xE2\x82")).is_empty());
    let evs = feed(&mut c, &client(false, OpCode::Continuation, b"A"));
    assert_failed(&mut c, &evs, ProtocolError::InvalidUtf8);
}

#[test]
fn text_ending_inside_a_code_point_is_1007() {
    let mut wire = client(false, OpCode::Text, b"a");
    wire.extend(client(true, OpCode::Continuation, b"\xE2\x82"));
    let mut c = conn();
    let evs = feed(&mut c, &wire);
    assert_failed(&mut c, &evs, ProtocolError::InvalidUtf8);
}

#[test]
fn binary_is_not_utf8_checked_and_empty_messages_work() {
    let mut wire = client(true, OpCode::Binary, b"\xFF\xFE");
    wire.extend(client(true, OpCode::Text, b""));
    wire.extend(client(true, OpCode::Binary, b""));
    let mut c = conn();
    assert_eq!(
        feed(&mut c, &wire),
        vec![
            Ev::Binary(vec![0xFF, 0xFE]),
            Ev::Text(String::new()),
            Ev::Binary(vec![])
        ]
    );
}

#[test]
fn receive_mut_unmasks_in_place_with_the_same_events() {
    let mut wire = client(true, OpCode::Text, "héllo".as_bytes());
    wire.extend(client(true, OpCode::Binary, &[9; 300]));
    let mut c = conn();
    let mut evs = Vec::new();
    c.receive_mut(&mut wire, 0, |e, _| evs.push(own(e)));
    assert_eq!(
        evs,
        vec![Ev::Text("héllo".into()), Ev::Binary(vec![9; 300])]
    );
}

/// Feeds `wire` to `receive_owned` with an echo handler that also runs
/// `after` once per message; returns the output and whether it is the input
/// buffer itself (nothing was copied).
fn echo_owned(
    c: &mut Connection,
    mut wire: Vec<u8>,
    mut after: impl FnMut(&mut ws_edge::protocol::Outbox<'_>),
) -> (Vec<u8>, bool) {
    let input = wire.as_ptr();
    c.receive_owned(&mut wire, 0, |e, out| {
        match e {
            Event::Text(t) => out.send_text(t).unwrap(),
            Event::Binary(b) => out.send_binary(b).unwrap(),
            _ => {}
        }
        after(out);
    });
    let output = c.take_output();
    let same = output.as_ptr() == input;
    (output, same)
}

#[test]
fn receive_owned_sends_an_echo_from_the_input_buffer() {
    // Every header size: 7-bit, 16-bit and 64-bit lengths, at their edges.
    for len in [0, 1, 125, 126, 1000, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut c = Connection::new(
            Config {
                max_frame_payload: 1 << 20,
                max_message: 1 << 20,
                fragment_threshold: None,
                ..Config::default()
            },
            0,
        );
        let (output, same) = echo_owned(&mut c, client(true, OpCode::Binary, &payload), |_| {});
        let mut expected = Vec::new();
        write_frame(&mut expected, true, OpCode::Binary, None, &payload);
        assert_eq!(output, expected, "len {len}");
        assert!(same, "len {len}: the echo was copied");
    }
    let mut c = conn();
    let (output, same) = echo_owned(
        &mut c,
        client(true, OpCode::Text, "héllo".as_bytes()),
        |_| {},
    );
    assert_eq!(
        server_frames(&output),
        [(true, 0, OpCode::Text, "héllo".into())]
    );
    assert!(same);
}

#[test]
fn receive_owned_copies_an_echo_whose_length_was_encoded_longer_than_needed() {
    // 5 bytes announced with the 16-bit length: 4 bytes more room in front
    // of the payload than a 2-byte reply header needs.
    let mut wire = vec![0x82, 0x80 | 126, 0, 5];
    wire.extend_from_slice(&KEY);
    wire.extend(b"hello".iter().zip(KEY.iter().cycle()).map(|(b, k)| b ^ k));
    let mut c = conn();
    let (output, same) = echo_owned(&mut c, wire, |_| {});
    assert!(!same);
    assert_eq!(
        server_frames(&output),
        [(true, 0, OpCode::Binary, b"hello".to_vec())]
    );
    assert_eq!(output.len(), 7);
}

#[test]
fn receive_owned_keeps_the_order_of_what_is_sent_around_an_echo() {
    // Sent after the echo: follows it (appended to the input buffer, which
    // may move when it grows).
    let mut c = conn();
    let (output, _) = echo_owned(&mut c, client(true, OpCode::Binary, &[5; 300]), |out| {
        out.send_text("after").unwrap();
        out.close(4000, "bye").unwrap();
    });
    assert_eq!(
        server_frames(&output),
        [
            (true, 0, OpCode::Binary, vec![5; 300]),
            (true, 0, OpCode::Text, b"after".to_vec()),
            (true, 0, OpCode::Close, close_payload(4000, "bye")),
        ]
    );
    // Queued before the echo: the echo is copied behind it.
    let mut c = conn();
    c.send_text("before").unwrap();
    let (output, same) = echo_owned(&mut c, client(true, OpCode::Binary, &[6; 300]), |_| {});
    assert!(!same);
    assert_eq!(
        server_frames(&output),
        [
            (true, 0, OpCode::Text, b"before".to_vec()),
            (true, 0, OpCode::Binary, vec![6; 300]),
        ]
    );
    // Two frames in one input: both echoed, in order, by copying.
    let mut c = conn();
    let mut wire = client(true, OpCode::Binary, &[1; 200]);
    wire.extend(client(true, OpCode::Text, b"two"));
    let (output, _) = echo_owned(&mut c, wire, |_| {});
    assert_eq!(
        server_frames(&output),
        [
            (true, 0, OpCode::Binary, vec![1; 200]),
            (true, 0, OpCode::Text, b"two".to_vec()),
        ]
    );
}

#[test]
fn receive_owned_echo_counts_against_the_high_water_mark_and_fragments_as_configured() {
    // The echo in place counts as queued: a second copy over the mark is refused.
    let mut c = Connection::new(
        Config {
            high_water_mark: 1000,
            ..Config::default()
        },
        0,
    );
    let mut queued = 0;
    let mut second = Ok(());
    let (output, same) = echo_owned(&mut c, client(true, OpCode::Binary, &[7; 800]), |out| {
        queued = out.queued_bytes();
        second = out.send_binary(&[8; 800]);
    });
    assert!(same);
    assert_eq!(queued, 804);
    assert!(matches!(
        second,
        Err(SendError::Backpressure { queued: 804 })
    ));
    assert_eq!(
        server_frames(&output),
        [(true, 0, OpCode::Binary, vec![7; 800])]
    );
    // With a fragment threshold the echo is fragmented, so it is copied.
    let mut c = Connection::new(
        Config {
            fragment_threshold: Some(100),
            ..Config::default()
        },
        0,
    );
    let (output, same) = echo_owned(&mut c, client(true, OpCode::Binary, &[9; 250]), |_| {});
    assert!(!same);
    assert_eq!(
        server_frames(&output),
        [
            (false, 0, OpCode::Binary, vec![9; 100]),
            (false, 0, OpCode::Continuation, vec![9; 100]),
            (true, 0, OpCode::Continuation, vec![9; 50]),
        ]
    );
}

// ---- close handshake (issue §4): one test per rule ----

#[test]
fn close_without_payload_reports_1005_and_replies_empty() {
    let mut c = conn();
    let evs = feed(&mut c, &client(true, OpCode::Close, b""));
    assert_eq!(evs, vec![Ev::Close(1005, String::new())]);
    assert_eq!(c.take_output(), [0x88, 0x00]);
    assert_eq!(
        c.state(),
        &State::Closed(Ending::Clean(CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: String::new()
        }))
    );
}

#[test]
fn close_payload_of_one_byte_is_1002() {
    let mut c = conn();
    let evs = feed(&mut c, &client(true, OpCode::Close, &[0x03]));
    assert_failed(&mut c, &evs, ProtocolError::CloseFrameTooShort);
}

#[test]
fn never_on_the_wire_codes_1004_1005_1006_1015_are_1002() {
    for code in [1004, 1005, 1006, 1015] {
        let mut c = conn();
        let evs = feed(
            &mut c,
            &client(true, OpCode::Close, &close_payload(code, "")),
        );
        assert_failed(&mut c, &evs, ProtocolError::InvalidCloseCode);
    }
}

#[test]
fn out_of_range_and_unassigned_codes_are_1002() {
    for code in [0, 999, 1016, 1100, 2000, 2999, 5000, 65535] {
        let mut c = conn();
        let evs = feed(
            &mut c,
            &client(true, OpCode::Close, &close_payload(code, "")),
        );
        assert_failed(&mut c, &evs, ProtocolError::InvalidCloseCode);
    }
}

#[test]
fn valid_codes_are_accepted_and_echoed() {
    let valid = (1000..=1003)
        .chain(1007..=1014)
        .chain([3000, 3500, 3999, 4000, 4999]);
    for code in valid {
        let mut c = conn();
        let evs = feed(
            &mut c,
            &client(true, OpCode::Close, &close_payload(code, "bye")),
        );
        assert_eq!(evs, vec![Ev::Close(code, "bye".into())], "code {code}");
        // Echo the code, without the reason.
        assert_eq!(
            c.take_output(),
            close_payload(code, "")
                .iter()
                .fold(vec![0x88, 0x02], |mut v, b| {
                    v.push(*b);
                    v
                })
        );
        assert_eq!(
            c.state(),
            &State::Closed(Ending::Clean(CloseFrame {
                code: CloseCode::new(code),
                reason: "bye".into()
            }))
        );
    }
}

#[test]
fn close_reason_not_utf8_is_1007() {
    let mut p = close_payload(1000, "");
    p.extend_from_slice(b"\xC3\x28");
    let mut c = conn();
    let evs = feed(&mut c, &client(true, OpCode::Close, &p));
    assert_failed(&mut c, &evs, ProtocolError::InvalidCloseReason);
}

#[test]
fn close_code_validity_table() {
    for n in 0..=u16::MAX {
        let expected = matches!(n, 1000..=1003 | 1007..=1014 | 3000..=4999);
        assert_eq!(CloseCode::new(n).is_valid_on_wire(), expected, "{n}");
    }
}

#[test]
fn bytes_after_the_peer_close_are_ignored() {
    let mut wire = client(true, OpCode::Close, &close_payload(1000, ""));
    wire.extend(client(true, OpCode::Text, b"late"));
    let mut c = conn();
    assert_eq!(feed(&mut c, &wire), vec![Ev::Close(1000, String::new())]);
    assert!(feed(&mut c, &client(true, OpCode::Text, b"later")).is_empty());
    assert_eq!(c.take_output(), [0x88, 0x02, 0x03, 0xE8]);
}

#[test]
fn handler_close_then_peer_reply_completes_without_second_frame() {
    let mut c = conn();
    let mut evs = Vec::new();
    c.receive(&client(true, OpCode::Text, b"quit"), 100, |e, out| {
        evs.push(own(e));
        out.close(4001, "done").unwrap();
        assert_eq!(out.state(), &State::Closing);
        assert_eq!(out.send_text("more"), Err(SendError::Closed));
        assert_eq!(out.close(1000, ""), Err(SendError::Closed));
    });
    assert_eq!(
        c.take_output(),
        [&[0x88, 0x06, 0x0F, 0xA1][..], b"done"].concat()
    );
    assert_eq!(c.deadline(), Some(5100));
    // Data the peer sent before seeing our close is still delivered; no data goes out.
    evs.extend(feed(&mut c, &client(true, OpCode::Binary, b"x")));
    evs.extend(feed(&mut c, &client(true, OpCode::Ping, b"p")));
    assert!(c.output().is_empty(), "no pong or data after our close");
    evs.extend(feed(
        &mut c,
        &client(true, OpCode::Close, &close_payload(4001, "")),
    ));
    assert_eq!(
        evs,
        vec![
            Ev::Text("quit".into()),
            Ev::Binary(b"x".to_vec()),
            Ev::Ping(b"p".to_vec()),
            Ev::Close(4001, String::new())
        ]
    );
    assert!(c.output().is_empty(), "no second close frame");
    assert_eq!(
        c.state(),
        &State::Closed(Ending::Clean(CloseFrame {
            code: CloseCode::new(4001),
            reason: String::new()
        }))
    );
    assert_eq!(c.deadline(), None);
}

#[test]
fn close_timeout_ends_with_1006() {
    let mut c = conn();
    c.close(1001, "shutting down", 1_000);
    assert_eq!(c.state(), &State::Closing);
    assert_eq!(
        c.take_output(),
        [&[0x88, 15, 0x03, 0xE9][..], b"shutting down"].concat()
    );
    assert_eq!(c.deadline(), Some(6_000));
    let mut evs = Vec::new();
    c.tick(5_999, |e, _| evs.push(own(e)));
    assert!(evs.is_empty());
    c.tick(6_000, |e, _| evs.push(own(e)));
    assert_eq!(
        evs,
        vec![Ev::Close(1006, "close handshake timed out".into())]
    );
    assert_eq!(
        c.state(),
        &State::Closed(Ending::TimedOut(Timer::CloseHandshake))
    );
    // Later calls are inert.
    c.tick(99_999, |e, _| evs.push(own(e)));
    c.disconnected(99_999, |e, _| evs.push(own(e)));
    assert_eq!(evs.len(), 1);
}

#[test]
fn host_close_maps_forbidden_codes_to_1011_and_only_acts_when_open() {
    for code in [1005, 1006, 1015, 999, 5000] {
        let mut c = conn();
        c.close(code, "", 0);
        assert_eq!(c.take_output(), [0x88, 0x02, 0x03, 0xF3], "code {code}");
    }
    let mut c = conn();
    c.close(1000, "", 0);
    c.close(1001, "", 0);
    assert_eq!(c.take_output(), [0x88, 0x02, 0x03, 0xE8]);
}

#[test]
fn handler_close_rejects_invalid_codes() {
    let mut c = conn();
    for code in [0, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert_eq!(c.outbox().close(code, ""), Err(SendError::InvalidCode));
    }
    assert_eq!(c.state(), &State::Open);
    assert!(c.output().is_empty());
}

#[test]
fn close_reason_is_truncated_at_a_utf8_boundary() {
    let reason = format!("{}é", "a".repeat(122)); // 124 bytes, 'é' straddles 123
    assert_eq!(truncate_reason(&reason), "a".repeat(122));
    let mut c = conn();
    c.outbox().close(CloseCode::NORMAL, &reason).unwrap();
    let frames = server_frames(&c.take_output());
    assert_eq!(frames[0].3.len(), 2 + 122);
    let ok = "é".repeat(61) + "a"; // exactly 123 bytes stays whole
    assert_eq!(truncate_reason(&ok), ok);
}

#[test]
fn protocol_error_while_closing_sends_no_second_close() {
    let mut c = conn();
    c.close(1000, "", 0);
    c.take_output();
    let evs = feed(&mut c, &[0x81, 0x01, b'x']); // unmasked
    assert_eq!(evs, vec![Ev::Close(1002, "unmasked client frame".into())]);
    assert!(c.output().is_empty());
    assert!(c.is_closed());
    // The ending says the peer broke the protocol, not which frame we sent.
    assert_eq!(
        c.state(),
        &State::Closed(Ending::Failed(CloseFrame {
            code: CloseCode::PROTOCOL_ERROR,
            reason: "unmasked client frame".into()
        }))
    );
}

#[test]
fn disconnected_reports_1006_once_and_discards_output() {
    let mut c = conn();
    c.send_text("unsent").unwrap();
    let mut evs = Vec::new();
    c.disconnected(10, |e, out| {
        assert_eq!(out.send_text("x"), Err(SendError::Closed));
        evs.push(own(e));
    });
    assert_eq!(evs, vec![Ev::Close(1006, "connection lost".into())]);
    assert_eq!(c.state(), &State::Closed(Ending::Lost));
    assert_eq!(c.queued_bytes(), 0);
    assert!(feed(&mut c, &client(true, OpCode::Text, b"x")).is_empty());
    c.disconnected(20, |e, _| evs.push(own(e)));
    assert_eq!(evs.len(), 1);
}

// ---- sending (issue §6) ----

#[test]
fn ping_and_pong_over_125_bytes_are_refused_not_truncated() {
    let mut c = conn();
    assert_eq!(c.ping(&[0; 126]), Err(SendError::ControlTooLong));
    assert_eq!(c.pong(&[0; 126]), Err(SendError::ControlTooLong));
    assert!(c.output().is_empty());
    c.pong(&[1; 125]).unwrap();
    assert_eq!(
        server_frames(&c.take_output()),
        vec![(true, 0, OpCode::Pong, vec![1; 125])]
    );
}

#[test]
fn send_past_high_water_mark_is_refused() {
    let cfg = Config {
        high_water_mark: 100,
        ..Config::default()
    };
    let mut c = Connection::new(cfg, 0);
    c.send_binary(&[0; 80]).unwrap(); // 82 bytes queued
    assert_eq!(c.queued_bytes(), 82);
    assert_eq!(
        c.send_binary(&[0; 80]),
        Err(SendError::Backpressure { queued: 82 })
    );
    assert_eq!(
        c.ping(b"0123456789abcdefghij"),
        Err(SendError::Backpressure { queued: 82 })
    );
    c.send_binary(&[0; 16]).unwrap(); // 82 + 18 = 100: at the mark is fine
    assert_eq!(c.queued_bytes(), 100);
    c.consume(50);
    assert_eq!(c.queued_bytes(), 50);
    c.consume(1000);
    assert_eq!(c.queued_bytes(), 0);
    // An empty queue always takes one message, even a big one.
    c.send_binary(&[0; 500]).unwrap();
    assert_eq!(c.queued_bytes(), 504);
    // Automatic pongs and close frames are not refused.
    feed(&mut c, &client(true, OpCode::Ping, b"hi"));
    c.close(1000, "", 0);
    assert_eq!(c.queued_bytes(), 504 + 4 + 4);
}

#[test]
fn large_messages_are_fragmented_at_the_threshold() {
    let mut c = conn();
    let text = "x".repeat(40_000);
    c.send_text(&text).unwrap();
    let frames = server_frames(&c.take_output());
    let shape: Vec<_> = frames.iter().map(|f| (f.0, f.2, f.3.len())).collect();
    assert_eq!(
        shape,
        vec![
            (false, OpCode::Text, 16384),
            (false, OpCode::Continuation, 16384),
            (true, OpCode::Continuation, 7232)
        ]
    );
    let joined: Vec<u8> = frames.into_iter().flat_map(|f| f.3).collect();
    assert_eq!(joined, text.as_bytes());
    // Exactly at the threshold: one frame.
    c.send_binary(&[1; 16384]).unwrap();
    assert_eq!(server_frames(&c.take_output()).len(), 1);
}

#[test]
fn output_consume_and_take_output_agree() {
    let mut c = conn();
    c.send_text("abc").unwrap();
    c.send_text("def").unwrap();
    let all = c.output().to_vec();
    c.consume(4);
    assert_eq!(c.output(), &all[4..]);
    assert_eq!(c.take_output(), &all[4..]);
    assert!(c.output().is_empty());
}

#[test]
fn echo_from_inside_the_callback() {
    let mut c = conn();
    let mut wire = client(true, OpCode::Text, b"one");
    wire.extend(client(false, OpCode::Binary, b"tw"));
    wire.extend(client(true, OpCode::Continuation, b"o"));
    c.receive(&wire, 0, |e, out| match e {
        Event::Text(t) => out.send_text(t).unwrap(),
        Event::Binary(b) => out.send_binary(b).unwrap(),
        _ => {}
    });
    assert_eq!(
        server_frames(&c.take_output()),
        vec![
            (true, 0, OpCode::Text, b"one".to_vec()),
            (true, 0, OpCode::Binary, b"two".to_vec())
        ]
    );
}

#[test]
fn auto_pong_can_be_turned_off() {
    let cfg = Config {
        auto_pong: false,
        ..Config::default()
    };
    let mut c = Connection::new(cfg, 0);
    let evs = feed(&mut c, &client(true, OpCode::Ping, b"p"));
    assert_eq!(evs, vec![Ev::Ping(b"p".to_vec())]);
    assert!(c.output().is_empty());
}

// ---- keepalive (issue §5) ----

#[test]
fn keepalive_pings_after_idle_and_drops_after_grace() {
    let mut c = Connection::new(Config::default(), 1_000);
    assert_eq!(c.deadline(), Some(21_000));
    let mut evs = Vec::new();
    c.tick(20_999, |e, _| evs.push(own(e)));
    assert!(c.output().is_empty());
    // Received data moves the timer.
    c.receive(&client(true, OpCode::Pong, b""), 20_999, |e, _| {
        evs.push(own(e))
    });
    assert_eq!(c.deadline(), Some(40_999));
    c.tick(40_999, |e, _| evs.push(own(e)));
    assert_eq!(c.take_output(), [0x89, 0x00]);
    assert_eq!(c.deadline(), Some(50_999));
    c.tick(50_998, |e, _| evs.push(own(e)));
    assert_eq!(c.state(), &State::Open);
    c.tick(50_999, |e, _| evs.push(own(e)));
    assert_eq!(
        evs,
        vec![
            Ev::Pong(vec![]),
            Ev::Close(1006, "keepalive timeout".into())
        ]
    );
    assert!(c.output().is_empty(), "no close frame on keepalive timeout");
    assert_eq!(
        c.state(),
        &State::Closed(Ending::TimedOut(Timer::Keepalive))
    );
    assert_eq!(c.deadline(), None);
}

#[test]
fn keepalive_answer_keeps_the_connection() {
    let mut c = conn();
    c.tick(20_000, |_, _| {});
    assert_eq!(c.take_output(), [0x89, 0x00]);
    c.receive(&client(true, OpCode::Pong, b""), 20_500, |_, _| {});
    assert_eq!(c.deadline(), Some(40_500));
    c.tick(30_000, |_, _| {});
    assert_eq!(c.state(), &State::Open);
}

#[test]
fn keepalive_can_be_disabled_or_never_drop() {
    let mut c = Connection::new(
        Config {
            keepalive_interval_ms: None,
            ..Config::default()
        },
        0,
    );
    assert_eq!(c.deadline(), None);
    c.tick(u64::MAX, |_, _| {});
    assert!(c.output().is_empty());

    let mut c = Connection::new(
        Config {
            keepalive_grace_ms: None,
            ..Config::default()
        },
        0,
    );
    c.tick(20_000, |_, _| {});
    assert_eq!(c.deadline(), Some(40_000));
    c.tick(40_000, |_, _| {});
    assert_eq!(c.take_output(), [0x89, 0x00, 0x89, 0x00]);
    assert_eq!(c.state(), &State::Open);
}

// ---- extension hook ----

/// A toy extension: RSV1 marks a message whose bytes are inverted.
struct Invert;

impl Extension for Invert {
    fn rsv_bits(&self) -> u8 {
        RSV1
    }
    fn decode(
        &mut self,
        _: OpCode,
        _: u8,
        input: &[u8],
        _last: bool,
        max_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        if out.len() + input.len() > max_len {
            return Err(ProtocolError::MessageTooLarge);
        }
        out.extend(input.iter().map(|b| !b));
        Ok(())
    }
    fn encode_message(&mut self, _: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        out.extend(payload.iter().map(|b| !b));
        Some(RSV1)
    }
}

fn inverted(s: &[u8]) -> Vec<u8> {
    s.iter().map(|b| !b).collect()
}

#[test]
fn extension_hook_decodes_and_encodes_rsv1_messages() {
    let mut c = Connection::with_extension(Config::default(), Box::new(Invert), 0);
    let mut wire = Vec::new();
    write_frame_rsv(
        &mut wire,
        false,
        RSV1,
        OpCode::Text,
        Some(KEY),
        &inverted(b"he"),
    );
    write_frame(
        &mut wire,
        true,
        OpCode::Continuation,
        Some(KEY),
        &inverted(b"llo"),
    );
    write_frame(&mut wire, true, OpCode::Binary, Some(KEY), b"plain");
    assert_eq!(
        feed_bytewise(&mut c, &wire),
        vec![Ev::Text("hello".into()), Ev::Binary(b"plain".to_vec())]
    );
    c.send_text("hi").unwrap();
    assert_eq!(
        server_frames(&c.take_output()),
        vec![(true, RSV1, OpCode::Text, inverted(b"hi"))]
    );
}

#[test]
fn extension_bits_are_still_rules() {
    let cases: [(bool, u8, OpCode, bool); 3] = [
        (true, RSV2, OpCode::Text, false),        // bit not claimed
        (true, RSV1, OpCode::Ping, false),        // control frame
        (true, RSV1, OpCode::Continuation, true), // continuation after a plain first frame
    ];
    for (fin, rsv, op, after_first) in cases {
        let mut c = Connection::with_extension(Config::default(), Box::new(Invert), 0);
        let mut wire = Vec::new();
        if after_first {
            write_frame(&mut wire, false, OpCode::Text, Some(KEY), b"a");
        }
        write_frame_rsv(&mut wire, fin, rsv, op, Some(KEY), b"b");
        let evs = feed(&mut c, &wire);
        assert_failed(&mut c, &evs, ProtocolError::ReservedBits);
    }
    // Decoded text is still UTF-8 checked.
    let mut c = Connection::with_extension(Config::default(), Box::new(Invert), 0);
    let mut wire = Vec::new();
    write_frame_rsv(
        &mut wire,
        true,
        RSV1,
        OpCode::Text,
        Some(KEY),
        &inverted(b"\xFF"),
    );
    let evs = feed(&mut c, &wire);
    assert_failed(&mut c, &evs, ProtocolError::InvalidUtf8);
}
