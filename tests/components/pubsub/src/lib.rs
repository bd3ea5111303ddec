//! A test component that drives the host's publish/subscribe service from
//! its client's text messages, one command per message, and answers each
//! with the result:
//!
//! - `sub TOPIC forward|handler` → `ok` or `err KIND: why`
//! - `unsub TOPIC` → `ok true|false` or `err KIND: why`
//! - `pub TOPIC PAYLOAD` → `ok N` (local subscribers reached) or `err ...`
//! - `pubbin TOPIC PAYLOAD` → the same, published as a binary message
//! - `panic` → traps (the host must drop the subscriptions)
//!
//! The path `/sub/TOPIC` subscribes in forward mode while accepting;
//! `/sub-then-reject/TOPIC` subscribes and then rejects with `403`.
//! Publications to `handler` subscriptions arrive as `handler TOPIC PAYLOAD`
//! (text) or as the binary payload with `handler:` prepended.

use ws_edge_guest::pubsub::{self, Delivery, PubSubError};
use ws_edge_guest::{Decision, Handler, Message, Outbox, Request};

struct Driver;

fn kind(e: &PubSubError) -> &'static str {
    match e {
        PubSubError::InvalidTopic(_) => "invalid-topic",
        PubSubError::Denied(_) => "denied",
        PubSubError::Limit(_) => "limit",
        PubSubError::Unavailable(_) => "unavailable",
    }
}

fn answer<T: std::fmt::Display>(result: Result<T, PubSubError>) -> String {
    match result {
        Ok(value) => format!("ok {value}").trim_end().to_owned(),
        Err(e) => format!("err {}: {e}", kind(&e)),
    }
}

impl Handler for Driver {
    fn on_request(request: &Request) -> Decision<Self> {
        let path = request.resource_url().path();
        if let Some(topic) = path.strip_prefix("/sub/")
            && let Err(e) = pubsub::subscribe(topic, Delivery::Forward)
        {
            return Decision::reject(400, e.to_string());
        }
        if let Some(topic) = path.strip_prefix("/sub-then-reject/") {
            let subscribed = pubsub::subscribe(topic, Delivery::Forward);
            return Decision::reject(403, format!("subscribed: {subscribed:?}, rejected"));
        }
        Decision::accept(Driver)
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        let Message::Text(command) = message else {
            return;
        };
        let mut words = command.splitn(3, ' ');
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("sub"), Some(topic), Some(mode)) => {
                let mode = if mode == "handler" {
                    Delivery::Handler
                } else {
                    Delivery::Forward
                };
                answer(pubsub::subscribe(topic, mode).map(|()| ""))
            }
            (Some("unsub"), Some(topic), None) => answer(pubsub::unsubscribe(topic)),
            (Some("pub"), Some(topic), Some(payload)) => {
                answer(pubsub::publish(topic, Message::Text(payload)))
            }
            (Some("pubbin"), Some(topic), Some(payload)) => {
                answer(pubsub::publish(topic, Message::Binary(payload.as_bytes())))
            }
            (Some("panic"), None, None) => panic!("asked to panic"),
            _ => format!("err usage: {command}"),
        };
        let _ = out.send_text(&reply);
    }

    fn on_publication(&mut self, topic: &str, message: Message<'_>, out: &mut Outbox<'_>) {
        let _ = match message {
            Message::Text(text) => out.send_text(&format!("handler {topic} {text}")),
            Message::Binary(data) => out.send_binary(&[b"handler:".as_slice(), data].concat()),
        };
    }
}

ws_edge_guest::export_handler!(Driver);
