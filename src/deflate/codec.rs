//! The permessage-deflate codec (RFC 7692 §7.2) as an [`Extension`].

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::DeflateParams;
use crate::protocol::{Extension, OpCode, ProtocolError, RSV1};

/// The bytes a sync flush ends with, which the sender removes and the
/// receiver appends (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// permessage-deflate on one connection: RSV1 marks a compressed message.
///
/// Compression state is created on first use, so a connection that never
/// sends a message over the threshold never allocates a compressor, and one
/// that never receives a compressed message never allocates an inflater.
/// Without context takeover the state is dropped after each message.
pub struct PerMessageDeflate {
    params: DeflateParams,
    /// Our compressor's window (8: never compress) and whether it keeps its
    /// context between messages.
    send_bits: u8,
    send_takeover: bool,
    /// The peer's window and whether our inflater keeps its context.
    recv_bits: u8,
    recv_takeover: bool,
    compressor: Option<Compress>,
    inflater: Option<Decompress>,
    /// The peer ended its deflate stream (a block with BFINAL) in the
    /// current message: the rest of the message is ignored and the inflater
    /// starts a new stream with the next one.
    stream_ended: bool,
}

impl PerMessageDeflate {
    /// The server's codec for a connection with the negotiated `params`.
    pub fn new(params: DeflateParams) -> Self {
        PerMessageDeflate {
            send_bits: params.server_max_window_bits,
            send_takeover: !params.server_no_context_takeover,
            recv_bits: params.client_max_window_bits,
            recv_takeover: !params.client_no_context_takeover,
            params,
            compressor: None,
            inflater: None,
            stream_ended: false,
        }
    }

    /// The client's codec for the same `params` (for tests, tools and load
    /// generators playing the client, with [`parse_response`]): it
    /// compresses under the `client_*` parameters and inflates under the
    /// `server_*` ones. It does not mask; frame its output as a client does.
    ///
    /// [`parse_response`]: super::parse_response
    pub fn client(params: DeflateParams) -> Self {
        PerMessageDeflate {
            send_bits: params.client_max_window_bits,
            send_takeover: !params.client_no_context_takeover,
            recv_bits: params.server_max_window_bits,
            recv_takeover: !params.server_no_context_takeover,
            params,
            compressor: None,
            inflater: None,
            stream_ended: false,
        }
    }

    /// The negotiated parameters.
    pub fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether compression state is allocated now (a compressor, an
    /// inflater): without context takeover, never between messages.
    pub fn holds_state(&self) -> (bool, bool) {
        (self.compressor.is_some(), self.inflater.is_some())
    }

    fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        max_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let bits = self.recv_bits.clamp(9, 15);
        let d = self
            .inflater
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        if !self.stream_ended {
            self.stream_ended = inflate_into(d, input, FlushDecompress::None, max_len, out)?;
        }
        if last {
            if !self.stream_ended {
                inflate_into(d, &TAIL, FlushDecompress::Sync, max_len, out)?;
            }
            if !self.recv_takeover {
                self.inflater = None;
            } else if self.stream_ended {
                d.reset(false);
            }
            self.stream_ended = false;
        }
        Ok(())
    }
}

impl Extension for PerMessageDeflate {
    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn decode(
        &mut self,
        _opcode: OpCode,
        _rsv: u8,
        input: &[u8],
        last: bool,
        max_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let result = self.inflate(input, last, max_len, out);
        if result.is_err() {
            // The connection fails; keep nothing.
            self.inflater = None;
        }
        result
    }

    fn encode_message(&mut self, _opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        let p = &self.params;
        // 8-bit windows cannot be produced (see the module docs): such a
        // connection sends everything uncompressed.
        // An empty message costs nothing plain (and a compressor with
        // context takeover has nothing to flush for it).
        if self.send_bits < 9 || payload.len() < p.threshold || payload.is_empty() {
            return None;
        }
        let (level, bits) = (p.level.min(9), self.send_bits.min(15));
        let takeover = self.send_takeover;
        let c = self.compressor.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        let start = out.len();
        let ok = deflate_into(c, payload, out);
        let len = out.len() - start;
        let result = if ok && len < payload.len() {
            Some(RSV1)
        } else {
            // Larger than the message (random bytes) or failed: send it
            // plain. The compressor saw bytes the peer will not, so with
            // context takeover its history must go too.
            out.truncate(start);
            if takeover {
                c.reset();
            }
            None
        };
        if !takeover {
            self.compressor = None;
        }
        result
    }
}

/// Compresses `payload` with a sync flush onto `out`, without the final
/// `00 00 ff ff`. False if the compressor failed.
fn deflate_into(c: &mut Compress, payload: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    // Enough for incompressible input in one call: stored blocks cost 5
    // bytes per 16–64 KiB, the flush a few more.
    out.reserve(payload.len() + payload.len() / 512 + 64);
    let mut input = payload;
    loop {
        // A sync flush needs more than six bytes of room to finish in one
        // call (zlib's manual).
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let before = c.total_in();
        if c.compress_vec(input, out, FlushCompress::Sync).is_err() {
            return false;
        }
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.capacity() - out.len() >= 64 {
            break;
        }
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
        true
    } else {
        false
    }
}

