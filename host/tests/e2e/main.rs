//! End-to-end tests: the host on 127.0.0.1 with a free port, real clients
//! (tokio-tungstenite, Python `websockets`, Node `ws`, headless Chromium, raw
//! TCP) and the guest components built by the host's build script.

mod browser;
mod cli;
mod common;
mod compose;
mod config;
mod deflate;
mod deploy;
mod faults;
mod handshake;
mod hostile;
mod keepalive;
mod load;
mod pubsub;
mod python;
mod reuse;
mod websocket;
