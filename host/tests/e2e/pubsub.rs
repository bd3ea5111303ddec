//! Rooms and broadcast: the publish/subscribe service components import,
//! with real clients, the admin endpoint, and two hosts bridged through a
//! real `nats-server` (installed by `scripts/test-deps.sh`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use ws_edge::Parsed;
use ws_edge::protocol::{FrameHeader, OpCode};
use ws_edge_host::{Limits, PubSubLimits, ServerBuilder};

use crate::common::*;

/// How long a test waits to be sure a message does *not* arrive.
const QUIET: Duration = Duration::from_millis(300);

/// Serves the chat example with `CHAT_DELIVERY=mode` and an admin listener.
async fn chat(mode: &str, configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
    let mode = mode.to_owned();
    TestServer::start_configured(programs::CHAT, test_limits(), move |b| {
        configure(
            b.env("CHAT_DELIVERY", mode)
                .admin_listen("127.0.0.1:0".parse().expect("address")),
        )
    })
    .await
}

/// Serves the pub/sub test component with `pubsub` limits.
async fn driver(pubsub: PubSubLimits) -> TestServer {
    TestServer::start_configured(programs::GUEST_PUBSUB, test_limits(), move |b| {
        b.pubsub_limits(pubsub)
    })
    .await
}

/// Sends a command to the test component and returns its answer.
async fn command(ws: &mut Client, cmd: &str) -> String {
    ws.send(Message::text(cmd)).await.expect("send");
    match next_message(ws).await {
        Message::Text(reply) => reply.as_str().to_owned(),
        other => panic!("expected an answer to {cmd:?}, got {other:?}"),
    }
}

