//! 1 000 concurrent connections, each echoing its own messages.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use ws_edge_host::Limits;

use crate::common::*;

const CONNECTIONS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_connections_echo() {
    let limits = Limits {
        max_connections: CONNECTIONS + 16,
        ..test_limits()
    };
    let server = TestServer::start(programs::ECHO, limits).await;
    let url = server.url("/");

    // Open all connections first so they are all live at once.
    let mut clients = Vec::with_capacity(CONNECTIONS);
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let url = url.clone();
        opening.spawn(async move { (i, connect(&url).await) });
    }
    while let Some(joined) = opening.join_next().await {
        clients.push(joined.expect("connect task"));
    }
    assert_eq!(server.monitor.live_connections(), CONNECTIONS);

    let mut echoing = tokio::task::JoinSet::new();
    for (i, mut ws) in clients {
        echoing.spawn(async move {
            for round in 0..3 {
                let text = format!("connection {i} round {round}");
                assert_echo(&mut ws, &text).await;
            }
            let blob = vec![(i % 256) as u8; 1000 + i];
            ws.send(Message::binary(blob.clone())).await.expect("send");
            match next_message(&mut ws).await {
                Message::Binary(got) => assert!(got[..] == blob[..], "binary echo of {i}"),
                other => panic!("unexpected {other:?}"),
            }
            ws.close(None).await.expect("close");
            i
        });
    }
    let mut done = 0;
    while let Some(joined) = echoing.join_next().await {
        joined.expect("echo task");
        done += 1;
    }
    assert_eq!(done, CONNECTIONS);
    server.shutdown().await;
}
