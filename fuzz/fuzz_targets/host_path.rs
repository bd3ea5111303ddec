//! The whole host path: arbitrary bytes written to a connection of an
//! in-process host serving the bundled echo component.
//!
//! The server (wasmtime engine, compiled component, instance pool) is built
//! once; each input is one connection over a Unix socket pair, served by the
//! same `conn::serve` code as TCP (`Server::serve_unix`). The client writes
//! the input (in chunks chosen by the first byte, while reading concurrently,
//! so a large echo cannot deadlock), shuts down its write side and reads to
//! EOF. Checked for every input:
//! - nothing panics, and the connection task finishes (bounded time);
//! - the live-connection count is back to 0, so the next input is served by
//!   the same, still healthy server;
//! - the host wrote nothing, or exactly one well-formed HTTP/1.1 response: a
//!   `101` followed only by complete, unmasked, RSV-free server frames with
//!   valid opcodes, or a non-101 response whose body is exactly its
//!   `Content-Length`, with nothing after it.
//!
//! `HOST_PATH_INSTANCE_REUSE=N` serves the inputs with `Limits::instance_reuse`
//! N, so that one instance meets many hostile connections in turn (default
//! 1: a fresh instance per input).
//!
//! First byte: bit 0 set prepends a valid browser handshake (Chrome 131) so
//! the rest goes straight to the frame pump; bits 1..=7 (if non-zero) times 3
//! is the write chunk size, with a yield between chunks (split reads). After
//! [`MAX_PIECES`] chunks the rest goes in one write: split points matter at
//! the start (the head, the first frames), and a few thousand 3-byte writes
//! per input only made each execution slower.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::runtime::Runtime;
use ws_edge_host::{Limits, Monitor, Server};

const CHROME_HEAD: &[u8] = include_bytes!("../../tests/fixtures/requests/accept/chrome-131.http");

struct Host {
    rt: Runtime,
    server: Server,
    monitor: Monitor,
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        // libFuzzer's C `main` does not ignore SIGPIPE as Rust's does; a
        // write to a socket the host already closed must be an error, not a
        // dead fuzzer.
        // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let limits = Limits {
            // Small pool: one connection at a time.
            max_connections: 4,
            write_timeout: Duration::from_secs(2),
            head_timeout: Duration::from_secs(2),
            instance_reuse: std::env::var("HOST_PATH_INSTANCE_REUSE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            ..Limits::default()
        };
        let server = rt
            .block_on(
                Server::builder()
                    .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .limits(limits)
                    .bind(),
            )
            .expect("server");
        let monitor = server.monitor();
        Host {
            rt,
            server,
            monitor,
        }
    })
}

/// How long one input may take end to end (the host's own timeouts are 2 s).
const BOUND: Duration = Duration::from_secs(20);

/// Separate writes per input at most; the last one carries the rest.
const MAX_PIECES: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(rest.len() + CHROME_HEAD.len());
    if ctl & 1 == 1 {
        input.extend_from_slice(CHROME_HEAD);
    }
    input.extend_from_slice(rest);
    let chunk = match usize::from(ctl >> 1) * 3 {
        0 => input.len().max(1),
        n => n,
    };

    let h = host();
    let out = h.rt.block_on(async {
        let (client, server_side) = UnixStream::pair().expect("socket pair");
        let peer = SocketAddr::from(([198, 51, 100, 7], 5555));
        let serving = tokio::spawn(h.server.serve_unix(server_side, peer));
        let (mut rd, mut wr) = client.into_split();
        let writer = async {
            let split = input.len().min(chunk * (MAX_PIECES - 1));
            let (head, tail) = input.split_at(split);
            for piece in head
                .chunks(chunk)
                .chain(Some(tail).filter(|t| !t.is_empty()))
            {
                if wr.write_all(piece).await.is_err() {
                    return;
                }
                if piece.len() < input.len() {
                    tokio::task::yield_now().await;
                }
            }
            let _ = wr.shutdown().await;
        };
        let reader = async {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let (_, out) = tokio::time::timeout(BOUND, async { tokio::join!(writer, reader) })
            .await
            .expect("the host neither answered nor closed in time");
        tokio::time::timeout(BOUND, serving)
            .await
            .expect("the connection task did not finish")
            .expect("the connection task panicked");
        out
    });
    assert_eq!(
        h.monitor.live_connections(),
        0,
        "a finished connection is still counted as live"
    );
    check_output(&out);
});

/// The host's output is empty or one well-formed response (see the module docs).
fn check_output(out: &[u8]) {
    if out.is_empty() {
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(out) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "host output is not a complete HTTP response ({other:?}): {:?}",
            String::from_utf8_lossy(&out[..out.len().min(200)])
        ),
    };
    assert_eq!(resp.version, Some(1), "response must be HTTP/1.1");
    let status = resp.code.expect("complete response has a status");
    let body = &out[head_len..];
    if status == 101 {
        check_frames(body);
        return;
    }
    assert!((200..600).contains(&status), "unexpected status {status}");
    let lengths: Vec<&[u8]> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value)
        .collect();
    assert_eq!(lengths.len(), 1, "exactly one Content-Length on a {status}");
    let length: usize = std::str::from_utf8(lengths[0])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("numeric Content-Length");
    assert_eq!(
        body.len(),
        length,
        "{status} body length differs from its Content-Length (bytes after the response?)"
    );
}

/// After a 101: only complete server frames (unmasked, no RSV bits, known
/// opcodes, control frames short and final).
fn check_frames(mut b: &[u8]) {
    while !b.is_empty() {
        assert!(b.len() >= 2, "truncated frame header");
        let (b0, b1) = (b[0], b[1]);
        assert_eq!(b0 & 0x70, 0, "RSV bits set without an extension");
        let opcode = b0 & 0x0f;
        assert!(
            matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10),
            "server sent reserved opcode {opcode:#x}"
        );
        assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
        let (len, at) = match b1 & 0x7f {
            126 => {
                assert!(b.len() >= 4, "truncated 16-bit length");
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                assert!(b.len() >= 10, "truncated 64-bit length");
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode >= 8 {
            assert!(len <= 125 && b0 & 0x80 != 0, "bad control frame");
        }
        let len = usize::try_from(len).expect("frame length fits");
        assert!(b.len() - at >= len, "truncated frame payload");
        if opcode == 8 {
            assert!(len != 1, "close payload of one byte");
        }
        b = &b[at + len..];
    }
}
