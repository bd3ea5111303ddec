//! Finding and parsing a raw HTTP/1.1 request head (with httparse), under the
//! configured limits.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use super::config::{HandshakeConfig, Limits};
use super::http::{Header, HeaderSpan, HttpVersion, RequestParts, Span, Transport};
use super::reject::Rejection;
use crate::Parsed;

/// Parses a raw request head into its structured form.
///
/// Only HTTP syntax and the limits are checked here: a head longer than
/// `max_head_bytes` gives [`Rejection::HeadTooLarge`], more than
/// `max_headers` fields [`Rejection::TooManyHeaders`] (both 431), bytes that
/// are not an HTTP/1.x request head [`Rejection::MalformedHttp`] (400). The
/// WebSocket rules are checked by [`Request::from_parts`](super::Request::from_parts);
/// [`Request::from_head`](super::Request::from_head) does both without the
/// intermediate copies.
///
/// Until `buf` holds a whole head (and is within `max_head_bytes`) the
/// answer is [`Parsed::Incomplete`]: read more and call again with
/// everything read so far. Otherwise `consumed` is the length of the head
/// (the bytes after it are the client's first frames) or, for a rejection
/// found before the head ended (431, malformed bytes), the number of bytes
/// examined; the connection is closed after that response anyway.
///
/// The transport in the returned parts is the default (unknown peer, no TLS).
///
/// ```
/// use ws_edge::Parsed;
/// use ws_edge::handshake::{parse_head, HandshakeConfig};
/// let config = HandshakeConfig::default();
/// let head = b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n";
/// assert!(parse_head(&head[..10], &config).is_incomplete());
/// let Parsed::Complete { consumed, value } = parse_head(head, &config) else { panic!() };
/// assert_eq!(consumed, head.len());
/// assert_eq!(value.unwrap().target, "/chat");
/// ```
pub fn parse_head(buf: &[u8], config: &HandshakeConfig) -> Parsed<Result<RequestParts, Rejection>> {
    parse_raw(buf, &config.limits).into_parsed(|raw| {
        let text = |s: Span| String::from_utf8_lossy(s.get(buf)).into_owned();
        Ok(RequestParts {
            method: text(raw.method),
            target: text(raw.target),
            version: raw.version,
            headers: raw
                .headers
                .iter()
                .map(|h| Header {
                    name: Cow::Owned(text(h.name)),
                    value: Cow::Owned(h.value.get(buf).to_vec()),
                })
                .collect(),
            transport: Transport::default(),
        })
    })
}

/// A parsed head as spans into the input buffer.
pub(crate) struct RawHead {
    pub(crate) consumed: usize,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) version: HttpVersion,
    pub(crate) headers: Vec<HeaderSpan>,
}

pub(crate) enum RawStatus {
    Incomplete,
    Rejected {
        consumed: usize,
        rejection: Rejection,
    },
    Complete(RawHead),
}

impl RawStatus {
    /// The answer for this status: `Incomplete`, the rejection, or what
    /// `complete` makes of the head, with the head's length as `consumed`.
    #[inline]
    pub(crate) fn into_parsed<T>(
        self,
        complete: impl FnOnce(RawHead) -> Result<T, Rejection>,
    ) -> Parsed<Result<T, Rejection>> {
        match self {
            RawStatus::Incomplete => Parsed::Incomplete,
            RawStatus::Rejected {
                consumed,
                rejection,
            } => Parsed::Complete {
                consumed,
                value: Err(rejection),
            },
            RawStatus::Complete(raw) => Parsed::Complete {
                consumed: raw.consumed,
                value: complete(raw),
            },
        }
    }
}

/// Header slots kept on the stack; larger limits use the heap.
const STACK_HEADERS: usize = 64;

pub(crate) fn parse_raw(buf: &[u8], limits: &Limits) -> RawStatus {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut stack: [MaybeUninit<httparse::Header<'_>>; STACK_HEADERS] =
        [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap: Vec<MaybeUninit<httparse::Header<'_>>>;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = Vec::with_capacity(limits.max_headers);
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let rejected = |rejection| RawStatus::Rejected {
        consumed: window.len(),
        rejection,
    };
    match req.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(consumed)) => {
            let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version)
            else {
                return rejected(Rejection::MalformedHttp);
            };
            let headers = req
                .headers
                .iter()
                .map(|h| HeaderSpan {
                    name: Span::of(window, h.name.as_bytes()),
                    value: Span::of(window, h.value),
                })
                .collect();
            RawStatus::Complete(RawHead {
                consumed,
                method: Span::of(window, method.as_bytes()),
                target: Span::of(window, path.as_bytes()),
                version: HttpVersion { major: 1, minor },
                headers,
            })
        }
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes => {
            rejected(Rejection::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => RawStatus::Incomplete,
        Err(httparse::Error::TooManyHeaders) => rejected(Rejection::TooManyHeaders),
        Err(_) => rejected(Rejection::MalformedHttp),
    }
}
