//! The compiled component and the per-connection guest instance.
//!
//! Everything expensive happens once in [`Runtime::new`]: the engine with the
//! pooling allocator, the Cranelift compilation of the component, the linker
//! and the pre-instantiated bindings. A connection then costs one [`Store`]
//! plus one instantiation from the pool ([`Runtime::instantiate`]).
//!
//! With [`Limits::instance_reuse`] above 1, an instance that served a
//! connection without failing is kept ([`Runtime::recycle`]) and handed to a
//! later connection instead of a fresh one.
//!
//! Guest calls are synchronous and run on the tokio worker that drives the
//! connection. Each call gets an epoch deadline, so a guest that loops is
//! trapped after the configured CPU deadline; a background thread advances
//! the epoch every [`EPOCH_TICK`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store, StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::Limits;
use crate::stdio::{GuestLog, PeerLabel, Which};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "websocket-server",
    });
}

pub use bindings::exports::ws_edge::websocket::websocket_request::{
    ConnectionState, Transmit, Transport,
};
pub use lifted::HeadResult;

/// The result of `handle-head`, lifted with only what a socket host uses
/// copied out of the guest: the status, `wire`, `consumed` and the
/// connection. The reason phrase, the structured headers and the body are
/// bounds-checked by wasmtime but not copied (`WasmStr` / `WasmList`), which
/// saves a dozen host allocations per handshake.
///
/// The types mirror the WIT records field for field; a mismatch is caught
/// by the type check in [`Runtime::new`], at start-up.
pub(crate) mod lifted {
    use wasmtime::component::{ComponentType, Lift, ResourceAny, WasmList, WasmStr};

    /// `head-result`.
    #[derive(ComponentType, Lift)]
    #[component(variant)]
    #[expect(
        clippy::large_enum_variant,
        reason = "returned once per connection, straight from the lift"
    )]
    pub enum HeadResult {
        /// `incomplete`: no complete head yet.
        #[component(name = "incomplete")]
        Incomplete,
        /// `complete`: the head was answered.
        #[component(name = "complete")]
        Complete(HeadHandshake),
    }

    /// `head-handshake`.
    #[derive(ComponentType, Lift)]
    #[component(record)]
    pub struct HeadHandshake {
        /// Bytes of the input the head occupied.
        pub consumed: u32,
        /// The response and the connection.
        pub handshake: Handshake,
    }

    /// `handshake`.
    #[derive(ComponentType, Lift)]
    #[component(record)]
    pub struct Handshake {
        /// The response to write.
        pub response: Response,
        /// The connection, if accepted.
        pub connection: Option<ResourceAny>,
    }

    /// `response`: `status` and `wire` copied, the rest left in the guest.
    #[derive(ComponentType, Lift)]
    #[component(record)]
    #[expect(
        dead_code,
        reason = "the fields the host does not use exist for the type check"
    )]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// The reason phrase (not copied).
        pub reason: WasmStr,
        /// The structured header fields (not copied).
        pub headers: WasmList<Header>,
        /// The body (not copied; it is part of `wire`).
        pub body: WasmList<u8>,
        /// The serialized response, written to the socket verbatim.
        pub wire: Vec<u8>,
    }

    /// `header` (never copied: only the list's bounds are checked).
    #[derive(ComponentType, Lift)]
    #[component(record)]
    #[expect(dead_code, reason = "exists for the type check of `response`")]
    pub struct Header {
        /// The field name.
        pub name: WasmStr,
        /// The field value.
        pub value: WasmList<u8>,
    }
}

/// The parameters of `handle-head`.
type HandleHeadParams<'a> = (&'a [u8], &'a Transport, u64);

/// How often the background thread advances the engine's epoch. CPU deadlines
/// are rounded up to a multiple of this.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Dirty linear-memory bytes a freed pool slot may keep resident (restored in
/// place rather than decommitted). A handshake plus small messages dirties
/// under 32 KiB of the echo component's memory (stack top, data, heap);
/// connections that buffered large messages give the rest back with madvise.
const KEEP_RESIDENT: usize = 128 * 1024;

/// With instance reuse, an instance whose linear memory grew past this is
/// not kept: memory never shrinks, and an idle instance should not hold
/// megabytes that a fresh one would not.
pub const REUSE_MAX_MEMORY: usize = 4 << 20;

/// With instance reuse, at most this many instances wait for a connection.
/// Connections start and end in bursts; the idle instances bridge the gaps
/// (each holds a pool slot and its resident memory, ~100–200 KiB).
pub const REUSE_MAX_IDLE: usize = 64;

