//! Headless Chromium loads the demo page, driven over the DevTools protocol:
//! it round-trips a message through `new WebSocket(...)`, and two pages in
//! one room of the chat example talk while a page in another room hears
//! nothing. [`Browser`] also drives the permessage-deflate test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// How often [`Browser::wait_until`] re-evaluates its condition.
const POLL: Duration = Duration::from_millis(50);

/// A headless Chromium and a DevTools connection to it. Pages are
/// addressed by the session id [`Browser::open`] returns.
pub(crate) struct Browser {
    child: Child,
    profile: PathBuf,
    ws: Client,
    next_id: u64,
    /// Events read while waiting for something else.
    events: Vec<Value>,
}

impl Browser {
    /// Starts Chromium with a fresh profile and connects to its DevTools
    /// endpoint.
    pub(crate) async fn launch() -> Browser {
        Browser::launch_with(&[]).await
    }

    /// [`launch`](Self::launch) with extra command-line flags.
    pub(crate) async fn launch_with(extra: &[String]) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: run `make test` (or `apt-get install -y chromium`) to install it"
        );
        let profile = profile_dir();
        let mut child = tokio::process::Command::new(CHROMIUM)
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
            .args(extra)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");

        // Chromium prints the browser's DevTools endpoint on stderr.
        let stderr = child.stderr.take().expect("piped stderr");
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

        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(endpoint))
            .await
            .expect("cdp connects in time")
            .expect("cdp connect");
        Browser {
            child,
            profile,
            ws,
            next_id: 0,
            events: Vec::new(),
        }
    }

    /// Sends a command (to the browser, or to a page's `session`) and waits
    /// for its result, keeping the events that arrive on the way.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
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
        let reply = tokio::time::timeout(STEP, async {
            loop {
                let reply = self.recv().await;
                if reply["id"] == json!(id) {
                    return reply;
                }
                self.events.push(reply);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} answered in time"));
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    async fn recv(&mut self) -> Value {
        match next_message(&mut self.ws).await {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("cdp json"),
            other => panic!("unexpected cdp message {other:?}"),
        }
    }

    /// Waits for `session`'s event named `method` (possibly already read).
    async fn wait_event(&mut self, session: &str, method: &str) -> Value {
        let wanted = |e: &Value| e["method"] == json!(method) && e["sessionId"] == json!(session);
        if let Some(pos) = self.events.iter().position(wanted) {
            return self.events.remove(pos);
        }
        tokio::time::timeout(STEP, async {
            loop {
                let msg = self.recv().await;
                if wanted(&msg) {
                    return msg;
                }
                self.events.push(msg);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} in time"))
    }

    /// Opens a new page (target) at `url`, waits for it to load and returns
    /// its session id.
    pub(crate) async fn open(&mut self, url: &str) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        self.call(Some(&session), "Page.enable", json!({})).await;
        let navigated = self
            .call(Some(&session), "Page.navigate", json!({ "url": url }))
            .await;
        assert!(navigated.get("errorText").is_none(), "{url}: {navigated}");
        self.wait_event(&session, "Page.loadEventFired").await;
        session
    }

    /// Evaluates `expression` in a page, awaiting it if it is a promise, and
    /// returns its value; a thrown exception fails the test.
    pub(crate) async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                }),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "page script {expression:?} failed: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Re-evaluates `expression` in a page until it is `true`.
    async fn wait_until(&mut self, session: &str, expression: &str) {
        let waited = tokio::time::timeout(STEP, async {
            while self.eval(session, expression).await != json!(true) {
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{expression:?} did not become true in time");
    }

    /// Closes the browser and removes its profile.
    pub(crate) async fn close(mut self) {
        let close = json!({ "id": 0, "method": "Browser.close" });
        let _ = self.ws.send(Message::text(close.to_string())).await;
        let _ = tokio::time::timeout(STEP, self.child.wait()).await;
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A fresh profile directory, unique per browser (tests run concurrently
/// in one process).
fn profile_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ws-edge-e2e-chromium-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("profile dir");
    dir
}

/// A JavaScript string literal for `text`.
fn js(text: &str) -> String {
    json!(text).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_round_trips_through_the_demo_page() {
    let server = TestServer::echo().await;
    let mut browser = Browser::launch().await;
    let page = browser.open(&format!("http://{}/", server.addr)).await;

    let echoed = browser
        .eval(&page, "window.wsEdgeRoundTrip('hello from chromium')")
        .await;
    assert_eq!(echoed, json!("hello from chromium"));
    // Without `?room=` the page has no room view.
    assert_eq!(
        browser.eval(&page, "typeof window.wsEdgeRoom").await,
        json!("undefined")
    );

    // The page's own connection and the probe's text are in the DOM.
    let log = browser
        .eval(&page, "document.getElementById('log').textContent")
        .await;
    assert!(
        log.as_str()
            .is_some_and(|t| t.contains("hello from chromium")),
        "{log}"
    );

    browser.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_pages_chat_in_rooms_of_the_demo_page() {
    let server = TestServer::start(programs::CHAT, test_limits()).await;
    let root = format!("http://{}/", server.addr);
    let mut browser = Browser::launch().await;
    let a = browser.open(&format!("{root}?room=lobby&name=a")).await;
    let b = browser.open(&format!("{root}?room=lobby&name=b")).await;
    let c = browser.open(&format!("{root}?room=other")).await;
    for page in [&a, &b, &c] {
        browser
            .wait_until(page, "window.wsEdgeRoom.connected()")
            .await;
    }
    let status = browser
        .eval(&a, "document.getElementById('status').textContent")
        .await;
    assert!(
        status
            .as_str()
            .is_some_and(|s| s.contains("room lobby as a")),
        "{status}"
    );

    // A sends through its message form; B, in the same room, receives it.
    let hello = "hello <b>lobby</b> & all";
    assert_eq!(
        browser
            .eval(&a, &format!("window.wsEdgeRoom.send({})", js(hello)))
            .await,
        json!(true),
        "page a sends"
    );
    browser
        .wait_until(
            &b,
            &format!("window.wsEdgeRoom.received().includes({})", js(hello)),
        )
        .await;
    let b_log = browser
        .eval(&b, "document.getElementById('log').textContent")
        .await;
    assert_eq!(b_log, json!(format!("< {hello}")), "text, not markup");

    // B answers; A gets the answer, and never its own message back.
    let reply = "hi a";
    browser
        .eval(&b, &format!("window.wsEdgeRoom.send({})", js(reply)))
        .await;
    browser
        .wait_until(&a, "window.wsEdgeRoom.received().length === 1")
        .await;
    assert_eq!(
        browser.eval(&a, "window.wsEdgeRoom.received()").await,
        json!([reply])
    );
    let a_lines = browser
        .eval(
            &a,
            "Array.from(document.querySelectorAll('#log div'), d => d.textContent)",
        )
        .await;
    assert_eq!(a_lines, json!([format!("> {hello}"), format!("< {reply}")]));

    // C's room mate talks; C hears only that, nothing from the lobby.
    let mut mate = connect(&server.url("/rooms/other?name=mate")).await;
    mate.send(Message::text("marker")).await.expect("send");
    browser
        .wait_until(&c, "window.wsEdgeRoom.received().length > 0")
        .await;
    assert_eq!(
        browser.eval(&c, "window.wsEdgeRoom.received()").await,
        json!(["marker"])
    );

    // An invalid room name is refused on the page, before connecting.
    let bad = browser.open(&format!("{root}?room=a.b")).await;
    assert_eq!(
        browser.eval(&bad, "window.wsEdgeRoom.connected()").await,
        json!(false)
    );
    let notice = browser
        .eval(&bad, "document.getElementById('notice').textContent")
        .await;
    assert!(
        notice.as_str().is_some_and(|n| n.contains("1 to 64")),
        "{notice}"
    );

    // The join form checks the room too, then reloads with the query.
    browser
        .eval(
            &bad,
            "document.getElementById('notice').textContent = ''; \
             document.getElementById('room').value = 'no spaces'; \
             document.getElementById('join').requestSubmit()",
        )
        .await;
    let notice = browser
        .eval(&bad, "document.getElementById('notice').textContent")
        .await;
    assert!(
        notice.as_str().is_some_and(|n| n.contains("1 to 64")),
        "{notice}"
    );
    browser
        .eval(
            &bad,
            "document.getElementById('room').value = 'lobby'; \
             document.getElementById('name').value = 'c'; \
             document.getElementById('join').requestSubmit()",
        )
        .await;
    browser.wait_event(&bad, "Page.loadEventFired").await;
    assert_eq!(
        browser.eval(&bad, "location.search").await,
        json!("?room=lobby&name=c")
    );
    browser
        .wait_until(&bad, "window.wsEdgeRoom.connected()")
        .await;

    browser.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_round_trips_over_wss_with_the_test_certificate() {
    use base64::Engine as _;
    let pki = crate::deploy::TestPki::new("chromium");
    let (cert, key) = (pki.cert(), pki.key());
    let server =
        TestServer::start_configured(programs::ECHO, test_limits(), move |b| b.tls(cert, key))
            .await;
    // Chromium cannot be given a CA without an NSS database; it trusts
    // exactly this server key instead (its SPKI's SHA-256), which still
    // checks that the server holds the key. Other certificate errors stay
    // errors.
    let digest = ring::digest::digest(&ring::digest::SHA256, &pki.spki);
    let pin = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let mut browser =
        Browser::launch_with(&[format!("--ignore-certificate-errors-spki-list={pin}")]).await;
    let page = browser
        .open(&format!("https://localhost:{}/", server.addr.port()))
        .await;
    assert_eq!(
        browser.eval(&page, "location.protocol").await,
        json!("https:")
    );
    let echoed = browser
        .eval(&page, "window.wsEdgeRoundTrip('hello over wss')")
        .await;
    assert_eq!(echoed, json!("hello over wss"));
    browser.close().await;
    server.shutdown().await;
}