/// The next text message.
async fn next_text(ws: &mut Client) -> String {
    match next_message(ws).await {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Asserts nothing arrives on `ws` for [`QUIET`].
async fn assert_quiet(ws: &mut Client, who: &str) {
    if let Ok(msg) = tokio::time::timeout(QUIET, ws.next()).await {
        panic!("{who} should have received nothing, got {msg:?}");
    }
}

/// `POST /publish?topic=T` with a text body, no token.
async fn admin_publish(server: &TestServer, topic: &str, text: &str) -> u32 {
    let admin = server.admin.expect("an admin listener");
    let target = format!("/publish?topic={topic}");
    let (status, body) = admin_request(
        admin,
        "POST",
        &target,
        &[("Content-Type", "text/plain")],
        text.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "admin publish: {body}");
    body.trim().parse().expect("a count")
}

/// Members in one room get each other's messages unchanged, the sender does
/// not get its own back, and other rooms get nothing.
async fn rooms_are_separate(mode: &str) {
    let server = chat(mode, |b| b).await;
    let mut alice = connect(&server.url("/rooms/lobby?name=alice")).await;
    let mut bob = connect(&server.url("/rooms/lobby?name=bob")).await;
    let mut carol = connect(&server.url("/rooms/lobby")).await;
    let mut dave = connect(&server.url("/rooms/kitchen")).await;

    alice
        .send(Message::text("hello, lobby"))
        .await
        .expect("send");
    assert_eq!(next_text(&mut bob).await, "hello, lobby");
    assert_eq!(next_text(&mut carol).await, "hello, lobby");
    bob.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    for member in [&mut alice, &mut carol] {
        match next_message(member).await {
            Message::Binary(data) => assert_eq!(&data[..], &[0u8, 1, 2, 255]),
            other => panic!("expected bob's binary message, got {other:?}"),
        }
    }
    // Nothing else is queued for the sender or the other room: the next
    // thing each sees is a marker published after everything above.
    assert_eq!(admin_publish(&server, "rooms.lobby", "marker").await, 3);
    assert_eq!(next_text(&mut alice).await, "marker");
    assert_eq!(next_text(&mut bob).await, "marker");
    assert_eq!(
        admin_publish(&server, "rooms.kitchen", "kitchen marker").await,
        1
    );
    assert_eq!(next_text(&mut dave).await, "kitchen marker");
    assert_quiet(&mut dave, "the other room").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_rooms_forward_mode() {
    rooms_are_separate("forward").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_rooms_handler_mode() {
    rooms_are_separate("handler").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_rejects_bad_rooms_before_joining() {
    let server = chat("forward", |b| b).await;
    for (path, status) in [
        ("/lobby", 404),
        ("/rooms/", 400),
        ("/rooms/a.b", 400),
        ("/rooms/%2A", 400),
    ] {
        let (response, _) = raw_exchange(server.addr, &upgrade_request(path, "")).await;
        assert_eq!(response.status, status, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_and_limits_hold() {
    let server = driver(PubSubLimits {
        max_subscriptions: 3,
        max_payload: 16,
        ..PubSubLimits::default()
    })
    .await;
    let mut ws = connect(&server.url("/")).await;
    for bad in ["", "a..b", "rooms.*", "rooms.>", "caf\u{e9}"] {
        let reply = command(&mut ws, &format!("sub {bad} forward")).await;
        assert!(reply.starts_with("err invalid-topic"), "{bad:?}: {reply}");
    }
    for topic in ["t1", "t2", "t3"] {
        assert_eq!(
            command(&mut ws, &format!("sub {topic} forward")).await,
            "ok"
        );
    }
    // Subscribing again changes the mode and does not count twice.
    assert_eq!(command(&mut ws, "sub t3 handler").await, "ok");
    let reply = command(&mut ws, "sub t4 forward").await;
    assert!(reply.starts_with("err limit"), "{reply}");
    assert_eq!(command(&mut ws, "unsub t1").await, "ok true");
    assert_eq!(command(&mut ws, "unsub t1").await, "ok false");
    assert_eq!(command(&mut ws, "sub t4 forward").await, "ok");

    let reply = command(&mut ws, "pub _announce hello").await;
    assert!(reply.starts_with("err denied"), "{reply}");
    // Reserved topics may be subscribed to (the operator publishes there).
    assert_eq!(command(&mut ws, "unsub t4").await, "ok true");
    assert_eq!(command(&mut ws, "sub _announce forward").await, "ok");
    let reply = command(&mut ws, "pub t2 0123456789abcdefX").await;
    assert!(reply.starts_with("err limit"), "{reply}");
    assert_eq!(command(&mut ws, "pub t2 0123456789abcdef").await, "ok 0");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_delivery_runs_the_subscribers_hook() {
    let server = driver(PubSubLimits::default()).await;
    let mut listener = connect(&server.url("/")).await;
    let mut forwarded = connect(&server.url("/sub/news")).await;
    let mut speaker = connect(&server.url("/")).await;
    assert_eq!(command(&mut listener, "sub news handler").await, "ok");
    assert_eq!(command(&mut speaker, "pub news extra").await, "ok 2");
    assert_eq!(next_text(&mut listener).await, "handler news extra");
    assert_eq!(next_text(&mut forwarded).await, "extra");
    assert_eq!(command(&mut speaker, "pubbin news raw").await, "ok 2");
    match next_message(&mut listener).await {
        Message::Binary(data) => assert_eq!(&data[..], b"handler:raw"),
        other => panic!("expected the transformed binary message, got {other:?}"),
    }
    match next_message(&mut forwarded).await {
        Message::Binary(data) => assert_eq!(&data[..], b"raw"),
        other => panic!("expected the binary message, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_guest_leaves_no_subscriptions() {
    let server = driver(PubSubLimits::default()).await;
    let mut doomed = connect(&server.url("/")).await;
    let mut speaker = connect(&server.url("/")).await;
    assert_eq!(command(&mut doomed, "sub topic.a forward").await, "ok");
    assert_eq!(command(&mut doomed, "sub topic.b handler").await, "ok");
    assert_eq!(command(&mut speaker, "pub topic.a before").await, "ok 1");
    assert_eq!(next_text(&mut doomed).await, "before");
    doomed.send(Message::text("panic")).await.expect("send");
    expect_close(&mut doomed, 1011).await;
    for topic in ["topic.a", "topic.b"] {
        assert_eq!(
            command(&mut speaker, &format!("pub {topic} after")).await,
            "ok 0"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_handshake_leaves_no_subscription() {
    let server = driver(PubSubLimits::default()).await;
    // The component subscribes while deciding, then rejects.
    let (response, _) =
        raw_exchange(server.addr, &upgrade_request("/sub-then-reject/gone", "")).await;
    assert_eq!(response.status, 403);
    assert!(
        response
            .header("X-WebSocket-Reject-Reason")
            .is_some_and(|r| r.contains("Ok(())")),
        "the subscription itself succeeded"
    );
    let mut speaker = connect(&server.url("/")).await;
    assert_eq!(command(&mut speaker, "pub gone after").await, "ok 0");
    // A bad topic is refused by the host, and the component says so.
    let (response, _) = raw_exchange(server.addr, &upgrade_request("/sub/a..b", "")).await;
    assert_eq!(response.status, 400);
    server.shutdown().await;
}

/// One upgraded raw TCP client with a tiny receive buffer that never reads.
async fn non_reader(addr: SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream
        .write_all(&upgrade_request(path, ""))
        .await
        .expect("write head");
    let response = read_response(&mut stream).await.expect("a response");
    assert_eq!(response.status, 101);
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_and_nobody_else_loses_anything() {
    const BURST: usize = 10_000;
    // Queues four times the defaults: the reading members share the two
    // cores with every other test, and must not be slow consumers
    // themselves; the stalled one still overflows (its 10 MB are far past
    // its socket buffers plus 4 MiB).
    let server = chat("forward", |b| {
        b.pubsub_limits(PubSubLimits {
            queue_messages: 4096,
            queue_bytes: 4 << 20,
            ..PubSubLimits::default()
        })
    })
    .await;
    let mut stalled = non_reader(server.addr, "/rooms/burst").await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        // Raw readers that parse frames from large reads: a reading client
        // must keep up with the publisher on the same two cores.
        let (response, mut stream) =
            raw_exchange(server.addr, &upgrade_request("/rooms/burst", "")).await;
        assert_eq!(response.status, 101);
        readers.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1 << 20);
            let mut got = 0usize;
            while got < BURST {
                let mut chunk = vec![0u8; 1 << 16];
                let n = tokio::time::timeout(STEP, stream.read(&mut chunk))
                    .await
                    .expect("data in time")
                    .expect("read");
                assert!(n > 0, "stream ended after {got} messages");
                buf.extend_from_slice(&chunk[..n]);
                let mut at = 0;
                while let Ok(Parsed::Complete { consumed, value }) = FrameHeader::parse(&buf[at..])
                {
                    let end = at + consumed + value.payload_len as usize;
                    if end > buf.len() {
                        break;
                    }
                    assert_eq!(value.opcode, OpCode::Text, "after {got} messages");
                    assert_eq!(
                        &buf[at + consumed..end],
                        burst_message(got).as_bytes(),
                        "in order, unchanged"
                    );
                    got += 1;
                    at = end;
                }
                buf.drain(..at);
            }
            got
        }));
    }
    let mut publisher = connect(&server.url("/rooms/burst")).await;
    for i in 0..BURST {
        publisher
            .feed(Message::text(burst_message(i)))
            .await
            .expect("send");
    }
    publisher.flush().await.expect("flush");
    for reader in readers {
        let got = tokio::time::timeout(STEP, reader)
            .await
            .expect("the readers get everything in time")
            .expect("reader task");
        assert_eq!(got, BURST);
    }
    assert_eq!(server.monitor.slow_consumers(), 1);
    // The stalled client is disconnected. (The host's 1008 close frame
    // follows only when no frame was half written; to a client that stopped
    // reading one always is.)
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(STEP, stalled.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the slow consumer was not disconnected"),
        }
    }
    server.shutdown().await;
}

/// The `i`th message of the burst: 1 000 bytes, numbered.
fn burst_message(i: usize) -> String {
    format!("{i:08}{}", "x".repeat(992))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_publishes_and_checks_its_token() {
    let server = chat("forward", |b| {
        b.admin_token("s3cret").pubsub_limits(PubSubLimits {
            max_payload: 32,
            ..PubSubLimits::default()
        })
    })
    .await;
    let admin = server.admin.expect("admin listener");
    let mut member = connect(&server.url("/rooms/news")).await;
    let target = "/publish?topic=rooms.news";
    let text = [("Content-Type", "text/plain; charset=utf-8")];

    let (status, _) = admin_request(admin, "GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200, "health needs no token");
    let (status, _) = admin_request(admin, "POST", target, &text, b"hi").await;
    assert_eq!(status, 401, "no token");
    let wrong = [("Authorization", "Bearer guess"), text[0]];
    let (status, _) = admin_request(admin, "POST", target, &wrong, b"hi").await;
    assert_eq!(status, 401, "wrong token");
    assert_quiet(&mut member, "a member, after refused publishes").await;

    let auth = ("Authorization", "Bearer s3cret");
    let (status, body) = admin_request(admin, "POST", target, &[auth, text[0]], b"hi").await;
    assert_eq!((status, body.trim()), (200, "1"));
    assert_eq!(next_text(&mut member).await, "hi");
    let octets = [("Content-Type", "application/octet-stream"), auth];
    let (status, _) = admin_request(admin, "POST", target, &octets, &[1, 2, 3]).await;
    assert_eq!(status, 200);
    match next_message(&mut member).await {
        Message::Binary(data) => assert_eq!(&data[..], &[1u8, 2, 3]),
        other => panic!("expected a binary message, got {other:?}"),
    }
    let (status, body) = admin_request(admin, "POST", "/publish?topic=a..b", &[auth], b"x").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("empty token"), "{body}");
    let (status, _) = admin_request(admin, "POST", "/publish", &[auth], b"x").await;
    assert_eq!(status, 400, "no topic");
    let (status, body) = admin_request(admin, "POST", target, &[auth], &[b'x'; 33]).await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = admin_request(admin, "POST", target, &[auth, text[0]], &[0xff, 0xfe]).await;
    assert_eq!(status, 400, "text must be UTF-8");
    let (status, _) = admin_request(admin, "GET", target, &[auth], b"").await;
    assert_eq!(status, 405);
    // Operators may publish on reserved topics; components may not.
    let (status, body) =
        admin_request(admin, "POST", "/publish?topic=_announce", &[auth], b"x").await;
    assert_eq!((status, body.trim()), (200, "0"));
    assert_quiet(&mut member, "a member, after the refused publishes").await;
    server.shutdown().await;
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}

/// A `nats-server` on a free loopback port, killed on drop.
struct Nats {
    port: u16,
    child: Option<Child>,
}

impl Nats {
    async fn start() -> Nats {
        let mut nats = Nats {
            port: free_port(),
            child: None,
        };
        nats.restart().await;
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it accepts.
    async fn restart(&mut self) {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server runs (scripts/test-deps.sh installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start on port {}", self.port);
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }
}

/// Waits until `cond` holds, polling; panics after [`STEP`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends numbered probes from `from` until `to` receives one (subscription
/// interest takes a moment to reach NATS), then a final message that must
/// be the next thing `to` sees after any probes in flight.
async fn cross(from: &mut Client, to: &mut Client, last: &str) {
    let mut i = 0;
    loop {
        from.send(Message::text(format!("probe {i}")))
            .await
            .expect("send");
        i += 1;
        match tokio::time::timeout(Duration::from_millis(100), to.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.starts_with("probe") => break,
            Ok(other @ Some(_)) => panic!("unexpected {other:?}"),
            Ok(None) => panic!("stream ended"),
            Err(_) => assert!(i < 200, "no probe crossed the broker"),
        }
    }
    from.send(Message::text(last)).await.expect("send");
    loop {
        let got = next_text(to).await;
        if got == last {
            return;
        }
        assert!(got.starts_with("probe"), "unexpected {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_rooms_through_nats_and_survive_its_restart() {
    let mut nats = Nats::start().await;
    let url = nats.url();
    let a = chat("forward", |b| b.broker(url.clone())).await;
    let url = nats.url();
    let b = chat("handler", |b| b.broker(url.clone())).await;
    wait_until("both bridges connect", || {
        a.monitor.broker_connected() == Some(true) && b.monitor.broker_connected() == Some(true)
    })
    .await;

    let mut on_a = connect(&a.url("/rooms/lobby")).await;
    let mut local_a = connect(&a.url("/rooms/lobby")).await;
    let mut on_b = connect(&b.url("/rooms/lobby")).await;
    let mut other_b = connect(&b.url("/rooms/elsewhere")).await;

    cross(&mut on_a, &mut on_b, "a to b").await;
    // The local member got the same messages in the same order.
    loop {
        if next_text(&mut local_a).await == "a to b" {
            break;
        }
    }
    cross(&mut on_b, &mut on_a, "b to a").await;
    // Nobody else: the sender has nothing queued, nor has the other room.
    assert_eq!(admin_publish(&b, "rooms.elsewhere", "marker").await, 1);
    assert_eq!(next_text(&mut other_b).await, "marker");
    // Admin publications cross to the other host too.
    assert_eq!(admin_publish(&a, "rooms.lobby", "a marker").await, 2);
    for member in [&mut on_a, &mut local_a, &mut on_b] {
        loop {
            // Probes from on_b may still be in flight.
            let got = next_text(member).await;
            if got == "a marker" {
                break;
            }
            assert!(
                got.starts_with("probe") || got.ends_with(" to a"),
                "{got:?}"
            );
        }
    }

    // The broker goes away: local rooms keep working, cross-host
    // publications are counted as dropped.
    nats.kill().await;
    wait_until("the bridges notice", || {
        a.monitor.broker_connected() == Some(false)
    })
    .await;
    let dropped = a.monitor.bridge_dropped();
    for i in 0..5 {
        let text = format!("local {i}");
        on_a.send(Message::text(text.clone())).await.expect("send");
        loop {
            let got = next_text(&mut local_a).await;
            if got == text {
                break;
            }
            assert!(got.starts_with("probe") || got.contains("to"), "{got:?}");
        }
    }
    assert!(a.monitor.bridge_dropped() >= dropped + 5);

    // It comes back on the same port: cross-host delivery resumes by
    // itself.
    nats.restart().await;
    wait_until("both bridges reconnect", || {
        a.monitor.broker_connected() == Some(true) && b.monitor.broker_connected() == Some(true)
    })
    .await;
    cross(&mut on_a, &mut on_b, "after the restart").await;
    a.shutdown().await;
    b.shutdown().await;
    nats.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_does_not_stop_the_host() {
    // Nothing listens on this port.
    let port = free_port();
    let server = chat("forward", |b| b.broker(format!("nats://127.0.0.1:{port}"))).await;
    assert_eq!(server.monitor.broker_connected(), Some(false));
    let mut x = connect(&server.url("/rooms/r")).await;
    let mut y = connect(&server.url("/rooms/r")).await;
    x.send(Message::text("still local")).await.expect("send");
    assert_eq!(next_text(&mut y).await, "still local");
    assert!(server.monitor.bridge_dropped() >= 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_built_without_pubsub_still_serve() {
    // The echo component as built before pub/sub existed: it neither
    // imports `pubsub` nor exports `delivery`.
    let path = workspace().join("tests/fixtures/components/echo-0.2.0-before-pubsub.wasm");
    let server = TestServer::start_file(path, Limits { ..test_limits() }).await;
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, "plain").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_reports_readiness_and_metrics() {
    let server = chat("forward", |b| b).await;
    let admin = server.admin.expect("admin listener");
    let (status, body) = admin_request(admin, "GET", "/readyz", &[], b"").await;
    assert_eq!((status, body.trim()), (200, "ready"));
    let mut a = connect(&server.url("/rooms/m")).await;
    let mut b = connect(&server.url("/rooms/m")).await;
    for i in 0..3 {
        a.send(Message::text(format!("m{i}"))).await.expect("send");
        assert_eq!(next_text(&mut b).await, format!("m{i}"));
    }
    let (status, body) = admin_request(admin, "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    for line in [
        "ws_edge_open_connections 2",
        "ws_edge_instances_created_total 2",
        "ws_edge_pubsub_publications_total 3",
        "ws_edge_pubsub_deliveries_queued_total 3",
        "ws_edge_pubsub_slow_consumers_total 0",
        "ws_edge_guest_failures_total{kind=\"trap\"} 0",
    ] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    }
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker() {
    let port = free_port();
    let server = chat("forward", |b| b.broker(format!("nats://127.0.0.1:{port}"))).await;
    let admin = server.admin.expect("admin listener");
    let (status, body) = admin_request(admin, "GET", "/readyz", &[], b"").await;
    assert_eq!((status, body.trim()), (503, "broker not connected"));
    server.shutdown().await;
}

/// The handler's own hooks through the host: `on_open` speaks first, and a
/// handler timer is honoured through the transmit deadline alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_greets_and_handler_timers_fire() {
    let server = driver(PubSubLimits::default()).await;
    let mut ws = connect(&server.url("/greet")).await;
    assert_eq!(
        next_text(&mut ws).await,
        "hello",
        "greeting before any message"
    );

    let started = std::time::Instant::now();
    assert_eq!(command(&mut ws, "timer 150").await, "ok");
    assert_eq!(next_text(&mut ws).await, "timer 1");
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Periodic: rescheduled from on_timer, until cancelled.
    assert_eq!(command(&mut ws, "repeat 50").await, "ok");
    assert_eq!(next_text(&mut ws).await, "timer 2");
    assert_eq!(next_text(&mut ws).await, "timer 3");
    ws.send(Message::text("stop")).await.expect("send");
    // Any timer already queued may still arrive before the answer.
    loop {
        let text = next_text(&mut ws).await;
        if text == "ok" {
            break;
        }
        assert!(text.starts_with("timer "), "{text}");
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), next_text(&mut ws)).await;
    assert!(quiet.is_err(), "no timer after stop: {quiet:?}");

    // Without /greet nothing is sent first.
    let mut other = connect(&server.url("/")).await;
    assert_eq!(command(&mut other, "unsub nothing").await, "ok false");
    server.shutdown().await;
}