/// Per-instance store data: what WASI needs, the resource limits and the
/// label of the connection being served.
pub(crate) struct ConnData {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limiter,
    label: PeerLabel,
}

/// [`StoreLimits`], remembering how large the instance's memory has grown.
struct Limiter {
    limits: StoreLimits,
    memory: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory = self.memory.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for ConnData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The engine, the compiled component and its pre-instantiated bindings,
/// shared by every connection.
pub(crate) struct Runtime {
    engine: Engine,
    pre: bindings::WebsocketServerPre<ConnData>,
    memory_limit: usize,
    deadline_ticks: u64,
    ticker_stop: Arc<AtomicBool>,
    /// Connections one instance may serve ([`Limits::instance_reuse`]).
    reuse: u32,
    /// Instances waiting for their next connection (reuse only; at most
    /// [`REUSE_MAX_IDLE`]).
    idle: Mutex<Vec<Guest>>,
    /// Instances created so far.
    pub(crate) instantiated: Arc<AtomicU64>,
}

impl Runtime {
    /// Compiles `wasm` (a component) and prepares it for instantiation.
    pub(crate) fn new(wasm: &[u8], limits: &Limits) -> anyhow::Result<Self> {
        let reuse = limits.instance_reuse.max(1);
        let idle_cap = if reuse > 1 { REUSE_MAX_IDLE } else { 0 };
        // Idle instances hold pool slots too.
        let slots = u32::try_from(limits.max_connections.max(1).saturating_add(idle_cap))
            .unwrap_or(u32::MAX);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(4))
            .total_memories(slots)
            .total_tables(slots.saturating_mul(2))
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_memory_size(limits.memory_per_connection)
            // Resetting a freed slot: PAGEMAP_SCAN (Linux 6.7+) finds the pages
            // the instance dirtied, anywhere in its memory, and up to
            // KEEP_RESIDENT bytes of them are restored in place (memset/memcpy)
            // instead of being given back with madvise. The next connection in
            // that slot then takes no page faults and the reset no syscall.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(4096);

        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .parallel_compilation(true);
        // `WS_EDGE_PERFMAP=1`: write /tmp/perf-PID.map so that `perf report`
        // names the guest's compiled functions (README, Performance).
        if std::env::var_os("WS_EDGE_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("creating the wasmtime engine: {e}"))?;

        let component =
            Component::new(&engine, wasm).map_err(|e| anyhow!("compiling the component: {e:?}"))?;
        let mut linker = Linker::<ConnData>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("adding WASI to the linker: {e}"))?;
        crate::stdio::add_to_linker(&mut linker)
            .map_err(|e| anyhow!("adding wasi:io/streams to the linker: {e}"))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("linking the component: {e:?}"))?;
        let pre = bindings::WebsocketServerPre::new(instance_pre).map_err(|e| {
            anyhow!(
                "the component does not export ws-edge:websocket/websocket-request@0.1.0: {e:?}"
            )
        })?;

        let tick_ms = EPOCH_TICK.as_millis().max(1);
        let deadline_ticks = u64::try_from(limits.cpu_deadline.as_millis().div_ceil(tick_ms)).unwrap_or(u64::MAX).max(1)
                // The current tick may end right after the call starts.
                + 1;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("ws-edge-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .context("spawning the epoch thread")?;

        let runtime = Self {
            engine,
            pre,
            memory_limit: limits.memory_per_connection,
            deadline_ticks,
            ticker_stop,
            reuse,
            idle: Mutex::new(Vec::with_capacity(idle_cap)),
            instantiated: Arc::new(AtomicU64::new(0)),
        };
        // `handle-head` is called with the host's own result types
        // (`lifted`). Every instance of a component has the same types, so
        // one probe instance checks them for all: this check is what makes
        // `Guest::handle_head`'s unchecked call sound.
        let probe = runtime
            .fresh(&Arc::from("startup check"))
            .map_err(|e| anyhow!("instantiating the component: {e}"))?;
        probe
            .handle_head
            .typed::<HandleHeadParams<'_>, (HeadResult,)>(&probe.store)
            .map_err(|e| anyhow!("handle-head has an unexpected type: {e}"))?;
        Ok(runtime)
    }

    /// An instance for the connection from `peer`: an idle one when instance
    /// reuse is on and one is waiting, else a fresh store and instance.
    pub(crate) fn instantiate(&self, peer: &Arc<str>) -> Result<Guest, GuestError> {
        if self.reuse > 1 {
            let waiting = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            if let Some(mut guest) = waiting {
                guest.store.data().label.set(peer.clone());
                guest.served += 1;
                return Ok(guest);
            }
        }
        let guest = self.fresh(peer)?;
        self.instantiated.fetch_add(1, Ordering::Relaxed);
        Ok(guest)
    }

