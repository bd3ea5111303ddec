//! Close codes and close frames (RFC 6455 §7.4, §5.5.1).

use core::fmt;

/// A close status code (RFC 6455 §7.4 and the IANA "WebSocket Close Code
/// Number Registry").
///
/// The type holds any `u16`: besides the codes that travel in close frames it
/// also represents the two codes that are only ever *reported* locally,
/// [`CloseCode::NO_STATUS`] (1005) and [`CloseCode::ABNORMAL`] (1006). Use
/// [`CloseCode::is_valid_on_wire`] to ask whether a code may appear in a close
/// frame.
///
/// | Range | Meaning |
/// |---|---|
/// | 0–999 | never used; invalid |
/// | 1000–1003, 1007–1014 | defined by RFC 6455 / IANA; valid on the wire |
/// | 1004 | reserved; invalid |
/// | 1005, 1006, 1015 | local reports only; MUST NOT be sent, invalid when received |
/// | 1016–2999 | reserved for future RFCs; invalid until registered |
/// | 3000–3999 | registered with IANA for libraries and frameworks; valid |
/// | 4000–4999 | private use; valid |
/// | 5000+ | undefined; invalid |
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: normal closure; the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint received a data type it cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1004: reserved by RFC 6455; never valid.
    pub const RESERVED: CloseCode = CloseCode(1004);
    /// 1005: reported locally when a close frame carried no code; never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: reported locally when the connection ended without a close
    /// frame; never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data was inconsistent with its type (for example
    /// text that is not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message or frame was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response (IANA).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reported locally when the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Wraps any code. Validity is a separate question, see
    /// [`CloseCode::is_valid_on_wire`].
    pub const fn new(code: u16) -> CloseCode {
        CloseCode(code)
    }

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether the code may appear in a close frame, sent or received
    /// (RFC 6455 §7.4.1–§7.4.2 and the IANA registry): 1000–1003, 1007–1014
    /// and 3000–4999.
    ///
    /// A received close frame with any other code is a protocol error (1002);
    /// [`Connection::close`](super::Connection::close) replaces such a code
    /// with 1011 and [`Outbox::close`](super::Outbox::close) refuses it.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The content of a close frame: its code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code. 1005 means the peer's close frame carried no code.
    pub code: CloseCode,
    /// The UTF-8 reason, possibly empty.
    pub reason: String,
}

impl CloseFrame {
    /// Appends this frame as a server sends it (unmasked, RFC 6455 §5.5.1):
    /// a code that may not be sent is replaced by 1011
    /// ([`CloseCode::INTERNAL_ERROR`]), 1005 sends an empty payload, and the
    /// reason is cut at a UTF-8 boundary to [`MAX_CLOSE_REASON`] bytes.
    ///
    /// For a host that must end a connection whose component failed; a
    /// [`Connection`](super::Connection) writes its own close frames.
    ///
    /// ```
    /// use ws_edge::protocol::{CloseCode, CloseFrame};
    /// let mut wire = Vec::new();
    /// CloseFrame { code: CloseCode::INTERNAL_ERROR, reason: "oops".into() }.write_to(&mut wire);
    /// assert_eq!(wire, b"\x88\x06\x03\xf3oops");
    /// ```
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let (payload, len) = close_payload(self.code, &self.reason);
        super::frame::write_frame(out, true, super::OpCode::Close, None, &payload[..len]);
    }
}

/// The payload of a close frame with `code` and `reason`, as sent: the code
/// (1011 instead of one that may not be sent, nothing for 1005) and the
/// reason cut to [`MAX_CLOSE_REASON`] bytes. Returns the buffer and the
/// length used.
pub(crate) fn close_payload(code: CloseCode, reason: &str) -> ([u8; 125], usize) {
    let mut payload = [0u8; 125];
    if code == CloseCode::NO_STATUS {
        return (payload, 0);
    }
    let code = if code.is_valid_on_wire() {
        code
    } else {
        CloseCode::INTERNAL_ERROR
    };
    let reason = truncate_reason(reason).as_bytes();
    payload[..2].copy_from_slice(&code.as_u16().to_be_bytes());
    payload[2..2 + reason.len()].copy_from_slice(reason);
    (payload, 2 + reason.len())
}

/// A timer of a [`Connection`](super::Connection) that can end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// A keepalive ping went unanswered for the grace period.
    Keepalive,
    /// Our close frame went unanswered for the close timeout.
    CloseHandshake,
}

/// How a connection ended: what [`State::Closed`](super::State::Closed)
/// carries, as the WIT `ending`.
///
/// A host acts on the case: [`Ending::Clean`] closes the socket at once,
/// [`Ending::Failed`] and [`Ending::TimedOut`] close the sending side and
/// discard input briefly (so our close frame is not destroyed by a reset),
/// [`Ending::Lost`] has nothing left to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Both close frames were exchanged: the peer's frame (code 1005 if it
    /// carried none).
    Clean(CloseFrame),
    /// The peer broke the protocol: the code of the violation (1002, 1007
    /// or 1009) and its reason, sent in our close frame without waiting for
    /// the peer's (unless we had sent a close frame already).
    Failed(CloseFrame),
    /// A timer ran out.
    TimedOut(Timer),
    /// The transport ended without a close handshake
    /// ([`Connection::disconnected`](super::Connection::disconnected)).
    Lost,
}

impl Ending {
    /// The close code the handler is told: the frame's code, or 1006
    /// ([`CloseCode::ABNORMAL`]) when no close frame ended the connection.
    pub fn code(&self) -> CloseCode {
        match self {
            Ending::Clean(frame) | Ending::Failed(frame) => frame.code,
            Ending::TimedOut(_) | Ending::Lost => CloseCode::ABNORMAL,
        }
    }

    /// The reason the handler is told: the frame's reason, or a fixed text
    /// saying which timer ran out or that the connection was lost.
    pub fn reason(&self) -> &str {
        match self {
            Ending::Clean(frame) | Ending::Failed(frame) => &frame.reason,
            Ending::TimedOut(Timer::Keepalive) => "keepalive timeout",
            Ending::TimedOut(Timer::CloseHandshake) => "close handshake timed out",
            Ending::Lost => "connection lost",
        }
    }
}

/// The longest reason that fits a close frame: 125 bytes of control payload
/// minus the 2-byte code.
pub const MAX_CLOSE_REASON: usize = 123;

/// Truncates `reason` to at most [`MAX_CLOSE_REASON`] bytes without splitting
/// a UTF-8 sequence.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
