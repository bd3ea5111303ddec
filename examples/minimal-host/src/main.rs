//! The smallest correct ws-edge host, written from docs/hosting.md alone:
//! `minimal-host COMPONENT.wasm [ADDR]` (default `127.0.0.1:8080`) serves one
//! component (world `websocket-server`) over TCP with a fresh wasmtime store
//! per connection, and no ws-edge crate. Fixed limits: 10 s for the request
//! head (then 408), 100 ms of CPU per guest call, 64 MiB of memory per
//! connection, 30 s per write, 5 s to close connections on SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod wit {
    wasmtime::component::bindgen!({ path: "../../wit", world: "websocket-server" });
}

use wit::exports::ws_edge::websocket::websocket_request::{
    ConnectionState, Ending, GuestConnection, HeadResult, Transmit, Transport,
};
use wit::ws_edge::websocket::types::{IpAddress, SocketAddress};
use wit::{WebsocketServer, WebsocketServerPre};

const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes buffered while `incomplete` (the component's own 431 comes at 8 KiB).
const HEAD_CAP: usize = 64 * 1024;
/// CPU deadline per guest call, in 10 ms epoch ticks (100 ms).
const CALL_TICKS: u64 = 10;
const MEMORY_CAP: usize = 64 << 20;
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN: Duration = Duration::from_secs(2);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A close frame with code 1011 (internal error) and no reason.
const CLOSE_1011: [u8; 4] = [0x88, 0x02, 0x03, 0xF3];

/// What one store holds: WASI's state and the memory limit.
struct Data {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Data {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The one monotonic clock every `now` comes from: milliseconds since start.
static START: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);

fn now() -> u64 {
    START.elapsed().as_millis() as u64
}

/// An instance serving one connection.
struct Guest {
    store: Store<Data>,
    ws: WebsocketServer,
}

impl Guest {
    /// Runs one guest call with a fresh CPU deadline. `block_in_place`: a
    /// guest that writes to stdout/stderr makes wasmtime-wasi's sync
    /// bindings block on the tokio runtime, which panics on a worker thread
    /// unless the call is marked as blocking.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&WebsocketServer, &mut Store<Data>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        self.store.set_epoch_deadline(CALL_TICKS);
        tokio::task::block_in_place(|| f(&self.ws, &mut self.store))
    }

    /// A call on the `connection` resource.
    fn conn(
        &mut self,
        f: impl FnOnce(GuestConnection<'_>, &mut Store<Data>) -> wasmtime::Result<Transmit>,
    ) -> wasmtime::Result<Transmit> {
        self.call(|ws, s| f(ws.ws_edge_websocket_websocket_request().connection(), s))
    }
}

#[tokio::main]
async fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| wasmtime::format_err!("usage: minimal-host COMPONENT.wasm [ADDR]"))?;
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8080").parse()?;

    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, &path)?;
    let mut linker = Linker::<Data>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let pre = Arc::new(WebsocketServerPre::new(
        linker.instantiate_pre(&component)?,
    )?);
    let ticker = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    let listener = TcpListener::bind(addr).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    let (stop_tx, stop) = watch::channel(false);
    // Every connection holds a sender; `recv` returns `None` once all are gone.
    let (live, mut all_done) = mpsc::channel::<()>(1);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((sock, peer)) = accepted else { continue };
                let (pre, stop, live) = (pre.clone(), stop.clone(), live.clone());
                tokio::spawn(async move {
                    serve(sock, peer, &pre, stop).await;
                    drop(live);
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(live);
    let _ = timeout(SHUTDOWN_GRACE, all_done.recv()).await;
    Ok(())
}

/// Writes a response of the host's own (408, 431, 500, 503), then drains.
async fn refuse(sock: &mut TcpStream, status: &str) {
    let head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    write_and_drain(sock, head.as_bytes()).await;
}

async fn write(sock: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let timed_out = Err(std::io::ErrorKind::TimedOut.into());
    timeout(WRITE_TIMEOUT, sock.write_all(bytes))
        .await
        .unwrap_or(timed_out)
}

/// Writes `bytes`, shuts down the sending side, then reads and discards for
/// up to [`DRAIN`] so the peer reads them before the socket closes (closing
/// with unread input sends a reset, which can destroy them).
async fn write_and_drain(sock: &mut TcpStream, bytes: &[u8]) {
    if write(sock, bytes).await.is_err() || sock.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = timeout(DRAIN, async {
        while let Ok(1..) = sock.read(&mut sink).await {}
    })
    .await;
}

fn socket_address(addr: SocketAddr) -> SocketAddress {
    let address = match addr.ip() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    };
    SocketAddress {
        address,
        port: addr.port(),
    }
}

