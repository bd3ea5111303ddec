//! Guests that panic, loop forever or exhaust their memory end only their
//! own connection: 500 before the upgrade, close 1011 after it, while other
//! connections on the same server keep echoing; the host names the kind of
//! each failure.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use ws_edge_host::{FailureKind, Limits};

use crate::common::*;

/// Runs the fault drill for a component (a path, one of the `programs`
/// constants) whose text message `trigger` and path `/<trigger>` misbehave,
/// failing with `kind`.
async fn drill(component: &str, trigger: &str, limits: Limits, kind: FailureKind) {
    let server = TestServer::start(component, limits).await;

    let mut bystander = connect(&server.url("/")).await;
    assert_echo(&mut bystander, "before").await;

    // After the upgrade: the connection is closed with 1011.
    let mut victim = connect(&server.url("/")).await;
    assert_echo(&mut victim, "fine so far").await;
    victim
        .send(Message::text(trigger))
        .await
        .expect("send trigger");
    expect_close(&mut victim, 1011).await;

    assert_echo(&mut bystander, "still here").await;

    // In the handshake: the request is answered with 500.
    let (r, _) = raw_exchange(server.addr, &upgrade_request(&format!("/{trigger}"), "")).await;
    assert_eq!(r.status, 500, "{r:?}");

    assert_echo(&mut bystander, "and still here").await;
    // Both failures were of the expected kind, and nothing else failed.
    for k in FailureKind::ALL {
        let want = if k == kind { 2 } else { 0 };
        assert_eq!(
            server.monitor.guest_failures(k),
            want,
            "failures of kind {k}"
        );
    }
    // A new connection gets a fresh instance.
    let mut fresh = connect(&server.url("/")).await;
    assert_echo(&mut fresh, "new instance").await;
    // Clients that go away let the shutdown finish at once (an unpolled
    // client would leave the server waiting for its close reply).
    drop((bystander, victim, fresh));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_guest_ends_only_its_connection() {
    drill(
        programs::GUEST_PANIC,
        "panic",
        test_limits(),
        FailureKind::Trap,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_guest_is_stopped_by_the_cpu_deadline() {
    let limits = Limits {
        cpu_deadline: Duration::from_millis(50),
        ..test_limits()
    };
    drill(
        programs::GUEST_SPIN,
        "spin",
        limits,
        FailureKind::CpuDeadline,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_stopped_by_the_memory_cap() {
    let limits = Limits {
        memory_per_connection: 16 << 20,
        ..test_limits()
    };
    drill(programs::GUEST_HOG, "hog", limits, FailureKind::MemoryCap).await;
}

/// A client that sends but never reads: the host stops reading from it once
/// a write blocks (backpressure), and drops it after the write timeout, while
/// another client keeps echoing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_is_dropped_after_the_write_timeout() {
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let server = TestServer::start(programs::ECHO, limits).await;
    let mut bystander = connect(&server.url("/")).await;

    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);
    let frame = client_frame(true, 0x2, &vec![0x5a; 60 * 1024]);
    // 4 000 frames (240 MiB) is far more than the server can have queued
    // before the write timeout drops us.
    let cut_off = write_until_dropped(&mut stream, &frame).await;
    assert!(
        cut_off.is_some(),
        "the server kept reading 4000 frames without us reading"
    );

    assert_echo(&mut bystander, "unaffected").await;
    drop(bystander);
    server.shutdown().await;
}

/// Guest stdout/stderr goes to the host's log; writing to it is an ordinary,
/// non-blocking WASI call (the host replaces wasmtime-wasi's blocking stream
/// functions, which cannot run on a tokio worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_stderr_is_served_without_blocking() {
    let server = TestServer::start(programs::GUEST_PANIC, test_limits()).await;
    let mut ws = connect(&server.url("/")).await;
    for _ in 0..3 {
        ws.send(Message::text("stderr")).await.expect("send");
        match next_message(&mut ws).await {
            Message::Text(t) => assert_eq!(t.as_str(), "wrote to stderr"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_echo(&mut ws, "still echoing").await;
    drop(ws);
    server.shutdown().await;
}
