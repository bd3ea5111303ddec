//! `loadgen broadcast`: fan-out of one publisher to many subscribers of one
//! room.
//!
//! N subscriber connections open `/rooms/<room>` (in bounded-concurrency
//! batches) and one publisher connection joins the same room; a bystander
//! joins another room. Once every subscriber has received a first (barrier)
//! message, the publisher sends 64-byte text messages at a fixed rate (or, with
//! `--max`, closed loop with [`MAX_IN_FLIGHT`] messages not yet delivered to
//! everyone). Each payload carries its sequence number and send time, so each
//! subscriber measures delivery latency and notices gaps, duplicates and
//! reordering. After the window the publisher stops and the subscribers get a
//! bounded time to catch up; every subscriber should then have received every
//! message published after the barrier, and any shortfall is reported as
//! lost. The publisher and the bystander must receive nothing.
//!
//! Deliveries per second counts the messages received (summed over the
//! subscribers) inside the measured window; server CPU µs per delivery divides
//! the server's CPU time in the same window (`/proc/PID/stat`) by that count.
//!
//! With `--publish-url` the publisher joins the room on another server (the
//! cross-host scenario: two ws-edge hosts sharing a NATS broker). Everything
//! else is the same; the barrier then also waits for the bridge, as the first
//! publications may be dropped while the subscribers' host registers its
//! interest with the broker. The record's scenario is `crosshost<N>`, the
//! server CPU is the subscribers' host's, and `--publish-pid` adds the
//! publisher's host's CPU use.

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use crate::report::Record;
use crate::scenarios::percentile;
use crate::server::{self, Server};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Size of every published message, bytes.
pub const MESSAGE_BYTES: usize = 64;
/// Read buffer of each connection, bytes (see [`open`]).
const READ_BUFFER: usize = 4096;
/// Connection handshakes in flight at once while subscribers connect.
const IN_FLIGHT: usize = 128;
/// Longest the subscribers may take to connect.
const CONNECT_BUDGET: Duration = Duration::from_secs(60);
/// Longest the barrier (every subscriber receives a first message) may take.
const BARRIER_BUDGET: Duration = Duration::from_secs(20);
/// Longest the subscribers get after the window to receive what is in flight.
const DRAIN_BUDGET: Duration = Duration::from_secs(5);
/// Longest one publish may wait for the server to read the publisher.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// With `--max`: messages published but not yet delivered to every subscriber.
const MAX_IN_FLIGHT: u64 = 4;
/// With `--max`: the window ends early if no delivery happens for this long.
const STALL: Duration = Duration::from_secs(5);
/// Client CPU (% of one core) above which the load generator, not the server,
/// may be what limits the rate.
const CLIENT_SATURATED_PCT: f64 = 90.0;
/// Text after the sequence number and send time, up to [`MESSAGE_BYTES`].
const FILLER: &[u8; 30] = b"ws-edge broadcast benchmark...";

/// Arguments of `loadgen broadcast`.
pub struct BroadcastArgs {
    name: String,
    subscribers: usize,
    /// Messages per second; `None` with `--max`.
    rate: Option<f64>,
    duration: Duration,
    warmup: Duration,
    room: String,
    server_cpu: Option<String>,
    out: Option<PathBuf>,
    server_log: Option<PathBuf>,
    cmd: Vec<String>,
    url: Option<String>,
    pid: Option<u32>,
    /// Cross-host: the server the publisher connects to (`ws://ADDR`).
    publish_url: Option<String>,
    /// Cross-host: that server's PID, for its CPU use.
    publish_pid: Option<u32>,
}

