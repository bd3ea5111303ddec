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
//!
//! It also drives the handler's own hooks through the host: the path
//! `/greet` sends `hello` from `on_open`, before the client says anything;
//! `timer MS` answers `ok` and, MS milliseconds later, sends `timer N` from
//! `on_timer` (N counts the timers fired), rescheduling itself while
//! `repeat` was sent; `stop` cancels it.

use ws_edge_guest::prelude::*;

struct Driver {
    /// Whether `on_open` greets.
    greet: bool,
    /// The timer's period while repeating.
    repeat: Option<u64>,
    /// Timers fired so far.
    fired: u32,
}

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
        Decision::accept(Driver {
            greet: path == "/greet",
            repeat: None,
            fired: 0,
        })
    }

    fn on_open(&mut self, out: &mut Outbox<'_>) {
        if self.greet {
            out.send_text("hello").ok();
        }
    }

    fn on_timer(&mut self, out: &mut Outbox<'_>) {
        self.fired += 1;
        out.send_text(&format!("timer {}", self.fired)).ok();
        if let Some(ms) = self.repeat {
            out.schedule_in(ms);
        }
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
            (Some("timer"), Some(ms), None) => match ms.parse() {
                Ok(ms) => {
                    out.schedule_in(ms);
                    "ok".to_owned()
                }
                Err(_) => format!("err usage: {command}"),
            },
            (Some("repeat"), Some(ms), None) => match ms.parse() {
                Ok(ms) => {
                    self.repeat = Some(ms);
                    out.schedule_in(ms);
                    "ok".to_owned()
                }
                Err(_) => format!("err usage: {command}"),
            },
            (Some("stop"), None, None) => {
                self.repeat = None;
                out.cancel_timer();
                "ok".to_owned()
            }
            _ => format!("err usage: {command}"),
        };
        out.send_text(&reply).ok();
    }

    fn on_publication(&mut self, topic: &str, message: Message<'_>, out: &mut Outbox<'_>) {
        match message {
            Message::Text(text) => out.send_text(&format!("handler {topic} {text}")).ok(),
            Message::Binary(data) => out
                .send_binary(&[b"handler:".as_slice(), data].concat())
                .ok(),
        };
    }
}

ws_edge_guest::export_handler!(Driver);
