//! Errors: protocol violations by the peer and refused sends.

use super::close::CloseCode;

/// A violation of RFC 6455 by the peer, detected while decoding its frames.
///
/// The connection answers each one with a close frame carrying
/// [`ProtocolError::close_code`] and [`ProtocolError::reason`], reports it to
/// the handler as a close event with that code and becomes
/// [`State::Closed`](super::State::Closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client frame without the mask bit (RFC 6455 §5.1: the server MUST
    /// close the connection). 1002.
    ///
    /// WebSocket-Node accepts unmasked frames; ws-edge follows the RFC.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// An RSV bit set that no negotiated extension claims (§5.2). 1002.
    #[error("RSV bits set without a negotiated extension")]
    ReservedBits,
    /// A reserved opcode: 0x3–0x7 or 0xB–0xF (§5.2). 1002.
    #[error("reserved opcode")]
    ReservedOpcode,
    /// A control frame with more than 125 bytes of payload (§5.5). 1002.
    #[error("control frame longer than 125 bytes")]
    ControlFrameTooLong,
    /// A control frame with FIN clear (§5.5: control frames MUST NOT be
    /// fragmented). 1002.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame with no fragmented message in progress (§5.4).
    /// 1002.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is in progress
    /// (§5.4: only continuation and control frames may come in between).
    /// 1002.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    /// 1002.
    #[error("64-bit payload length with the top bit set")]
    LengthTopBit,
    /// A frame whose payload length (read from the header, before any payload
    /// is buffered) exceeds [`Config::max_frame_payload`](super::Config::max_frame_payload).
    /// 1009.
    #[error("frame payload exceeds the configured limit")]
    FrameTooLarge,
    /// A message whose assembled length would exceed
    /// [`Config::max_message`](super::Config::max_message), checked from each
    /// frame header before its payload is buffered. 1009.
    #[error("message exceeds the configured limit")]
    MessageTooLarge,
    /// A text message that is not UTF-8 (§8.1). Detected at the first
    /// invalid byte, also across fragment boundaries and split code points.
    /// 1007.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame with a 1-byte payload (§5.5.1: a body starts with a
    /// 2-byte code). 1002.
    #[error("close frame payload of 1 byte")]
    CloseFrameTooShort,
    /// A close frame with a code that may not appear on the wire (§7.4, see
    /// [`CloseCode::is_valid_on_wire`]). 1002.
    #[error("invalid close code")]
    InvalidCloseCode,
    /// A close frame whose reason is not UTF-8 (§5.5.1). 1007.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A negotiated extension could not decode a message for a reason of
    /// its own. 1002.
    #[error("extension failed to decode a message")]
    ExtensionFailed,
    /// A compressed message could not be decompressed (RFC 7692 §7.2.2):
    /// 1007.
    #[error("compressed message data is invalid")]
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code the connection sends for this violation: 1002, 1007 or
    /// 1009.
    pub const fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => {
                CloseCode::MESSAGE_TOO_BIG
            }
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason text for the close frame (well under 123 bytes).
    pub const fn reason(self) -> &'static str {
        match self {
            ProtocolError::UnmaskedFrame => "unmasked client frame",
            ProtocolError::ReservedBits => "unexpected RSV bits",
            ProtocolError::ReservedOpcode => "reserved opcode",
            ProtocolError::ControlFrameTooLong => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected continuation frame",
            ProtocolError::LengthTopBit => "invalid payload length",
            ProtocolError::FrameTooLarge => "frame too large",
            ProtocolError::MessageTooLarge => "message too large",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::CloseFrameTooShort => "close frame too short",
            ProtocolError::InvalidCloseCode => "invalid close code",
            ProtocolError::InvalidCloseReason => "invalid UTF-8 in close reason",
            ProtocolError::ExtensionFailed => "extension error",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
        }
    }
}

/// Why a send was refused. Nothing was queued when a send fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not open: a close frame was sent or received, or the
    /// connection ended. RFC 6455 §5.5.1 forbids data after our close frame.
    #[error("connection is closing or closed")]
    Closed,
    /// A ping or pong payload longer than 125 bytes (§5.5). Never truncated.
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// Queuing the frame would pass
    /// [`Config::high_water_mark`](super::Config::high_water_mark); `queued`
    /// bytes are waiting to be written. Retry after the host drained the
    /// output.
    #[error("output high-water mark reached ({queued} bytes queued)")]
    Backpressure {
        /// Bytes already queued for the socket.
        queued: usize,
    },
    /// A close code that may not be sent (see
    /// [`CloseCode::is_valid_on_wire`]).
    #[error("close code may not be sent")]
    InvalidCode,
}
