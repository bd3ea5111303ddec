//! One instance of the component, owned by one connection at a time: the
//! guest calls, each with a fresh CPU deadline, and how they fail.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{ComponentNamedList, Lift, Lower, ResourceAny, TypedFunc};

use crate::bindings::{HandleHeadParams, HeadResult, Message, Transmit, Transport};
use crate::error::{FailureKind, GuestError};
use crate::exports::{CloseParams, DeliverParams, Exports, Located, NowParams, ReceiveParams};
use crate::metrics::{Export, Metrics};
use crate::runtime::ConnData;

/// One instance of the component with its store.
pub(crate) struct Guest {
    pub(crate) store: Store<ConnData>,
    /// The functions the host calls, as this instance has looked them up.
    exports: Exports,
    /// Where they are in the component, and that their types were checked.
    located: Arc<Located>,
    deadline_ticks: u64,
    /// Where each call's duration is recorded.
    metrics: Arc<Metrics>,
    /// Connections this instance has been handed to, the current one included.
    pub(crate) served: u32,
    /// A call failed: the instance must not be used again.
    pub(crate) failed: bool,
}

/// Runs a guest call, turning a trap, a refused memory grow and a host
/// panic (for example from a WASI import that cannot run on a tokio worker)
/// into a typed [`GuestError`].
pub(crate) fn guarded<R>(
    store: &mut Store<ConnData>,
    call: impl FnOnce(&mut Store<ConnData>) -> wasmtime::Result<R>,
) -> Result<R, GuestError> {
    store.data_mut().reset_memory_refused();
    match catch_unwind(AssertUnwindSafe(|| call(&mut *store))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(GuestError::from_call(&e, store.data().memory_refused())),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(GuestError::new(
                FailureKind::Host,
                format!("host panicked during a guest call: {msg}"),
            ))
        }
    }
}

impl Guest {
    /// Wraps a new instance.
    pub(crate) fn new(
        store: Store<ConnData>,
        exports: Exports,
        located: Arc<Located>,
        deadline_ticks: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        Guest {
            store,
            exports,
            located,
            deadline_ticks,
            metrics,
            served: 1,
            failed: false,
        }
    }

    /// Checks the types of the functions the host calls on this instance
    /// ([`Located::check`]).
    pub(crate) fn check_exports(&mut self) -> anyhow::Result<()> {
        let located = self.located.clone();
        located.check(&mut self.store, &self.exports.instance())
    }

    /// Runs one call of `export` with a fresh CPU deadline, recording how
    /// long it took; a failure marks the instance as not reusable.
    fn call<R>(
        &mut self,
        export: Export,
        f: impl FnOnce(&mut Store<ConnData>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let started = Instant::now();
        let result = guarded(&mut self.store, f);
        self.metrics.guest_call(export, started.elapsed());
        self.failed |= result.is_err();
        result
    }

    /// Calls `export` with `params`, which must be the parameter and result
    /// types [`Located::check`] checked it against.
    fn invoke<P, R>(&mut self, export: Export, params: P) -> Result<R, GuestError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let Some(func) = self.exports.func(&self.located, &mut self.store, export) else {
            return Err(GuestError::new(
                FailureKind::Host,
                format!("a call of {export:?}, which the component does not export"),
            ));
        };
        // SAFETY: `Runtime::compile` checked on an instance of the same
        // component that `export` has exactly these parameter and result
        // types (`Located::check`); every instance of a component has the
        // same types, and the check does not depend on lifetimes.
        let func = unsafe { TypedFunc::<P, R>::new_unchecked(func) };
        self.call(export, |store| func.call(store, params))
    }

    /// Calls `handle-head`.
    pub(crate) fn handle_head(
        &mut self,
        head: &[u8],
        transport: &Transport,
        now: u64,
    ) -> Result<HeadResult, GuestError> {
        let params: HandleHeadParams<'_> = (head, transport, now);
        self.invoke(Export::HandleHead, params).map(|(r,)| r)
    }

    /// Calls `connection.receive`.
    pub(crate) fn receive(
        &mut self,
        conn: ResourceAny,
        data: &[u8],
        now: u64,
    ) -> Result<Transmit, GuestError> {
        let params: ReceiveParams<'_> = (conn, data, now);
        self.invoke(Export::Receive, params).map(|(t,)| t)
    }

    /// Calls `connection.tick`.
    pub(crate) fn tick(&mut self, conn: ResourceAny, now: u64) -> Result<Transmit, GuestError> {
        let params: NowParams = (conn, now);
        self.invoke(Export::Tick, params).map(|(t,)| t)
    }

    /// Calls `connection.close`.
    pub(crate) fn close(
        &mut self,
        conn: ResourceAny,
        code: u16,
        reason: &str,
        now: u64,
    ) -> Result<Transmit, GuestError> {
        let params: CloseParams<'_> = (conn, code, reason, now);
        self.invoke(Export::Close, params).map(|(t,)| t)
    }

