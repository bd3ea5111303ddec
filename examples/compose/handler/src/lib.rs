//! A handler component (world `websocket-handler`) that knows nothing of
//! HTTP parsing or WebSocket framing: it depends on `wit-bindgen` only, as a
//! handler in any other language would depend on its own bindings
//! generator. `wac plug` composes it with the protocol component.
//!
//! Behaviour, so a test can see that composition happened:
//! - requests for `/compose` are accepted; of the subprotocols the client
//!   offers, `shout.v1` is preferred over `plain.v1`, and the response
//!   carries `X-Handler: compose-example`;
//! - any other path is rejected with `403`, a reason and a body;
//! - under `shout.v1` each text message comes back upper-cased, otherwise
//!   as it came, prefixed in both cases with its number on this connection
//!   (`#1 HELLO`); binary messages come back reversed;
//! - the text `bye` is answered with `#n goodbye` and a close with `1000`;
//! - the text `throw`, and a request for `/compose/throw`, make it fail
//!   (a panic here, an exception in the Python and JavaScript versions):
//!   the host ends that connection with `1011` (or answers `500`) and logs
//!   the message, `handler failure: asked to throw by ...`.
//!
//! `examples/handler-py` and `examples/handler-js` are the same handler in
//! Python and JavaScript; one test suite (`host/tests/e2e/compose.rs`) runs
//! against all three.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "websocket-handler",
    });
}

use std::cell::Cell;

use bindings::exports::ws_edge::websocket::handler::{
    AcceptOptions, CloseFrame, Decision, Guest, GuestSession, Header, Message, RejectOptions,
    Reply, Session, UpgradeRequest,
};

/// The subprotocols this handler speaks, most preferred first.
const PROTOCOLS: [&str; 2] = ["shout.v1", "plain.v1"];

struct Component;

impl Guest for Component {
    type Session = Conversation;

    fn decide(request: UpgradeRequest) -> Decision {
        if request.path == "/compose/throw" {
            panic!(
                "handler failure: asked to throw by a request for {}",
                request.path
            );
        }
        if request.path != "/compose" {
            return Decision::Reject(RejectOptions {
                status: 403,
                reason: Some(format!("{} is not served here", request.path)),
                headers: vec![field("X-Handler", "compose-example")],
                body: b"only /compose is served here\n".to_vec(),
            });
        }
        // The client's own spelling is echoed back by the protocol component;
        // compare case-insensitively as it does.
        let protocol = PROTOCOLS.iter().find_map(|wanted| {
            request
                .protocols
                .iter()
                .find(|offered| offered.eq_ignore_ascii_case(wanted))
        });
        let shout = protocol.is_some_and(|p| p.eq_ignore_ascii_case(PROTOCOLS[0]));
        let options = AcceptOptions {
            protocol: protocol.cloned(),
            headers: vec![field("X-Handler", "compose-example")],
            cookies: Vec::new(),
        };
        let session = Conversation {
            shout,
            count: Cell::new(0),
        };
        Decision::Accept((options, Session::new(session)))
    }
}

/// One connection's state.
struct Conversation {
    /// Whether `shout.v1` was selected.
    shout: bool,
    /// Messages received so far.
    count: Cell<u64>,
}

impl GuestSession for Conversation {
    fn on_message(&self, message: Message) -> Reply {
        let n = self.count.get() + 1;
        self.count.set(n);
        match message {
            Message::Text(text) if text == "bye" => Reply {
                send: vec![Message::Text(format!("#{n} goodbye"))],
                close: Some(CloseFrame {
                    code: 1000,
                    reason: "bye".into(),
                }),
            },
            Message::Text(text) if text == "throw" => {
                panic!("handler failure: asked to throw by message #{n}")
            }
            Message::Text(text) => {
                let text = if self.shout {
                    text.to_uppercase()
                } else {
                    text
                };
                Reply {
                    send: vec![Message::Text(format!("#{n} {text}"))],
                    close: None,
                }
            }
            Message::Binary(mut data) => {
                data.reverse();
                Reply {
                    send: vec![Message::Binary(data)],
                    close: None,
                }
            }
        }
    }

    fn closed(&self, _frame: CloseFrame) {}
}

fn field(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.as_bytes().to_vec(),
    }
}

bindings::export!(Component with_types_in bindings);
