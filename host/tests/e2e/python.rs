//! Python `websockets` (from the venv `make test` creates) against the echo
//! component.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client() {
    let server = TestServer::echo().await;
    let mut command = tokio::process::Command::new(venv_python());
    command.arg(script("client.py")).arg(server.url("/"));
    expect_ok(command, "python client", STEP).await;
    server.shutdown().await;
}
