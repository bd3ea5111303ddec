//! The validated upgrade request (WebSocket-Node's `WebSocketRequest`): the
//! model and what a handler reads from it.
//!
//! Split by job: `validate` builds a [`Request`] and is the single place
//! where RFC 6455 §4.2.1 is enforced, `views` holds the borrowed header and
//! subprotocol views, `resource` splits the request target, and `serde_impl`
//! (feature `serde`) dumps the model.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use super::cookies::Cookies;
use super::extensions::ExtensionOffers;
use super::http::{HeaderSpan, HttpVersion, Lines, Span, Transport};
use super::origin::{OriginPolicy, OriginVerdict};

mod resource;
#[cfg(feature = "serde")]
mod serde_impl;
mod validate;
mod views;

pub use resource::ResourceUrl;
pub use views::{HeaderRef, HeaderValues, Headers, Protocols};

/// A WebSocket upgrade request that passed RFC 6455 §4.2.1 validation and
/// waits for a handler to [`accept`](Request::accept) or
/// [`reject`](Request::reject) it, exactly once.
///
/// All text is stored in one buffer; the accessors borrow from it and the
/// list-valued ones (protocols, extensions, cookies) walk the already
/// validated bytes lazily, so building a request costs two allocations.
///
/// ```
/// use ws_edge::Parsed;
/// use ws_edge::handshake::{HandshakeConfig, Request, Transport};
/// let head = b"GET /chat?room=7 HTTP/1.1\r\n\
///     Host: example.com:8080\r\n\
///     Upgrade: websocket\r\n\
///     Connection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\
///     Sec-WebSocket-Protocol: chat, Superchat\r\n\
///     Origin: https://example.com\r\n\r\n";
/// let config = HandshakeConfig::default();
/// let Parsed::Complete { value, .. } =
///     Request::from_head(head, Transport::default(), &config) else { panic!() };
/// let request = value.unwrap();
/// assert_eq!(request.host(), "example.com:8080");
/// assert_eq!(request.resource_url().path(), "/chat");
/// assert_eq!(request.resource_url().query_value("room").as_deref(), Some("7"));
/// assert_eq!(request.origin(), Some("https://example.com"));
/// assert_eq!(request.requested_protocols().collect::<Vec<_>>(), ["chat", "Superchat"]);
/// assert_eq!(request.find_protocol("superchat"), Some("Superchat"));
/// ```
pub struct Request {
    pub(in crate::handshake) buf: Vec<u8>,
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

impl Request {
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

    /// The path of the target, percent-decoded (`/chat%20room?x=1` →
    /// `/chat room`; invalid UTF-8 becomes U+FFFD). `/` for an empty path.
    /// [`resource_url`](Self::resource_url)`().path()` is the encoded form.
    pub fn path(&self) -> Cow<'_, str> {
        self.resource_url().decoded_path()
    }

    /// The raw query after `?`, if any, still encoded.
    pub fn query(&self) -> Option<&str> {
        self.resource_url().query()
    }

    /// The first value of query parameter `name`, decoded as a form
    /// (`?name=J%C3%BCrgen+M` → `Jürgen M`); `None` if it is absent.
    pub fn query_value(&self, name: &str) -> Option<Cow<'_, str>> {
        self.resource_url().query_value(name)
    }

    /// Every query parameter in order, names and values decoded as a form
    /// (repeated names appear repeatedly).
    pub fn query_pairs(&self) -> form_urlencoded::Parse<'_> {
        self.resource_url().query_pairs()
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
    /// `parse_extensions` is off. [`Request::accept`] negotiates
    /// permessage-deflate from them when the handler turns it on.
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
