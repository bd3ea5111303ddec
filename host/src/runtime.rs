//! The compiled component and its instance pool: the engine, the epoch
//! thread, fresh instances and (with instance reuse) idle ones.
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
//! Guest calls ([`crate::instance`]) are synchronous and run on the tokio
//! worker that drives the connection. Each call gets an epoch deadline, so a
//! guest that loops is trapped after the configured CPU deadline; a
//! background thread started here advances the epoch every [`EPOCH_TICK`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::Limits;
use crate::bindings::{DELIVERY_INTERFACE, INTERFACE, pubsub};
use crate::budget::{Budget, Lease};
use crate::error::{FailureKind, GuestError};
use crate::exports::{Exports, Located};
use crate::instance::{Guest, guarded};
use crate::metrics::Metrics;
use crate::pubsub::{Broker, Mode, PubSubError, Session};
use crate::shape::InstanceShape;
use crate::stdio::{GuestLog, PeerLabel, Which};

/// How often the background thread advances the engine's epoch. CPU deadlines
/// are rounded up to a multiple of this.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How many bytes of each freed slot's linear memory stay resident
/// ([`Limits::warm_memory`]): all of them when every memory of the
/// components served starts at most `warm` bytes large, else none.
///
/// wasmtime restores the *lowest* `keep` bytes in place and madvises the
/// rest. That only pays when the pages instances touch are among them: a
/// reset then makes no system call and the next instance in the slot takes
/// no page faults (the echo component with a 64 KiB stack: instantiation,
/// first `handle-head` and teardown 13 µs instead of 29 µs; docs/bench.md,
/// "Instance lifetime"). Keeping part of a memory does not: a Rust
/// component with the default 1 MiB stack has the untouched bottom of its
/// stack there, and its hot pages above 1 MiB. wasmtime's PAGEMAP_SCAN
/// mode, which would find the touched pages, reports untouched ones too
/// with wasmtime 50 on Linux 6.18, and is left off.
fn keep_resident(shape: &InstanceShape, warm: usize) -> usize {
    if warm > 0 && shape.memory_initial <= warm as u64 {
        // Whole host pages (a memory with custom page sizes may end mid-page).
        usize::try_from(shape.memory_initial.next_multiple_of(4096)).unwrap_or(0)
    } else {
        0
    }
}

/// With instance reuse, an instance whose linear memories grew by more than
/// this beyond their initial sizes is not kept: memory never shrinks, and an
/// idle instance should not hold megabytes that a fresh one would not. (The
/// initial sizes do not count: a fresh Python or JavaScript instance starts
/// with 9–13 MiB.)
pub const REUSE_MAX_MEMORY: usize = 4 << 20;

/// The memory free pool slots keep resident ([`Limits::warm_memory`]),
/// held under [`Limits::warm_pool`]: the epoch thread looks at each tick
/// and, when the free slots hold more, gives all of it back.
pub(crate) struct WarmPool {
    /// Bytes the free slots may keep resident.
    cap: usize,
    /// Counts each release's start and end, so it is odd while one runs:
    /// wasmtime takes every free warm slot out of the pool meanwhile, and an
    /// instantiation that finds the pool full then is retried
    /// ([`Runtime::instantiate`]).
    releases: AtomicU64,
    /// Bytes given back so far.
    released: AtomicU64,
}

impl WarmPool {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            releases: AtomicU64::new(0),
            released: AtomicU64::new(0),
        }
    }

    /// Bytes the free slots of `engine`'s pool hold now.
    fn resident(engine: &Engine) -> usize {
        engine
            .pooling_allocator_metrics()
            .map_or(0, |m| m.unused_memory_bytes_resident())
    }

    /// Gives the free slots' memory back when they hold more than the cap.
    fn trim(&self, engine: &Engine) {
        let resident = Self::resident(engine);
        if resident <= self.cap {
            return;
        }
        self.releases.fetch_add(1, Ordering::SeqCst);
        let released = engine.release_idle_pool_memory();
        self.releases.fetch_add(1, Ordering::SeqCst);
        self.released.fetch_add(
            u64::try_from(released).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        tracing::debug!(
            resident,
            released,
            cap = self.cap,
            "free pool slots held more than --warm-pool-mib: memory given back"
        );
    }

    /// A mark to pass to [`WarmPool::released_since`].
    fn mark(&self) -> u64 {
        self.releases.load(Ordering::SeqCst)
    }

    /// Whether a release ran since `mark` (or runs now); if one runs, waits
    /// for it to end (it takes well under a millisecond; the wait is
    /// bounded all the same).
    fn released_since(&self, mark: u64) -> bool {
        let ran = self.mark() != mark || !mark.is_multiple_of(2);
        for _ in 0..100_000 {
            if self.mark().is_multiple_of(2) {
                break;
            }
            std::thread::yield_now();
        }
        ran
    }
}

