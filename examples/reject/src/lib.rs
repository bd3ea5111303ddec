//! A component that refuses every WebSocket connection with `403 Forbidden`,
//! a reason header and a short body. Malformed requests still get the
//! validation's 400 / 426 / 431.

use ws_edge_guest::{Decision, Handler, RejectOptions, Request};

/// Never constructed: nothing is accepted.
struct Reject;

impl Handler for Reject {
    fn on_request(_request: &Request) -> Decision<Self> {
        Decision::Reject(
            RejectOptions::new(403)
                .reason("this endpoint accepts no WebSocket connections")
                .body("WebSocket connections are not accepted here.\n"),
        )
    }
}

ws_edge_guest::export_handler!(Reject);
