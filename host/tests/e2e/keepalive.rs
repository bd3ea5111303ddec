//! The host drives the guest's timers even when the client says nothing: a
//! silent client is pinged and, if it never answers, dropped; a client that
//! answers the pings stays connected. The `guest_keepalive` component pings
//! after 200 ms of silence and drops 300 ms after an unanswered ping.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const OP_TEXT: u8 = 0x1;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Interval plus grace of the component: no drop can happen sooner.
const DROP_AFTER: Duration = Duration::from_millis(500);

#[tokio::test]
async fn silent_client_is_pinged_then_dropped() {
    let server = TestServer::start(programs::GUEST_KEEPALIVE, test_limits()).await;
    // Taken before the request is sent: the server's timers start later, so
    // no drop can come sooner than DROP_AFTER from here.
    let sent = Instant::now();
    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);

    // Nothing was sent after the head, yet the first deadline is honoured.
    let (fin, opcode, _) = read_server_frame(&mut stream).await;
    assert!(fin);
    assert_eq!(opcode, OP_PING, "the server pings a silent client");

    // No answer: the connection is dropped (1006, so no close frame) once
    // the grace period is over.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(STEP, stream.read_to_end(&mut rest))
        .await
        .expect("the server drops the silent client in time");
    assert!(
        end.is_err() || rest.is_empty(),
        "nothing but the end of the stream after the ping: {rest:?}"
    );
    assert!(sent.elapsed() >= DROP_AFTER, "dropped too early");
    server.shutdown().await;
}

#[tokio::test]
async fn answered_pings_keep_the_connection() {
    let server = TestServer::start(programs::GUEST_KEEPALIVE, test_limits()).await;
    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);
    let upgraded = Instant::now();

    // Answer pings (at least two) until more than interval + grace has
    // passed: unanswered, the connection would have been dropped by then.
    let mut answered = 0;
    while answered < 2 || upgraded.elapsed() < DROP_AFTER {
        let (_, opcode, payload) = read_server_frame(&mut stream).await;
        assert_eq!(opcode, OP_PING);
        let pong = client_frame(true, OP_PONG, &payload);
        stream.write_all(&pong).await.expect("write pong");
        answered += 1;
    }

    let hello = client_frame(true, OP_TEXT, b"still here");
    stream.write_all(&hello).await.expect("write text");
    loop {
        let (_, opcode, payload) = read_server_frame(&mut stream).await;
        if opcode == OP_PING {
            continue; // a ping may cross our message
        }
        assert_eq!((opcode, payload.as_slice()), (OP_TEXT, &b"still here"[..]));
        break;
    }
    server.shutdown().await;
}
