//! The echo component: accepts every valid upgrade request and sends each
//! message back as it came (text as text, binary as binary).
//!
//! Limits are raised above WebSocket-Node's defaults so that the
//! Autobahn|Testsuite cases with 16 MiB messages (9.*) are echoed, and a
//! message goes back as one frame, as it usually came, rather than in the
//! default 16 KiB fragments.

use ws_edge_guest::{Config, Decision, Handler, Message, Outbox, Request};

/// Per-connection state: none.
struct Echo;

impl Handler for Echo {
    fn on_request(_request: &Request) -> Decision<Self> {
        Decision::accept(Echo)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        // A failed send means the peer stopped reading (backpressure) or the
        // connection is closing; dropping the echo is the right answer for
        // an echo server either way.
        let _ = match message {
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }

    fn connection_config(_request: &Request) -> Config {
        Config {
            max_frame_payload: 16 << 20,
            max_message: 16 << 20,
            high_water_mark: 16 << 20,
            fragment_threshold: None,
            ..Config::default()
        }
    }
}

ws_edge_guest::export_handler!(Echo);
