//! Write ws-edge WebSocket handlers as `wasm32-wasip2` components.
//!
//! This crate is the whole component glue: the `wit-bindgen` bindings of the
//! `ws-edge:websocket` package, the mapping between the WIT types and the
//! [`ws_edge`] core, and one export macro. A handler author implements
//! [`Handler`] and writes one line:
//!
//! ```ignore
//! use ws_edge_guest::{Decision, Handler, Message, Outbox, Request};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_request(_request: &Request) -> Decision<Self> {
//!         Decision::accept(Echo)
//!     }
//!     fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
//!         let _ = match message {
//!             Message::Text(text) => out.send_text(text),
//!             Message::Binary(data) => out.send_binary(data),
//!         };
//!     }
//! }
//!
//! ws_edge_guest::export_handler!(Echo);
//! ```
//!
//! Build with `cargo build --profile guest --target wasm32-wasip2`: the
//! toolchain's `wasm-component-ld` emits the component directly.
//!
//! The glue validates every request (RFC 6455 §4.2.1) before the handler
//! sees it, answers malformed ones itself (400 / 426 / 431), runs the
//! handler's decision through [`Request::accept`] / [`Request::reject`], and
//! drives one [`ws_edge::protocol::Connection`] per accepted connection,
//! calling the handler's hooks for each message and for the close.
//!
//! Connection limits come from [`Handler::connection_config`], which by
//! default applies the operator's `WS_EDGE_*` environment variables
//! (`ws-edge serve --env KEY=VALUE`) to the library's defaults; see
//! [`config`].
//!
//! Handlers written in other languages export the WIT `handler` interface
//! instead; [`compose::Delegate`] is the [`Handler`] that forwards to such an
//! imported handler (see `examples/compose` and `docs/composition.md`).

#![deny(missing_docs)]

use std::cell::RefCell;

pub use ws_edge;
pub use ws_edge::deflate::DeflateConfig;
pub use ws_edge::handshake::{
    AcceptError, AcceptOptions, HandshakeConfig, RejectOptions, Request, Response, SetCookie,
};
pub use ws_edge::protocol::{CloseCode, Config, Outbox, SendError};

use ws_edge::Parsed;
use ws_edge::handshake as hs;
use ws_edge::protocol::{self as proto, Event};

// Lets the generated code and the export macro name this crate by its
// absolute path from inside the crate too.
extern crate self as ws_edge_guest;

pub mod compose;
pub mod config;
pub mod pubsub;

pub use config::{config_from_env, deflate_from_env};

/// The generated bindings (not for handler authors).
///
/// They are generated for `websocket-protocol`: `websocket-tooling`'s
/// exports (`websocket-request` and `preview`) plus the import of the
/// `handler` interface. A component that does not use [`compose::Delegate`]
/// never calls that import, so the linker drops it and the component targets
/// `websocket-tooling` exactly (`scripts/check-wit.sh` checks this).
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "websocket-protocol",
        pub_export_macro: true,
        default_bindings_module: "::ws_edge_guest::bindings",
        export_macro_name: "__export_websocket_server",
        runtime_path: "::ws_edge_guest::bindings::__rt",
    });

    #[doc(hidden)]
    pub use wit_bindgen::rt as __rt;
}

use bindings::exports::ws_edge::websocket::delivery as wit_delivery;
use bindings::exports::ws_edge::websocket::preview as wit_preview;
use bindings::exports::ws_edge::websocket::websocket_request as wit;
use bindings::ws_edge::websocket::types as wit_types;

/// A received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A complete text message (valid UTF-8).
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
}

/// The handler's answer to an upgrade request.
#[derive(Debug)]
pub enum Decision<S> {
    /// Accept with these options; `state` becomes the connection's handler.
    Accept {
        /// Subprotocol, required origin, cookies, extra headers and the
        /// permessage-deflate policy (off unless set, or turned on by the
        /// operator with `WS_EDGE_DEFLATE=on`; see [`config`]).
        options: AcceptOptions,
        /// The per-connection handler state.
        state: S,
    },
    /// Reject with this status, reason, headers and body.
    Reject(RejectOptions),
}