    /// Calls `connection.disconnected`.
    pub(crate) fn disconnected(
        &mut self,
        conn: ResourceAny,
        now: u64,
    ) -> Result<Transmit, GuestError> {
        let params: NowParams = (conn, now);
        self.invoke(Export::Disconnected, params).map(|(t,)| t)
    }

    /// Calls `delivery.deliver`, for a publication to a `handler`
    /// subscription (only components that export `delivery` can make one).
    pub(crate) fn deliver(
        &mut self,
        conn: ResourceAny,
        topic: &str,
        message: &Message,
        now: u64,
    ) -> Result<Transmit, GuestError> {
        if !self.located.has_delivery() {
            return Err(GuestError::new(
                FailureKind::Host,
                "a handler delivery for a component without the delivery export",
            ));
        }
        let params: DeliverParams<'_> = (conn, topic, message, now);
        self.invoke(Export::Deliver, params).map(|(t,)| t)
    }

    /// Drops a resource the guest handed out (runs its destructor in the
    /// guest). A failure is logged and keeps the instance from being reused.
    pub(crate) fn drop_resource(&mut self, conn: ResourceAny) {
        if let Err(e) = self.call(Export::Drop, |store| conn.resource_drop(store)) {
            tracing::debug!(kind = %e.kind, "dropping the connection resource failed: {e}");
        }
    }

    /// The functions this instance has looked up so far.
    #[cfg(test)]
    pub(crate) fn looked_up(&self) -> Vec<Export> {
        self.exports.looked_up()
    }

    /// Calls `handle-request` (not used by the TCP host, which has raw bytes).
    #[cfg(test)]
    pub(crate) fn handle_request(
        &mut self,
        request: &crate::bindings::tests_only::Request,
        now: u64,
    ) -> Result<crate::bindings::tests_only::Handshake, GuestError> {
        use crate::bindings::tests_only::{Handshake, Request};
        let instance = self.exports.instance();
        self.call(Export::HandleHead, |store| {
            let iface = instance
                .get_export_index(&mut *store, None, crate::bindings::INTERFACE)
                .ok_or_else(|| wasmtime::format_err!("no websocket-request"))?;
            let index = instance
                .get_export_index(&mut *store, Some(&iface), "handle-request")
                .ok_or_else(|| wasmtime::format_err!("no handle-request"))?;
            let func =
                instance.get_typed_func::<(&Request, u64), (Handshake,)>(&mut *store, &index)?;
            func.call(store, (request, now)).map(|(h,)| h)
        })
    }
}

#[cfg(test)]
mod tests {
    //! Every function of `websocket-request`, called through wasmtime on the
    //! bundled echo component.

    use crate::Limits;
    use crate::bindings::tests_only as wit;
    use crate::bindings::{ConnectionState, Ending, HeadResult, Timer, Transport, socket_address};
    use crate::error::FailureKind;
    use crate::runtime::Runtime;

    const HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn runtime() -> Runtime {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        Runtime::new(
            crate::ECHO_COMPONENT,
            &limits,
            Vec::new(),
            crate::pubsub::Broker::standalone(),
        )
        .expect("echo compiles")
    }

    fn transport() -> Transport {
        Transport {
            peer: Some(socket_address(PEER.into())),
            tls: false,
        }
    }

    /// The peer the tests pretend to serve.
    const PEER: ([u8; 4], u16) = ([192, 0, 2, 1], 5000);

