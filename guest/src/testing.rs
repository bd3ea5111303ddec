//! Drive a [`Handler`] natively, without a host or a socket: build a
//! request in a line, run the handler's decision, send messages as a client
//! would and read typed replies and the close.
//!
//! ```
//! use ws_edge_guest::prelude::*;
//! use ws_edge_guest::testing::connect;
//!
//! struct Shout;
//!
//! impl Handler for Shout {
//!     fn on_request(request: &Request) -> Decision<Self> {
//!         if request.path() != "/shout" {
//!             return Decision::reject(404, "try /shout");
//!         }
//!         Decision::accept(Shout)
//!     }
//!     fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
//!         match message {
//!             Message::Text(text) => out.send_text(&text.to_uppercase()).ok(),
//!             Message::Binary(_) => out.close(CloseCode::UNSUPPORTED_DATA, "text only").ok(),
//!         };
//!     }
//! }
//!
//! let rejected = connect::<Shout>(TestRequest::new("/")).unwrap_err();
//! assert_eq!((rejected.status(), rejected.reason()), (404, Some("try /shout")));
//!
//! let mut ws = connect::<Shout>(TestRequest::new("/shout")).unwrap();
//! ws.send_text("hi");
//! assert_eq!(ws.recv(), Some(Reply::Text("HI".into())));
//! ws.send_binary(b"\x00");
//! assert_eq!(ws.recv(), Some(Reply::Close(CloseCode::UNSUPPORTED_DATA, "text only".into())));
//! ```
//!
//! The handler runs through the same code as in a component (validation,
//! the decision, the connection state machine, `on_open` right after the
//! `101`, timers, the close), with the clock under the test's control
//! ([`TestClient::advance`]). What the test client does not do: offer
//! permessage-deflate (a request that offers it gets plain frames only if
//! the handler does not accept it) or provide the host's services
//! (a [`pubsub`](crate::pubsub) call panics natively and traps under
//! `ws-edge run`, with a message saying so: test those end to end).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;

use ws_edge::Parsed;
use ws_edge::handshake::Transport;
use ws_edge::protocol::{self as proto, CloseCode, FrameHeader, OpCode, State};

use crate::session::Session;
use crate::{Handler, Message, Request, Response};

/// An upgrade request for a test: a valid RFC 6455 request for `target`
/// (Host `localhost`, a fixed key, version 13, peer `127.0.0.1:50000`, no
/// TLS) plus whatever the builder methods add.
#[derive(Clone, Debug)]
pub struct TestRequest {
    target: String,
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    peer: Option<SocketAddr>,
    tls: bool,
}

impl TestRequest {
    /// A request for `target` (`/chat?room=7`).
    pub fn new(target: impl Into<String>) -> Self {
        TestRequest {
            target: target.into(),
            headers: Vec::new(),
            cookies: Vec::new(),
            peer: Some(SocketAddr::from(([127, 0, 0, 1], 50_000))),
            tls: false,
        }
    }

    /// Adds a header field (after the required ones; a second `Host` or
    /// `Upgrade` makes the request invalid, as it would on the wire).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets `Origin`, as a browser does.
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.header("Origin", origin)
    }

    /// Offers subprotocols, in the client's order (`Sec-WebSocket-Protocol`).
    pub fn protocols(self, protocols: &[&str]) -> Self {
        let list = protocols.join(", ");
        self.header("Sec-WebSocket-Protocol", list)
    }

    /// Adds a cookie to the `Cookie` header.
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// The socket peer the host reports (`None`: the host gave none).
    pub fn peer(mut self, peer: Option<SocketAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Whether the host reports the connection as TLS (`wss://`).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The request head as a client sends it.
    pub fn head(&self) -> Vec<u8> {
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n",
            self.target
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.cookies.is_empty() {
            let pairs: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", pairs.join("; ")));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    fn transport(&self) -> Transport {
        Transport {
            peer: self.peer,
            tls: self.tls,
        }
    }

    /// The validated [`Request`], as `H::on_request` would see it (with
    /// `H`'s [`Handler::handshake_config`]), for testing helper functions
    /// that take a request. Panics if the request is not valid; use
    /// [`connect`] to test how an invalid one is answered.
    pub fn request<H: Handler>(&self) -> Request {
        show_panics();
        match crate::parse_head::<H>(self.head(), self.transport()) {
            Parsed::Complete {
                value: Ok(request), ..
            } => request,
            Parsed::Complete { value: Err(r), .. } => {
                panic!("invalid test request: {}", r.response().status)
            }
            Parsed::Incomplete => panic!("incomplete test request"),
        }
    }
}

/// A refused handshake: what the client got instead of a `101`.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// The whole response.
    pub response: Response,
}

