//! Framing and the connection state machine (RFC 6455 §5–§7).
