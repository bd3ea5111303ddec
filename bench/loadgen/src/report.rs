//! Results records, the comparison table (terminal and markdown) and the SVG plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One measured (server, scenario) pair, stored as a JSON line.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    /// Server name, e.g. `tokio-tungstenite`.
    pub server: String,
    /// Scenario name.
    pub scenario: String,
    /// Concurrent connections / handshake loops.
    pub conns: usize,
    /// Echoed payload size in bytes (0 for handshakes).
    pub message_bytes: usize,
    /// Measured window, seconds.
    pub window_s: f64,
    /// Operations completed in the window.
    pub ops: u64,
    /// Failed operations over the whole run.
    pub errors: u64,
    /// Operations per second.
    pub rate_per_s: f64,
    /// Median latency, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<f64>,
    /// Server CPU time per operation, µs.
    pub cpu_us_per_op: Option<f64>,
    /// Server CPU use over the window, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// Server resident memory at the end of the window, KiB.
    pub server_rss_kib: Option<u64>,
    /// Load generator CPU use over the window, percent of one core (near
    /// 100 means the client, not the server, bounded the rate).
    #[serde(default)]
    pub client_cpu_pct: Option<f64>,
    /// Broadcast: messages published per second in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_rate: Option<f64>,
    /// Broadcast: deliveries that never arrived (every subscriber should get
    /// every message published after the barrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// Broadcast: deliveries owed (messages published after the barrier times
    /// subscribers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    /// Broadcast: server RSS growth per subscriber connection, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_per_conn_kib: Option<f64>,
    /// Cross-host: CPU use of the publisher's server over the window,
    /// percent of one core (`server_cpu_pct` is the subscribers' server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_cpu_pct: Option<f64>,
    /// Bytes on the wire the server sent per operation (frames of the
    /// echo), when counted (the permessage-deflate scenarios).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_wire_bytes_per_op: Option<f64>,
    /// Bytes on the wire the client sent per operation, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_wire_bytes_per_op: Option<f64>,
    /// The fixed total rate the load was paced at (`--rate`), operations per
    /// second; closed loop when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paced_rate: Option<f64>,
    /// The server's system calls per operation (`--syscalls`: a tracing pass,
    /// whose records carry no CPU time and go to their own table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_per_op: Option<f64>,
    /// Of those, the calls that returned an error (`EAGAIN` mostly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall_errors_per_op: Option<f64>,
    /// System calls per operation by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_by_name: Option<BTreeMap<String, f64>>,
}

/// Everything the report needs besides the records.
pub struct Context<'a> {
    /// Name of the server the ratios are relative to.
    pub baseline: &'a str,
    /// Second reference of the broadcast table's ratios (e.g. `node-ws`).
    pub broadcast_vs: &'a str,
    /// The command that produced the numbers.
    pub command: &'a str,
    /// CPU model and core count.
    pub machine: &'a str,
    /// Free-form notes appended to the markdown (versions, setup).
    pub notes: &'a str,
}

fn scenarios(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records {
        if !out.contains(&r.scenario) {
            out.push(r.scenario.clone());
        }
    }
    out
}

fn find<'r>(records: &'r [Record], server: &str, scenario: &str) -> Option<&'r Record> {
    records
        .iter()
        .find(|r| r.server == server && r.scenario == scenario)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// One record per (server, scenario), in order of first appearance: the
