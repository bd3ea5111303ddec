//! Starting a server under test and reading its CPU time from /proc.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// The line every server prints once bound: `listening on ws://ADDR`
/// (`wss://` when it serves TLS).
const READY_PREFIX: &str = "listening on ";

/// A server process started by the load generator, killed on drop.
pub struct Server {
    child: Child,
    /// `ws://ADDR` (or `wss://ADDR`) from the server's ready line.
    pub url: String,
}

impl Server {
    /// Starts `cmd` pinned to `cpu` (via `taskset -c`, which execs, so the
    /// PID is the server's), waits up to `ready_timeout` for the ready line
    /// on stdout or stderr, and sends everything else the server prints to
    /// `log` (or discards it).
    pub fn start(
        cmd: &[String],
        cpu: Option<&str>,
        log: Option<&Path>,
        ready_timeout: Duration,
    ) -> Result<Self> {
        let (program, args) = cmd.split_first().context("empty server command")?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start server {cmd:?}"))?;

        let log: Option<Box<dyn Write + Send>> = match log {
            Some(p) => Some(Box::new(
                File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            )),
            None => None,
        };
        let log = std::sync::Arc::new(std::sync::Mutex::new(log));
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr = child.stderr.take().context("no stderr")?;
        for pipe in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let tx = ready_tx.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                // Keep draining so a chatty server never blocks on a full pipe.
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = line.trim().strip_prefix(READY_PREFIX)
                        && (url.starts_with("ws://") || url.starts_with("wss://"))
                    {
                        let _ = tx.send(url.to_owned());
                    }
                    if let Ok(mut guard) = log.lock()
                        && let Some(w) = guard.as_mut()
                    {
                        let _ = writeln!(w, "{line}");
                    }
                }
            });
        }
        drop(ready_tx);

        match ready_rx.recv_timeout(ready_timeout) {
            Ok(url) => Ok(Self { child, url }),
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                match status {
                    Some(s) => bail!("server {cmd:?} exited ({s}) before printing its ready line"),
                    None => bail!(
                        "server {cmd:?} printed no `{READY_PREFIX}ws://ADDR` line within {ready_timeout:?}"
                    ),
                }
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Process-wide CPU time (user + system, all threads) of `pid`, in µs.
pub fn cpu_time_us(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) is parenthesised and may contain spaces, so
    // count fields from the last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) is 11, stime (15) 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) * 1_000_000 / clock_ticks_per_sec())
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Resident set size of `pid` in KiB, if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_kib(pid, "status", "VmRSS:")
}

/// Proportional set size of `pid`, KiB: resident memory with each shared
/// page divided among the mappings that share it. Differs from RSS when a
/// server maps one page many times, as wasmtime maps a component's memory
/// image copy-on-write into every instance's memory.
pub fn pss_kib(pid: u32) -> Option<u64> {
    proc_kib(pid, "smaps_rollup", "Pss:")
}

/// The `KEY  N kB` figure of `/proc/PID/FILE`, in KiB.
fn proc_kib(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The command name of `pid` (to confirm `taskset` exec'd the server).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Raises the soft limit on open files to the hard limit (a server started
/// from here inherits it). Returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
