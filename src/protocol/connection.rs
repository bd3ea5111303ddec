//! The connection state machine: decoding, events, sending, timers.

use core::ops::Range;

use super::close::{CloseCode, CloseFrame, Ending, Timer, close_payload};
use super::config::{Config, Extension};
use super::error::{ProtocolError, SendError};
use super::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, write_frame_rsv};
use super::mask::{apply_mask, mask_extend, unmask_shift_left};
use super::utf8::Utf8Validator;
use crate::Parsed;

/// The message buffer keeps at most this much capacity between messages, so
/// one large message does not pin its memory for the connection's lifetime.
const RETAIN_CAPACITY: usize = 64 * 1024;

/// Something the peer sent, handed to the handler's callback.
///
/// Payloads are borrowed: from the caller's input when a whole unfragmented
/// frame arrived in one call (unmasked in place by
/// [`Connection::receive_mut`], or into a reused buffer by
/// [`Connection::receive`]), otherwise from the connection's reused message
/// buffer. Copy what must outlive the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message, validated as UTF-8.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping. With [`Config::auto_pong`] the pong is already queued.
    Ping(&'a [u8]),
    /// A pong (solicited or not).
    Pong(&'a [u8]),
    /// The connection is closed: the last event it delivers, once, when it
    /// enters [`State::Closed`] (never for a connection dropped before it
    /// ends). [`State::Closed`] carries the [`Ending`] these two come from.
    ///
    /// The code and reason are the peer's close frame when the peer closed
    /// (1005 with an empty reason if its frame had no code), the code ws-edge
    /// sent when the peer broke the protocol (1002, 1007, 1009), or 1006 when
    /// the connection ended without a close frame (TCP gone, keepalive or
    /// close timeout).
    Close(CloseCode, &'a str),
}

/// The state of a connection (RFC 6455 §4, §7), as in the WIT
/// `connection-state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's, at most until the
    /// close timeout. Received messages are still delivered; nothing more
    /// can be sent.
    Closing,
    /// The connection ended, and [`Ending`] says how. The host writes the
    /// remaining output and closes the socket as the ending says.
    Closed(Ending),
}

/// The sending half of a connection: what the handler's callback gets next
/// to each [`Event`], so it can reply from inside the callback. Also
/// available outside callbacks through [`Connection::outbox`].
pub struct Outbox<'a> {
    out: &'a mut Outgoing,
}

/// An accepted server-side WebSocket connection: RFC 6455 framing as a state
/// machine without I/O.
///
/// The host feeds it the bytes it read ([`Connection::receive`]), calls
/// [`Connection::tick`] when [`Connection::deadline`] passes, and writes the
/// bytes of [`Connection::take_output`] (or [`Connection::output`] +
/// [`Connection::consume`]) to the socket, in order. Times are milliseconds
/// on a monotonic clock of the host's choosing; the connection never reads a
/// clock.
///
/// Protocol violations by the peer are answered on the wire with a close
/// frame (1002, 1007 or 1009), reported as [`Event::Close`] and leave the
/// connection [`State::Closed`]; they are not errors of these methods.
///
/// Differences from WebSocket-Node's `WebSocketConnection`: unmasked client
/// frames are a protocol error (RFC 6455 §5.1 says MUST; WebSocket-Node
/// accepts them); UTF-8 is checked as bytes arrive, not when the message is
/// complete; the message limit also applies to unfragmented messages; ping
/// and pong payloads over 125 bytes are refused instead of cut to 124; close
/// reasons are cut at a UTF-8 boundary to 123 bytes; 1015 is never valid on
/// the wire; output is bounded by a high-water mark.
pub struct Connection {
    dec: Decoder,
    out: Outgoing,
}

#[derive(Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    len: u64,
    done: u64,
}

#[derive(Clone, Copy)]
struct Message {
    opcode: OpCode,
    rsv: u8,
}

struct Decoder {
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    frame: Option<Frame>,
    msg: Option<Message>,
    /// The message being assembled (decoded bytes for an extension's
    /// message).
    buf: Vec<u8>,
    /// Unmasked input of an extension's message, before decoding.
    ext_buf: Vec<u8>,
    /// Payload bytes the current message occupied on the wire so far.
    wire: u64,
    utf8: Utf8Validator,
    ctrl: [u8; 125],
    ctrl_len: usize,
}

struct Outgoing {
    config: Config,
    ext: Option<Box<dyn Extension>>,
    ext_buf: Vec<u8>,
    buf: Vec<u8>,
    start: usize,
    state: State,
    now: u64,
    close_sent_at: u64,
    keepalive_anchor: u64,
    ping_outstanding: Option<u64>,
    /// The payload being delivered, while the callback runs, when it may go
    /// back out in place (see [`Connection::receive_owned`]): its address
    /// and length, to recognise it when it is sent.
    lent: Option<(usize, usize)>,
    /// The lent payload was sent back as one frame of this opcode with
    /// nothing queued before it: it is queued where it lies, in front of
    /// `buf`, and counts in [`Outgoing::queued`]. With the payload's length.
    echoed: Option<(OpCode, usize)>,
}

