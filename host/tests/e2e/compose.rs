//! The composed component of `examples/compose` (`make compose`): the
//! generic protocol component with the handler component plugged in by
//! `wac plug`, served by the unchanged host.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

/// The composed component: `$WS_EDGE_COMPOSED_WASM` (what `make e2e` sets),
/// else `target/guests/wasm32-wasip2/guest/composed.wasm`, where `make
/// compose` writes it. Missing is a failure, not a skip.
fn composed() -> PathBuf {
    let path = std::env::var_os("WS_EDGE_COMPOSED_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/guests/wasm32-wasip2/guest/composed.wasm"));
    assert!(
        path.is_file(),
        "the composed component {} is missing: run `make compose` (or `make e2e`, which \
         runs it), or point WS_EDGE_COMPOSED_WASM at a component built by `wac plug`",
        path.display()
    );
    path
}

async fn serve_composed() -> TestServer {
    TestServer::start_file(composed(), test_limits()).await
}

/// Sends a masked text frame and expects one unfragmented text frame back.
async fn text_round_trip(stream: &mut tokio::net::TcpStream, send: &str, expect: &str) {
    stream
        .write_all(&client_frame(true, 0x1, send.as_bytes()))
        .await
        .expect("write frame");
    let (fin, opcode, payload) = read_server_frame(stream).await;
    assert!(fin);
    assert_eq!(opcode, 0x1, "text frame");
    assert_eq!(String::from_utf8_lossy(&payload), expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_handler_selects_a_protocol_and_transforms_messages() {
    let server = serve_composed().await;
    let request = upgrade_request("/compose", "Sec-WebSocket-Protocol: plain.v1, SHOUT.v1\r\n");
    let (response, mut stream) = raw_exchange(server.addr, &request).await;
    assert_eq!(response.status, 101, "{response:?}");
    // The handler prefers shout.v1; the protocol component echoes the
    // client's spelling.
    assert_eq!(response.header("sec-websocket-protocol"), Some("SHOUT.v1"));
    assert_eq!(response.header("x-handler"), Some("compose-example"));
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );

    text_round_trip(&mut stream, "hello", "#1 HELLO").await;
    stream
        .write_all(&client_frame(true, 0x2, &[1, 2, 3, 250]))
        .await
        .expect("write frame");
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!((opcode, payload), (0x2, vec![250, 3, 2, 1]));
    // A message in two fragments reaches the handler as one.
    stream
        .write_all(&client_frame(false, 0x1, "grüße, ".as_bytes()))
        .await
        .expect("write frame");
    stream
        .write_all(&client_frame(true, 0x0, "welt".as_bytes()))
        .await
        .expect("write frame");
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!(opcode, 0x1);
    assert_eq!(String::from_utf8_lossy(&payload), "#3 GRÜSSE, WELT");

    // `bye`: a reply, then the handler's close.
    text_round_trip(&mut stream, "bye", "#4 goodbye").await;
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!(opcode, 0x8, "close frame");
    assert_eq!(payload, b"\x03\xe8bye");
    drop(stream);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_handler_keeps_state_per_connection() {
    let server = serve_composed().await;
    let mut clients = [
        connect(&server.url("/compose")).await,
        connect(&server.url("/compose?x=1")).await,
    ];
    for (i, text, expect) in [
        (0, "a", "#1 a"),
        (0, "b", "#2 b"),
        (1, "c", "#1 c"),
        (0, "d", "#3 d"),
    ] {
        let ws = &mut clients[i];
        futures_util::SinkExt::send(&mut *ws, Message::text(text))
            .await
            .expect("send");
        match next_message(ws).await {
            Message::Text(got) => assert_eq!(got.as_str(), expect),
            other => panic!("expected {expect:?}, got {other:?}"),
        }
    }
    drop(clients);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_handler_rejects_and_validation_stays_in_the_protocol_component() {
    let server = serve_composed().await;
    let (r, _) = raw_exchange(server.addr, &upgrade_request("/elsewhere", "")).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.header("x-websocket-reject-reason"),
        Some("/elsewhere is not served here")
    );
    assert_eq!(r.header("x-handler"), Some("compose-example"));
    assert_eq!(r.body, b"only /compose is served here\n");

    // Never reaches the handler: the protocol component answers 426.
    let v7 = String::from_utf8(upgrade_request("/compose", ""))
        .expect("ascii")
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7");
    let (r, _) = raw_exchange(server.addr, v7.as_bytes()).await;
    assert_eq!(r.status, 426, "{r:?}");
    assert_eq!(r.header("x-handler"), None);
    server.shutdown().await;
}
