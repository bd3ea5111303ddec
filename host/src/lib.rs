//! The ws-edge wasmtime host: serves WebSocket clients over TCP with a
//! component that exports `ws-edge:websocket/websocket-request@0.2.0`.
//!
//! The component does the protocol work (handshake validation, the handler's
//! decision, framing, timers); this crate owns the sockets, the clock and the
//! limits. It compiles the component once, instantiates it from a pooling
//! allocator for each connection, calls it synchronously with an epoch-based
//! CPU deadline, and pumps bytes between the socket and the component's
//! `connection` resource.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ws_edge_host::{Limits, Server};
//!
//! let server = Server::builder()
//!     .component_file("echo.wasm")
//!     .listen("127.0.0.1:0".parse()?)
//!     .limits(Limits::default())
//!     .bind()
//!     .await?;
//! println!("listening on ws://{}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod admin;
mod bindings;
mod budget;
mod command;
mod conn;
mod error;
mod exports;
mod guest_log;
mod http;
mod instance;
#[doc(hidden)]
pub mod measure;
mod metrics;
mod pubsub;
mod routes;
mod runtime;
mod shape;
mod stdio;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use routes::Source;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument as _;

pub use budget::{ADMIT_PERCENT, SHED_PERCENT, default_budget};
pub use command::run_command;
pub use error::FailureKind;
pub use pubsub::PubSubLimits;
pub use pubsub::nats::{KIND_HEADER, SUBJECT_PREFIX};
pub use routes::Reloaded;
pub use runtime::{EPOCH_TICK, REUSE_MAX_IDLE, REUSE_MAX_MEMORY};
pub use shape::{InstanceShape, ShapeError};

// The embedding guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/hosting.md")]
struct HostingGuide;

/// The bundled echo component (examples/echo), embedded at build time. Served
/// when no other component is given.
pub const ECHO_COMPONENT: &[u8] = include_bytes!(env!("WS_EDGE_ECHO_WASM"));

