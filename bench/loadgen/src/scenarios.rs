//! The load scenarios: handshake rate and closed-loop echo of small and
//! large messages, plain, with permessage-deflate, or over TLS.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// What one load run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Connect, upgrade, close handshake, wait for the server's TCP close.
    Handshake,
    /// Echo 64-byte text messages, one outstanding per connection.
    Echo64,
    /// Echo 64 KiB binary messages, one outstanding per connection.
    Echo64k,
    /// Echo 64 KiB of JSON-like text with permessage-deflate negotiated.
    DeflateJson,
    /// Echo 64 KiB of random bytes with permessage-deflate negotiated.
    DeflateRandom,
    /// `Handshake` over TLS: TCP connect, a full TLS handshake, upgrade,
    /// close handshake, the server's close.
    TlsHandshake,
    /// `Echo64` over TLS.
    TlsEcho64,
}

impl Scenario {
    /// All scenarios in report order.
    pub const ALL: [Scenario; 3] = [Scenario::Handshake, Scenario::Echo64, Scenario::Echo64k];

    /// The permessage-deflate scenarios (only for servers that support it).
    pub const DEFLATE: [Scenario; 2] = [Scenario::DeflateJson, Scenario::DeflateRandom];

    /// The TLS scenarios (`wss://` servers; the client needs a CA).
    pub const TLS: [Scenario; 2] = [Scenario::TlsHandshake, Scenario::TlsEcho64];

    /// Parses a scenario name as used on the command line and in results.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::DEFLATE)
            .chain(Self::TLS)
            .find(|s| s.name() == name)
    }

    /// The scenario's name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Handshake => "handshake",
            Scenario::Echo64 => "echo64",
            Scenario::Echo64k => "echo64k",
            Scenario::DeflateJson => "deflate-json",
            Scenario::DeflateRandom => "deflate-random",
            Scenario::TlsHandshake => "tls-handshake",
            Scenario::TlsEcho64 => "tls-echo64",
        }
    }

    /// Whether the scenario runs over TLS.
    pub fn is_tls(self) -> bool {
        Self::TLS.contains(&self)
    }

    /// Payload size of the echoed message (0 for handshakes).
    pub fn message_bytes(self) -> usize {
        match self {
            Scenario::Handshake | Scenario::TlsHandshake => 0,
            Scenario::Echo64 | Scenario::TlsEcho64 => 64,
            Scenario::Echo64k | Scenario::DeflateJson | Scenario::DeflateRandom => 64 * 1024,
        }
    }
}

/// Load shape shared by all scenarios.
#[derive(Clone, Debug)]
pub struct Load {
    /// `ws://HOST:PORT/` of the server (`wss://` for the TLS scenarios).
    pub url: String,
    /// The TLS client configuration of the TLS scenarios.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Concurrent connections (echo) or concurrent handshake loops.
    pub conns: usize,
    /// Time before the measured window opens.
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
    /// Longest a single operation may take before it counts as an error.
    pub op_timeout: Duration,
    /// Paced load: each connection starts an operation at most this often
    /// (closed loop when `None`).
    pub pace: Option<Duration>,
}

/// Spaces one connection's operations `load.pace` apart (a fixed rate that
/// does not catch up in bursts after a slow operation); the connections'
/// schedules are staggered across one period.
struct Pacer {
    every: Option<Duration>,
    next: tokio::time::Instant,
}

impl Pacer {
    fn new(load: &Load, conn: usize) -> Self {
        let offset = load.pace.map_or(Duration::ZERO, |p| {
            p.mul_f64(conn as f64 / load.conns as f64)
        });
        Pacer {
            every: load.pace,
            next: tokio::time::Instant::now() + offset,
        }
    }

    /// Waits for this connection's next slot.
    async fn wait(&mut self) {
        if let Some(every) = self.every {
            tokio::time::sleep_until(self.next).await;
            self.next = (self.next + every).max(tokio::time::Instant::now());
        }
    }
}

