//! One accepted connection: the core's [`proto::Connection`] plus the
//! handler's state, its open flag and its timer. The component glue and
//! [`crate::testing`] both drive connections through this type, so a
//! handler behaves the same in a native test as in a component.

use ws_edge::protocol::{self as proto, CloseCode, Event, SendError, State};

use crate::{Control, Handler, Message};

/// The sending half of a connection, as the [`Handler`] hooks get it:
/// messages, pings, the close handshake, and the connection's one timer.
///
/// Sends fail with [`SendError`] and queue nothing when they do: the
/// connection is closing or closed ([`SendError::Closed`]), or the peer does
/// not read ([`SendError::Backpressure`]). To drop a message on purpose,
/// say so with `.ok();` (the `Result` becomes an `Option`, which nothing
/// requires you to use):
///
/// ```ignore
/// out.send(message).ok(); // an echo that drops what cannot be queued
/// if let Err(e) = out.send_text("important") {
///     log::warn!("not sent: {e}");
/// }
/// ```
pub struct Outbox<'a> {
    inner: proto::Outbox<'a>,
    timer: &'a mut Option<u64>,
}

impl<'a> Outbox<'a> {
    pub(crate) fn wrap(inner: &'a mut proto::Outbox<'_>, timer: &'a mut Option<u64>) -> Self {
        Outbox {
            inner: inner.reborrow(),
            timer,
        }
    }

    /// Queues `message` as it is: text as a text message, binary as binary.
    pub fn send(&mut self, message: Message<'_>) -> Result<(), SendError> {
        match message {
            Message::Text(text) => self.inner.send_text(text),
            Message::Binary(data) => self.inner.send_binary(data),
        }
    }

    /// Queues a text message (fragmented above
    /// [`Config::fragment_threshold`](crate::Config::fragment_threshold)).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.inner.send_text(text)
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.inner.send_binary(data)
    }

    /// Queues a ping; [`SendError::ControlTooLong`] over 125 bytes.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.inner.ping(payload)
    }

    /// Queues an unsolicited pong (pings are answered already).
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.inner.pong(payload)
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123
    /// bytes at a UTF-8 boundary). [`SendError::InvalidCode`] for a code
    /// that may not be sent (see [`CloseCode::is_valid_on_wire`]),
    /// [`SendError::Closed`] if a close frame went out already. The
    /// connection ends when the client answers, or at the close timeout;
    /// [`Handler::on_close`] runs then.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), SendError> {
        self.inner.close(code, reason)
    }

    /// The connection's state: [`State::Open`] while messages can be sent.
    pub fn state(&self) -> &State {
        self.inner.state()
    }

    /// Bytes queued for the socket and not yet taken by the host.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued_bytes()
    }

    /// The current instant in milliseconds, on the host's monotonic clock
    /// (the clock of [`schedule_at`](Self::schedule_at)).
    pub fn now(&self) -> u64 {
        self.inner.now()
    }

    /// Asks for [`Handler::on_timer`] `delay_ms` milliseconds from
    /// [`now`](Self::now). A connection has one timer: this replaces any
    /// earlier request.
    pub fn schedule_in(&mut self, delay_ms: u64) {
        *self.timer = Some(self.inner.now().saturating_add(delay_ms));
    }

    /// Asks for [`Handler::on_timer`] at instant `at_ms` (see
    /// [`now`](Self::now)); replaces any earlier request. An instant that
    /// has passed fires at the end of the current call.
    pub fn schedule_at(&mut self, at_ms: u64) {
        *self.timer = Some(at_ms);
    }

    /// Cancels the pending timer, if any.
    pub fn cancel_timer(&mut self) {
        *self.timer = None;
    }

    /// The instant of the pending timer, if any.
    pub fn timer(&self) -> Option<u64> {
        *self.timer
    }
}

/// An accepted connection with its handler (see the module docs).
pub(crate) struct Session<H> {
    conn: proto::Connection,
    handler: H,
    opened: bool,
    timer: Option<u64>,
}

impl<H: Handler> Session<H> {
    pub(crate) fn new(conn: proto::Connection, handler: H) -> Self {
        Session {
            conn,
            handler,
            opened: false,
            timer: None,
        }
    }

