//! Test component: an echo server that grows its memory until the host's
//! cap stops it. The text message `hog` allocates (and touches) 1 MiB blocks
//! without end; a request for `/hog` does the same in the handshake.
//! Everything else is echoed.

use std::hint::black_box;

use ws_edge_guest::{Decision, Handler, Message, Outbox, Request};

struct Hog {
    blocks: Vec<Vec<u8>>,
}

fn grow(blocks: &mut Vec<Vec<u8>>) -> ! {
    loop {
        // Allocation failure aborts (a trap) once linear memory cannot grow.
        blocks.push(black_box(vec![0xA5; 1 << 20]));
    }
}

impl Handler for Hog {
    fn on_request(request: &Request) -> Decision<Self> {
        let mut blocks = Vec::new();
        if request.resource_url().path() == "/hog" {
            grow(&mut blocks);
        }
        Decision::accept(Hog { blocks })
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text("hog") => grow(&mut self.blocks),
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }
}

ws_edge_guest::export_handler!(Hog);
