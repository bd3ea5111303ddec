//! Load generator for the ws-edge benchmarks.
//!
//! ```text
//! loadgen run --name NAME [--scenario handshake|echo64|echo64k|deflate-json|deflate-random|all]
//!             [--scenario tls-handshake|tls-echo64 --ca CA.pem]
//!             [--duration SECS] [--warmup SECS] [--conns N] [--server-cpu CPUS]
//!             [--out RESULTS.jsonl] [--server-log PATH] [--rate OPS_PER_S] [--syscalls]
//!             (-- SERVER COMMAND... | --url ws[s]://ADDR [--pid PID])
//! loadgen report --results RESULTS.jsonl [--baseline NAME[,NAME...]] [--broadcast-vs NAME]
//!                [--md PATH] [--svg PATH]
//!                [--command TEXT] [--machine TEXT] [--notes TEXT]
//! loadgen idle [--conns N] [--deflate] [--server-cpu CPUS] (-- SERVER COMMAND... | --url ws://ADDR --pid PID)
//! loadgen broadcast --name NAME --subscribers N (--rate MSGS_PER_S | --max)
//!             [--duration SECS] [--warmup SECS] [--room NAME] [--server-cpu CPUS]
//!             [--out RESULTS.jsonl] [--server-log PATH]
//!             [--publish-url ws://ADDR [--publish-pid PID]]
//!             (-- SERVER COMMAND... | --url ws://ADDR [--pid PID])
//! ```
//!
//! `run` starts the server command once per scenario (pinned with
//! `taskset -c CPUS`, default 0), waits for its `listening on ws://ADDR`
//! line, drives load at that address only (it must be a loopback address),
//! and appends one JSON record per scenario to `--out`. `report` prints the
//! comparison tables (broadcast scenarios in their own, with ratios to
//! `--baseline` and to `--broadcast-vs`, default `node-ws`) and writes the
//! markdown tables and the SVG plot (request/response scenarios only). `idle`
//! opens N (default 10 000) idle connections and prints the server's RSS
//! growth per connection (see `bench/idle.sh`); with `--deflate` each
//! negotiates permessage-deflate and echoes one 64 KiB JSON message first.
//! `all` is the three plain scenarios; the deflate ones (`deflate-json`,
//! `deflate-random`: 64 KiB echoed with permessage-deflate negotiated, bytes
//! on the wire counted) are named explicitly, for servers that support it.
//! So are the TLS ones (`tls-handshake`, `tls-echo64`: `handshake` and
//! `echo64` over TLS, a full handshake per connection), for a server that
//! prints `listening on wss://ADDR`; the client (rustls, ring provider)
//! trusts only the PEM CA certificate(s) in `--ca`.
//! `--rate` paces the load at that many operations per second in all
//! (spread over the connections) instead of closed loop. `--syscalls` counts
//! the server's system calls over the window with `strace -c -f` (attached
//! when the window opens, detached when it closes) and records calls per
//! operation instead of CPU time, which tracing distorts; run it as its own
//! pass, paced at a rate the traced server keeps up with.
//! `broadcast` opens N
//! subscribers to `/rooms/<room>` (default `bench`) and one publisher in the
//! same room, publishes 64-byte text messages at a fixed rate (or closed loop
//! with `--max`) and appends a record of deliveries per second, server CPU per
//! delivery, delivery latency and losses to `--out`. With `--publish-url` the
//! publisher joins the room on that other server instead (two hosts sharing a
//! broker): the record's scenario is then `crosshost<N>`.

mod broadcast;
mod deflate;
mod idle;
mod report;
mod scenarios;
mod server;
mod strace;
mod tls;

use std::fs::OpenOptions;
use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use report::Record;
use scenarios::{Load, Scenario, percentile};
use server::Server;

struct RunArgs {
    name: String,
    scenarios: Vec<Scenario>,
    duration: Duration,
    warmup: Duration,
    conns: usize,
    server_cpu: Option<String>,
    out: Option<PathBuf>,
    server_log: Option<PathBuf>,
    cmd: Vec<String>,
    url: Option<String>,
    pid: Option<u32>,
    ca: Option<PathBuf>,
    rate: Option<f64>,
    syscalls: bool,
}