/// Parses the arguments of `loadgen broadcast` (see the usage in `main.rs`).
pub fn parse(args: &[String]) -> Result<BroadcastArgs> {
    let mut a = BroadcastArgs {
        name: String::new(),
        subscribers: 1000,
        rate: None,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        room: "bench".into(),
        server_cpu: Some("0".into()),
        out: None,
        server_log: None,
        cmd: Vec::new(),
        url: None,
        pid: None,
        publish_url: None,
        publish_pid: None,
    };
    let mut max = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--name" => a.name = value()?.clone(),
            "--subscribers" => {
                a.subscribers = value()?.parse().context("--subscribers")?;
                if !(1..=50_000).contains(&a.subscribers) {
                    bail!("--subscribers must be 1..=50000");
                }
            }
            "--rate" => {
                let r: f64 = value()?.parse().context("--rate")?;
                if !(r.is_finite() && r > 0.0 && r <= 100_000.0) {
                    bail!("--rate must be in (0, 100000] messages per second");
                }
                a.rate = Some(r);
            }
            "--max" => max = true,
            "--duration" | "--seconds" => a.duration = crate::secs(value()?)?,
            "--warmup" => a.warmup = crate::secs(value()?)?,
            "--room" => {
                a.room = value()?.clone();
                if a.room.is_empty() || !a.room.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    bail!("--room must be ASCII letters and digits");
                }
            }
            "--server-cpu" => {
                let v = value()?;
                a.server_cpu = (v != "none").then(|| v.clone());
            }
            "--out" => a.out = Some(value()?.into()),
            "--server-log" => a.server_log = Some(value()?.into()),
            "--url" => a.url = Some(value()?.clone()),
            "--pid" => a.pid = Some(value()?.parse().context("--pid")?),
            "--publish-url" => a.publish_url = Some(value()?.clone()),
            "--publish-pid" => {
                a.publish_pid = Some(value()?.parse().context("--publish-pid")?);
            }
            "--" => {
                a.cmd = it.by_ref().cloned().collect();
                break;
            }
            other => bail!("unknown argument {other:?} (see `loadgen --help`)"),
        }
    }
    if a.name.is_empty() {
        bail!("--name is required");
    }
    if max == a.rate.is_some() {
        bail!("give either --rate MESSAGES_PER_S or --max");
    }
    if a.cmd.is_empty() == a.url.is_none() {
        bail!("give either a server command after `--` or --url (not both)");
    }
    if a.publish_pid.is_some() && a.publish_url.is_none() {
        bail!("--publish-pid needs --publish-url");
    }
    Ok(a)
}

/// The scenario name recorded for `n` subscribers: `broadcast1k`,
/// `broadcast10k`, `broadcast100`; `crosshost10`, ... when the publisher is
/// on another server.
pub fn scenario_name(n: usize, cross_host: bool) -> String {
    let kind = if cross_host { "crosshost" } else { "broadcast" };
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{kind}{}k", n / 1000)
    } else {
        format!("{kind}{n}")
    }
}

/// The 64-byte text payload of message `seq`, sent `sent_ns` after the run's
/// time base: `{seq:016x} {sent_ns:016x} ` and [`FILLER`].
fn payload(seq: u64, sent_ns: u64) -> String {
    let mut s = format!("{seq:016x} {sent_ns:016x} ");
    s.push_str(std::str::from_utf8(FILLER).unwrap_or_default());
    debug_assert_eq!(s.len(), MESSAGE_BYTES);
    s
}

/// Sequence number and send time of a payload made by [`payload`]; `None` if
/// the message was altered.
fn parse_payload(text: &str) -> Option<(u64, u64)> {
    let b = text.as_bytes();
    if b.len() != MESSAGE_BYTES || b[16] != b' ' || b[33] != b' ' || &b[34..] != FILLER {
        return None;
    }
    let seq = u64::from_str_radix(text.get(..16)?, 16).ok()?;
    let sent = u64::from_str_radix(text.get(17..33)?, 16).ok()?;
    Some((seq, sent))
}

/// State shared by the driver and every subscriber task.
struct Shared {
    /// Time base of the send timestamps in the payloads.
    base: Instant,
    /// Deliveries are counted (rate, latency) while set.
    measuring: AtomicBool,
    /// Messages from this sequence number on must reach every subscriber
    /// (`u64::MAX` while the barrier runs).
    counted_from: AtomicU64,
    /// Subscribers that have received at least one message.
    joined: AtomicUsize,
    /// Deliveries of counted messages so far, all subscribers.
    delivered: AtomicU64,
    /// Set, and `stop` notified, when the subscribers are to stop reading.
    stopping: AtomicBool,
    /// Wakes every reader at the end.
    stop: Notify,
}

