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

use std::sync::atomic::Ordering;

use ws_edge::handshake::{Header, Response};
use ws_edge::protocol::{CloseCode, CloseFrame, FrameCounter};

use crate::Shared;
use crate::bindings::{
    ConnectionState, Ending, HeadResult, Timer, Transmit, Transport, socket_address,
};
use crate::budget::Account;
use crate::error::{FailureKind, GuestError};
use crate::http;
use crate::instance::Guest;
use crate::metrics::Timeout;
use crate::pubsub::{Batch, Mode};
use crate::routes::Route;
use crate::runtime::Runtime;

/// Size of the per-thread buffer that socket reads land in before they are
/// copied into the guest. Reads happen right before a synchronous guest call,
/// so one buffer per worker thread serves every connection. Larger than a
/// 64 KiB message plus its header, so such a frame can arrive in one call and
/// be unmasked in place instead of being gathered into the guest's message
/// buffer (tokio-tungstenite reads 128 KiB at a time too).
const READ_CHUNK: usize = 128 * 1024;

/// The most the pump hands the guest per `receive` on a connection with an
/// extension (permessage-deflate): 128 KiB of compressed frames can be dozens
/// of messages to inflate and deflate in one call, which a busy machine can
/// stretch past the CPU deadline (`--cpu-deadline-ms`, measured in wall-clock
/// time), failing a well-behaved client with 1011.
const EXTENSION_READ_CHUNK: usize = 16 * 1024;

/// How long to keep reading (and discarding) after we closed our side, so the
/// peer reads our last bytes before the socket goes away. Closing a socket
/// with unread input sends a RST, which can destroy data still in flight.
const LINGER: Duration = Duration::from_secs(2);

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A connected stream socket the host serves: a [`TcpStream`], a TLS stream
/// over one (`crate::tls`), or a Unix socket pair in the whole-host fuzz
/// target (same code path).
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send {
    /// Whether the transport is TLS (`transport.tls` for the guest).
    const TLS: bool;
    /// Waits until a read may make progress (data, EOF or an error).
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads without waiting; `WouldBlock` when nothing is buffered.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes without waiting; `WouldBlock` when the send buffer is full.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Whether written bytes still wait in a user-space buffer (TLS
    /// records not yet on the socket): the write then needs a `flush`.
    fn has_pending_output(&self) -> bool {
        false
    }
}

/// Polls `f` once with a waker that does nothing: `Pending` becomes
/// `WouldBlock`. The pump waits with [`Socket::readable`] or, for writes,
/// with the stream's own `AsyncWrite`, both of which register a real waker.
pub(crate) fn poll_now<T>(
    f: impl FnOnce(&mut std::task::Context<'_>) -> std::task::Poll<io::Result<T>>,
) -> io::Result<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f(&mut cx) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

macro_rules! impl_socket {
    ($ty:ty) => {
        impl Socket for $ty {
            const TLS: bool = false;
            fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send {
                <$ty>::readable(self)
            }
            /// Through `poll_read` rather than the inherent `try_read`:
            /// tokio's `poll_read` clears the socket's readiness after a
            /// short read (the kernel buffer is drained), so the next
            /// `readable()` waits for new data instead of returning at once
            /// and costing a read that only says `EAGAIN`.
            fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let mut buf = tokio::io::ReadBuf::new(buf);
                poll_now(|cx| std::pin::Pin::new(&mut *self).poll_read(cx, &mut buf))?;
                Ok(buf.filled().len())
            }
            fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
                <$ty>::try_write(self, buf)
            }
        }
    };
}
impl_socket!(TcpStream);
#[cfg(unix)]
impl_socket!(tokio::net::UnixStream);

/// Serves one accepted TCP connection: over TLS when the server terminates
/// it (the TLS handshake must end by `head_deadline`, like the head), in
/// the clear otherwise.
pub(crate) async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    head_deadline: Instant,
) {
    let Some(tls) = &shared.tls else {
        return serve(stream, peer, shared, shutdown, head_deadline).await;
    };
    // Boxed: inline, the TLS session and its handshake would make every
    // connection's task as large as a TLS one's, plain ones included.
    Box::pin(accept_tls(
        tls.configs(),
        stream,
        peer,
        shared,
        shutdown,
        head_deadline,
    ))
    .await;
}

