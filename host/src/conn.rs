//! One TCP connection: read the request head, let the guest answer it, then
//! pump bytes between the socket and the guest's `connection` resource.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use wasmtime::component::ResourceAny;

use crate::Shared;
use crate::http;
use crate::runtime::{ConnectionState, Guest, GuestError, HeadResult, Transmit, Transport};

/// Size of the per-thread buffer that socket reads land in before they are
/// copied into the guest. Reads happen right before a synchronous guest call,
/// so one buffer per worker thread serves every connection. Larger than a
/// 64 KiB message plus its header, so such a frame can arrive in one call and
/// be unmasked in place instead of being gathered into the guest's message
/// buffer (tokio-tungstenite reads 128 KiB at a time too).
const READ_CHUNK: usize = 128 * 1024;

/// How long to keep reading (and discarding) after we closed our side, so the
/// peer reads our last bytes before the socket goes away. Closing a socket
/// with unread input sends a RST, which can destroy data still in flight.
const LINGER: Duration = Duration::from_secs(2);

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A connected stream socket the host serves: a [`TcpStream`] in production,
/// a Unix socket pair in the whole-host fuzz target (same code path).
/// Only tokio's own socket types implement it; they all have these inherent
/// readiness methods.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits until the socket is readable (or at EOF / in error).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads without waiting; `WouldBlock` when nothing is buffered.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes without waiting; `WouldBlock` when the send buffer is full.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

macro_rules! impl_socket {
    ($ty:ty) => {
        impl Socket for $ty {
            fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$ty>::readable(self)
            }
            fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                <$ty>::try_read(self, buf)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$ty>::try_write(self, buf)
            }
        }
    };
}
impl_socket!(TcpStream);
#[cfg(unix)]
impl_socket!(tokio::net::UnixStream);