/// The length of a client frame's masking key: what a client header has
/// beyond the server header for the same payload length.
const MASK_LEN: usize = 4;

/// Input bytes: borrowed immutably (unmask into a buffer), mutably (unmask
/// in place) or owned (unmask in place, and the buffer may become the
/// output).
trait Input {
    /// Whether the input buffer may become the output: a payload sent back
    /// unchanged then is not copied ([`Connection::receive_owned`]).
    const OWNED: bool = false;
    fn bytes(&self) -> &[u8];
    fn unmask<'s>(
        &'s mut self,
        range: Range<usize>,
        key: [u8; 4],
        scratch: &'s mut Vec<u8>,
    ) -> &'s [u8];
    /// Unmasks `range` into the 4 bytes before it (only when `OWNED`).
    fn unmask_left(&mut self, _range: Range<usize>, _key: [u8; 4]) -> &[u8] {
        unreachable!("only an owned input lends its buffer")
    }
    /// The buffer, leaving an empty one (only when `OWNED`).
    fn take(&mut self) -> Vec<u8> {
        unreachable!("only an owned input lends its buffer")
    }
}

impl Input for &mut Vec<u8> {
    const OWNED: bool = true;
    fn bytes(&self) -> &[u8] {
        self
    }
    fn unmask<'s>(&'s mut self, range: Range<usize>, key: [u8; 4], _: &'s mut Vec<u8>) -> &'s [u8] {
        let p = &mut self[range];
        apply_mask(p, key, 0);
        p
    }
    fn unmask_left(&mut self, range: Range<usize>, key: [u8; 4]) -> &[u8] {
        let to = range.start - MASK_LEN;
        unmask_shift_left(self, range.start, range.len(), MASK_LEN, key);
        &self[to..to + range.len()]
    }
    fn take(&mut self) -> Vec<u8> {
        core::mem::take(&mut **self)
    }
}

impl Input for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn unmask<'s>(
        &'s mut self,
        range: Range<usize>,
        key: [u8; 4],
        scratch: &'s mut Vec<u8>,
    ) -> &'s [u8] {
        scratch.clear();
        mask_extend(scratch, &self[range], key, 0);
        scratch
    }
}

impl Input for &mut [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn unmask<'s>(&'s mut self, range: Range<usize>, key: [u8; 4], _: &'s mut Vec<u8>) -> &'s [u8] {
        let p = &mut self[range];
        apply_mask(p, key, 0);
        p
    }
}

impl Connection {
    /// A new open connection, created at `now_ms` (the keepalive timer starts
    /// here).
    pub fn new(config: Config, now_ms: u64) -> Connection {
        Connection {
            dec: Decoder {
                hdr: [0; MAX_HEADER_LEN],
                hdr_len: 0,
                frame: None,
                msg: None,
                buf: Vec::new(),
                ext_buf: Vec::new(),
                wire: 0,
                utf8: Utf8Validator::new(),
                ctrl: [0; 125],
                ctrl_len: 0,
            },
            out: Outgoing {
                config,
                ext: None,
                ext_buf: Vec::new(),
                buf: Vec::new(),
                start: 0,
                state: State::Open,
                lent: None,
                echoed: None,
                now: now_ms,
                close_sent_at: 0,
                keepalive_anchor: now_ms,
                ping_outstanding: None,
            },
        }
    }

    /// A new open connection with a negotiated extension that uses RSV bits
    /// (see [`Extension`]).
    pub fn with_extension(
        config: Config,
        extension: Box<dyn Extension>,
        now_ms: u64,
    ) -> Connection {
        let mut c = Connection::new(config, now_ms);
        c.out.ext = Some(extension);
        c
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.out.config
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.out.state
    }

