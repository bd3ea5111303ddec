//! Test component: an echo server that loops forever on request. A request
//! for `/spin` loops in the handshake; the text message `spin` loops while
//! the connection is open. Everything else is echoed. The host's CPU
//! deadline must end the call.

use std::hint::black_box;

use ws_edge_guest::{Decision, Handler, Message, Outbox, Request};

struct Spin;

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

impl Handler for Spin {
    fn on_request(request: &Request) -> Decision<Self> {
        if request.resource_url().path() == "/spin" {
            spin_forever();
        }
        Decision::accept(Spin)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text("spin") => spin_forever(),
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }
}

ws_edge_guest::export_handler!(Spin);
