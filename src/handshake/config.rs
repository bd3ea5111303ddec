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

/// The `Sec-WebSocket-Version` values ws-edge accepts, most preferred first:
/// 13 (RFC 6455) and 8 (draft-ietf-hybi-10). The only definition; the
/// validation and [`SUPPORTED_VERSIONS_HEADER`] derive from it.
pub(crate) const SUPPORTED_VERSIONS: [u8; 2] = [13, 8];

/// The `Sec-WebSocket-Version` value advertised in a `426` (and in version
/// related `400`s): [`SUPPORTED_VERSIONS`] as a comma list, `13, 8`.
pub(crate) const SUPPORTED_VERSIONS_HEADER: &str = {
    match std::str::from_utf8(&VERSIONS_HEADER_BYTES) {
        Ok(s) => s,
        Err(_) => panic!("the version list is ASCII"),
    }
};

const VERSIONS_HEADER_LEN: usize = {
    let mut len = 0;
    let mut i = 0;
    while i < SUPPORTED_VERSIONS.len() {
        if i > 0 {
            len += 2;
        }
        let v = SUPPORTED_VERSIONS[i];
        len += if v >= 100 {
            3
        } else if v >= 10 {
            2
        } else {
            1
        };
        i += 1;
    }
    len
};

const VERSIONS_HEADER_BYTES: [u8; VERSIONS_HEADER_LEN] = {
    let mut out = [0u8; VERSIONS_HEADER_LEN];
    let mut at = 0;
    let mut i = 0;
    while i < SUPPORTED_VERSIONS.len() {
        if i > 0 {
            out[at] = b',';
            out[at + 1] = b' ';
            at += 2;
        }
        let v = SUPPORTED_VERSIONS[i];
        if v >= 100 {
            out[at] = b'0' + v / 100;
            at += 1;
        }
        if v >= 10 {
            out[at] = b'0' + v / 10 % 10;
            at += 1;
        }
        out[at] = b'0' + v % 10;
        at += 1;
        i += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertised_list_is_the_supported_list() {
        assert_eq!(SUPPORTED_VERSIONS_HEADER, "13, 8");
        let parsed: Vec<u8> = SUPPORTED_VERSIONS_HEADER
            .split(", ")
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(parsed, SUPPORTED_VERSIONS);
    }
}
