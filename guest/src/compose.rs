//! A [`Handler`] that forwards to an imported WIT `handler` interface, for
//! the generic protocol component (world `websocket-protocol`).
//!
//! The protocol component is one line:
//!
//! ```ignore
//! ws_edge_guest::export_handler!(ws_edge_guest::compose::Delegate);
//! ```
//!
//! `wac plug` then fills its `handler` import with a component written in any
//! language that exports `ws-edge:websocket/handler`. Everything the core
//! does for a Rust handler (validation, responses, framing, limits, timers)
//! stays here; only the decision and the message and close hooks cross the
//! component boundary, each as one call.

use ws_edge::handshake::{Expires, Header, SameSite};

use crate::bindings::ws_edge::websocket::handler as wit;
use crate::{AcceptOptions, CloseCode, Decision, Handler, Message, Outbox, RejectOptions, Request};
use crate::{SendError, SetCookie};

/// The per-connection state of a composed handler: its `session`.
pub struct Delegate {
    session: wit::Session,
}

impl Handler for Delegate {
    fn on_request(request: &Request) -> Decision<Self> {
        match wit::decide(&upgrade_request(request)) {
            wit::Decision::Accept((options, session)) => {
                Decision::accept_with(accept_options(options), Delegate { session })
            }
            wit::Decision::Reject(options) => Decision::Reject(reject_options(options)),
        }
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let message = match message {
            Message::Text(text) => wit::Message::Text(text.to_owned()),
            Message::Binary(data) => wit::Message::Binary(data.to_vec()),
        };
        let reply = self.session.on_message(&message);
        for message in &reply.send {
            // Backpressure or a closing connection: the WIT contract says
            // such a message is dropped.
            match message {
                wit::Message::Text(text) => out.send_text(text).ok(),
                wit::Message::Binary(data) => out.send_binary(data).ok(),
            };
        }
        if let Some(close) = reply.close
            && out.close(close.code, &close.reason) == Err(SendError::InvalidCode)
        {
            out.close(CloseCode::INTERNAL_ERROR, &close.reason).ok();
        }
    }

    fn on_close(&mut self, code: CloseCode, reason: &str) {
        self.session.closed(&wit::CloseFrame {
            code: code.as_u16(),
            reason: reason.to_owned(),
        });
    }
}

/// The WIT view of a validated request.
fn upgrade_request(request: &Request) -> wit::UpgradeRequest {
    let url = request.resource_url();
    wit::UpgradeRequest {
        method: request.method().to_owned(),
        target: request.resource().to_owned(),
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
        host: request.host().to_owned(),
        headers: request
            .headers()
            .map(|h| wit::Header {
                name: h.name.to_owned(),
                value: h.value.to_vec(),
            })
            .collect(),
        peer: request.transport().peer.map(crate::wit_socket_addr),
        client: request.remote_address().map(crate::wit_ip),
        tls: request.is_tls(),
        origin: request.origin().map(str::to_owned),
        protocols: request.requested_protocols().map(str::to_owned).collect(),
        cookies: request
            .cookies()
            .map(|c| wit::Cookie {
                name: c.name.into_owned(),
                value: c.value.into_owned(),
            })
            .collect(),
    }
}

fn header(field: wit::Header) -> Header {
    Header::from_bytes(field.name, field.value)
}

fn accept_options(options: wit::AcceptOptions) -> AcceptOptions {
    AcceptOptions {
        protocol: options.protocol,
        allowed_origin: None,
        cookies: options.cookies.into_iter().map(set_cookie).collect(),
        headers: options.headers.into_iter().map(header).collect(),
        // The WIT accept options have no deflate field: the operator's
        // WS_EDGE_DEFLATE (config::deflate_from_env) decides.
        deflate: None,
    }
}

