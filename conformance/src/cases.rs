//! The cases: what a conforming host does, each checked over TCP against a
//! host serving one of the test components. The outcomes are the ones
//! docs/hosting.md documents; the case names are what the runner prints.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::client::{
    Check, Conn, NoFrame, STEP, check_101, close_frame, connect, expect_status, frame, msg, op,
    open, request, upgrade_request,
};

/// What a case gets: where the host serves and how long its head timeout is.
#[derive(Clone, Copy)]
pub struct Ctx {
    /// The host's address.
    pub addr: SocketAddr,
    /// The host's request-head timeout (the 408 case waits this long plus
    /// a margin).
    pub head_timeout: Duration,
}

/// A case's future.
pub type Run = Pin<Box<dyn Future<Output = Check> + Send>>;

/// One case.
pub struct Case {
    /// The name printed with its result.
    pub name: &'static str,
    /// The capability it needs; `--skip GROUP` skips every case of a group.
    pub group: &'static str,
    /// The documented outcome it checks.
    pub what: &'static str,
    /// The check.
    pub run: fn(Ctx) -> Run,
}

/// A component and the cases run against a host serving it.
pub struct Suite {
    /// The component's file name in the components directory.
    pub file: &'static str,
    /// Its cases (run concurrently on one host process).
    pub cases: Vec<Case>,
}

macro_rules! case {
    ($name:literal, $group:literal, $what:literal, $f:ident) => {
        Case {
            name: $name,
            group: $group,
            what: $what,
            run: |ctx| Box::pin($f(ctx)),
        }
    };
}

/// Every suite, in the order they run.
pub fn suites() -> Vec<Suite> {
    vec![
        Suite {
            file: "echo.wasm",
            cases: vec![
                case!(
                    "handshake-101",
                    "handshake",
                    "an upgrade gets 101 with the right accept value, then echo",
                    handshake_101
                ),
                case!(
                    "head-with-first-frame",
                    "handshake",
                    "frames sent with the head reach the component (bytes after `consumed`)",
                    head_with_first_frame
                ),
                case!(
                    "bare-lf-head",
                    "handshake",
                    "a head whose lines end in a bare LF (`\\n\\n` ends it) is answered",
                    bare_lf_head
                ),
                case!(
                    "trickled-head",
                    "handshake",
                    "a head sent in pieces is answered once complete",
                    trickled_head
                ),
                case!(
                    "bad-request-400",
                    "handshake",
                    "a request without Sec-WebSocket-Key gets 400, then the host closes",
                    bad_request_400
                ),
                case!(
                    "bad-version-426",
                    "handshake",
                    "an unsupported Sec-WebSocket-Version gets 426",
                    bad_version_426
                ),
                case!(
                    "head-too-large-431",
                    "handshake",
                    "a head over 8 KiB gets 431",
                    head_too_large_431
                ),
                case!(
                    "head-timeout-408",
                    "head-timeout",
                    "a head not completed within the head timeout gets 408 from the host",
                    head_timeout_408
                ),
                case!(
                    "echo-fragmented",
                    "framing",
                    "a fragmented message with a ping inside: pong, then the echo",
                    echo_fragmented
                ),
                case!(
                    "echo-large-binary",
                    "framing",
                    "a 48 KiB binary message written byte-split comes back whole",
                    echo_large_binary
                ),
                case!(
                    "client-close-1000",
                    "close",
                    "the client's close is echoed and the host then closes the TCP connection",
                    client_close
                ),
                case!(
                    "protocol-error-1002-drain",
                    "close",
                    "an unmasked frame gets close 1002; the host drains, so it arrives intact, then FIN",
                    protocol_error_1002
                ),
                case!(
                    "too-big-1009",
                    "close",
                    "a frame over the component's limit gets close 1009",
                    too_big_1009
                ),
                case!(
                    "bad-utf8-1007",
                    "close",
                    "invalid UTF-8 in a text message gets close 1007",
                    bad_utf8_1007
                ),
                case!(
                    "peer-vanishes",
                    "close",
                    "a client that disappears mid-connection does not disturb others",
                    peer_vanishes
                ),
            ],
        },
        Suite {
            file: "guest_panic.wasm",
            cases: vec![
                case!(
                    "panic-before-upgrade-500",
                    "trap",
                    "a guest that traps in handle-head: the host writes 500",
                    panic_500
                ),
                case!(
                    "panic-after-upgrade-1011",
                    "trap",
                    "a guest that traps on a message: close 1011 from the host; others unaffected",
                    panic_1011
                ),
            ],
        },
        Suite {
            file: "guest_spin.wasm",
            cases: vec![
                case!(
                    "spin-before-upgrade-500",
                    "cpu-deadline",
                    "a guest that loops in handle-head is stopped: 500",
                    spin_500
                ),
                case!(
                    "spin-after-upgrade-1011",
                    "cpu-deadline",
                    "a guest that loops on a message is stopped: close 1011; others unaffected",
                    spin_1011
                ),
            ],
        },
        Suite {
            file: "guest_hog.wasm",
            cases: vec![
                case!(
                    "hog-before-upgrade-500",
                    "memory-cap",
                    "a guest that grows its memory without end in handle-head: 500",
                    hog_500
                ),
                case!(
                    "hog-after-upgrade-1011",
                    "memory-cap",
                    "the same on a message: close 1011; others unaffected",
                    hog_1011
                ),
            ],
        },
        Suite {
            file: "guest_keepalive.wasm",
            cases: vec![
                case!(
                    "keepalive-ping",
                    "keepalive",
                    "a silent client is pinged at the component's deadline (200 ms)",
                    keepalive_ping
                ),
                case!(
                    "keepalive-answered",
                    "keepalive",
                    "a client that answers pings stays connected",
                    keepalive_answered
                ),
                case!(
                    "keepalive-drop",
                    "keepalive",
                    "a client that ignores the ping is dropped: FIN, no close frame",
                    keepalive_drop
                ),
            ],
        },
        Suite {
            file: "conformance_noisy.wasm",
            cases: vec![
                case!(
                    "output-in-handshake",
                    "guest-output",
                    "64 KiB to stdout and stderr during handle-head: still 101",
                    output_in_handshake
                ),
                case!(
                    "output-on-message",
                    "guest-output",
                    "64 KiB to stdout and stderr on a message: the reply arrives; others unaffected",
                    output_on_message
                ),
            ],
        },
        Suite {
            file: "conformance_closer.wasm",
            cases: vec![
                case!(
                    "handler-close-clean",
                    "close",
                    "the handler closes first; after the client's reply the host closes the TCP connection",
                    handler_close_clean
                ),
                case!(
                    "handler-close-timeout",
                    "close",
                    "the handler closes first, the client never answers: dropped after the close timeout",
                    handler_close_timeout
                ),
            ],
        },
    ]
}

