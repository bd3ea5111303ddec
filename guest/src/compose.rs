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
            let _ = match message {
                wit::Message::Text(text) => out.send_text(text),
                wit::Message::Binary(data) => out.send_binary(data),
            };
        }
        if let Some(close) = reply.close
            && out.close(close.code, &close.reason) == Err(SendError::InvalidCode)
        {
            let _ = out.close(CloseCode::new(1011), &close.reason);
        }
    }

    fn on_close(&mut self, code: u16, reason: &str) {
        self.session.closed(code, reason);
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
            .map(|h| wit::Field {
                name: h.name.to_owned(),
                value: h.value.to_vec(),
            })
            .collect(),
        peer: request.transport().peer.map(|p| p.ip().to_string()),
        client: request.remote_address().map(|ip| ip.to_string()),
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

fn header(field: wit::Field) -> Header {
    Header::from_bytes(field.name, field.value)
}

fn accept_options(options: wit::AcceptOptions) -> AcceptOptions {
    AcceptOptions {
        protocol: options.protocol,
        allowed_origin: None,
        cookies: options.cookies.into_iter().map(set_cookie).collect(),
        headers: options.headers.into_iter().map(header).collect(),
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