/// Inflates `input` onto `out`, never past `max_len` bytes of `out` by more
/// than what its capacity already held: the output grows with what is
/// produced, so a bomb stops at the limit. True if the deflate stream ended
/// (a final block).
fn inflate_into(
    d: &mut Decompress,
    mut input: &[u8],
    flush: FlushDecompress,
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<bool, ProtocolError> {
    loop {
        if out.len() == out.capacity() {
            if out.len() > max_len {
                return Err(ProtocolError::MessageTooLarge);
            }
            // Double, but never past the limit (+1 to see it passed).
            let room = (max_len - out.len()).saturating_add(1);
            let grow = out
                .capacity()
                .max(input.len().saturating_mul(2))
                .max(1024)
                .min(room);
            out.reserve_exact(grow);
        }
        let (in_before, out_before) = (d.total_in(), out.len());
        let status = d.decompress_vec(input, out, flush).map_err(|_| {
            // What came before the corruption may already be past the
            // limit (the output had room beyond it): that is found first
            // when the input arrives in smaller pieces, so say it here too.
            if out.len() > max_len {
                ProtocolError::MessageTooLarge
            } else {
                ProtocolError::InvalidCompressedData
            }
        })?;
        input = &input[(d.total_in() - in_before) as usize..];
        if out.len() > max_len {
            return Err(ProtocolError::MessageTooLarge);
        }
        if status == Status::StreamEnd {
            return Ok(true);
        }
        let full = out.len() == out.capacity();
        if full {
            continue;
        }
        if input.is_empty() {
            return Ok(false);
        }
        if d.total_in() == in_before && out.len() == out_before {
            // Room and input, yet no progress: not a deflate stream.
            return Err(ProtocolError::InvalidCompressedData);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::{DeflateConfig, negotiate};

    fn codec(offer: &str, config: &DeflateConfig) -> PerMessageDeflate {
        PerMessageDeflate::new(negotiate(offer, config).expect("accepted"))
    }

    fn roundtrip(offer: &str, config: &DeflateConfig, messages: &[Vec<u8>]) {
        let mut server = codec(offer, config);
        // The peer: the client's codec for the same parameters.
        let mut peer = PerMessageDeflate::client(negotiate(offer, config).expect("accepted"));
        for m in messages {
            let mut wire = Vec::new();
            let rsv = server.encode_message(OpCode::Binary, m, &mut wire);
            if rsv.is_none() {
                assert!(wire.is_empty());
                continue;
            }
            let mut back = Vec::new();
            peer.decode(OpCode::Binary, RSV1, &wire, true, usize::MAX, &mut back)
                .unwrap();
            assert_eq!(&back, m);
        }
    }

    fn json(n: usize) -> Vec<u8> {
        let mut s = Vec::new();
        let mut i = 0;
        while s.len() < n {
            s.extend_from_slice(
                format!(
                    "{{\"id\":{i},\"user\":\"user{}\",\"text\":\"hello there\"}},",
                    i % 7
                )
                .as_bytes(),
            );
            i += 1;
        }
        s.truncate(n);
        s
    }

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn compresses_text_and_sends_random_bytes_plain() {
        let mut c = codec("permessage-deflate", &DeflateConfig::default());
        let text = json(64 * 1024);
        let mut wire = Vec::new();
        assert_eq!(c.encode_message(OpCode::Text, &text, &mut wire), Some(RSV1));
        assert!(wire.len() * 4 < text.len(), "{} bytes", wire.len());
        let noise = random(64 * 1024, 7);
        let mut wire = Vec::new();
        assert_eq!(c.encode_message(OpCode::Binary, &noise, &mut wire), None);
        assert!(wire.is_empty());
        // Under the threshold: plain.
        assert_eq!(
            c.encode_message(OpCode::Text, &text[..1023], &mut wire),
            None
        );
    }

    #[test]
    fn roundtrips_with_and_without_context_takeover() {
        let msgs: Vec<Vec<u8>> = (0..20)
            .map(|i| match i % 3 {
                0 => json(1024 + i * 997),
                1 => random(2000 + i, i as u64),
                _ => json(70_000),
            })
            .collect();
        for (offer, config) in [
            ("permessage-deflate", DeflateConfig::default()),
            ("permessage-deflate", DeflateConfig::low_memory()),
            (
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
                DeflateConfig {
                    client_max_window_bits: 9,
                    level: 6,
                    ..DeflateConfig::default()
                },
            ),
            (
                "permessage-deflate",
                DeflateConfig {
                    threshold: 0,
                    level: 9,
                    ..DeflateConfig::default()
                },
            ),
        ] {
            roundtrip(offer, &config, &msgs);
        }
    }

    #[test]
    fn context_takeover_pays_on_repeated_messages() {
        let m = json(2000);
        let sizes = |config: DeflateConfig| {
            let mut c = codec("permessage-deflate", &config);
            (0..3)
                .map(|_| {
                    let mut w = Vec::new();
                    c.encode_message(OpCode::Text, &m, &mut w).unwrap();
                    w.len()
                })
                .collect::<Vec<_>>()
        };
        let with = sizes(DeflateConfig::default());
        let without = sizes(DeflateConfig::low_memory());
        assert!(
            with[1] * 2 < without[1] && with[2] * 4 < without[2],
            "{with:?} vs {without:?}"
        );
        assert_eq!(without[0], without[1]);
    }

    #[test]
    fn no_state_is_kept_between_messages_without_takeover() {
        let mut c = codec("permessage-deflate", &DeflateConfig::low_memory());
        let text = json(4096);
        let mut wire = Vec::new();
        c.encode_message(OpCode::Text, &text, &mut wire).unwrap();
        assert_eq!(c.holds_state(), (false, false));
        let mut out = Vec::new();
        c.decode(OpCode::Text, RSV1, &wire[..10], false, usize::MAX, &mut out)
            .unwrap();
        assert_eq!(c.holds_state(), (false, true), "inside a message");
        c.decode(OpCode::Text, RSV1, &wire[10..], true, usize::MAX, &mut out)
            .unwrap();
        assert_eq!(out, text);
        assert_eq!(c.holds_state(), (false, false));
        // With takeover both stay.
        let mut c = codec("permessage-deflate", &DeflateConfig::default());
        let mut wire = Vec::new();
        c.encode_message(OpCode::Text, &text, &mut wire).unwrap();
        let mut out = Vec::new();
        c.decode(OpCode::Text, RSV1, &wire, true, usize::MAX, &mut out)
            .unwrap();
        assert_eq!(c.holds_state(), (true, true));
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 16 MiB of zeros compress to about 16 KiB.
        let zeros = vec![0u8; 16 << 20];
        let mut c = codec(
            "permessage-deflate",
            &DeflateConfig {
                level: 9,
                ..DeflateConfig::default()
            },
        );
        let mut wire = Vec::new();
        c.encode_message(OpCode::Binary, &zeros, &mut wire).unwrap();
        assert!(wire.len() < 64 * 1024, "{}", wire.len());
        let mut peer = codec("permessage-deflate", &DeflateConfig::default());
        let mut out = Vec::new();
        let max = 1 << 20;
        assert_eq!(
            peer.decode(OpCode::Binary, RSV1, &wire, false, max, &mut out),
            Err(ProtocolError::MessageTooLarge)
        );
        assert!(out.capacity() <= max + 1, "{}", out.capacity());
    }

    #[test]
    fn corrupt_and_final_streams() {
        let mut c = codec("permessage-deflate", &DeflateConfig::default());
        let mut out = Vec::new();
        // Block type 3 is reserved.
        assert_eq!(
            c.decode(
                OpCode::Binary,
                RSV1,
                &[0xff, 0xff, 0xff],
                true,
                100,
                &mut out
            ),
            Err(ProtocolError::InvalidCompressedData)
        );
        // A stream with BFINAL set (a whole raw deflate stream, as some
        // peers send): decoded; the inflater starts over after it.
        let mut c = codec("permessage-deflate", &DeflateConfig::default());
        for _ in 0..2 {
            let mut z = Compress::new_with_window_bits(Compression::new(6), false, 15);
            let mut wire = Vec::with_capacity(100);
            z.compress_vec(b"hello", &mut wire, FlushCompress::Finish)
                .unwrap();
            let mut out = Vec::new();
            c.decode(OpCode::Text, RSV1, &wire, true, 100, &mut out)
                .unwrap();
            assert_eq!(out, b"hello");
        }
        // An empty compressed message (RFC 7692 §7.2.3.6: a single 0x00).
        let mut out = Vec::new();
        c.decode(OpCode::Text, RSV1, &[0x00], true, 100, &mut out)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn rfc_7692_examples() {
        // §7.2.3.1: "Hello" compressed, then the same with takeover (§7.2.3.2).
        let mut c = codec("permessage-deflate", &DeflateConfig::default());
        let mut out = Vec::new();
        c.decode(
            OpCode::Text,
            RSV1,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            100,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        out.clear();
        c.decode(
            OpCode::Text,
            RSV1,
            &[0xf2, 0x00, 0x11, 0x00, 0x00],
            true,
            100,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.3: stored block.
        let mut out = Vec::new();
        c.decode(
            OpCode::Text,
            RSV1,
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            true,
            100,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn window_bits_8_sends_plain() {
        let mut c = codec(
            "permessage-deflate; server_max_window_bits=8",
            &DeflateConfig::default(),
        );
        let mut wire = Vec::new();
        assert_eq!(c.encode_message(OpCode::Text, &json(8192), &mut wire), None);
    }
}