/// `accept` over TLS: the TLS handshake under the head deadline, then
/// `serve`.
async fn accept_tls(
    configs: Arc<crate::tls::Configs>,
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    head_deadline: Instant,
) {
    // The ClientHello first: the configuration depends on its cipher suites.
    let handshake = async {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
                .await?;
        let config = configs.for_client(&start.client_hello());
        start.into_stream(config).await
    };
    let result = tokio::select! {
        r = tokio::time::timeout_at(head_deadline, handshake) => r,
        _ = shutdown.wait_for(|stop| *stop) => return,
    };
    match result {
        Ok(Ok(stream)) => serve(stream, peer, shared, shutdown, head_deadline).await,
        Ok(Err(e)) => {
            shared.base.metrics.tls_failure();
            ended("TLS handshake failed");
            tracing::info!(%peer, "TLS handshake failed: {e}");
        }
        Err(_elapsed) => {
            shared.base.metrics.timeout(Timeout::Head);
            ended("TLS handshake timeout");
            tracing::info!(%peer, "timed out in the TLS handshake");
        }
    }
}

/// Records how the connection ended on its span.
fn ended(how: &str) {
    tracing::Span::current().record("ended", how);
}

/// Serves one accepted connection to the end: read the head, let the
/// component answer it, pump bytes, close. Never panics on anything the
/// peer or the guest does; logs why the connection ended.
pub(crate) async fn serve<S: Socket>(
    mut stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    head_deadline: Instant,
) {
    let write_timeout = shared.limits.write_timeout;
    let head = match read_head(&mut stream, peer, &shared, head_deadline, &mut shutdown).await {
        Ok(head) => head,
        Err(Some((status, refusal))) => {
            shared.base.metrics.handshake(NO_ROUTE, status);
            ended(if status == 408 {
                "head timeout"
            } else {
                "head too large"
            });
            return reply_and_close(&mut stream, &refusal, write_timeout).await;
        }
        Err(None) => {
            ended("left before the head");
            return;
        }
    };
    if shared.demo_page && http::is_demo_request(head.bytes()) {
        tracing::debug!(%peer, "serving the demo page");
        ended("demo page");
        return reply_and_close(&mut stream, &http::demo_response(), write_timeout).await;
    }
    let path = http::request_path(head.bytes());
    let route = match path {
        Some(path) => shared.routes.find(path),
        // Unparseable: the default component answers it (400) if there is
        // one.
        None => shared.routes.default_route(),
    };
    let Some(route) = route.cloned() else {
        let status = if path.is_some() { 404 } else { 400 };
        tracing::debug!(%peer, status, "no route serves the request");
        shared.base.metrics.handshake(NO_ROUTE, status);
        ended("no route");
        let body = if status == 404 {
            "no component serves this path\n"
        } else {
            "bad request\n"
        };
        return reply_and_close(&mut stream, &plain(status, body), write_timeout).await;
    };
    tracing::Span::current().record("route", route.name());
    let Some(mut upgraded) = handshake(&mut stream, peer, &shared, head, &route).await else {
        return;
    };
    let end = pump(&mut stream, &mut upgraded, &shared, &mut shutdown).await;
    let Upgraded {
        mut guest,
        conn,
        runtime,
        ..
    } = upgraded;
    // The guest is done with this connection: release its instance before
    // the (possibly lingering) close.
    if !guest.failed {
        guest.drop_resource(conn);
    }
    runtime.recycle(guest);
    close(&mut stream, peer, &shared, end).await;
}

/// The `route` label of handshakes the host answered before choosing a
/// route.
const NO_ROUTE: &str = "none";

/// A complete request head: everything read so far, and where the head ends
/// (bytes after it are the client's first frames).
struct Head {
    buf: Vec<u8>,
    end: usize,
}

impl Head {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.end]
    }
}

/// The most a read of the request head asks for at once.
const HEAD_CHUNK: usize = 4096;

