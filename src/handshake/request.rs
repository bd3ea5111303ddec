//! The validated upgrade request (WebSocket-Node's `WebSocketRequest`) and
//! the single place where RFC 6455 §4.2.1 is enforced.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;

use super::config::HandshakeConfig;
use super::cookies::Cookies;
use super::extensions::{ExtensionOffers, validate_line};
use super::forwarded;
use super::http::{
    ByteSplit, HeaderSpan, HttpVersion, Lines, RequestParts, Span, Transport, is_field_value_byte,
    is_token, list_contains_token, trim_ows,
};
use super::origin::{OriginPolicy, OriginVerdict};
use super::parse::{HeadStatus, RawStatus, parse_raw};
use super::reject::Rejection;

/// A WebSocket upgrade request that passed RFC 6455 §4.2.1 validation and
/// waits for a handler to [`accept`](Request::accept) or
/// [`reject`](Request::reject) it, exactly once.
///
/// All text is stored in one buffer; the accessors borrow from it and the
/// list-valued ones (protocols, extensions, cookies) walk the already
/// validated bytes lazily, so building a request costs two allocations.
///
/// ```
/// use ws_edge::handshake::{HandshakeConfig, HeadStatus, Request, Transport};
/// let head = b"GET /chat?room=7 HTTP/1.1\r\n\
///     Host: example.com:8080\r\n\
///     Upgrade: websocket\r\n\
///     Connection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\
///     Sec-WebSocket-Protocol: chat, Superchat\r\n\
///     Origin: https://example.com\r\n\r\n";
/// let config = HandshakeConfig::default();
/// let HeadStatus::Complete { result, .. } =
///     Request::from_head(head, Transport::default(), &config) else { panic!() };
/// let request = result.unwrap();
/// assert_eq!(request.host(), "example.com:8080");
/// assert_eq!(request.resource_url().path(), "/chat");
/// assert_eq!(request.resource_url().query_value("room").as_deref(), Some("7"));
/// assert_eq!(request.origin(), Some("https://example.com"));
/// assert_eq!(request.requested_protocols().collect::<Vec<_>>(), ["chat", "Superchat"]);
/// assert_eq!(request.find_protocol("superchat"), Some("Superchat"));
/// ```
pub struct Request {
    pub(super) buf: Vec<u8>,
    pub(super) method: Span,
    pub(super) target: Span,
    pub(super) http_version: HttpVersion,
    pub(super) headers: Vec<HeaderSpan>,
    pub(super) transport: Transport,
    pub(super) ws_version: u8,
    pub(super) host: Span,
    pub(super) key: Span,
    pub(super) origin: Option<Span>,
    pub(super) peer_ip: Option<IpAddr>,
    pub(super) client: Option<IpAddr>,
    /// Empty unless forwarding headers were believed.
    pub(super) chain: Vec<IpAddr>,
    pub(super) parse_cookies: bool,
    pub(super) parse_extensions: bool,
    pub(super) state: Resolution,
}

/// Where a request is in its accept-or-reject life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resolution {
    Pending,
    Accepted { protocol: Option<Span> },
    Rejected,
}

/// One header field of a [`Request`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The name as the client spelled it.
    pub name: &'a str,
    /// The value without surrounding whitespace.
    pub value: &'a [u8],
}

/// Iterator over a request's header fields in the order received.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    buf: &'a [u8],
    iter: std::slice::Iter<'a, HeaderSpan>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        let h = self.iter.next()?;
        Some(HeaderRef {
            name: std::str::from_utf8(h.name.get(self.buf)).unwrap_or_default(),
            value: h.value.get(self.buf),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Iterator over the values of every header line with one name.
#[derive(Clone, Debug)]
pub struct HeaderValues<'a> {
    buf: &'a [u8],
    iter: std::slice::Iter<'a, HeaderSpan>,
    name: &'a str,
}

impl<'a> Iterator for HeaderValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (buf, name) = (self.buf, self.name);
        self.iter
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.get(buf))
    }
}

