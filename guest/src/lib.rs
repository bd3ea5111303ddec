//! Write ws-edge WebSocket handlers as `wasm32-wasip2` components.
//!
//! This crate is the whole component glue: the `wit-bindgen` bindings of the
//! `ws-edge:websocket` package, the mapping between the WIT types and the
//! [`ws_edge`] core, and one export macro. A handler author implements
//! [`Handler`] and writes one line:
//!
//! ```
//! use ws_edge_guest::prelude::*;
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_request(_request: &Request) -> Decision<Self> {
//!         Decision::accept(Echo)
//!     }
//!     fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
//!         out.send(message).ok(); // dropped if the peer does not read
//!     }
//! }
//!
//! ws_edge_guest::export_handler!(Echo);
//! # let mut ws = ws_edge_guest::testing::connect::<Echo>(TestRequest::new("/")).unwrap();
//! # ws.send_text("hi");
//! # assert_eq!(ws.recv(), Some(Reply::Text("hi".into())));
//! ```
//!
//! `ws-edge new NAME` scaffolds such a crate (with the build settings and a
//! test); `cargo build --release` there emits the component, `ws-edge serve
//! target/wasm32-wasip2/release/NAME.wasm` serves it. The handler author's
//! guide is `docs/handlers.md` in the repository.
//!
//! # Where everything is
//!
//! | What | Where |
//! |---|---|
//! | everything a handler names (below) | [`prelude`]: `use ws_edge_guest::prelude::*;` |
//! | the trait and the export | [`Handler`], [`export_handler!`] |
//! | the decision | [`Decision`], [`AcceptOptions`], [`RejectOptions`], [`AcceptError`] |
//! | the request | [`Request`] (`path()`, `query_value()`, `origin()`, `cookie()`, `header_str()`, …) |
//! | cookies and headers | [`SetCookie`], [`SameSite`], [`Expires`], [`Header`] |
//! | messages and sending | [`Message`], [`Control`], [`Outbox`], [`SendError`], [`CloseCode`], [`State`] |
//! | limits | [`Config`] (connection), [`HandshakeConfig`] (handshake), [`DeflateConfig`]; [`config`]: the operator's `WS_EDGE_*` environment |
//! | rooms and broadcast | [`pubsub`] |
//! | native tests | [`testing`] |
//! | logs | feature `log`: `log::info!` and friends reach the host with level and target (module `logging`) |
//! | handlers in other languages | [`compose`] |
//! | the no-I/O core | [`ws_edge`] (re-exported) |
//!
//! # What the glue does
//!
//! The glue validates every request (RFC 6455 §4.2.1) before the handler
//! sees it, answers malformed ones itself (400 / 426 / 431), runs the
//! handler's decision through [`Request::accept`] / [`Request::reject`], and
//! drives one [`ws_edge::protocol::Connection`] per accepted connection,
//! calling the handler's hooks for the open, each message, its timer and the
//! close.
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
    AcceptError, AcceptOptions, Expires, HandshakeConfig, Header, RejectOptions, Request, Response,
    SameSite, SetCookie,
};
pub use ws_edge::protocol::{CloseCode, Config, SendError, State};

use ws_edge::Parsed;
use ws_edge::handshake as hs;
use ws_edge::protocol as proto;

// Lets the generated code and the export macro name this crate by its
// absolute path from inside the crate too.
extern crate self as ws_edge_guest;

pub mod compose;
pub mod config;
#[cfg(feature = "log")]
pub mod logging;
pub mod pubsub;
mod session;
pub mod testing;

pub use config::{config_from_env, deflate_from_env};
pub use session::Outbox;
use session::Session;

/// Everything a handler names, for one glob import:
///
/// ```
/// use ws_edge_guest::prelude::*;
/// ```
///
/// The trait and its types ([`Handler`], [`Decision`], [`Request`],
/// [`Message`], [`Control`], [`Outbox`], [`CloseCode`], [`SendError`],
/// [`State`]), the handshake's options ([`AcceptOptions`],
/// [`RejectOptions`], [`AcceptError`], [`SetCookie`], [`SameSite`],
/// [`Expires`], [`Header`]), the settings ([`Config`], [`HandshakeConfig`],
/// [`DeflateConfig`], [`config_from_env`]), pub/sub ([`pubsub`],
/// [`Delivery`](pubsub::Delivery), [`PubSubError`](pubsub::PubSubError))
/// and the test client's types ([`TestRequest`](testing::TestRequest),
/// [`Reply`](testing::Reply)), plus [`Response`] and the core's
/// [`Connection`](ws_edge::protocol::Connection) for tests below the
/// handler level. A type of your own with one of these names simply
/// shadows the glob import.
pub mod prelude {
    pub use crate::pubsub::{self, Delivery, PubSubError};
    pub use crate::testing::{Reply, TestRequest};
    pub use crate::{
        AcceptError, AcceptOptions, CloseCode, Config, Control, Decision, DeflateConfig, Expires,
        Handler, HandshakeConfig, Header, Message, Outbox, RejectOptions, Request, Response,
        SameSite, SendError, SetCookie, State, config_from_env,
    };
    pub use ws_edge::protocol::Connection;
}

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