    /// Whether the state is [`State::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self.out.state, State::Closed(_))
    }

    /// Consumes bytes read from the socket, in order, in chunks of any size.
    ///
    /// Complete frames are decoded and handed to `on_event` (with an
    /// [`Outbox`] to reply through) before this returns; pings are answered
    /// and close frames echoed automatically. Bytes after the peer's close
    /// frame or a protocol error are ignored, as is everything once closed.
    pub fn receive(
        &mut self,
        data: &[u8],
        now_ms: u64,
        mut on_event: impl FnMut(Event<'_>, &mut Outbox<'_>),
    ) {
        self.receive_impl(data, now_ms, &mut on_event);
    }

    /// [`Connection::receive`] that unmasks the payload in place in `data`,
    /// so a whole unfragmented frame is delivered without copying. `data` is
    /// left with unspecified contents.
    pub fn receive_mut(
        &mut self,
        data: &mut [u8],
        now_ms: u64,
        mut on_event: impl FnMut(Event<'_>, &mut Outbox<'_>),
    ) {
        self.receive_impl(data, now_ms, &mut on_event);
    }

    /// [`Connection::receive_mut`] that may also keep `data`'s buffer as the
    /// output, so that a message sent back unchanged is not copied (an echo).
    ///
    /// When `data` holds exactly one whole, unfragmented, uncompressed data
    /// frame, its payload is unmasked 4 bytes to the left, which leaves in
    /// front of it the room of the server's header for the same length. If
    /// `on_event` then sends that very payload (the slice of the event, as
    /// text or binary) as one frame, with nothing queued before it, the
    /// header is written into that room and the buffer becomes the output:
    /// [`Connection::take_output`] returns it,
    /// followed by whatever was queued after the echo. Otherwise this is
    /// [`Connection::receive_mut`]. `data` is left with unspecified
    /// contents, possibly another (empty) buffer.
    pub fn receive_owned(
        &mut self,
        data: &mut Vec<u8>,
        now_ms: u64,
        mut on_event: impl FnMut(Event<'_>, &mut Outbox<'_>),
    ) {
        self.receive_impl(data, now_ms, &mut on_event);
    }

    /// Advances the timers to `now_ms`: sends a keepalive ping, drops a peer
    /// that did not answer within the grace period, or ends a close
    /// handshake that timed out (both as [`Event::Close`] with 1006).
    pub fn tick(&mut self, now_ms: u64, mut on_event: impl FnMut(Event<'_>, &mut Outbox<'_>)) {
        let out = &mut self.out;
        out.advance(now_ms);
        let now = out.now;
        match out.state {
            State::Open => {
                let Some(interval) = out.config.keepalive_interval_ms else {
                    return;
                };
                if let (Some(sent), Some(grace)) =
                    (out.ping_outstanding, out.config.keepalive_grace_ms)
                {
                    if now >= sent.saturating_add(grace) {
                        out.end_abnormally(Ending::TimedOut(Timer::Keepalive), &mut on_event);
                    }
                    return;
                }
                if now >= out.keepalive_anchor.saturating_add(interval) {
                    out.push_frame(true, 0, OpCode::Ping, b"");
                    out.keepalive_anchor = now;
                    out.ping_outstanding.get_or_insert(now);
                }
            }
            State::Closing => {
                if now
                    >= out
                        .close_sent_at
                        .saturating_add(out.config.close_timeout_ms)
                {
                    out.end_abnormally(Ending::TimedOut(Timer::CloseHandshake), &mut on_event);
                }
            }
            State::Closed(_) => {}
        }
    }

    /// Starts a close handshake on the host's behalf (for example 1001 when
    /// shutting down). A code that may not be sent (see
    /// [`CloseCode::is_valid_on_wire`]) is replaced by 1011; the reason is
    /// truncated at a UTF-8 boundary to 123 bytes. Does nothing unless the
    /// state is [`State::Open`].
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str, now_ms: u64) {
        self.out.advance(now_ms);
        let mut code = code.into();
        if !code.is_valid_on_wire() {
            code = CloseCode::INTERNAL_ERROR;
        }
        if matches!(self.out.state, State::Open) {
            self.out.start_close(code, reason);
        }
    }

    /// Tells the connection the TCP connection is gone without a close
    /// handshake. Unless already closed, `on_event` gets [`Event::Close`]
    /// with 1006 and the state becomes closed. Queued output is discarded.
    pub fn disconnected(
        &mut self,
        now_ms: u64,
        mut on_event: impl FnMut(Event<'_>, &mut Outbox<'_>),
    ) {
        self.out.advance(now_ms);
        self.out.buf.clear();
        self.out.start = 0;
        if !self.is_closed() {
            self.out.end_abnormally(Ending::Lost, &mut on_event);
        }
    }

    /// The next instant at which [`Connection::tick`] must be called if
    /// nothing else happens first: the keepalive ping, the keepalive
    /// timeout, or the close timeout. `None` when no timer is armed.
    pub fn deadline(&self) -> Option<u64> {
        let out = &self.out;
        match out.state {
            State::Open => {
                let interval = out.config.keepalive_interval_ms?;
                match (out.ping_outstanding, out.config.keepalive_grace_ms) {
                    (Some(sent), Some(grace)) => Some(sent.saturating_add(grace)),
                    _ => Some(out.keepalive_anchor.saturating_add(interval)),
                }
            }
            State::Closing => Some(
                out.close_sent_at
                    .saturating_add(out.config.close_timeout_ms),
            ),
            State::Closed(_) => None,
        }
    }

    /// The sending half, for sending outside a callback.
    pub fn outbox(&mut self) -> Outbox<'_> {
        Outbox { out: &mut self.out }
    }

    /// Queues a text message; see [`Outbox::send_text`].
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.outbox().send_text(text)
    }

    /// Queues a binary message; see [`Outbox::send_binary`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.outbox().send_binary(data)
    }

    /// Queues a ping; see [`Outbox::ping`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.outbox().ping(payload)
    }

    /// Queues an unsolicited pong; see [`Outbox::pong`].
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.outbox().pong(payload)
    }

    /// The bytes queued for the socket, oldest first.
    pub fn output(&self) -> &[u8] {
        &self.out.buf[self.out.start..]
    }

    /// Marks the first `n` bytes of [`Connection::output`] as written
    /// (clamped to what is queued).
    pub fn consume(&mut self, n: usize) {
        let out = &mut self.out;
        out.start = out.start.saturating_add(n).min(out.buf.len());
        if out.start == out.buf.len() {
            out.buf.clear();
            out.start = 0;
        } else if out.start >= RETAIN_CAPACITY && out.start * 2 >= out.buf.len() {
            out.buf.drain(..out.start);
            out.start = 0;
        }
    }

    /// Takes every queued byte, leaving the queue empty.
    pub fn take_output(&mut self) -> Vec<u8> {
        let out = &mut self.out;
        let mut v = core::mem::take(&mut out.buf);
        if out.start > 0 {
            v.drain(..out.start);
            out.start = 0;
        }
        v
    }

    /// How many bytes are queued for the socket.
    pub fn queued_bytes(&self) -> usize {
        self.out.queued()
    }

    fn receive_impl<I: Input, F: FnMut(Event<'_>, &mut Outbox<'_>)>(
        &mut self,
        mut data: I,
        now: u64,
        f: &mut F,
    ) {
        self.out.advance(now);
        if self.is_closed() {
            return;
        }
        let len = data.bytes().len();
        if len > 0 {
            self.out.keepalive_anchor = self.out.now;
            self.out.ping_outstanding = None;
        }
        let mut pos = 0;
        loop {
            if self.is_closed() {
                return;
            }
            let dec = &mut self.dec;
            let Some(mut fr) = dec.frame else {
                if pos == len {
                    return;
                }
                // Whether this frame's header starts the input.
                let at_start = pos == 0 && dec.hdr_len == 0;
                // Frame header, possibly continuing one split across calls.
                let parsed = if dec.hdr_len == 0 {
                    let rest = &data.bytes()[pos..];
                    match FrameHeader::parse(rest) {
                        Ok(Parsed::Complete { consumed, value }) => Ok((value, consumed)),
                        Ok(Parsed::Incomplete) => {
                            dec.hdr[..rest.len()].copy_from_slice(rest);
                            dec.hdr_len = rest.len();
                            return;
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    let have = dec.hdr_len;
                    let take = (MAX_HEADER_LEN - have).min(len - pos);
                    dec.hdr[have..have + take].copy_from_slice(&data.bytes()[pos..pos + take]);
                    match FrameHeader::parse(&dec.hdr[..have + take]) {
                        Ok(Parsed::Complete { consumed, value }) => {
                            dec.hdr_len = 0;
                            Ok((value, consumed - have))
                        }
                        Ok(Parsed::Incomplete) => {
                            dec.hdr_len = have + take;
                            return;
                        }
                        Err(e) => Err(e),
                    }
                };
                let (h, consumed) =
                    match parsed.and_then(|(h, n)| Ok((dec.check_header(&h, &self.out)?, n))) {
                        Ok(x) => x,
                        Err(e) => return self.out.fail(e, f),
                    };
                pos += consumed;
                let (plen, key) = (h.len as usize, h.mask);
                if !h.opcode.is_control()
                    && h.fin
                    && h.rsv == 0
                    && dec.msg.is_none()
                    && len - pos >= plen
                {
                    // Fast path: a whole unfragmented message in this input.
                    // When it is the whole input and the buffer may be
                    // kept, unmask it in front of the room for a reply's
                    // header (see `receive_owned`).
                    // (A header with a longer length encoding than needed
                    // would leave more room than the reply's header.)
                    let lend = I::OWNED
                        && at_start
                        && pos + plen == len
                        && pos == header_len(plen) + MASK_LEN;
                    let payload = if lend {
                        let p = data.unmask_left(pos..pos + plen, key);
                        self.out.lent = Some((p.as_ptr() as usize, plen));
                        p
                    } else {
                        data.unmask(pos..pos + plen, key, &mut dec.buf)
                    };
                    pos += plen;
                    let event = if h.opcode == OpCode::Text {
                        match simdutf8::basic::from_utf8(payload) {
                            Ok(s) => Event::Text(s),
                            Err(_) => return self.out.fail(ProtocolError::InvalidUtf8, f),
                        }
                    } else {
                        Event::Binary(payload)
                    };
                    f(event, &mut Outbox { out: &mut self.out });
                    self.out.lent = None;
                    if let Some((opcode, _)) = self.out.echoed.take() {
                        self.out
                            .adopt(data.take(), opcode, pos - plen - MASK_LEN, plen);
                    }
                    self.dec.recycle();
                    continue;
                }
                if h.opcode.is_control() {
                    dec.ctrl_len = 0;
                } else if dec.msg.is_none() {
                    dec.msg = Some(Message {
                        opcode: h.opcode,
                        rsv: h.rsv,
                    });
                    dec.utf8.reset();
                    dec.buf.clear();
                    dec.wire = 0;
                }
                if !h.opcode.is_control() {
                    dec.wire += h.len;
                    // Room for the payload bytes at hand, or for what the
                    // buffer keeps between messages anyway: it grows with
                    // what arrives, so a header that announces 16 MiB costs
                    // nothing until the bytes come, while a frame up to
                    // RETAIN_CAPACITY split across reads needs no realloc.
                    dec.buf.reserve(plen.min((len - pos).max(RETAIN_CAPACITY)));
                }
                dec.frame = Some(Frame {
                    fin: h.fin,
                    opcode: h.opcode,
                    mask: key,
                    len: h.len,
                    done: 0,
                });
                continue;
            };
            // Payload of the current frame.
            let take = (fr.len - fr.done).min((len - pos) as u64) as usize;
            let chunk = &data.bytes()[pos..pos + take];
            pos += take;
            if fr.opcode.is_control() {
                let dst = &mut dec.ctrl[dec.ctrl_len..dec.ctrl_len + take];
                dst.copy_from_slice(chunk);
                apply_mask(dst, fr.mask, fr.done as usize);
                dec.ctrl_len += take;
            } else if let Some(Message { opcode, rsv }) = dec.msg
                && rsv != 0
            {
                // A message of the extension: decoded as it arrives, so the
                // limit counts decoded bytes as they are produced.
                let Some(ext) = self.out.ext.as_mut() else {
                    return self.out.fail(ProtocolError::ReservedBits, f);
                };
                dec.ext_buf.clear();
                mask_extend(&mut dec.ext_buf, chunk, fr.mask, fr.done as usize);
                let start = dec.buf.len();
                let max = usize::try_from(self.out.config.max_message).unwrap_or(usize::MAX);
                let result = ext.decode(opcode, rsv, &dec.ext_buf, false, max, &mut dec.buf);
                if let Err(e) = dec.check_decoded(opcode, start, max, result) {
                    return self.out.fail(e, f);
                }
            } else {
                let start = dec.buf.len();
                if start + take > dec.buf.capacity() {
                    // Grow geometrically, but past the end of this frame
                    // only while under the message limit: a 16 MiB frame
                    // must not leave a 32 MiB buffer.
                    let frame_end = start + (fr.len - fr.done) as usize;
                    let max_message =
                        usize::try_from(self.out.config.max_message).unwrap_or(usize::MAX);
                    let doubled = dec.buf.capacity().saturating_mul(2);
                    let upper = frame_end.max(doubled.min(max_message));
                    let target = doubled.clamp(start + take, upper);
                    dec.buf.reserve_exact(target - start);
                }
                mask_extend(&mut dec.buf, chunk, fr.mask, fr.done as usize);
                let piece = &dec.buf[start..];
                if let Some(Message {
                    opcode: OpCode::Text,
                    rsv: 0,
                }) = dec.msg
                    && dec.utf8.feed(piece).is_err()
                {
                    return self.out.fail(ProtocolError::InvalidUtf8, f);
                }
            }
            fr.done += take as u64;
            if fr.done < fr.len {
                dec.frame = Some(fr);
                return;
            }
            dec.frame = None;
            if fr.opcode.is_control() {
                self.control_frame(fr.opcode, f);
            } else if fr.fin {
                self.message_complete(f);
            }
        }
    }

    fn control_frame<F: FnMut(Event<'_>, &mut Outbox<'_>)>(&mut self, opcode: OpCode, f: &mut F) {
        let payload = &self.dec.ctrl[..self.dec.ctrl_len];
        let out = &mut self.out;
        match opcode {
            OpCode::Ping => {
                if out.config.auto_pong && matches!(out.state, State::Open) {
                    out.push_frame(true, 0, OpCode::Pong, payload);
                }
                f(Event::Ping(payload), &mut Outbox { out });
            }
            OpCode::Pong => f(Event::Pong(payload), &mut Outbox { out }),
            _ => {
                let (code, reason) = match parse_close_payload(payload) {
                    Ok(x) => x,
                    Err(e) => return out.fail(e, f),
                };
                if matches!(out.state, State::Open) {
                    // Echo the peer's code (RFC 6455 §5.5.1), or an empty
                    // close if it sent none.
                    if code == CloseCode::NO_STATUS {
                        out.push_frame(true, 0, OpCode::Close, b"");
                    } else {
                        out.push_frame(true, 0, OpCode::Close, &code.as_u16().to_be_bytes());
                    }
                }
                out.state = State::Closed(Ending::Clean(CloseFrame {
                    code,
                    reason: reason.to_owned(),
                }));
                f(Event::Close(code, reason), &mut Outbox { out });
            }
        }
    }

    fn message_complete<F: FnMut(Event<'_>, &mut Outbox<'_>)>(&mut self, f: &mut F) {
        let dec = &mut self.dec;
        let out = &mut self.out;
        let Some(msg) = dec.msg.take() else {
            return;
        };
        if msg.rsv != 0 {
            let Some(ext) = out.ext.as_mut() else {
                return out.fail(ProtocolError::ReservedBits, f);
            };
            let start = dec.buf.len();
            let max = usize::try_from(out.config.max_message).unwrap_or(usize::MAX);
            let result = ext.decode(msg.opcode, msg.rsv, &[], true, max, &mut dec.buf);
            if let Err(e) = dec.check_decoded(msg.opcode, start, max, result) {
                return out.fail(e, f);
            }
        }
        if msg.opcode == OpCode::Text && dec.utf8.finish().is_err() {
            return out.fail(ProtocolError::InvalidUtf8, f);
        }
        let payload = &dec.buf[..];
        let event = if msg.opcode == OpCode::Text {
            // SAFETY: every byte of the message (decoded, for an
            // extension's) went through `dec.utf8.feed` and `finish`
            // succeeded.
            Event::Text(unsafe { core::str::from_utf8_unchecked(payload) })
        } else {
            Event::Binary(payload)
        };
        f(event, &mut Outbox { out });
        dec.recycle();
    }
}

/// A frame header that passed the connection's checks.
struct CheckedHeader {
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    mask: [u8; 4],
    len: u64,
}

impl Decoder {
    fn check_header(
        &self,
        h: &FrameHeader,
        out: &Outgoing,
    ) -> Result<CheckedHeader, ProtocolError> {
        let Some(mask) = h.mask else {
            return Err(ProtocolError::UnmaskedFrame);
        };
        if h.rsv != 0 {
            let allowed = match (h.opcode, &out.ext) {
                (OpCode::Text | OpCode::Binary, Some(ext)) => ext.rsv_bits() & 0x70,
                _ => 0,
            };
            if h.rsv & !allowed != 0 {
                return Err(ProtocolError::ReservedBits);
            }
        }
        let cfg = &out.config;
        match h.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if h.payload_len > 125 {
                    return Err(ProtocolError::ControlFrameTooLong);
                }
                if !h.fin {
                    return Err(ProtocolError::FragmentedControlFrame);
                }
            }
            OpCode::Continuation | OpCode::Text | OpCode::Binary => {
                let (so_far, rsv) = if h.opcode == OpCode::Continuation {
                    let Some(msg) = self.msg else {
                        return Err(ProtocolError::UnexpectedContinuation);
                    };
                    (self.wire, msg.rsv)
                } else {
                    if self.msg.is_some() {
                        return Err(ProtocolError::ExpectedContinuation);
                    }
                    (0, h.rsv)
                };
                // An extension's message is limited by its decoded size as
                // it is decoded; its wire size only by the allowance.
                let limit = if rsv != 0 {
                    encoded_limit(cfg.max_message)
                } else {
                    cfg.max_message
                };
                if h.payload_len > cfg.max_frame_payload || usize::try_from(h.payload_len).is_err()
                {
                    return Err(ProtocolError::FrameTooLarge);
                }
                if so_far.saturating_add(h.payload_len) > limit {
                    return Err(ProtocolError::MessageTooLarge);
                }
            }
        }
        Ok(CheckedHeader {
            fin: h.fin,
            rsv: h.rsv,
            opcode: h.opcode,
            mask,
            len: h.payload_len,
        })
    }

    /// Checks what an extension just decoded onto `buf[start..]`: the UTF-8
    /// of a text message first (over the bytes within the limit), then the
    /// extension's own verdict. That order makes the failure the same however
    /// the input was split: an input cut elsewhere decodes the same bytes
    /// before the same error.
    fn check_decoded(
        &mut self,
        opcode: OpCode,
        start: usize,
        max: usize,
        result: Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let end = self.buf.len().min(max).max(start);
        if opcode == OpCode::Text && self.utf8.feed(&self.buf[start..end]).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        result
    }

    /// Empties the message buffer, keeping a bounded capacity.
    fn recycle(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > RETAIN_CAPACITY {
            self.buf.shrink_to(RETAIN_CAPACITY);
        }
        self.ext_buf.clear();
        if self.ext_buf.capacity() > RETAIN_CAPACITY {
            self.ext_buf.shrink_to(RETAIN_CAPACITY);
        }
    }
}

