//! Chat rooms on the host's publish/subscribe service.
//!
//! An upgrade request for `/rooms/<room>` (optionally `?name=<nick>`) joins
//! room `<room>`: the connection subscribes to topic `rooms.<room>`. Every
//! message a member sends is published on that topic, so every *other*
//! member of the room receives it unchanged, on this host and on every host
//! sharing the broker (`ws-edge serve --broker nats://...`); the sender does
//! not get it back and other rooms never see it.
//!
//! Room names are one topic token: 1 to 64 of `A-Z a-z 0-9 - _`. Anything
//! else gets `400`, other paths `404`.
//!
//! Delivery mode: `forward` by default (the host writes each message to the
//! members itself, without calling this component); `--env
//! CHAT_DELIVERY=handler` makes the host call [`Handler::on_publication`]
//! instead, whose default sends the message on unchanged (the same
//! behaviour, for comparing the two modes).
//!
//! It logs through the `log` facade (the guest library's `log` feature):
//! joins at `info`, messages it could not relay at `warn`, as host log lines
//! with target `ws_edge_host::guest` and the context `chat`.

use ws_edge_guest::prelude::*;

/// The longest room name.
const MAX_ROOM: usize = 64;

/// The longest nickname.
const MAX_NAME: usize = 32;

/// One member of one room.
struct Member {
    topic: String,
}

/// The room in `path`, if it is `/rooms/<room>` with a valid room name;
/// otherwise the rejection.
fn room(path: &str) -> Result<&str, RejectOptions> {
    let Some(room) = path.strip_prefix("/rooms/") else {
        return Err(RejectOptions::new(404).reason("no such endpoint: use /rooms/<room>"));
    };
    let valid = !room.is_empty()
        && room.len() <= MAX_ROOM
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(room)
    } else {
        Err(RejectOptions::new(400).reason("a room name is 1 to 64 of A-Z a-z 0-9 - _"))
    }
}

/// The delivery mode the operator chose (`CHAT_DELIVERY`).
fn delivery() -> Delivery {
    match std::env::var("CHAT_DELIVERY").as_deref() {
        Ok("handler") => Delivery::Handler,
        _ => Delivery::Forward,
    }
}

impl Handler for Member {
    fn on_request(request: &Request) -> Decision<Self> {
        let path = request.path();
        let room = match room(&path) {
            Ok(room) => room,
            Err(rejection) => return rejection.into(),
        };
        let name = request.query_value("name").map(|n| n.into_owned());
        if name
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NAME)
        {
            return Decision::reject(400, "a name is 1 to 32 characters");
        }
        let topic = format!("rooms.{room}");
        if let Err(e) = pubsub::subscribe(&topic, delivery()) {
            let status = match e {
                PubSubError::Limit(_) | PubSubError::Unavailable(_) => 503,
                _ => 500,
            };
            return Decision::reject(status, format!("cannot join the room: {e}"));
        }
        log::info!("{} joined {topic}", name.as_deref().unwrap_or("someone"));
        let mut options = AcceptOptions::new();
        if let Some(name) = &name {
            options = options.header("X-Chat-Name", name.clone());
        }
        Decision::accept_with(options, Member { topic })
    }

    fn on_message(&mut self, message: Message<'_>, _out: &mut Outbox<'_>) {
        if let Err(e) = pubsub::publish(&self.topic, message) {
            // Too large for the service, most likely: the client's message
            // limit is larger than the host's publication limit.
            log::warn!("not relayed on {}: {e}", self.topic);
        }
    }
}

ws_edge_guest::export_handler!(Member);

#[cfg(test)]
mod tests {
    //! The checks before joining (joining itself needs the host's pub/sub
    //! service: host/tests/e2e/pubsub.rs).

    use super::*;
    use ws_edge_guest::testing::connect;

    #[test]
    fn only_valid_rooms_under_rooms_are_served() {
        let cases = [
            ("/lobby", 404),
            ("/rooms/", 400),
            ("/rooms/a.b", 400),
            ("/rooms/caf%C3%A9", 400),
            ("/rooms/lobby?name=", 400),
        ];
        for (target, status) in cases {
            let rejected = connect::<Member>(TestRequest::new(target)).expect_err(target);
            assert_eq!(rejected.status(), status, "{target}");
        }
        assert_eq!(room("/rooms/a-b_9"), Ok("a-b_9"));
        assert!(room(&format!("/rooms/{}", "x".repeat(65))).is_err());
    }
}
