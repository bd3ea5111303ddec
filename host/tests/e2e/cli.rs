//! The `ws-edge` binary: the `listening on` line, the bundled echo
//! component, `--help`, `--env`, and SIGTERM closing connections with 1001.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_ws-edge");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_address_and_exits_cleanly_on_sigterm() {
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ws-edge starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("listening line in time")
        .expect("read stdout")
        .expect("a line");
    let url = line
        .strip_prefix("listening on ws://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: std::net::SocketAddr = url.parse().expect("ip:port");
    assert_ne!(addr.port(), 0, "the real port is printed");

    // The bundled component is the echo example.
    let mut ws = connect(&format!("ws://{addr}/")).await;
    assert_echo(&mut ws, "bundled echo").await;

    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    expect_close(&mut ws, 1001).await;
    drop(ws);

    let exit = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("exits within the shutdown timeout")
        .expect("wait");
    assert!(exit.success(), "exit status {exit}");
    let rest = lines.next_line().await.expect("read stdout");
    assert_eq!(rest, None, "exactly one line on stdout");
}

#[test]
fn help_documents_every_flag_with_its_default() {
    let output = std::process::Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("ws-edge runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--max-connections",
        "--max-head-bytes",
        "--head-timeout",
        "--write-timeout",
        "--cpu-deadline-ms",
        "--memory-mib",
        "--shutdown-timeout",
        "--env",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(
        help.matches("[default: ").count() >= 8,
        "defaults shown:\n{help}"
    );
}

#[test]
fn env_without_equals_is_a_usage_error() {
    for bad in ["WS_EDGE_MAX_MESSAGE", "=4194304"] {
        let output = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--env", bad])
            .stdin(Stdio::null())
            .output()
            .expect("ws-edge runs");
        assert_eq!(output.status.code(), Some(2), "--env {bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("KEY=VALUE"), "--env {bad}:\n{stderr}");
        assert!(output.stdout.is_empty(), "nothing served for --env {bad}");
    }
}
