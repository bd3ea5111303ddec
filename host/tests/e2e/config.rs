//! The component's configuration channel: `ServerBuilder::env` (what
//! `ws-edge serve --env KEY=VALUE` sets) reaches the echo component's
//! connection limits through `wasi:cli/environment`.

use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

/// 2 MiB: above the library's 64 KiB frame and 1 MiB message limits.
const BIG: usize = 2 << 20;

/// Sends the header of a `BIG` binary frame and its first 64 KiB, and
/// expects the server to refuse it with 1009 before the rest arrives.
async fn big_frame_refused(server: &TestServer) {
    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);
    let frame = client_frame(true, 0x2, &vec![0x5a; BIG]);
    stream
        .write_all(&frame[..14 + (64 << 10)])
        .await
        .expect("write the start of the frame");
    let (fin, opcode, payload) = read_server_frame(&mut stream).await;
    assert!(fin);
    assert_eq!(opcode, 0x8, "a close frame, got opcode {opcode}");
    assert_eq!(
        u16::from_be_bytes([payload[0], payload[1]]),
        1009,
        "close payload {payload:?}"
    );
}

/// Sends one `BIG` binary message and expects it back unchanged.
async fn big_message_echoed(server: &TestServer) {
    let mut ws = connect(&server.url("/")).await;
    let data: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(data.clone())).await.expect("send");
    match next_message(&mut ws).await {
        Message::Binary(got) => assert!(got[..] == data[..], "2 MiB echo differs"),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    ws.close(None).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_keeps_the_library_limits_by_default() {
    let server = TestServer::echo().await;
    big_frame_refused(&server).await;
    // Within the limits: echoed.
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, &"x".repeat(64 << 10)).await;
    ws.close(None).await.expect("close");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_raises_the_echo_limits() {
    let server = TestServer::start_with_env(
        programs::ECHO,
        test_limits(),
        [
            ("WS_EDGE_MAX_FRAME_PAYLOAD", "4194304"),
            ("WS_EDGE_MAX_MESSAGE", "4194304"),
        ],
    )
    .await;
    big_message_echoed(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_setting_applies_on_its_own() {
    // Frames may be 4 MiB, but a message still only 1 MiB: refused, by the
    // message limit this time.
    let server = TestServer::start_with_env(
        programs::ECHO,
        test_limits(),
        [("WS_EDGE_MAX_FRAME_PAYLOAD", "4194304")],
    )
    .await;
    big_frame_refused(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_settings_are_ignored() {
    let server = TestServer::start_with_env(
        programs::ECHO,
        test_limits(),
        [
            ("WS_EDGE_MAX_FRAME_PAYLOAD", "4M"),
            ("WS_EDGE_MAX_MESSAGE", "4194304 "),
            ("WS_EDGE_MAX_MESAGE", "4194304"),
        ],
    )
    .await;
    // The component still serves, with the library's limits.
    let mut ws = connect(&server.url("/")).await;
    assert_echo(&mut ws, "still serving").await;
    ws.close(None).await.expect("close");
    big_frame_refused(&server).await;
    server.shutdown().await;
}