/// The name of the case run last on the echo suite when a shutdown signal
/// is configured.
pub const SHUTDOWN_CASE: &str = "shutdown-1001";

/// Opens a connection, sends a close after the case and checks the host
/// answers it (a bystander's health).
async fn still_echoes(conn: &mut Conn, what: &str) -> Check {
    conn.echo("still here")
        .await
        .map_err(|e| format!("{what}: {e}"))
}

async fn handshake_101(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    ws.echo("hello").await
}

async fn head_with_first_frame(ctx: Ctx) -> Check {
    let mut bytes = upgrade_request("/");
    bytes.extend(msg(op::TEXT, b"first"));
    bytes.extend(msg(op::TEXT, b"second"));
    let (head, mut ws) = request(ctx.addr, &bytes, STEP).await?;
    check_101(&head)?;
    ws.expect_text("first", STEP).await?;
    ws.expect_text("second", STEP).await
}

async fn bare_lf_head(ctx: Ctx) -> Check {
    let crlf = String::from_utf8(upgrade_request("/")).map_err(|e| e.to_string())?;
    let lf = crlf.replace("\r\n", "\n");
    let (head, mut ws) = request(ctx.addr, lf.as_bytes(), STEP).await?;
    check_101(&head)?;
    ws.echo("lf").await
}

async fn trickled_head(ctx: Ctx) -> Check {
    let bytes = upgrade_request("/");
    let mut ws = Conn::new(connect(ctx.addr).await?);
    for piece in bytes.chunks(bytes.len() / 4 + 1) {
        ws.send(piece).await?;
        sleep(Duration::from_millis(50)).await;
    }
    check_101(&ws.read_head(STEP).await?)?;
    ws.echo("trickled").await
}

async fn bad_request_400(ctx: Ctx) -> Check {
    let req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    expect_status(ctx.addr, req, 400, STEP).await
}

async fn bad_version_426(ctx: Ctx) -> Check {
    let req = String::from_utf8(upgrade_request("/"))
        .map_err(|e| e.to_string())?
        .replace("Version: 13", "Version: 12");
    expect_status(ctx.addr, req.as_bytes(), 426, STEP).await
}

async fn head_too_large_431(ctx: Ctx) -> Check {
    let mut req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 10 * 1024));
    // No end of the head: the host must not wait for one.
    let (head, _conn) = request(ctx.addr, &req, STEP).await?;
    if head.status != 431 {
        return Err(format!("expected 431, got {}", head.status));
    }
    Ok(())
}