impl<S> Decision<S> {
    /// Accepts with no subprotocol, cookies or extra headers.
    pub fn accept(state: S) -> Self {
        Decision::Accept {
            options: AcceptOptions::new(),
            state,
        }
    }

    /// Accepts with `options`.
    pub fn accept_with(options: AcceptOptions, state: S) -> Self {
        Decision::Accept { options, state }
    }

    /// Rejects with `status` and an `X-WebSocket-Reject-Reason` of `reason`.
    pub fn reject(status: u16, reason: impl Into<String>) -> Self {
        Decision::Reject(RejectOptions::new(status).reason(reason))
    }
}

/// A WebSocket handler: the decision on each upgrade request and the hooks of
/// each accepted connection. `Self` is the per-connection state.
///
/// Hooks run inside the component while the host is in `connection.receive`
/// / `tick` / `close` / `disconnected`; what they send through the
/// [`Outbox`] goes out in that call's transmit.
pub trait Handler: Sized + 'static {
    /// Decides on a request that passed validation: accept (creating this
    /// connection's state) or reject.
    fn on_request(request: &Request) -> Decision<Self>;

    /// A complete message arrived. Reply through `out`; a send may fail with
    /// [`SendError::Backpressure`] when the peer does not read.
    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = (message, out);
    }

    /// A ping or pong arrived (pings are already answered).
    fn on_control(&mut self, ping: bool, payload: &[u8], out: &mut Outbox<'_>) {
        let _ = (ping, payload, out);
    }

    /// The connection closed: the peer's close code and reason, the code we
    /// sent for a protocol error, or 1006 when the connection was lost or a
    /// timer ran out. Runs at most once, and no hook runs after it. It does
    /// not run when the host discards the instance without ending the
    /// connection (after a failed call, or at a shutdown that times out).
    fn on_close(&mut self, code: u16, reason: &str) {
        let _ = (code, reason);
    }

    /// A publication arrived on `topic`, which this connection subscribed
    /// to with [`pubsub::Delivery::Handler`]. Runs only while the
    /// connection is open. The default sends it to the client unchanged
    /// (what [`pubsub::Delivery::Forward`] does without entering the
    /// component); override it to filter or transform.
    fn on_publication(&mut self, topic: &str, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = topic;
        let _ = match message {
            Message::Text(text) => out.send_text(text),
            Message::Binary(data) => out.send_binary(data),
        };
    }

    /// The options of an [`Decision::Accept`] could not be honoured: a
    /// subprotocol the client did not offer, an origin that does not match,
    /// an invalid cookie or header. Nothing has been sent yet, so the handler
    /// chooses the rejection. The default answers `500` with the error as the
    /// reason (WebSocket-Node sends its 500 *before* reporting the error, so
    /// its handlers never get this choice).
    fn on_accept_error(request: &Request, error: AcceptError) -> RejectOptions {
        let _ = request;
        RejectOptions::new(500).reason(error.to_string())
    }

    /// Settings of the handshake (limits, trusted proxies). Called per request.
    fn handshake_config() -> HandshakeConfig {
        HandshakeConfig::default()
    }

    /// Settings of an accepted connection (frame and message limits,
    /// keepalive, close timeout). Called per accepted connection.
    ///
    /// The default is [`config_from_env`]`(Config::default())`: the library's
    /// defaults (64 KiB frames, 1 MiB messages) with whatever the operator
    /// set through the component's environment (`ws-edge serve --env
    /// WS_EDGE_MAX_MESSAGE=4194304`; the keys are listed in [`config`]).
    /// A handler that overrides this should start from `config_from_env` too,
    /// so the operator keeps that channel:
    ///
    /// ```ignore
    /// fn connection_config(_request: &Request) -> Config {
    ///     ws_edge_guest::config_from_env(Config {
    ///         fragment_threshold: None,
    ///         ..Config::default()
    ///     })
    /// }
    /// ```
    fn connection_config(request: &Request) -> Config {
        let _ = request;
        config_from_env(Config::default())
    }
}

/// Exports `$handler` (a type implementing [`Handler`]) as the component's
/// `websocket-request` interface. Use once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        #[doc(hidden)]
        type __WsEdgeComponent = $crate::Component<$handler>;
        $crate::bindings::__export_websocket_server!(
            __WsEdgeComponent with_types_in $crate::bindings
        );
    };
}