/// Resource limits of the host. Every field has a documented default
/// ([`Limits::default`]).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; the host stops accepting while this many
    /// are open. Also sizes the instance pool. Default 10 000.
    pub max_connections: usize,
    /// Largest request head in bytes; a longer one gets `431`. Default 8 KiB.
    pub max_head_bytes: usize,
    /// How long a client may take to send its request head; after that it
    /// gets `408`. Default 10 s.
    pub head_timeout: Duration,
    /// How long a single write may wait for the peer to read; a peer that
    /// stops reading is disconnected after this. Default 30 s.
    pub write_timeout: Duration,
    /// Wall-clock time one guest call may run before it is trapped (rounded
    /// up to [`EPOCH_TICK`]). Default 100 ms.
    pub cpu_deadline: Duration,
    /// Linear memory one connection's instance may grow to, all its
    /// memories added up (a component built by componentize-py or
    /// componentize-js, composed with the protocol component, has three or
    /// more), initial sizes included. Default 64 MiB.
    pub memory_per_connection: usize,
    /// After a shutdown signal, how long open connections get to finish
    /// their close handshake before the server returns. Default 5 s.
    pub shutdown_timeout: Duration,
    /// How many connections one component instance may serve, one after
    /// another. Default 1: every connection gets a fresh instance and
    /// nothing of a connection outlives it.
    ///
    /// Above 1, an instance whose connection ended without a failed call is
    /// kept (at most [`REUSE_MAX_IDLE`] idle instances) and handed to a later
    /// connection, until it has served this many, unless its memories grew
    /// by more than [`REUSE_MAX_MEMORY`] beyond their initial sizes. That saves instantiation and teardown
    /// (docs/bench.md has the measured share), but a later connection
    /// runs with the guest's global state and heap as the earlier one left
    /// them: turn it on only for components that keep per-connection state
    /// in their `connection` resource (the guest library's `Handler` does).
    pub instance_reuse: u32,
    /// Bytes of linear memory a pool slot keeps resident between
    /// connections. Default 0: a slot gives its pages back when its
    /// instance ends, so an idle connection holds only the pages its
    /// instance touched.
    ///
    /// When every memory of the components served starts at most this
    /// large, a slot that has served restores its memory in place instead:
    /// the next instance on it starts without page faults, and the slot
    /// makes no system call to reset (about 15 µs less per connection for
    /// the bundled echo, whose memory starts at 128 KiB; docs/bench.md,
    /// "Instance lifetime"). The price: a free slot that has served holds
    /// that much (up to [`Limits::warm_pool`] for all free slots), and a
    /// connection on it holds all of it, where an idle echo connection
    /// otherwise touches about 16 KiB of its memory. For handshake-heavy
    /// traffic with short connections, not for many idle ones.
    pub warm_memory: usize,
    /// With [`Limits::warm_memory`], the most bytes the free slots together
    /// keep resident. Each tick of the epoch thread (10 ms) the host
    /// compares; when the free slots hold more, all of it is given back
    /// (wasmtime releases every free slot's memory at once), so after a
    /// burst of connections the warm slots hold at most this much for at
    /// most a tick. Default 64 MiB: 512 slots of 128 KiB.
    pub warm_pool: usize,
    /// What all instances together may hold, in bytes: linear memory grown
    /// beyond each instance's initial size plus the bytes the host holds for
    /// writes to slow readers. Above [`ADMIT_PERCENT`] of it new connections
    /// get `503` with `Retry-After`; above [`SHED_PERCENT`] the connections
    /// holding the most are closed with `1013`; a grow past the whole budget
    /// is refused. Default [`default_budget`]: half the machine's memory or
    /// of its cgroup limit, whichever is lower.
    pub memory_budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            cpu_deadline: Duration::from_millis(100),
            memory_per_connection: 64 << 20,
            shutdown_timeout: Duration::from_secs(5),
            instance_reuse: 1,
            warm_memory: 0,
            warm_pool: 64 << 20,
            memory_budget: default_budget(),
        }
    }
}

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    /// The engine and what every component shares.
    base: Arc<runtime::Base>,
    /// The components, by path.
    routes: routes::Routes,
    /// TLS, when the server terminates it.
    tls: Option<tls::Tls>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    limits: Limits,
    clock: tokio::time::Instant,
    /// Failed guest calls, by [`FailureKind::index`].
    failures: Arc<[AtomicU64; FailureKind::ALL.len()]>,
    /// Whether a plain `GET /` gets the demo page.
    demo_page: bool,
}

impl Shared {
    /// Milliseconds since the server started: the `milliseconds` passed to guests.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The tokio instant of a guest time in `milliseconds`.
    pub(crate) fn instant_at(&self, ms: u64) -> tokio::time::Instant {
        self.clock
            .checked_add(Duration::from_millis(ms))
            .unwrap_or_else(|| self.clock + Duration::from_secs(86_400 * 365))
    }
}

/// Configures and binds a [`Server`].
pub struct ServerBuilder {
    source: Source,
    routes: Vec<(String, Source)>,
    no_default_route: bool,
    tls: Option<(PathBuf, PathBuf)>,
    listen: SocketAddr,
    listener: Option<std::net::TcpListener>,
    limits: Limits,
    env: Vec<(String, String)>,
    pubsub: PubSubLimits,
    broker: Option<String>,
    admin: Option<SocketAddr>,
    admin_token: Option<String>,
    demo_page: Option<bool>,
}