async fn head_timeout_408(ctx: Ctx) -> Check {
    let wait = ctx.head_timeout + Duration::from_secs(5);
    let req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let (head, _conn) = request(ctx.addr, req, wait).await?;
    if head.status != 408 {
        return Err(format!("expected 408, got {}", head.status));
    }
    Ok(())
}

async fn echo_fragmented(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    let mut bytes = frame(false, op::TEXT, b"frag", true);
    bytes.extend(msg(op::PING, b"p1"));
    bytes.extend(frame(false, op::CONT, b"men", true));
    bytes.extend(frame(true, op::CONT, b"ted", true));
    ws.send(&bytes).await?;
    let pong = ws
        .frame(STEP)
        .await
        .map_err(|e| format!("expected a pong: {e}"))?;
    if pong.opcode != op::PONG || pong.payload != b"p1" {
        return Err(format!("expected pong \"p1\", got {pong:?}"));
    }
    ws.expect_text("fragmented", STEP).await
}

async fn echo_large_binary(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    let data: Vec<u8> = (0..48 * 1024).map(|i| (i % 251) as u8).collect();
    let bytes = msg(op::BINARY, &data);
    // Split oddly, so frames cross the host's reads.
    for piece in bytes.chunks(7001) {
        ws.send(piece).await?;
    }
    let (opcode, got) = ws.message(STEP).await?;
    if opcode != op::BINARY || got != data {
        return Err(format!(
            "expected the 48 KiB binary back, got opcode {opcode}, {} bytes",
            got.len()
        ));
    }
    Ok(())
}

async fn client_close(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    ws.send(&close_frame(1000, "bye")).await?;
    ws.expect_close(1000, STEP).await?;
    ws.expect_eof(STEP).await
}

async fn protocol_error_1002(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    // An unmasked frame, then more data the host will not have read when
    // the component fails the connection: closing without draining would
    // reset the connection and could destroy the close frame.
    let mut bytes = frame(true, op::TEXT, b"unmasked", false);
    bytes.extend(std::iter::repeat_n(0u8, 256 * 1024));
    ws.send(&bytes).await?;
    ws.expect_close(1002, STEP).await?;
    ws.expect_eof(STEP).await
}

async fn too_big_1009(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    // Only the header of a 1 MiB frame (the limit is 64 KiB): the component
    // must answer from the header.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    ws.send(&header).await?;
    ws.expect_close(1009, STEP).await?;
    Ok(())
}

async fn bad_utf8_1007(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    ws.send(&msg(op::TEXT, &[b'o', b'k', 0xFF, 0xFE])).await?;
    ws.expect_close(1007, STEP).await?;
    Ok(())
}

async fn peer_vanishes(ctx: Ctx) -> Check {
    let mut bystander = open(ctx.addr, "/").await?;
    for _ in 0..3 {
        let mut gone = open(ctx.addr, "/").await?;
        gone.echo("about to vanish").await?;
        // Half a frame, then the client is gone.
        gone.send(&msg(op::TEXT, b"never finished")[..5]).await?;
        drop(gone);
    }
    still_echoes(&mut bystander, "a bystander after three vanished clients").await?;
    let mut fresh = open(ctx.addr, "/").await?;
    still_echoes(&mut fresh, "a new connection").await
}

/// Expects a failure before the upgrade to get `status`, and the host to
/// keep serving other connections.
async fn fails_before_upgrade(ctx: Ctx, path: &str, status: u16, wait: Duration) -> Check {
    let mut bystander = open(ctx.addr, "/").await?;
    expect_status(ctx.addr, &upgrade_request(path), status, wait).await?;
    still_echoes(&mut bystander, "a bystander").await?;
    let mut fresh = open(ctx.addr, "/").await?;
    still_echoes(&mut fresh, "a new connection after the failure").await
}

/// Expects the message `trigger` to end its connection with close 1011 from
/// the host, and other connections to go on.
async fn fails_after_upgrade(ctx: Ctx, trigger: &str, wait: Duration) -> Check {
    let mut bystander = open(ctx.addr, "/").await?;
    let mut victim = open(ctx.addr, "/").await?;
    victim.echo("before").await?;
    victim.send(&msg(op::TEXT, trigger.as_bytes())).await?;
    victim.expect_close(1011, wait).await?;
    victim.expect_eof(STEP).await?;
    still_echoes(&mut bystander, "a bystander").await?;
    let mut fresh = open(ctx.addr, "/").await?;
    still_echoes(&mut fresh, "a new connection after the failure").await
}