/// What one subscriber saw.
#[derive(Default)]
struct SubStats {
    /// Counted messages received.
    received: u64,
    /// Deliveries inside the measured window.
    in_window: u64,
    /// Latency of each delivery inside the window, ns.
    latencies_ns: Vec<u64>,
    /// Altered, duplicated or reordered messages, and connection failures.
    errors: u64,
    /// The first of them, for diagnosis.
    first_error: Option<String>,
}

impl SubStats {
    /// Counts an error, keeping the first description.
    fn fail(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Reads one subscriber's connection until told to stop.
async fn subscriber(mut ws: Ws, shared: Arc<Shared>) -> SubStats {
    let mut stats = SubStats::default();
    let mut stopped = pin!(shared.stop.notified());
    stopped.as_mut().enable();
    let mut last: Option<u64> = None;
    while !shared.stopping.load(Ordering::Relaxed) {
        let msg = tokio::select! {
            biased;
            () = &mut stopped => break,
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                stats.fail(format!("the server closed a subscriber: {frame:?}"));
                break;
            }
            Some(Ok(Message::Binary(_))) => {
                stats.fail("a subscriber got a binary message".into());
                continue;
            }
            Some(Ok(_)) => continue, // ping (answered by tungstenite), pong
            Some(Err(e)) => {
                stats.fail(format!("subscriber connection: {e}"));
                break;
            }
            None => {
                stats.fail("the server closed a subscriber's connection".into());
                break;
            }
        };
        let now = shared.base.elapsed().as_nanos() as u64;
        let Some((seq, sent)) = parse_payload(&text) else {
            stats.fail("a subscriber got a message that differs from every one sent".into());
            continue;
        };
        if last.is_none() {
            shared.joined.fetch_add(1, Ordering::Relaxed);
        }
        if last.is_some_and(|l| seq <= l) {
            stats.fail(format!(
                "message {seq} arrived after {} (duplicate or reordered)",
                last.unwrap_or_default()
            ));
            continue;
        }
        last = Some(seq);
        if seq >= shared.counted_from.load(Ordering::Relaxed) {
            stats.received += 1;
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            if shared.measuring.load(Ordering::Relaxed) {
                stats.in_window += 1;
                stats.latencies_ns.push(now.saturating_sub(sent));
            }
        }
    }
    stats
}

/// Reads a connection that must receive no message (the publisher itself, a
/// member of another room) and returns how many data messages it got.
async fn must_stay_silent(mut ws: Ws, shared: Arc<Shared>) -> u64 {
    let mut got = 0;
    let mut stopped = pin!(shared.stop.notified());
    stopped.as_mut().enable();
    while !shared.stopping.load(Ordering::Relaxed) {
        tokio::select! {
            biased;
            () = &mut stopped => break,
            msg = ws.next() => match msg {
                Some(Ok(m)) if m.is_text() || m.is_binary() => got += 1,
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    got
}

/// Opens one connection. Its read buffer is 4 KiB, not tungstenite's default
/// 128 KiB: tungstenite 0.30 zero-fills the free part of the buffer before
/// every read, which with 64-byte messages would be most of the load
/// generator's work per delivery.
async fn open(url: String) -> Result<Ws> {
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let connect = connect_async_with_config(&url, Some(config), true);
    let (ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .context("handshake timed out")??;
    Ok(ws)
}

/// Opens `n` connections to `url`, at most [`IN_FLIGHT`] handshakes at once.
async fn open_many(n: usize, url: &str) -> Result<Vec<Ws>> {
    let deadline = Instant::now() + CONNECT_BUDGET;
    let mut conns = Vec::with_capacity(n);
    let mut pending = JoinSet::new();
    let mut launched = 0;
    while conns.len() < n {
        while launched < n && pending.len() < IN_FLIGHT {
            pending.spawn(open(url.to_owned()));
            launched += 1;
        }
        let Some(done) = pending.join_next().await else {
            break;
        };
        let ws = done
            .context("connection task failed")?
            .with_context(|| format!("opening subscriber {}", conns.len() + 1))?;
        conns.push(ws);
        if Instant::now() > deadline {
            bail!(
                "opened only {} of {n} subscribers within {CONNECT_BUDGET:?}",
                conns.len()
            );
        }
    }
    Ok(conns)
}

/// Raw outcome of one broadcast run.
struct Outcome {
    /// Subscriber connections opened.
    subscribers: usize,
    /// Time taken to open them.
    connect_time: Duration,
    /// Messages the barrier took (more than one when some were dropped, e.g.
    /// while a cross-host bridge registered its interest), and its duration.
    barrier: (u64, Duration),
    /// Messages published after the barrier (each must reach everyone).
    published: u64,
    /// Messages published inside the window.
    published_in_window: u64,
    /// Messages received inside the window, summed over the subscribers.
    deliveries_in_window: u64,
    /// Counted deliveries missing at the end.
    lost: u64,
    /// Subscribers' errors (see [`SubStats::errors`]).
    errors: u64,
    /// The first of them, for diagnosis.
    first_error: Option<String>,
    /// Messages received by the publisher or by the member of another room.
    misdelivered: u64,
    /// Latency of every delivery inside the window, ns, sorted.
    latencies_ns: Vec<u64>,
    /// Actual length of the window.
    window: Duration,
    /// Server CPU time (user + system) inside the window, µs.
    server_cpu_us: Option<u64>,
    /// Cross-host: the publisher's server's CPU time inside the window, µs.
    publisher_cpu_us: Option<u64>,
    /// The load generator's CPU time inside the window, µs.
    client_cpu_us: Option<u64>,
    /// Server RSS growth per subscriber connection, KiB.
    rss_per_subscriber_kib: Option<f64>,
    /// With `--max`: deliveries stopped and the window ended early.
    stalled: bool,
}

/// Sends message `seq` now (a server that stops reading the publisher for
/// [`PUBLISH_TIMEOUT`] fails the run).
async fn publish(ws: &mut Ws, shared: &Shared, seq: u64) -> Result<()> {
    let sent = shared.base.elapsed().as_nanos() as u64;
    tokio::time::timeout(PUBLISH_TIMEOUT, ws.send(Message::text(payload(seq, sent))))
        .await
        .context("the server stopped reading the publisher")?
        .context("the publisher's connection failed")
}

/// Where the load goes: the subscribers' server and the publisher's (the
/// same one unless cross-host), as `ws://ADDR` origins, and their PIDs.
struct Targets<'a> {
    base_url: &'a str,
    pid: Option<u32>,
    publish_base_url: &'a str,
    publish_pid: Option<u32>,
}

/// Connects, runs the barrier, the warm-up and the window, drains and
/// collects what every connection saw.
async fn drive(a: &BroadcastArgs, t: &Targets<'_>) -> Result<Outcome> {
    let (base_url, pid) = (t.base_url, t.pid);
    let room_url = format!("{base_url}/rooms/{}", a.room);
    let n = a.subscribers;
    let shared = Arc::new(Shared {
        base: Instant::now(),
        measuring: AtomicBool::new(false),
        counted_from: AtomicU64::new(u64::MAX),
        joined: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        stop: Notify::new(),
    });
    let rss = || pid.and_then(server::rss_kib);

    // Connect: the publisher and a member of another room first (warm-up of
    // the server's one-time costs), then the subscribers.
    let mut publisher = open(format!("{}/rooms/{}", t.publish_base_url, a.room))
        .await
        .context("opening the publisher")?;
    let bystander = open(format!("{base_url}/rooms/{}x", a.room))
        .await
        .context("opening a member of another room")?;
    let rss_before = rss();
    let started = Instant::now();
    let conns = open_many(n, &room_url).await?;
    let connect_time = started.elapsed();
    let mut subs = JoinSet::new();
    for ws in conns {
        subs.spawn(subscriber(ws, shared.clone()));
    }
    // The publisher's own connection is read after the window (it only
    // sends meanwhile); the member of another room is read all along.
    let bystander = tokio::spawn(must_stay_silent(bystander, shared.clone()));

    // Barrier: publish until every subscriber has received something (a
    // server may join a member to its room just after the upgrade; across
    // hosts, publications are dropped until the subscribers' host's interest
    // has reached the broker, so this keeps publishing until the bridge
    // carries them).
    let mut seq = 0u64;
    let barrier_started = Instant::now();
    let barrier_deadline = barrier_started + BARRIER_BUDGET;
    'barrier: loop {
        publish(&mut publisher, &shared, seq).await?;
        seq += 1;
        let mut seen = shared.joined.load(Ordering::Relaxed);
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = shared.joined.load(Ordering::Relaxed);
            if now == n {
                break 'barrier;
            }
            if Instant::now() > barrier_deadline {
                bail!("only {now} of {n} subscribers received a message within {BARRIER_BUDGET:?}");
            }
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > Duration::from_millis(200) {
                continue 'barrier;
            }
        }
    }
    let rss_after = rss();
    let barrier = (seq, barrier_started.elapsed());
    let counted_from = seq;
    shared.counted_from.store(counted_from, Ordering::Relaxed);
    // Let the barrier's deliveries finish before the rate starts.
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Warm-up, then the window, publishing all along.
    let t_start = Instant::now();
    let window_opens = t_start + a.warmup;
    let window_closes = window_opens + a.duration;
    let mut window = None;
    let mut probes = None;
    let mut published_in_window = 0u64;
    let mut stalled = false;
    let mut sent_since_start = 0u64;
    let mut last_progress = (0u64, Instant::now());
    loop {
        let now = Instant::now();
        if window.is_none() && now >= window_opens {
            probes = Some((
                pid.and_then(|p| server::cpu_time_us(p).ok()),
                server::cpu_time_us(std::process::id()).ok(),
                t.publish_pid.and_then(|p| server::cpu_time_us(p).ok()),
            ));
            window = Some(Instant::now());
            shared.measuring.store(true, Ordering::Relaxed);
        }
        if now >= window_closes {
            break;
        }
        match a.rate {
            Some(rate) => {
                // Fixed schedule from the start: message k at k / rate.
                let due = t_start + Duration::from_secs_f64(sent_since_start as f64 / rate);
                let next = due.min(if window.is_none() {
                    window_opens
                } else {
                    window_closes
                });
                if next > now {
                    tokio::time::sleep_until(next.into()).await;
                    continue;
                }
            }
            None => {
                // Closed loop: at most MAX_IN_FLIGHT messages not yet
                // delivered to every subscriber.
                let delivered = shared.delivered.load(Ordering::Relaxed);
                if delivered != last_progress.0 {
                    last_progress = (delivered, now);
                } else if now - last_progress.1 > STALL {
                    stalled = true;
                    break;
                }
                let owed = sent_since_start * n as u64;
                if owed.saturating_sub(delivered) >= MAX_IN_FLIGHT * n as u64 {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
            }
        }
        publish(&mut publisher, &shared, seq).await?;
        seq += 1;
        sent_since_start += 1;
        if window.is_some() {
            published_in_window += 1;
        }
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let window_start = window.context("the window never opened")?;
    let window = window_start.elapsed();
    let (cpu0, client0, pub0) = probes.unwrap_or_default();
    let cpu1 = pid.and_then(|p| server::cpu_time_us(p).ok());
    let client1 = server::cpu_time_us(std::process::id()).ok();
    let pub1 = t.publish_pid.and_then(|p| server::cpu_time_us(p).ok());
    let published = seq - counted_from;

    // Drain: what is in flight may still arrive.
    let owed = published * n as u64;
    let drain_deadline = Instant::now() + DRAIN_BUDGET;
    while shared.delivered.load(Ordering::Relaxed) < owed && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Anything the publisher got back is its own message delivered to it.
    let echoed_to_sender = {
        let mut got = 0u64;
        while let Ok(Some(msg)) =
            tokio::time::timeout(Duration::from_millis(20), publisher.next()).await
        {
            match msg {
                Ok(m) if m.is_text() || m.is_binary() => got += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    };
    shared.stopping.store(true, Ordering::Relaxed);
    shared.stop.notify_waiters();

    let mut out = Outcome {
        subscribers: n,
        connect_time,
        barrier,
        published,
        published_in_window,
        deliveries_in_window: 0,
        lost: 0,
        errors: 0,
        first_error: None,
        misdelivered: echoed_to_sender,
        latencies_ns: Vec::new(),
        window,
        server_cpu_us: delta(cpu0, cpu1),
        publisher_cpu_us: delta(pub0, pub1),
        client_cpu_us: delta(client0, client1),
        rss_per_subscriber_kib: match (rss_before, rss_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / n as f64),
            _ => None,
        },
        stalled,
    };
    let join = async {
        while let Some(done) = subs.join_next().await {
            let s = done.context("subscriber task failed")?;
            out.deliveries_in_window += s.in_window;
            out.lost += published.saturating_sub(s.received);
            out.errors += s.errors;
            out.latencies_ns.extend(s.latencies_ns);
            if out.first_error.is_none() {
                out.first_error = s.first_error;
            }
        }
        out.misdelivered += bystander.await.context("reader task failed")?;
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), join)
        .await
        .context("the subscribers did not stop within 10 s")??;
    if echoed_to_sender > 0 {
        out.first_error
            .get_or_insert_with(|| format!("the publisher got {echoed_to_sender} message(s) back"));
    }
    out.latencies_ns.sort_unstable();
    Ok(out)
}

/// `end - start` when both probes succeeded.
fn delta(start: Option<u64>, end: Option<u64>) -> Option<u64> {
    Some(end?.saturating_sub(start?))
}

/// The `scheme://host:port` part of a URL (its path is replaced by the room's).
fn origin(url: &str) -> &str {
    match url.strip_prefix("ws://") {
        Some(rest) => &url[..5 + rest.find('/').unwrap_or(rest.len())],
        None => url,
    }
}

/// Runs `loadgen broadcast` and appends its record to `--out` (or prints it).
pub fn run(a: &BroadcastArgs) -> Result<()> {
    let nofile = server::raise_nofile();
    let need = a.subscribers as u64 + 64;
    if nofile < need {
        bail!("open-file limit is {nofile}, {need} needed (raise `ulimit -Hn`)");
    }
    let scenario = scenario_name(a.subscribers, a.publish_url.is_some());
    let (server, url, pid) = match &a.url {
        Some(url) => (None, url.clone(), a.pid),
        None => {
            let log = a
                .server_log
                .as_ref()
                .map(|p| PathBuf::from(format!("{}.{scenario}.log", p.display())));
            let s = Server::start(
                &a.cmd,
                a.server_cpu.as_deref(),
                log.as_deref(),
                Duration::from_secs(15),
            )?;
            let (url, pid) = (s.url.clone(), s.pid());
            if server::comm(pid).as_deref() == Some("taskset") {
                bail!("server PID {pid} is still taskset; cannot attribute CPU time");
            }
            (Some(s), url, Some(pid))
        }
    };
    crate::check_loopback(&url)?;
    let publish_url = a.publish_url.as_deref().unwrap_or(&url);
    crate::check_loopback(publish_url)?;
    let targets = Targets {
        base_url: origin(&url),
        pid,
        publish_base_url: origin(publish_url),
        publish_pid: a.publish_pid,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(drive(a, &targets));
    let rss = pid.and_then(server::rss_kib);
    drop(server);
    // Dropping the runtime closes every connection.
    drop(rt);
    let o = result.with_context(|| format!("{} {scenario}", a.name))?;

    let window_s = o.window.as_secs_f64();
    let us = |ns: Option<u64>| ns.map(|v| v as f64 / 1000.0);
    let rec = Record {
        server: a.name.clone(),
        scenario: scenario.clone(),
        conns: o.subscribers,
        message_bytes: MESSAGE_BYTES,
        window_s,
        ops: o.deliveries_in_window,
        errors: o.errors + o.misdelivered,
        rate_per_s: o.deliveries_in_window as f64 / window_s,
        p50_us: us(percentile(&o.latencies_ns, 50.0)),
        p99_us: us(percentile(&o.latencies_ns, 99.0)),
        cpu_us_per_op: match o.server_cpu_us {
            Some(cpu) if o.deliveries_in_window > 0 => {
                Some(cpu as f64 / o.deliveries_in_window as f64)
            }
            _ => None,
        },
        server_cpu_pct: o.server_cpu_us.map(|c| c as f64 / 1e4 / window_s),
        server_rss_kib: rss,
        client_cpu_pct: o.client_cpu_us.map(|c| c as f64 / 1e4 / window_s),
        publish_rate: Some(o.published_in_window as f64 / window_s),
        lost: Some(o.lost),
        expected: Some(o.published * o.subscribers as u64),
        rss_per_conn_kib: o.rss_per_subscriber_kib,
        publisher_cpu_pct: o.publisher_cpu_us.map(|c| c as f64 / 1e4 / window_s),
        ..Record::default()
    };
    eprintln!(
        "{:<18} {:<13} {} subscribers (connected in {:.1} s), {:.0} msg/s published: \
         {:.0} deliveries/s  p50 {} µs  p99 {} µs  CPU {} µs/delivery  server CPU {}%  \
         client CPU {}%  lost {} of {}  errors {}",
        rec.server,
        rec.scenario,
        o.subscribers,
        o.connect_time.as_secs_f64(),
        rec.publish_rate.unwrap_or_default(),
        rec.rate_per_s,
        rec.p50_us.map_or("-".into(), |v| format!("{v:.0}")),
        rec.p99_us.map_or("-".into(), |v| format!("{v:.0}")),
        rec.cpu_us_per_op.map_or("-".into(), |v| format!("{v:.2}")),
        rec.server_cpu_pct.map_or("-".into(), |v| format!("{v:.0}")),
        rec.client_cpu_pct.map_or("-".into(), |v| format!("{v:.0}")),
        o.lost,
        o.published * o.subscribers as u64,
        rec.errors,
    );
    if let Some(p) = rec.publisher_cpu_pct {
        eprintln!(
            "  {} {scenario}: publisher's server CPU {p:.0}%; barrier: {} message(s) in {:.0} ms",
            a.name,
            o.barrier.0,
            o.barrier.1.as_secs_f64() * 1e3
        );
    }
    if let Some(e) = &o.first_error {
        eprintln!("  {} {scenario}: first error: {e}", a.name);
    }
    if o.misdelivered > 0 {
        eprintln!(
            "  {} {scenario}: {} message(s) reached the publisher or another room",
            a.name, o.misdelivered
        );
    }
    if o.stalled {
        eprintln!(
            "  {} {scenario}: deliveries stalled for {STALL:?}; the window ended early",
            a.name
        );
    }
    if rec.client_cpu_pct.is_some_and(|c| c > CLIENT_SATURATED_PCT) {
        eprintln!(
            "  {} {scenario}: the load generator used {:.0}% of its core: it, not the server, \
             may bound the rate and latency (use a lower --rate)",
            a.name,
            rec.client_cpu_pct.unwrap_or_default()
        );
    }
    let line = serde_json::to_string(&rec)?;
    match &a.out {
        Some(path) => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{line}")?;
        }
        None => println!("{line}"),
    }
    if rec.ops == 0 {
        bail!("no message was delivered in the window");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_64_bytes_and_parse_back() {
        let p = payload(42, 1_234_567_890);
        assert_eq!(p.len(), MESSAGE_BYTES);
        assert_eq!(parse_payload(&p), Some((42, 1_234_567_890)));
        let altered = p.replace("benchmark", "Benchmark");
        assert_eq!(parse_payload(&altered), None);
        assert_eq!(parse_payload("short"), None);
    }

    #[test]
    fn scenario_names() {
        assert_eq!(scenario_name(1000, false), "broadcast1k");
        assert_eq!(scenario_name(10_000, false), "broadcast10k");
        assert_eq!(scenario_name(100, false), "broadcast100");
        assert_eq!(scenario_name(1500, false), "broadcast1500");
        assert_eq!(scenario_name(10, true), "crosshost10");
        assert_eq!(scenario_name(1000, true), "crosshost1k");
    }

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(origin("ws://127.0.0.1:80/"), "ws://127.0.0.1:80");
        assert_eq!(origin("ws://127.0.0.1:80/rooms/x"), "ws://127.0.0.1:80");
        assert_eq!(origin("ws://127.0.0.1:80"), "ws://127.0.0.1:80");
    }
}
