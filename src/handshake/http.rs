//! HTTP building blocks shared by the request and response sides: header
//! fields, the HTTP version, the transport facts and the structured request a
//! host hands over, plus the RFC 9110 token / list helpers.

use std::borrow::Cow;
use std::net::SocketAddr;

/// One HTTP header field, used both for incoming requests
/// ([`RequestParts::headers`]) and for responses ([`Response::headers`]).
///
/// Names compare case-insensitively (RFC 9110 §5.1); values are bytes because
/// HTTP allows obs-text (0x80–0xFF). Both fields are [`Cow`]s so the fixed
/// headers ws-edge emits (`Upgrade: websocket`, …) cost no allocation.
///
/// [`Response::headers`]: super::Response::headers
///
/// ```
/// use ws_edge::handshake::Header;
/// let h = Header::new("X-Request-Id", "42");
/// assert!(h.is("x-request-id"));
/// assert_eq!(h.value_str(), Some("42"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Header {
    /// The field name, as sent by the client or as the response spells it.
    pub name: Cow<'static, str>,
    /// The field value without surrounding whitespace.
    pub value: Cow<'static, [u8]>,
}

impl Header {
    /// A header with a text value.
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Self {
        let value = match value.into() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        };
        Header {
            name: name.into(),
            value,
        }
    }

    /// A header with a byte value (for obs-text values).
    pub fn from_bytes(
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Whether this header's name equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value as UTF-8 text, or `None` if it is not valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// The HTTP version of a request line (`HTTP/<major>.<minor>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HttpVersion {
    /// Major version, `1` for HTTP/1.x.
    pub major: u8,
    /// Minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor: u8,
}

impl HttpVersion {
    /// `HTTP/1.0`.
    pub const HTTP_10: HttpVersion = HttpVersion { major: 1, minor: 0 };
    /// `HTTP/1.1`, the minimum RFC 6455 accepts.
    pub const HTTP_11: HttpVersion = HttpVersion { major: 1, minor: 1 };
}

/// Facts about the transport that the request head does not carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Transport {
    /// The socket peer, or `None` if the host does not know it. This may be a
    /// reverse proxy; see [`TrustedProxies`](super::TrustedProxies).
    pub peer: Option<SocketAddr>,
    /// Whether the connection is TLS (`wss:`).
    pub tls: bool,
}

/// An upgrade request that a host has already parsed: the structured input of
/// [`Request::from_parts`](super::Request::from_parts), and what
/// [`parse_head`](super::parse_head) produces from raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RequestParts {
    /// The request method, case-sensitive (`GET`).
    pub method: String,
    /// The request target exactly as on the request line (`/chat?room=7`).
    pub target: String,
    /// The HTTP version of the request line.
    pub version: HttpVersion,
    /// Every header field in the order received; repeated fields stay separate.
    pub headers: Vec<Header>,
    /// What the host knows about the transport.
    pub transport: Transport,
}

/// `split` over bytes with a plain function predicate (nameable in structs).
pub(crate) type ByteSplit<'a> = std::slice::Split<'a, u8, fn(&u8) -> bool>;

/// A byte range inside a request's storage buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    /// The span of `part` inside `base`, or an empty span if `part` is not
    /// a sub-slice of `base`.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        match start.checked_add(part.len()) {
            Some(end) if end <= base.len() => Span { start, end },
            _ => Span::default(),
        }
    }

    /// The bytes of this span (empty if out of range).
    #[inline]
    pub(crate) fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }
}

/// Where one header field's name and value are in the storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// The values of every header line with a given name, in order.
#[derive(Clone, Debug)]
pub(crate) enum Lines<'a> {
    /// At most one line given directly (tests, single values).
    One(Option<&'a [u8]>),
    /// The matching lines of a request.
    Named {
        buf: &'a [u8],
        spans: std::slice::Iter<'a, HeaderSpan>,
        name: &'static str,
    },
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Lines::One(line) => line.take(),
            Lines::Named { buf, spans, name } => spans
                .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
                .map(|h| h.value.get(buf)),
        }
    }
}

/// `tchar` of RFC 9110 §5.6.2, as a lookup table.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
            b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        i += 1;
    }
    t
};

/// `tchar` of RFC 9110 §5.6.2.
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// A non-empty sequence of `tchar`.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A field value byte allowed by RFC 9110 §5.5 (VCHAR, SP, HTAB, obs-text).
#[inline]
pub(crate) const fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Strips optional whitespace (SP / HTAB) from both ends.
#[inline]
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Splits `s` on `sep` outside quoted-strings (RFC 9110 §5.6.4), trimming
/// OWS from each piece. Empty pieces are yielded too (callers decide).
#[derive(Clone, Debug)]
pub(crate) struct SplitQuoted<'a> {
    rest: Option<&'a [u8]>,
    sep: u8,
}

impl<'a> SplitQuoted<'a> {
    pub(crate) fn new(s: &'a [u8], sep: u8) -> Self {
        SplitQuoted { rest: Some(s), sep }
    }

    /// An iterator that yields nothing.
    pub(crate) fn empty() -> Self {
        SplitQuoted {
            rest: None,
            sep: b',',
        }
    }
}

impl<'a> Iterator for SplitQuoted<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        let mut in_quotes = false;
        let mut escaped = false;
        for (i, &b) in s.iter().enumerate() {
            if in_quotes {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quotes = false;
                }
            } else if b == b'"' {
                in_quotes = true;
            } else if b == self.sep {
                self.rest = Some(&s[i + 1..]);
                return Some(trim_ows(&s[..i]));
            }
        }
        self.rest = None;
        Some(trim_ows(s))
    }
}

/// Whether the comma-separated token list `value` contains `token`
/// (ASCII case-insensitive).
pub(crate) fn list_contains_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_ows(item).eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses a quoted-string (with its quotes) and returns the unescaped
/// content, or `None` if `s` is not exactly one well-formed quoted-string.
pub(crate) fn unquote(s: &[u8]) -> Option<Cow<'_, [u8]>> {
    let inner = s.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !inner.contains(&b'\\') {
        if inner.contains(&b'"') || !inner.iter().all(|&b| is_qdtext(b)) {
            return None;
        }
        return Some(Cow::Borrowed(inner));
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            let &next = it.next()?;
            if !is_field_value_byte(next) {
                return None;
            }
            out.push(next);
        } else if b == b'"' || !is_qdtext(b) {
            return None;
        } else {
            out.push(b);
        }
    }
    Some(Cow::Owned(out))
}

#[inline]
const fn is_qdtext(b: u8) -> bool {
    is_field_value_byte(b) && b != b'"' && b != b'\\'
}

/// Appends the decimal digits of `n`.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes() {
        let parts: Vec<_> = SplitQuoted::new(br#"a; b="x,;y" , c"#, b',').collect();
        assert_eq!(parts, vec![&br#"a; b="x,;y""#[..], b"c"]);
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(br#""abc""#).as_deref(), Some(&b"abc"[..]));
        assert_eq!(unquote(br#""a\"b""#).as_deref(), Some(&b"a\"b"[..]));
        assert_eq!(unquote(br#""a"b""#), None);
        assert_eq!(unquote(br#""abc"#), None);
        assert_eq!(unquote(br#""abc\""#), None);
    }

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut v = Vec::new();
            push_decimal(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }

    #[test]
    fn token_list() {
        assert!(list_contains_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(!list_contains_token(b"keep-alive, Upgraded", "upgrade"));
    }
}