/// median of each figure over the repeated rounds, with ops and errors summed.
pub fn aggregate(records: &[Record]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for r in records {
        if find(&out, &r.server, &r.scenario).is_some() {
            continue;
        }
        let same: Vec<&Record> = records
            .iter()
            .filter(|x| x.server == r.server && x.scenario == r.scenario)
            .collect();
        let med =
            |f: fn(&Record) -> Option<f64>| median(same.iter().filter_map(|x| f(x)).collect());
        out.push(Record {
            server: r.server.clone(),
            scenario: r.scenario.clone(),
            conns: r.conns,
            message_bytes: r.message_bytes,
            window_s: same.iter().map(|x| x.window_s).sum(),
            ops: same.iter().map(|x| x.ops).sum(),
            errors: same.iter().map(|x| x.errors).sum(),
            rate_per_s: med(|x| Some(x.rate_per_s)).unwrap_or(0.0),
            p50_us: med(|x| x.p50_us),
            p99_us: med(|x| x.p99_us),
            cpu_us_per_op: med(|x| x.cpu_us_per_op),
            server_cpu_pct: med(|x| x.server_cpu_pct),
            server_rss_kib: same.iter().filter_map(|x| x.server_rss_kib).max(),
            client_cpu_pct: med(|x| x.client_cpu_pct),
            publish_rate: med(|x| x.publish_rate),
            lost: same.iter().map(|x| x.lost).sum(),
            expected: same.iter().map(|x| x.expected).sum(),
            rss_per_conn_kib: med(|x| x.rss_per_conn_kib),
            publisher_cpu_pct: med(|x| x.publisher_cpu_pct),
            server_wire_bytes_per_op: med(|x| x.server_wire_bytes_per_op),
            client_wire_bytes_per_op: med(|x| x.client_wire_bytes_per_op),
            paced_rate: r.paced_rate,
            syscalls_per_op: med(|x| x.syscalls_per_op),
            syscall_errors_per_op: med(|x| x.syscall_errors_per_op),
            syscalls_by_name: r.syscalls_by_name.clone(),
        });
    }
    out
}

/// Lowest and highest CPU µs/op over the rounds of (server, scenario).
fn cpu_range(records: &[Record], server: &str, scenario: &str) -> Option<(f64, f64, usize)> {
    let v: Vec<f64> = records
        .iter()
        .filter(|r| r.server == server && r.scenario == scenario)
        .filter_map(|r| r.cpu_us_per_op)
        .collect();
    let lo = v.iter().copied().reduce(f64::min)?;
    let hi = v.iter().copied().reduce(f64::max)?;
    Some((lo, hi, v.len()))
}

fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x"))
}

const HEADER: [&str; 13] = [
    "scenario",
    "server",
    "rate/s",
    "p50 µs",
    "p99 µs",
    "CPU µs/op",
    "CPU/op vs base",
    "rate vs base",
    "CPU µs/op min-max (rounds)",
    "server CPU %",
    "client CPU %",
    "wire B/msg (server, client)",
    "errors",
];

/// Whether `scenario` is a fan-out scenario (`broadcast1k`, ...), reported
/// in its own table.
pub fn is_broadcast(scenario: &str) -> bool {
    scenario.starts_with("broadcast")
}

/// Whether `scenario` is the cross-host fan-out (`crosshost10`, ...: the
/// publisher on another host than the subscribers), reported in its own
/// table.
pub fn is_crosshost(scenario: &str) -> bool {
    scenario.starts_with("crosshost")
}

/// Whether `scenario` is reported in a table other than the
/// request/response one (and left out of the plot).
pub fn is_fanout(scenario: &str) -> bool {
    is_broadcast(scenario) || is_crosshost(scenario)
}

/// The baseline of `scenario`: the first of the comma-separated `baseline`
/// names measured in it (the deflate scenarios have their own).
fn base_of<'r>(records: &'r [Record], baseline: &str, scenario: &str) -> Option<&'r Record> {
    baseline
        .split(',')
        .find_map(|name| find(records, name.trim(), scenario))
}

