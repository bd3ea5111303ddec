//! The echo component: accepts every valid upgrade request and sends each
//! message back as it came (text as text, binary as binary).
//!
//! It keeps the library's limits (64 KiB frames, 1 MiB messages, 1 MiB of
//! queued output), and sends a message back as one frame, as it usually came,
//! rather than in the default 16 KiB fragments. An operator raises the limits
//! through the component's environment, for example for the
//! Autobahn|Testsuite cases with 16 MiB messages (9.*):
//!
//! ```text
//! ws-edge serve --env WS_EDGE_MAX_FRAME_PAYLOAD=16777216 \
//!     --env WS_EDGE_MAX_MESSAGE=16777216 --env WS_EDGE_HIGH_WATER_MARK=16777216
//! ```
//!
//! (`ws_edge_guest::config` lists the keys.)
//!
//! It accepts permessage-deflate (RFC 7692) when the client offers it, with
//! the library's [`DeflateConfig::default`] policy: context takeover, level
//! 2, messages under 1 KiB sent plain. `--env WS_EDGE_DEFLATE=off` turns it
//! off, `--env WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER=true` keeps no state
//! between messages (docs/deflate.md).

use ws_edge_guest::prelude::*;

/// Per-connection state: none.
struct Echo;

impl Handler for Echo {
    fn on_request(_request: &Request) -> Decision<Self> {
        Decision::accept_with(AcceptOptions::new().deflate(DeflateConfig::default()), Echo)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        // A failed send means the peer stopped reading (backpressure) or the
        // connection is closing; dropping the echo is the right answer for
        // an echo server either way.
        out.send(message).ok();
    }

    fn connection_config(_request: &Request) -> Config {
        config_from_env(Config {
            fragment_threshold: None,
            ..Config::default()
        })
    }
}

ws_edge_guest::export_handler!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use ws_edge_guest::testing::connect;

    #[test]
    fn echoes_text_and_binary_as_they_came() {
        let mut ws = connect::<Echo>(TestRequest::new("/")).expect("accepted");
        ws.send_text("hello");
        ws.send_binary(&[0, 1, 2]);
        assert_eq!(
            ws.recv_all(),
            [Reply::Text("hello".into()), Reply::Binary(vec![0, 1, 2])]
        );
    }

    #[test]
    fn the_library_limits_apply() {
        let mut ws = connect::<Echo>(TestRequest::new("/any/path")).expect("accepted");
        let big = vec![7u8; 60_000];
        ws.send_binary(&big);
        assert_eq!(ws.recv(), Some(Reply::Binary(big)));
        // Frames over 64 KiB are refused from their header.
        ws.send_binary(&[7u8; 70_000]);
        assert!(matches!(
            ws.recv(),
            Some(Reply::Close(code, _)) if code == CloseCode::MESSAGE_TOO_BIG
        ));
    }

    #[test]
    fn answers_the_close_handshake() {
        let mut ws = connect::<Echo>(TestRequest::new("/")).expect("accepted");
        ws.close(CloseCode::NORMAL, "done");
        assert_eq!(
            ws.recv(),
            Some(Reply::Close(CloseCode::NORMAL, String::new()))
        );
        assert!(ws.is_closed());
    }
}
