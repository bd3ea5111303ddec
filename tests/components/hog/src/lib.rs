//! Test component: an echo server that grows its memory until the host's
//! cap stops it. The text message `hog` allocates (and touches) 1 MiB blocks
//! without end; a request for `/hog` does the same in the handshake.
//! `remember:TEXT` keeps TEXT in the instance's memory (a static and the
//! heap) and `recall` answers what was kept (`nothing` in a fresh
//! instance), so tests can see whether memory outlives a connection.
//! Everything else is echoed.

use std::hint::black_box;
use std::sync::Mutex;

/// What `remember:` kept, for the instance's lifetime.
static KEPT: Mutex<Option<String>> = Mutex::new(None);

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
            Message::Text("recall") => {
                let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
                out.send_text(kept.as_deref().unwrap_or("nothing"))
            }
            Message::Text(text) if text.starts_with("remember:") => {
                *KEPT.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(text["remember:".len()..].to_owned());
                out.send_text("kept")
            }
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }
}

ws_edge_guest::export_handler!(Hog);