    /// A new store and instance for the connection from `peer`.
    fn fresh(&self, peer: &Arc<str>) -> Result<Guest, GuestError> {
        let label = PeerLabel::new(peer.clone());
        let wasi = WasiCtx::builder()
            .stdout(GuestLog::new(Which::Stdout, label.clone()))
            .stderr(GuestLog::new(Which::Stderr, label.clone()))
            .build();
        let data = ConnData {
            wasi,
            table: ResourceTable::new(),
            limits: Limiter {
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.memory_limit)
                    .instances(16)
                    .tables(8)
                    .memories(2)
                    .build(),
                memory: 0,
            },
            label,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        let bindings = guarded(|| self.pre.instantiate(&mut store))?;
        let handle_head = *bindings
            .ws_edge_websocket_websocket_request()
            .func_handle_head()
            .func();
        Ok(Guest {
            store,
            bindings,
            handle_head,
            deadline_ticks: self.deadline_ticks,
            served: 1,
            failed: false,
        })
    }

    /// Hands back the instance of a finished connection, whose resources
    /// have been dropped. With instance reuse it is kept for a later
    /// connection unless a call on it failed, it has served
    /// [`Limits::instance_reuse`] connections, its memory grew past
    /// [`REUSE_MAX_MEMORY`] or enough instances are idle already; otherwise
    /// (and always without reuse) it is dropped and its slot returns to the
    /// pool.
    pub(crate) fn recycle(&self, guest: Guest) {
        let keep = self.reuse > 1
            && !guest.failed
            && guest.served < self.reuse
            && guest.store.data().limits.memory <= REUSE_MAX_MEMORY;
        if keep {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < REUSE_MAX_IDLE {
                idle.push(guest);
                return;
            }
        }
        // Dropped here, outside the lock.
        drop(guest);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Why a guest call failed. The connection that made it must end.
#[derive(Debug)]
pub(crate) struct GuestError(pub(crate) String);

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs a guest call, turning a trap and a host panic (for example from a
/// WASI import that cannot run on a tokio worker) into a [`GuestError`].
fn guarded<R>(call: impl FnOnce() -> wasmtime::Result<R>) -> Result<R, GuestError> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(GuestError(describe_trap(&e))),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(GuestError(format!(
                "host panicked during a guest call: {msg}"
            )))
        }
    }
}

fn describe_trap(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        let what = match trap {
            wasmtime::Trap::Interrupt => "CPU deadline exceeded".to_owned(),
            wasmtime::Trap::UnreachableCodeReached => {
                "guest panicked or aborted (unreachable)".to_owned()
            }
            other => format!("guest trapped: {other}"),
        };
        return what;
    }
    format!("guest call failed: {e:#}")
}

/// One instance of the component, owned by one connection at a time.
pub(crate) struct Guest {
    store: Store<ConnData>,
    bindings: bindings::WebsocketServer,
    /// `handle-head`, whose types [`Runtime::new`] checked against [`HeadResult`].
    handle_head: wasmtime::component::Func,
    deadline_ticks: u64,
    /// Connections this instance has been handed to, the current one included.
    served: u32,
    /// A call trapped or failed: the instance must not be used again.
    failed: bool,
}