/// Reads until the request head is complete. On failure, the status and
/// response to send (431, 408), or `None` when the peer left or the server
/// is shutting down and nothing should be written.
async fn read_head<S: Socket>(
    stream: &mut S,
    peer: SocketAddr,
    shared: &Shared,
    deadline: Instant,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Head, Option<(u16, Vec<u8>)>> {
    let limits = &shared.limits;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut scanned = 0;
    loop {
        if buf.len() > limits.max_head_bytes {
            tracing::debug!(%peer, bytes = buf.len(), "request head too large");
            return Err(Some((431, plain(431, "request header fields too large\n"))));
        }
        let room = limits.max_head_bytes + 1 - buf.len();
        // Read into the heap buffer itself: a chunk array here would live
        // in the connection's task for as long as the connection does.
        let start = buf.len();
        buf.resize(start + room.min(HEAD_CHUNK), 0);
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read(&mut buf[start..])) => r,
            _ = shutdown.wait_for(|stop| *stop) => return Err(None),
        };
        buf.truncate(start + read.as_ref().map_or(0, |r| *r.as_ref().unwrap_or(&0)));
        match read {
            Err(_elapsed) => {
                tracing::info!(%peer, bytes = buf.len(), "timed out waiting for the request head");
                shared.base.metrics.timeout(Timeout::Head);
                return Err(Some((
                    408,
                    plain(408, "timed out waiting for the request head\n"),
                )));
            }
            Ok(Ok(0)) => {
                tracing::debug!(%peer, bytes = buf.len(), "peer closed before sending a complete head");
                return Err(None);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, "read error before the head was complete: {e}");
                return Err(None);
            }
        }
        if let Some(end) = http::find_head_end(&buf, scanned) {
            return Ok(Head { buf, end });
        }
        scanned = buf.len();
    }
}

/// An upgraded connection: its component, instance, `connection` resource
/// and the answer to the first call on it.
struct Upgraded {
    /// The component version the connection started on (it keeps it
    /// across reloads).
    runtime: Arc<Runtime>,
    guest: Guest,
    conn: ResourceAny,
    first: Option<Result<Transmit, GuestError>>,
    /// The most bytes one `receive` gets: [`READ_CHUNK`], or
    /// [`EXTENSION_READ_CHUNK`] when the handshake agreed to an extension.
    read_chunk: usize,
}

/// Lets the component answer the head. Writes the response; returns the
/// upgraded connection, or `None` when the connection is over (rejected,
/// refused after a guest failure, or the peer left).
async fn handshake<S: Socket>(
    stream: &mut S,
    peer: SocketAddr,
    shared: &Shared,
    head: Head,
    route: &Route,
) -> Option<Upgraded> {
    let write_timeout = shared.limits.write_timeout;
    let metrics = &shared.base.metrics;
    let budget = &shared.base.budget;
    if !budget.admit() {
        tracing::debug!(%peer, "memory budget: refusing a new connection with 503");
        metrics.handshake(route.name(), 503);
        ended("overloaded");
        reply_and_close(stream, &plain(503, OVERLOADED), write_timeout).await;
        return None;
    }
    let runtime = route.current();
    let mut guest = match runtime.instantiate(peer) {
        Ok(guest) => guest,
        Err(e) => {
            metrics.handshake(route.name(), e.kind.status());
            refuse(stream, peer, shared, e).await;
            return None;
        }
    };
    let transport = Transport {
        peer: Some(socket_address(peer)),
        tls: S::TLS,
    };
    let checked = match guest.handle_head(&head.buf, &transport, shared.now_ms()) {
        Ok(HeadResult::Complete(answer)) => check_answer(answer, head.buf.len()),
        // The host found an empty line but the component's parser disagrees.
        Ok(HeadResult::Incomplete) => Err((
            GuestError::new(
                FailureKind::Contract,
                "incomplete for a head the host found complete",
            ),
            None,
        )),
        Err(e) => Err((e, None)),
    };
    let Answer {
        consumed,
        status,
        wire,
        connection,
    } = match checked {
        Ok(answer) => answer,
        Err((e, stray)) => {
            if let Some(conn) = stray {
                guest.drop_resource(conn);
            }
            guest.failed = true;
            runtime.recycle(guest);
            metrics.handshake(route.name(), e.kind.status());
            refuse(stream, peer, shared, e).await;
            return None;
        }
    };
    metrics.handshake(route.name(), status);
    metrics.bytes_out(wire.len());
    let Some(conn) = connection else {
        tracing::debug!(%peer, status, "handshake rejected");
        ended("rejected");
        runtime.recycle(guest);
        reply_and_close(stream, &wire, write_timeout).await;
        return None;
    };

    if let Err(e) = write_all(stream, &wire, write_timeout).await {
        tracing::debug!(%peer, "writing the 101 response failed: {e}");
        ended("lost during the handshake");
        let _ = guest.disconnected(conn, shared.now_ms());
        guest.drop_resource(conn);
        runtime.recycle(guest);
        return None;
    }
    tracing::debug!(%peer, "connection upgraded");
    let read_chunk = if http::negotiates_extension(&wire) {
        EXTENSION_READ_CHUNK
    } else {
        READ_CHUNK
    };

    // Either call returns the first deadline: without it a client that says
    // nothing after the handshake would never be pinged or dropped.
    let first = if consumed < head.buf.len() {
        guest.receive(conn, &head.buf[consumed..], shared.now_ms())
    } else {
        guest.tick(conn, shared.now_ms())
    };
    Some(Upgraded {
        runtime,
        guest,
        conn,
        first: Some(first),
        read_chunk,
    })
}