/// An instance whose linear memory grew past this is dropped on a blocking
/// thread rather than on the worker that served its connection.
const DROP_ASIDE_MEMORY: usize = 4 << 20;

/// The most linear-memory slots the instance pool reserves, whatever the
/// connection limit: each reserves 4 GiB of address space (so that wasmtime
/// needs no bounds checks), and 16 384 of them are 64 TiB of the 128 TiB a
/// Linux process has.
const MAX_MEMORY_SLOTS: u32 = 16_384;

/// Fails, saying how to build without it, when the component imports a
/// `wasi:http` interface: the host does not provide outgoing HTTP (guest
/// calls run synchronously on the worker that drives the connection, so a
/// request would hold that worker and every connection on it for a whole
/// round trip; docs/composition.md, "Outgoing HTTP").
fn refuse_outgoing_http(component: &Component, engine: &Engine) -> anyhow::Result<()> {
    let ty = component.component_type();
    let Some(name) = ty
        .imports(engine)
        .map(|(name, _)| name)
        .find(|name| name.starts_with("wasi:http/"))
    else {
        return Ok(());
    };
    anyhow::bail!(
        "the component imports {name}, and ws-edge does not provide outgoing HTTP (wasi:http): \
         a handler must decide from the request alone. Build it without HTTP: \
         componentize-js `--disable http --disable fetch-event`; componentize-py: do not \
         import the wasi:http bindings (or a library that uses them); Rust: do not depend on \
         the wasi crate's http module. See docs/composition.md, \"Outgoing HTTP\""
    )
}

/// A per-store count limit from a shape count.
fn shape_count(count: u32) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// With instance reuse, at most this many instances wait for a connection.
/// Connections start and end in bursts; the idle instances bridge the gaps
/// (each holds a pool slot and its resident memory).
pub const REUSE_MAX_IDLE: usize = 64;

/// Per-instance store data: what WASI needs, the resource limits and the
/// label of the connection being served.
pub(crate) struct ConnData {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limiter,
    label: PeerLabel,
    /// The instance's part in the publish/subscribe service.
    pub(crate) session: Session,
    /// Counts the instance as alive until its store is dropped.
    _alive: Alive,
}

/// One alive instance in [`Base::alive`].
struct Alive(Arc<AtomicU64>);

