//! The behaviour of `examples/compose/handler`, written as an ordinary
//! ws-edge component (one component, no boundary between the protocol code
//! and the handler). `host/examples/boundary.rs` compares it with the
//! composed component to isolate what the extra component boundary costs;
//! the end-to-end tests use the composed one.

use ws_edge_guest::prelude::*;

/// The subprotocols the handler speaks, most preferred first.
const PROTOCOLS: [&str; 2] = ["shout.v1", "plain.v1"];

/// One connection's state.
struct Conversation {
    /// Whether `shout.v1` was selected.
    shout: bool,
    /// Messages received so far.
    count: u64,
}

impl Handler for Conversation {
    fn on_request(request: &Request) -> Decision<Self> {
        let path = request.resource_url().path();
        if path != "/compose" {
            return Decision::Reject(
                RejectOptions::new(403)
                    .reason(format!("{path} is not served here"))
                    .header("X-Handler", "compose-example")
                    .body("only /compose is served here\n"),
            );
        }
        let protocol = PROTOCOLS.iter().find_map(|p| request.find_protocol(p));
        let shout = protocol.is_some_and(|p| p.eq_ignore_ascii_case(PROTOCOLS[0]));
        let mut options = AcceptOptions::new().header("X-Handler", "compose-example");
        options.protocol = protocol.map(str::to_owned);
        let state = Conversation { shout, count: 0 };
        Decision::accept_with(options, state)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        self.count += 1;
        let n = self.count;
        // Failed sends (backpressure, closing) are dropped, as the composed
        // protocol component does.
        let _ = match message {
            Message::Text("bye") => out
                .send_text(&format!("#{n} goodbye"))
                .and_then(|()| out.close(CloseCode::NORMAL, "bye")),
            Message::Text(text) if self.shout => {
                out.send_text(&format!("#{n} {}", text.to_uppercase()))
            }
            Message::Text(text) => out.send_text(&format!("#{n} {text}")),
            Message::Binary(data) => {
                let reversed: Vec<u8> = data.iter().rev().copied().collect();
                out.send_binary(&reversed)
            }
        };
    }
}

ws_edge_guest::export_handler!(Conversation);
