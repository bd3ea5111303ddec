//! Room broadcast server built on tokio-tungstenite: the native reference for
//! the `broadcast` benchmark scenario (fan-out of one publisher to many
//! subscribers).
//!
//! `peer-tokio-tungstenite-broadcast [--listen ADDR]` (default `127.0.0.1:0`)
//! prints `listening on ws://ADDR` once bound. An upgrade request to
//! `/rooms/<room>` joins that room (anything else gets 404); every text
//! message a member sends is delivered unchanged to every *other* member of
//! the same room. Binary messages are ignored; pings are answered and close
//! frames replied to by tungstenite.
//!
//! Design, as a tokio-tungstenite user would write it: per room one
//! `tokio::sync::broadcast` channel, created on first join and dropped when
//! its last member leaves; per connection the socket is split, the
//! connection's task reads it and publishes to the room, and a writer task
//! receives from the room and writes. A published message is enqueued once
//! (the payload is a reference-counted `Utf8Bytes`, cloned per receiver
//! without copying); each writer frames and writes it (one `write` per
//! message). A member that falls more than [`ROOM_CAPACITY`] messages behind
//! is closed with 1008, so one slow reader never holds back the others.
//!
//! The writer is a task of its own rather than a `select!` branch next to the
//! reader in one task: every wake-up of a `select!` loop polls the socket's
//! read side again, and each tungstenite 0.30 read attempt first zero-fills
//! its 128 KiB read buffer (`FrameCodec::read_in`), which cost a third of the
//! server's CPU in this scenario.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Messages a room keeps for its slowest member before that member lags.
const ROOM_CAPACITY: usize = 1024;

/// One published message: the sender (so it is not delivered back to it)
/// and the text payload.
type Published = (u64, Utf8Bytes);

/// Room name to its broadcast channel.
type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Published>>>>;

/// The `--listen` address from the command line (default `127.0.0.1:0`).
fn listen_addr() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:0");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => addr = args.next().context("--listen needs an address")?,
            "-h" | "--help" => {
                println!(
                    "usage: peer-tokio-tungstenite-broadcast [--listen ADDR]  (default 127.0.0.1:0)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(addr)
}

/// The room named by a request path `/rooms/<room>` (query ignored).
fn room_of(path: &str) -> Option<&str> {
    let room = path.strip_prefix("/rooms/")?;
    let room = room.split('?').next().unwrap_or_default();
    (!room.is_empty() && !room.contains('/')).then_some(room)
}

/// Removes the room when its last member has left.
struct Membership {
    /// Every room.
    rooms: Rooms,
    /// The room this connection joined.
    room: String,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms
            .get(&self.room)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            rooms.remove(&self.room);
        }
    }
}

/// Serves one connection: upgrade (404 unless `/rooms/<room>`), join, relay.
#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its ErrorResponse by value"
)]
async fn serve(stream: TcpStream, rooms: Rooms, id: u64) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut room = None;
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        match room_of(req.uri().path()) {
            Some(r) => {
                room = Some(r.to_owned());
                Ok(resp)
            }
            None => {
                let mut not_found = ErrorResponse::new(Some("no such room path\n".into()));
                *not_found.status_mut() = StatusCode::NOT_FOUND;
                Err(not_found)
            }
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, callback).await?;
    let room = room.context("no room")?;
    let (tx, mut rx) = {
        let mut map = rooms.lock().unwrap_or_else(|e| e.into_inner());
        let tx = map
            .entry(room.clone())
            .or_insert_with(|| broadcast::channel(ROOM_CAPACITY).0)
            .clone();
        let rx = tx.subscribe();
        (tx, rx)
    };
    let membership = Membership {
        rooms: rooms.clone(),
        room,
    };
    let (mut sink, mut stream) = ws.split();
    // Writer: the room's messages from the other members, in order.
    let writer = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok((from, text)) if from != id => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {} // our own message
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let reason = format!("too slow: {n} messages behind");
                    let frame = CloseFrame {
                        code: CloseCode::Policy,
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    // Reader: this member's text messages go to the room. Binary messages
    // are ignored; tungstenite answers pings and replies to a close.
    let result = async {
        while let Some(msg) = stream.next().await {
            if let Message::Text(text) = msg? {
                // No receiver (impossible while we are one) is not an error.
                let _ = tx.send((id, text));
            }
        }
        Ok(())
    }
    .await;
    writer.abort();
    // The writer holds the receiver: once it is gone, `Membership` removes
    // the room if this was its last member.
    let _ = writer.await;
    drop(tx);
    drop(membership);
    result
}

#[tokio::main]
async fn main() -> Result<()> {
    let listener = TcpListener::bind(listen_addr()?).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let rooms = Rooms::default();
    let ids = AtomicU64::new(0);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let rooms = rooms.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // Protocol errors from clients end only that connection.
            let _ = serve(stream, rooms, id).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::room_of;

    #[test]
    fn rooms_come_from_the_path() {
        assert_eq!(room_of("/rooms/bench"), Some("bench"));
        assert_eq!(room_of("/rooms/bench?name=x"), Some("bench"));
        assert_eq!(room_of("/rooms/"), None);
        assert_eq!(room_of("/rooms/a/b"), None);
        assert_eq!(room_of("/"), None);
    }
}
