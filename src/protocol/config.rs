//! Connection settings and the extension hook.

use super::error::ProtocolError;
use super::frame::OpCode;

/// Settings of a [`Connection`](super::Connection).
///
/// [`Config::default`] gives WebSocket-Node's server defaults
/// (`lib/WebSocketServer.js`), plus an output high-water mark that
/// WebSocket-Node does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The largest frame payload accepted, in bytes (default 64 KiB). Checked
    /// from the header before any payload is buffered; a larger frame closes
    /// the connection with 1009.
    pub max_frame_payload: u64,
    /// The largest message accepted, in bytes, summed over its fragments
    /// (default 1 MiB). Checked from each frame header before its payload is
    /// buffered; 1009 when exceeded.
    pub max_message: u64,
    /// Answer pings with a pong automatically (default `true`). The ping is
    /// reported to the handler either way.
    pub auto_pong: bool,
    /// Send a ping after this many milliseconds without receiving anything
    /// (default 20 000). `None` disables keepalive.
    pub keepalive_interval_ms: Option<u64>,
    /// After a keepalive ping, give up on the peer if nothing arrives within
    /// this many milliseconds (default 10 000): the connection becomes closed
    /// with 1006 without a close frame. `None` keeps pinging but never drops.
    pub keepalive_grace_ms: Option<u64>,
    /// How long to wait for the peer's close frame after sending ours, in
    /// milliseconds (default 5 000). Afterwards the connection becomes closed
    /// with 1006 and the host drops the TCP connection.
    pub close_timeout_ms: u64,
    /// Split outgoing messages longer than this many bytes into fragments of
    /// this size (default 16 KiB). `None` (or `Some(0)`) sends every message
    /// as one frame.
    pub fragment_threshold: Option<usize>,
    /// Refuse sends once this many bytes would be queued (default 1 MiB); see
    /// [`SendError::Backpressure`](super::SendError::Backpressure). A send
    /// into an empty queue is always accepted, so one message larger than the
    /// mark can still go out. Automatic pongs, keepalive pings and close
    /// frames are never refused (the host bounds them by writing each
    /// transmit before reading more).
    pub high_water_mark: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_payload: 0x10000,
            max_message: 0x100000,
            auto_pong: true,
            keepalive_interval_ms: Some(20_000),
            keepalive_grace_ms: Some(10_000),
            close_timeout_ms: 5_000,
            fragment_threshold: Some(0x4000),
            high_water_mark: 0x100000,
        }
    }
}

/// A negotiated extension that uses RSV bits, such as permessage-deflate
/// (RFC 7692, [`crate::deflate::PerMessageDeflate`]).
///
/// Model (the one RFC 7692 uses): an extension marks a *message* by setting
/// its RSV bits on the first frame; continuation and control frames never
/// carry RSV bits (1002 otherwise). A received marked message is decoded as
/// its payload arrives, piece by piece, by [`Extension::decode`]; outgoing
/// messages may be transformed by [`Extension::encode_message`] before
/// framing. Without an extension any RSV bit is a protocol error (1002).
///
/// The decoded bytes are what the message limit ([`Config::max_message`])
/// counts, as they are produced, and what the UTF-8 check of a text message
/// reads (fail-fast, as for plain messages).
pub trait Extension: Send {
    /// The RSV bits (a subset of [`RSV1`](super::RSV1) | [`RSV2`](super::RSV2)
    /// | [`RSV3`](super::RSV3)) this extension may set on the first frame of
    /// a data message.
    fn rsv_bits(&self) -> u8;

    /// Decodes the next piece of a received message whose first frame
    /// carried `rsv` (non-zero, within [`Extension::rsv_bits`]), appending
    /// the decoded bytes to `out`.
    ///
    /// `input` is unmasked payload, in order, in pieces of any size; after
    /// the final frame's last byte the connection calls once more with
    /// `last` set (and `input` possibly empty). `out` already holds what was
    /// decoded of this message so far. Once `out` would exceed `max_len`
    /// bytes, return [`ProtocolError::MessageTooLarge`] without decoding the
    /// rest; return another error (such as
    /// [`ProtocolError::InvalidCompressedData`]) for undecodable input.
    fn decode(
        &mut self,
        opcode: OpCode,
        rsv: u8,
        input: &[u8],
        last: bool,
        max_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError>;

    /// Optionally transforms an outgoing data message. To transform it,
    /// append the new payload to `out` and return the RSV bits for its first
    /// frame; return `None` to send `payload` unchanged.
    fn encode_message(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Option<u8>;
}