/// Serves one accepted connection to the end. Never panics on anything
/// the peer or the guest does; logs why the connection ended.
pub(crate) async fn serve<S: Socket>(
    mut stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &shared.limits;

    // Phase 1: read the request head, host side, so the guest is called once.
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut scanned = 0;
    let head_deadline = Instant::now() + limits.head_timeout;
    let head_end = loop {
        if buf.len() > limits.max_head_bytes {
            tracing::debug!(%peer, bytes = buf.len(), "request head too large");
            let body = "request header fields too large\n";
            finish(
                &mut stream,
                &http::simple_response(431, "Request Header Fields Too Large", body),
                limits.write_timeout,
            )
            .await;
            return;
        }
        let room = limits.max_head_bytes + 1 - buf.len();
        let mut chunk = [0u8; 4096];
        let want = room.min(chunk.len());
        let read = tokio::select! {
            r = tokio::time::timeout_at(head_deadline, stream.read(&mut chunk[..want])) => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match read {
            Err(_elapsed) => {
                tracing::info!(%peer, bytes = buf.len(), "timed out waiting for the request head");
                let body = "timed out waiting for the request head\n";
                finish(
                    &mut stream,
                    &http::simple_response(408, "Request Timeout", body),
                    limits.write_timeout,
                )
                .await;
                return;
            }
            Ok(Ok(0)) => {
                tracing::debug!(%peer, bytes = buf.len(), "peer closed before sending a complete head");
                return;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => {
                tracing::debug!(%peer, "read error before the head was complete: {e}");
                return;
            }
        }
        if let Some(end) = http::find_head_end(&buf, scanned) {
            break end;
        }
        scanned = buf.len();
    };

    if http::is_demo_request(&buf[..head_end]) {
        tracing::debug!(%peer, "serving the demo page");
        finish(&mut stream, &http::demo_response(), limits.write_timeout).await;
        return;
    }

    // Phase 2: the guest answers the head.
    let peer_label: Arc<str> = peer.to_string().into();
    let mut guest = match shared.runtime.instantiate(&peer_label) {
        Ok(guest) => guest,
        Err(e) => {
            tracing::error!(%peer, "instantiating the component failed: {e}");
            finish(
                &mut stream,
                &http::simple_response(503, "Service Unavailable", "no instance available\n"),
                limits.write_timeout,
            )
            .await;
            return;
        }
    };
    let transport = Transport {
        peer: Some(peer_label.to_string()),
        tls: false,
    };
    let answer = guest.handle_head(&buf, &transport, shared.now_ms());
    let head = match answer {
        Ok(HeadResult::Complete(head)) => head,
        Ok(HeadResult::Incomplete) => {
            // The host found an empty line but the guest's parser disagrees:
            // treat it as malformed rather than waiting for more.
            tracing::warn!(%peer, "guest found no complete head where the host did");
            finish(
                &mut stream,
                &http::simple_response(400, "Bad Request", "malformed request head\n"),
                limits.write_timeout,
            )
            .await;
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, "guest failed on the request head: {e}");
            finish(
                &mut stream,
                &http::simple_response(500, "Internal Server Error", "internal error\n"),
                limits.write_timeout,
            )
            .await;
            return;
        }
    };

    let consumed = head.consumed as usize;
    let response = head.handshake.response;
    let connection = head.handshake.connection;
    let valid = consumed <= buf.len() && (response.status == 101) == connection.is_some();
    if !valid {
        tracing::warn!(%peer, status = response.status, consumed, "guest returned an inconsistent handshake");
        if let Some(conn) = connection {
            guest.drop_resource(conn);
        }
        finish(
            &mut stream,
            &http::simple_response(500, "Internal Server Error", "internal error\n"),
            limits.write_timeout,
        )
        .await;
        return;
    }
    let Some(conn) = connection else {
        tracing::debug!(%peer, status = response.status, "handshake rejected");
        shared.runtime.recycle(guest);
        finish(&mut stream, &response.wire, limits.write_timeout).await;
        return;
    };

    if let Err(e) = write_all(&mut stream, &response.wire, limits.write_timeout).await {
        tracing::debug!(%peer, "writing the 101 response failed: {e}");
        let _ = guest.disconnected(conn, shared.now_ms());
        guest.drop_resource(conn);
        shared.runtime.recycle(guest);
        return;
    }
    tracing::debug!(%peer, "connection upgraded");

    // Either call returns the first deadline: without it a client that says
    // nothing after the handshake would never be pinged or dropped.
    let first = if consumed < buf.len() {
        guest.receive(conn, &buf[consumed..], shared.now_ms())
    } else {
        guest.tick(conn, shared.now_ms())
    };
    drop(buf);

    let end = pump(
        &mut stream,
        &mut guest,
        conn,
        Some(first),
        &shared,
        &mut shutdown,
    )
    .await;
    match &end {
        End::Closed(code) => tracing::debug!(%peer, code, "connection closed"),
        End::Guest(e) => tracing::warn!(%peer, "guest failed, closing with 1011: {e}"),
        End::Io(e) => tracing::debug!(%peer, "socket error: {e}"),
    }
    // The guest is done with this connection: release its instance before
    // the (possibly lingering) close.
    guest.drop_resource(conn);
    shared.runtime.recycle(guest);
    match end {
        End::Guest(_) => {
            let frame = http::close_frame(1011, "internal error");
            finish(&mut stream, &frame, limits.write_timeout).await;
        }
        // Both close frames were exchanged: the peer sends nothing more, so
        // closing now cannot reset anything in flight. No need to wait for
        // its FIN (that wait cost a wakeup and a read per connection).
        End::Closed(code) if exchanged_close_frames(code) => {
            let _ = stream.shutdown().await;
        }
        // We failed the connection or it timed out: the peer may still be
        // sending, so drain briefly before closing.
        End::Closed(_) => finish(&mut stream, &[], limits.write_timeout).await,
        End::Io(_) => {}
    }
}

/// Whether a connection that reached `closed` with `code` exchanged both
/// close frames. The close code says it: a component that fails the
/// connection itself reports 1002, 1007 or 1009 (the codes of protocol
/// errors, RFC 6455 §7.4.1) without waiting for the peer's close frame, and
/// 1006 when the close handshake timed out or never happened; any other code
/// is the one of a close frame the peer sent. Guessing wrong only costs time
/// (a needless drain) or, for a peer that keeps sending after its own close
/// frame, a reset it brought on itself.
fn exchanged_close_frames(code: u16) -> bool {
    !matches!(code, 1002 | 1006 | 1007 | 1009)
}

/// Why the pump stopped.
enum End {
    /// The state became `closed` (with this close code) and its last bytes
    /// were written.
    Closed(u16),
    /// A guest call failed.
    Guest(GuestError),
    /// The socket failed or the peer went away (the guest was told).
    Io(io::Error),
}

async fn pump<S: Socket>(
    stream: &mut S,
    guest: &mut Guest,
    conn: ResourceAny,
    first: Option<Result<Transmit, GuestError>>,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let write_timeout = shared.limits.write_timeout;
    let sleep = tokio::time::sleep_until(Instant::now());
    tokio::pin!(sleep);
    let mut armed: Option<u64> = None;
    let mut closing_sent = false;
    // The server dropped its shutdown sender (its `run` future was dropped):
    // treat that as a shutdown too, or `changed()` would fire forever.
    let mut server_gone = false;
    let mut next = first;

    loop {
        if let Some(result) = next.take() {
            let transmit = match result {
                Ok(t) => t,
                Err(e) => return End::Guest(e),
            };
            if !transmit.bytes.is_empty()
                && let Err(e) = write_all(stream, &transmit.bytes, write_timeout).await
            {
                let _ = guest.disconnected(conn, shared.now_ms());
                return End::Io(e);
            }
            if let ConnectionState::Closed(frame) = transmit.state {
                return End::Closed(frame.code);
            }
            // Re-arm only when the deadline moves earlier. The keepalive
            // deadline moves later with every message; an armed timer that
            // is now early just calls `tick` once for nothing (allowed: it
            // only advances the timers) and gets the current deadline back.
            // That saves a timer-wheel update per message.
            if let Some(at) = transmit.deadline
                && armed.is_none_or(|current| at < current)
            {
                armed = Some(at);
                sleep.as_mut().reset(shared.instant_at(at));
            }
        }

        let stop = !closing_sent && (server_gone || *shutdown.borrow());
        if stop {
            closing_sent = true;
            next = Some(guest.close(conn, 1001, "server shutting down", shared.now_ms()));
            continue;
        }

        tokio::select! {
            biased;
            ready = stream.readable() => {
                if let Err(e) = ready {
                    let _ = guest.disconnected(conn, shared.now_ms());
                    return End::Io(e);
                }
                let now = shared.now_ms();
                let result = SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    match stream.try_read(&mut scratch) {
                        Ok(0) => Some(Err(io::Error::from(io::ErrorKind::UnexpectedEof))),
                        Ok(n) => Some(Ok((n == READ_CHUNK, guest.receive(conn, &scratch[..n], now)))),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                        Err(e) => Some(Err(e)),
                    }
                });
                match result {
                    None => {}
                    Some(Ok((full, t))) => {
                        next = Some(t);
                        // A full read means the peer sends faster than we
                        // handle it: let other connections on this worker
                        // run. Without this a flooding peer keeps the task
                        // busy for tokio's whole coop budget (128 reads and
                        // guest calls) per poll, and 50 flooders delayed a
                        // bystander's echo by 1.3 s (`make drills`, pingflood).
                        if full {
                            tokio::task::yield_now().await;
                        }
                    }
                    Some(Err(e)) => {
                        // End of stream or a socket error: no close handshake.
                        let t = guest.disconnected(conn, now);
                        return match t {
                            Err(g) => End::Guest(g),
                            Ok(_) => End::Io(e),
                        };
                    }
                }
            }
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                next = Some(guest.tick(conn, shared.now_ms()));
            }
            changed = shutdown.changed(), if !closing_sent => server_gone = changed.is_err(),
        }
    }
}

/// Writes `bytes` completely, giving up after `timeout` without progress.
async fn write_all<S: Socket>(stream: &mut S, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    // Fast path: the kernel buffer usually takes everything at once.
    let mut off = 0;
    while off < bytes.len() {
        match stream.try_write(&bytes[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if off == bytes.len() {
        return Ok(());
    }
    match tokio::time::timeout(timeout, stream.write_all(&bytes[off..])).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "write timed out (peer not reading)",
        )),
    }
}

/// Writes `bytes`, closes our side, and drains the peer briefly so the bytes
/// are not destroyed by a reset. Errors only end it early.
async fn finish<S: Socket>(stream: &mut S, bytes: &[u8], write_timeout: Duration) {
    if !bytes.is_empty() && write_all(stream, bytes, write_timeout).await.is_err() {
        return;
    }
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 1024];
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
