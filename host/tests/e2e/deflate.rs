//! permessage-deflate end to end: the bundled echo component (which turns
//! it on) negotiates it with headless Chromium, Python `websockets` and Node
//! `ws`, round-trips compressible, incompressible, fragmented and
//! threshold-crossing messages, and serves a client that does not offer it
//! uncompressed. The host is unchanged: it is all inside the component.

use serde_json::json;
use tokio::io::AsyncWriteExt;
use ws_edge::deflate::{PerMessageDeflate, parse_response};
use ws_edge::protocol::{Extension, OpCode, RSV1};

use crate::browser::Browser;
use crate::common::*;

/// The echo, answering in 4 KiB fragments so that clients also read
/// fragmented compressed messages (it sends whole messages by default).
async fn echo_server() -> TestServer {
    TestServer::start_with_env(
        programs::ECHO,
        test_limits(),
        [("WS_EDGE_FRAGMENT_THRESHOLD", "4096")],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_negotiates_deflate() {
    let python = venv_python();
    let server = echo_server().await;
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(script("deflate_client.py"))
        .arg(server.url("/"));
    expect_ok(command, "python deflate client", 3 * STEP).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_negotiates_deflate() {
    let modules = workspace().join("bench/peers/node/node_modules");
    assert!(
        modules.join("ws").exists(),
        "{} is missing: run `make test` (or `npm ci --prefix bench/peers/node`)",
        modules.display()
    );
    let server = echo_server().await;
    let mut command = tokio::process::Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(script("deflate_client.js"))
        .arg(server.url("/"));
    expect_ok(command, "node ws deflate client", 3 * STEP).await;
    server.shutdown().await;
}

/// Runs in the demo page: Chromium always offers permessage-deflate.
const CHROMIUM_SCRIPT: &str = r#"(async () => {
  const ws = new WebSocket(`ws://${location.host}/`);
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const queue = [];
  let wake = null;
  ws.onmessage = (e) => { queue.push(e.data); if (wake) { wake(); wake = null; } };
  const next = async () => {
    while (queue.length === 0) await new Promise((r) => { wake = r; });
    return queue.shift();
  };
  const results = { extensions: ws.extensions };
  const items = [];
  for (let i = 0; i < 6000; i++) items.push(`{"id":${i},"user":"user${i % 7}","text":"hello there"}`);
  const text = items.join(',');
  ws.send(text);
  results.compressible = (await next()) === text;
  const noise = new Uint8Array(60000);
  crypto.getRandomValues(noise);
  ws.send(noise);
  const back = new Uint8Array(await next());
  results.incompressible = back.length === noise.length && back.every((b, i) => b === noise[i]);
  for (const n of [1023, 1024, 1025]) {
    const s = 'z'.repeat(n);
    ws.send(s);
    results['text' + n] = (await next()) === s;
  }
  ws.close(1000);
  await new Promise((r) => { ws.onclose = r; });
  return results;
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_negotiates_deflate() {
    let server = echo_server().await;
    let mut browser = Browser::launch().await;
    let page = browser.open(&format!("http://{}/", server.addr)).await;
    let results = browser.eval(&page, CHROMIUM_SCRIPT).await;
    assert_eq!(
        results,
        json!({
            "extensions": "permessage-deflate",
            "compressible": true,
            "incompressible": true,
            "text1023": true,
            "text1024": true,
            "text1025": true,
        })
    );
    browser.close().await;
    server.shutdown().await;
}

/// A masked client frame with RSV1 set.
fn compressed_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_frame(fin, opcode, payload);
    frame[0] |= RSV1;
    frame
}

/// Reads the frames of one message: (RSV1 on its first frame, frame count,
/// payload as sent).
async fn read_message(stream: &mut tokio::net::TcpStream) -> (bool, usize, Vec<u8>) {
    let (mut fin, rsv, _, mut payload) = read_server_frame_rsv(stream).await;
    let mut frames = 1;
    while !fin {
        let (f, rsv, opcode, more) = read_server_frame_rsv(stream).await;
        assert_eq!((rsv, opcode), (0, 0), "a plain continuation frame");
        payload.extend_from_slice(&more);
        fin = f;
        frames += 1;
    }
    (rsv == RSV1, frames, payload)
}

/// At the frame level: what the echo compresses (RSV1 from 1 KiB up), that a
/// client-fragmented compressed message is read, and that a client that
/// offers nothing gets no RSV1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_frames_show_the_threshold() {
    let server = echo_server().await;
    let offer = "permessage-deflate; client_max_window_bits";
    let request = upgrade_request("/", &format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    let (response, mut stream) = raw_exchange(server.addr, &request).await;
    assert_eq!(response.status, 101);
    let answer = response
        .header("Sec-WebSocket-Extensions")
        .expect("deflate accepted");
    assert_eq!(answer, "permessage-deflate");
    // The client side: the client's codec for the server's answer,
    // compressing every message.
    let params = parse_response(answer, 0, 1).expect("valid answer");
    let mut client = PerMessageDeflate::client(params);
    for (n, compressed_back) in [(1023, false), (1024, true), (40_000, true)] {
        let text: String = (0..n).map(|i| (b'a' + (i % 7) as u8) as char).collect();
        let mut z = Vec::new();
        assert_eq!(
            client.encode_message(OpCode::Text, text.as_bytes(), &mut z),
            Some(RSV1)
        );
        // Sent in three frames, RSV1 on the first.
        let third = z.len() / 3;
        let mut wire = compressed_frame(false, 0x1, &z[..third]);
        wire.extend(client_frame(false, 0x0, &z[third..2 * third]));
        wire.extend(client_frame(true, 0x0, &z[2 * third..]));
        stream.write_all(&wire).await.expect("write");
        let (rsv1, _, payload) = read_message(&mut stream).await;
        assert_eq!(rsv1, compressed_back, "{n} bytes");
        let got = if rsv1 {
            let mut out = Vec::new();
            client
                .decode(OpCode::Text, RSV1, &payload, true, usize::MAX, &mut out)
                .expect("inflates");
            out
        } else {
            payload
        };
        assert_eq!(got, text.as_bytes(), "{n} bytes");
    }
    // Incompressible bytes over the fragment threshold: sent back plain, in
    // 4 KiB fragments.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    stream
        .write_all(&client_frame(true, 0x2, &noise))
        .await
        .expect("write");
    let (rsv1, frames, payload) = read_message(&mut stream).await;
    assert!(!rsv1);
    assert_eq!(frames, 5);
    assert_eq!(payload, noise);

    // No offer: no extension, no RSV1 even for compressible text.
    let (response, mut stream) = raw_exchange(server.addr, &upgrade_request("/", "")).await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
    let text = "abc".repeat(2000);
    stream
        .write_all(&client_frame(true, 0x1, text.as_bytes()))
        .await
        .expect("write");
    let (rsv1, _, payload) = read_message(&mut stream).await;
    assert!(!rsv1);
    assert_eq!(payload, text.as_bytes());
    // RSV1 without the extension: 1002.
    stream
        .write_all(&compressed_frame(
            true,
            0x1,
            b"\xf2\x48\xcd\xc9\xc9\x07\x00",
        ))
        .await
        .expect("write");
    let (_, _, opcode, close) = read_server_frame_rsv(&mut stream).await;
    assert_eq!(opcode, 0x8);
    assert_eq!(close[..2], 1002u16.to_be_bytes());
    server.shutdown().await;
}