/// Iterator over the offered subprotocols, in the client's order and
/// spelling.
#[derive(Clone, Debug)]
pub struct Protocols<'a> {
    lines: Lines<'a>,
    current: ByteSplit<'a>,
}

fn is_comma(b: &u8) -> bool {
    *b == b','
}

impl<'a> Protocols<'a> {
    fn new(lines: Lines<'a>) -> Self {
        Protocols {
            lines,
            current: b""[..].split(is_comma as fn(&u8) -> bool),
        }
    }
}

impl<'a> Iterator for Protocols<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            match self.current.next() {
                Some(item) => {
                    let item = trim_ows(item);
                    if !item.is_empty()
                        && let Ok(s) = std::str::from_utf8(item)
                    {
                        return Some(s);
                    }
                }
                None => {
                    self.current = self.lines.next()?.split(is_comma as fn(&u8) -> bool);
                }
            }
        }
    }
}

/// The request target split into path and query, like Node's
/// `url.parse(resource, true)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceUrl<'a> {
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> ResourceUrl<'a> {
    /// Splits an origin-form (`/a?b`) or absolute-form (`ws://h/a?b`) target.
    pub fn parse(target: &'a str) -> Self {
        let rest = match target.find("://") {
            Some(i) if !target.starts_with('/') => {
                let after = &target[i + 3..];
                match after.find(['/', '?']) {
                    Some(j) => &after[j..],
                    None => "",
                }
            }
            _ => target,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        ResourceUrl {
            path: if path.is_empty() { "/" } else { path },
            query,
        }
    }

    /// The path, still percent-encoded (`/chat%20room`).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The path percent-decoded (invalid UTF-8 replaced by U+FFFD).
    pub fn decoded_path(&self) -> Cow<'a, str> {
        percent_encoding::percent_decode_str(self.path).decode_utf8_lossy()
    }

    /// The raw query after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The query as `application/x-www-form-urlencoded` pairs, decoded.
    pub fn query_pairs(&self) -> form_urlencoded::Parse<'a> {
        form_urlencoded::parse(self.query.unwrap_or_default().as_bytes())
    }

    /// The first query value named `name`.
    pub fn query_value(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

const GET: &[u8] = b"GET";

impl Request {
    /// Parses and validates a raw request head in one step (the fast path
    /// for hosts that only have a socket).
    ///
    /// Returns [`HeadStatus::Incomplete`] until `buf` holds a whole head,
    /// then the request or the [`Rejection`] to answer with. See
    /// [`parse_head`](super::parse_head) for the limits and
    /// [`from_parts`](Self::from_parts) for the validation.
    pub fn from_head(
        buf: &[u8],
        transport: Transport,
        config: &HandshakeConfig,
    ) -> HeadStatus<Request> {
        let raw = parse_raw(buf, &config.limits);
        Request::from_raw(raw, transport, config, |consumed| {
            buf.get(..consumed).unwrap_or_default().to_vec()
        })
    }

    /// [`from_head`](Self::from_head) for a caller that owns the bytes and
    /// needs them no more: a complete head keeps `buf` as the request's
    /// storage instead of copying it. Bytes after the head (the client's
    /// first frames, from offset `consumed` on) are truncated away; the
    /// allocation is kept as it is, so pass a vector sized to the input.
    pub fn from_head_vec(
        mut buf: Vec<u8>,
        transport: Transport,
        config: &HandshakeConfig,
    ) -> HeadStatus<Request> {
        let raw = parse_raw(&buf, &config.limits);
        Request::from_raw(raw, transport, config, move |consumed| {
            buf.truncate(consumed);
            buf
        })
    }

    /// Validates what [`parse_raw`] found; `storage(consumed)` gives the
    /// head's bytes, which the spans point into.
    fn from_raw(
        raw: RawStatus,
        transport: Transport,
        config: &HandshakeConfig,
        storage: impl FnOnce(usize) -> Vec<u8>,
    ) -> HeadStatus<Request> {
        match raw {
            RawStatus::Incomplete => HeadStatus::Incomplete,
            RawStatus::Rejected {
                consumed,
                rejection,
            } => HeadStatus::Complete {
                consumed,
                result: Err(rejection),
            },
            RawStatus::Complete(raw) => HeadStatus::Complete {
                consumed: raw.consumed,
                result: Request::validate(
                    storage(raw.consumed),
                    raw.method,
                    raw.target,
                    raw.version,
                    raw.headers,
                    transport,
                    config,
                ),
            },
        }
    }

    /// Validates a request a host has already parsed: the readHandshake of
    /// WebSocket-Node, extended to everything RFC 6455 §4.2.1 requires.
    ///
    /// Checks, in order (each failure names its rule, see [`Rejection`]):
    /// 1. the limits (`max_headers`, `max_head_bytes` for the serialized
    ///    size) → 431; method token, target and header syntax → 400;
    /// 2. method `GET`, HTTP/1.1 or later, an origin-form or absolute target;
    /// 3. exactly one valid `Host`;
    /// 4. `Upgrade` contains `websocket` and `Connection` contains `upgrade`
    ///    (tokens of comma lists, ASCII case-insensitive, over all lines);
    /// 5. exactly one `Sec-WebSocket-Version`, a number, 13 or 8 (else 426);
    /// 6. exactly one `Sec-WebSocket-Key`, base64 of exactly 16 bytes;
    /// 7. at most one `Origin` (13) / `Sec-WebSocket-Origin` (8), valid UTF-8;
    /// 8. `Sec-WebSocket-Protocol`: distinct tokens (an empty value counts as
    ///    no offer);
    /// 9. `Sec-WebSocket-Extensions`: the RFC 6455 §9.1 grammar (skipped when
    ///    `parse_extensions` is off).
    ///
    /// Header values have surrounding whitespace removed.
    pub fn from_parts(parts: RequestParts, config: &HandshakeConfig) -> Result<Request, Rejection> {
        let limits = &config.limits;
        if parts.headers.len() > limits.max_headers {
            return Err(Rejection::TooManyHeaders);
        }
        let size = parts.method.len()
            + parts.target.len()
            + 12
            + parts
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len() + 4)
                .sum::<usize>()
            + 2;
        if size > limits.max_head_bytes {
            return Err(Rejection::HeadTooLarge);
        }
        if !is_token(parts.method.as_bytes())
            || parts.target.is_empty()
            || !parts
                .target
                .bytes()
                .all(|b| b.is_ascii_graphic() || b >= 0x80)
        {
            return Err(Rejection::InvalidHeader);
        }
        let mut buf = Vec::with_capacity(size);
        let mut push = |bytes: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(bytes);
            Span {
                start,
                end: buf.len(),
            }
        };
        let method = push(parts.method.as_bytes());
        let target = push(parts.target.as_bytes());
        let mut headers = Vec::with_capacity(parts.headers.len());
        for h in &parts.headers {
            let value = trim_ows(&h.value);
            if !is_token(h.name.as_bytes()) || !value.iter().all(|&b| is_field_value_byte(b)) {
                return Err(Rejection::InvalidHeader);
            }
            headers.push(HeaderSpan {
                name: push(h.name.as_bytes()),
                value: push(value),
            });
        }
        Request::validate(
            buf,
            method,
            target,
            parts.version,
            headers,
            parts.transport,
            config,
        )
    }

    /// RFC 6455 §4.2.1, in one place.
    fn validate(
        buf: Vec<u8>,
        method: Span,
        target: Span,
        http_version: HttpVersion,
        headers: Vec<HeaderSpan>,
        transport: Transport,
        config: &HandshakeConfig,
    ) -> Result<Request, Rejection> {
        if method.get(&buf) != GET {
            return Err(Rejection::MethodNotGet);
        }
        if http_version < HttpVersion::HTTP_11 {
            return Err(Rejection::HttpVersionTooOld);
        }
        // The target came from a `str` (httparse or `RequestParts`).
        if !is_valid_target(target.get(&buf)) {
            return Err(Rejection::InvalidTarget);
        }

        let mut host: Option<Span> = None;
        let mut key: Option<Span> = None;
        let mut version: Option<Span> = None;
        let mut origin: Option<Span> = None;
        let mut sec_origin: Option<Span> = None;
        let (mut dup_host, mut dup_key, mut dup_version, mut dup_origin, mut dup_sec_origin) =
            (false, false, false, false, false);
        let mut upgrade = false;
        let mut connection = false;
        let mut has_protocols = false;
        let mut extensions_ok = true;
        let set = |slot: &mut Option<Span>, dup: &mut bool, v: Span| {
            *dup |= slot.is_some();
            *slot = Some(v);
        };
        for h in &headers {
            let name = h.name.get(&buf);
            let value = h.value.get(&buf);
            if name.eq_ignore_ascii_case(b"host") {
                set(&mut host, &mut dup_host, h.value);
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = upgrade || list_contains_token(value, "websocket");
            } else if name.eq_ignore_ascii_case(b"connection") {
                connection = connection || list_contains_token(value, "upgrade");
            } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
                set(&mut key, &mut dup_key, h.value);
            } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
                set(&mut version, &mut dup_version, h.value);
            } else if name.eq_ignore_ascii_case(b"origin") {
                set(&mut origin, &mut dup_origin, h.value);
            } else if name.eq_ignore_ascii_case(b"sec-websocket-origin") {
                set(&mut sec_origin, &mut dup_sec_origin, h.value);
            } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
                has_protocols = true;
            } else if config.parse_extensions
                && name.eq_ignore_ascii_case(b"sec-websocket-extensions")
            {
                extensions_ok = extensions_ok && validate_line(value);
            }
        }

        let host = match host {
            None => return Err(Rejection::MissingHost),
            Some(_) if dup_host => return Err(Rejection::DuplicateHost),
            Some(h) if !is_valid_host(h.get(&buf)) => return Err(Rejection::InvalidHost),
            Some(h) => h,
        };
        if !upgrade {
            return Err(Rejection::UpgradeNotWebSocket);
        }
        if !connection {
            return Err(Rejection::ConnectionNotUpgrade);
        }
        let ws_version = match version {
            None => return Err(Rejection::MissingVersion),
            Some(_) if dup_version => return Err(Rejection::DuplicateVersion),
            Some(v) => match parse_version(v.get(&buf))? {
                13 => 13,
                8 => 8,
                requested => return Err(Rejection::UnsupportedVersion { requested }),
            },
        };
        let key = match key {
            None => return Err(Rejection::MissingKey),
            Some(_) if dup_key => return Err(Rejection::DuplicateKey),
            Some(k) if !is_valid_key(k.get(&buf)) => return Err(Rejection::InvalidKey),
            Some(k) => k,
        };
        let (origin, dup) = if ws_version == 13 {
            (origin, dup_origin)
        } else {
            (sec_origin, dup_sec_origin)
        };
        if dup {
            return Err(Rejection::DuplicateOrigin);
        }
        if let Some(o) = origin
            && simdutf8::basic::from_utf8(o.get(&buf)).is_err()
        {
            return Err(Rejection::InvalidOrigin);
        }
        if has_protocols && !protocols_valid(&buf, &headers) {
            return Err(Rejection::InvalidProtocols);
        }
        if !extensions_ok {
            return Err(Rejection::InvalidExtensions);
        }

        let peer_ip = transport.peer.map(|p| p.ip().to_canonical());
        let trusted = &config.trusted_proxies;
        let (client, chain) = match peer_ip {
            Some(peer) if !trusted.is_empty() && trusted.contains(peer) => {
                let lines = Lines::Named {
                    buf: &buf,
                    spans: headers.iter(),
                    name: trusted.header().name(),
                };
                let r = forwarded::resolve(peer, trusted, lines);
                (r.client, r.chain)
            }
            _ => (peer_ip, Vec::new()),
        };

        Ok(Request {
            buf,
            method,
            target,
            http_version,
            headers,
            transport,
            ws_version,
            host,
            key,
            origin,
            peer_ip,
            client,
            chain,
            parse_cookies: config.parse_cookies,
            parse_extensions: config.parse_extensions,
            state: Resolution::Pending,
        })
    }

    fn text(&self, span: Span) -> &str {
        simdutf8::basic::from_utf8(span.get(&self.buf)).unwrap_or_default()
    }

    fn lines(&self, name: &'static str) -> Lines<'_> {
        Lines::Named {
            buf: &self.buf,
            spans: self.headers.iter(),
            name,
        }
    }

    /// The request method (always `GET` once validated).
    pub fn method(&self) -> &str {
        self.text(self.method)
    }

    /// The HTTP version of the request line.
    pub fn http_version(&self) -> HttpVersion {
        self.http_version
    }

    /// The `Host` header, port included (`example.com:8080`).
    pub fn host(&self) -> &str {
        self.text(self.host)
    }

    /// The request target exactly as sent (`/chat?room=7`): WebSocket-Node's
    /// `resource`.
    pub fn resource(&self) -> &str {
        self.text(self.target)
    }

    /// The target split into path and parsed query: WebSocket-Node's
    /// `resourceURL`.
    pub fn resource_url(&self) -> ResourceUrl<'_> {
        ResourceUrl::parse(self.resource())
    }

    /// The client's address: the socket peer, or, when the peer is a trusted
    /// proxy, the right-most forwarded hop that is not a trusted proxy (see
    /// [`TrustedProxies`](super::TrustedProxies)). `None` if the host gave no
    /// peer or a trusted proxy reported the client as unknown/obfuscated.
    pub fn remote_address(&self) -> Option<IpAddr> {
        self.client
    }

    /// The believed hops, client first and socket peer last. Just the peer
    /// unless forwarding headers were believed; hops left of the client (set
    /// by the client itself) are not included. Empty without a peer.
    pub fn remote_addresses(&self) -> &[IpAddr] {
        if self.chain.is_empty() {
            self.peer_ip.as_slice()
        } else {
            &self.chain
        }
    }

    /// `13` (RFC 6455) or `8` (hybi-10).
    pub fn websocket_version(&self) -> u8 {
        self.ws_version
    }

    /// The origin: `Origin` for version 13, `Sec-WebSocket-Origin` for
    /// version 8. `None` when absent (typically a non-browser client); see
    /// [`check_origin`](Self::check_origin).
    pub fn origin(&self) -> Option<&str> {
        self.origin.map(|s| self.text(s))
    }

    /// Judges [`origin`](Self::origin) against a policy.
    pub fn check_origin(&self, policy: &OriginPolicy) -> OriginVerdict {
        policy.check(self.origin())
    }

    /// `Sec-WebSocket-Key`, validated as base64 of 16 bytes.
    pub fn key(&self) -> &str {
        self.text(self.key)
    }

    /// The subprotocols the client offered, in order, original spelling
    /// (WebSocket-Node lower-cases them).
    pub fn requested_protocols(&self) -> Protocols<'_> {
        Protocols::new(self.lines("sec-websocket-protocol"))
    }

    /// The offered subprotocol matching `name`, in the client's spelling: an
    /// exact match if there is one, otherwise the first ASCII
    /// case-insensitive match. This is the rule
    /// [`accept`](Self::accept) uses.
    pub fn find_protocol(&self, name: &str) -> Option<&str> {
        self.requested_protocols().find(|p| *p == name).or_else(|| {
            self.requested_protocols()
                .find(|p| p.eq_ignore_ascii_case(name))
        })
    }

    /// The extensions the client offered (RFC 6455 §9.1 grammar). Empty when
    /// `parse_extensions` is off. Informational: none is negotiated yet.
    pub fn requested_extensions(&self) -> ExtensionOffers<'_> {
        if self.parse_extensions {
            ExtensionOffers::new(self.lines("sec-websocket-extensions"))
        } else {
            ExtensionOffers::new(Lines::One(None))
        }
    }

    /// The cookies of the `Cookie` header(s), in order, duplicates kept.
    /// Empty when `parse_cookies` is off. Never fails: see [`Cookie`](super::Cookie).
    pub fn cookies(&self) -> Cookies<'_> {
        if self.parse_cookies {
            Cookies::new(self.lines("cookie"))
        } else {
            Cookies::new(Lines::One(None))
        }
    }

    /// The value of the first cookie named `name`.
    pub fn cookie(&self, name: &str) -> Option<Cow<'_, str>> {
        self.cookies().find(|c| c.name == name).map(|c| c.value)
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.get(&self.buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.get(&self.buf))
    }

    /// [`header`](Self::header) as UTF-8 text (`None` if absent or not UTF-8).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every header line named `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> HeaderValues<'a> {
        HeaderValues {
            buf: &self.buf,
            iter: self.headers.iter(),
            name,
        }
    }

    /// Every header field in the order received.
    pub fn headers(&self) -> Headers<'_> {
        Headers {
            buf: &self.buf,
            iter: self.headers.iter(),
        }
    }

    /// The transport facts the host supplied.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Whether the connection is TLS (`wss:`).
    pub fn is_tls(&self) -> bool {
        self.transport.tls
    }

    /// Whether [`accept`](Self::accept) or [`reject`](Self::reject) already
    /// succeeded.
    pub fn is_resolved(&self) -> bool {
        self.state != Resolution::Pending
    }

    /// Whether the request was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self.state, Resolution::Accepted { .. })
    }

    /// The subprotocol of a successful [`accept`](Self::accept), in the
    /// client's spelling; `None` if none was selected or not accepted.
    pub fn accepted_protocol(&self) -> Option<&str> {
        match self.state {
            Resolution::Accepted {
                protocol: Some(span),
            } => Some(self.text(span)),
            _ => None,
        }
    }

    /// The span of the offered protocol `name` matches (see
    /// [`find_protocol`](Self::find_protocol)).
    pub(super) fn protocol_span(&self, name: &str) -> Option<Span> {
        self.find_protocol(name)
            .map(|p| Span::of(&self.buf, p.as_bytes()))
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("resource", &self.resource())
            .field("host", &self.host())
            .field("websocket_version", &self.ws_version)
            .field("origin", &self.origin())
            .field("remote_address", &self.client)
            .field("headers", &self.headers().len())
            .field("state", &self.state)
            .finish()
    }
}

