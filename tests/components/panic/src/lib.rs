//! Test component: an echo server that panics on request. A request for
//! `/panic` panics in the handshake; the text message `panic` panics while
//! the connection is open (the panic message goes to stderr, which the host
//! logs). The text message `stderr` writes a line to stderr and answers
//! `wrote to stderr`. Everything else is echoed.

use ws_edge_guest::{Decision, Handler, Message, Outbox, Request};

struct Panicky;

impl Handler for Panicky {
    fn on_request(request: &Request) -> Decision<Self> {
        if request.resource_url().path() == "/panic" {
            panic!("test component: panic in the handshake");
        }
        Decision::accept(Panicky)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text("panic") => panic!("test component: panic on a message"),
            Message::Text("stderr") => {
                eprintln!("test component: a line on stderr");
                out.send_text("wrote to stderr")
            }
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }
}

ws_edge_guest::export_handler!(Panicky);