impl Alive {
    fn new(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnData {
    /// The instance's registration with the memory budget.
    pub(crate) fn lease(&self) -> &Lease {
        &self.limits.lease
    }

    /// Forgets an earlier refused `memory.grow` (before each call).
    pub(crate) fn reset_memory_refused(&mut self) {
        self.limits.refused = None;
    }

    /// Which limit refused a `memory.grow` since the last reset, if any.
    pub(crate) fn memory_refused(&self) -> Option<Refusal> {
        self.limits.refused
    }
}

/// Which limit refused a `memory.grow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The instance's own cap ([`Limits::memory_per_connection`]).
    Cap,
    /// The server's memory budget ([`Limits::memory_budget`]).
    Budget,
}

/// [`StoreLimits`] plus the global memory budget, remembering how large the
/// instance's memories have grown and whether a grow was refused.
struct Limiter {
    limits: StoreLimits,
    lease: Lease,
    /// The sizes of all the instance's linear memories added up: what
    /// [`Limits::memory_per_connection`] caps (a component built by
    /// componentize-py or componentize-js has several).
    memory: usize,
    /// The cap on `memory`.
    cap: usize,
    /// The initial sizes of the instance's memories added up: what a fresh
    /// instance holds too.
    initial: usize,
    refused: Option<Refusal>,
    /// The budget charge of the grow in progress, given back if it fails.
    charged: usize,
    /// What the grow in progress added to `memory`, taken back if it fails.
    added: usize,
}

impl Limiter {
    /// How much the instance's memories grew beyond their initial sizes.
    fn grown(&self) -> usize {
        self.memory.saturating_sub(self.initial)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A memory's creation (current 0) is its initial size, which the
        // budget does not count; every later grow is charged first.
        let charge = if current == 0 {
            0
        } else {
            desired.saturating_sub(current)
        };
        let total = self.memory.saturating_add(desired.saturating_sub(current));
        if total > self.cap {
            self.refused = Some(Refusal::Cap);
            return Ok(false);
        }
        if charge > 0 && !self.lease.grow(charge) {
            self.refused = Some(Refusal::Budget);
            return Ok(false);
        }
        let allowed = match self.limits.memory_growing(current, desired, maximum) {
            Ok(allowed) => allowed,
            Err(e) => {
                self.lease.ungrow(charge);
                return Err(e);
            }
        };
        if allowed {
            self.added = total - self.memory;
            self.memory = total;
            if current == 0 {
                self.initial = self.initial.saturating_add(desired);
            }
            self.charged = charge;
        } else {
            self.lease.ungrow(charge);
            self.refused = Some(Refusal::Cap);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.lease.ungrow(std::mem::take(&mut self.charged));
        self.memory -= std::mem::take(&mut self.added);
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

/// What every component of a server shares: the engine with its pooling
/// allocator and epoch thread, the linker, the memory budget, the
/// publish/subscribe service and the instance counters.
pub(crate) struct Base {
    engine: Engine,
    linker: Linker<ConnData>,
    /// The publish/subscribe service the instances import.
    pub(crate) broker: Arc<Broker>,
    memory_limit: usize,
    deadline_ticks: u64,
    ticker_stop: Arc<AtomicBool>,
    /// Connections one instance may serve ([`Limits::instance_reuse`]).
    reuse: u32,
    /// Instances created so far.
    pub(crate) instantiated: Arc<AtomicU64>,
    /// Instances alive now (serving or idle).
    pub(crate) alive: Arc<AtomicU64>,
    /// What all instances together may hold.
    pub(crate) budget: Arc<Budget>,
    /// The environment every instance sees (`wasi:cli/environment`).
    env: Vec<(String, String)>,
    /// The host's metrics (guest call latencies are recorded per call).
    pub(crate) metrics: Arc<Metrics>,
    /// What one instance may hold: the pool and each store are sized for
    /// it ([`InstanceShape`]).
    shape: InstanceShape,
    /// The bound on what free slots keep resident, when they keep any
    /// ([`Limits::warm_memory`]).
    warm: Option<Arc<WarmPool>>,
}

impl Base {
    /// The engine, the linker and the epoch thread for `limits`, with an
    /// instance pool for components of `shape` (at least
    /// [`InstanceShape::FLOOR`]); every instance will see `env` as its
    /// environment.
    pub(crate) fn new(
        limits: &Limits,
        env: Vec<(String, String)>,
        broker: Arc<Broker>,
        shape: InstanceShape,
    ) -> anyhow::Result<Arc<Self>> {
        let shape = shape.max(InstanceShape::FLOOR);
        let reuse = limits.instance_reuse.max(1);
        let idle_cap = if reuse > 1 { REUSE_MAX_IDLE } else { 0 };
        // Idle instances hold pool slots too.
        let slots = u32::try_from(limits.max_connections.max(1).saturating_add(idle_cap))
            .unwrap_or(u32::MAX);
        let memory_slots = slots.saturating_mul(shape.memories);
        let pooled_memories = memory_slots.min(MAX_MEMORY_SLOTS);
        if pooled_memories < memory_slots {
            tracing::warn!(
                memories_per_instance = shape.memories,
                max_connections = limits.max_connections,
                memory_slots = pooled_memories,
                "the components served hold {} linear memories per instance: the pool's \
                 {pooled_memories} memory slots (each reserves 4 GiB of address space) \
                 serve {} connections at once, not --max-connections; later ones get 503",
                shape.memories,
                pooled_memories / shape.memories.max(1),
            );
        }
        let table_elements = usize::try_from(shape.table_elements).unwrap_or(usize::MAX);
        let keep = keep_resident(&shape, limits.warm_memory);
        let warm = (keep > 0).then(|| Arc::new(WarmPool::new(limits.warm_pool)));
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(shape.core_instances))
            .total_memories(pooled_memories)
            .total_tables(slots.saturating_mul(shape.tables))
            .max_core_instances_per_component(shape.core_instances)
            .max_memories_per_component(shape.memories)
            .max_tables_per_component(shape.tables)
            .table_elements(table_elements)
            .max_memory_size(limits.memory_per_connection)
            .linear_memory_keep_resident(keep)
            .table_keep_resident(4096);

        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .parallel_compilation(true);
        // `WS_EDGE_PERFMAP=1`: write /tmp/perf-PID.map so that `perf report`
        // names the guest's compiled functions (bench/callgrind-handshake.sh).
        if std::env::var_os("WS_EDGE_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("creating the wasmtime engine: {e}"))?;
        let mut linker = Linker::<ConnData>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("adding WASI to the linker: {e}"))?;
        crate::stdio::add_to_linker(&mut linker)
            .map_err(|e| anyhow!("adding wasi:io/streams to the linker: {e}"))?;
        pubsub::add_to_linker::<ConnData, HasSelf<ConnData>>(&mut linker, |data| data)
            .map_err(|e| anyhow!("adding ws-edge:websocket/pubsub to the linker: {e}"))?;
        crate::guest_log::add_to_linker(&mut linker)
            .map_err(|e| anyhow!("adding wasi:logging/logging to the linker: {e}"))?;

        let tick_ms = EPOCH_TICK.as_millis().max(1);
        let deadline_ticks = u64::try_from(limits.cpu_deadline.as_millis().div_ceil(tick_ms)).unwrap_or(u64::MAX).max(1)
                // The current tick may end right after the call starts.
                + 1;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop = ticker_stop.clone();
        let trim = warm.clone();
        std::thread::Builder::new()
            .name("ws-edge-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    let Some(engine) = weak.upgrade() else { break };
                    engine.increment_epoch();
                    if let Some(warm) = &trim {
                        warm.trim(&engine);
                    }
                }
            })
            .context("spawning the epoch thread")?;

        Ok(Arc::new(Self {
            engine,
            linker,
            broker,
            memory_limit: limits.memory_per_connection,
            deadline_ticks,
            ticker_stop,
            reuse,
            instantiated: Arc::new(AtomicU64::new(0)),
            alive: Arc::new(AtomicU64::new(0)),
            budget: Arc::new(Budget::new(limits.memory_budget)),
            env,
            metrics: Arc::default(),
            shape,
            warm,
        }))
    }