    /// The handler's state (for tests).
    pub(crate) fn handler(&self) -> &H {
        &self.handler
    }

    /// The core connection (its output, state and deadline).
    pub(crate) fn conn(&mut self) -> &mut proto::Connection {
        &mut self.conn
    }

    /// Runs [`Handler::on_open`] once, before any other hook, if the
    /// connection is still open.
    fn open(&mut self) {
        if std::mem::replace(&mut self.opened, true) {
            return;
        }
        if *self.conn.state() == State::Open {
            let Session {
                conn,
                handler,
                timer,
                ..
            } = self;
            handler.on_open(&mut Outbox::wrap(&mut conn.outbox(), timer));
        }
    }

    /// Runs [`Handler::on_timer`] if the timer is due and the connection
    /// open.
    fn fire_timer(&mut self) {
        let Session {
            conn,
            handler,
            timer,
            ..
        } = self;
        let now = conn.outbox().now();
        if timer.is_some_and(|at| at <= now) && *conn.state() == State::Open {
            *timer = None;
            handler.on_timer(&mut Outbox::wrap(&mut conn.outbox(), timer));
        }
    }

    /// `connection.receive`: bytes from the client. A message the handler
    /// sends back unchanged goes out from `data`'s buffer, uncopied
    /// ([`Connection::receive_owned`](ws_edge::protocol::Connection::receive_owned)).
    pub(crate) fn receive(&mut self, data: &mut Vec<u8>, now: u64) {
        self.open();
        let Session {
            conn,
            handler,
            timer,
            ..
        } = self;
        conn.receive_owned(data, now, |event, out| {
            dispatch(handler, event, &mut Outbox::wrap(out, timer))
        });
        self.fire_timer();
    }

    /// `connection.tick`: the time passed.
    pub(crate) fn tick(&mut self, now: u64) {
        self.open();
        let Session {
            conn,
            handler,
            timer,
            ..
        } = self;
        conn.tick(now, |event, out| {
            dispatch(handler, event, &mut Outbox::wrap(out, timer))
        });
        self.fire_timer();
    }

    /// `connection.close`: the host closes (shutdown, overload).
    pub(crate) fn close(&mut self, code: CloseCode, reason: &str, now: u64) {
        self.open();
        self.conn.close(code, reason, now);
    }

    /// `connection.disconnected`: the transport is gone. `on_open` never
    /// runs after this (nothing could be sent).
    pub(crate) fn disconnected(&mut self, now: u64) {
        self.opened = true;
        let Session {
            conn,
            handler,
            timer,
            ..
        } = self;
        conn.disconnected(now, |event, out| {
            dispatch(handler, event, &mut Outbox::wrap(out, timer))
        });
    }

    /// `delivery.deliver`: a publication for a `handler` subscription.
    pub(crate) fn deliver(&mut self, topic: &str, message: Message<'_>, now: u64) {
        // Timers first, as every call that passes the time does.
        self.tick(now);
        if *self.conn.state() != State::Open {
            return;
        }
        let Session {
            conn,
            handler,
            timer,
            ..
        } = self;
        handler.on_publication(topic, message, &mut Outbox::wrap(&mut conn.outbox(), timer));
    }

    /// When the host must call `tick` next: the core's timers and, while
    /// open, the handler's.
    pub(crate) fn deadline(&self) -> Option<u64> {
        let handler_timer = match self.conn.state() {
            State::Open => self.timer,
            _ => None,
        };
        match (self.conn.deadline(), handler_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Calls the handler's hook for one event.
fn dispatch<H: Handler>(handler: &mut H, event: Event<'_>, out: &mut Outbox<'_>) {
    match event {
        Event::Text(text) => handler.on_message(Message::Text(text), out),
        Event::Binary(data) => handler.on_message(Message::Binary(data), out),
        Event::Ping(payload) => handler.on_control(Control::Ping(payload), out),
        Event::Pong(payload) => handler.on_control(Control::Pong(payload), out),
        Event::Close(code, reason) => handler.on_close(code, reason),
    }
}
