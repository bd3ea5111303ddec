//! Python `websockets` (from the venv `make test` creates) against the echo
//! component.

use std::process::Stdio;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client() {
    let python = workspace().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test` (or `python3 -m venv .venv && \
         .venv/bin/pip install websockets`) to install the Python client",
        python.display()
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/client.py");
    let server = TestServer::echo().await;
    let output = tokio::time::timeout(
        STEP,
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg(server.url("/"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python client finishes in time")
    .expect("python runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'websockets'"),
        "the venv lacks `websockets`: run `make test` or `.venv/bin/pip install websockets`"
    );
    assert!(output.status.success(), "python client failed:\n{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    server.shutdown().await;
}