    /// Answers `HEAD` at `now` and returns the accepted connection.
    fn accept(g: &mut crate::instance::Guest, now: u64) -> wasmtime::component::ResourceAny {
        let HeadResult::Complete(hh) = g.handle_head(HEAD, &transport(), now).expect("call") else {
            panic!("complete head expected");
        };
        hh.handshake.connection.expect("accepted")
    }

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8, 9, 8, 7, 6];
        f.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]),
        );
        f
    }

    #[test]
    fn an_instance_looks_up_only_the_functions_it_calls() {
        use crate::metrics::Export;
        let rt = runtime();
        let mut g = rt.instantiate(PEER.into()).expect("instance");
        assert_eq!(g.looked_up(), []);
        let conn = accept(&mut g, 0);
        assert_eq!(g.looked_up(), [Export::HandleHead]);
        let t = g.receive(conn, &masked(0x1, b"hi"), 1).expect("receive");
        assert_eq!(t.bytes, [0x81, 2, b'h', b'i'], "the echo");
        let t = g.close(conn, 1000, "bye", 2).expect("close");
        assert_eq!(&t.bytes[..4], [0x88, 5, 0x03, 0xe8], "a close frame");
        assert_eq!(
            g.looked_up(),
            [Export::HandleHead, Export::Receive, Export::Close]
        );
        g.drop_resource(conn);
        assert!(!g.failed);
    }

    #[test]
    fn handle_head_incomplete_then_complete_with_leftover() {
        let rt = runtime();
        let mut g = rt.instantiate(PEER.into()).expect("instance");
        let partial = g.handle_head(&HEAD[..40], &transport(), 0).expect("call");
        assert!(matches!(partial, HeadResult::Incomplete));

        let mut bytes = HEAD.to_vec();
        bytes.extend(masked(0x1, b"hi"));
        let HeadResult::Complete(hh) = g.handle_head(&bytes, &transport(), 0).expect("call") else {
            panic!("complete head expected");
        };
        assert_eq!(hh.consumed as usize, HEAD.len());
        let r = &hh.handshake.response;
        assert_eq!(r.status, 101);
        assert!(r.wire.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        // Only `wire` is copied out of the guest (see `lifted`).
        let accept = b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        assert!(r.wire.windows(accept.len()).any(|w| w == accept));
        let conn = hh.handshake.connection.expect("accepted");

        let t = g.receive(conn, &bytes[HEAD.len()..], 1).expect("receive");
        assert_eq!(t.bytes, [0x81, 2, b'h', b'i']);
        assert!(matches!(t.state, ConnectionState::Open));
        assert!(t.deadline.is_some(), "keepalive armed");

        // Host-initiated close, then the peer's reply completes it.
        let t = g.close(conn, 1001, "bye", 2).expect("close");
        assert_eq!(&t.bytes[..4], &[0x88, 5, 0x03, 0xE9]);
        assert!(matches!(t.state, ConnectionState::Closing));
        let t = g
            .receive(conn, &masked(0x8, &1001u16.to_be_bytes()), 3)
            .expect("receive");
        assert!(t.bytes.is_empty());
        let ConnectionState::Closed(Ending::Clean(frame)) = t.state else {
            panic!("clean close expected");
        };
        assert_eq!(frame.code, 1001);
        assert_eq!(t.deadline, None);
        g.drop_resource(conn);
    }

    #[test]
    fn a_protocol_error_is_a_failed_ending() {
        let rt = runtime();
        let mut g = rt.instantiate(PEER.into()).expect("instance");
        let conn = accept(&mut g, 0);
        // An unmasked client frame (RFC 6455 §5.1).
        let t = g.receive(conn, &[0x81, 1, b'x'], 1).expect("receive");
        assert_eq!(&t.bytes[..4], &[0x88, t.bytes[1], 0x03, 0xEA], "1002 sent");
        let ConnectionState::Closed(Ending::Failed(frame)) = t.state else {
            panic!("failed ending expected");
        };
        assert_eq!(frame.code, 1002);
        g.drop_resource(conn);
    }

    #[test]
    fn tick_and_disconnected() {
        let rt = runtime();
        let mut g = rt.instantiate(PEER.into()).expect("instance");
        let conn = accept(&mut g, 100);
        let t = g.tick(conn, 100).expect("tick");
        assert!(t.bytes.is_empty(), "nothing due yet");
        let deadline = t.deadline.expect("keepalive deadline");
        let t = g.tick(conn, deadline).expect("tick");
        assert_eq!(t.bytes, [0x89, 0], "keepalive ping");
        let t = g.disconnected(conn, deadline + 1).expect("disconnected");
        assert!(matches!(t.state, ConnectionState::Closed(Ending::Lost)));
        g.drop_resource(conn);

        // Unanswered keepalive: timed out.
        let conn = accept(&mut g, 0);
        let mut t = g.tick(conn, 0).expect("tick");
        for _ in 0..3 {
            let Some(at) = t.deadline else { break };
            t = g.tick(conn, at).expect("tick");
        }
        assert!(
            matches!(
                t.state,
                ConnectionState::Closed(Ending::TimedOut(Timer::Keepalive))
            ),
            "{:?}",
            t.state
        );
        g.drop_resource(conn);
    }

    #[test]
    fn handle_request_validates_like_handle_head() {
        let rt = runtime();
        let mut g = rt.instantiate(PEER.into()).expect("instance");
        let header = |n: &str, v: &str| wit::Header {
            name: n.into(),
            value: v.as_bytes().to_vec(),
        };
        let mut request = wit::Request {
            method: "GET".into(),
            target: "/chat".into(),
            version: wit::HttpVersion { major: 1, minor: 1 },
            headers: vec![
                header("Host", "a.example"),
                header("Upgrade", "websocket"),
                header("Connection", "Upgrade"),
                header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                header("Sec-WebSocket-Version", "13"),
            ],
            transport: transport(),
        };
        let hs = g.handle_request(&request, 0).expect("call");
        assert_eq!(hs.response.status, 101);
        let conn = hs.connection.expect("accepted");
        g.drop_resource(conn);

        request.headers.truncate(3);
        let hs = g.handle_request(&request, 0).expect("call");
        assert_eq!(hs.response.status, 400);
        assert!(hs.connection.is_none());
    }

    #[test]
    fn a_call_on_a_dropped_resource_is_a_trap_and_spoils_the_instance() {
        let rt = runtime();
        let mut g = rt.instantiate(PEER.into()).expect("instance");
        let conn = accept(&mut g, 0);
        g.drop_resource(conn);
        assert!(!g.failed);
        let e = g.tick(conn, 1).expect_err("the handle is gone");
        assert_eq!(e.kind, FailureKind::Trap, "{e}");
        assert!(g.failed);
    }
}
