//! Framing and the connection state machine (RFC 6455 §5–§7).
//!
//! [`Connection`] is the server end of one WebSocket connection without
//! I/O: it decodes client frames from bytes the host read, hands messages to
//! a callback, encodes what the handler sends, and runs the keepalive and
//! close timers from instants the host passes in. It maps directly onto the
//! WIT `connection` resource: each of `receive`, `tick`, `close` and
//! `disconnected` is followed by [`Connection::take_output`],
//! [`Connection::state`] and [`Connection::deadline`], which make the
//! `transmit` record.
//!
//! The frame codec is public too, for playing the client in tests and
//! tools: [`FrameHeader`] (parse and write a header), [`write_frame`] and
//! [`apply_mask`].

mod close;
mod config;
mod connection;
mod count;
mod error;
mod frame;
mod mask;
mod utf8;

pub use close::{CloseCode, CloseFrame, Ending, MAX_CLOSE_REASON, Timer, truncate_reason};
pub use config::{Config, Extension};
pub use connection::{Connection, Event, Outbox, State};
pub use count::FrameCounter;
pub use error::{ProtocolError, SendError};
pub use frame::{FrameHeader, MAX_HEADER_LEN, OpCode, RSV1, RSV2, RSV3, write_frame};
pub use mask::apply_mask;
