//! The frame header codec (RFC 6455 §5.2).

use super::error::ProtocolError;
use super::mask::apply_mask;
use crate::Parsed;

/// A frame opcode (RFC 6455 §5.2, §11.8). Reserved opcodes have no variant:
/// parsing one fails with [`ProtocolError::ReservedOpcode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a continuation of a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The opcode for the low nibble `bits`, or `None` if it is reserved.
    pub const fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// RSV1 as it appears in the first header byte (0x40).
pub const RSV1: u8 = 0x40;
/// RSV2 as it appears in the first header byte (0x20).
pub const RSV2: u8 = 0x20;
/// RSV3 as it appears in the first header byte (0x10).
pub const RSV3: u8 = 0x10;

/// The longest possible frame header: 2 bytes, an 8-byte length and a
/// 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// The RSV bits in their header position (a subset of
    /// `RSV1 | RSV2 | RSV3`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the mask bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(`[`Parsed::Incomplete`]`)` if `buf` is too short to hold
    /// the whole header ("need more", not an error) and
    /// `Ok(Parsed::Complete { consumed, value })` otherwise, `consumed`
    /// being the header's length. Fails only on what makes the header
    /// unparseable: a
    /// reserved opcode or a 64-bit length with its top bit set. Every other
    /// rule (mask bit, RSV bits, control frame limits, sizes) is checked by
    /// the [`Connection`](super::Connection), which knows the context.
    pub fn parse(buf: &[u8]) -> Result<Parsed<FrameHeader>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(Parsed::Incomplete);
        };
        let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode)?;
        let Some(&b1) = buf.get(1) else {
            return Ok(Parsed::Incomplete);
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let total = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < total {
            // The top bit of a 64-bit length is the first length byte's top
            // bit: reject it as early as possible.
            if ext == 8 && buf.len() > 2 && buf[2] & 0x80 != 0 {
                return Err(ProtocolError::LengthTopBit);
            }
            return Ok(Parsed::Incomplete);
        }
        let payload_len = match ext {
            0 => u64::from(len7),
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(b);
                if n >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBit);
                }
                n
            }
        };
        let mask = masked.then(|| {
            let m = 2 + ext;
            [buf[m], buf[m + 1], buf[m + 2], buf[m + 3]]
        });
        Ok(Parsed::Complete {
            consumed: total,
            value: FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: b0 & 0x70,
                opcode,
                mask,
                payload_len,
            },
        })
    }

    /// The number of bytes [`FrameHeader::write`] produces.
    pub const fn encoded_len(&self) -> usize {
        let ext = if self.payload_len < 126 {
            0
        } else if self.payload_len <= 0xFFFF {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, with the minimal length encoding.
    pub fn write(&self, out: &mut Vec<u8>) {
        let (bytes, n) = self.encode();
        out.extend_from_slice(&bytes[..n]);
    }

    /// The header's bytes: the first [`FrameHeader::encoded_len`] of the
    /// array.
    pub(crate) fn encode(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut b = [0u8; MAX_HEADER_LEN];
        b[0] = (u8::from(self.fin) << 7) | (self.rsv & 0x70) | self.opcode.bits();
        let mbit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = if self.payload_len < 126 {
            b[1] = mbit | self.payload_len as u8;
            2
        } else if self.payload_len <= 0xFFFF {
            b[1] = mbit | 126;
            b[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            b[1] = mbit | 127;
            b[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(m) = self.mask {
            b[n..n + 4].copy_from_slice(&m);
            n += 4;
        }
        (b, n)
    }
}

/// Appends a whole frame to `out`: header and payload, the payload masked
/// with `mask` if one is given (client frames; server frames are unmasked).
///
/// The connection uses this for everything it sends; tests, benchmarks and
/// fuzzers use it to play the client.
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    write_frame_rsv(out, fin, 0, opcode, mask, payload);
}

/// [`write_frame`] with RSV bits (for extensions).
pub(crate) fn write_frame_rsv(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    }
    .write(out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(m) = mask {
        apply_mask(&mut out[start..], m, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hot path returns `Parsed` by value: it must be no larger than the
    /// `Option<(FrameHeader, usize)>` it replaced.
    #[test]
    fn parse_result_is_no_larger_than_the_option_it_replaced() {
        assert!(
            size_of::<Result<Parsed<FrameHeader>, ProtocolError>>()
                <= size_of::<Result<Option<(FrameHeader, usize)>, ProtocolError>>()
        );
    }
}