    /// Bytes the free pool slots keep resident now.
    pub(crate) fn warm_resident(&self) -> usize {
        WarmPool::resident(&self.engine)
    }

    /// Bytes the free pool slots gave back to stay under the cap.
    pub(crate) fn warm_released(&self) -> u64 {
        self.warm
            .as_ref()
            .map_or(0, |warm| warm.released.load(Ordering::Relaxed))
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// One compiled component and its pre-instantiated bindings on a [`Base`],
/// with its idle instances when instance reuse is on. A reload makes a new
/// one; connections keep the one they started on.
pub(crate) struct Runtime {
    base: Arc<Base>,
    pre: InstancePre<ConnData>,
    /// Where the functions the host calls are, their types checked.
    located: Arc<Located>,
    /// Instances waiting for their next connection (reuse only; at most
    /// [`REUSE_MAX_IDLE`]).
    idle: Mutex<Vec<Guest>>,
}

impl Runtime {
    /// Compiles `wasm` (a component) on a base of its own: the whole
    /// server when it serves one component (and the benchmarks' setup).
    pub(crate) fn new(
        wasm: &[u8],
        limits: &Limits,
        env: Vec<(String, String)>,
        broker: Arc<Broker>,
    ) -> anyhow::Result<Self> {
        let shape = InstanceShape::of(wasm)?;
        Self::compile(Base::new(limits, env, broker, shape)?, wasm)
    }

    /// Compiles `wasm` (a component), links it and checks its exports on
    /// one probe instance. Fails, with the reason, when it is not a
    /// component, imports something the host does not provide, or does not
    /// export `websocket-request` with the expected types.
    pub(crate) fn compile(base: Arc<Base>, wasm: &[u8]) -> anyhow::Result<Self> {
        let shape = InstanceShape::of(wasm)?;
        tracing::debug!(?shape, room = ?base.shape, "component shape");
        shape.fits(&base.shape)?;
        let component = Component::new(&base.engine, wasm)
            .map_err(|e| anyhow!("compiling the component: {e:?}"))?;
        refuse_outgoing_http(&component, &base.engine)?;
        let pre = base
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("linking the component: {e:?}"))?;
        let located = Located::new(&pre).map_err(|e| {
            let ty = component.component_type();
            let exports: Vec<&str> = ty.exports(&base.engine).map(|(name, _)| name).collect();
            crate::error::missing_export(&exports, INTERFACE, e)
        })?;
        tracing::debug!(
            handler_delivery = located.has_delivery(),
            "component exports {DELIVERY_INTERFACE}: {}",
            located.has_delivery()
        );
        let idle_cap = if base.reuse > 1 { REUSE_MAX_IDLE } else { 0 };
        let runtime = Self {
            base,
            pre,
            located: Arc::new(located),
            idle: Mutex::new(Vec::with_capacity(idle_cap)),
        };
        // The functions are called with the host's own types (`handle-head`
        // with its `lifted` result). Every instance of a component has the
        // same types, so one probe instance checks them for all: this check
        // is what makes `Guest`'s unchecked calls sound.
        let mut probe = runtime
            .fresh(SocketAddr::from(([0, 0, 0, 0], 0)))
            .map_err(|e| anyhow!("instantiating the component: {e}"))?;
        probe.check_exports()?;
        Ok(runtime)
    }

    /// Instances of this component waiting for a connection.
    pub(crate) fn idle_instances(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// An instance for the connection from `peer`: an idle one when instance
    /// reuse is on and one is waiting, else a fresh store and instance.
    pub(crate) fn instantiate(&self, peer: SocketAddr) -> Result<Guest, GuestError> {
        if self.base.reuse > 1 {
            let waiting = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            if let Some(mut guest) = waiting {
                guest.store.data().label.set(peer);
                guest.store.data_mut().session.activate();
                guest.store.data().lease().set_active(true);
                guest.served += 1;
                return Ok(guest);
            }
        }
        let mut guest = self.fresh(peer)?;
        guest.store.data().lease().set_active(true);
        guest.store.data_mut().session.activate();
        self.base.instantiated.fetch_add(1, Ordering::Relaxed);
        Ok(guest)
    }

    /// A new store and instance for the connection from `peer`.
    fn fresh(&self, peer: SocketAddr) -> Result<Guest, GuestError> {
        let mark = self.base.warm.as_ref().map(|warm| warm.mark());
        let mut store = self.store(peer);
        let mut instance = guarded(&mut store, |store| self.pre.instantiate(&mut *store));
        // A release of the free slots' memory takes them out of the pool
        // for its duration: a pool that looked full then was not.
        if instance.is_err()
            && let (Some(warm), Some(mark)) = (&self.base.warm, mark)
            && warm.released_since(mark)
        {
            store = self.store(peer);
            instance = guarded(&mut store, |store| self.pre.instantiate(&mut *store));
        }
        let instance =
            instance.map_err(|e| GuestError::new(FailureKind::Instantiation, e.detail))?;
        Ok(Guest::new(
            store,
            Exports::new(instance),
            self.located.clone(),
            self.base.deadline_ticks,
            self.base.metrics.clone(),
        ))
    }

    /// A new store, with its limits and deadline, for the connection from
    /// `peer`.
    fn store(&self, peer: SocketAddr) -> Store<ConnData> {
        let label = PeerLabel::new(peer);
        let wasi = WasiCtx::builder()
            .stdout(GuestLog::new(Which::Stdout, label.clone()))
            .stderr(GuestLog::new(Which::Stderr, label.clone()))
            .envs(&self.base.env)
            .build();
        let data = ConnData {
            wasi,
            table: ResourceTable::new(),
            limits: Limiter {
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.base.memory_limit)
                    .instances(shape_count(self.base.shape.core_instances))
                    .tables(shape_count(self.base.shape.tables))
                    .memories(shape_count(self.base.shape.memories))
                    .build(),
                lease: self.base.budget.lease(),
                memory: 0,
                cap: self.base.memory_limit,
                initial: 0,
                refused: None,
                charged: 0,
                added: 0,
            },
            label,
            session: self.base.broker.session(self.located.has_delivery()),
            _alive: Alive::new(&self.base.alive),
        };
        let mut store = Store::new(&self.base.engine, data);
        store.limiter(|data| &mut data.limits);
        store.set_epoch_deadline(self.base.deadline_ticks);
        store
    }

    /// Hands back the instance of a finished connection, whose resources
    /// have been dropped. With instance reuse it is kept for a later
    /// connection unless a call on it failed, it has served
    /// [`Limits::instance_reuse`] connections, its memory grew past
    /// [`REUSE_MAX_MEMORY`] or enough instances are idle already; otherwise
    /// (and always without reuse) it is dropped and its slot returns to the
    /// pool.
    pub(crate) fn recycle(&self, mut guest: Guest) {
        // The connection is over, whatever happens to the instance.
        guest.store.data_mut().session.reset();
        let keep = self.base.reuse > 1
            && !guest.failed
            && guest.served < self.base.reuse
            && guest.store.data().limits.grown() <= REUSE_MAX_MEMORY;
        if keep {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < REUSE_MAX_IDLE {
                guest.store.data().lease().set_active(false);
                idle.push(guest);
                return;
            }
        }
        // Giving back a large memory (madvise of every page it touched)
        // takes long enough to delay the other connections of this worker:
        // do it on a blocking thread. Small ones are dropped here, outside
        // the lock.
        if guest.store.data().limits.memory > DROP_ASIDE_MEMORY
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn_blocking(move || drop(guest));
            return;
        }
        drop(guest);
    }
}

impl pubsub::Host for ConnData {
    fn subscribe(
        &mut self,
        topic: String,
        delivery: pubsub::Delivery,
    ) -> Result<(), pubsub::Error> {
        let mode = match delivery {
            pubsub::Delivery::Handler => Mode::Handler,
            pubsub::Delivery::Forward => Mode::Forward,
        };
        self.session.subscribe(topic, mode).map_err(wit_error)
    }

