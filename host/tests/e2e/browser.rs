//! Headless Chromium loads the demo page and round-trips a message through
//! `new WebSocket(...)`, driven over the DevTools protocol.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// A DevTools session on one page.
struct Cdp {
    ws: Client,
    next_id: u64,
}

impl Cdp {
    /// Sends a command and waits for its result, collecting events on the way.
    async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        events: &mut Vec<Value>,
    ) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            msg["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("cdp send");
        loop {
            let reply = self.recv().await;
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
            events.push(reply);
        }
    }

    async fn recv(&mut self) -> Value {
        match next_message(&mut self.ws).await {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("cdp json"),
            other => panic!("unexpected cdp message {other:?}"),
        }
    }

    /// Waits for an event named `method` (possibly already collected).
    async fn wait_event(&mut self, method: &str, events: &mut Vec<Value>) -> Value {
        if let Some(pos) = events.iter().position(|e| e["method"] == json!(method)) {
            return events.remove(pos);
        }
        loop {
            let msg = self.recv().await;
            if msg["method"] == json!(method) {
                return msg;
            }
        }
    }
}

fn profile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ws-edge-e2e-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("profile dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_round_trips_through_the_demo_page() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `make test` (or `apt-get install -y chromium`) to install it"
    );
    let server = TestServer::echo().await;
    let profile = profile_dir();
    let mut browser = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");

    // Chromium prints the browser's DevTools endpoint on stderr.
    let stderr = browser.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let endpoint = tokio::time::timeout(STEP, async {
        while let Some(line) = lines.next_line().await.expect("read chromium stderr") {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("chromium exited without a DevTools endpoint");
    })
    .await
    .expect("chromium reports its DevTools endpoint in time");
    // Keep draining stderr so chromium never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (ws, _) = tokio_tungstenite::connect_async(endpoint.as_str())
        .await
        .expect("cdp connect");
    let mut cdp = Cdp { ws, next_id: 0 };
    let mut events = Vec::new();
    let target = cdp
        .call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            &mut events,
        )
        .await;
    let target_id = target["targetId"].as_str().expect("targetId").to_owned();
    let attached = cdp
        .call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
            &mut events,
        )
        .await;
    let session = attached["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned();
    cdp.call(Some(&session), "Page.enable", json!({}), &mut events)
        .await;
    let page_url = format!("http://{}/", server.addr);
    cdp.call(
        Some(&session),
        "Page.navigate",
        json!({ "url": page_url }),
        &mut events,
    )
    .await;
    cdp.wait_event("Page.loadEventFired", &mut events).await;

    let result = cdp
        .call(
            Some(&session),
            "Runtime.evaluate",
            json!({
                "expression": "window.wsEdgeRoundTrip('hello from chromium')",
                "awaitPromise": true,
                "returnByValue": true,
            }),
            &mut events,
        )
        .await;
    assert!(
        result.get("exceptionDetails").is_none(),
        "page script failed: {result}"
    );
    assert_eq!(result["result"]["value"], json!("hello from chromium"));

    // The page's own connection and the probe's text are in the DOM.
    let log = cdp
        .call(
            Some(&session),
            "Runtime.evaluate",
            json!({ "expression": "document.getElementById('log').textContent", "returnByValue": true }),
            &mut events,
        )
        .await;
    assert!(
        log["result"]["value"]
            .as_str()
            .is_some_and(|t| t.contains("hello from chromium")),
        "{log}"
    );

    let close = json!({ "id": 0, "method": "Browser.close" });
    let _ = cdp.ws.send(Message::text(close.to_string())).await;
    let _ = tokio::time::timeout(STEP, browser.wait()).await;
    let _ = browser.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    server.shutdown().await;
}
