//! Timing of the guest boundary, for benchmarks and reports (not a stable
//! API): instantiation, the handshake call, one echo `receive` and teardown,
//! each measured over many connections, synchronously on this thread.

use std::time::{Duration, Instant};

use crate::Limits;
use crate::bindings::{HeadResult, Transport, socket_address};
use crate::runtime::Runtime;

/// Median durations of the steps of one connection's guest lifetime.
#[derive(Debug, Clone)]
pub struct Report {
    /// Compiling the component (once per server).
    pub compile: Duration,
    /// New store + instantiation from the pre-instantiated component.
    pub instantiate: Duration,
    /// `handle-head` with a valid upgrade request (accepted).
    pub handle_head: Duration,
    /// `handle-head` again on the same instance (warm memory and caches).
    pub handle_head_warm: Duration,
    /// `connection.receive` with one masked 64-byte text frame (answered with
    /// one text frame of at least 64 bytes).
    pub receive: Duration,
    /// `resource_drop` of the connection plus dropping the store.
    pub teardown: Duration,
}

/// One row of a report table: label, the step, the scale from seconds, and
/// the unit after scaling.
pub type Row = (&'static str, fn(&Report) -> Duration, f64, &'static str);

/// The rows every report table prints, in order.
pub const ROWS: [Row; 6] = [
    ("compile (once per server)", |r| r.compile, 1e3, "ms"),
    ("instantiate (per connection)", |r| r.instantiate, 1e6, "µs"),
    (
        "handle-head, accepted (first call)",
        |r| r.handle_head,
        1e6,
        "µs",
    ),
    (
        "handle-head, warm instance",
        |r| r.handle_head_warm,
        1e6,
        "µs",
    ),
    ("receive 64 B text + reply", |r| r.receive, 1e6, "µs"),
    ("teardown", |r| r.teardown, 1e6, "µs"),
];

/// Runs `connections` guest lifetimes of the component `wasm`, each with
/// `messages` echo calls, and returns the medians.
pub fn guest_lifetime(wasm: &[u8], connections: usize, messages: usize) -> anyhow::Result<Report> {
    guest_lifetime_at(wasm, "/", connections, messages)
}

/// [`guest_lifetime`] with upgrade requests for `target` (for components
/// that accept only some paths). Each 64-byte text message must be answered
/// with a single text frame of at least 64 bytes.
pub fn guest_lifetime_at(
    wasm: &[u8],
    target: &str,
    connections: usize,
    messages: usize,
) -> anyhow::Result<Report> {
    let limits = Limits {
        max_connections: 16,
        ..Limits::default()
    };
    let t = Instant::now();
    let runtime = Runtime::new(
        wasm,
        &limits,
        Vec::new(),
        crate::pubsub::Broker::standalone(),
    )?;
    let compile = t.elapsed();

    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let head = head.as_bytes();
    let transport = Transport {
        peer: Some(socket_address(BENCH_PEER)),
        tls: false,
    };
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 64];
    frame.extend_from_slice(&mask);
    frame.extend((0..64).map(|i| b'a' ^ mask[i % 4]));

    let peer = BENCH_PEER;
    let (mut inst, mut head_t, mut recv_t, mut down_t) = (vec![], vec![], vec![], vec![]);
    let mut warm_t = vec![];
    for _ in 0..connections {
        let t0 = Instant::now();
        let mut guest = runtime
            .instantiate(peer)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t1 = Instant::now();
        let answer = guest
            .handle_head(head, &transport, 0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t2 = Instant::now();
        let HeadResult::Complete(hh) = answer else {
            anyhow::bail!("the component found no complete head");
        };
        let conn = hh
            .handshake
            .connection
            .ok_or_else(|| anyhow::anyhow!("the component rejected a valid request"))?;
        for _ in 0..messages {
            let t = Instant::now();
            let tx = guest
                .receive(conn, &frame, 1)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            recv_t.push(t.elapsed());
            let one_text_frame = tx.bytes.first() == Some(&0x81)
                && tx.bytes.get(1).is_some_and(|&len| {
                    (64..126).contains(&len) && tx.bytes.len() == 2 + usize::from(len)
                });
            anyhow::ensure!(one_text_frame, "expected one text frame of 64-125 bytes");
        }
        let t = Instant::now();
        let again = guest
            .handle_head(head, &transport, 1)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        warm_t.push(t.elapsed());
        if let HeadResult::Complete(hh) = again
            && let Some(second) = hh.handshake.connection
        {
            guest.drop_resource(second);
        }
        let t3 = Instant::now();
        guest.drop_resource(conn);
        drop(guest);
        down_t.push(t3.elapsed());
        inst.push(t1 - t0);
        head_t.push(t2 - t1);
    }
    Ok(Report {
        compile,
        instantiate: median(&mut inst),
        handle_head: median(&mut head_t),
        handle_head_warm: median(&mut warm_t),
        receive: median(&mut recv_t),
        teardown: median(&mut down_t),
    })
}