    fn unsubscribe(&mut self, topic: String) -> Result<bool, pubsub::Error> {
        self.session.unsubscribe(&topic).map_err(wit_error)
    }

    fn publish(
        &mut self,
        topic: String,
        message: crate::bindings::Message,
    ) -> Result<u32, pubsub::Error> {
        self.session.publish(topic, message).map_err(wit_error)
    }
}

/// The WIT form of a service error.
fn wit_error(e: PubSubError) -> pubsub::Error {
    match e {
        PubSubError::InvalidTopic(why) => pubsub::Error::InvalidTopic(why),
        PubSubError::Denied(why) => pubsub::Error::Denied(why),
        PubSubError::Limit(why) => pubsub::Error::Limit(why),
        PubSubError::Unavailable(why) => pubsub::Error::Unavailable(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 2,
            ..Limits::default()
        }
    }

    fn compile(wat: &str, limits: &Limits) -> anyhow::Result<Runtime> {
        let wasm = wat::parse_str(wat).expect("valid wat");
        Runtime::new(&wasm, limits, Vec::new(), Broker::standalone())
    }

    #[test]
    fn small_memories_stay_resident_when_asked_and_large_ones_never() {
        let with = |memory_initial| InstanceShape {
            memory_initial,
            ..InstanceShape::FLOOR
        };
        let warm = 128 * 1024;
        // Off by default.
        assert_eq!(keep_resident(&with(2 << 16), 0), 0);
        assert_eq!(keep_resident(&with(2 << 16), warm), 128 * 1024);
        assert_eq!(keep_resident(&with(1 << 16), warm), 64 * 1024);
        // Custom page sizes: whole host pages.
        assert_eq!(keep_resident(&with(100), warm), 4096);
        // Rust's default 1 MiB stack: 17 pages, nothing kept.
        assert_eq!(keep_resident(&with(17 << 16), warm), 0);
        assert_eq!(keep_resident(&with(u64::MAX), warm), 0);
        // The bundled echo is built small enough.
        let echo = InstanceShape::of(crate::ECHO_COMPONENT).expect("echo parses");
        assert_eq!(
            keep_resident(&echo, warm),
            usize::try_from(echo.memory_initial).unwrap()
        );
        assert!(keep_resident(&echo, warm) > 0);
    }

    #[test]
    fn outgoing_http_is_refused_with_how_to_build_without_it() {
        let err = compile(
            r#"(component (import "wasi:http/outgoing-handler@0.2.10" (instance)))"#,
            &limits(),
        )
        .err()
        .expect("refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("imports wasi:http/outgoing-handler@0.2.10"),
            "{text}"
        );
        assert!(text.contains("--disable http"), "{text}");
    }

    #[test]
    fn wasi_imports_of_any_0_2_minor_version_link() {
        for version in ["0.2.0", "0.2.6", "0.2.12", "0.2.99"] {
            let err = compile(
                &format!(
                    r#"(component (import "wasi:cli/environment@{version}" (instance
                        (export "get-arguments" (func (result (list string)))))))"#
                ),
                &limits(),
            )
            .err()
            .expect("no websocket-request export");
            // Linked: what fails is the missing export, not the import.
            let text = format!("{err:#}");
            assert!(!text.contains("linking the component"), "{version}: {text}");
            assert!(text.contains("websocket-request"), "{version}: {text}");
        }
    }

    #[test]
    fn a_component_larger_than_the_pool_names_the_limit() {
        // The pool is sized for the echo component; a component with three
        // memories does not fit it.
        let base = Base::new(
            &limits(),
            Vec::new(),
            Broker::standalone(),
            InstanceShape::of(crate::ECHO_COMPONENT).expect("echo parses"),
        )
        .expect("base");
        let wasm = wat::parse_str(
            r#"(component
                (core module $m (memory 1))
                (core instance (instantiate $m))
                (core instance (instantiate $m))
                (core instance (instantiate $m)))"#,
        )
        .expect("valid wat");
        let err = Runtime::compile(base, &wasm).err().expect("refused");
        let text = format!("{err:#}");
        assert!(text.contains("needs 3 linear memories"), "{text}");
        assert!(text.contains("restart the server"), "{text}");
    }

    #[test]
    fn the_memory_cap_counts_every_memory_of_an_instance() {
        let budget = Arc::new(Budget::new(1 << 30));
        let mut limiter = Limiter {
            limits: StoreLimitsBuilder::new().memory_size(3 << 20).build(),
            lease: budget.lease(),
            memory: 0,
            cap: 3 << 20,
            initial: 0,
            refused: None,
            charged: 0,
            added: 0,
        };
        // Two memories of 1 MiB each are created, then each tries to grow by
        // 1 MiB: each alone is under the cap, both together are not.
        let mib = 1 << 20;
        assert!(limiter.memory_growing(0, mib, None).expect("ok"));
        assert!(limiter.memory_growing(0, mib, None).expect("ok"));
        assert!(limiter.memory_growing(mib, 2 * mib, None).expect("ok"));
        assert_eq!(limiter.memory, 3 * mib);
        assert!(!limiter.memory_growing(mib, 2 * mib, None).expect("ok"));
        assert_eq!(limiter.refused, Some(Refusal::Cap));
        assert_eq!(limiter.memory, 3 * mib);
        // Only the grow counts as grown (instance reuse keeps instances
        // that grew little, whatever their initial size).
        assert_eq!(limiter.grown(), mib);
    }
}