impl ServerBuilder {
    /// Serves the component in `bytes` (a `wasm32-wasip2` component) on
    /// the default route.
    pub fn component_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.source = Source::Bytes(bytes.into().into());
        self
    }

    /// Serves the component in the file at `path` on the default route
    /// (reloaded by [`Reloader::reload`]).
    pub fn component_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Source::File(path.into());
        self
    }

    /// Serves paths under `prefix` with the component in the file at
    /// `path`: a path equal to `prefix` or continuing it with `/`; the
    /// longest matching prefix wins, then the default route. `prefix` must
    /// start with `/` (a trailing `/` is ignored); [`bind`](Self::bind)
    /// fails on a bad or repeated one. Routes naming the same file share
    /// one compilation, and [`Reloader::reload`] reads the file again.
    pub fn route(mut self, prefix: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.routes.push((prefix.into(), Source::File(path.into())));
        self
    }

    /// Like [`route`](Self::route), with the component's bytes (not
    /// reloadable).
    pub fn route_bytes(mut self, prefix: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.routes
            .push((prefix.into(), Source::Bytes(bytes.into().into())));
        self
    }

    /// No default route: a path no [`route`](Self::route) serves gets `404`
    /// from the host, without an instance.
    pub fn no_default_route(mut self) -> Self {
        self.no_default_route = true;
        self
    }

    /// Terminates TLS (`wss://`) with the PEM certificate chain in `cert`
    /// and the PEM private key in `key`. [`bind`](Self::bind) fails when
    /// either cannot be read or they do not belong together;
    /// [`Reloader::reload`] reads them again. The TLS handshake counts
    /// against [`Limits::head_timeout`].
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }

    /// The address to listen on. Default `127.0.0.1:8080`; port 0 picks a
    /// free port ([`Server::local_addr`] tells which).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Uses an already bound listener instead of binding [`listen`](Self::listen).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds `key=value` to the environment every instance of the component
    /// sees (`wasi:cli/environment`): the component's configuration. The
    /// guest library's [`Handler`] reads its connection limits from it (see
    /// docs/hosting.md); the host itself passes nothing else, not even its
    /// own environment.
    ///
    /// [`Handler`]: https://docs.rs/ws-edge-guest
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Replaces the limits of the publish/subscribe service.
    pub fn pubsub_limits(mut self, limits: PubSubLimits) -> Self {
        self.pubsub = limits;
        self
    }

    /// Bridges the publish/subscribe service through the NATS server at
    /// `url` (`nats://HOST:PORT`), so that hosts sharing it share topics.
    /// Without it the service stays in this process.
    pub fn broker(mut self, url: impl Into<String>) -> Self {
        self.broker = Some(url.into());
        self
    }

    /// Serves the admin endpoints (`POST /publish`, `GET /healthz`) on
    /// `addr`. Off by default.
    pub fn admin_listen(mut self, addr: SocketAddr) -> Self {
        self.admin = Some(addr);
        self
    }

    /// Requires `Authorization: Bearer <token>` on the admin endpoints
    /// (all but `/healthz`).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Whether a plain `GET /` (no `Upgrade`) gets the echo demo page
    /// instead of going to a component. Default: only when the default
    /// route serves the bundled echo component.
    pub fn demo_page(mut self, on: bool) -> Self {
        self.demo_page = Some(on);
        self
    }

    /// Compiles the components, loads the TLS certificate and binds the
    /// listening socket. Must be called inside a tokio runtime.
    pub async fn bind(self) -> anyhow::Result<Server> {
        let demo_page = self
            .demo_page
            .unwrap_or(!self.no_default_route && matches!(self.source, Source::Bundled));
        let limits = self.limits;
        let env = self.env;
        let broker = Arc::new(pubsub::Broker::new(self.pubsub));
        let mut prefixed = Vec::with_capacity(self.routes.len());
        for (prefix, source) in self.routes {
            let prefix = routes::normalise_prefix(&prefix)
                .map_err(|e| anyhow::anyhow!("route {prefix}: {e}"))?;
            prefixed.push((prefix, source));
        }
        let default = (!self.no_default_route).then_some(self.source);
        if prefixed.is_empty() && default.is_none() {
            anyhow::bail!(
                "no component to serve: without a default route, give at least one route"
            );
        }
        let tls = match &self.tls {
            Some((cert, key)) => Some(tls::Tls::load(cert, key)?),
            None => None,
        };
        let (base, routes) = {
            let limits = limits.clone();
            let broker = broker.clone();
            tokio::task::spawn_blocking(move || {
                let shape = routes::shape(prefixed.iter().map(|(_, s)| s).chain(&default))?;
                let base = runtime::Base::new(&limits, env, broker, shape)?;
                let routes = routes::Routes::compile(&base, prefixed, default)?;
                anyhow::Ok((base, routes))
            })
            .await
            .context("compiling the components")??
        };
        if let Some(url) = &self.broker {
            pubsub::nats::start(url, &broker).await?;
        }
        let admin = match self.admin {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the admin listener {addr}"))?,
            ),
            None => None,
        };
        let listener = match self.listener {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                TcpListener::from_std(listener)?
            }
            None => TcpListener::bind(self.listen)
                .await
                .with_context(|| format!("binding {}", self.listen))?,
        };
        let local_addr = listener.local_addr()?;
        let admin = match admin {
            Some(listener) => Some((listener.local_addr()?, listener, self.admin_token)),
            None => None,
        };
        Ok(Server {
            listener,
            local_addr,
            admin,
            live: Arc::new(AtomicUsize::new(0)),
            shared: Arc::new(Shared {
                base,
                routes,
                tls,
                reloading: tokio::sync::Mutex::new(()),
                limits,
                clock: tokio::time::Instant::now(),
                failures: Arc::default(),
                demo_page,
            }),
        })
    }
}

