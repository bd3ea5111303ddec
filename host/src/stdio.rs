//! Guest stdout / stderr, forwarded to the host's log.
//!
//! Guest calls are synchronous and run on a tokio worker. wasmtime-wasi's
//! synchronous `wasi:io/streams` implements the blocking stream functions
//! (`blocking-write-and-flush`, the stream destructors, ...) by blocking on
//! the current tokio runtime, which panics on a worker thread. So the host
//! replaces that one interface with [`add_to_linker`], whose blocking
//! functions never wait: every stream the host hands out is either always
//! ready (the log streams below) or fails instead of blocking.
//!
//! Guest output becomes `tracing` events with target `ws_edge_host::guest`:
//! stdout at INFO, stderr at WARN (a panic message lands here), one event
//! per line, lines capped at [`MAX_LINE`] bytes.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::sync::io::streams;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Longest line logged; the rest of a longer line is dropped.
pub(crate) const MAX_LINE: usize = 1024;

/// Which standard stream.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Which {
    Stdout,
    Stderr,
}

/// The peer of the connection an instance serves, shared by its log
/// streams. An instance that serves several connections in turn
/// (`Limits::instance_reuse`) gets the next peer written here. The address
/// is formatted only when the guest writes a line.
#[derive(Clone)]
pub(crate) struct PeerLabel(Arc<Mutex<SocketAddr>>);

impl PeerLabel {
    pub(crate) fn new(peer: SocketAddr) -> Self {
        Self(Arc::new(Mutex::new(peer)))
    }

    /// Labels the instance's later log lines with `peer`.
    pub(crate) fn set(&self, peer: SocketAddr) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = peer;
    }

    fn get(&self) -> SocketAddr {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A guest's stdout or stderr, labelled with the connection's peer.
pub(crate) struct GuestLog {
    which: Which,
    peer: PeerLabel,
}

impl GuestLog {
    pub(crate) fn new(which: Which, peer: PeerLabel) -> Self {
        Self { which, peer }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineLog::new(self.which, self.peer.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineLog::new(self.which, self.peer.clone()))
    }
}

/// Buffers bytes and logs complete lines.
struct LineLog {
    which: Which,
    peer: PeerLabel,
    line: Vec<u8>,
    /// The current line passed [`MAX_LINE`]; drop bytes until its end.
    truncated: bool,
}

impl LineLog {
    fn new(which: Which, peer: PeerLabel) -> Self {
        Self {
            which,
            peer,
            line: Vec::new(),
            truncated: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            let (text, ends) = match chunk.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (chunk, false),
            };
            let room = MAX_LINE.saturating_sub(self.line.len());
            if text.len() > room {
                self.truncated = true;
            }
            self.line.extend_from_slice(&text[..text.len().min(room)]);
            if ends {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        if self.line.is_empty() && !self.truncated {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let more = if self.truncated { " …" } else { "" };
        let peer = self.peer.get();
        match self.which {
            Which::Stdout => {
                tracing::info!(target: "ws_edge_host::guest", peer = %peer, "stdout: {text}{more}")
            }
            Which::Stderr => {
                tracing::warn!(target: "ws_edge_host::guest", peer = %peer, "stderr: {text}{more}")
            }
        }
        self.line.clear();
        self.truncated = false;
    }
}

impl Drop for LineLog {
    fn drop(&mut self) {
        self.emit();
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLog {
    async fn ready(&mut self) {}
}

impl OutputStream for LineLog {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LineLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `wasi:io/streams` without blocking on tokio: the non-blocking functions
/// are wasmtime-wasi's own; the blocking ones do the non-blocking operation
/// once (a stream that is not ready fails instead of waiting).
struct NoWait;

impl wasmtime::component::HasData for NoWait {
    type Data<'a> = Streams<'a>;
}

pub(crate) struct Streams<'a>(&'a mut ResourceTable);

/// Replaces `wasi:io/streams` in `linker` (which already has the rest of
/// WASI) with the non-waiting version.
pub(crate) fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = streams::add_to_linker::<T, NoWait>(linker, |t| Streams(t.ctx().table));
    linker.allow_shadowing(false);
    result
}

type OutRes = Resource<streams::OutputStream>;
type InRes = Resource<streams::InputStream>;

fn would_block() -> StreamError {
    StreamError::trap("a blocking WASI stream operation would block (not supported by this host)")
}

impl streams::Host for Streams<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

impl streams::HostOutputStream for Streams<'_> {
    fn drop(&mut self, stream: OutRes) -> wasmtime::Result<()> {
        // wasmtime-wasi awaits the stream's `cancel` here; the streams this
        // host creates have nothing in flight, so dropping them is enough.
        self.0.delete(stream)?;
        Ok(())
    }

    fn check_write(&mut self, stream: OutRes) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.0, stream)
    }

    fn write(&mut self, stream: OutRes, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(&mut self, stream: OutRes, bytes: Vec<u8>) -> StreamResult<()> {
        let s = self.0.get_mut(&stream)?;
        if s.check_write()? < bytes.len() {
            return Err(would_block());
        }
        s.write(bytes.into())?;
        s.flush()
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: OutRes, len: u64) -> StreamResult<()> {
        let s = self.0.get_mut(&stream)?;
        let len = usize::try_from(len).map_err(|_| would_block())?;
        if s.check_write()? < len {
            return Err(would_block());
        }
        s.write(vec![0; len].into())?;
        s.flush()
    }

    fn subscribe(&mut self, stream: OutRes) -> wasmtime::Result<Resource<streams::Pollable>> {
        streams::HostOutputStream::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: OutRes, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: OutRes) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: OutRes) -> StreamResult<()> {
        self.0.get_mut(&stream)?.flush()
    }

    fn splice(&mut self, dst: OutRes, src: InRes, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.0, dst, src, len)
    }

    fn blocking_splice(&mut self, dst: OutRes, src: InRes, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.0, dst, src, len)
    }
}

impl streams::HostInputStream for Streams<'_> {
    fn drop(&mut self, stream: InRes) -> wasmtime::Result<()> {
        self.0.delete(stream)?;
        Ok(())
    }

    fn read(&mut self, stream: InRes, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.0, stream, len)
    }

    fn blocking_read(&mut self, stream: InRes, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.0, stream, len)
    }

    fn skip(&mut self, stream: InRes, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: InRes, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.0, stream, len)
    }

    fn subscribe(&mut self, stream: InRes) -> wasmtime::Result<Resource<streams::Pollable>> {
        streams::HostInputStream::subscribe(self.0, stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_capped() {
        let mut log = LineLog::new(Which::Stdout, PeerLabel::new(([192, 0, 2, 1], 5000).into()));
        log.push(b"one\ntw");
        assert_eq!(log.line, b"tw");
        log.push(b"o\n");
        assert!(log.line.is_empty());
        log.push(&vec![b'x'; MAX_LINE + 10]);
        assert_eq!(log.line.len(), MAX_LINE);
        assert!(log.truncated);
        log.push(b"yy\nz");
        assert_eq!(log.line, b"z");
        assert!(!log.truncated);
    }
}