impl Rejected {
    /// The status (`403`, `400` for an invalid request, …).
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The `X-WebSocket-Reject-Reason` the handler gave, if any.
    pub fn reason(&self) -> Option<&str> {
        self.response
            .header("X-WebSocket-Reject-Reason")
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The response body.
    pub fn body(&self) -> &[u8] {
        &self.response.body
    }
}

/// What the server sent, one complete message or control frame at a time
/// (fragments are joined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (keepalive, or the handler's).
    Ping(Vec<u8>),
    /// A pong (the answer to the client's ping, or the handler's).
    Pong(Vec<u8>),
    /// A close frame: its code ([`CloseCode::NO_STATUS`] if it had none)
    /// and reason.
    Close(CloseCode, String),
}

/// On `wasm32-wasip2` a panic aborts the whole test binary, and libtest's
/// captured output, where the panic message goes, is lost with it: print
/// the message straight to stderr (which capture does not intercept) too.
#[cfg(target_family = "wasm")]
fn show_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "\n{info}");
            previous(info);
        }));
    });
}

/// Natively a failed test's output is kept and shown by libtest.
#[cfg(not(target_family = "wasm"))]
fn show_panics() {}

/// Runs `H`'s decision on `request`: the accepted connection, with the
/// handler's [`on_open`](Handler::on_open) already run (the host calls the
/// connection right after writing the `101`), or the rejection. The clock
/// starts at 0.
pub fn connect<H: Handler>(request: TestRequest) -> Result<TestClient<H>, Rejected> {
    show_panics();
    let parsed = crate::parse_head::<H>(request.head(), request.transport());
    let Parsed::Complete { value, .. } = parsed else {
        panic!("incomplete test request");
    };
    let decided = crate::decide::<H>(value, 0);
    let Some(session) = decided.session else {
        return Err(Rejected {
            response: decided.response,
        });
    };
    let mut client = TestClient {
        session,
        response: decided.response,
        now: 0,
        input: Vec::new(),
        fragments: None,
        replies: VecDeque::new(),
        auto_pong: true,
    };
    client.session.tick(0);
    client.collect();
    Ok(client)
}

/// The client end of an accepted test connection (see the module docs).
pub struct TestClient<H> {
    session: Session<H>,
    response: Response,
    now: u64,
    /// Server bytes not yet decoded.
    input: Vec<u8>,
    /// A fragmented message being joined: its opcode and payload so far.
    fragments: Option<(OpCode, Vec<u8>)>,
    replies: VecDeque<Reply>,
    /// Whether pings are answered at once, as browsers do.
    auto_pong: bool,
}

/// The mask of every client frame (any key does).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

impl<H: Handler> TestClient<H> {
    /// The `101 Switching Protocols` response (selected subprotocol,
    /// cookies, extra headers).
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The handler's per-connection state.
    pub fn handler(&self) -> &H {
        self.session.handler()
    }