/// Reloads a running [`Server`]'s component files and TLS certificate
/// (SIGHUP and `POST /reload` in the `ws-edge` binary). Stays valid after
/// the server is moved into [`Server::run`].
#[derive(Clone)]
pub struct Reloader(Arc<Shared>);

impl Reloader {
    /// Reads and compiles every route's component file again and, with
    /// TLS, the certificate and key. Each route whose component loads
    /// serves new connections with the new version; open connections
    /// finish on the instance they have. One that fails to load, link or
    /// type-check is refused with a log line, and its previous version
    /// keeps serving. Returns one outcome per file-backed route, plus one
    /// named `tls` with TLS. Reloads run one at a time.
    pub async fn reload(&self) -> Vec<Reloaded> {
        let shared = self.0.clone();
        let _one = shared.reloading.lock().await;
        let work = shared.clone();
        let outcomes = tokio::task::spawn_blocking(move || {
            let mut outcomes = work.routes.reload(&work.base);
            if let Some(tls) = &work.tls {
                let outcome = match tls.reload() {
                    Ok(()) => {
                        tracing::info!("reloaded the TLS certificate and key");
                        Ok(0)
                    }
                    Err(e) => {
                        tracing::error!(
                            "TLS reload refused, the previous certificate keeps serving: {e:#}"
                        );
                        Err(format!("{e:#}"))
                    }
                };
                outcomes.push(Reloaded {
                    route: "tls".into(),
                    outcome,
                });
            }
            outcomes
        })
        .await
        .unwrap_or_else(|e| {
            vec![Reloaded {
                route: "reload".into(),
                outcome: Err(format!("the reload task failed: {e}")),
            }]
        });
        for outcome in &outcomes {
            shared.base.metrics.reload(outcome.outcome.is_ok());
        }
        outcomes
    }
}

/// A bound WebSocket server with a compiled component.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The admin listener, its address and its token.
    admin: Option<(SocketAddr, TcpListener, Option<String>)>,
    live: Arc<AtomicUsize>,
    shared: Arc<Shared>,
}

/// Counts the connections a [`Server`] is serving and the component
/// instances it created; stays valid after the server is moved into
/// [`Server::run`].
#[derive(Clone)]
pub struct Monitor {
    live: Arc<AtomicUsize>,
    shared: Arc<Shared>,
}