/// The most payload bytes an extension's message may occupy on the wire for
/// a message limit of `max_message` decoded bytes: the limit plus 1/64 and
/// 1 KiB, room for deflate's stored-block overhead on incompressible data
/// (5 bytes per 64 KiB), so a message that inflates to at most the limit is
/// never refused for its compressed size, while a stream of empty blocks
/// cannot go on forever.
pub(crate) const fn encoded_limit(max_message: u64) -> u64 {
    max_message
        .saturating_add(max_message / 64)
        .saturating_add(1024)
}

/// Splits a received close payload into code and reason (RFC 6455 §5.5.1,
/// §7.4).
fn parse_close_payload(p: &[u8]) -> Result<(CloseCode, &str), ProtocolError> {
    match p {
        [] => Ok((CloseCode::NO_STATUS, "")),
        [_] => Err(ProtocolError::CloseFrameTooShort),
        [a, b, reason @ ..] => {
            let code = CloseCode::new(u16::from_be_bytes([*a, *b]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode);
            }
            let reason = simdutf8::basic::from_utf8(reason)
                .map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok((code, reason))
        }
    }
}

impl Outgoing {
    fn advance(&mut self, now: u64) {
        // The host promises monotonic instants; never let time run backwards.
        self.now = self.now.max(now);
    }