/// Serves one connection: the head, the handshake, the pump, the close.
async fn serve(
    mut sock: TcpStream,
    peer: SocketAddr,
    pre: &WebsocketServerPre<Data>,
    mut stop: watch::Receiver<bool>,
) {
    let data = Data {
        wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new().memory_size(MEMORY_CAP).build(),
    };
    let mut store = Store::new(pre.engine(), data);
    store.limiter(|data| &mut data.limits);
    store.set_epoch_deadline(CALL_TICKS);
    let Ok(ws) = tokio::task::block_in_place(|| pre.instantiate(&mut store)) else {
        return refuse(&mut sock, "503 Service Unavailable").await;
    };
    let mut guest = Guest { store, ws };

    // 1-4: read until the component answers the head; the host writes 408
    // and 500 itself, everything else comes from the component.
    let transport = Transport {
        peer: Some(socket_address(peer)),
        tls: false,
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_deadline = Instant::now() + HEAD_TIMEOUT;
    let (consumed, handshake) = loop {
        match timeout_at(head_deadline, sock.read(&mut chunk)).await {
            Err(_) => return refuse(&mut sock, "408 Request Timeout").await,
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        let api = |ws: &WebsocketServer, s: &mut Store<Data>| {
            let api = ws.ws_edge_websocket_websocket_request();
            api.call_handle_head(s, &buf, transport, now())
        };
        match guest.call(api) {
            Ok(HeadResult::Complete(h)) => break (h.consumed as usize, h.handshake),
            Ok(HeadResult::Incomplete) if buf.len() <= HEAD_CAP => {}
            Ok(HeadResult::Incomplete) => {
                return refuse(&mut sock, "431 Request Header Fields Too Large").await;
            }
            Err(_) => return refuse(&mut sock, "500 Internal Server Error").await,
        }
    };
    let Some(conn) = handshake.connection else {
        return write_and_drain(&mut sock, &handshake.response.wire).await;
    };
    if consumed > buf.len() || handshake.response.status != 101 {
        return refuse(&mut sock, "500 Internal Server Error").await;
    }
    if write(&mut sock, &handshake.response.wire).await.is_err() {
        return;
    }

    // 5-6: start the connection at once, then pump.
    let rest = buf.split_off(consumed);
    let mut next = guest.conn(|c, s| {
        if rest.is_empty() {
            c.call_tick(s, conn, now())
        } else {
            c.call_receive(s, conn, &rest, now())
        }
    });
    let mut closing = false;
    loop {
        // A trap: never call this instance again, not even to drop the
        // resource; the store goes with this function.
        let Ok(t) = next else {
            return write_and_drain(&mut sock, &CLOSE_1011).await;
        };
        if write(&mut sock, &t.bytes).await.is_err() {
            // The peer is gone: tell the component; its transmit is not written.
            let _ = guest.conn(|c, s| c.call_disconnected(s, conn, now()));
            return;
        }
        if let ConnectionState::Closed(ending) = t.state {
            // The store is dropped with this function; the resource needs no
            // explicit drop (a host that reuses instances calls
            // `resource_drop` here, with a CPU deadline).
            return match ending {
                Ending::Clean(_) => drop(sock.shutdown().await),
                Ending::Failed(_) | Ending::TimedOut(_) => write_and_drain(&mut sock, &[]).await,
                Ending::Lost => {}
            };
        }
        let deadline = t
            .deadline
            .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now())));
        next = tokio::select! {
            read = sock.read(&mut chunk) => match read {
                Ok(n @ 1..) => guest.conn(|c, s| c.call_receive(s, conn, &chunk[..n], now())),
                Ok(0) | Err(_) => {
                    let _ = guest.conn(|c, s| c.call_disconnected(s, conn, now()));
                    return;
                }
            },
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                guest.conn(|c, s| c.call_tick(s, conn, now()))
            }
            _ = stop.wait_for(|stop| *stop), if !closing => {
                closing = true;
                guest.conn(|c, s| c.call_close(s, conn, 1001, "server shutting down", now()))
            }
        };
    }
}
