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

/// An empty component: the component preamble and nothing else.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// Writes `bytes` to a file of its own under the target directory.
fn component_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write component");
    path
}

#[test]
fn a_component_without_ws_edge_exports_names_the_likely_cause() {
    let path = component_file("empty.wasm", EMPTY_COMPONENT);
    let output = std::process::Command::new(BIN)
        .arg("serve")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("ws-edge runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exports nothing"), "{stderr}");
    assert!(
        stderr.contains("ws_edge_guest::export_handler!(YourHandler);"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "never listening");
}

#[test]
fn logs_have_no_colour_when_stderr_is_not_a_terminal() {
    let path = component_file("empty-for-colour.wasm", EMPTY_COMPONENT);
    let output = std::process::Command::new(BIN)
        .arg("serve")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .output()
        .expect("ws-edge runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The start-up lines (memory budget, open files) come before the error.
    assert!(stderr.contains("memory budget"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "ANSI escapes in {stderr:?}");
}

#[test]
fn run_refuses_a_component_that_is_not_a_command() {
    let path = component_file("empty-for-run.wasm", EMPTY_COMPONENT);
    let output = std::process::Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--some-test-flag")
        .output()
        .expect("ws-edge runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a command component"), "{stderr}");
}

#[test]
fn new_writes_a_project_and_refuses_to_overwrite() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-new");
    let _ = std::fs::remove_dir_all(&dir);
    let project = dir.join("my-handler");
    let status = std::process::Command::new(BIN)
        .args(["new", "my-handler", "--path"])
        .arg(&project)
        .stdout(Stdio::null())
        .status()
        .expect("ws-edge runs");
    assert!(status.success());
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"my-handler\""), "{manifest}");
    let config = std::fs::read_to_string(project.join(".cargo/config.toml")).expect("config");
    assert!(config.contains("target = \"wasm32-wasip2\""), "{config}");
    let lib = std::fs::read_to_string(project.join("src/lib.rs")).expect("lib.rs");
    assert!(lib.contains("export_handler!(App)"), "{lib}");

    let again = std::process::Command::new(BIN)
        .args(["new", "my-handler", "--path"])
        .arg(&project)
        .output()
        .expect("ws-edge runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let bad = std::process::Command::new(BIN)
        .args(["new", "9 lives"])
        .output()
        .expect("ws-edge runs");
    assert!(!bad.status.success());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
