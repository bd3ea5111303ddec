//! RFC 6455 WebSocket server protocol without I/O.
//!
//! `ws-edge` implements the server side of the WebSocket protocol as pure
//! functions and state machines over byte slices: it never touches a socket
//! or reads a clock. The same code runs natively (tests, benchmarks) and
//! inside a `wasm32-wasip2` component, where a host feeds it the bytes it
//! reads and writes the bytes it returns.
//!
//! - [`handshake`]: the opening handshake (RFC 6455 §4.2): parsing and
//!   validating the upgrade request, the request model handlers inspect, and
//!   the accept / reject responses.
//! - [`protocol`]: framing (RFC 6455 §5–§7): the frame codec, close codes and
//!   the connection state machine.
//! - [`pubsub`]: the topic grammar of the host's publish/subscribe service.
//! - [`deflate`]: permessage-deflate (RFC 7692): negotiation and the message
//!   codec, an [`protocol::Extension`] of the connection.

#![deny(missing_docs)]

pub mod deflate;
pub mod handshake;
pub mod protocol;
pub mod pubsub;

/// The answer of an incremental parser reading from the start of a buffer
/// that the caller keeps appending to: the one "need more bytes" shape of
/// this crate.
///
/// [`handshake::Request::from_head`] and [`handshake::parse_head`] answer
/// `Parsed<Result<_, Rejection>>` (a rejection still says how many bytes it
/// examined); [`protocol::FrameHeader::parse`] answers
/// `Result<Parsed<FrameHeader>, ProtocolError>`.
///
/// [`Rejection`]: handshake::Rejection
/// [`FrameHeader`]: protocol::FrameHeader
/// [`ProtocolError`]: protocol::ProtocolError
///
/// ```
/// use ws_edge::Parsed;
/// use ws_edge::protocol::FrameHeader;
/// let frame = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
/// assert!(FrameHeader::parse(&frame[..1]).unwrap().is_incomplete());
/// let Parsed::Complete { consumed, value } = FrameHeader::parse(&frame).unwrap() else {
///     panic!("a whole header")
/// };
/// assert_eq!((consumed, value.payload_len), (2, 5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Parsed<T> {
    /// The bytes do not yet hold a whole item (and are within the limits).
    /// Not an error: read more and call again with everything read so far.
    Incomplete,
    /// An item starts the buffer.
    Complete {
        /// How many bytes the item occupied; the bytes after it belong to
        /// what follows.
        consumed: usize,
        /// What the bytes became.
        value: T,
    },
}

impl<T> Parsed<T> {
    /// Whether more bytes are needed.
    #[inline]
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Parsed::Incomplete)
    }

    /// Maps the value, keeping `consumed`.
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Parsed::Incomplete => Parsed::Incomplete,
            Parsed::Complete { consumed, value } => Parsed::Complete {
                consumed,
                value: f(value),
            },
        }
    }
}
