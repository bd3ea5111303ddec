//! The opening handshake over raw TCP: malformed heads, limits, the demo
//! page, and the accept / reject decisions of the example components.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use ws_edge_host::Limits;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_heads_get_400_426_431() {
    let server = TestServer::echo().await;

    let (r, _) = raw_exchange(server.addr, b"HELLO THERE\r\n\r\n").await;
    assert_eq!(r.status, 400, "garbage request line: {r:?}");

    let no_key = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    let (r, _) = raw_exchange(server.addr, no_key).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.header("x-websocket-reject-reason").is_some(),
        "names the rule: {r:?}"
    );
    assert_eq!(r.header("connection"), Some("close"));

    let v7 = String::from_utf8(upgrade_request("/", ""))
        .expect("utf8")
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7");
    let (r, _) = raw_exchange(server.addr, v7.as_bytes()).await;
    assert_eq!(r.status, 426, "{r:?}");
    let versions = r
        .header("sec-websocket-version")
        .expect("advertises versions");
    assert!(versions.contains("13"), "{versions}");

    let not_get = String::from_utf8(upgrade_request("/", ""))
        .expect("utf8")
        .replacen("GET", "POST", 1);
    let (r, _) = raw_exchange(server.addr, not_get.as_bytes()).await;
    assert_eq!(r.status, 400, "{r:?}");

    // A head larger than 8 KiB: 431 from the host, before the guest is called.
    let big = upgrade_request("/", &format!("X-Filler: {}\r\n", "a".repeat(9000)));
    let (r, _) = raw_exchange(server.addr, &big).await;
    assert_eq!(r.status, 431, "{r:?}");

    // Just under the host's cap but over the component's field limits or
    // size: the guest answers with 431 as well.
    let many = upgrade_request("/", &"X-A: b\r\n".repeat(100));
    let (r, _) = raw_exchange(server.addr, &many).await;
    assert_eq!(r.status, 431, "too many fields: {r:?}");

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_head_and_early_frames() {
    let server = TestServer::echo().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = upgrade_request("/", "");
    for byte in &head[..head.len() - 1] {
        stream
            .write_all(std::slice::from_ref(byte))
            .await
            .expect("write");
    }
    // The last byte of the head and a first frame in one write: the frame
    // must reach the connection.
    let mut last = vec![head[head.len() - 1]];
    last.extend(client_frame(true, 0x1, b"early"));
    stream.write_all(&last).await.expect("write");
    let r = read_response(&mut stream).await.expect("response");
    assert_eq!(r.status, 101);
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!((opcode, &payload[..]), (0x1, &b"early"[..]));
    drop(stream);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_head_gets_408() {
    let limits = Limits {
        head_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let server = TestServer::start(programs::ECHO, limits).await;
    let (r, _) = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(r.status, 408, "{r:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_without_upgrade() {
    let server = TestServer::echo().await;
    let (r, _) = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    let body = String::from_utf8(r.body).expect("utf8 page");
    assert!(
        body.contains("new WebSocket("),
        "the page opens a WebSocket"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_demo_page_get_goes_to_the_component() {
    let server =
        TestServer::start_configured(programs::ECHO, test_limits(), |b| b.demo_page(false)).await;
    let (r, _) = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    // The component's validation answers: not a WebSocket upgrade.
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.header("x-websocket-reject-reason"),
        Some("Upgrade header must contain websocket")
    );
    assert!(
        r.header("content-type")
            .is_none_or(|t| !t.starts_with("text/html"))
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_component_answers_403_with_reason() {
    let server = TestServer::start(programs::REJECT, test_limits()).await;
    let (r, _) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.header("x-websocket-reject-reason"),
        Some("this endpoint accepts no WebSocket connections")
    );
    assert_eq!(r.body, b"WebSocket connections are not accepted here.\n");
    // Validation still comes first.
    let (r, _) = raw_exchange(server.addr, b"GET /ws HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 400, "{r:?}");
    server.shutdown().await;
}

fn chat_request(origin: Option<&str>, protocols: Option<&str>, auth: &str) -> Vec<u8> {
    let mut extra = String::new();
    if let Some(origin) = origin {
        extra.push_str(&format!("Origin: {origin}\r\n"));
    }
    if let Some(protocols) = protocols {
        extra.push_str(&format!("Sec-WebSocket-Protocol: {protocols}\r\n"));
    }
    extra.push_str(auth);
    upgrade_request("/chat", &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_auth_rejections() {
    let server = TestServer::start(programs::CHAT_AUTH, test_limits()).await;
    let good_origin = Some("http://localhost:8080");
    let cookie = "Cookie: theme=dark; chat_token=alice-secret\r\n";

    let cases: [(Vec<u8>, u16, &str); 5] = [
        (
            chat_request(Some("https://evil.example"), Some("chat.v2"), cookie),
            403,
            "origin not allowed",
        ),
        (
            chat_request(None, Some("chat.v2"), cookie),
            403,
            "origin not allowed",
        ),
        (
            chat_request(good_origin, Some("xmpp, mqtt"), cookie),
            400,
            "no supported subprotocol offered (chat.v2, chat.v1)",
        ),
        (
            chat_request(good_origin, Some("chat.v1"), ""),
            401,
            "missing or invalid token",
        ),
        (
            chat_request(good_origin, Some("chat.v1"), "Cookie: chat_token=wrong\r\n"),
            401,
            "missing or invalid token",
        ),
    ];
    for (request, status, reason) in cases {
        let (r, _) = raw_exchange(server.addr, &request).await;
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.header("x-websocket-reject-reason"), Some(reason), "{r:?}");
        assert_eq!(r.header("connection"), Some("close"));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_auth_accepts_with_cookie_or_token() {
    let server = TestServer::start(programs::CHAT_AUTH, test_limits()).await;

    // Raw: check the response headers the handler chose.
    let request = chat_request(
        Some("http://localhost:8080"),
        Some("mqtt, chat.v1, chat.v2"),
        "Cookie: chat_token=alice-secret\r\n",
    );
    let (r, _) = raw_exchange(server.addr, &request).await;
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(
        r.header("sec-websocket-protocol"),
        Some("chat.v2"),
        "server preference wins"
    );
    let set_cookie = r.header("set-cookie").expect("sets a cookie");
    assert!(set_cookie.starts_with("chat_user=alice"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert_eq!(r.header("x-chat-user"), Some("alice"));

    // tungstenite with the token in the query string.
    let mut req = server
        .url("/chat?token=bob-secret")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Origin", "https://chat.example".parse().expect("header"));
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "chat.v1".parse().expect("header"));
    let (mut ws, response) = tokio_tungstenite::connect_async(req)
        .await
        .expect("accepted");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"chat.v1"[..])
    );
    ws.send(Message::text("hi all")).await.expect("send");
    match next_message(&mut ws).await {
        Message::Text(t) => assert_eq!(t.as_str(), "bob: hi all"),
        other => panic!("unexpected {other:?}"),
    }
    drop(ws);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_vanishing_mid_handshake_is_harmless() {
    let server = TestServer::echo().await;
    for cut in [1usize, 20, 100] {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let head = upgrade_request("/", "");
        stream.write_all(&head[..cut]).await.expect("write");
        drop(stream);
    }
    // The server still serves.
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, "fine").await;
    let mut probe = TcpStream::connect(server.addr).await.expect("connect");
    probe
        .write_all(&upgrade_request("/", ""))
        .await
        .expect("write");
    let mut buf = [0u8; 12];
    probe.read_exact(&mut buf).await.expect("status line");
    assert_eq!(&buf, b"HTTP/1.1 101");
    drop((ws, probe));
    server.shutdown().await;
}
