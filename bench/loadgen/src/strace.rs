//! Counting a server's system calls over the measured window: `strace -c -f`
//! attached to the running server when the window opens and detached when
//! it closes. Counts do not move with the neighbours the way timings do, so
//! a regression shows up as a number.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How long `strace` may take to attach to every thread of the server.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);

/// System calls counted by `strace -c` over a window.
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    /// Calls of every kind.
    pub total: u64,
    /// Calls that returned an error (`EAGAIN` included).
    pub errors: u64,
    /// Calls per system call name.
    pub by_name: BTreeMap<String, u64>,
}

/// A running `strace -c -f -p PID`.
pub struct Tracer {
    child: Child,
    out: PathBuf,
}

impl Tracer {
    /// Attaches to every thread of `pid`; returns once `strace` says it is
    /// attached. The summary goes to `out`.
    pub fn attach(pid: u32, out: &Path) -> Result<Self> {
        let mut child = Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(out)
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start strace (is it installed?)")?;
        let stderr = child.stderr.take().context("strace's stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Forward the lines until strace exits, so its pipe never fills.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(ATTACH_TIMEOUT) {
                Ok(line) if line.contains("attached") => break,
                Ok(line) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "strace did not attach to PID {pid} within {ATTACH_TIMEOUT:?}: {}",
                        said.join("; ")
                    );
                }
            }
        }
        Ok(Tracer {
            child,
            out: out.to_owned(),
        })
    }

    /// Detaches (SIGINT, as Ctrl-C would) and reads the summary.
    pub fn finish(mut self) -> Result<Counts> {
        // SAFETY: kill(2) with a PID this process started and has not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        if rc != 0 {
            bail!("cannot signal strace: {}", std::io::Error::last_os_error());
        }
        self.child.wait().context("waiting for strace")?;
        let text = std::fs::read_to_string(&self.out)
            .with_context(|| format!("cannot read strace's summary {}", self.out.display()))?;
        parse(&text)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Only reached without `finish` (an error path): do not leave the
        // server traced.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses the table `strace -c` prints:
///
/// ```text
/// % time     seconds  usecs/call     calls    errors syscall
/// ------ ----------- ----------- --------- --------- ----------------
///  61.20    0.001234          12       100        40 recvfrom
/// ...
/// 100.00    0.002016           9       210        40 total
/// ```
///
/// The errors column is blank for calls that never failed.
pub fn parse(text: &str) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut total = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors], name
        if !(5..=6).contains(&fields.len()) || fields[0].parse::<f64>().is_err() {
            continue;
        }
        let calls: u64 = fields[3]
            .parse()
            .with_context(|| format!("strace summary line {line:?}"))?;
        let errors: u64 = if fields.len() == 6 {
            fields[4]
                .parse()
                .with_context(|| format!("strace summary line {line:?}"))?
        } else {
            0
        };
        let name = fields[fields.len() - 1];
        if name == "total" {
            total = Some((calls, errors));
        } else {
            counts.errors += errors;
            *counts.by_name.entry(name.to_owned()).or_default() += calls;
        }
    }
    counts.total = counts.by_name.values().sum();
    match total {
        Some((calls, errors)) if calls == counts.total && errors == counts.errors => Ok(counts),
        Some((calls, _)) => bail!(
            "strace summary: the rows add up to {} calls, its total says {calls}",
            counts.total
        ),
        None => bail!("no `total` row in strace's summary: {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_summary_with_and_without_errors() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 48.00    0.000480           4       100        25 recvfrom
 40.00    0.000400           4       100           sendto
 12.00    0.000120           3        40           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000           4       240        25 total
";
        let c = parse(text).unwrap();
        assert_eq!(c.total, 240);
        assert_eq!(c.errors, 25);
        assert_eq!(c.by_name["recvfrom"], 100);
        assert_eq!(c.by_name["epoll_wait"], 40);
        assert_eq!(c.by_name.len(), 3);
    }

    #[test]
    fn a_summary_without_total_or_with_a_wrong_one_is_an_error() {
        assert!(parse("").is_err());
        let wrong = " 50.00 0.1 1 10 recvfrom\n100.00 0.2 1 11 total\n";
        assert!(parse(wrong).is_err());
    }

    #[test]
    fn an_empty_window_is_zero_calls() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.000000           0         0           total\n";
        assert_eq!(parse(text).unwrap(), Counts::default());
    }
}