/// The generated `Guest` implementation for a [`Handler`] (used by
/// [`export_handler!`]).
#[doc(hidden)]
pub struct Component<H>(core::marker::PhantomData<H>);

/// The `connection` resource: the framing state machine plus the handler's
/// per-connection state.
#[doc(hidden)]
pub struct GuestConnection<H: Handler> {
    inner: RefCell<Inner<H>>,
}

struct Inner<H> {
    conn: proto::Connection,
    handler: H,
}

impl<H: Handler> wit::Guest for Component<H> {
    type Connection = GuestConnection<H>;

    fn handle_head(
        head: Vec<u8>,
        transport: wit::Transport,
        now: wit::Milliseconds,
    ) -> wit::HeadResult {
        let config = H::handshake_config();
        match hs::Request::from_head_vec(head, core_transport(&transport), &config) {
            Parsed::Incomplete => wit::HeadResult::Incomplete,
            Parsed::Complete {
                consumed,
                value: result,
            } => wit::HeadResult::Complete(wit::HeadHandshake {
                consumed: u32::try_from(consumed).unwrap_or(u32::MAX),
                handshake: decide::<H>(result, now),
            }),
        }
    }

    fn handle_request(request: wit::Request, now: wit::Milliseconds) -> wit::Handshake {
        let config = H::handshake_config();
        let parts = hs::RequestParts {
            method: request.method,
            target: request.target,
            version: hs::HttpVersion {
                major: request.version.major,
                minor: request.version.minor,
            },
            headers: request
                .headers
                .into_iter()
                .map(|h| hs::Header::from_bytes(h.name, h.value))
                .collect(),
            transport: core_transport(&request.transport),
        };
        decide::<H>(hs::Request::from_parts(parts, &config), now)
    }
}

impl<H: Handler> wit_preview::Guest for Component<H> {
    fn preview_head(head: Vec<u8>, transport: wit::Transport) -> wit_preview::HeadResponse {
        match <Self as wit::Guest>::handle_head(head, transport, 0) {
            wit::HeadResult::Incomplete => wit_preview::HeadResponse::Incomplete,
            // The connection, if any, is dropped here: the caller cannot
            // hold a resource.
            wit::HeadResult::Complete(head) => {
                wit_preview::HeadResponse::Complete(head.handshake.response)
            }
        }
    }
}

/// Runs the handler's decision on a validated request (or answers the
/// rejection) and builds the WIT handshake.
fn decide<H: Handler>(result: Result<Request, hs::Rejection>, now: u64) -> wit::Handshake {
    let mut request = match result {
        Ok(request) => request,
        Err(rejection) => {
            return wit::Handshake {
                response: wit_response(rejection.response()),
                connection: None,
            };
        }
    };
    match H::on_request(&request) {
        Decision::Accept { mut options, state } => match request.accept({
            options.deflate = deflate_from_env(options.deflate.take());
            &options
        }) {
            Ok(accepted) => {
                let config = H::connection_config(&request);
                let conn = match accepted.deflate {
                    Some(params) => proto::Connection::with_extension(
                        config,
                        Box::new(ws_edge::deflate::PerMessageDeflate::new(params)),
                        now,
                    ),
                    None => proto::Connection::new(config, now),
                };
                let conn = GuestConnection {
                    inner: RefCell::new(Inner {
                        conn,
                        handler: state,
                    }),
                };
                wit::Handshake {
                    response: wit_response(accepted.response),
                    connection: Some(wit::Connection::new(conn)),
                }
            }
            // The handler asked for something the request cannot give (a
            // protocol the client did not offer, an invalid cookie). Nothing
            // was sent, so the handler picks the rejection.
            Err(e) => {
                let options = H::on_accept_error(&request, e);
                reject_with(&mut request, options)
            }
        },
        Decision::Reject(options) => reject_with(&mut request, options),
    }
}

