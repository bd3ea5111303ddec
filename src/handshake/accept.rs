//! Accepting a request (the 101 response) and the handler's reject.

use std::borrow::Cow;

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::cookies::{CookieError, SetCookie};
use super::http::Header;
use super::reject::{RejectError, RejectOptions, build_rejection};
use super::request::{Request, Resolution};
use super::response::{HeaderError, Response, check_extra_header};
use crate::deflate::{DeflateConfig, DeflateParams, negotiate};

/// The GUID RFC 6455 §1.3 appends to the key.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`:
/// base64(SHA-1(key + GUID)), RFC 6455 §4.2.2 item 5.4.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     ws_edge::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// What a handler accepts a request with.
///
/// ```
/// use ws_edge::handshake::{AcceptOptions, SetCookie};
/// let opts = AcceptOptions::new()
///     .protocol("chat")
///     .allowed_origin("https://example.com")
///     .cookie(SetCookie::new("sid", "1").http_only(true))
///     .header("X-Served-By", "edge-1");
/// assert_eq!(opts.protocol.as_deref(), Some("chat"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptOptions {
    /// The subprotocol to select. It must be one the client offered, matched
    /// as [`Request::find_protocol`] does (exact, else ASCII
    /// case-insensitive); the response echoes the client's spelling. `None`
    /// selects no subprotocol even if some were offered (browsers then fail
    /// the connection, which is the client's decision).
    pub protocol: Option<String>,
    /// If set, the request's origin must be present and equal to this
    /// (ASCII case-insensitive), or accept fails with
    /// [`AcceptError::OriginNotAllowed`]. Nothing is echoed: RFC 6455 has no
    /// origin response header (WebSocket-Node's echo is a draft leftover).
    pub allowed_origin: Option<String>,
    /// Cookies to set, each validated (see [`SetCookie`]).
    pub cookies: Vec<SetCookie>,
    /// Extra headers. Names must be tokens, values may not hold control
    /// characters other than HTAB, and the handshake's own headers
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
    /// `Sec-WebSocket-Protocol`, `Sec-WebSocket-Extensions`) as well as
    /// `Content-Length` / `Transfer-Encoding` are reserved.
    pub headers: Vec<Header>,
    /// permessage-deflate (RFC 7692): `None` (the default) declines every
    /// offer; `Some(policy)` accepts the first acceptable offer under it
    /// (see [`crate::deflate`]). A client that offers none is served
    /// uncompressed either way.
    pub deflate: Option<DeflateConfig>,
}

impl AcceptOptions {
    /// No protocol, no origin requirement, no cookies, no headers.
    pub fn new() -> Self {
        AcceptOptions::default()
    }

    /// Selects a subprotocol.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Requires the request's origin to be `origin`.
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origin = Some(origin.into());
        self
    }

    /// Adds a cookie.
    pub fn cookie(mut self, cookie: SetCookie) -> Self {
        self.cookies.push(cookie);
        self
    }

    /// Turns permessage-deflate on with `config` (see the field
    /// `deflate`).
    pub fn deflate(mut self, config: DeflateConfig) -> Self {
        self.deflate = Some(config);
        self
    }

    /// Adds an extra header.
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }
}

/// A successful accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The `101 Switching Protocols` response.
    pub response: Response,
    /// The selected subprotocol in the client's spelling, as sent in
    /// `Sec-WebSocket-Protocol`.
    pub protocol: Option<String>,
    /// The negotiated permessage-deflate parameters, answered in
    /// `Sec-WebSocket-Extensions`; `None` when off or not offered. Create
    /// the connection with
    /// [`PerMessageDeflate`](crate::deflate::PerMessageDeflate) from it.
    pub deflate: Option<DeflateParams>,
}