/// The median of `v` (the upper one of an even count; zero when empty).
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A compiled component and helpers to drive single guest calls, for the
/// criterion benchmarks (`cargo bench -p ws-edge-host`).
pub struct GuestBench {
    runtime: Runtime,
    peer: std::net::SocketAddr,
    transport: Transport,
}

/// The peer address the benchmarks pretend to serve.
const BENCH_PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

/// The opening handshake the benchmarks send (a browser-like upgrade).
pub const BENCH_HEAD: &[u8] = b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
    Connection: Upgrade\r\nUpgrade: websocket\r\nOrigin: http://127.0.0.1:8080\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench\r\n\r\n";

impl GuestBench {
    /// Compiles `wasm` with the host's engine settings and a pool of
    /// `slots` instances.
    pub fn new(wasm: &[u8], slots: usize) -> anyhow::Result<Self> {
        let limits = Limits {
            max_connections: slots,
            ..Limits::default()
        };
        Ok(Self {
            runtime: Runtime::new(
                wasm,
                &limits,
                Vec::new(),
                crate::pubsub::Broker::standalone(),
            )?,
            peer: BENCH_PEER,
            transport: Transport {
                peer: Some(socket_address(BENCH_PEER)),
                tls: false,
            },
        })
    }

    /// New store + instantiation from the pool, then teardown, no call.
    pub fn instantiate_and_drop(&self) -> anyhow::Result<()> {
        let guest = self
            .runtime
            .instantiate(self.peer)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        drop(guest);
        Ok(())
    }

    /// One whole connection's guest lifetime, as the server runs it without
    /// instance reuse: a fresh instance, `handle-head` (accepted), dropping
    /// the connection resource, and handing the instance back.
    pub fn lifetime(&self) -> anyhow::Result<()> {
        let mut guest = self
            .runtime
            .instantiate(self.peer)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let conn = accept(&mut guest, &self.transport)?;
        guest.drop_resource(conn);
        self.runtime.recycle(guest);
        Ok(())
    }

    /// A fresh instance with one accepted connection.
    pub fn connect(&self) -> anyhow::Result<BenchConn> {
        let guest = self
            .runtime
            .instantiate(self.peer)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut c = BenchConn {
            guest,
            conn: None,
            transport: self.transport,
        };
        c.conn = Some(c.accept()?);
        Ok(c)
    }
}

/// One instance with an accepted connection (dropped with it).
pub struct BenchConn {
    guest: crate::instance::Guest,
    conn: Option<wasmtime::component::ResourceAny>,
    transport: Transport,
}

/// `handle-head` of [`BENCH_HEAD`] on `guest`; the accepted connection.
fn accept(
    guest: &mut crate::instance::Guest,
    transport: &Transport,
) -> anyhow::Result<wasmtime::component::ResourceAny> {
    let answer = guest
        .handle_head(BENCH_HEAD, transport, 0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let HeadResult::Complete(hh) = answer else {
        anyhow::bail!("the component found no complete head");
    };
    hh.handshake
        .connection
        .ok_or_else(|| anyhow::anyhow!("the component rejected a valid request"))
}

impl BenchConn {
    fn accept(&mut self) -> anyhow::Result<wasmtime::component::ResourceAny> {
        accept(&mut self.guest, &self.transport)
    }

    /// `handle-head` on this (warm) instance, accepted; the new connection
    /// resource is dropped again.
    pub fn handshake(&mut self) -> anyhow::Result<()> {
        let conn = self.accept()?;
        self.guest.drop_resource(conn);
        Ok(())
    }

    /// `connection.receive` of `frame`; returns how many bytes the guest
    /// asked to write back.
    pub fn receive(&mut self, frame: &[u8]) -> anyhow::Result<usize> {
        let conn = self.conn.ok_or_else(|| anyhow::anyhow!("no connection"))?;
        let t = self
            .guest
            .receive(conn, frame, 1)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(t.bytes.len())
    }
}

impl Drop for BenchConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.guest.drop_resource(conn);
        }
    }
}