    /// Sends a text message as one frame.
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(OpCode::Text, text.as_bytes());
    }

    /// Sends a binary message as one frame.
    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(OpCode::Binary, data);
    }

    /// Sends `message` as one frame.
    pub fn send(&mut self, message: Message<'_>) {
        match message {
            Message::Text(text) => self.send_text(text),
            Message::Binary(data) => self.send_binary(data),
        }
    }

    /// Sends a ping; the server's pong arrives as [`Reply::Pong`].
    pub fn ping(&mut self, payload: &[u8]) {
        self.send_frame(OpCode::Ping, payload);
    }

    /// Sends a close frame with `code` and `reason` (the server answers
    /// with its own, [`Reply::Close`], and the connection is closed).
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) {
        let mut payload = code.into().as_u16().to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send_frame(OpCode::Close, &payload);
    }

    /// Sends one frame (`fin` set, masked) with any opcode and payload.
    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut wire = Vec::new();
        proto::write_frame(&mut wire, true, opcode, Some(MASK), payload);
        self.send_raw(&wire);
    }

    /// Sends raw bytes, as if read from the socket (for broken frames).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut data = bytes.to_vec();
        self.session.receive(&mut data, self.now);
        self.collect();
    }

    /// Moves the clock `ms` milliseconds on and lets the timers run (the
    /// handler's [`on_timer`](Handler::on_timer), keepalive pings and
    /// timeouts), as the host does at each deadline that passed.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now.saturating_add(ms);
        while let Some(at) = self.session.deadline().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.session.tick(self.now);
            self.collect();
            if self.session.deadline() == Some(at) {
                // Nothing moved the deadline (the tick was early): go on.
                break;
            }
        }
        self.now = end;
        self.session.tick(self.now);
        self.collect();
    }

    /// Whether the client answers the server's pings with a pong at once,
    /// as browsers and most clients do (the default). Turn it off to test
    /// the keepalive timeout. The pings are reported as [`Reply::Ping`]
    /// either way.
    pub fn set_auto_pong(&mut self, on: bool) {
        self.auto_pong = on;
    }

    /// The current instant of the test clock, in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// When the host would call the connection next if nothing happens.
    pub fn deadline(&self) -> Option<u64> {
        self.session.deadline()
    }

    /// The host closes the connection (as at shutdown, with 1001): the
    /// server's close frame arrives as [`Reply::Close`].
    pub fn host_close(&mut self, code: impl Into<CloseCode>, reason: &str) {
        self.session.close(code.into(), reason, self.now);
        self.collect();
    }

    /// The socket is gone without a close handshake: `on_close` gets 1006.
    pub fn disconnect(&mut self) {
        self.session.disconnected(self.now);
        self.collect();
    }

    /// The connection's state.
    pub fn state(&mut self) -> State {
        self.session.conn().state().clone()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&mut self) -> bool {
        self.session.conn().is_closed()
    }

    /// The next thing the server sent, if any.
    pub fn recv(&mut self) -> Option<Reply> {
        self.replies.pop_front()
    }

    /// Everything the server sent that was not received yet.
    pub fn recv_all(&mut self) -> Vec<Reply> {
        self.replies.drain(..).collect()
    }

    /// Takes the connection's output and decodes whole frames into
    /// replies; answers pings when [`auto_pong`](Self::set_auto_pong) is on.
    fn collect(&mut self) {
        let pings = self.decode();
        if self.auto_pong {
            for payload in pings {
                if !self.is_closed() {
                    self.send_frame(OpCode::Pong, &payload);
                }
            }
        }
    }

    /// Decodes the connection's output into replies; returns the payloads
    /// of the pings among them.
    fn decode(&mut self) -> Vec<Vec<u8>> {
        let mut pings = Vec::new();
        let out = self.session.conn().take_output();
        self.input.extend_from_slice(&out);
        loop {
            let header = match FrameHeader::parse(&self.input) {
                Ok(Parsed::Complete { consumed, value }) => (consumed, value),
                Ok(Parsed::Incomplete) => return pings,
                Err(e) => panic!("the server sent an invalid frame: {e}"),
            };
            let (len, header) = header;
            let end = len + usize::try_from(header.payload_len).expect("frame fits in memory");
            if self.input.len() < end {
                return pings;
            }
            assert!(
                header.rsv == 0,
                "the server sent a compressed frame; the test client does not decode \
                 permessage-deflate"
            );
            let payload: Vec<u8> = self.input.drain(..end).skip(len).collect();
            let reply = match header.opcode {
                OpCode::Ping => {
                    pings.push(payload.clone());
                    Some(Reply::Ping(payload))
                }
                OpCode::Pong => Some(Reply::Pong(payload)),
                OpCode::Close => Some(close_reply(&payload)),
                OpCode::Text | OpCode::Binary if header.fin => Some(data(header.opcode, payload)),
                OpCode::Text | OpCode::Binary => {
                    self.fragments = Some((header.opcode, payload));
                    None
                }
                OpCode::Continuation => {
                    let (opcode, mut joined) =
                        self.fragments.take().expect("continuation without a start");
                    joined.extend_from_slice(&payload);
                    if header.fin {
                        Some(data(opcode, joined))
                    } else {
                        self.fragments = Some((opcode, joined));
                        None
                    }
                }
            };
            self.replies.extend(reply);
        }
    }
}

