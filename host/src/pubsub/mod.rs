//! The publish/subscribe service components import
//! (`ws-edge:websocket/pubsub`): a broker in the process, per-connection
//! mailboxes, and optionally a bridge to NATS ([`nats`]) so that several
//! hosts share topics.
//!
//! A publication is encoded once ([`Publication`]) and shared by every
//! subscriber's [`Mailbox`]; a `forward` subscriber's pump writes the shared
//! frame, a `handler` subscriber's pump hands the message to its guest
//! (`delivery.deliver`). Each mailbox is bounded in messages and bytes; one
//! that overflows marks its connection as a slow consumer, which the pump
//! closes with 1008, and nobody else waits for it.

pub(crate) mod nats;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::Poll;

use futures_util::task::AtomicWaker;

use crate::bindings::Message;
use ws_edge::protocol::{OpCode, write_frame};
use ws_edge::pubsub::{check_topic, is_reserved};

/// Limits of the publish/subscribe service. Every field has a documented
/// default ([`PubSubLimits::default`]).
#[derive(Debug, Clone)]
pub struct PubSubLimits {
    /// Topics one connection may be subscribed to at once. Default 32.
    pub max_subscriptions: usize,
    /// Largest payload a component or the admin endpoint may publish, in
    /// bytes. Default 64 KiB.
    pub max_payload: usize,
    /// Publications queued for one connection before it counts as a slow
    /// consumer. Default 1 024.
    pub queue_messages: usize,
    /// Payload bytes queued for one connection before it counts as a slow
    /// consumer. Default 1 MiB.
    pub queue_bytes: usize,
}

impl Default for PubSubLimits {
    fn default() -> Self {
        Self {
            max_subscriptions: 32,
            max_payload: 64 * 1024,
            queue_messages: 1024,
            queue_bytes: 1 << 20,
        }
    }
}

/// How a subscriber wants publications delivered (WIT `delivery`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Through the guest's `delivery.deliver`.
    Handler,
    /// As a frame the host writes itself.
    Forward,
}

/// One published message, shared by every subscriber it is queued for.
pub(crate) struct Publication {
    /// The topic it was published on.
    pub(crate) topic: Arc<str>,
    /// The message, in the form `delivery.deliver` takes it (so a `handler`
    /// delivery copies it only into the guest).
    pub(crate) message: Message,
    /// The unmasked, unfragmented frame, encoded by the first `forward`
    /// subscriber's pump to need it and shared with the others.
    frame: OnceLock<Box<[u8]>>,
}

impl Publication {
    /// A publication of a text message (`text`) or a binary one. The
    /// payload of a text message must be UTF-8: whoever accepted it checked.
    pub(crate) fn new(topic: Arc<str>, message: Message) -> Self {
        Self {
            topic,
            message,
            frame: OnceLock::new(),
        }
    }

    /// Whether it is a text message.
    pub(crate) fn is_text(&self) -> bool {
        matches!(self.message, Message::Text(_))
    }

    /// The payload bytes.
    pub(crate) fn payload(&self) -> &[u8] {
        match &self.message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }

    /// The frame a `forward` subscriber writes, from the core's encoder.
    pub(crate) fn frame(&self) -> &[u8] {
        self.frame.get_or_init(|| {
            let opcode = if self.is_text() {
                OpCode::Text
            } else {
                OpCode::Binary
            };
            let payload = self.payload();
            let mut frame = Vec::with_capacity(payload.len() + 10);
            write_frame(&mut frame, true, opcode, None, payload);
            frame.into_boxed_slice()
        })
    }
}

/// What a pump takes out of its mailbox at once.
#[derive(Default)]
pub(crate) struct Batch {
    /// Publications in the order they were queued, with the mode of the
    /// subscription they were queued for.
    pub(crate) items: VecDeque<(Arc<Publication>, Mode)>,
    /// The mailbox overflowed: the connection is a slow consumer.
    pub(crate) overflowed: bool,
}

