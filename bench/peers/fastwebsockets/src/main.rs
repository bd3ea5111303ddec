//! Echo server built on fastwebsockets, upgrading hyper 1 HTTP/1.1
//! connections (the way fastwebsockets is normally deployed).
//!
//! `peer-fastwebsockets [--listen ADDR]` (default `127.0.0.1:0`) prints
//! `listening on ws://ADDR` once bound, then echoes every text and binary
//! message. Fragments are reassembled (and text validated) by
//! `FragmentCollector`; pings and closes are answered automatically.

use std::io::Write;

use anyhow::{Context, Result, bail};
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn listen_addr() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:0");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => addr = args.next().context("--listen needs an address")?,
            "-h" | "--help" => {
                println!("usage: peer-fastwebsockets [--listen ADDR]  (default 127.0.0.1:0)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(addr)
}

async fn echo(upgraded: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(upgraded.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}

async fn handle(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    if !upgrade::is_upgrade_request(&req) {
        let mut resp = Response::new(Empty::new());
        *resp.status_mut() = StatusCode::UPGRADE_REQUIRED;
        return Ok(resp);
    }
    let (response, upgraded) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = echo(upgraded).await;
    });
    Ok(response)
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
            let _ = stream.set_nodelay(true);
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .with_upgrades();
            let _ = conn.await;
        });
    }
}