fn reject_with(request: &mut Request, options: RejectOptions) -> wit::Handshake {
    let response = match request.reject(&options) {
        Ok(response) => response,
        // Invalid options (a status outside 300–599, a header that could
        // inject): answer with a plain 500 instead.
        Err(e) => match request.reject(&RejectOptions::new(500).reason(e.to_string())) {
            Ok(response) => response,
            Err(_) => fallback_500(),
        },
    };
    wit::Handshake {
        response: wit_response(response),
        connection: None,
    }
}

fn fallback_500() -> Response {
    Response::plain(500, "")
}

fn core_transport(t: &wit::Transport) -> hs::Transport {
    hs::Transport {
        peer: t.peer.map(socket_addr),
        tls: t.tls,
    }
}

/// The standard library's form of a WIT socket address.
pub(crate) fn socket_addr(a: wit_types::SocketAddress) -> std::net::SocketAddr {
    std::net::SocketAddr::new(ip_addr(a.address), a.port)
}

/// The standard library's form of a WIT IP address.
fn ip_addr(a: wit_types::IpAddress) -> std::net::IpAddr {
    match a {
        wit_types::IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).into(),
        wit_types::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).into()
        }
    }
}

/// The WIT form of an IP address.
pub(crate) fn wit_ip(a: std::net::IpAddr) -> wit_types::IpAddress {
    match a {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit_types::IpAddress::Ipv4((a, b, c, d))
        }
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit_types::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

/// The WIT form of a socket address.
pub(crate) fn wit_socket_addr(a: std::net::SocketAddr) -> wit_types::SocketAddress {
    wit_types::SocketAddress {
        address: wit_ip(a.ip()),
        port: a.port(),
    }
}

/// Moves a response into its WIT form (owned values move, the static names
/// and values are copied once: WIT strings and lists are owned).
fn wit_response(r: Response) -> wit::Response {
    let mut wire = Vec::with_capacity(r.serialized_len());
    r.write_to(&mut wire);
    wit::Response {
        status: r.status,
        reason: r.reason.into_owned(),
        headers: r
            .headers
            .into_iter()
            .map(|h| wit::Header {
                name: h.name.into_owned(),
                value: h.value.into_owned(),
            })
            .collect(),
        body: r.body,
        wire,
    }
}

/// Calls the handler's hook for one event.
fn dispatch<H: Handler>(handler: &mut H, event: Event<'_>, out: &mut Outbox<'_>) {
    match event {
        Event::Text(text) => handler.on_message(Message::Text(text), out),
        Event::Binary(data) => handler.on_message(Message::Binary(data), out),
        Event::Ping(payload) => handler.on_control(true, payload, out),
        Event::Pong(payload) => handler.on_control(false, payload, out),
        Event::Close(code, reason) => handler.on_close(code.as_u16(), reason),
    }
}

impl<H: Handler> GuestConnection<H> {
    /// Runs `f` on the connection and handler, then drains the output into a
    /// transmit.
    fn with(&self, f: impl FnOnce(&mut proto::Connection, &mut H)) -> wit::Transmit {
        // Component calls never re-enter a resource, so the cell is free.
        let mut inner = self.inner.borrow_mut();
        let Inner { conn, handler } = &mut *inner;
        f(conn, handler);
        transmit(conn)
    }
}

fn transmit(conn: &mut proto::Connection) -> wit::Transmit {
    let state = match conn.state() {
        proto::State::Open => wit::ConnectionState::Open,
        proto::State::Closing => wit::ConnectionState::Closing,
        proto::State::Closed(ending) => wit::ConnectionState::Closed(wit_ending(ending)),
    };
    wit::Transmit {
        bytes: conn.take_output(),
        state,
        deadline: conn.deadline(),
    }
}

fn wit_close_frame(frame: &proto::CloseFrame) -> wit::CloseFrame {
    wit::CloseFrame {
        code: frame.code.as_u16(),
        reason: frame.reason.clone(),
    }
}

fn wit_ending(ending: &proto::Ending) -> wit::Ending {
    match ending {
        proto::Ending::Clean(frame) => wit::Ending::Clean(wit_close_frame(frame)),
        proto::Ending::Failed(frame) => wit::Ending::Failed(wit_close_frame(frame)),
        proto::Ending::TimedOut(proto::Timer::Keepalive) => {
            wit::Ending::TimedOut(wit::Timer::Keepalive)
        }
        proto::Ending::TimedOut(proto::Timer::CloseHandshake) => {
            wit::Ending::TimedOut(wit::Timer::CloseHandshake)
        }
        proto::Ending::Lost => wit::Ending::Lost,
    }
}

impl<H: Handler> wit::GuestConnection for GuestConnection<H> {
    fn receive(&self, mut data: Vec<u8>, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|conn, handler| {
            conn.receive_mut(&mut data, now, |event, out| dispatch(handler, event, out))
        })
    }

    fn tick(&self, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|conn, handler| conn.tick(now, |event, out| dispatch(handler, event, out)))
    }

    fn close(&self, code: u16, reason: String, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|conn, _| conn.close(CloseCode::new(code), &reason, now))
    }

    fn disconnected(&self, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|conn, handler| {
            conn.disconnected(now, |event, out| dispatch(handler, event, out))
        })
    }
}