impl Monitor {
    /// Connections accepted and not yet finished.
    pub fn live_connections(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Component instances created so far: one per connection that reached
    /// a component, fewer with [`Limits::instance_reuse`].
    pub fn instances_created(&self) -> u64 {
        self.shared.base.instantiated.load(Ordering::Relaxed)
    }

    /// Component instances that exist now: serving a connection, or idle
    /// ([`Limits::instance_reuse`]).
    pub fn instances_alive(&self) -> u64 {
        self.shared.base.alive.load(Ordering::Relaxed)
    }

    /// Idle instances waiting for a connection, over the routes' current
    /// components ([`Limits::instance_reuse`]).
    pub fn instances_idle(&self) -> usize {
        self.shared
            .routes
            .all()
            .map(|r| r.current().idle_instances())
            .sum()
    }

    /// Bytes of linear memory the free pool slots keep resident now
    /// ([`Limits::warm_memory`]; 0 without it).
    pub fn warm_pool_resident(&self) -> usize {
        self.shared.base.warm_resident()
    }

    /// Bytes the free pool slots gave back because they held more than
    /// [`Limits::warm_pool`].
    pub fn warm_pool_released(&self) -> u64 {
        self.shared.base.warm_released()
    }

    /// Bytes counted against [`Limits::memory_budget`] now.
    pub fn memory_used(&self) -> usize {
        self.shared.base.budget.used()
    }

    /// Connections refused with `503` because the memory budget was above
    /// [`ADMIT_PERCENT`].
    pub fn overload_refused(&self) -> u64 {
        self.shared.base.budget.refused.load(Ordering::Relaxed)
    }

    /// Connections closed with `1013` to bring memory back under
    /// [`SHED_PERCENT`] of the budget.
    pub fn overload_shed(&self) -> u64 {
        self.shared.base.budget.shed.load(Ordering::Relaxed)
    }

    /// Guest failures of `kind` so far (each also logged with its kind).
    pub fn guest_failures(&self, kind: FailureKind) -> u64 {
        self.shared.failures[kind.index()].load(Ordering::Relaxed)
    }

    fn broker(&self) -> &pubsub::Broker {
        &self.shared.base.broker
    }

    /// Publications accepted by the publish/subscribe service (from
    /// components, the admin endpoint and the broker).
    pub fn publications(&self) -> u64 {
        self.broker().stats.published.load(Ordering::Relaxed)
    }

    /// Publications queued for a local subscriber.
    pub fn deliveries_queued(&self) -> u64 {
        self.broker().stats.queued.load(Ordering::Relaxed)
    }

    /// Connections closed with `1008` because their publication queue
    /// overflowed.
    pub fn slow_consumers(&self) -> u64 {
        self.broker().stats.slow_consumers.load(Ordering::Relaxed)
    }

    /// Publications that could not cross to other hosts (broker
    /// unreachable or the bridge's queue full).
    pub fn bridge_dropped(&self) -> u64 {
        self.broker().stats.bridge_dropped.load(Ordering::Relaxed)
    }

    /// Whether the NATS bridge is connected now (`None` without one).
    pub fn broker_connected(&self) -> Option<bool> {
        let broker = self.broker();
        broker
            .bridged()
            .then(|| broker.stats.bridge_connected.load(Ordering::Relaxed))
    }

    /// The host's own metrics, for `/metrics`.
    pub(crate) fn metrics(&self) -> &metrics::Metrics {
        &self.shared.base.metrics
    }
}

/// At most one "accept failed" line this often (at the open-files limit
/// accepts fail 50 times a second).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);

/// The period of [`anchor_timers`].
const TIMER_ANCHOR: Duration = Duration::from_secs(1);

/// Keeps a timer due within [`TIMER_ANCHOR`] for the life of the server.
///
/// tokio's timer driver wakes its own thread (an eventfd write: one system
/// call) whenever a timer is armed to fire before every timer already
/// armed. Each upgraded connection arms its first keepalive deadline, tens
/// of seconds away, so when no other connection was open every new one
/// paid that call (0.95 per handshake at 200 handshakes/s, `make bench`'s
/// system-call pass). With this timer always sooner, arming a deadline
/// costs no system call; the price is one wake-up a second.
async fn anchor_timers() {
    let mut tick = tokio::time::interval(TIMER_ANCHOR);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
    }
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Server {
    /// Starts configuring a server that serves the bundled echo component on
    /// `127.0.0.1:8080` with [`Limits::default`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            source: Source::Bundled,
            routes: Vec::new(),
            no_default_route: false,
            tls: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            listener: None,
            limits: Limits::default(),
            env: Vec::new(),
            pubsub: PubSubLimits::default(),
            broker: None,
            admin: None,
            admin_token: None,
            demo_page: None,
        }
    }

    /// The address the server is bound to (with the real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the admin listener, if one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(addr, _, _)| *addr)
    }

    /// A handle that reports the number of live connections.
    pub fn monitor(&self) -> Monitor {
        Monitor {
            live: self.live.clone(),
            shared: self.shared.clone(),
        }
    }

    /// A handle that reloads the server's components and certificate.
    pub fn reloader(&self) -> Reloader {
        Reloader(self.shared.clone())
    }

    /// Whether the server terminates TLS (`wss://`).
    pub fn is_tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// Serves one already-connected Unix stream exactly as an accepted TCP
    /// connection (same code, limits and live count; `peer` is what the
    /// guest sees as the transport's peer). Not a stable API: it exists so
    /// the whole-host fuzz target (`fuzz/fuzz_targets/host_path.rs`) can
    /// drive the host through a socket pair, one connection per input,
    /// without TCP handshakes or ephemeral-port exhaustion.
    #[doc(hidden)]
    #[cfg(unix)]
    pub fn serve_unix(
        &self,
        stream: tokio::net::UnixStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.live.fetch_add(1, Ordering::Relaxed);
        let guard = LiveGuard(self.live.clone());
        let shared = self.shared.clone();
        // Kept alive for the connection: a dropped sender reads as shutdown.
        let (stop_tx, stop_rx) = watch::channel(false);
        let deadline = tokio::time::Instant::now() + self.shared.limits.head_timeout;
        async move {
            conn::serve(stream, peer, shared, stop_rx, deadline).await;
            drop(stop_tx);
            drop(guard);
        }
    }

    /// Serves connections until `shutdown` completes, then stops accepting,
    /// closes every open connection with `1001` and returns once they are
    /// done or [`Limits::shutdown_timeout`] has passed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Each connection task holds a sender; `recv` returns `None` once all
        // of them have finished.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let permits = Arc::new(Semaphore::new(self.shared.limits.max_connections.max(1)));
        let shedder = tokio::spawn(self.shared.base.budget.clone().shedder());
        let anchor = tokio::spawn(anchor_timers());
        let monitor = self.monitor();
        let reloader = self.reloader();
        let admin = self.admin.map(|(_, listener, token)| {
            let admin = Arc::new(admin::Admin {
                broker: self.shared.base.broker.clone(),
                token,
                monitor,
                reloader,
            });
            tokio::spawn(admin::serve(listener, admin, stop_rx.clone()))
        });
        tokio::pin!(shutdown);
        let mut next_id: u64 = 0;
        let mut accept_errors: u64 = 0;
        let mut last_accept_log: Option<tokio::time::Instant> = None;

        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => permit.context("connection semaphore closed")?,
            };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: back off briefly
                    // rather than spin on the error, and log it at most
                    // every few seconds with how often it happened.
                    accept_errors += 1;
                    let now = tokio::time::Instant::now();
                    if last_accept_log.is_none_or(|at| now - at >= ACCEPT_LOG_EVERY) {
                        tracing::warn!(times = accept_errors, "accept failed: {e}");
                        last_accept_log = Some(now);
                        accept_errors = 0;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            self.live.fetch_add(1, Ordering::Relaxed);
            let guard = LiveGuard(self.live.clone());
            let shared = self.shared.clone();
            let stop = stop_rx.clone();
            let done = done_tx.clone();
            next_id += 1;
            // Every log line of the connection carries its id and peer, and
            // from the head on its route; the last says how it ended.
            let span = tracing::info_span!(
                "conn",
                id = next_id,
                %peer,
                route = tracing::field::Empty,
                ended = tracing::field::Empty
            );
            // The TLS handshake and the request head share the head timeout.
            let deadline = tokio::time::Instant::now() + shared.limits.head_timeout;
            tokio::spawn(
                async move {
                    conn::accept(stream, peer, shared, stop, deadline).await;
                    drop(permit);
                    drop(guard);
                    drop(done);
                }
                .instrument(span),
            );
        }

        tracing::info!(
            open = self.live.load(Ordering::Relaxed),
            "shutting down: closing open connections with 1001"
        );
        drop(self.listener);
        let _ = stop_tx.send(true);
        drop(done_tx);
        let drained =
            tokio::time::timeout(self.shared.limits.shutdown_timeout, done_rx.recv()).await;
        if drained.is_err() {
            tracing::warn!(
                open = self.live.load(Ordering::Relaxed),
                "shutdown timeout: abandoning connections still open"
            );
        }
        shedder.abort();
        anchor.abort();
        if let Some(admin) = admin {
            admin.abort();
        }
        Ok(())
    }
}