/// The parts of a `handle-head` answer the host acts on.
struct Answer {
    consumed: usize,
    status: u16,
    wire: Vec<u8>,
    connection: Option<ResourceAny>,
}

/// Checks an answer to a head of `len` bytes against the contract: `consumed`
/// within the input, and a connection exactly when the status is `101`. A
/// broken answer is a `contract` failure, with the connection to drop if
/// there was one.
fn check_answer(
    answer: crate::bindings::lifted::HeadHandshake,
    len: usize,
) -> Result<Answer, (GuestError, Option<ResourceAny>)> {
    let consumed = answer.consumed as usize;
    let status = answer.handshake.response.status;
    let connection = answer.handshake.connection;
    if consumed > len || (status == 101) != connection.is_some() {
        let detail = format!(
            "inconsistent handshake (status {status}, connection {}, consumed {consumed} of {len})",
            connection.is_some()
        );
        return Err((GuestError::new(FailureKind::Contract, detail), connection));
    }
    Ok(Answer {
        consumed,
        status,
        wire: answer.handshake.response.wire,
        connection,
    })
}

/// Ends an upgraded connection as the pump's end says: at once after a
/// clean close handshake, after a brief drain when our close frame may race
/// the peer's data, with the core's 1011 close frame after a guest failure.
async fn close<S: Socket>(stream: &mut S, peer: SocketAddr, shared: &Shared, end: End) {
    let write_timeout = shared.limits.write_timeout;
    match end {
        End::Closed(ending) => {
            ended(ending_name(&ending));
            tracing::debug!(%peer, ending = ending_name(&ending), "connection closed");
            match ending {
                // Both close frames were exchanged: the peer sends nothing
                // more, so closing now cannot reset anything in flight. Over
                // TLS the session ends with a close_notify alert first
                // (RFC 8446 §6.1); plain TCP needs no shutdown(2) before the
                // close(2) that dropping the stream makes, which sends the
                // FIN after the close frame just the same.
                Ending::Clean(_) => {
                    if S::TLS {
                        let _ = stream.shutdown().await;
                    }
                }
                // We failed the connection or a timer ran out: the peer may
                // still be sending, so drain briefly before closing.
                Ending::Failed(_) | Ending::TimedOut(_) => {
                    reply_and_close(stream, &[], write_timeout).await;
                }
                Ending::Lost => {}
            }
        }
        End::Guest(e) => {
            ended("guest failed");
            record_failure(peer, shared, &e);
            let code = e.kind.close_code();
            reply_and_close(stream, &close_frame(code), write_timeout).await;
        }
        End::Io(e) => {
            if e.kind() == io::ErrorKind::TimedOut {
                shared.base.metrics.timeout(Timeout::Write);
                ended("write timeout");
                tracing::info!(%peer, "{e}");
            } else {
                ended("socket closed");
                tracing::debug!(%peer, "socket error: {e}");
            }
        }
        // The instance (and the memory it held) is gone already. Try to say
        // why without waiting: a peer that does not read gets no more time.
        End::Shed { mid_frame } => {
            ended("shed (1013)");
            tracing::debug!(%peer, mid_frame, "memory budget: connection shed with 1013");
            // A close frame after part of another would be garbage.
            if !mid_frame {
                let _ = try_write_all(stream, &close_frame(CloseCode::TRY_AGAIN_LATER));
            }
            reply_and_close(stream, &[], write_timeout).await;
        }
        // Same as a shed: the peer is not reading, so it gets no more time.
        End::SlowConsumer { mid_frame } => {
            ended("slow consumer (1008)");
            tracing::info!(%peer, mid_frame, "pub/sub: slow consumer closed with 1008");
            if !mid_frame {
                let _ = try_write_all(stream, &close_frame(CloseCode::POLICY_VIOLATION));
            }
            reply_and_close(stream, &[], write_timeout).await;
        }
    }
}

