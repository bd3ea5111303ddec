//! Conformance component: a handler that closes first. The text message
//! `close CODE [REASON]` makes the handler start the close handshake with
//! that code and reason; anything else is echoed. The close timeout is
//! [`CLOSE_TIMEOUT_MS`], so a peer that never answers the close frame is
//! dropped quickly (`closed(timed-out(close-handshake))`). A code the
//! handler may not send is answered with the text `refused CODE`.

use ws_edge_guest::{Config, Decision, Handler, Message, Outbox, Request, config_from_env};

/// How long the server waits for the peer's close frame.
const CLOSE_TIMEOUT_MS: u64 = 300;

struct Closer;

impl Handler for Closer {
    fn on_request(_request: &Request) -> Decision<Self> {
        Decision::accept(Closer)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text(text) => match text.strip_prefix("close ") {
                Some(args) => {
                    let (code, reason) = args.split_once(' ').unwrap_or((args, ""));
                    match code.parse::<u16>() {
                        Ok(code) if out.close(code, reason).is_ok() => Ok(()),
                        _ => out.send_text(&format!("refused {code}")),
                    }
                }
                None => out.send_text(text),
            },
            Message::Binary(data) => out.send_binary(data),
        };
    }

    fn connection_config(_request: &Request) -> Config {
        config_from_env(Config {
            close_timeout_ms: CLOSE_TIMEOUT_MS,
            ..Config::default()
        })
    }
}

ws_edge_guest::export_handler!(Closer);
