//! `loadgen idle`: opens many idle WebSocket connections to a server and
//! reports how much its resident memory grew per connection.
//!
//! The server's RSS is read from `/proc/PID/status` after a warm-up
//! connection (so one-time costs such as the runtime, the compiled component
//! and per-thread buffers are in the baseline), then again once every
//! connection is open and the server has gone quiet. A sample of the
//! connections then echoes a message, to show they are still served.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use ws_edge::protocol::OpCode;

use crate::deflate::{DeflateClient, json_text};
use crate::server::{self, Server};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Connections opened at the same time while filling up.
const IN_FLIGHT: usize = 128;
/// Everything (opening, settling, checking) must finish within this; the
/// echo component pings idle connections after 20 s, which the idle client
/// would not answer.
const BUDGET: Duration = Duration::from_secs(18);

/// Arguments of `loadgen idle`.
pub struct IdleArgs {
    conns: usize,
    /// Negotiate permessage-deflate and echo one 64 KiB JSON message on
    /// each connection before it goes idle (so compression state exists).
    deflate: bool,
    server_cpu: Option<String>,
    cmd: Vec<String>,
    url: Option<String>,
    pid: Option<u32>,
}

/// Parses `--conns N [--deflate] [--server-cpu CPUS] (-- CMD... | --url ws://ADDR --pid PID)`.
pub fn parse(args: &[String]) -> Result<IdleArgs> {
    let mut a = IdleArgs {
        conns: 10_000,
        deflate: false,
        server_cpu: Some("0".into()),
        cmd: Vec::new(),
        url: None,
        pid: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--conns" => {
                a.conns = value()?.parse().context("--conns")?;
                if !(1..=50_000).contains(&a.conns) {
                    bail!("--conns must be 1..=50000");
                }
            }
            "--server-cpu" => {
                let v = value()?;
                a.server_cpu = (v != "none").then(|| v.clone());
            }
            "--url" => a.url = Some(value()?.clone()),
            "--deflate" => a.deflate = true,
            "--pid" => a.pid = Some(value()?.parse().context("--pid")?),
            "--" => {
                a.cmd = it.by_ref().cloned().collect();
                break;
            }
            other => bail!("unknown argument {other:?} (see `loadgen --help`)"),
        }
    }
    if a.cmd.is_empty() == a.url.is_none() {
        bail!("give either a server command after `--` or --url (not both)");
    }
    if a.url.is_some() && a.pid.is_none() {
        bail!("--url needs --pid (the server whose RSS is measured)");
    }
    Ok(a)
}

/// One idle connection.
enum Conn {
    Plain(Box<Ws>),
    /// permessage-deflate negotiated, one 64 KiB JSON message echoed.
    Deflate(Box<DeflateClient>),
}

async fn open(url: String, deflate: bool) -> Result<Conn> {
    if deflate {
        let mut c = tokio::time::timeout(
            Duration::from_secs(10),
            DeflateClient::connect_with(&url, false),
        )
        .await
        .context("handshake timed out")??;
        tokio::time::timeout(
            Duration::from_secs(10),
            c.round_trip(OpCode::Text, &json_text(64 * 1024, 7)),
        )
        .await
        .context("first message timed out")??;
        return Ok(Conn::Deflate(Box::new(c)));
    }
    let connect = connect_async_with_config(&url, None, true);
    let (ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .context("handshake timed out")??;
    Ok(Conn::Plain(Box::new(ws)))
}

async fn echo(conn: &mut Conn) -> Result<()> {
    let ws = match conn {
        Conn::Plain(ws) => ws,
        Conn::Deflate(c) => {
            return tokio::time::timeout(
                Duration::from_secs(5),
                c.round_trip(OpCode::Text, b"still here?"),
            )
            .await
            .context("no echo within 5 s")?;
        }
    };
    let msg = Message::text("still here?");
    ws.send(msg.clone()).await?;
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(m)) if m.is_text() || m.is_binary() => return Ok(m),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(anyhow::Error::from(e)),
                None => bail!("server closed the connection"),
            }
        }
    })
    .await
    .context("no echo within 5 s")??;
    if reply != msg {
        bail!("echo differs from the message sent");
    }
    Ok(())
}

