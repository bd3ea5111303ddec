//! Conformance component: an echo server that writes a lot to stdout and
//! stderr. A request for `/noisy` writes [`HANDSHAKE_KIB`] KiB to each
//! stream while it is being accepted; the text message `noise N` writes `N`
//! KiB to each (at most [`MAX_KIB`]) and answers `done N`. Everything else
//! is echoed. A host must keep serving through all of it: guest output may
//! be logged or discarded, but writing it must neither block nor crash the
//! host (docs/hosting.md, "Guest output").

use std::io::Write as _;

use ws_edge_guest::{Decision, Handler, Message, Outbox, Request};

/// KiB written to each stream while accepting `/noisy`.
const HANDSHAKE_KIB: usize = 64;
/// The most `noise N` writes to each stream, in KiB.
const MAX_KIB: usize = 1024;

struct Noisy;

/// Writes `kib` KiB to stdout and to stderr, in 64-byte lines, ignoring
/// errors (a host may close the streams).
fn noise(kib: usize) {
    let line = [b'.'; 63];
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for i in 0..kib * 16 {
        let _ = out.write_all(&line);
        let _ = out.write_all(b"\n");
        let _ = err.write_all(&line);
        let _ = err.write_all(b"\n");
        if i % 256 == 0 {
            let _ = out.flush();
        }
    }
    let _ = out.flush();
    let _ = err.flush();
}

impl Handler for Noisy {
    fn on_request(request: &Request) -> Decision<Self> {
        if request.resource_url().path() == "/noisy" {
            noise(HANDSHAKE_KIB);
        }
        Decision::accept(Noisy)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text(text) => match text.strip_prefix("noise ").map(str::parse::<usize>) {
                Some(Ok(kib)) => {
                    let kib = kib.min(MAX_KIB);
                    noise(kib);
                    out.send_text(&format!("done {kib}"))
                }
                _ => out.send_text(text),
            },
            Message::Binary(data) => out.send_binary(data),
        };
    }
}

ws_edge_guest::export_handler!(Noisy);
