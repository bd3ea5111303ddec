//! Instance reuse (`Limits::instance_reuse`): off by default (one fresh
//! instance per connection); when on, an instance serves at most that many
//! connections one after another, and never again after a failed call or
//! once its memory grew past `REUSE_MAX_MEMORY`.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use ws_edge_host::{Limits, REUSE_MAX_MEMORY};

use crate::common::*;

fn reuse(n: u32) -> Limits {
    Limits {
        instance_reuse: n,
        ..test_limits()
    }
}

/// Closes cleanly and waits for the end of the stream: by then the host has
/// handed the instance back (it does so before closing the socket).
async fn close_and_wait(mut ws: Client) {
    ws.close(None).await.expect("close");
    loop {
        match tokio::time::timeout(STEP, ws.next()).await {
            Ok(Some(Ok(_))) => continue,
            Ok(None | Some(Err(_))) => return,
            Err(_) => panic!("the server did not close the connection in time"),
        }
    }
}

/// One connection: echo `text`, close.
async fn echo_once(server: &TestServer, text: &str) {
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, text).await;
    close_and_wait(ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_gets_a_fresh_instance_by_default() {
    let server = TestServer::echo().await;
    for i in 0..4 {
        echo_once(&server, &format!("connection {i}")).await;
    }
    assert_eq!(server.monitor.instances_created(), 4);
    server.shutdown().await;
}

/// Sends `text` and returns the text answer.
async fn ask(ws: &mut Client, text: &str) -> String {
    ws.send(Message::text(text)).await.expect("send");
    match next_message(ws).await {
        Message::Text(got) => got.as_str().to_owned(),
        other => panic!("expected a text answer to {text:?}, got {other:?}"),
    }
}

/// A pool slot gives its memory back between connections, or with
/// `warm_memory` keeps a small one resident and restores it in place
/// (docs/bench.md, "Instance lifetime"): either way the next connection in
/// the slot must see none of the previous one's data, one after another
/// and with several slots in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instance_sees_nothing_of_the_previous_connection() {
    // Slots that give their pages back, and slots that keep them resident
    // and restore them in place.
    for warm_memory in [0, 128 * 1024] {
        let limits = Limits {
            warm_memory,
            ..test_limits()
        };
        fresh_instances_see_nothing(limits).await;
    }
}

async fn fresh_instances_see_nothing(limits: Limits) {
    let server = TestServer::start(programs::GUEST_HOG, limits).await;
    for i in 0..6 {
        let mut ws = connect(&server.url("/")).await;
        assert_eq!(ask(&mut ws, "recall").await, "nothing", "connection {i}");
        assert_eq!(ask(&mut ws, &format!("remember:secret {i}")).await, "kept");
        assert_eq!(ask(&mut ws, "recall").await, format!("secret {i}"));
        close_and_wait(ws).await;
    }
    // Two open at once take two slots; then both slots are reused.
    for round in 0..2 {
        let mut a = connect(&server.url("/")).await;
        let mut b = connect(&server.url("/")).await;
        for ws in [&mut a, &mut b] {
            assert_eq!(ask(ws, "recall").await, "nothing", "round {round}");
            assert_eq!(ask(ws, "remember:x").await, "kept");
        }
        close_and_wait(a).await;
        close_and_wait(b).await;
    }
    assert_eq!(server.monitor.instances_created(), 10);
    server.shutdown().await;
}

/// With `warm_memory`, the free slots together keep at most `warm_pool`
/// resident: after a burst of connections closes, the epoch thread gives
/// the excess back within a few ticks; under a cap above what they hold,
/// they keep it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_slots_keep_no_more_resident_than_the_warm_pool() {
    const SLOT: usize = 128 * 1024;
    const BURST: usize = 12;
    for cap in [2 * SLOT, 64 << 20] {
        let limits = Limits {
            warm_memory: SLOT,
            warm_pool: cap,
            ..test_limits()
        };
        let server = TestServer::start(programs::ECHO, limits).await;
        // Open at once, they take a slot each.
        let mut open = Vec::new();
        for _ in 0..BURST {
            open.push(connect(&server.url("/")).await);
        }
        for ws in open {
            close_and_wait(ws).await;
        }
        // A few epoch ticks (10 ms each) for the instances to go and the
        // trim to run.
        let mut resident = server.monitor.warm_pool_resident();
        for _ in 0..100 {
            if server.monitor.instances_alive() == 0 && resident <= cap {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            resident = server.monitor.warm_pool_resident();
        }
        assert_eq!(server.monitor.instances_alive(), 0);
        let released = server.monitor.warm_pool_released();
        if cap < BURST * SLOT {
            assert!(
                resident <= cap,
                "{resident} bytes resident over a {cap}-byte cap"
            );
            assert!(
                released >= ((BURST - 2) * SLOT) as u64,
                "only {released} bytes given back"
            );
        } else {
            assert!(
                resident >= BURST * SLOT,
                "{resident} bytes resident: the free slots gave memory back under the cap"
            );
            assert_eq!(released, 0);
        }
        // The slots still serve.
        echo_once(&server, "after").await;
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_serves_at_most_instance_reuse_connections() {
    let server = TestServer::start(programs::ECHO, reuse(3)).await;
    for i in 0..7 {
        echo_once(&server, &format!("connection {i}")).await;
    }
    // 3 + 3 + 1 connections.
    assert_eq!(server.monitor.instances_created(), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_handshakes_hand_their_instance_on() {
    let server = TestServer::start(programs::ECHO, reuse(100)).await;
    // No Sec-WebSocket-Key: the component answers 400.
    let head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    for _ in 0..3 {
        let (response, _stream) = raw_exchange(server.addr, head).await;
        assert_eq!(response.status, 400);
    }
    echo_once(&server, "after three rejections").await;
    assert_eq!(server.monitor.instances_created(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_trapped_is_never_reused() {
    let server = TestServer::start(programs::GUEST_PANIC, reuse(100)).await;
    echo_once(&server, "first").await;

    // The second connection gets the first one's instance and makes it panic.
    let mut ws = connect(&server.url("/")).await;
    ws.send(Message::text("panic")).await.expect("send");
    expect_close(&mut ws, 1011).await;
    drop(ws);

    // The third gets a fresh instance, which then serves the fourth.
    echo_once(&server, "third").await;
    echo_once(&server, "fourth").await;
    assert_eq!(server.monitor.instances_created(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_memory_grew_is_not_kept() {
    // The echo's limits raised through its configuration so that one message
    // grows the instance past REUSE_MAX_MEMORY.
    let server = TestServer::start_with_env(
        programs::ECHO,
        reuse(100),
        raised_limits(2 * REUSE_MAX_MEMORY),
    )
    .await;
    let mut ws = connect(&server.url("/")).await;
    let big = vec![0x5a_u8; REUSE_MAX_MEMORY + (1 << 20)];
    ws.send(Message::binary(big.clone())).await.expect("send");
    match next_message(&mut ws).await {
        Message::Binary(got) => assert!(got[..] == big[..], "echo differs"),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    close_and_wait(ws).await;

    echo_once(&server, "second").await;
    echo_once(&server, "third").await;
    // The first instance grew past the limit and was dropped; the second
    // served the third connection too.
    assert_eq!(server.monitor.instances_created(), 2);
    server.shutdown().await;
}