/// Table rows of the request/response scenarios from raw (per-round)
/// records: medians, ratios and spread.
fn rows(raw: &[Record], baseline: &str) -> Vec<Vec<String>> {
    let records = aggregate(raw);
    let mut out = Vec::new();
    for scenario in scenarios(&records).into_iter().filter(|s| !is_fanout(s)) {
        let base = base_of(&records, baseline, &scenario);
        for r in records.iter().filter(|r| r.scenario == scenario) {
            out.push(vec![
                scenario.clone(),
                r.server.clone(),
                format!("{:.0}", r.rate_per_s),
                fmt_opt(r.p50_us, 0),
                fmt_opt(r.p99_us, 0),
                fmt_opt(r.cpu_us_per_op, 2),
                fmt_ratio(ratio(r.cpu_us_per_op, base.and_then(|b| b.cpu_us_per_op))),
                fmt_ratio(ratio(Some(r.rate_per_s), base.map(|b| b.rate_per_s))),
                cpu_range(raw, &r.server, &scenario).map_or_else(
                    || "-".to_owned(),
                    |(lo, hi, n)| format!("{lo:.1}-{hi:.1} ({n})"),
                ),
                fmt_opt(r.server_cpu_pct, 0),
                fmt_opt(r.client_cpu_pct, 0),
                match (r.server_wire_bytes_per_op, r.client_wire_bytes_per_op) {
                    (Some(s), Some(c)) => format!("{s:.0}, {c:.0}"),
                    _ => "-".to_owned(),
                },
                r.errors.to_string(),
            ]);
        }
    }
    out
}

/// The first of the comma-separated baseline names: the broadcast table's
/// reference.
fn first(baseline: &str) -> &str {
    baseline.split(',').next().unwrap_or(baseline).trim()
}