/// RSS of `pid` once it stops changing (two reads 200 ms apart within 4 KiB),
/// at most 2 s.
async fn settled_rss(pid: u32) -> Result<u64> {
    let mut last = server::rss_kib(pid).context("cannot read the server's RSS")?;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server::rss_kib(pid).context("cannot read the server's RSS")?;
        if now.abs_diff(last) <= 4 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Runs `loadgen idle`.
pub fn run(a: &IdleArgs) -> Result<()> {
    let nofile = server::raise_nofile();
    let need = a.conns as u64 + 64;
    if nofile < need {
        bail!("open-file limit is {nofile}, {need} needed (raise `ulimit -Hn`)");
    }
    let (server, url, pid) = match &a.url {
        Some(url) => (None, url.clone(), a.pid.unwrap_or_default()),
        None => {
            let s = Server::start(
                &a.cmd,
                a.server_cpu.as_deref(),
                None,
                Duration::from_secs(15),
            )?;
            let (url, pid) = (s.url.clone(), s.pid());
            (Some(s), url, pid)
        }
    };
    crate::check_loopback(&url)?;
    let url = if url.matches('/').count() > 2 {
        url
    } else {
        format!("{url}/")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(fill(a.conns, &url, pid, a.deflate));
    drop(server);
    let r = result?;
    let per_conn = (r.rss_full_kib.saturating_sub(r.rss_base_kib)) as f64 / a.conns as f64;
    let projected_10k_mib = (r.rss_base_kib as f64 + per_conn * 10_000.0) / 1024.0;
    let pss_per_conn = match (r.pss_base_kib, r.pss_full_kib) {
        (Some(b), Some(f)) => format!("{:.1}", f.saturating_sub(b) as f64 / a.conns as f64),
        _ => "?".to_owned(),
    };
    println!(
        "idle connections{}: {} open in {:.1} s; server RSS {:.1} MiB before, {:.1} MiB with them open: \
         {per_conn:.1} KiB per connection (PSS, shared pages counted once: {pss_per_conn} KiB); \
         10 000 connections: {projected_10k_mib:.0} MiB total RSS; \
         {} of {} sampled connections still echo",
        if a.deflate {
            " (permessage-deflate, one 64 KiB JSON message echoed on each)"
        } else {
            ""
        },
        a.conns,
        r.open_time.as_secs_f64(),
        r.rss_base_kib as f64 / 1024.0,
        r.rss_full_kib as f64 / 1024.0,
        r.echoed,
        r.sampled,
    );
    if r.echoed < r.sampled {
        bail!(
            "{} sampled connection(s) no longer echo",
            r.sampled - r.echoed
        );
    }
    Ok(())
}

struct Filled {
    rss_base_kib: u64,
    rss_full_kib: u64,
    pss_base_kib: Option<u64>,
    pss_full_kib: Option<u64>,
    open_time: Duration,
    sampled: usize,
    echoed: usize,
}

async fn fill(n: usize, url: &str, pid: u32, deflate: bool) -> Result<Filled> {
    let deadline = Instant::now() + BUDGET;
    // Warm-up: one full connection, so one-time costs are in the baseline.
    let mut warm = open(url.to_owned(), deflate)
        .await
        .context("warm-up connection")?;
    echo(&mut warm).await.context("warm-up echo")?;
    match warm {
        Conn::Plain(mut ws) => {
            let _ = ws.close(None).await;
        }
        Conn::Deflate(c) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
        }
    }
    let rss_base_kib = settled_rss(pid).await?;
    let pss_base_kib = server::pss_kib(pid);

    let started = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let mut pending = JoinSet::new();
    let mut launched = 0;
    while conns.len() < n {
        while launched < n && pending.len() < IN_FLIGHT {
            pending.spawn(open(url.to_owned(), deflate));
            launched += 1;
        }
        let Some(done) = pending.join_next().await else {
            break;
        };
        let ws = done
            .context("connection task failed")?
            .with_context(|| format!("opening connection {}", conns.len() + 1))?;
        conns.push(ws);
        if Instant::now() > deadline {
            bail!(
                "opened only {} of {n} connections within {BUDGET:?}",
                conns.len()
            );
        }
    }
    let open_time = started.elapsed();
    let rss_full_kib = settled_rss(pid).await?;
    let pss_full_kib = server::pss_kib(pid);

    // A spread of connections must still be served.
    let step = (n / 16).max(1);
    let (mut sampled, mut echoed) = (0, 0);
    for ws in conns.iter_mut().step_by(step) {
        sampled += 1;
        if echo(ws).await.is_ok() {
            echoed += 1;
        }
    }
    if Instant::now() > deadline + Duration::from_secs(5) {
        eprintln!(
            "warning: the idle run took longer than planned; keepalive pings may have started"
        );
    }
    Ok(Filled {
        rss_base_kib,
        rss_full_kib,
        pss_base_kib,
        pss_full_kib,
        open_time,
        sampled,
        echoed,
    })
}