impl<H: Handler> wit_delivery::Guest for Component<H> {
    fn deliver(
        conn: wit::ConnectionBorrow<'_>,
        topic: String,
        message: wit_types::Message,
        now: wit::Milliseconds,
    ) -> wit::Transmit {
        conn.get::<GuestConnection<H>>().with(|conn, handler| {
            // Timers first, as every call that passes the time does.
            conn.tick(now, |event, out| dispatch(handler, event, out));
            if *conn.state() != proto::State::Open {
                return;
            }
            let message = match &message {
                wit_types::Message::Text(text) => Message::Text(text),
                wit_types::Message::Binary(data) => Message::Binary(data),
            };
            handler.on_publication(&topic, message, &mut conn.outbox());
        })
    }
}

#[cfg(test)]
mod tests {
    //! Native tests of the paths that create no resource (creating an
    //! exported resource natively aborts: the accept path is tested through
    //! the host).

    use super::*;

    struct NoThanks;

    impl Handler for NoThanks {
        fn on_request(request: &Request) -> Decision<Self> {
            Decision::Reject(
                RejectOptions::new(451)
                    .reason(format!("{} is unavailable", request.resource()))
                    .header("X-Extra", "1")
                    .body("gone"),
            )
        }
    }

    struct BadOptions;

    impl Handler for BadOptions {
        fn on_request(_request: &Request) -> Decision<Self> {
            Decision::reject(99, "not a valid status")
        }
    }

    /// Asks for a subprotocol the client never offered.
    struct WantsProtocol;

    impl Handler for WantsProtocol {
        fn on_request(_request: &Request) -> Decision<Self> {
            Decision::accept_with(AcceptOptions::new().protocol("mqtt"), WantsProtocol)
        }
    }

    /// Same mistake, but the handler turns it into a 400 of its own.
    struct PicksItsRejection;

    impl Handler for PicksItsRejection {
        fn on_request(_request: &Request) -> Decision<Self> {
            Decision::accept_with(AcceptOptions::new().protocol("mqtt"), PicksItsRejection)
        }

        fn on_accept_error(_request: &Request, error: AcceptError) -> RejectOptions {
            assert!(matches!(error, AcceptError::ProtocolNotOffered(_)));
            RejectOptions::new(400).reason("subprotocol mqtt required")
        }
    }

