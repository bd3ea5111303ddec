//! A chat endpoint that checks who connects before accepting:
//!
//! 1. the `Origin` must be on an allow-list (otherwise `403`),
//! 2. the client must offer a supported subprotocol; the server picks the
//!    first of its own preference list that the client offered (otherwise
//!    `400`),
//! 3. the client must present a known token, as the `chat_token` cookie or
//!    the `token` query parameter (otherwise `401`).
//!
//! On accept it selects the subprotocol, sets a `chat_user` cookie and an
//! `X-Chat-User` header, and answers each text message with
//! `<user>: <text>`. Every rejection carries an `X-WebSocket-Reject-Reason`.
//!
//! It accepts permessage-deflate with context takeover and a threshold of
//! 128 bytes: chat lines are short and alike, so even short ones shrink once
//! the compressor has seen a few.

use ws_edge_guest::prelude::*;

/// Origins allowed to connect (browsers send `Origin`; so must other clients).
const ALLOWED_ORIGINS: &[&str] = &[
    "http://localhost:8080",
    "http://127.0.0.1:8080",
    "https://chat.example",
];

/// Subprotocols in the server's order of preference.
const PROTOCOLS: &[&str] = &["chat.v2", "chat.v1"];

/// Demo credentials: token → user name.
const TOKENS: &[(&str, &str)] = &[("alice-secret", "alice"), ("bob-secret", "bob")];

/// Per-connection state: who is talking.
struct Chat {
    user: &'static str,
}

impl Handler for Chat {
    fn on_request(request: &Request) -> Decision<Self> {
        let origin_ok = request
            .origin()
            .is_some_and(|o| ALLOWED_ORIGINS.iter().any(|a| a.eq_ignore_ascii_case(o)));
        if !origin_ok {
            return Decision::reject(403, "origin not allowed");
        }

        let Some(protocol) = PROTOCOLS
            .iter()
            .find(|p| request.find_protocol(p).is_some())
        else {
            return Decision::reject(400, "no supported subprotocol offered (chat.v2, chat.v1)");
        };

        let token = request
            .cookie("chat_token")
            .map(|c| c.into_owned())
            .or_else(|| request.query_value("token").map(|t| t.into_owned()));
        let user = token
            .as_deref()
            .and_then(|t| TOKENS.iter().find(|(known, _)| *known == t))
            .map(|(_, user)| *user);
        let Some(user) = user else {
            return Decision::reject(401, "missing or invalid token");
        };

        let options = AcceptOptions::new()
            .protocol(*protocol)
            .cookie(
                SetCookie::new("chat_user", user)
                    .path("/")
                    .http_only(true)
                    // Over wss:// the cookie travels only over TLS.
                    .secure(request.is_tls())
                    .same_site(SameSite::Strict),
            )
            .header("X-Chat-User", user)
            .deflate(DeflateConfig {
                threshold: 128,
                ..DeflateConfig::default()
            });
        Decision::accept_with(options, Chat { user })
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        match message {
            Message::Text(text) => out.send_text(&format!("{}: {text}", self.user)).ok(),
            Message::Binary(data) => out.send_binary(data).ok(),
        };
    }
}

ws_edge_guest::export_handler!(Chat);

#[cfg(test)]
mod tests {
    use super::*;
    use ws_edge_guest::testing::connect;

    /// A request that passes every check.
    fn good() -> TestRequest {
        TestRequest::new("/chat")
            .origin("https://chat.example")
            .protocols(&["chat.v1", "chat.v2"])
    }

    #[test]
    fn a_known_token_is_accepted_with_the_preferred_protocol() {
        let mut ws =
            connect::<Chat>(good().cookie("chat_token", "alice-secret")).expect("accepted");
        let response = ws.response();
        assert_eq!(
            response.header("Sec-WebSocket-Protocol"),
            Some(&b"chat.v2"[..])
        );
        assert_eq!(response.header("X-Chat-User"), Some(&b"alice"[..]));
        let cookie = response.header("Set-Cookie").expect("cookie");
        assert_eq!(
            cookie,
            b"chat_user=alice; Path=/; HttpOnly; SameSite=Strict"
        );
        ws.send_text("hi");
        assert_eq!(ws.recv(), Some(Reply::Text("alice: hi".into())));
    }

    #[test]
    fn the_token_may_come_in_the_query() {
        let ws = connect::<Chat>(
            TestRequest::new("/chat?token=bob-secret")
                .origin("http://localhost:8080")
                .protocols(&["chat.v1"]),
        )
        .expect("accepted");
        assert_eq!(ws.handler().user, "bob");
        assert_eq!(
            ws.response().header("Sec-WebSocket-Protocol"),
            Some(&b"chat.v1"[..])
        );
    }

    #[test]
    fn each_check_has_its_status_and_reason() {
        let cases = [
            (
                TestRequest::new("/chat")
                    .origin("https://evil.example")
                    .protocols(&["chat.v2"])
                    .cookie("chat_token", "alice-secret"),
                403,
            ),
            (
                TestRequest::new("/?token=alice-secret").origin("https://chat.example"),
                400,
            ),
            (good(), 401),
            (good().cookie("chat_token", "guess"), 401),
        ];
        for (request, status) in cases {
            let rejected = connect::<Chat>(request).expect_err("rejected");
            assert_eq!(rejected.status(), status);
            assert!(rejected.reason().is_some());
        }
    }
}