/// The bounded queue of publications for one connection.
pub(crate) struct Mailbox {
    queue: Mutex<Queue>,
    /// Set when the queue became non-empty or overflowed; the pump clears
    /// it when it looks.
    signal: AtomicBool,
    /// The pump waiting for `signal`.
    waker: AtomicWaker,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(Arc<Publication>, Mode)>,
    bytes: usize,
    overflowed: bool,
}

impl Mailbox {
    fn new() -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            signal: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Wakes the pump.
    fn wake(&self) {
        self.signal.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Completes when publications were queued (or the queue overflowed)
    /// since the pump last looked. Cheap to create and drop.
    pub(crate) fn signalled(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.signal.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.signal.swap(false, Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Raises the signal again without waking anyone: for a pump that took
    /// a signal it could not act on yet, and will look next.
    pub(crate) fn resignal(&self) {
        self.signal.store(true, Ordering::Release);
    }

    /// Queues `publication`; false when the mailbox is full, which marks
    /// the connection as a slow consumer (and drops the publication).
    fn push(&self, publication: &Arc<Publication>, mode: Mode, limits: &PubSubLimits) -> bool {
        let mut queue = lock(&self.queue);
        if queue.overflowed {
            return false;
        }
        let bytes = queue.bytes + publication.payload().len();
        if queue.items.len() >= limits.queue_messages || bytes > limits.queue_bytes {
            queue.overflowed = true;
            queue.items.clear();
            queue.bytes = 0;
            drop(queue);
            self.wake();
            return false;
        }
        let was_empty = queue.items.is_empty();
        queue.items.push_back((publication.clone(), mode));
        queue.bytes = bytes;
        drop(queue);
        if was_empty {
            self.wake();
        }
        true
    }

    /// Takes everything queued, leaving `into`'s allocation for the next
    /// batch.
    pub(crate) fn take(&self, into: &mut Batch) {
        let mut queue = lock(&self.queue);
        std::mem::swap(&mut queue.items, &mut into.items);
        queue.bytes = 0;
        into.overflowed = queue.overflowed;
    }

    /// Whether the mailbox overflowed (the connection is a slow consumer).
    pub(crate) fn overflowed(&self) -> bool {
        lock(&self.queue).overflowed
    }

    /// Empties the mailbox and forgets an overflow (the instance moves to
    /// another connection).
    fn clear(&self) {
        let mut queue = lock(&self.queue);
        *queue = Queue::default();
        self.signal.store(false, Ordering::Relaxed);
    }
}

/// One subscription as the broker sees it.
struct Subscriber {
    id: u64,
    mailbox: Arc<Mailbox>,
    mode: Mode,
}

/// Counters of the service (for the [`Monitor`](crate::Monitor) and logs).
#[derive(Default)]
pub(crate) struct Stats {
    /// Publications accepted (from guests, the admin endpoint or the bridge).
    pub(crate) published: AtomicU64,
    /// Publications queued for a subscriber.
    pub(crate) queued: AtomicU64,
    /// Connections closed as slow consumers.
    pub(crate) slow_consumers: AtomicU64,
    /// Publications that should have crossed to other hosts but could not
    /// (broker unreachable or the bridge's queue full).
    pub(crate) bridge_dropped: AtomicU64,
    /// The bridge is connected to its broker now.
    pub(crate) bridge_connected: AtomicBool,
}

/// Where a publication came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The connection with this subscriber id (never delivered back to it).
    Connection(u64),
    /// The admin endpoint.
    Admin,
    /// Another host, through the bridge (not sent back to the broker).
    Bridge,
}

/// The in-process broker: topics and their subscribers.
pub(crate) struct Broker {
    topics: RwLock<HashMap<Arc<str>, Vec<Subscriber>>>,
    next_id: AtomicU64,
    pub(crate) limits: PubSubLimits,
    pub(crate) stats: Stats,
    bridge: OnceLock<nats::BridgeHandle>,
}

impl Broker {
    pub(crate) fn new(limits: PubSubLimits) -> Self {
        Self {
            topics: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            limits,
            stats: Stats::default(),
            bridge: OnceLock::new(),
        }
    }

    /// A broker with the default limits and no bridge (tools and tests).
    pub(crate) fn standalone() -> Arc<Self> {
        Arc::new(Self::new(PubSubLimits::default()))
    }

    /// Bridges this broker's topics through `bridge` (once, at start).
    pub(crate) fn set_bridge(&self, bridge: nats::BridgeHandle) {
        let _ = self.bridge.set(bridge);
    }

    /// Whether a bridge is configured.
    pub(crate) fn bridged(&self) -> bool {
        self.bridge.get().is_some()
    }

    /// Topics with at least one local subscriber.
    pub(crate) fn topics(&self) -> Vec<Arc<str>> {
        read(&self.topics).keys().cloned().collect()
    }

    /// A session for a new instance.
    pub(crate) fn session(self: &Arc<Self>, can_deliver: bool) -> Session {
        Session {
            broker: self.clone(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            mailbox: Arc::new(Mailbox::new()),
            topics: HashMap::new(),
            active: false,
            can_deliver,
        }
    }

    /// Checks a topic and payload size for a publication from `origin`.
    pub(crate) fn check_publish(
        &self,
        topic: &str,
        len: usize,
        origin: Origin,
    ) -> Result<(), PubSubError> {
        check_topic(topic).map_err(|e| PubSubError::InvalidTopic(e.to_string()))?;
        if matches!(origin, Origin::Connection(_)) && is_reserved(topic) {
            return Err(PubSubError::Denied(format!(
                "topic {topic} is reserved for the operator (it starts with '_')"
            )));
        }
        if len > self.limits.max_payload {
            return Err(PubSubError::Limit(format!(
                "payload of {len} bytes is larger than the {} bytes allowed",
                self.limits.max_payload
            )));
        }
        Ok(())
    }

    /// Publishes a checked publication: queues it for every local
    /// subscriber except the publishing connection and, unless it came from
    /// the bridge, sends it to the other hosts. Returns how many local
    /// subscribers it was queued for.
    pub(crate) fn publish(&self, publication: Publication, origin: Origin) -> u32 {
        let publication = Arc::new(publication);
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut queued = 0u32;
        if let Some(subscribers) = read(&self.topics).get(&publication.topic) {
            for sub in subscribers {
                if origin == Origin::Connection(sub.id) {
                    continue;
                }
                if sub.mailbox.push(&publication, sub.mode, &self.limits) {
                    queued += 1;
                }
            }
        }
        self.stats
            .queued
            .fetch_add(u64::from(queued), Ordering::Relaxed);
        if origin != Origin::Bridge
            && let Some(bridge) = self.bridge.get()
            && !bridge.publish(publication)
        {
            self.stats.bridge_dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    fn subscribe(&self, topic: &Arc<str>, sub: Subscriber) {
        let mut topics = write(&self.topics);
        let subscribers = topics.entry(topic.clone()).or_default();
        if let Some(existing) = subscribers.iter_mut().find(|s| s.id == sub.id) {
            existing.mode = sub.mode;
            return;
        }
        let first = subscribers.is_empty();
        subscribers.push(sub);
        drop(topics);
        if first && let Some(bridge) = self.bridge.get() {
            bridge.interest(topic.clone(), true);
        }
    }

    fn unsubscribe(&self, topic: &Arc<str>, id: u64) {
        let mut topics = write(&self.topics);
        let Some(subscribers) = topics.get_mut(topic) else {
            return;
        };
        subscribers.retain(|s| s.id != id);
        if subscribers.is_empty() {
            topics.remove(topic);
            drop(topics);
            if let Some(bridge) = self.bridge.get() {
                bridge.interest(topic.clone(), false);
            }
        }
    }
}

/// Why a call of the `pubsub` interface failed (WIT `error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PubSubError {
    InvalidTopic(String),
    Denied(String),
    Limit(String),
    Unavailable(String),
}

impl PubSubError {
    /// The reason, for a log line or an HTTP body.
    pub(crate) fn reason(&self) -> &str {
        match self {
            PubSubError::InvalidTopic(s)
            | PubSubError::Denied(s)
            | PubSubError::Limit(s)
            | PubSubError::Unavailable(s) => s,
        }
    }
}

/// One instance's part in the service: its subscriber id, its mailbox and
/// its subscriptions. The subscriptions end when the session is
/// [`reset`](Session::reset) or dropped (with the store, also after a trap).
pub(crate) struct Session {
    broker: Arc<Broker>,
    id: u64,
    mailbox: Arc<Mailbox>,
    topics: HashMap<Arc<str>, Mode>,
    /// The instance serves a connection now (calls are allowed).
    active: bool,
    /// The component exports `delivery` (handler mode is possible).
    can_deliver: bool,
}

impl Session {
    /// The mailbox the connection's pump reads.
    pub(crate) fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// Whether the connection has any subscription.
    pub(crate) fn subscribed(&self) -> bool {
        !self.topics.is_empty()
    }

    /// The instance starts serving a connection.
    pub(crate) fn activate(&mut self) {
        self.active = true;
    }

    /// The connection is over: every subscription ends and queued
    /// publications are dropped.
    pub(crate) fn reset(&mut self) {
        self.active = false;
        for (topic, _) in self.topics.drain() {
            self.broker.unsubscribe(&topic, self.id);
        }
        self.mailbox.clear();
    }

    fn require_active(&self) -> Result<(), PubSubError> {
        if self.active {
            Ok(())
        } else {
            Err(PubSubError::Denied(
                "the instance is not serving a connection".into(),
            ))
        }
    }

    /// `pubsub.subscribe`.
    pub(crate) fn subscribe(&mut self, topic: String, mode: Mode) -> Result<(), PubSubError> {
        check_topic(&topic).map_err(|e| PubSubError::InvalidTopic(e.to_string()))?;
        self.require_active()?;
        if mode == Mode::Handler && !self.can_deliver {
            return Err(PubSubError::Unavailable(
                "handler delivery needs a component that exports ws-edge:websocket/delivery".into(),
            ));
        }
        let topic: Arc<str> = topic.into();
        if !self.topics.contains_key(&topic)
            && self.topics.len() >= self.broker.limits.max_subscriptions
        {
            return Err(PubSubError::Limit(format!(
                "a connection may subscribe to at most {} topics",
                self.broker.limits.max_subscriptions
            )));
        }
        self.topics.insert(topic.clone(), mode);
        self.broker.subscribe(
            &topic,
            Subscriber {
                id: self.id,
                mailbox: self.mailbox.clone(),
                mode,
            },
        );
        Ok(())
    }

    /// `pubsub.unsubscribe`.
    pub(crate) fn unsubscribe(&mut self, topic: &str) -> Result<bool, PubSubError> {
        check_topic(topic).map_err(|e| PubSubError::InvalidTopic(e.to_string()))?;
        self.require_active()?;
        let Some((topic, _)) = self.topics.remove_entry(topic) else {
            return Ok(false);
        };
        self.broker.unsubscribe(&topic, self.id);
        Ok(true)
    }

    /// `pubsub.publish`.
    pub(crate) fn publish(&mut self, topic: String, message: Message) -> Result<u32, PubSubError> {
        let origin = Origin::Connection(self.id);
        let publication = Publication::new(topic.into(), message);
        self.broker
            .check_publish(&publication.topic, publication.payload().len(), origin)?;
        self.require_active()?;
        Ok(self.broker.publish(publication, origin))
    }

    /// Counts a slow-consumer close.
    pub(crate) fn count_slow_consumer(&self) {
        self.broker
            .stats
            .slow_consumers
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (topic, _) in self.topics.drain() {
            self.broker.unsubscribe(&topic, self.id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
