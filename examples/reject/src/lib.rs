//! A component that refuses every WebSocket connection with `403 Forbidden`,
//! a reason header and a short body. Malformed requests still get the
//! validation's 400 / 426 / 431.

use ws_edge_guest::prelude::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use ws_edge_guest::testing::connect;

    #[test]
    fn every_request_gets_403_with_a_reason_and_body() {
        let rejected = connect::<Reject>(TestRequest::new("/")).expect_err("rejected");
        assert_eq!(rejected.status(), 403);
        assert_eq!(
            rejected.reason(),
            Some("this endpoint accepts no WebSocket connections")
        );
        assert_eq!(
            rejected.body(),
            b"WebSocket connections are not accepted here.\n"
        );
    }

    #[test]
    fn malformed_requests_get_the_validation_status() {
        let bad = TestRequest::new("/").header("Sec-WebSocket-Version", "8");
        assert_eq!(connect::<Reject>(bad).expect_err("rejected").status(), 400);
    }
}