/// Raw outcome of one scenario run.
pub struct Outcome {
    /// Operations completed inside the window.
    pub ops: u64,
    /// Failed operations (connect errors, timeouts, wrong echoes).
    pub errors: u64,
    /// Latency of each measured operation, nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// Actual length of the measured window.
    pub window: Duration,
    /// Server CPU time (user + system) spent inside the window, µs.
    pub server_cpu_us: Option<u64>,
    /// The load generator's own CPU time inside the window, µs.
    pub client_cpu_us: Option<u64>,
    /// The first error seen, for diagnosis.
    pub first_error: Option<String>,
    /// Bytes on the wire (after the handshake) the server sent and the
    /// client sent for the measured operations, when counted (deflate
    /// scenarios).
    pub wire: Option<(u64, u64)>,
}

#[derive(Default)]
struct Flags {
    measuring: AtomicBool,
    stop: AtomicBool,
}

#[derive(Default)]
struct WorkerStats {
    ops: u64,
    errors: u64,
    latencies_ns: Vec<u64>,
    first_error: Option<String>,
    wire: Option<(u64, u64)>,
}

impl WorkerStats {
    fn fail(
        &mut self,
        what: &str,
        result: std::result::Result<Result<()>, tokio::time::error::Elapsed>,
    ) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(match result {
                Ok(Err(e)) => format!("{what}: {e:#}"),
                Ok(Ok(())) => format!("{what}: failed"),
                Err(_) => format!("{what}: timed out"),
            });
        }
    }

    fn record(&mut self, flags: &Flags, started: Instant) {
        if flags.measuring.load(Ordering::Relaxed) {
            self.ops += 1;
            self.latencies_ns.push(started.elapsed().as_nanos() as u64);
        }
    }
}

/// A client connection's byte stream: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP stream underneath.
    fn tcp(&mut self) -> &mut TcpStream;
    /// Whether this is TLS.
    fn is_tls(&self) -> bool;
}

impl Io for TcpStream {
    fn tcp(&mut self) -> &mut TcpStream {
        self
    }
    fn is_tls(&self) -> bool {
        false
    }
}

impl Io for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&mut self) -> &mut TcpStream {
        self.get_mut().0
    }
    fn is_tls(&self) -> bool {
        true
    }
}

type Ws = WebSocketStream<Box<dyn Io>>;

/// Runs `scenario` against `load.url`; `cpu_probe` reads the server's CPU
/// time (µs) at the window's edges (it is called exactly twice, when the
/// window opens and when it closes).
pub async fn run(
    scenario: Scenario,
    load: &Load,
    mut cpu_probe: impl FnMut() -> Option<u64>,
) -> Result<Outcome> {
    let flags = Arc::new(Flags::default());
    let mut workers = Vec::with_capacity(load.conns);
    for i in 0..load.conns {
        let flags = flags.clone();
        let load = load.clone();
        workers.push(tokio::spawn(async move {
            match scenario {
                Scenario::Handshake | Scenario::TlsHandshake => {
                    handshake_worker(&load, &flags, i).await
                }
                Scenario::Echo64 | Scenario::Echo64k | Scenario::TlsEcho64 => {
                    echo_worker(&load, &flags, message(scenario, i), i).await
                }
                Scenario::DeflateJson | Scenario::DeflateRandom => {
                    deflate_worker(&load, &flags, scenario, i).await
                }
            }
        }));
    }

    tokio::time::sleep(load.warmup).await;
    let cpu0 = cpu_probe();
    let client0 = crate::server::cpu_time_us(std::process::id()).ok();
    let t0 = Instant::now();
    flags.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(load.duration).await;
    flags.measuring.store(false, Ordering::Relaxed);
    let window = t0.elapsed();
    let cpu1 = cpu_probe();
    let client1 = crate::server::cpu_time_us(std::process::id()).ok();
    flags.stop.store(true, Ordering::Relaxed);

    let mut total = WorkerStats::default();
    let join_deadline = 3 * load.op_timeout + Duration::from_secs(2);
    for w in workers {
        match tokio::time::timeout(join_deadline, w).await {
            Ok(Ok(stats)) => {
                total.ops += stats.ops;
                total.errors += stats.errors;
                total.latencies_ns.extend(stats.latencies_ns);
                if total.first_error.is_none() {
                    total.first_error = stats.first_error;
                }
                if let Some((i, o)) = stats.wire {
                    let (ti, to) = total.wire.get_or_insert((0, 0));
                    *ti += i;
                    *to += o;
                }
            }
            Ok(Err(e)) => bail!("worker task failed: {e}"),
            Err(_) => bail!("a worker did not stop within {join_deadline:?}"),
        }
    }
    total.latencies_ns.sort_unstable();
    Ok(Outcome {
        ops: total.ops,
        errors: total.errors,
        latencies_ns: total.latencies_ns,
        window,
        server_cpu_us: delta(cpu0, cpu1),
        client_cpu_us: delta(client0, client1),
        first_error: total.first_error,
        wire: total.wire,
    })
}

