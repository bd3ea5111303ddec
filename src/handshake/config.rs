//! Handshake configuration and its documented defaults.

use super::forwarded::TrustedProxies;

/// Size limits for a request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head accepted, in bytes, from the first byte of the
    /// request line to the end of the empty line. A longer head is answered
    /// with `431 Request Header Fields Too Large` as soon as more than this
    /// many bytes were given without the head ending. Default: 8192.
    pub max_head_bytes: usize,
    /// Largest number of header fields accepted. More are answered with
    /// `431`. Default: 64.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8192,
            max_headers: 64,
        }
    }
}

/// Everything that shapes how a request is parsed and validated.
///
/// The defaults are safe for a server directly on the internet: proxy headers
/// are ignored, cookies and extension offers are parsed, and WebSocket
/// versions 13 (RFC 6455) and 8 (draft-ietf-hybi-10, as WebSocket-Node) are
/// accepted.
///
/// ```
/// use ws_edge::handshake::{HandshakeConfig, ProxyHeader, TrustedProxies};
/// let mut config = HandshakeConfig::default();
/// assert_eq!(config.limits.max_head_bytes, 8192);
/// config.trusted_proxies = TrustedProxies::new(ProxyHeader::XForwardedFor)
///     .trust("10.0.0.0/8")
///     .unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// Head size and header count limits.
    pub limits: Limits,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are
    /// believed. Empty by default: the client address is the socket peer.
    pub trusted_proxies: TrustedProxies,
    /// Whether [`Request::cookies`](super::Request::cookies) reads the
    /// `Cookie` header (default `true`). When `false` it yields nothing.
    pub parse_cookies: bool,
    /// Whether `Sec-WebSocket-Extensions` is parsed and validated (default
    /// `true`). When `false` the header is ignored entirely and
    /// [`Request::requested_extensions`](super::Request::requested_extensions)
    /// yields nothing.
    pub parse_extensions: bool,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            limits: Limits::default(),
            trusted_proxies: TrustedProxies::default(),
            parse_cookies: true,
            parse_extensions: true,
        }
    }
}

/// The `Sec-WebSocket-Version` values ws-edge accepts, most preferred first.
pub const SUPPORTED_VERSIONS: [u8; 2] = [13, 8];

/// The `Sec-WebSocket-Version` value advertised in a `426` (and in version
/// related `400`s): `13, 8`.
pub const SUPPORTED_VERSIONS_HEADER: &str = "13, 8";