fn data(opcode: OpCode, payload: Vec<u8>) -> Reply {
    match opcode {
        OpCode::Text => Reply::Text(String::from_utf8(payload).expect("text is UTF-8")),
        _ => Reply::Binary(payload),
    }
}

fn close_reply(payload: &[u8]) -> Reply {
    match payload {
        [hi, lo, reason @ ..] => Reply::Close(
            CloseCode::new(u16::from_be_bytes([*hi, *lo])),
            String::from_utf8_lossy(reason).into_owned(),
        ),
        _ => Reply::Close(CloseCode::NO_STATUS, String::new()),
    }
}

impl<H> fmt::Debug for TestClient<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("now", &self.now)
            .field("replies", &self.replies)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The hooks' order and timing, through the test client (the same
    //! session code the component glue runs).

    use super::*;
    use crate::prelude::*;

    /// Greets, ticks every 100 ms after `start`, records every hook.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<String>,
    }

    impl Handler for Recorder {
        fn on_request(request: &Request) -> Decision<Self> {
            if request.path() != "/a b" {
                return Decision::reject(404, format!("no {}", request.path()));
            }
            let who = request.query_value("who").unwrap_or_default().into_owned();
            Decision::accept(Recorder {
                seen: vec![format!("request {who}")],
            })
        }

        fn on_open(&mut self, out: &mut Outbox<'_>) {
            self.seen.push("open".into());
            out.send_text("hello").ok();
        }

        fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
            self.seen.push(format!("message {message:?}"));
            match message {
                Message::Text("start") => out.schedule_in(100),
                Message::Text("stop") => out.cancel_timer(),
                Message::Text("bye") => {
                    out.close(CloseCode::NORMAL, "bye").ok();
                }
                _ => {
                    out.send(message).ok();
                }
            }
        }

        fn on_control(&mut self, control: Control<'_>, _out: &mut Outbox<'_>) {
            self.seen.push(format!("control {control:?}"));
        }

        fn on_timer(&mut self, out: &mut Outbox<'_>) {
            self.seen.push(format!("timer {}", out.now()));
            out.send_text(&format!("tick {}", out.now())).ok();
            out.schedule_in(100);
        }

        fn on_close(&mut self, code: CloseCode, reason: &str) {
            self.seen.push(format!("close {code} {reason}"));
        }

        fn connection_config(_request: &Request) -> Config {
            Config {
                keepalive_interval_ms: None,
                ..Config::default()
            }
        }
    }

    fn open() -> TestClient<Recorder> {
        connect::<Recorder>(TestRequest::new("/a%20b?who=J%C3%BCrgen+M")).expect("accepted")
    }

    #[test]
    fn on_open_greets_before_the_client_speaks() {
        let mut ws = open();
        assert_eq!(ws.response().status, 101);
        assert_eq!(ws.recv(), Some(Reply::Text("hello".into())));
        assert_eq!(ws.recv(), None);
        ws.send_text("x");
        assert_eq!(ws.recv(), Some(Reply::Text("x".into())));
        assert_eq!(
            ws.handler().seen,
            ["request Jürgen M", "open", "message Text(\"x\")"]
        );
    }

    #[test]
    fn rejections_carry_status_and_reason() {
        let r = connect::<Recorder>(TestRequest::new("/elsewhere")).expect_err("rejected");
        assert_eq!(r.status(), 404);
        assert_eq!(r.reason(), Some("no /elsewhere"));
        // Invalid requests never reach the handler.
        let r = connect::<Recorder>(TestRequest::new("/a%20b").header("Sec-WebSocket-Key", "x"))
            .expect_err("invalid");
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.reason(),
            Some("Sec-WebSocket-Key header must appear once")
        );
    }

    #[test]
    fn the_timer_fires_when_due_and_sets_the_deadline() {
        let mut ws = open();
        ws.recv_all();
        assert_eq!(ws.deadline(), None);
        ws.send_text("start");
        assert_eq!(ws.deadline(), Some(100));
        ws.advance(99);
        assert_eq!(ws.recv(), None);
        ws.advance(1);
        assert_eq!(ws.recv(), Some(Reply::Text("tick 100".into())));
        // Rescheduled from inside on_timer; two periods pass in one step.
        ws.advance(250);
        assert_eq!(
            ws.recv_all(),
            [
                Reply::Text("tick 200".into()),
                Reply::Text("tick 300".into())
            ]
        );
        assert_eq!(ws.deadline(), Some(400));
        ws.send_text("stop");
        assert_eq!(ws.deadline(), None);
        ws.advance(1000);
        assert_eq!(ws.recv(), None);
    }

    #[test]
    fn controls_are_typed_and_pings_answered() {
        let mut ws = open();
        ws.recv_all();
        ws.ping(b"p");
        assert_eq!(ws.recv(), Some(Reply::Pong(b"p".to_vec())));
        ws.send_frame(OpCode::Pong, b"q");
        assert_eq!(
            &ws.handler().seen[2..],
            ["control Ping([112])", "control Pong([113])"]
        );
    }

    #[test]
    fn close_codes_are_typed_both_ways() {
        let mut ws = open();
        ws.recv_all();
        ws.close(CloseCode::GOING_AWAY, "tab closed");
        // The server answers with the client's code (RFC 6455 §5.5.1).
        assert_eq!(
            ws.recv(),
            Some(Reply::Close(CloseCode::GOING_AWAY, "".into()))
        );
        assert!(ws.is_closed());
        assert_eq!(ws.handler().seen.last().unwrap(), "close 1001 tab closed");

        let mut ws = open();
        ws.send_text("bye");
        assert_eq!(
            ws.recv_all().last(),
            Some(&Reply::Close(CloseCode::NORMAL, "bye".into()))
        );
        assert_eq!(ws.state(), State::Closing);
        ws.close(1000, "");
        assert!(ws.is_closed());

        let mut ws = open();
        ws.disconnect();
        assert_eq!(
            ws.handler().seen.last().unwrap(),
            "close 1006 connection lost"
        );
    }

    #[test]
    fn a_broken_frame_closes_with_1002_and_the_handler_is_told() {
        let mut ws = open();
        ws.recv_all();
        // Unmasked client frame.
        ws.send_raw(b"\x81\x01x");
        assert!(matches!(
            ws.recv(),
            Some(Reply::Close(code, _)) if code == CloseCode::PROTOCOL_ERROR
        ));
        assert!(ws.handler().seen.last().unwrap().starts_with("close 1002"));
    }

    #[test]
    fn fragmented_replies_are_joined() {
        let mut ws = open();
        ws.recv_all();
        let long = "x".repeat(40_000); // over the 16 KiB fragment threshold
        ws.send_text(&long);
        assert_eq!(ws.recv(), Some(Reply::Text(long)));
    }

    /// The keepalive with the default limits: a ping after 20 s of
    /// silence, answered by the client unless told not to.
    #[derive(Default)]
    struct Quiet;

    impl Handler for Quiet {
        fn on_request(_request: &Request) -> Decision<Self> {
            Decision::accept(Quiet)
        }
    }

    #[test]
    fn pings_are_answered_unless_auto_pong_is_off() {
        let mut ws = connect::<Quiet>(TestRequest::new("/")).expect("accepted");
        ws.advance(20_000);
        assert_eq!(ws.recv(), Some(Reply::Ping(Vec::new())));
        ws.advance(60_000);
        assert!(!ws.is_closed(), "answered pings keep it open");

        let mut ws = connect::<Quiet>(TestRequest::new("/")).expect("accepted");
        ws.set_auto_pong(false);
        ws.advance(20_000);
        assert_eq!(ws.recv(), Some(Reply::Ping(Vec::new())));
        ws.advance(10_000);
        assert!(ws.is_closed(), "dropped after the 10 s grace");
        assert_eq!(ws.recv(), None, "no close frame for a timeout");
    }

    /// docs/handlers.md's example, kept compiling and true here.
    struct Room {
        user: String,
    }

    impl Handler for Room {
        fn on_request(request: &Request) -> Decision<Self> {
            let Some(user) = request.query_value("user") else {
                return Decision::reject(401, "?user= is required");
            };
            Decision::accept(Room {
                user: user.into_owned(),
            })
        }
        fn on_open(&mut self, out: &mut Outbox<'_>) {
            out.send_text(&format!("hello, {}", self.user)).ok();
            out.schedule_in(10_000);
        }
        fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
            match message {
                Message::Text(text) => out.send_text(&format!("{}: {text}", self.user)).ok(),
                Message::Binary(_) => out.close(CloseCode::UNSUPPORTED_DATA, "text only").ok(),
            };
        }
        fn on_timer(&mut self, out: &mut Outbox<'_>) {
            out.send_text("still here?").ok();
            out.schedule_in(10_000);
        }
    }

    #[test]
    fn the_guide_example_holds() {
        let rejected = connect::<Room>(TestRequest::new("/")).unwrap_err();
        assert_eq!(
            (rejected.status(), rejected.reason()),
            (401, Some("?user= is required"))
        );

        let mut ws = connect::<Room>(TestRequest::new("/?user=ann")).unwrap();
        assert_eq!(ws.recv(), Some(Reply::Text("hello, ann".into())));
        ws.send_text("hi");
        assert_eq!(ws.recv(), Some(Reply::Text("ann: hi".into())));
        ws.advance(10_000); // the timer fires
        assert_eq!(ws.recv(), Some(Reply::Text("still here?".into())));
        ws.send_binary(b"\x00");
        assert_eq!(
            ws.recv(),
            Some(Reply::Close(
                CloseCode::UNSUPPORTED_DATA,
                "text only".into()
            ))
        );
    }

    #[test]
    fn the_request_helper_validates_like_the_glue() {
        let request = TestRequest::new("/a%20b?x=1")
            .origin("https://a.example")
            .protocols(&["chat.v2", "chat.v1"])
            .cookie("sid", "7")
            .request::<Recorder>();
        assert_eq!(request.path(), "/a b");
        assert_eq!(request.query(), Some("x=1"));
        assert_eq!(request.origin(), Some("https://a.example"));
        assert_eq!(request.find_protocol("chat.v1"), Some("chat.v1"));
        assert_eq!(request.cookie("sid").as_deref(), Some("7"));
    }
}
