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

#![deny(missing_docs)]

pub mod handshake;
pub mod protocol;
