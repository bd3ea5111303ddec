//! Echo server built on tokio-tungstenite, used as the reference peer in the
//! ws-edge benchmarks and as a known-good target for `scripts/autobahn.sh`.
//!
//! `peer-tokio-tungstenite [--listen ADDR]` (default `127.0.0.1:0`) prints
//! `listening on ws://ADDR` once bound, then echoes every text and binary
//! message. Pings are answered and close frames replied to by tungstenite.

use std::io::Write;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

fn listen_addr() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:0");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => addr = args.next().context("--listen needs an address")?,
            "-h" | "--help" => {
                println!("usage: peer-tokio-tungstenite [--listen ADDR]  (default 127.0.0.1:0)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(addr)
}

async fn serve(stream: TcpStream) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let listener = TcpListener::bind(listen_addr()?).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        tokio::spawn(async move {
            // Protocol errors from clients end only that connection.
            let _ = serve(stream).await;
        });
    }
}