    fn queued(&self) -> usize {
        let echoed = self.echoed.map_or(0, |(_, n)| header_len(n) + n);
        self.buf.len() - self.start + echoed
    }

    /// Makes `input` the output: the echoed payload lies at
    /// `input[at..at + len]` with its header's room in front (the frame
    /// started the input, and a client header is the server's plus the
    /// 4-byte key), and whatever was queued after the echo follows it.
    fn adopt(&mut self, mut input: Vec<u8>, opcode: OpCode, at: usize, len: usize) {
        let (head, n) = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: len as u64,
        }
        .encode();
        debug_assert_eq!(n, at, "the room in front of the payload is its header");
        input[..n].copy_from_slice(&head[..n]);
        input.truncate(at + len);
        input.extend_from_slice(&self.buf[self.start..]);
        self.buf = input;
        self.start = 0;
    }

    fn push_frame(&mut self, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        write_frame_rsv(&mut self.buf, fin, rsv, opcode, None, payload);
    }

    fn check_room(&self, frame_bytes: usize) -> Result<(), SendError> {
        let queued = self.queued();
        if queued > 0 && queued.saturating_add(frame_bytes) > self.config.high_water_mark {
            return Err(SendError::Backpressure { queued });
        }
        Ok(())
    }

    fn send_data(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        if !matches!(self.state, State::Open) {
            return Err(SendError::Closed);
        }
        let mut ext_buf = core::mem::take(&mut self.ext_buf);
        ext_buf.clear();
        let (payload, rsv) = match self
            .ext
            .as_mut()
            .and_then(|e| e.encode_message(opcode, payload, &mut ext_buf))
        {
            Some(rsv) => (&ext_buf[..], rsv & 0x70),
            None => (payload, 0),
        };
        let n = payload.len();
        let frag = self.config.fragment_threshold.filter(|&t| t > 0 && n > t);
        // The payload being delivered, sent back unchanged as one frame
        // with nothing before it: it stays where it is (`receive_owned`).
        if rsv == 0
            && frag.is_none()
            && self.echoed.is_none()
            && self.queued() == 0
            && self.lent == Some((payload.as_ptr() as usize, n))
        {
            self.echoed = Some((opcode, n));
            self.ext_buf = ext_buf;
            return Ok(());
        }
        let total = match frag {
            Some(t) => {
                let (full, rem) = (n / t, n % t);
                n + full * header_len(t) + if rem > 0 { header_len(rem) } else { 0 }
            }
            None => n + header_len(n),
        };
        let res = self.check_room(total);
        if res.is_ok() {
            self.buf.reserve(total);
            match frag {
                Some(t) => {
                    let mut chunks = payload.chunks(t).peekable();
                    let mut first = true;
                    while let Some(c) = chunks.next() {
                        let last = chunks.peek().is_none();
                        let (op, r) = if first {
                            (opcode, rsv)
                        } else {
                            (OpCode::Continuation, 0)
                        };
                        self.push_frame(last, r, op, c);
                        first = false;
                    }
                }
                None => self.push_frame(true, rsv, opcode, payload),
            }
        }
        self.ext_buf = ext_buf;
        if self.ext_buf.capacity() > RETAIN_CAPACITY {
            self.ext_buf = Vec::new();
        }
        res
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        if !matches!(self.state, State::Open) {
            return Err(SendError::Closed);
        }
        if payload.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        self.check_room(payload.len() + 2)?;
        self.push_frame(true, 0, opcode, payload);
        Ok(())
    }

    /// Queues our close frame and enters `Closing`. The caller checked the
    /// state is `Open` and the code is sendable.
    fn start_close(&mut self, code: CloseCode, reason: &str) {
        let (payload, len) = close_payload(code, reason);
        self.push_frame(true, 0, OpCode::Close, &payload[..len]);
        self.state = State::Closing;
        self.close_sent_at = self.now;
    }

    /// Fails the connection after a protocol violation by the peer
    /// (RFC 6455 §7.1.7): close frame unless we sent one already, then
    /// closed.
    fn fail<F: FnMut(Event<'_>, &mut Outbox<'_>)>(&mut self, err: ProtocolError, f: &mut F) {
        let (code, reason) = (err.close_code(), err.reason());
        if matches!(self.state, State::Open) {
            self.start_close(code, reason);
        }
        let frame = CloseFrame {
            code,
            reason: reason.to_owned(),
        };
        self.finish(Ending::Failed(frame), code, reason, f);
    }

    /// Ends without a close handshake (a timer or a lost transport): 1006.
    fn end_abnormally<F: FnMut(Event<'_>, &mut Outbox<'_>)>(&mut self, ending: Ending, f: &mut F) {
        let reason = match ending {
            Ending::TimedOut(Timer::Keepalive) => "keepalive timeout",
            Ending::TimedOut(Timer::CloseHandshake) => "close handshake timed out",
            _ => "connection lost",
        };
        self.finish(ending, CloseCode::ABNORMAL, reason, f);
    }

    /// Enters `Closed(ending)` and reports `code` and `reason` (what
    /// [`Ending::code`] and [`Ending::reason`] say) to the handler.
    fn finish<F: FnMut(Event<'_>, &mut Outbox<'_>)>(
        &mut self,
        ending: Ending,
        code: CloseCode,
        reason: &'static str,
        f: &mut F,
    ) {
        debug_assert!(ending.code() == code && ending.reason() == reason);
        self.state = State::Closed(ending);
        f(Event::Close(code, reason), &mut Outbox { out: self });
    }
}