/// A received control frame other than close (which ends the connection
/// and reaches [`Handler::on_close`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control<'a> {
    /// A ping with its payload; the pong is queued already (unless
    /// [`Config::auto_pong`] is off).
    Ping(&'a [u8]),
    /// A pong with its payload, solicited by a keepalive ping or not.
    Pong(&'a [u8]),
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

    /// Rejects with `status` (300–599) and `reason`.
    ///
    /// The reason travels only in the `X-WebSocket-Reject-Reason` header,
    /// which a browser's `WebSocket` cannot read (it sees a failed
    /// connection and no status either); tools, native clients and logs do.
    /// Add a body or headers with [`RejectOptions`] and
    /// [`Decision::Reject`].
    pub fn reject(status: u16, reason: impl Into<String>) -> Self {
        Decision::Reject(RejectOptions::new(status).reason(reason))
    }
}

impl<S> From<RejectOptions> for Decision<S> {
    fn from(options: RejectOptions) -> Self {
        Decision::Reject(options)
    }
}

/// A WebSocket handler: the decision on each upgrade request and the hooks of
/// each accepted connection. `Self` is the per-connection state.
///
/// # Lifecycle
///
/// 1. [`on_request`](Self::on_request) decides on a request that passed
///    validation; accepting creates `Self`.
/// 2. The `101` goes out; [`on_open`](Self::on_open) runs before anything
///    else, and what it sends follows the `101` at once (a greeting).
/// 3. [`on_message`](Self::on_message), [`on_control`](Self::on_control),
///    [`on_timer`](Self::on_timer) and
///    [`on_publication`](Self::on_publication) run as things happen.
/// 4. [`on_close`](Self::on_close) runs once when the connection ends; no
///    hook runs after it.
///
/// # Sending happens inside hooks
///
/// A component runs only while the host calls it, so there is no sending
/// from elsewhere (no threads, no background tasks, no globals holding an
/// [`Outbox`]): every hook gets the connection's [`Outbox`], and what it
/// queues goes out when the hook returns. To send later, ask for a wake-up
/// with [`Outbox::schedule_in`] and send from [`on_timer`](Self::on_timer);
/// to send because of another connection, subscribe both to a
/// [`pubsub`] topic and publish to it.
///
/// # Errors
///
/// A panic or trap ends only this connection: before the `101` the client
/// gets `500`, after it a `1011` close. A failed send returns a
/// [`SendError`] and queues nothing (see [`Outbox`]).
pub trait Handler: Sized + 'static {
    /// Decides on a request that passed validation: accept (creating this
    /// connection's state) or reject.
    fn on_request(request: &Request) -> Decision<Self>;

    /// The connection is open: the `101` is written, no message has been
    /// handled yet. What this sends goes out right after the `101`, before
    /// the client has said anything. Also the place to start a timer.
    fn on_open(&mut self, out: &mut Outbox<'_>) {
        let _ = out;
    }

    /// A complete message arrived. Reply through `out`; a send may fail with
    /// [`SendError::Backpressure`] when the peer does not read.
    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = (message, out);
    }

    /// A ping or pong arrived (pings are already answered).
    fn on_control(&mut self, control: Control<'_>, out: &mut Outbox<'_>) {
        let _ = (control, out);
    }

    /// The time asked for with [`Outbox::schedule_in`] /
    /// [`Outbox::schedule_at`] has come (give or take the host's timer
    /// resolution; never early). Runs only while the connection is open;
    /// schedule again here for a periodic timer.
    fn on_timer(&mut self, out: &mut Outbox<'_>) {
        let _ = out;
    }

    /// The connection closed: the peer's close code and reason
    /// ([`CloseCode::NO_STATUS`] if its close frame had no code), the code
    /// we sent for a protocol error, or [`CloseCode::ABNORMAL`] (1006) when
    /// the connection was lost or a timer ran out. Runs at most once, and no
    /// hook runs after it. It does not run when the host discards the
    /// instance without ending the connection (after a failed call, or at a
    /// shutdown that times out).
    fn on_close(&mut self, code: CloseCode, reason: &str) {
        let _ = (code, reason);
    }

    /// A publication arrived on `topic`, which this connection subscribed
    /// to with [`pubsub::Delivery::Handler`]. Runs only while the
    /// connection is open. The default sends it to the client unchanged
    /// (what [`pubsub::Delivery::Forward`] does without entering the
    /// component); override it to filter or transform.
    fn on_publication(&mut self, topic: &str, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = topic;
        out.send(message).ok();
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
///
/// Without it the crate still builds, but the component exports nothing
/// the host can run (`ws-edge serve` says so).
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

/// The `connection` resource: one [`Session`].
#[doc(hidden)]
pub struct GuestConnection<H: Handler> {
    session: RefCell<Session<H>>,
}

impl<H: Handler> wit::Guest for Component<H> {
    type Connection = GuestConnection<H>;

    fn handle_head(
        head: Vec<u8>,
        transport: wit::Transport,
        now: wit::Milliseconds,
    ) -> wit::HeadResult {
        match parse_head::<H>(head, core_transport(&transport)) {
            Parsed::Incomplete => wit::HeadResult::Incomplete,
            Parsed::Complete {
                consumed,
                value: result,
            } => wit::HeadResult::Complete(wit::HeadHandshake {
                consumed: u32::try_from(consumed).unwrap_or(u32::MAX),
                handshake: wit_handshake(decide::<H>(result, now)),
            }),
        }
    }

    fn handle_request(request: wit::Request, now: wit::Milliseconds) -> wit::Handshake {
        start();
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
        wit_handshake(decide::<H>(hs::Request::from_parts(parts, &config), now))
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

/// What runs before the first handshake of an instance: the logger, when
/// the `log` feature is on.
fn start() {
    #[cfg(feature = "log")]
    logging::init();
}

/// Parses and validates a head with the handler's handshake settings.
pub(crate) fn parse_head<H: Handler>(
    head: Vec<u8>,
    transport: hs::Transport,
) -> Parsed<Result<Request, hs::Rejection>> {
    start();
    hs::Request::from_head_vec(head, transport, &H::handshake_config())
}

/// The outcome of a handshake: the response, and the connection if it is a
/// `101`.
pub(crate) struct Decided<H> {
    /// The response to write.
    pub(crate) response: Response,
    /// The accepted connection.
    pub(crate) session: Option<Session<H>>,
}

/// Runs the handler's decision on a validated request (or answers the
/// rejection).
pub(crate) fn decide<H: Handler>(result: Result<Request, hs::Rejection>, now: u64) -> Decided<H> {
    let mut request = match result {
        Ok(request) => request,
        Err(rejection) => {
            return Decided {
                response: rejection.response(),
                session: None,
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
                Decided {
                    response: accepted.response,
                    session: Some(Session::new(conn, state)),
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

fn reject_with<H>(request: &mut Request, options: RejectOptions) -> Decided<H> {
    let response = match request.reject(&options) {
        Ok(response) => response,
        // Invalid options (a status outside 300–599, a header that could
        // inject): answer with a plain 500 instead.
        Err(e) => match request.reject(&RejectOptions::new(500).reason(e.to_string())) {
            Ok(response) => response,
            Err(_) => Response::plain(500, ""),
        },
    };
    Decided {
        response,
        session: None,
    }
}

/// The WIT handshake of a decision (creates the `connection` resource).
fn wit_handshake<H: Handler>(decided: Decided<H>) -> wit::Handshake {
    wit::Handshake {
        response: wit_response(decided.response),
        connection: decided.session.map(|session| {
            wit::Connection::new(GuestConnection {
                session: RefCell::new(session),
            })
        }),
    }
}

pub(crate) fn core_transport(t: &wit::Transport) -> hs::Transport {
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

impl<H: Handler> GuestConnection<H> {
    /// Runs `f` on the session, then drains the output into a transmit.
    fn with(&self, f: impl FnOnce(&mut Session<H>)) -> wit::Transmit {
        // Component calls never re-enter a resource, so the cell is free.
        let mut session = self.session.borrow_mut();
        f(&mut session);
        let deadline = session.deadline();
        let conn = session.conn();
        let state = match conn.state() {
            proto::State::Open => wit::ConnectionState::Open,
            proto::State::Closing => wit::ConnectionState::Closing,
            proto::State::Closed(ending) => wit::ConnectionState::Closed(wit_ending(ending)),
        };
        wit::Transmit {
            bytes: conn.take_output(),
            state,
            deadline,
        }
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
        self.with(|session| session.receive(&mut data, now))
    }

    fn tick(&self, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|session| session.tick(now))
    }

    fn close(&self, code: u16, reason: String, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|session| session.close(CloseCode::new(code), &reason, now))
    }

    fn disconnected(&self, now: wit::Milliseconds) -> wit::Transmit {
        self.with(|session| session.disconnected(now))
    }
}

impl<H: Handler> wit_delivery::Guest for Component<H> {
    fn deliver(
        conn: wit::ConnectionBorrow<'_>,
        topic: String,
        message: wit_types::Message,
        now: wit::Milliseconds,
    ) -> wit::Transmit {
        conn.get::<GuestConnection<H>>().with(|session| {
            let message = match &message {
                wit_types::Message::Text(text) => Message::Text(text),
                wit_types::Message::Binary(data) => Message::Binary(data),
            };
            session.deliver(&topic, message, now);
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