impl Guest {
    /// Runs one call with a fresh CPU deadline; a failure marks the
    /// instance as not reusable.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&bindings::WebsocketServer, &mut Store<ConnData>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = guarded(|| f(&self.bindings, &mut self.store));
        self.failed |= result.is_err();
        result
    }

    /// Calls `handle-request` (not used by the TCP host, which has raw bytes).
    #[cfg(test)]
    pub(crate) fn handle_request(
        &mut self,
        request: &bindings::exports::ws_edge::websocket::websocket_request::Request,
        now: u64,
    ) -> Result<bindings::exports::ws_edge::websocket::websocket_request::Handshake, GuestError>
    {
        self.call(|b, store| {
            b.ws_edge_websocket_websocket_request()
                .call_handle_request(store, request, now)
        })
    }

    /// Calls `preview-head`.
    #[cfg(test)]
    pub(crate) fn preview_head(
        &mut self,
        head: &[u8],
        transport: &Transport,
    ) -> Result<bindings::exports::ws_edge::websocket::websocket_request::HeadResponse, GuestError>
    {
        self.call(|b, store| {
            b.ws_edge_websocket_websocket_request()
                .call_preview_head(store, head, transport)
        })
    }

    /// Calls `handle-head`.
    pub(crate) fn handle_head(
        &mut self,
        head: &[u8],
        transport: &Transport,
        now: u64,
    ) -> Result<HeadResult, GuestError> {
        // SAFETY: `Runtime::new` checked on an instance of the same component
        // that `handle-head` has exactly these parameter and result types;
        // every instance of a component has the same types, and the check
        // does not depend on the parameters' lifetimes.
        let func = unsafe {
            wasmtime::component::TypedFunc::<HandleHeadParams<'_>, (HeadResult,)>::new_unchecked(
                self.handle_head,
            )
        };
        self.call(|_, store| func.call(store, (head, transport, now)).map(|(r,)| r))
    }

    /// Calls `connection.receive`.
    pub(crate) fn receive(
        &mut self,
        conn: ResourceAny,
        data: &[u8],
        now: u64,
    ) -> Result<Transmit, GuestError> {
        self.call(|b, store| {
            b.ws_edge_websocket_websocket_request()
                .connection()
                .call_receive(store, conn, data, now)
        })
    }

    /// Calls `connection.tick`.
    pub(crate) fn tick(&mut self, conn: ResourceAny, now: u64) -> Result<Transmit, GuestError> {
        self.call(|b, store| {
            b.ws_edge_websocket_websocket_request()
                .connection()
                .call_tick(store, conn, now)
        })
    }

    /// Calls `connection.close`.
    pub(crate) fn close(
        &mut self,
        conn: ResourceAny,
        code: u16,
        reason: &str,
        now: u64,
    ) -> Result<Transmit, GuestError> {
        self.call(|b, store| {
            b.ws_edge_websocket_websocket_request()
                .connection()
                .call_close(store, conn, code, reason, now)
        })
    }

    /// Calls `connection.disconnected`.
    pub(crate) fn disconnected(
        &mut self,
        conn: ResourceAny,
        now: u64,
    ) -> Result<Transmit, GuestError> {
        self.call(|b, store| {
            b.ws_edge_websocket_websocket_request()
                .connection()
                .call_disconnected(store, conn, now)
        })
    }

    /// Drops a resource the guest handed out (runs its destructor in the
    /// guest). A failure is logged and keeps the instance from being reused.
    pub(crate) fn drop_resource(&mut self, conn: ResourceAny) {
        if let Err(e) = self.call(|_, store| conn.resource_drop(store)) {
            tracing::debug!("dropping the connection resource failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every function of the WIT interface, called through wasmtime on the
    //! bundled echo component.

    use super::bindings::exports::ws_edge::websocket::websocket_request as wit;
    use super::*;

    const HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn runtime() -> Runtime {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        Runtime::new(crate::ECHO_COMPONENT, &limits).expect("echo compiles")
    }

    fn transport() -> Transport {
        Transport {
            peer: Some("192.0.2.1:5000".into()),
            tls: false,
        }
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
    fn handle_head_incomplete_then_complete_with_leftover() {
        let rt = runtime();
        let mut g = rt.instantiate(&"test".into()).expect("instance");
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
        let ConnectionState::Closed(frame) = t.state else {
            panic!("closed expected");
        };
        assert_eq!(frame.code, 1001);
        assert_eq!(t.deadline, None);
        g.drop_resource(conn);
    }

    #[test]
    fn tick_and_disconnected() {
        let rt = runtime();
        let mut g = rt.instantiate(&"test".into()).expect("instance");
        let HeadResult::Complete(hh) = g.handle_head(HEAD, &transport(), 100).expect("call") else {
            panic!("complete head expected");
        };
        let conn = hh.handshake.connection.expect("accepted");
        let t = g.tick(conn, 100).expect("tick");
        assert!(t.bytes.is_empty(), "nothing due yet");
        let deadline = t.deadline.expect("keepalive deadline");
        let t = g.tick(conn, deadline).expect("tick");
        assert_eq!(t.bytes, [0x89, 0], "keepalive ping");
        let t = g.disconnected(conn, deadline + 1).expect("disconnected");
        let ConnectionState::Closed(frame) = t.state else {
            panic!("closed expected");
        };
        assert_eq!(frame.code, 1006);
        g.drop_resource(conn);
    }

    #[test]
    fn handle_request_and_preview_head() {
        let rt = runtime();
        let mut g = rt.instantiate(&"test".into()).expect("instance");
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

        let wit::HeadResponse::Complete(r) = g.preview_head(HEAD, &transport()).expect("call")
        else {
            panic!("complete expected");
        };
        assert_eq!(r.status, 101);
        assert!(matches!(
            g.preview_head(b"GET / HT", &transport()).expect("call"),
            wit::HeadResponse::Incomplete
        ));
    }
}