/// Header length of an unmasked server frame with `n` payload bytes.
const fn header_len(n: usize) -> usize {
    if n < 126 {
        2
    } else if n <= 0xFFFF {
        4
    } else {
        10
    }
}

impl Outbox<'_> {
    /// A shorter-lived outbox for the same connection, for wrapping it
    /// (the Rust guest library's `Outbox` adds timers) without giving this
    /// one up.
    pub fn reborrow(&mut self) -> Outbox<'_> {
        Outbox { out: self.out }
    }

    /// Queues a text message, fragmented above
    /// [`Config::fragment_threshold`].
    ///
    /// Fails with [`SendError::Closed`] unless the state is open, and with
    /// [`SendError::Backpressure`] past [`Config::high_water_mark`].
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.out.send_data(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message; otherwise like [`Outbox::send_text`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.out.send_data(OpCode::Binary, data)
    }

    /// Queues a ping. Fails with [`SendError::ControlTooLong`] over 125
    /// bytes (never truncates), [`SendError::Closed`] unless open, or
    /// [`SendError::Backpressure`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.out.send_control(OpCode::Ping, payload)
    }

    /// Queues a pong (for example an unsolicited heartbeat, or the answer to
    /// a ping when [`Config::auto_pong`] is off); errors as [`Outbox::ping`].
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.out.send_control(OpCode::Pong, payload)
    }

    /// Starts the close handshake: queues a close frame and enters
    /// [`State::Closing`]; the close timeout starts. The reason is truncated
    /// at a UTF-8 boundary to 123 bytes.
    ///
    /// Fails with [`SendError::InvalidCode`] for a code that may not be sent
    /// (1004–1006, 1015, < 1000, 1016–2999, ≥ 5000) and with
    /// [`SendError::Closed`] unless the state is open. Never refused for
    /// backpressure.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), SendError> {
        let code = code.into();
        if !matches!(self.out.state, State::Open) {
            return Err(SendError::Closed);
        }
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCode);
        }
        self.out.start_close(code, reason);
        Ok(())
    }

    /// The connection's state.
    pub fn state(&self) -> &State {
        &self.out.state
    }

    /// How many bytes are queued for the socket.
    pub fn queued_bytes(&self) -> usize {
        self.out.queued()
    }

    /// The current instant, as last passed by the host.
    pub fn now(&self) -> u64 {
        self.out.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame header announcing `len` payload bytes (mask 0).
    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[0; 4]);
        h
    }

    #[test]
    fn an_announced_payload_is_not_allocated_before_it_arrives() {
        let config = Config {
            max_frame_payload: 16 << 20,
            max_message: 16 << 20,
            ..Config::default()
        };
        let mut c = Connection::new(config, 0);
        let mut input = header(16 << 20);
        input.extend_from_slice(&[0; 100]);
        c.receive(&input, 0, |_, _| panic!("no event yet"));
        assert!(
            c.dec.buf.capacity() <= RETAIN_CAPACITY,
            "{} bytes reserved for 100 received",
            c.dec.buf.capacity()
        );
        // The rest arrives; the buffer grows with it and the message is whole.
        let mut rest = (16 << 20) - 100;
        let chunk = vec![0u8; 1 << 20];
        let mut got = Vec::new();
        while rest > 0 {
            let n = rest.min(chunk.len());
            c.receive(&chunk[..n], 0, |e, _| {
                if let Event::Binary(b) = e {
                    got.push(b.len());
                }
            });
            rest -= n;
        }
        assert_eq!(got, [16 << 20]);
    }

    #[test]
    fn a_growing_buffer_never_passes_the_message_limit() {
        let config = Config {
            max_frame_payload: 16 << 20,
            max_message: 16 << 20,
            ..Config::default()
        };
        let mut c = Connection::new(config, 0);
        let len: usize = (16 << 20) - 3;
        let mut input = header(len as u64);
        input.extend_from_slice(&[0; 777]);
        c.receive(&input, 0, |_, _| {});
        let mut rest = len - 777;
        let chunk = vec![0u8; 100_000];
        let mut peak = 0;
        while rest > 1 {
            let n = (rest - 1).min(chunk.len());
            c.receive(&chunk[..n], 0, |_, _| {});
            peak = peak.max(c.dec.buf.capacity());
            rest -= n;
        }
        assert!(
            peak <= 16 << 20,
            "capacity {peak} for a frame of {len} and a limit of 16 MiB"
        );
    }

    #[test]
    fn many_small_fragments_grow_the_buffer_geometrically() {
        let config = Config {
            max_message: 4 << 20,
            ..Config::default()
        };
        let mut c = Connection::new(config, 0);
        let mut grows = 0;
        let mut cap = 0;
        let frame = |first: bool, fin: bool| {
            let mut f = vec![
                if first { 0x02 } else { 0x00 } | if fin { 0x80 } else { 0 },
                0x80 | 64,
            ];
            f.extend_from_slice(&[0; 4]);
            f.extend_from_slice(&[7; 64]);
            f
        };
        let n = (4 << 20) / 64;
        let mut got = Vec::new();
        for i in 0..n {
            c.receive(&frame(i == 0, i == n - 1), 0, |e, _| {
                if let Event::Binary(b) = e {
                    got.push(b.len());
                }
            });
            if c.dec.buf.capacity() != cap {
                cap = c.dec.buf.capacity();
                grows += 1;
            }
        }
        assert_eq!(got, [4 << 20]);
        assert!(grows < 40, "{grows} reallocations for {n} fragments");
    }
}