fn set_cookie(c: wit::SetCookie) -> SetCookie {
    let mut cookie = SetCookie::new(c.name, c.value)
        .secure(c.secure)
        .http_only(c.http_only);
    cookie.path = c.path;
    cookie.domain = c.domain;
    cookie.expires = c.expires.map(Expires::UnixSeconds);
    cookie.max_age = c.max_age;
    cookie.same_site = c.same_site.map(|s| match s {
        wit::SameSite::Strict => SameSite::Strict,
        wit::SameSite::Lax => SameSite::Lax,
        wit::SameSite::None => SameSite::None,
    });
    cookie
}

fn reject_options(options: wit::RejectOptions) -> RejectOptions {
    RejectOptions {
        status: options.status,
        reason: options.reason,
        headers: options.headers.into_iter().map(header).collect(),
        body: options.body,
    }
}

#[cfg(test)]
mod tests {
    //! The mappings between the core and the WIT `handler` types (natively;
    //! calls through the import are tested end to end with the composed
    //! component).

    use super::*;
    use ws_edge::Parsed;
    use ws_edge::handshake::{HandshakeConfig, Transport};

    fn request(head: &[u8], peer: &str) -> Request {
        let transport = Transport {
            peer: Some(peer.parse().expect("socket address")),
            tls: true,
        };
        match Request::from_head(head, transport, &HandshakeConfig::default()) {
            Parsed::Complete { value, .. } => value.expect("valid request"),
            Parsed::Incomplete => panic!("complete head expected"),
        }
    }

    #[test]
    fn the_handler_sees_what_the_request_offers() {
        let head = b"GET /chat?room=7 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, Superchat\r\n\
            Origin: https://example.com\r\nCookie: sid=\"abc\"; theme=dark\r\n\r\n";
        let r = upgrade_request(&request(head, "[2001:db8::1]:443"));
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/chat?room=7");
        assert_eq!(r.path, "/chat");
        assert_eq!(r.query.as_deref(), Some("room=7"));
        assert_eq!(r.host, "example.com");
        assert_eq!(r.headers.len(), 8);
        assert_eq!(r.headers[7].name, "Cookie");
        let peer = r.peer.expect("peer");
        assert!(matches!(
            peer.address,
            wit::IpAddress::Ipv6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        ));
        assert_eq!(peer.port, 443);
        assert!(matches!(
            r.client,
            Some(wit::IpAddress::Ipv6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
        ));
        assert!(r.tls);
        assert_eq!(r.origin.as_deref(), Some("https://example.com"));
        assert_eq!(r.protocols, ["chat", "Superchat"]);
        let cookies: Vec<_> = r.cookies.iter().map(|c| (&*c.name, &*c.value)).collect();
        assert_eq!(cookies, [("sid", "abc"), ("theme", "dark")]);

        let head = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let r = upgrade_request(&request(head, "127.0.0.1:5000"));
        assert_eq!((r.path.as_str(), r.query), ("/", None));
        assert!(r.protocols.is_empty() && r.cookies.is_empty() && r.origin.is_none());
    }

    #[test]
    fn options_map_field_for_field() {
        let accept = accept_options(wit::AcceptOptions {
            protocol: Some("chat".into()),
            headers: vec![wit::Header {
                name: "X-A".into(),
                value: vec![0x80, b'b'],
            }],
            cookies: vec![wit::SetCookie {
                name: "sid".into(),
                value: "1".into(),
                path: Some("/".into()),
                domain: None,
                expires: Some(0),
                max_age: Some(60),
                secure: true,
                http_only: true,
                same_site: Some(wit::SameSite::None),
            }],
        });
        assert_eq!(accept.protocol.as_deref(), Some("chat"));
        assert_eq!(accept.allowed_origin, None);
        assert_eq!(&*accept.headers[0].value, &[0x80, b'b']);
        let cookie = &accept.cookies[0];
        assert_eq!(
            cookie.to_header_value().expect("valid cookie"),
            "sid=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60; Secure; \
             HttpOnly; SameSite=None"
        );

        let reject = reject_options(wit::RejectOptions {
            status: 451,
            reason: Some("no".into()),
            headers: vec![],
            body: b"gone".to_vec(),
        });
        assert_eq!(
            reject,
            RejectOptions::new(451).reason("no").body(&b"gone"[..])
        );
    }
}