/// Header of the broadcast table; `{base}` and `{vs}` are the references.
fn broadcast_header(base: &str, vs: &str) -> Vec<String> {
    [
        "scenario",
        "server",
        "subscribers",
        "published msg/s",
        "deliveries/s",
        "p50 µs",
        "p99 µs",
        "CPU µs/delivery",
        &format!("CPU/delivery vs {base}"),
        &format!("CPU/delivery vs {vs}"),
        "CPU µs/delivery min-max (rounds)",
        "server CPU %",
        "client CPU %",
        "lost of owed",
        "errors",
        "RSS KiB/subscriber",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Rows of the broadcast table: medians over the rounds, CPU per delivery
/// relative to both references, losses summed over the rounds.
fn broadcast_rows(raw: &[Record], base: &str, vs: &str) -> Vec<Vec<String>> {
    let records = aggregate(raw);
    let mut out = Vec::new();
    for scenario in scenarios(&records).into_iter().filter(|s| is_broadcast(s)) {
        let cpu_of = |server: &str| find(&records, server, &scenario).and_then(|b| b.cpu_us_per_op);
        for r in records.iter().filter(|r| r.scenario == scenario) {
            out.push(vec![
                scenario.clone(),
                r.server.clone(),
                r.conns.to_string(),
                fmt_opt(r.publish_rate, 0),
                format!("{:.0}", r.rate_per_s),
                fmt_opt(r.p50_us, 0),
                fmt_opt(r.p99_us, 0),
                fmt_opt(r.cpu_us_per_op, 2),
                fmt_ratio(ratio(r.cpu_us_per_op, cpu_of(base))),
                fmt_ratio(ratio(r.cpu_us_per_op, cpu_of(vs))),
                cpu_range(raw, &r.server, &scenario).map_or_else(
                    || "-".to_owned(),
                    |(lo, hi, n)| format!("{lo:.2}-{hi:.2} ({n})"),
                ),
                fmt_opt(r.server_cpu_pct, 0),
                fmt_opt(r.client_cpu_pct, 0),
                match (r.lost, r.expected) {
                    (Some(l), Some(e)) => format!("{l} of {e}"),
                    _ => "-".to_owned(),
                },
                r.errors.to_string(),
                fmt_opt(r.rss_per_conn_kib, 1),
            ]);
        }
    }
    out
}

/// Header of the cross-host table.
const CROSSHOST_HEADER: [&str; 13] = [
    "scenario",
    "server",
    "subscribers",
    "published msg/s",
    "deliveries/s",
    "p50 µs",
    "p99 µs",
    "CPU µs/delivery (subscribers' host)",
    "subscribers' host CPU %",
    "publisher's host CPU %",
    "client CPU %",
    "lost of owed",
    "errors",
];

/// Rows of the cross-host table: medians over the rounds, losses summed.
fn crosshost_rows(raw: &[Record]) -> Vec<Vec<String>> {
    let records = aggregate(raw);
    records
        .iter()
        .filter(|r| is_crosshost(&r.scenario))
        .map(|r| {
            vec![
                r.scenario.clone(),
                r.server.clone(),
                r.conns.to_string(),
                fmt_opt(r.publish_rate, 0),
                format!("{:.0}", r.rate_per_s),
                fmt_opt(r.p50_us, 0),
                fmt_opt(r.p99_us, 0),
                fmt_opt(r.cpu_us_per_op, 2),
                fmt_opt(r.server_cpu_pct, 0),
                fmt_opt(r.publisher_cpu_pct, 0),
                fmt_opt(r.client_cpu_pct, 0),
                match (r.lost, r.expected) {
                    (Some(l), Some(e)) => format!("{l} of {e}"),
                    _ => "-".to_owned(),
                },
                r.errors.to_string(),
            ]
        })
        .collect()
}

/// Splits the records into those of timed runs and those of the tracing
/// pass (`syscalls_per_op` set).
fn split(records: &[Record]) -> (Vec<Record>, Vec<Record>) {
    records
        .iter()
        .cloned()
        .partition(|r| r.syscalls_per_op.is_none())
}

/// The `n` most frequent system calls of `by_name` (per operation), most
/// frequent first: `recvfrom 1.00, sendto 1.00, ...`.
pub fn top_syscalls(by_name: &BTreeMap<String, f64>, n: usize) -> String {
    let mut v: Vec<(&String, &f64)> = by_name.iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut out: Vec<String> = v
        .iter()
        .take(n)
        .map(|(name, per_op)| format!("{name} {per_op:.2}"))
        .collect();
    if v.len() > n {
        let rest: f64 = v[n..].iter().map(|(_, x)| **x).sum();
        out.push(format!("other {rest:.2}"));
    }
    out.join(", ")
}

const SYSCALL_HEADER: [&str; 7] = [
    "scenario",
    "server",
    "paced ops/s",
    "syscalls/op",
    "vs base",
    "failed/op",
    "by call (per op)",
];

/// Rows of the system-call table: one per (server, scenario) of the
/// tracing pass, ratios to the baseline of the scenario.
fn syscall_rows(sys: &[Record], baseline: &str) -> Vec<Vec<String>> {
    let records = aggregate(sys);
    let mut out = Vec::new();
    for scenario in scenarios(&records) {
        let base = base_of(&records, baseline, &scenario);
        for r in records.iter().filter(|r| r.scenario == scenario) {
            out.push(vec![
                scenario.clone(),
                r.server.clone(),
                fmt_opt(r.paced_rate, 0),
                fmt_opt(r.syscalls_per_op, 2),
                fmt_ratio(ratio(
                    r.syscalls_per_op,
                    base.and_then(|b| b.syscalls_per_op),
                )),
                fmt_opt(r.syscall_errors_per_op, 2),
                r.syscalls_by_name
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |m| top_syscalls(m, 6)),
            ]);
        }
    }
    out
}

/// The terminal tables: request/response scenarios, then broadcast, then
/// cross-host, then system calls per operation.
pub fn text_table(records: &[Record], baseline: &str, broadcast_vs: &str) -> String {
    let (records, sys) = split(records);
    let records = &records[..];
    let mut out = String::new();
    let main = rows(records, baseline);
    if !main.is_empty() {
        out.push_str(&text_grid(&HEADER.map(str::to_owned), &main));
        let _ = writeln!(
            out,
            "(ratios relative to the first of {baseline} measured in the scenario; CPU = server user+system time, one core)"
        );
    }
    let fan = broadcast_rows(records, first(baseline), broadcast_vs);
    if !fan.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text_grid(
            &broadcast_header(first(baseline), broadcast_vs),
            &fan,
        ));
        let _ = writeln!(
            out,
            "(broadcast: one publisher, 64-byte text messages; CPU = server user+system time per delivered message)"
        );
    }
    let cross = crosshost_rows(records);
    if !cross.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text_grid(&CROSSHOST_HEADER.map(str::to_owned), &cross));
        let _ = writeln!(
            out,
            "(cross-host: publisher on host A, subscribers on host B, one NATS server between them)"
        );
    }
    let sys_rows = syscall_rows(&sys, baseline);
    if !sys_rows.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text_grid(&SYSCALL_HEADER.map(str::to_owned), &sys_rows));
        let _ = writeln!(
            out,
            "(system calls of the server per operation: strace -c over the window of a paced run)"
        );
    }
    out
}