async fn panic_500(ctx: Ctx) -> Check {
    fails_before_upgrade(ctx, "/panic", 500, STEP).await
}

async fn panic_1011(ctx: Ctx) -> Check {
    fails_after_upgrade(ctx, "panic", STEP).await
}

async fn spin_500(ctx: Ctx) -> Check {
    fails_before_upgrade(ctx, "/spin", 500, Duration::from_secs(10)).await
}

async fn spin_1011(ctx: Ctx) -> Check {
    fails_after_upgrade(ctx, "spin", Duration::from_secs(10)).await
}

async fn hog_500(ctx: Ctx) -> Check {
    fails_before_upgrade(ctx, "/hog", 500, Duration::from_secs(20)).await
}

async fn hog_1011(ctx: Ctx) -> Check {
    fails_after_upgrade(ctx, "hog", Duration::from_secs(20)).await
}

async fn keepalive_ping(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    let started = Instant::now();
    let f = ws
        .frame(Duration::from_secs(3))
        .await
        .map_err(|e| format!("expected a ping within 3 s: {e}"))?;
    if f.opcode != op::PING {
        return Err(format!("expected a ping, got opcode {}", f.opcode));
    }
    if started.elapsed() < Duration::from_millis(150) {
        return Err(format!(
            "ping after {:?}, before the 200 ms interval",
            started.elapsed()
        ));
    }
    Ok(())
}

async fn keepalive_answered(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    let until = Instant::now() + Duration::from_millis(1500);
    let mut pings = 0;
    while Instant::now() < until {
        match ws
            .frame(until.saturating_duration_since(Instant::now()))
            .await
        {
            Ok(f) if f.opcode == op::PING => {
                pings += 1;
                ws.send(&msg(op::PONG, &f.payload)).await?;
            }
            Ok(f) => return Err(format!("expected only pings, got opcode {}", f.opcode)),
            Err(NoFrame::Timeout) => break,
            Err(e) => return Err(format!("answering pings: {e}")),
        }
    }
    if pings < 2 {
        return Err(format!("{pings} pings in 1.5 s (interval 200 ms)"));
    }
    still_echoes(&mut ws, "a client that answered every ping").await
}

async fn keepalive_drop(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    let f = ws
        .frame(Duration::from_secs(3))
        .await
        .map_err(|e| format!("expected a ping: {e}"))?;
    if f.opcode != op::PING {
        return Err(format!("expected a ping, got opcode {}", f.opcode));
    }
    // Grace is 300 ms; the drop must come without a close frame.
    ws.expect_eof(Duration::from_secs(3)).await
}

async fn output_in_handshake(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/noisy").await?;
    ws.echo("quiet now").await
}

async fn output_on_message(ctx: Ctx) -> Check {
    let mut bystander = open(ctx.addr, "/").await?;
    let mut ws = open(ctx.addr, "/").await?;
    // 64 KiB to each stream, written within one call (and so within its
    // CPU deadline, like the host's handling of it).
    ws.send(&msg(op::TEXT, b"noise 64")).await?;
    ws.expect_text("done 64", Duration::from_secs(20)).await?;
    still_echoes(&mut ws, "the noisy connection").await?;
    still_echoes(&mut bystander, "a bystander").await
}

async fn handler_close_clean(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    ws.send(&msg(op::TEXT, b"close 4000 bye")).await?;
    let reason = ws.expect_close(4000, STEP).await?;
    if reason != "bye" {
        return Err(format!("close reason {reason:?}, expected \"bye\""));
    }
    ws.send(&close_frame(4000, "")).await?;
    ws.expect_eof(STEP).await
}

async fn handler_close_timeout(ctx: Ctx) -> Check {
    let mut ws = open(ctx.addr, "/").await?;
    ws.send(&msg(op::TEXT, b"close 4001 answer me")).await?;
    ws.expect_close(4001, STEP).await?;
    // The close timeout is 300 ms; then the host ends the connection.
    ws.expect_eof(Duration::from_secs(4)).await
}

/// The shutdown case: with a connection open, the signal makes the host
/// send close 1001; after the client's reply the host closes it and exits.
pub async fn shutdown_1001(addr: SocketAddr, signal: impl Future<Output = Check>) -> Check<Conn> {
    let mut ws = open(addr, "/").await?;
    ws.echo("before shutdown").await?;
    signal.await?;
    ws.expect_close(1001, STEP).await?;
    ws.send(&close_frame(1001, "")).await?;
    ws.expect_eof(STEP).await?;
    Ok(ws)
}
