//! `ws-edge-conformance`: the conformance kit for ws-edge hosts.
//!
//! Starts the host under test once per test component, from a command
//! template (`{port}` and `{component}` are replaced), drives it over
//! loopback TCP and checks the outcomes docs/hosting.md documents. Prints
//! `PASS`, `FAIL` or `SKIP` per case and a summary line; exits 1 if any
//! case failed, 2 on a usage error.
//!
//! ```text
//! ws-edge-conformance --host-cmd 'ws-edge serve --listen 127.0.0.1:{port} {component}' \
//!     --shutdown-signal TERM
//! ```

mod cases;
mod client;
mod host;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::time::timeout;

use crate::cases::{Ctx, SHUTDOWN_CASE, suites};
use crate::host::Host;

/// Runs the ws-edge host conformance cases against any host.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// How to start the host: a shell command in which `{port}` is replaced
    /// by a free loopback port and `{component}` by the path of a test
    /// component (`.wasm`). The host must serve that component on
    /// 127.0.0.1:{port}.
    #[arg(long, value_name = "TEMPLATE")]
    host_cmd: String,
    /// The directory holding the test components (`make conformance-guests`
    /// builds them there).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "target/guests/wasm32-wasip2/guest"
    )]
    components: PathBuf,
    /// The signal that makes the host shut down gracefully (`TERM` or
    /// `INT`). Without it the shutdown case is skipped.
    #[arg(long, value_name = "SIGNAL")]
    shutdown_signal: Option<String>,
    /// The host's request-head timeout in seconds (the 408 case waits this
    /// long plus 5 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    head_timeout: u64,
    /// Seconds the host may take from the shutdown signal to its exit.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    shutdown_timeout: u64,
    /// Seconds the host may take to start listening (compiling or
    /// transpiling the component included).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    start_timeout: u64,
    /// Skips a case, or every case of a group (`cpu-deadline`,
    /// `memory-cap`, `head-timeout`, ...), that the host does not claim to
    /// support. Repeatable. Skipped cases are reported as SKIP.
    #[arg(long, value_name = "CASE|GROUP")]
    skip: Vec<String>,
    /// Runs only the cases whose name contains this text (repeatable).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// A name for the host in the summary line.
    #[arg(long, default_value = "host")]
    name: String,
    /// Lists the cases with their group and outcome, and exits.
    #[arg(long)]
    list: bool,
}

/// Counts of results.
#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
    skip: usize,
}

impl Tally {
    fn report(&mut self, suite: &str, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.pass += 1;
                println!("PASS  {suite}/{name}");
            }
            Err(why) => {
                self.fail += 1;
                println!("FAIL  {suite}/{name}: {why}");
            }
        }
    }

    fn skip(&mut self, suite: &str, name: &str, why: &str) {
        self.skip += 1;
        println!("SKIP  {suite}/{name}: {why}");
    }
}

/// How long one case may take in all before it fails.
const CASE_LIMIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(signal) = &args.shutdown_signal
        && !matches!(signal.as_str(), "TERM" | "INT")
    {
        eprintln!("--shutdown-signal: TERM or INT, not {signal}");
        return ExitCode::from(2);
    }
    if args.list {
        for suite in suites() {
            for case in &suite.cases {
                println!("{:<28} {:<13} {}", case.name, case.group, case.what);
            }
        }
        println!(
            "{SHUTDOWN_CASE:<28} {:<13} with --shutdown-signal: open connections get close 1001, the host exits",
            "shutdown"
        );
        return ExitCode::SUCCESS;
    }
    let skipped = |name: &str, group: &str| args.skip.iter().any(|s| s == name || s == group);
    let selected = |name: &str| args.only.is_empty() || args.only.iter().any(|o| name.contains(o));
    let ctx_head_timeout = Duration::from_secs(args.head_timeout);
    let mut tally = Tally::default();

    for suite in suites() {
        let stem = suite.file.trim_end_matches(".wasm");
        let shutdown_here = suite.file == "echo.wasm" && selected(SHUTDOWN_CASE);
        let mut to_run = Vec::new();
        for case in suite.cases {
            if !selected(case.name) {
                continue;
            }
            if skipped(case.name, case.group) {
                tally.skip(stem, case.name, &format!("skipped ({})", case.group));
            } else {
                to_run.push(case);
            }
        }
        let run_shutdown =
            shutdown_here && args.shutdown_signal.is_some() && !skipped(SHUTDOWN_CASE, "shutdown");
        if to_run.is_empty() && !run_shutdown {
            if shutdown_here {
                tally.skip(stem, SHUTDOWN_CASE, "no --shutdown-signal");
            }
            continue;
        }
        let component = args.components.join(suite.file);
        if !component.is_file() {
            for case in &to_run {
                tally.report(
                    stem,
                    case.name,
                    Err(format!("no component {}", component.display())),
                );
            }
            continue;
        }
        let mut host = match Host::start(
            &args.host_cmd,
            &component,
            Duration::from_secs(args.start_timeout),
        )
        .await
        {
            Ok(host) => host,
            Err(why) => {
                for case in &to_run {
                    tally.report(stem, case.name, Err(format!("host did not start: {why}")));
                }
                continue;
            }
        };
        let ctx = Ctx {
            addr: host.addr,
            head_timeout: ctx_head_timeout,
        };
        // The cases of a suite run concurrently: each is also a bystander
        // of the others.
        let handles: Vec<_> = to_run
            .iter()
            .map(|case| tokio::spawn(timeout(CASE_LIMIT, (case.run)(ctx))))
            .collect();
        let mut failed = false;
        for (case, handle) in to_run.iter().zip(handles) {
            let result = match handle.await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(format!("did not finish within {}s", CASE_LIMIT.as_secs())),
                Err(e) => Err(format!("the case itself failed: {e}")),
            };
            failed |= result.is_err();
            tally.report(stem, case.name, result);
        }
        if !host.alive() {
            failed = true;
            tally.report(stem, "host-survives", Err("the host process exited".into()));
        }
        if shutdown_here {
            match &args.shutdown_signal {
                Some(signal) if run_shutdown => {
                    let result = shutdown(&mut host, signal, args.shutdown_timeout).await;
                    failed |= result.is_err();
                    tally.report(stem, SHUTDOWN_CASE, result);
                }
                Some(_) => tally.skip(stem, SHUTDOWN_CASE, "skipped (shutdown)"),
                None => tally.skip(stem, SHUTDOWN_CASE, "no --shutdown-signal"),
            }
        }
        if failed {
            let tail = host.tail();
            if !tail.is_empty() {
                println!("{}", tail.trim_start_matches('\n'));
            }
        }
        host.stop().await;
    }

    println!(
        "summary: {}: {} passed, {} failed, {} skipped",
        args.name, tally.pass, tally.fail, tally.skip
    );
    if tally.fail > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The shutdown case: close 1001 on an open connection, then the host exits.
async fn shutdown(host: &mut Host, signal: &str, limit: u64) -> Result<(), String> {
    let addr = host.addr;
    let signalled = async { host.signal(signal).await };
    let conn = timeout(CASE_LIMIT, cases::shutdown_1001(addr, signalled))
        .await
        .map_err(|_| "did not finish in time".to_owned())??;
    drop(conn);
    if !host.exited(Duration::from_secs(limit)).await {
        return Err(format!(
            "the host sent 1001 but had not exited {limit}s after the signal"
        ));
    }
    Ok(())
}