/// The host's own close frame with `code`, from the core's encoder: 1013
/// says the server is overloaded, 1008 that the peer did not keep up with
/// its publications, anything else is an internal error.
fn close_frame(code: CloseCode) -> Vec<u8> {
    let reason = match code {
        CloseCode::TRY_AGAIN_LATER => "server overloaded",
        CloseCode::POLICY_VIOLATION => "slow consumer",
        _ => "internal error",
    };
    let mut frame = Vec::with_capacity(4 + reason.len());
    CloseFrame {
        code,
        reason: reason.to_owned(),
    }
    .write_to(&mut frame);
    frame
}

/// The name of an ending for log lines.
fn ending_name(ending: &Ending) -> &'static str {
    match ending {
        Ending::Clean(_) => "clean",
        Ending::Failed(_) => "failed",
        Ending::TimedOut(Timer::Keepalive) => "keepalive timeout",
        Ending::TimedOut(Timer::CloseHandshake) => "close handshake timeout",
        Ending::Lost => "lost",
    }
}

/// Logs and counts a guest failure by its kind.
fn record_failure(peer: SocketAddr, shared: &Shared, e: &GuestError) {
    shared.failures[e.kind.index()].fetch_add(1, Ordering::Relaxed);
    tracing::warn!(%peer, kind = %e.kind, "guest failed: {}", e.detail);
}

/// Answers a guest failure before the upgrade with the status its kind
/// calls for, and closes.
async fn refuse<S: Socket>(stream: &mut S, peer: SocketAddr, shared: &Shared, e: GuestError) {
    record_failure(peer, shared, &e);
    let body = match e.kind {
        FailureKind::Instantiation => "no instance available\n",
        FailureKind::MemoryBudget => OVERLOADED,
        _ => "internal error\n",
    };
    reply_and_close(
        stream,
        &plain(e.kind.status(), body),
        shared.limits.write_timeout,
    )
    .await;
}

/// The body of a 503 for an exhausted memory budget.
const OVERLOADED: &str = "server overloaded, retry later\n";

/// A response the host writes on its own, from the core's one builder; a
/// `503` says when to retry.
fn plain(status: u16, body: &str) -> Vec<u8> {
    let mut response = Response::plain(status, body);
    if status == 503 {
        response.headers.insert(1, Header::new("Retry-After", "1"));
    }
    response.to_bytes()
}

/// Why the pump stopped.
enum End {
    /// The state became `closed` (ending so) and its last bytes were
    /// written.
    Closed(Ending),
    /// A guest call failed.
    Guest(GuestError),
    /// The socket failed or the peer went away (the guest was told).
    Io(io::Error),
    /// The memory budget shed the connection; `mid_frame` when it happened
    /// while a write was in progress (the peer got part of a frame).
    Shed { mid_frame: bool },
    /// The connection's publication queue overflowed (`mid_frame` as for
    /// a shed).
    SlowConsumer { mid_frame: bool },
}

