//! Hostile clients, small versions of the drills in `host/examples/drills.rs`
//! (`make drills` runs the full-size ones): each runs while a bystander
//! keeps echoing, and checks that the live-connection count comes back down.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_edge_host::{Limits, Monitor};

use crate::common::*;

/// Waits (bounded by [`STEP`]) until at most `n` connections are live.
async fn live_drops_to(monitor: &Monitor, n: usize) {
    let until = Instant::now() + STEP;
    while monitor.live_connections() > n {
        assert!(
            Instant::now() < until,
            "{} connections still live, expected {n}",
            monitor.live_connections()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Status code of a raw response that the server ends by closing.
async fn status_until_close(stream: &mut TcpStream) -> Option<u16> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(STEP, stream.read_to_end(&mut out))
        .await
        .expect("the server closes in time");
    if read.is_err() && out.is_empty() {
        return None;
    }
    std::str::from_utf8(out.split(|&b| b == b'\r').next()?)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// Slowloris: 20 clients trickle a head a byte every 100 ms; each gets 408
/// once the head timeout (600 ms) has passed, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_get_408_at_the_head_timeout() {
    let head_timeout = Duration::from_millis(600);
    let limits = Limits {
        head_timeout,
        ..test_limits()
    };
    let server = TestServer::start(programs::ECHO, limits).await;
    let mut bystander = connect(&server.url("/")).await;

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let t0 = Instant::now();
            let (mut rd, mut wr) = stream.into_split();
            let head = upgrade_request("/", "");
            let trickle = async {
                for b in head {
                    if wr.write_all(&[b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            let mut out = Vec::new();
            tokio::select! {
                _ = rd.read_to_end(&mut out) => {}
                () = trickle => panic!("the whole head went out without an answer"),
            }
            (out, t0.elapsed())
        }));
    }
    assert_echo(&mut bystander, "during slowloris").await;
    for t in tasks {
        let (out, after) = tokio::time::timeout(STEP, t)
            .await
            .expect("in time")
            .expect("client task");
        assert!(
            out.starts_with(b"HTTP/1.1 408 "),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(after >= head_timeout, "408 after only {after:?}");
    }
    assert_echo(&mut bystander, "after slowloris").await;
    live_drops_to(&server.monitor, 1).await;
    drop(bystander);
    server.shutdown().await;
}

/// 20 concurrent requests with 64 KiB of headers each get 431 (the host
/// stops buffering after `max_head_bytes` and drains the rest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_get_431() {
    let server = TestServer::echo().await;
    let mut bystander = connect(&server.url("/")).await;
    let mut extra = String::new();
    while extra.len() < 64 * 1024 {
        extra.push_str(&format!("X-Flood-{}: {}\r\n", extra.len(), "a".repeat(500)));
    }
    let request = upgrade_request("/", &extra);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let addr = server.addr;
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            // The server may answer (and close) before it has read it all.
            let _ = stream.write_all(&request).await;
            status_until_close(&mut stream).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("client task"), Some(431));
    }
    assert_echo(&mut bystander, "after the flood").await;
    live_drops_to(&server.monitor, 1).await;
    drop(bystander);
    server.shutdown().await;
}

/// 400 clients vanish mid-handshake or mid-frame, with a FIN or a reset:
/// every one of their connections ends, the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanishing_clients_leave_no_live_connections() {
    let server = TestServer::echo().await;
    let mut bystander = connect(&server.url("/")).await;
    let head = upgrade_request("/", "");
    let half_frame = client_frame(true, 0x2, &[9u8; 1000]);
    for i in 0..400 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        if i % 2 == 0 {
            stream.write_all(&head[..30]).await.expect("write");
        } else {
            stream.write_all(&head).await.expect("write");
            let r = read_response(&mut stream).await.expect("a response");
            assert_eq!(r.status, 101);
            stream.write_all(&half_frame[..300]).await.expect("write");
        }
        if i % 4 >= 2 {
            // SO_LINGER 0: the close sends a reset.
            #[allow(deprecated, reason = "set_linger is the way to get a reset on close")]
            stream.set_linger(Some(Duration::ZERO)).expect("linger");
        }
        drop(stream);
    }
    live_drops_to(&server.monitor, 1).await;
    assert_echo(&mut bystander, "after 400 vanished clients").await;
    drop(bystander);
    server.shutdown().await;
}

/// A client floods pings and never reads: automatic pongs cannot pile up in
/// the host (it writes each batch before reading more), so the flooder's
/// writes stall and the write timeout drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_without_reading_is_cut_off() {
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let server = TestServer::start(programs::ECHO, limits).await;
    let mut bystander = connect(&server.url("/")).await;

    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);
    let mut chunk = Vec::new();
    while chunk.len() < 60 * 1024 {
        chunk.extend(client_frame(true, 0x9, &[b'p'; 125]));
    }
    // 4 000 chunks (240 MiB) is far beyond what the socket buffers hold.
    let cut_off = write_until_dropped(&mut stream, &chunk).await;
    assert!(
        cut_off.is_some(),
        "the server took 4000 chunks of pings unread"
    );

    assert_echo(&mut bystander, "unaffected by the ping flood").await;
    live_drops_to(&server.monitor, 1).await;
    drop(bystander);
    server.shutdown().await;
}

/// `Server::serve_unix` (the whole-host fuzz target's entry point) serves a
/// socket pair with the same code as TCP: handshake, echo, live count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_pair_is_served_like_tcp() {
    let server = ws_edge_host::Server::builder()
        .component_file(programs::ECHO)
        .listen("127.0.0.1:0".parse().expect("address"))
        .limits(test_limits())
        .bind()
        .await
        .expect("server binds");
    let monitor = server.monitor();
    let (mut client, served) = tokio::net::UnixStream::pair().expect("socket pair");
    let task = tokio::spawn(server.serve_unix(served, "198.51.100.7:5555".parse().expect("peer")));
    assert_eq!(monitor.live_connections(), 1);

    let mut input = upgrade_request("/", "");
    input.extend(client_frame(true, 0x1, b"over a socket pair"));
    input.extend(client_frame(true, 0x8, &1000u16.to_be_bytes()));
    client.write_all(&input).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(STEP, client.read_to_end(&mut out))
        .await
        .expect("the host closes in time")
        .expect("read");
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    let frames = &out[head_end..];
    // The text echo (unmasked, 18 bytes), then the close reply.
    assert_eq!(&frames[..2], &[0x81, 18]);
    assert_eq!(&frames[2..20], b"over a socket pair");
    assert_eq!(&frames[20..24], &[0x88, 2, 0x03, 0xe8]);
    tokio::time::timeout(STEP, task)
        .await
        .expect("the connection ends")
        .expect("no panic");
    assert_eq!(monitor.live_connections(), 0);
}
