//! Echo over tokio-tungstenite and raw frames: data, fragments, control
//! frames and both directions of the close handshake.

use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_binary_echo() {
    let server = TestServer::echo().await;
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, "hello").await;
    assert_echo(&mut ws, "").await;
    assert_echo(&mut ws, "grüße, 世界 🦀").await;

    let data: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(data.clone())).await.expect("send");
    match next_message(&mut ws).await {
        Message::Binary(got) => assert_eq!(&got[..], &data[..]),
        other => panic!("expected binary, got {other:?}"),
    }
    ws.close(None).await.expect("close");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_message_echo() {
    let server = TestServer::echo().await;
    let mut ws = connect(&server.url("/")).await;
    // 64 KiB in one frame each way (the echo component does not fragment).
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(data.clone())).await.expect("send");
    match next_message(&mut ws).await {
        Message::Binary(got) => assert!(got[..] == data[..], "64 KiB echo differs"),
        other => panic!("expected binary, got {other:?}"),
    }
    // 65 000 bytes: the bundled echo keeps the library's 64 KiB frame limit.
    let text = "ab€".repeat(13_000);
    assert_echo(&mut ws, &text).await;
    drop(ws);
    server.shutdown().await;
}

/// Every payload length up to 300 and the header-size edges, one message at
/// a time: each arrives as the whole input of a `receive`, so the component
/// unmasks it in front of the room for the reply's header and sends it back
/// from there (16 bytes at a time with SIMD, then the tail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_length_echoes_exactly() {
    let server = TestServer::echo().await;
    let mut ws = connect(&server.url("/")).await;
    for len in (0..=300).chain([1000, 4095, 4096, 65_535, 65_536]) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        ws.send(Message::binary(data.clone())).await.expect("send");
        match next_message(&mut ws).await {
            Message::Binary(got) => assert!(got[..] == data[..], "echo of {len} bytes differs"),
            other => panic!("expected binary, got {other:?}"),
        }
    }
    drop(ws);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_message_and_interleaved_ping() {
    let server = TestServer::echo().await;
    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455 sample key"
    );

    // "Hello, " + ping + "frag" + "ments!" as three fragments, each written
    // separately, with a ping between the first two.
    let mut wire = Vec::new();
    wire.extend(client_frame(false, 0x1, b"Hello, "));
    wire.extend(client_frame(true, 0x9, b"p1"));
    wire.extend(client_frame(false, 0x0, b"frag"));
    wire.extend(client_frame(true, 0x0, b"ments!"));
    // Trickle the bytes in small writes to exercise partial frames.
    for chunk in wire.chunks(3) {
        stream.write_all(chunk).await.expect("write");
    }
    let (fin, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!(
        (fin, opcode, &payload[..]),
        (true, 0xA, &b"p1"[..]),
        "pong first"
    );
    let (fin, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!((fin, opcode), (true, 0x1));
    assert_eq!(payload, b"Hello, fragments!");

    // Client-initiated close: the server echoes the code and closes TCP.
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    stream
        .write_all(&client_frame(true, 0x8, &close))
        .await
        .expect("write close");
    let (_, opcode, payload) = read_server_frame(&mut stream).await;
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1000u16.to_be_bytes());
    let mut rest = Vec::new();
    tokio::time::timeout(
        STEP,
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest),
    )
    .await
    .expect("server closes TCP")
    .expect("clean EOF");
    assert!(rest.is_empty(), "nothing after the close frame");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong() {
    let server = TestServer::echo().await;
    let mut ws = connect(&server.url("/")).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    let msg = tokio::time::timeout(STEP, futures_util::StreamExt::next(&mut ws))
        .await
        .expect("pong in time")
        .expect("open")
        .expect("ok");
    assert_eq!(msg, Message::Pong(b"are you there".to_vec().into()));
    assert_echo(&mut ws, "still echoing").await;
    drop(ws);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_initiated_close() {
    let server = TestServer::echo().await;
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, "before close").await;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "leaving".into(),
    })))
    .await
    .expect("send close");
    // The server answers with a close frame carrying the same code and then
    // ends the stream.
    expect_close(&mut ws, 1001).await;
    let end = tokio::time::timeout(STEP, futures_util::StreamExt::next(&mut ws))
        .await
        .expect("stream ends in time");
    assert!(
        end.is_none(),
        "stream ended after the close handshake: {end:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_initiated_close_on_shutdown() {
    let server = TestServer::echo().await;
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, "before shutdown").await;
    let stopping = tokio::spawn(server.shutdown());
    // The server starts the close handshake with 1001; tungstenite answers
    // it, and `run` returns once the connection is done.
    expect_close(&mut ws, 1001).await;
    let _ = tokio::time::timeout(STEP, futures_util::StreamExt::next(&mut ws)).await;
    tokio::time::timeout(STEP, stopping)
        .await
        .expect("server stops within the step")
        .expect("no panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_future_closes_connections_with_1001() {
    let server = ws_edge_host::Server::builder()
        .component_file(programs::ECHO)
        .listen("127.0.0.1:0".parse().expect("addr"))
        .limits(test_limits())
        .bind()
        .await
        .expect("bind");
    let url = format!("ws://{}/", server.local_addr());
    let run = tokio::spawn(server.run(std::future::pending()));
    let mut ws = connect(&url).await;
    assert_echo(&mut ws, "before").await;
    run.abort();
    let _ = run.await;
    // The connection task outlives the accept loop and closes on its own.
    expect_close(&mut ws, 1001).await;
}