/// A fixed-width grid, a blank line between scenarios.
fn text_grid(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i < 2 {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(header, &mut out);
    let mut last = String::new();
    for row in rows {
        if !last.is_empty() && row[0] != last {
            out.push('\n');
        }
        last.clone_from(&row[0]);
        line(row, &mut out);
    }
    out
}

/// The markdown report: command, machine, tables, notes.
pub fn markdown(records: &[Record], ctx: &Context<'_>) -> String {
    let (records, sys) = split(records);
    let records = &records[..];
    let mut out = String::new();
    let _ = writeln!(out, "# ws-edge benchmarks vs peers\n");
    let _ = writeln!(out, "Reproduce with:\n\n```sh\n{}\n```\n", ctx.command);
    let _ = writeln!(out, "Machine: {}\n", ctx.machine);
    let _ = writeln!(
        out,
        "Each server runs pinned to one core (`taskset -c 0`), the load generator on the other; \
         **CPU µs/op** is the server's user+system CPU time (from `/proc/PID/stat`, all threads) \
         over the measured window divided by the operations completed in it. Each figure is the \
         median over the rounds (scenario by scenario, servers interleaved); ratios are relative \
         to the first of `{}` measured in the same scenario of the same run (CPU/op: lower is \
         better; rate: higher is better). *wire B/msg* counts the frames of one echoed message \
         each way (the permessage-deflate scenarios only).\n",
        ctx.baseline
    );
    let main = rows(records, ctx.baseline);
    if !main.is_empty() {
        md_grid(&mut out, &HEADER.map(str::to_owned), &main);
        let _ = writeln!(out, "\n![server CPU per operation and rate](bench.svg)\n");
    }
    let fan = broadcast_rows(records, first(ctx.baseline), ctx.broadcast_vs);
    if !fan.is_empty() {
        let _ = writeln!(
            out,
            "### Broadcast: one publisher, many subscribers in one room\n"
        );
        let _ = writeln!(
            out,
            "N subscribers join `/rooms/bench`, then one publisher in the same room sends 64-byte \
             text messages at the fixed rate shown; every other member must receive each one. \
             **deliveries/s** counts the messages received over all subscribers inside the window; \
             **CPU µs/delivery** is the server's CPU time in the window divided by them (lower is \
             better). Latency runs from the publisher's send to a subscriber's read, through the \
             one-threaded load generator, which reads the subscribers one after another. *lost of \
             owed* sums, over the rounds, the deliveries that never arrived of those owed (messages \
             published after every subscriber had joined, times subscribers); *errors* counts \
             altered, duplicated or reordered messages, closed subscribers and messages that \
             reached the publisher or another room.\n"
        );
        md_grid(
            &mut out,
            &broadcast_header(first(ctx.baseline), ctx.broadcast_vs),
            &fan,
        );
        out.push('\n');
    }
    let cross = crosshost_rows(records);
    if !cross.is_empty() {
        let _ = writeln!(
            out,
            "### Cross-host: publisher and subscribers on two hosts
"
        );
        let _ = writeln!(
            out,
            "Two ws-edge hosts (the chat example, forward delivery) share one local `nats-server` \
             (`--broker nats://127.0.0.1:PORT`); the subscribers join `/rooms/bench` on host B, \
             the publisher the same room on host A, so every message crosses host A → NATS → \
             host B. The barrier keeps publishing until every subscriber has received a message \
             (the first ones may be dropped while host B's interest reaches NATS); then the same \
             fixed-rate run, latency, loss and error counting as above. Issue 14's target: 1 000 \
             messages/s with p99 ≤ 2 ms. *CPU µs/delivery* and the first CPU % are host B's.\n"
        );
        md_grid(&mut out, &CROSSHOST_HEADER.map(str::to_owned), &cross);
        out.push('\n');
    }
    let sys_rows = syscall_rows(&sys, ctx.baseline);
    if !sys_rows.is_empty() {
        let _ = writeln!(out, "### System calls per operation\n");
        let _ = writeln!(
            out,
            "A separate pass after the timed rounds: each server again, the load paced at the fixed \
             rate shown (the same for every server, well below what the traced server sustains), \
             and `strace -c -f` attached to the server for the window only (attached as it opens, \
             detached as it closes). Counts do not move with the neighbours the way times do, so a \
             regression shows here as a number. *failed/op* are calls that returned an error, \
             mostly `EAGAIN` from a read with nothing to read; *other* sums the calls past the six \
             most frequent. No CPU time is taken from this pass: tracing slows a server far more \
             than it costs untraced.\n"
        );
        md_grid(&mut out, &SYSCALL_HEADER.map(str::to_owned), &sys_rows);
        out.push('\n');
    }
    if !ctx.notes.is_empty() {
        let _ = writeln!(out, "{}", ctx.notes.trim_end());
    }
    out
}

/// A markdown table: two left-aligned columns, the rest right-aligned.
fn md_grid(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(header.len() - 2));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLORS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

/// A grouped horizontal bar chart: one panel per request/response scenario
/// (broadcast scenarios are left out), top row server CPU µs/op, bottom row
/// rate; each bar labelled with its value and ratio.
pub fn svg(raw: &[Record], baseline: &str) -> String {
    let (timed, _) = split(raw);
    let mut agg = aggregate(&timed);
    agg.retain(|r| !is_fanout(&r.scenario));
    let records = agg.as_slice();
    let scenarios = scenarios(records);
    let mut servers: Vec<String> = Vec::new();
    for r in records {
        if !servers.contains(&r.server) {
            servers.push(r.server.clone());
        }
    }
    let label_w = 130.0;
    let panel_w = 300.0;
    let gap = 20.0;
    let bar_h = 18.0;
    let bar_gap = 6.0;
    let title_h = 52.0;
    let panel_title_h = 24.0;
    let panel_h = panel_title_h + servers.len() as f64 * (bar_h + bar_gap) + 10.0;
    let width = label_w + scenarios.len() as f64 * (panel_w + gap) + 10.0;
    let height = title_h + 2.0 * (panel_h + 16.0) + 10.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">WebSocket echo servers: server CPU per operation and rate</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="40" fill="#555">server pinned to one core; ratios vs {} (CPU/op: lower is better, rate: higher is better)</text>"##,
        esc(baseline)
    );

    type Metric = fn(&Record) -> Option<f64>;
    let metrics: [(&str, Metric, usize); 2] = [
        ("CPU µs/op", |r| r.cpu_us_per_op, 2),
        ("ops/s", |r| Some(r.rate_per_s), 0),
    ];
    for (row, (unit, metric, decimals)) in metrics.into_iter().enumerate() {
        let y0 = title_h + row as f64 * (panel_h + 16.0);
        for (i, server) in servers.iter().enumerate() {
            let y = y0 + panel_title_h + i as f64 * (bar_h + bar_gap) + bar_h * 0.75;
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{y:.1}" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                esc(server)
            );
        }
        for (p, scenario) in scenarios.iter().enumerate() {
            let x0 = label_w + p as f64 * (panel_w + gap);
            let _ = writeln!(
                s,
                r#"<text x="{x0:.1}" y="{:.1}" font-weight="bold">{} — {}</text>"#,
                y0 + 16.0,
                esc(scenario),
                unit
            );
            let values: Vec<Option<f64>> = servers
                .iter()
                .map(|srv| find(records, srv, scenario).and_then(metric))
                .collect();
            let base = base_of(records, baseline, scenario).and_then(metric);
            let max = values.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
            let scale = if max > 0.0 {
                (panel_w - 110.0) / max
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                r##"<line x1="{x0:.1}" y1="{:.1}" x2="{x0:.1}" y2="{:.1}" stroke="#999"/>"##,
                y0 + panel_title_h - 2.0,
                y0 + panel_h - 8.0
            );
            for (i, v) in values.iter().enumerate() {
                let y = y0 + panel_title_h + i as f64 * (bar_h + bar_gap);
                let Some(v) = *v else {
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" fill="#999">not measured</text>"##,
                        x0 + 4.0,
                        y + bar_h * 0.75
                    );
                    continue;
                };
                let w = (v * scale).max(1.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h}" fill="{}"><title>{} {}: {v:.3} {}</title></rect>"#,
                    COLORS[i % COLORS.len()],
                    esc(&servers[i]),
                    esc(scenario),
                    unit
                );
                let label = match ratio(Some(v), base) {
                    Some(r) => format!("{v:.decimals$} ({r:.2}x)"),
                    None => format!("{v:.decimals$}"),
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
                    x0 + w + 4.0,
                    y + bar_h * 0.75
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(server: &str, scenario: &str, rate: f64, cpu: f64) -> Record {
        Record {
            server: server.into(),
            scenario: scenario.into(),
            conns: 16,
            message_bytes: 64,
            window_s: 1.0,
            ops: rate as u64,
            errors: 0,
            rate_per_s: rate,
            p50_us: Some(10.0),
            p99_us: Some(20.0),
            cpu_us_per_op: Some(cpu),
            server_cpu_pct: Some(90.0),
            server_rss_kib: Some(1000),
            client_cpu_pct: Some(100.0),
            ..Record::default()
        }
    }

    #[test]
    fn each_scenario_takes_the_first_baseline_it_has() {
        let mut d = rec("ws-edge", "deflate-json", 100.0, 300.0);
        d.server_wire_bytes_per_op = Some(9000.0);
        d.client_wire_bytes_per_op = Some(9500.0);
        let records = vec![
            rec("base", "echo64", 1000.0, 4.0),
            rec("ws-edge", "echo64", 500.0, 6.0),
            rec("node", "deflate-json", 100.0, 200.0),
            d,
        ];
        let rows = rows(&records, "base,node");
        let r = rows
            .iter()
            .find(|r| r[0] == "deflate-json" && r[1] == "ws-edge")
            .unwrap();
        assert_eq!(r[6], "1.50x");
        assert_eq!(r[11], "9000, 9500");
        let r = rows
            .iter()
            .find(|r| r[0] == "echo64" && r[1] == "ws-edge")
            .unwrap();
        assert_eq!(r[6], "1.50x");
        assert_eq!(r[11], "-");
    }

    #[test]
    fn ratios_are_relative_to_the_baseline_of_the_same_scenario() {
        let records = vec![
            rec("base", "echo64", 1000.0, 4.0),
            rec("other", "echo64", 500.0, 6.0),
            rec("base", "handshake", 100.0, 50.0),
            rec("other", "handshake", 200.0, 25.0),
        ];
        let rows = rows(&records, "base");
        let other_echo = rows
            .iter()
            .find(|r| r[0] == "echo64" && r[1] == "other")
            .unwrap();
        assert_eq!(other_echo[6], "1.50x");
        assert_eq!(other_echo[7], "0.50x");
        let other_hs = rows
            .iter()
            .find(|r| r[0] == "handshake" && r[1] == "other")
            .unwrap();
        assert_eq!(other_hs[6], "0.50x");
        assert_eq!(other_hs[7], "2.00x");
    }

    #[test]
    fn rounds_are_reduced_to_medians_with_their_spread() {
        let records = vec![
            rec("a", "echo64", 100.0, 1.0),
            rec("b", "echo64", 10.0, 9.0),
            rec("a", "echo64", 300.0, 5.0),
            rec("a", "echo64", 200.0, 3.0),
        ];
        let agg = aggregate(&records);
        assert_eq!(agg.len(), 2);
        assert_eq!(agg[0].server, "a");
        assert_eq!(agg[0].cpu_us_per_op, Some(3.0));
        assert_eq!(agg[0].rate_per_s, 200.0);
        assert_eq!(agg[0].ops, 600);
        let rows = rows(&records, "a");
        assert_eq!(rows[0][8], "1.0-5.0 (3)");
        assert_eq!(rows[1][6], "3.00x");
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn broadcast_has_its_own_table_with_two_references() {
        let mut records = vec![
            rec("base", "echo64", 1000.0, 4.0),
            rec("base", "broadcast1k", 50_000.0, 6.0),
            rec("node", "broadcast1k", 50_000.0, 8.0),
            rec("edge", "broadcast1k", 50_000.0, 3.0),
        ];
        records[3].lost = Some(5);
        records[3].expected = Some(100);
        assert_eq!(rows(&records, "base").len(), 1);
        let fan = broadcast_rows(&records, "base", "node");
        assert_eq!(fan.len(), 3);
        let edge = fan.iter().find(|r| r[1] == "edge").unwrap();
        assert_eq!(edge[8], "0.50x");
        assert_eq!(edge[9], "0.38x");
        assert_eq!(edge[13], "5 of 100");
        assert_eq!(fan[0].len(), broadcast_header("base", "node").len());
        let svg = svg(&records, "base");
        assert!(!svg.contains("broadcast1k"));
    }

    #[test]
    fn crosshost_has_its_own_table() {
        let mut records = vec![
            rec("base", "echo64", 1000.0, 4.0),
            rec("edge", "broadcast100", 5_000.0, 3.0),
            rec("edge", "crosshost10", 10_000.0, 2.0),
        ];
        records[2].publisher_cpu_pct = Some(7.0);
        records[2].lost = Some(0);
        records[2].expected = Some(30_000);
        assert_eq!(rows(&records, "base").len(), 1);
        assert_eq!(broadcast_rows(&records, "base", "node").len(), 1);
        let cross = crosshost_rows(&records);
        assert_eq!(cross.len(), 1);
        assert_eq!(cross[0].len(), CROSSHOST_HEADER.len());
        assert_eq!(cross[0][9], "7");
        assert_eq!(cross[0][11], "0 of 30000");
        let text = text_table(&records, "base", "node");
        assert!(text.contains("publisher's host CPU %"));
        assert!(!svg(&records, "base").contains("crosshost10"));
    }

    #[test]
    fn missing_baseline_gives_no_ratio() {
        let rows = rows(&[rec("other", "echo64", 10.0, 1.0)], "base");
        assert_eq!(rows[0][6], "-");
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let records = vec![
            rec("a<b", "echo64", 10.0, 1.0),
            rec("c", "echo64", 20.0, 2.0),
        ];
        let svg = svg(&records, "c");
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
        assert_eq!(svg.matches("<rect").count(), 1 + 4);
    }
}
