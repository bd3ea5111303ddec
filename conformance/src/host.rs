//! The host under test: started from the command template with one
//! component on a free loopback port, watched, signalled and stopped.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// Lines of the host's output kept for a failure report.
const TAIL_LINES: usize = 15;

/// A running host process.
pub struct Host {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// A free loopback port (bound and released; the host binds it next).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Keeps the last [`TAIL_LINES`] lines of `stream` (the host's stdout or
/// stderr), reading it to the end so the host never blocks on a full pipe.
fn drain(stream: impl AsyncRead + Unpin + Send + 'static, tail: Arc<Mutex<VecDeque<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = strip_ansi(&String::from_utf8_lossy(&line[..line.len().min(400)]));
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text.trim_end().to_owned());
                }
            }
        }
    });
}

/// `text` without terminal escape sequences (colours in log lines).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Host {
    /// Starts `template` with `{port}` and `{component}` replaced, and
    /// waits until the port accepts connections (at most `wait`).
    pub async fn start(template: &str, component: &Path, wait: Duration) -> Result<Host, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let command = template
            .replace("{port}", &port.to_string())
            .replace("{component}", &component.display().to_string());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it stops whatever it
            // started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run `{command}`: {e}"))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            drain(out, tail.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, tail.clone());
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut host = Host { child, addr, tail };
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(status)) = host.child.try_wait() {
                return Err(format!(
                    "`{command}` exited before serving ({status}){}",
                    host.tail()
                ));
            }
            if let Ok(Ok(_probe)) =
                timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
            {
                return Ok(host);
            }
            if Instant::now() > deadline {
                host.stop().await;
                return Err(format!(
                    "`{command}` did not listen on {addr} within {}s{}",
                    wait.as_secs(),
                    host.tail()
                ));
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the host's output, for a failure report.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            return String::new();
        }
        let lines: Vec<String> = tail.iter().map(|l| format!("\n      | {l}")).collect();
        format!("\n      host output (last lines):{}", lines.concat())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`TERM`, `INT`) to the host process.
    pub async fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.child.id().ok_or("the host has exited")?;
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .await
            .map_err(|e| format!("kill: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -s {signal} {pid}: {status}"))
        }
    }

    /// Waits up to `wait` for the host to exit.
    pub async fn exited(&mut self, wait: Duration) -> bool {
        timeout(wait, self.child.wait()).await.is_ok()
    }

    /// Kills the host's process group and reaps the host.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-s")
                .arg("KILL")
                .arg("--")
                .arg(format!("-{pid}"))
                .status()
                .await;
        }
        let _ = self.child.start_kill();
        let _ = timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