/// The message a connection echoes: printable ASCII text for `echo64`,
/// non-repeating binary for `echo64k`; different per connection.
fn message(scenario: Scenario, conn: usize) -> Message {
    let len = scenario.message_bytes();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (conn as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = move || {
        // xorshift64*: cheap, deterministic filler.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    match scenario {
        Scenario::Echo64 | Scenario::TlsEcho64 => {
            let text: String = (0..len)
                .map(|_| char::from(b' ' + (next() % 95) as u8))
                .collect();
            Message::text(text)
        }
        _ => Message::binary((0..len).map(|_| (next() >> 56) as u8).collect::<Vec<u8>>()),
    }
}

/// Connects to `load.url` (TCP without Nagle, as servers do; then TLS
/// with `load.tls`) and makes the WebSocket handshake.
async fn connect(load: &Load) -> Result<Ws> {
    let rest = load
        .url
        .split_once("://")
        .map_or(load.url.as_str(), |(_, rest)| rest);
    let hostport = rest.split('/').next().unwrap_or_default();
    let tcp = TcpStream::connect(hostport).await?;
    tcp.set_nodelay(true)?;
    let stream: Box<dyn Io> = match &load.tls {
        Some(config) => {
            let name = crate::tls::server_name(&load.url)?;
            Box::new(crate::tls::handshake(config, name, tcp).await?)
        }
        None => Box::new(tcp),
    };
    let (ws, _response) = client_async_with_config(load.url.as_str(), stream, None).await?;
    Ok(ws)
}

/// Sends `msg` and waits for the next data message, which must equal it.
async fn round_trip(ws: &mut Ws, msg: &Message) -> Result<()> {
    ws.send(msg.clone()).await?;
    loop {
        match ws.next().await {
            Some(Ok(reply)) if reply.is_text() || reply.is_binary() => {
                if &reply != msg {
                    bail!("echo differs from the message sent");
                }
                return Ok(());
            }
            Some(Ok(_)) => continue, // ping/pong/frame
            Some(Err(e)) => return Err(e.into()),
            None => bail!("server closed the connection"),
        }
    }
}

/// Starts the close handshake and waits (bounded) for the server's close
/// frame and then its TCP close, so TIME_WAIT stays on the server side.
/// Over TLS the server may close with or without a `close_notify` alert
/// first: after the WebSocket close handshake, either is the end.
async fn close(mut ws: Ws, limit: Duration) -> Result<()> {
    let reply = async {
        ws.close(None).await?;
        let mut close_frame = false;
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(msg) => close_frame |= msg.is_close(),
                Err(WsError::Io(e)) if close_frame && e.kind() == io::ErrorKind::UnexpectedEof => {
                    // TLS: the TCP close without close_notify.
                    return anyhow::Ok(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::Ok(false)
    };
    let tcp_closed = match tokio::time::timeout(limit, reply).await {
        Ok(r) => r.context("close handshake")?,
        Err(_) => bail!("no close frame from the server within {limit:?}"),
    };
    if tcp_closed {
        return Ok(());
    }
    let mut stream = ws.into_inner();
    let eof = async {
        let mut scratch = [0u8; 256];
        while stream.read(&mut scratch).await? != 0 {}
        // TLS: that was the close_notify alert; now the TCP close.
        if stream.is_tls() {
            while stream.tcp().read(&mut scratch).await? != 0 {}
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(limit, eof).await {
        Ok(r) => r.context("waiting for the server's TCP close"),
        Err(_) => bail!(
            "the server did not close the TCP connection within {limit:?} after the close handshake"
        ),
    }
}

async fn echo_worker(load: &Load, flags: &Flags, msg: Message, conn: usize) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut pacer = Pacer::new(load, conn);
    while !flags.stop.load(Ordering::Relaxed) {
        let mut ws = match tokio::time::timeout(load.op_timeout, connect(load)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                stats.fail("connect", Ok(Err(e)));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(elapsed) => {
                stats.fail("connect", Err(elapsed));
                // Back off briefly so a dead server does not spin the loop.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let mut healthy = true;
        while !flags.stop.load(Ordering::Relaxed) {
            pacer.wait().await;
            let started = Instant::now();
            match tokio::time::timeout(load.op_timeout, round_trip(&mut ws, &msg)).await {
                Ok(Ok(())) => stats.record(flags, started),
                failed => {
                    stats.fail("echo", failed);
                    healthy = false;
                    break;
                }
            }
        }
        if healthy {
            let _ = close(ws, load.op_timeout).await;
        }
    }
    stats
}

/// Echo with permessage-deflate: JSON-like text or random bytes, 64 KiB,
/// one outstanding per connection; counts the bytes on the wire.
async fn deflate_worker(
    load: &Load,
    flags: &Flags,
    scenario: Scenario,
    conn: usize,
) -> WorkerStats {
    use crate::deflate::{DeflateClient, json_text, random_bytes};
    use ws_edge::protocol::OpCode;
    let (opcode, msg) = if scenario == Scenario::DeflateJson {
        (
            OpCode::Text,
            json_text(scenario.message_bytes(), conn as u64),
        )
    } else {
        (
            OpCode::Binary,
            random_bytes(scenario.message_bytes(), conn as u64),
        )
    };
    let mut stats = WorkerStats {
        wire: Some((0, 0)),
        ..WorkerStats::default()
    };
    let mut pacer = Pacer::new(load, conn);
    while !flags.stop.load(Ordering::Relaxed) {
        let mut client =
            match tokio::time::timeout(load.op_timeout, DeflateClient::connect(&load.url)).await {
                Ok(Ok(c)) => c,
                failed => {
                    stats.fail("connect", failed.map(|r| r.map(|_| ())));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
        let mut healthy = true;
        while !flags.stop.load(Ordering::Relaxed) {
            pacer.wait().await;
            let started = Instant::now();
            let (in0, out0) = (client.bytes_in, client.bytes_out);
            match tokio::time::timeout(load.op_timeout, client.round_trip(opcode, &msg)).await {
                Ok(Ok(())) => {
                    if flags.measuring.load(Ordering::Relaxed)
                        && let Some((i, o)) = &mut stats.wire
                    {
                        *i += client.bytes_in - in0;
                        *o += client.bytes_out - out0;
                    }
                    stats.record(flags, started);
                }
                failed => {
                    stats.fail("echo", failed);
                    healthy = false;
                    break;
                }
            }
        }
        if healthy {
            let _ = tokio::time::timeout(load.op_timeout, client.close()).await;
        }
    }
    stats
}

async fn handshake_worker(load: &Load, flags: &Flags, conn: usize) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut pacer = Pacer::new(load, conn);
    while !flags.stop.load(Ordering::Relaxed) {
        pacer.wait().await;
        let started = Instant::now();
        let cycle = async {
            let ws = connect(load).await?;
            close(ws, load.op_timeout).await
        };
        match tokio::time::timeout(3 * load.op_timeout, cycle).await {
            Ok(Ok(())) => stats.record(flags, started),
            failed => {
                stats.fail("handshake/close cycle", failed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    stats
}

fn delta(start: Option<u64>, end: Option<u64>) -> Option<u64> {
    Some(end?.saturating_sub(start?))
}

/// Nearest-rank percentile of sorted `values` (`p` in 0..=100).
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn messages_have_the_scenario_size_and_kind() {
        let small = message(Scenario::Echo64, 3);
        assert!(small.is_text());
        assert_eq!(small.len(), 64);
        let big = message(Scenario::Echo64k, 3);
        assert!(big.is_binary());
        assert_eq!(big.len(), 65536);
        assert_ne!(message(Scenario::Echo64k, 4), big);
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
        for s in Scenario::DEFLATE.into_iter().chain(Scenario::TLS) {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
        assert_eq!(Scenario::parse("tls-echo64"), Some(Scenario::TlsEcho64));
        assert_eq!(Scenario::parse("nope"), None);
    }
}
