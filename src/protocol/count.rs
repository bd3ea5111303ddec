//! Counting messages in a stream of frames without decoding them.

use crate::Parsed;

use super::frame::{FrameHeader, MAX_HEADER_LEN};

/// Counts the data messages in a byte stream of WebSocket frames, in
/// either direction, by reading only the frame headers and skipping the
/// payloads. For observers (a host's metrics) that see the bytes but not
/// the messages: it decodes nothing, checks no rule, and stops counting at
/// the first unparseable header (the [`Connection`](super::Connection) that
/// reads the same bytes fails the connection then).
///
/// A message is counted when its last frame's header arrives (a data or
/// continuation frame with FIN set); control frames are not messages.
///
/// ```
/// use ws_edge::protocol::{FrameCounter, OpCode, write_frame};
///
/// let mut wire = Vec::new();
/// write_frame(&mut wire, true, OpCode::Text, None, b"hello");
/// write_frame(&mut wire, true, OpCode::Ping, None, b"");
/// write_frame(&mut wire, false, OpCode::Binary, None, b"par");
/// write_frame(&mut wire, true, OpCode::Continuation, None, b"ts");
/// let mut counter = FrameCounter::default();
/// // In any chunks.
/// let (a, b) = wire.split_at(4);
/// assert_eq!(counter.feed(a) + counter.feed(b), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FrameCounter {
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// The start of a header split across chunks.
    partial: [u8; MAX_HEADER_LEN],
    partial_len: usize,
    /// An unparseable header was seen: nothing more is counted.
    broken: bool,
}

impl FrameCounter {
    /// Reads the next chunk of the stream; returns how many messages
    /// ended in it.
    pub fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut messages = 0;
        while !bytes.is_empty() && !self.broken {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
                bytes = &bytes[n..];
                self.skip -= n as u64;
                continue;
            }
            // The header: from the held partial bytes plus this chunk.
            let take = (MAX_HEADER_LEN - self.partial_len).min(bytes.len());
            let mut buf = self.partial;
            buf[self.partial_len..self.partial_len + take].copy_from_slice(&bytes[..take]);
            let have = self.partial_len + take;
            match FrameHeader::parse(&buf[..have]) {
                Ok(Parsed::Complete { consumed, value }) => {
                    // Header bytes of this chunk: what the header used
                    // beyond the partial ones.
                    bytes = &bytes[consumed - self.partial_len..];
                    self.partial_len = 0;
                    self.skip = value.payload_len;
                    if value.fin && !value.opcode.is_control() {
                        messages += 1;
                    }
                }
                Ok(Parsed::Incomplete) => {
                    self.partial[..have].copy_from_slice(&buf[..have]);
                    self.partial_len = have;
                    bytes = &[];
                }
                Err(_) => self.broken = true,
            }
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{OpCode, write_frame};

    fn stream() -> (Vec<u8>, u64) {
        let mut wire = Vec::new();
        let mask = Some([1, 2, 3, 4]);
        write_frame(&mut wire, true, OpCode::Text, mask, b"one");
        write_frame(&mut wire, true, OpCode::Ping, mask, b"p");
        write_frame(&mut wire, false, OpCode::Binary, mask, &[7; 200]);
        write_frame(&mut wire, true, OpCode::Pong, None, b"");
        write_frame(&mut wire, false, OpCode::Continuation, None, &[8; 70_000]);
        write_frame(&mut wire, true, OpCode::Continuation, mask, b"end");
        write_frame(&mut wire, true, OpCode::Close, None, &[3, 232]);
        write_frame(&mut wire, true, OpCode::Binary, None, b"");
        (wire, 3)
    }

    #[test]
    fn counts_messages_in_any_split() {
        let (wire, expected) = stream();
        assert_eq!(FrameCounter::default().feed(&wire), expected);
        for split in [1, 2, 3, 5, 13, 14, 15, 127, 4096] {
            let mut counter = FrameCounter::default();
            let total: u64 = wire.chunks(split).map(|c| counter.feed(c)).sum();
            assert_eq!(total, expected, "chunks of {split}");
        }
    }

    #[test]
    fn stops_at_an_unparseable_header() {
        let mut wire = Vec::new();
        write_frame(&mut wire, true, OpCode::Text, None, b"ok");
        wire.push(0x83); // reserved opcode 0x3
        wire.push(0x00);
        write_frame(&mut wire, true, OpCode::Text, None, b"never counted");
        let mut counter = FrameCounter::default();
        assert_eq!(counter.feed(&wire), 1);
        assert_eq!(counter.feed(&wire), 0);
    }
}