/// Parses a number of seconds in (0, 600].
pub(crate) fn secs(v: &str) -> Result<Duration> {
    let s: f64 = v
        .parse()
        .with_context(|| format!("bad number of seconds {v:?}"))?;
    if !(s.is_finite() && s > 0.0 && s <= 600.0) {
        bail!("seconds must be in (0, 600], got {v}");
    }
    Ok(Duration::from_secs_f64(s))
}

fn parse_run(args: &[String]) -> Result<RunArgs> {
    let mut a = RunArgs {
        name: String::new(),
        scenarios: Scenario::ALL.to_vec(),
        duration: Duration::from_secs(8),
        warmup: Duration::from_secs(1),
        conns: 16,
        server_cpu: Some("0".into()),
        out: None,
        server_log: None,
        cmd: Vec::new(),
        url: None,
        pid: None,
        ca: None,
        rate: None,
        syscalls: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--name" => a.name = value()?.clone(),
            "--scenario" => {
                let v = value()?;
                a.scenarios = if v == "all" {
                    Scenario::ALL.to_vec()
                } else {
                    v.split(',')
                        .map(|s| {
                            Scenario::parse(s).with_context(|| format!("unknown scenario {s:?}"))
                        })
                        .collect::<Result<_>>()?
                };
            }
            "--duration" => a.duration = secs(value()?)?,
            "--warmup" => a.warmup = secs(value()?)?,
            "--conns" => {
                a.conns = value()?.parse().context("--conns")?;
                if !(1..=1024).contains(&a.conns) {
                    bail!("--conns must be 1..=1024");
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
            "--ca" => a.ca = Some(value()?.into()),
            "--rate" => {
                let v: f64 = value()?.parse().context("--rate")?;
                if !(v.is_finite() && v > 0.0 && v <= 1e6) {
                    bail!("--rate must be in (0, 1000000] operations per second");
                }
                a.rate = Some(v);
            }
            "--syscalls" => a.syscalls = true,
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
    if a.cmd.is_empty() == a.url.is_none() {
        bail!("give either a server command after `--` or --url (not both)");
    }
    if a.syscalls && a.cmd.is_empty() && a.pid.is_none() {
        bail!("--syscalls needs the server's PID (a server command, or --pid)");
    }
    if a.ca.is_none() && a.scenarios.iter().any(|s| s.is_tls()) {
        bail!("the TLS scenarios need --ca CA.pem (the CA that signed the server's certificate)");
    }
    Ok(a)
}

/// Refuses anything but loopback targets.
pub(crate) fn check_loopback(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .context("only ws:// and wss:// URLs are supported")?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let addrs: Vec<_> = hostport
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {hostport:?}"))?
        .collect();
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        bail!("refusing to load {url}: the load generator only targets loopback addresses");
    }
    Ok(())
}

fn measure(a: &RunArgs, scenario: Scenario, rt: &tokio::runtime::Runtime) -> Result<Record> {
    // A fresh server per scenario so scenarios don't inherit each other's state.
    let (server, url, pid) = if a.cmd.is_empty() {
        (None, a.url.clone().unwrap_or_default(), a.pid)
    } else {
        let log = a
            .server_log
            .as_ref()
            .map(|p| PathBuf::from(format!("{}.{}.log", p.display(), scenario.name())));
        let s = Server::start(
            &a.cmd,
            a.server_cpu.as_deref(),
            log.as_deref(),
            Duration::from_secs(15),
        )?;
        let url = s.url.clone();
        let pid = s.pid();
        if server::comm(pid).as_deref() == Some("taskset") {
            bail!("server PID {pid} is still taskset; cannot attribute CPU time");
        }
        (Some(s), url, Some(pid))
    };
    check_loopback(&url)?;
    if scenario.is_tls() != url.starts_with("wss://") {
        bail!(
            "{} needs a {} server, got {url}",
            scenario.name(),
            if scenario.is_tls() { "wss://" } else { "ws://" }
        );
    }
    let tls = match &a.ca {
        Some(ca) if scenario.is_tls() => Some(tls::client_config(ca)?),
        _ => None,
    };
    if let Some(config) = &tls {
        let session = rt
            .block_on(tls::describe(config, &url))
            .context("a first TLS connection")?;
        eprintln!("  {} {}: TLS {session}", a.name, scenario.name());
    }
    let url = if url.ends_with('/') || url.matches('/').count() > 2 {
        url
    } else {
        format!("{url}/")
    };
    let load = Load {
        url,
        tls,
        conns: a.conns,
        warmup: a.warmup,
        duration: a.duration,
        op_timeout: Duration::from_secs(5),
        pace: a.rate.map(|r| Duration::from_secs_f64(a.conns as f64 / r)),
    };
    // With --syscalls the window's edges also attach and detach strace.
    let trace_out = std::env::temp_dir().join(format!(
        "loadgen-strace-{}-{}.txt",
        std::process::id(),
        scenario.name()
    ));
    let mut tracer: Option<strace::Tracer> = None;
    let mut counts: Option<Result<strace::Counts>> = None;
    let probe = || {
        if let (true, Some(p)) = (a.syscalls, pid) {
            match tracer.take() {
                Some(t) => counts = Some(t.finish()),
                None => match strace::Tracer::attach(p, &trace_out) {
                    Ok(t) => tracer = Some(t),
                    Err(e) => counts = Some(Err(e)),
                },
            }
        }
        pid.and_then(|p| server::cpu_time_us(p).ok())
    };
    let outcome = rt.block_on(scenarios::run(scenario, &load, probe))?;
    let _ = std::fs::remove_file(&trace_out);
    let counts = counts.transpose()?;
    if let Some(e) = &outcome.first_error {
        eprintln!(
            "  {} {}: {} error(s), first: {e}",
            a.name,
            scenario.name(),
            outcome.errors
        );
    }
    let rss = pid.and_then(server::rss_kib);
    drop(server);

    let window_s = outcome.window.as_secs_f64();
    let us = |ns: Option<u64>| ns.map(|v| v as f64 / 1000.0);
    let cpu_us_per_op = match outcome.server_cpu_us {
        // Tracing slows the server down by far more than it costs.
        _ if a.syscalls => None,
        Some(cpu) if outcome.ops > 0 => Some(cpu as f64 / outcome.ops as f64),
        _ => None,
    };
    let per_op = |n: u64| n as f64 / outcome.ops.max(1) as f64;
    Ok(Record {
        server: a.name.clone(),
        scenario: scenario.name().into(),
        conns: a.conns,
        message_bytes: scenario.message_bytes(),
        window_s,
        ops: outcome.ops,
        errors: outcome.errors,
        rate_per_s: outcome.ops as f64 / window_s,
        p50_us: us(percentile(&outcome.latencies_ns, 50.0)),
        p99_us: us(percentile(&outcome.latencies_ns, 99.0)),
        cpu_us_per_op,
        server_cpu_pct: outcome
            .server_cpu_us
            .filter(|_| !a.syscalls)
            .map(|c| c as f64 / 1e4 / window_s),
        client_cpu_pct: outcome.client_cpu_us.map(|c| c as f64 / 1e4 / window_s),
        server_rss_kib: rss,
        server_wire_bytes_per_op: outcome
            .wire
            .filter(|_| outcome.ops > 0)
            .map(|(i, _)| i as f64 / outcome.ops as f64),
        client_wire_bytes_per_op: outcome
            .wire
            .filter(|_| outcome.ops > 0)
            .map(|(_, o)| o as f64 / outcome.ops as f64),
        paced_rate: a.rate,
        syscalls_per_op: counts.as_ref().map(|c| per_op(c.total)),
        syscall_errors_per_op: counts.as_ref().map(|c| per_op(c.errors)),
        syscalls_by_name: counts.map(|c| {
            c.by_name
                .into_iter()
                .map(|(name, n)| (name, per_op(n)))
                .collect()
        }),
        ..Record::default()
    })
}

fn cmd_run(args: &[String]) -> Result<()> {
    let a = parse_run(args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failures = 0;
    for &scenario in &a.scenarios {
        match measure(&a, scenario, &rt) {
            Ok(rec) => {
                eprintln!(
                    "{:<18} {:<9} {:>9.0} ops/s  p50 {:>7} µs  p99 {:>7} µs  CPU {:>8} µs/op  errors {}",
                    rec.server,
                    rec.scenario,
                    rec.rate_per_s,
                    rec.p50_us.map_or("-".into(), |v| format!("{v:.0}")),
                    rec.p99_us.map_or("-".into(), |v| format!("{v:.0}")),
                    rec.cpu_us_per_op.map_or("-".into(), |v| format!("{v:.2}")),
                    rec.errors
                );
                if let (Some(total), Some(by_name)) = (rec.syscalls_per_op, &rec.syscalls_by_name) {
                    eprintln!(
                        "  syscalls {total:.2}/op: {}",
                        report::top_syscalls(by_name, 6)
                    );
                }
                if rec.ops == 0 {
                    eprintln!(
                        "  (no operation completed: the server did not work under this load)"
                    );
                    failures += 1;
                }
                let line = serde_json::to_string(&rec)?;
                match &a.out {
                    Some(path) => {
                        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
                        writeln!(f, "{line}")?;
                    }
                    None => println!("{line}"),
                }
            }
            Err(e) => {
                eprintln!("{} {}: FAILED: {e:#}", a.name, scenario.name());
                failures += 1;
            }
        }
    }
    if failures > 0 {
        bail!("{failures} scenario(s) failed for {}", a.name);
    }
    Ok(())
}

fn cmd_report(args: &[String]) -> Result<()> {
    let mut results = None;
    let mut baseline = "tokio-tungstenite".to_owned();
    let mut broadcast_vs = "node-ws".to_owned();
    let (mut md, mut svg) = (None, None);
    let (mut command, mut machine, mut notes) = (String::new(), String::new(), String::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--results" => results = Some(PathBuf::from(value()?)),
            "--baseline" => baseline = value()?,
            "--broadcast-vs" => broadcast_vs = value()?,
            "--md" => md = Some(PathBuf::from(value()?)),
            "--svg" => svg = Some(PathBuf::from(value()?)),
            "--command" => command = value()?,
            "--machine" => machine = value()?,
            "--notes" => notes = value()?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let results = results.context("--results is required")?;
    let text = std::fs::read_to_string(&results)
        .with_context(|| format!("cannot read {}", results.display()))?;
    let records: Vec<Record> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("malformed results line")?;
    if records.is_empty() {
        bail!("no records in {}", results.display());
    }
    print!("{}", report::text_table(&records, &baseline, &broadcast_vs));
    if let Some(path) = md {
        let ctx = report::Context {
            baseline: &baseline,
            broadcast_vs: &broadcast_vs,
            command: &command,
            machine: &machine,
            notes: &notes,
        };
        std::fs::write(&path, report::markdown(&records, &ctx))?;
        eprintln!("wrote {}", path.display());
    }
    let has_echo = records
        .iter()
        .any(|r| !report::is_fanout(&r.scenario) && r.syscalls_per_op.is_none());
    if let Some(path) = svg.filter(|_| has_echo) {
        std::fs::write(&path, report::svg(&records, &baseline))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("report") => cmd_report(&args[1..]),
        Some("idle") => idle::parse(&args[1..]).and_then(|a| idle::run(&a)),
        Some("broadcast") => broadcast::parse(&args[1..]).and_then(|a| broadcast::run(&a)),
        _ => {
            let doc = include_str!("main.rs");
            let usage: String = doc
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .map(|l| {
                    format!(
                        "{}\n",
                        l.trim_start_matches("//!").strip_prefix(' ').unwrap_or("")
                    )
                })
                .collect();
            print!("{usage}");
            std::process::exit(if args.is_empty() { 2 } else { 0 });
        }
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e:#}");
        std::process::exit(1);
    }
}