/// Moves bytes between the socket and the `connection` resource, calls
/// `tick` at its deadlines and `close` at shutdown, until the state is
/// `closed`, a guest call fails or the socket does.
async fn pump<S: Socket>(
    stream: &mut S,
    upgraded: &mut Upgraded,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let Upgraded {
        guest,
        conn,
        first,
        read_chunk,
        ..
    } = upgraded;
    let read_chunk = *read_chunk;
    let conn = *conn;
    let write_timeout = shared.limits.write_timeout;
    // Completes when the memory budget sheds this connection. Polled only
    // while the pump waits (last in a biased select), so the hot path does
    // not pay for it.
    let account = guest.store.data().lease().account();
    let shed = account.shed();
    tokio::pin!(shed);
    let sleep = tokio::time::sleep_until(Instant::now());
    tokio::pin!(sleep);
    let mut armed: Option<u64> = None;
    let mut closing_sent = false;
    // Publications for this connection (pub/sub). The branch below is
    // enabled only while the guest has subscriptions.
    let mailbox = guest.store.data().session.mailbox().clone();
    let mut batch = Batch::default();
    // The state of the last transmit: publications go out only while open.
    let mut open = true;
    // Completes at shutdown, or when the server dropped its shutdown sender
    // (its `run` future was dropped), which is a shutdown too. One future
    // for the whole pump, not one per wake-up.
    let mut stopping = std::pin::pin!(async {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    let mut stop_requested = false;
    let mut next = first.take();
    // Messages in and out, for the metrics: the frame headers of what
    // passes, read by the core's counter.
    let metrics = &shared.base.metrics;
    let mut counted_in = FrameCounter::default();
    let mut counted_out = FrameCounter::default();

    loop {
        // A connection that floods is always readable, so the biased select
        // below would never look at `shed`.
        if account.is_shed() {
            return shed_now(guest, conn, shared, false);
        }
        if let Some(result) = next.take() {
            let transmit = match result {
                Ok(t) => t,
                Err(e) => return End::Guest(e),
            };
            if !transmit.bytes.is_empty() {
                let watch = Watch {
                    account: &account,
                    shed: shed.as_mut(),
                    mailbox: &mailbox,
                };
                match write_transmit(stream, &transmit.bytes, write_timeout, watch).await {
                    Ok(()) => {
                        metrics.bytes_out(transmit.bytes.len());
                        metrics.messages_out(counted_out.feed(&transmit.bytes));
                    }
                    Err(Written::Shed) => return shed_now(guest, conn, shared, true),
                    Err(Written::SlowConsumer) => return slow_consumer(guest, conn, shared, true),
                    Err(Written::Failed(e)) => {
                        let _ = guest.disconnected(conn, shared.now_ms());
                        return End::Io(e);
                    }
                }
            }
            open = matches!(transmit.state, ConnectionState::Open);
            if let ConnectionState::Closed(ending) = transmit.state {
                return End::Closed(ending);
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

        if stop_requested && !closing_sent {
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
                    match stream.try_read(&mut scratch[..read_chunk]) {
                        Ok(0) => Some(Err(io::Error::from(io::ErrorKind::UnexpectedEof))),
                        Ok(n) => {
                            metrics.bytes_in(n);
                            metrics.messages_in(counted_in.feed(&scratch[..n]));
                            Some(Ok((n == read_chunk, guest.receive(conn, &scratch[..n], now))))
                        }
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
                        // guest calls) per poll, and bystanders on the same
                        // worker wait (`make drills`, pingflood).
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
            () = &mut stopping, if !stop_requested => stop_requested = true,
            () = mailbox.signalled(), if guest.store.data().session.subscribed() => {
                mailbox.take(&mut batch);
                if batch.overflowed {
                    batch.items.clear();
                    return slow_consumer(guest, conn, shared, false);
                }
                next = deliver(guest, conn, shared, &mut batch, open);
            }
            () = &mut shed => return shed_now(guest, conn, shared, false),
        }
    }
}

/// Turns a batch of publications into one transmit, in queue order: the
/// shared frame of each `forward` one, the guest's answer to each
/// `handler` one (`delivery.deliver`). Nothing goes out once the connection
/// is no longer open. `None` when there is nothing to do.
fn deliver(
    guest: &mut Guest,
    conn: ResourceAny,
    shared: &Shared,
    batch: &mut Batch,
    open: bool,
) -> Option<Result<Transmit, GuestError>> {
    if !open {
        batch.items.clear();
        return None;
    }
    let mut out = Vec::new();
    let mut state = ConnectionState::Open;
    let mut deadline = None;
    // Draining empties the batch even when the loop stops early.
    for (publication, mode) in batch.items.drain(..) {
        match mode {
            Mode::Forward => out.extend_from_slice(publication.frame()),
            Mode::Handler => {
                let now = shared.now_ms();
                let t = match guest.deliver(conn, &publication.topic, &publication.message, now) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                };
                out.extend_from_slice(&t.bytes);
                deadline = t.deadline.or(deadline);
                state = t.state;
                // Nothing more goes out once the connection is not open.
                if !matches!(state, ConnectionState::Open) {
                    break;
                }
            }
        }
    }
    if out.is_empty() && matches!(state, ConnectionState::Open) && deadline.is_none() {
        return None;
    }
    Some(Ok(Transmit {
        bytes: out,
        state,
        deadline,
    }))
}

/// Ends a connection the memory budget shed: the handler's close hook runs
/// (as for a lost connection) so the application can let go of it; the
/// host then drops the instance and sends `1013` itself.
fn shed_now(guest: &mut Guest, conn: ResourceAny, shared: &Shared, mid_frame: bool) -> End {
    let _ = guest.disconnected(conn, shared.now_ms());
    End::Shed { mid_frame }
}

/// Ends a connection whose publication queue overflowed: counted, and the
/// handler's close hook runs (as for a lost connection); the host then
/// sends `1008` itself unless that would follow part of a frame.
fn slow_consumer(guest: &mut Guest, conn: ResourceAny, shared: &Shared, mid_frame: bool) -> End {
    guest.store.data().session.count_slow_consumer();
    let _ = guest.disconnected(conn, shared.now_ms());
    End::SlowConsumer { mid_frame }
}

/// What may end a write that has to wait for the peer.
struct Watch<'a, F: Future<Output = ()>> {
    /// The connection's memory-budget account (holds the unwritten bytes).
    account: &'a Account,
    /// Completes when the budget sheds the connection.
    shed: std::pin::Pin<&'a mut F>,
    /// The connection's publication mailbox.
    mailbox: &'a crate::pubsub::Mailbox,
}

/// Why [`write_transmit`] did not write everything.
enum Written {
    /// The memory budget shed the connection while the write waited.
    Shed,
    /// The publication queue overflowed while the write waited.
    SlowConsumer,
    /// The socket failed or the write timed out.
    Failed(io::Error),
}

/// Writes a transmit's bytes. When the peer is slow and the write has to
/// wait, the bytes count against the memory budget until written, and a
/// shed or an overflowing publication queue ends the wait.
async fn write_transmit<S: Socket, F>(
    stream: &mut S,
    bytes: &[u8],
    timeout: Duration,
    mut watch: Watch<'_, F>,
) -> Result<(), Written>
where
    F: Future<Output = ()>,
{
    let off = try_write_all(stream, bytes).map_err(Written::Failed)?;
    if off == bytes.len() && !stream.has_pending_output() {
        return Ok(());
    }
    let _held = watch.account.hold(bytes.len() - off);
    let write = write_rest(stream, &bytes[off..], timeout);
    tokio::pin!(write);
    // Publications queue up while we wait. The first one signals (the
    // queue was empty); after that only an overflow does, so keep waiting
    // for that, and raise the first signal again for the pump afterwards.
    let mut woken = false;
    let result = loop {
        tokio::select! {
            biased;
            r = &mut write => break r.map_err(Written::Failed),
            () = watch.shed.as_mut() => break Err(Written::Shed),
            () = watch.mailbox.signalled() => {
                if watch.mailbox.overflowed() {
                    break Err(Written::SlowConsumer);
                }
                woken = true;
            }
        }
    };
    if woken {
        watch.mailbox.resignal();
    }
    result
}

/// Writes as much of `bytes` as the socket takes without waiting; returns
/// how much that was.
fn try_write_all<S: Socket>(stream: &mut S, bytes: &[u8]) -> io::Result<usize> {
    let mut off = 0;
    while off < bytes.len() {
        match stream.try_write(&bytes[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(off)
}

/// Writes `bytes` completely and flushes, giving up after `timeout`.
async fn write_rest<S: Socket>(stream: &mut S, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "write timed out (peer not reading)",
        )),
    }
}

/// Writes `bytes` completely, giving up after `timeout` without progress.
async fn write_all<S: Socket>(stream: &mut S, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    // Fast path: the kernel buffer usually takes everything at once.
    let off = try_write_all(stream, bytes)?;
    if off == bytes.len() && !stream.has_pending_output() {
        return Ok(());
    }
    write_rest(stream, &bytes[off..], timeout).await
}

/// Writes `bytes`, closes our side, and drains the peer briefly so the bytes
/// are not destroyed by a reset. Errors only end it early.
async fn reply_and_close<S: Socket>(stream: &mut S, bytes: &[u8], write_timeout: Duration) {
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
