//! The bridge between the in-process broker and NATS (`--broker
//! nats://HOST:PORT`): hosts that share a NATS server share topics.
//!
//! Topic `T` is NATS subject `ws-edge.T`; a text message carries the header
//! `ws-edge-kind: text` (without it a message is binary), so a backend can
//! publish to browsers with any NATS client. The host subscribes to a
//! subject only while it has a local subscriber to the topic, and connects
//! with `no_echo`, so its own publications do not come back to it.
//!
//! The bridge never makes a guest call wait: publications cross through a
//! bounded queue to the bridge task, and while NATS is unreachable (or the
//! queue is full) they are dropped and counted ([`Stats::bridge_dropped`]),
//! never delayed. The client reconnects by itself for as long as the host
//! runs and restores the subscriptions; local delivery never depends on it.
//!
//! [`Stats::bridge_dropped`]: super::Stats::bridge_dropped

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Broker, Origin, Publication};
use crate::bindings::Message;

/// The NATS subject of topic `T` is this prefix followed by `T`.
pub const SUBJECT_PREFIX: &str = "ws-edge.";

/// The header that marks a text message.
pub const KIND_HEADER: &str = "ws-edge-kind";

/// Publications waiting for the bridge task; more are dropped and counted.
const PUBLISH_QUEUE: usize = 8192;

/// The longest wait between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The broker's side of the bridge.
pub(crate) struct BridgeHandle {
    interest: mpsc::UnboundedSender<(Arc<str>, bool)>,
    publishes: mpsc::Sender<Arc<Publication>>,
    broker: std::sync::Weak<Broker>,
}

impl BridgeHandle {
    /// Hands a local publication to the bridge; false when it is dropped
    /// (NATS unreachable or the queue full).
    pub(super) fn publish(&self, publication: Arc<Publication>) -> bool {
        let connected = self
            .broker
            .upgrade()
            .is_some_and(|b| b.stats.bridge_connected.load(Ordering::Relaxed));
        connected && self.publishes.try_send(publication).is_ok()
    }

    /// The first local subscriber of `topic` arrived (`true`) or the last
    /// one left (`false`).
    pub(super) fn interest(&self, topic: Arc<str>, on: bool) {
        let _ = self.interest.send((topic, on));
    }
}

/// Connects `broker` to the NATS server at `url` and returns once the
/// bridge task runs. An unreachable server is not an error: the client keeps
/// trying in the background while local service goes on.
pub(crate) async fn start(url: &str, broker: &Arc<Broker>) -> anyhow::Result<()> {
    let events = Arc::downgrade(broker);
    let client = async_nats::ConnectOptions::new()
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            (Duration::from_millis(100) * u32::try_from(attempts).unwrap_or(u32::MAX))
                .min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let broker = events.clone();
            async move {
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                let connected = &broker.stats.bridge_connected;
                match event {
                    async_nats::Event::Connected => {
                        connected.store(true, Ordering::Relaxed);
                        tracing::info!("broker connected");
                    }
                    async_nats::Event::Disconnected => {
                        connected.store(false, Ordering::Relaxed);
                        tracing::warn!(
                            "broker disconnected: cross-host publications are dropped until it is back"
                        );
                    }
                    other => tracing::debug!("broker: {other}"),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("broker {url}: {e}"))?;

    let (interest_tx, interest_rx) = mpsc::unbounded_channel();
    let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
    broker.set_bridge(BridgeHandle {
        interest: interest_tx.clone(),
        publishes: publish_tx,
        broker: Arc::downgrade(broker),
    });
    // Topics subscribed before the bridge existed.
    for topic in broker.topics() {
        let _ = interest_tx.send((topic, true));
    }
    tokio::spawn(run(client, Arc::downgrade(broker), interest_rx, publish_rx));
    Ok(())
}

/// The bridge task: follows local interest with NATS subscriptions and
/// sends local publications to NATS, in order.
async fn run(
    client: async_nats::Client,
    broker: std::sync::Weak<Broker>,
    mut interest: mpsc::UnboundedReceiver<(Arc<str>, bool)>,
    mut publishes: mpsc::Receiver<Arc<Publication>>,
) {
    let mut subscriptions: HashMap<Arc<str>, JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            change = interest.recv() => {
                let Some((topic, on)) = change else { break };
                if on {
                    if subscriptions.contains_key(&topic) {
                        continue;
                    }
                    let subject = format!("{SUBJECT_PREFIX}{topic}");
                    match client.subscribe(subject).await {
                        Ok(sub) => {
                            let task = tokio::spawn(relay(sub, topic.clone(), broker.clone()));
                            subscriptions.insert(topic, task);
                        }
                        Err(e) => tracing::warn!(%topic, "broker: subscribing failed: {e}"),
                    }
                } else if let Some(task) = subscriptions.remove(&topic) {
                    // Dropping the subscriber unsubscribes it.
                    task.abort();
                }
            }
            publication = publishes.recv() => {
                let Some(publication) = publication else { break };
                let subject = format!("{SUBJECT_PREFIX}{}", publication.topic);
                let mut headers = async_nats::HeaderMap::new();
                if publication.is_text() {
                    headers.insert(KIND_HEADER, "text");
                }
                let payload = bytes::Bytes::copy_from_slice(publication.payload());
                if let Err(e) = client.publish_with_headers(subject, headers, payload).await {
                    tracing::debug!("broker: publish failed: {e}");
                    if let Some(broker) = broker.upgrade() {
                        broker.stats.bridge_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    for (_, task) in subscriptions {
        task.abort();
    }
}

/// Delivers what NATS sends on one topic to the local subscribers.
async fn relay(mut sub: async_nats::Subscriber, topic: Arc<str>, broker: std::sync::Weak<Broker>) {
    while let Some(message) = sub.next().await {
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let text = message
            .headers
            .as_ref()
            .and_then(|h| h.get(KIND_HEADER))
            .is_some_and(|v| v.as_str() == "text");
        let payload = message.payload;
        if payload.len() > broker.limits.max_payload {
            tracing::debug!(%topic, bytes = payload.len(), "broker: dropping an oversized publication");
            continue;
        }
        // Whatever reaches a client as a text frame must be UTF-8: another
        // host checked this, but anyone may publish on NATS.
        let message = if text {
            match String::from_utf8(payload.to_vec()) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    tracing::debug!(%topic, "broker: dropping a text publication that is not UTF-8");
                    continue;
                }
            }
        } else {
            Message::Binary(payload.to_vec())
        };
        let publication = Publication::new(topic.clone(), message);
        broker.publish(publication, Origin::Bridge);
    }
}