    fn reject_reason(response: &wit::Response) -> Option<String> {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("x-websocket-reject-reason"))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
    }

    #[test]
    fn accept_error_defaults_to_500_before_anything_is_sent() {
        let hh = complete(<Component<WantsProtocol> as wit::Guest>::handle_head(
            HEAD.to_vec(),
            transport(),
            0,
        ));
        assert!(hh.handshake.connection.is_none());
        assert_eq!(hh.handshake.response.status, 500);
        let reason = reject_reason(&hh.handshake.response).expect("reason header");
        assert!(reason.contains("mqtt"), "{reason}");
        assert!(hh.handshake.response.wire.starts_with(b"HTTP/1.1 500 "));
    }

    #[test]
    fn accept_error_lets_the_handler_choose_the_rejection() {
        let hh = complete(<Component<PicksItsRejection> as wit::Guest>::handle_head(
            HEAD.to_vec(),
            transport(),
            0,
        ));
        assert!(hh.handshake.connection.is_none());
        assert_eq!(hh.handshake.response.status, 400);
        assert_eq!(
            reject_reason(&hh.handshake.response).as_deref(),
            Some("subprotocol mqtt required")
        );
    }

    const HEAD: &[u8] = b"GET /room HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn transport() -> wit::Transport {
        wit::Transport {
            peer: Some(wit_socket_addr(
                "[2001:db8::1]:443".parse().expect("address"),
            )),
            tls: true,
        }
    }

    fn complete(result: wit::HeadResult) -> wit::HeadHandshake {
        match result {
            wit::HeadResult::Complete(hh) => hh,
            wit::HeadResult::Incomplete => panic!("complete head expected"),
        }
    }

    #[test]
    fn handler_rejection_is_serialized_consistently() {
        let hh = complete(<Component<NoThanks> as wit::Guest>::handle_head(
            HEAD.to_vec(),
            transport(),
            0,
        ));
        assert_eq!(hh.consumed as usize, HEAD.len());
        assert!(hh.handshake.connection.is_none());
        let r = hh.handshake.response;
        assert_eq!(r.status, 451);
        assert_eq!(r.body, b"gone");
        let reason = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("x-websocket-reject-reason"))
            .expect("reason header");
        assert_eq!(reason.value, b"/room is unavailable");
        // `wire` is exactly the structured response, serialized.
        let mut expected = format!("HTTP/1.1 451 {}\r\n", r.reason).into_bytes();
        for h in &r.headers {
            expected.extend_from_slice(h.name.as_bytes());
            expected.extend_from_slice(b": ");
            expected.extend_from_slice(&h.value);
            expected.extend_from_slice(b"\r\n");
        }
        expected.extend_from_slice(b"\r\n");
        expected.extend_from_slice(&r.body);
        assert_eq!(r.wire, expected);
    }

    #[test]
    fn validation_failures_never_reach_the_handler() {
        let bad = String::from_utf8(HEAD.to_vec())
            .expect("ascii")
            .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 9");
        let hh = complete(<Component<BadOptions> as wit::Guest>::handle_head(
            bad.into_bytes(),
            transport(),
            0,
        ));
        assert_eq!(hh.handshake.response.status, 426);

        let partial =
            <Component<NoThanks> as wit::Guest>::handle_head(HEAD[..30].to_vec(), transport(), 0);
        assert!(matches!(partial, wit::HeadResult::Incomplete));
    }

    #[test]
    fn invalid_reject_options_become_a_500() {
        let hh = complete(<Component<BadOptions> as wit::Guest>::handle_head(
            HEAD.to_vec(),
            transport(),
            0,
        ));
        assert_eq!(hh.handshake.response.status, 500);
        assert!(hh.handshake.connection.is_none());
    }

    #[test]
    fn handle_request_and_preview_match_handle_head() {
        let preview =
            <Component<NoThanks> as wit_preview::Guest>::preview_head(HEAD.to_vec(), transport());
        let wit_preview::HeadResponse::Complete(r) = preview else {
            panic!("complete expected");
        };
        assert_eq!(r.status, 451);

        let request = wit::Request {
            method: "GET".into(),
            target: "/room".into(),
            version: wit::HttpVersion { major: 1, minor: 1 },
            headers: [
                ("Host", "a"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ]
            .iter()
            .map(|(n, v)| wit::Header {
                name: (*n).into(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
            transport: transport(),
        };
        let hs = <Component<NoThanks> as wit::Guest>::handle_request(request, 0);
        assert_eq!(hs.response.wire, r.wire);
    }

    #[test]
    fn transport_peer_converts_both_ways() {
        let t = core_transport(&transport());
        assert_eq!(t.peer, Some("[2001:db8::1]:443".parse().expect("address")));
        assert!(t.tls);
        for text in ["203.0.113.7:51234", "[::ffff:192.0.2.1]:1", "[::]:0"] {
            let addr: std::net::SocketAddr = text.parse().expect("address");
            assert_eq!(socket_addr(wit_socket_addr(addr)), addr, "{text}");
        }
        let t = core_transport(&wit::Transport {
            peer: None,
            tls: false,
        });
        assert_eq!(t.peer, None);
    }
}