/// Why [`Request::accept`] refused. Nothing was answered and, except for
/// [`AlreadyResolved`](Self::AlreadyResolved), the request is still pending:
/// the caller can fix the options or [`reject`](Request::reject) instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The request was already accepted or rejected.
    #[error("the request was already accepted or rejected")]
    AlreadyResolved,
    /// The selected subprotocol is not one the client offered.
    #[error("subprotocol {0:?} was not offered by the client")]
    ProtocolNotOffered(String),
    /// `allowed_origin` is set and the request's origin differs or is absent.
    #[error("the request's origin is not the allowed origin")]
    OriginNotAllowed,
    /// A cookie is invalid or set twice.
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// An extra header is invalid or reserved.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// Headers a handler may not give to `accept`. `Set-Cookie` goes through
/// [`AcceptOptions::cookie`], which validates it.
const RESERVED_ON_ACCEPT: [&str; 8] = [
    "Set-Cookie",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

impl Request {
    /// Accepts the request: validates `options`, then builds the
    /// `101 Switching Protocols` response with `Upgrade: websocket`,
    /// `Connection: Upgrade`, `Sec-WebSocket-Accept`, the selected
    /// `Sec-WebSocket-Protocol`, the negotiated `Sec-WebSocket-Extensions`
    /// (permessage-deflate, when the options' `deflate` is set and the
    /// client offered it), the `Set-Cookie` lines and the extra headers, in
    /// that order.
    ///
    /// Every check runs before the request is marked resolved: on error
    /// nothing was answered and the request can still be accepted with other
    /// options or rejected.
    ///
    /// ```
    /// use ws_edge::handshake::*;
    /// let head = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: Chat\r\n\r\n";
    /// let ws_edge::Parsed::Complete { value, .. } =
    ///     Request::from_head(head, Transport::default(), &HandshakeConfig::default())
    ///     else { panic!() };
    /// let mut request = value.unwrap();
    /// assert_eq!(
    ///     request.accept(&AcceptOptions::new().protocol("mqtt")),
    ///     Err(AcceptError::ProtocolNotOffered("mqtt".into()))
    /// );
    /// let accepted = request.accept(&AcceptOptions::new().protocol("chat")).unwrap();
    /// assert_eq!(accepted.protocol.as_deref(), Some("Chat"));
    /// assert_eq!(
    ///     accepted.response.header("Sec-WebSocket-Accept"),
    ///     Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..])
    /// );
    /// assert_eq!(request.accept(&AcceptOptions::new()), Err(AcceptError::AlreadyResolved));
    /// ```
    pub fn accept(&mut self, options: &AcceptOptions) -> Result<Accepted, AcceptError> {
        if self.state != Resolution::Pending {
            return Err(AcceptError::AlreadyResolved);
        }
        let protocol = match &options.protocol {
            None => None,
            Some(p) => Some(
                self.protocol_span(p)
                    .ok_or_else(|| AcceptError::ProtocolNotOffered(p.clone()))?,
            ),
        };
        if let Some(allowed) = &options.allowed_origin
            && !self
                .origin()
                .is_some_and(|o| o.eq_ignore_ascii_case(allowed))
        {
            return Err(AcceptError::OriginNotAllowed);
        }
        let mut set_cookies = Vec::with_capacity(options.cookies.len());
        for (i, c) in options.cookies.iter().enumerate() {
            let value = c.to_header_value()?;
            if options.cookies[..i].iter().any(|prev| prev.same_slot(c)) {
                return Err(CookieError::Duplicate(c.name.clone()).into());
            }
            set_cookies.push(value);
        }
        for h in &options.headers {
            check_extra_header(h, &RESERVED_ON_ACCEPT)?;
        }

        let deflate = options
            .deflate
            .as_ref()
            .and_then(|config| negotiate(self.requested_extensions(), config));

        let mut headers = Vec::with_capacity(5 + set_cookies.len() + options.headers.len());
        headers.push(Header::new("Upgrade", "websocket"));
        headers.push(Header::new("Connection", "Upgrade"));
        headers.push(Header::new("Sec-WebSocket-Accept", accept_key(self.key())));
        let protocol_text =
            protocol.map(|span| String::from_utf8_lossy(span.get(&self.buf)).into_owned());
        if let Some(p) = &protocol_text {
            headers.push(Header::new("Sec-WebSocket-Protocol", p.clone()));
        }
        if let Some(d) = &deflate {
            headers.push(Header::new("Sec-WebSocket-Extensions", d.response_value()));
        }
        for c in set_cookies {
            headers.push(Header::new("Set-Cookie", c));
        }
        headers.extend(options.headers.iter().cloned());

        self.state = Resolution::Accepted { protocol };
        Ok(Accepted {
            response: Response {
                status: 101,
                reason: Cow::Borrowed("Switching Protocols"),
                headers,
                body: Vec::new(),
            },
            protocol: protocol_text,
            deflate,
        })
    }

    /// Rejects the request: `status` with its reason phrase (a class phrase
    /// for unregistered codes), `Connection: close`, the sanitized reason in
    /// `X-WebSocket-Reject-Reason`, the extra headers, a default
    /// `Content-Type` for a body, and `Content-Length`.
    ///
    /// Fails, leaving the request pending, if the status is outside 300–599
    /// or a header is invalid or reserved; fails with
    /// [`RejectError::AlreadyResolved`] on a second accept/reject.
    ///
    /// ```
    /// use ws_edge::handshake::*;
    /// let head = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\n\r\n";
    /// let ws_edge::Parsed::Complete { value, .. } =
    ///     Request::from_head(head, Transport::default(), &HandshakeConfig::default())
    ///     else { panic!() };
    /// let mut request = value.unwrap();
    /// let response = request.reject(&RejectOptions::new(499).reason("go\r\naway")).unwrap();
    /// assert_eq!(response.reason, "Client Error");
    /// assert_eq!(response.header("X-WebSocket-Reject-Reason"), Some(&b"go  away"[..]));
    /// assert_eq!(response.header("Connection"), Some(&b"close"[..]));
    /// assert!(request.reject(&RejectOptions::default()).is_err());
    /// ```
    pub fn reject(&mut self, options: &RejectOptions) -> Result<Response, RejectError> {
        if self.state != Resolution::Pending {
            return Err(RejectError::AlreadyResolved);
        }
        let response = build_rejection(options)?;
        self.state = Resolution::Rejected;
        Ok(response)
    }
}
