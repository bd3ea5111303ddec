//! Test component: an echo server with short keepalive timers (a ping after
//! 200 ms without input, then 300 ms for any reply), so the end-to-end tests
//! can watch the host drive the timers of a client that says nothing.

use ws_edge_guest::{Config, Decision, Handler, Message, Outbox, Request};

/// How long a connection may be idle before the server pings it.
const INTERVAL_MS: u64 = 200;
/// How long after that ping the server waits for any byte before dropping.
const GRACE_MS: u64 = 300;

struct Keepalive;

impl Handler for Keepalive {
    fn on_request(_request: &Request) -> Decision<Self> {
        Decision::accept(Keepalive)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }

    fn connection_config(_request: &Request) -> Config {
        Config {
            keepalive_interval_ms: Some(INTERVAL_MS),
            keepalive_grace_ms: Some(GRACE_MS),
            ..Config::default()
        }
    }
}

ws_edge_guest::export_handler!(Keepalive);
