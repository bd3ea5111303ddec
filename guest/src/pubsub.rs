//! The host's publish/subscribe service (WIT interface
//! `ws-edge:websocket/pubsub`): rooms and broadcast.
//!
//! Every call acts on the connection the component is serving now, so a
//! handler may call these from [`Handler::on_request`](crate::Handler::on_request)
//! (to join rooms while accepting) and from any hook. Subscriptions end with
//! the connection. A connection never receives its own publications.
//!
//! ```ignore
//! use ws_edge_guest::pubsub::{self, Delivery};
//!
//! // In on_request: join the room; the host writes its publications to
//! // the client itself.
//! pubsub::subscribe("rooms.lobby", Delivery::Forward)?;
//! // In on_message: tell everyone else in the room.
//! pubsub::publish("rooms.lobby", message)?;
//! ```
//!
//! Topics follow [`ws_edge::pubsub::check_topic`]. The semantics (ordering,
//! at-most-once delivery, slow subscribers) are those of the WIT interface
//! and `docs/pubsub.md`.

use std::fmt;

use crate::Message;
use crate::bindings::ws_edge::websocket::pubsub as wit;
use crate::bindings::ws_edge::websocket::types::Message as WitMessage;

pub use ws_edge::pubsub::{MAX_TOPIC_LEN, MAX_TOPIC_TOKENS, TopicError, check_topic};

/// How the host delivers publications on a topic to this connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The host calls [`Handler::on_publication`](crate::Handler::on_publication),
    /// which may filter or transform the message.
    Handler,
    /// The host writes each publication to the client itself, unchanged,
    /// without calling the component: the cheapest way to fan out.
    Forward,
}

/// Why a pub/sub call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PubSubError {
    /// The topic does not follow the grammar ([`check_topic`]).
    InvalidTopic(String),
    /// The host's policy does not allow it (publishing on a reserved
    /// topic, or no connection is being served).
    Denied(String),
    /// A limit would be exceeded (subscriptions per connection, payload
    /// size).
    Limit(String),
    /// Pub/sub is off in this host, or handler delivery is not possible.
    Unavailable(String),
}

impl fmt::Display for PubSubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PubSubError::InvalidTopic(why) => write!(f, "invalid topic: {why}"),
            PubSubError::Denied(why) => write!(f, "denied: {why}"),
            PubSubError::Limit(why) => write!(f, "limit: {why}"),
            PubSubError::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

impl std::error::Error for PubSubError {}

impl From<wit::Error> for PubSubError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::InvalidTopic(why) => PubSubError::InvalidTopic(why),
            wit::Error::Denied(why) => PubSubError::Denied(why),
            wit::Error::Limit(why) => PubSubError::Limit(why),
            wit::Error::Unavailable(why) => PubSubError::Unavailable(why),
        }
    }
}

/// Subscribes this connection to `topic`. Subscribing again changes the
/// delivery mode.
pub fn subscribe(topic: &str, delivery: Delivery) -> Result<(), PubSubError> {
    let delivery = match delivery {
        Delivery::Handler => wit::Delivery::Handler,
        Delivery::Forward => wit::Delivery::Forward,
    };
    Ok(wit::subscribe(topic, delivery)?)
}

/// Ends this connection's subscription to `topic`; returns whether it was
/// subscribed.
pub fn unsubscribe(topic: &str) -> Result<bool, PubSubError> {
    Ok(wit::unsubscribe(topic)?)
}

/// Publishes `message` on `topic` to every other subscribed connection (and
/// other hosts when the host is bridged to a broker). Returns how many
/// connections on this host it was queued for.
pub fn publish(topic: &str, message: Message<'_>) -> Result<u32, PubSubError> {
    let message = match message {
        Message::Text(text) => WitMessage::Text(text.to_owned()),
        Message::Binary(data) => WitMessage::Binary(data.to_vec()),
    };
    Ok(wit::publish(topic, &message)?)
}