fn is_valid_target(t: &[u8]) -> bool {
    if t.first() == Some(&b'/') {
        return true;
    }
    let lower_starts = |p: &[u8]| t.len() > p.len() && t[..p.len()].eq_ignore_ascii_case(p);
    [&b"ws://"[..], b"wss://", b"http://", b"https://"]
        .iter()
        .any(|p| lower_starts(p))
}

/// Bytes allowed in a `Host` value: visible ASCII except the delimiters
/// that cannot appear in `uri-host [ ":" port ]` and would let a value
/// smuggle a path, query, fragment or userinfo.
static HOST_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_graphic()
            && !matches!(
                b,
                b'/' | b'?'
                    | b'#'
                    | b'@'
                    | b'"'
                    | b'<'
                    | b'>'
                    | b'\\'
                    | b'^'
                    | b'`'
                    | b'{'
                    | b'|'
                    | b'}'
            );
        i += 1;
    }
    t
};

fn is_valid_host(h: &[u8]) -> bool {
    !h.is_empty() && h.iter().all(|&b| HOST_BYTE[usize::from(b)])
}

/// `1*DIGIT` without leading zeros; saturates at `u32::MAX`.
fn parse_version(v: &[u8]) -> Result<u32, Rejection> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || (v.len() > 1 && v[0] == b'0') {
        return Err(Rejection::InvalidVersion);
    }
    Ok(v.iter().fold(0u32, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

fn is_valid_key(k: &[u8]) -> bool {
    let mut out = [0u8; 24];
    k.len() == 24
        && matches!(
            base64::engine::general_purpose::STANDARD.decode_slice(k, &mut out),
            Ok(16)
        )
}

/// Every element a token, no element twice.
fn protocols_valid(buf: &[u8], headers: &[HeaderSpan]) -> bool {
    let lines = Lines::Named {
        buf,
        spans: headers.iter(),
        name: "sec-websocket-protocol",
    };
    const SMALL: usize = 16;
    let mut small: [&[u8]; SMALL] = [&[]; SMALL];
    let mut count = 0;
    let mut spill: Vec<&[u8]> = Vec::new();
    for line in lines {
        for item in line.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() {
                continue;
            }
            if !is_token(item) {
                return false;
            }
            if count < SMALL {
                if small[..count].contains(&item) {
                    return false;
                }
                small[count] = item;
            } else {
                if count == SMALL {
                    spill.extend_from_slice(&small);
                }
                spill.push(item);
            }
            count += 1;
        }
    }
    spill.sort_unstable();
    spill.windows(2).all(|w| w[0] != w[1])
}

#[cfg(feature = "serde")]
mod serde_impl {
    use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};

    use super::super::extensions::ExtensionOffer;
    use super::Request;

    struct Seq<I>(std::cell::RefCell<Option<I>>);

    impl<I> Serialize for Seq<I>
    where
        I: Iterator,
        I::Item: Serialize,
    {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let iter = self.0.borrow_mut().take();
            let mut seq = s.serialize_seq(None)?;
            for item in iter.into_iter().flatten() {
                seq.serialize_element(&item)?;
            }
            seq.end()
        }
    }

    fn seq<I: Iterator>(iter: I) -> Seq<I> {
        Seq(std::cell::RefCell::new(Some(iter)))
    }

    impl Serialize for ExtensionOffer<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("ExtensionOffer", 2)?;
            st.serialize_field("name", self.name())?;
            st.serialize_field("params", &seq(self.params()))?;
            st.end()
        }
    }

    struct HeaderMapView<'a>(&'a Request);

    impl Serialize for HeaderMapView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.headers().len()))?;
            for h in self.0.headers() {
                seq.serialize_element(&(h.name, String::from_utf8_lossy(h.value)))?;
            }
            seq.end()
        }
    }

    struct Query<'a>(super::ResourceUrl<'a>);

    impl Serialize for Query<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            for (k, v) in self.0.query_pairs() {
                map.serialize_entry(&k, &v)?;
            }
            map.end()
        }
    }

    /// A JSON-friendly dump of everything a handler can read.
    impl Serialize for Request {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let url = self.resource_url();
            let mut st = s.serialize_struct("Request", 16)?;
            st.serialize_field("method", self.method())?;
            st.serialize_field("http_version", &self.http_version)?;
            st.serialize_field("resource", self.resource())?;
            st.serialize_field("path", url.path())?;
            st.serialize_field("query", &Query(url))?;
            st.serialize_field("host", self.host())?;
            st.serialize_field("websocket_version", &self.ws_version)?;
            st.serialize_field("key", self.key())?;
            st.serialize_field("origin", &self.origin())?;
            st.serialize_field("requested_protocols", &seq(self.requested_protocols()))?;
            st.serialize_field("requested_extensions", &seq(self.requested_extensions()))?;
            st.serialize_field("cookies", &seq(self.cookies()))?;
            st.serialize_field("remote_address", &self.remote_address())?;
            st.serialize_field("remote_addresses", self.remote_addresses())?;
            st.serialize_field("transport", &self.transport)?;
            st.serialize_field("headers", &HeaderMapView(self))?;
            st.end()
        }
    }
}
