//! Rejections: the validation failures of RFC 6455 §4.2.1 (each naming its
//! rule) and the handler-chosen [`Request::reject`](super::Request::reject).

use std::borrow::Cow;
use std::fmt;

use super::config::SUPPORTED_VERSIONS_HEADER;
use super::http::{Header, is_field_value_byte};
use super::response::{HeaderError, Response, content_length, reason_phrase};

/// Why a request head was refused before any handler saw it.
///
/// Each variant names the rule it enforces. [`status`](Self::status) is `400`
/// for RFC 6455 §4.2.1 violations and malformed HTTP, `426` for an
/// unsupported `Sec-WebSocket-Version`, and `431` for the size limits.
/// [`response`](Self::response) builds the answer, with the
/// [`reason`](Self::reason) text in `X-WebSocket-Reject-Reason`.
///
/// ```
/// use ws_edge::handshake::Rejection;
/// let r = Rejection::MissingHost.response();
/// assert_eq!(r.status, 400);
/// assert_eq!(r.header("X-WebSocket-Reject-Reason"), Some(&b"Host header is required"[..]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The head is longer than `Limits::max_head_bytes` (431).
    HeadTooLarge,
    /// The head has more than `Limits::max_headers` fields (431).
    TooManyHeaders,
    /// The bytes are not an HTTP/1.x request head (400).
    MalformedHttp,
    /// A structured request has a method, target, header name or header value
    /// that HTTP does not allow (400).
    InvalidHeader,
    /// The request target is neither origin-form (`/path?query`) nor an
    /// absolute `ws`/`wss`/`http`/`https` URI (400).
    InvalidTarget,
    /// The method is not `GET` (400, RFC 6455 §4.2.1 item 1).
    MethodNotGet,
    /// The HTTP version is older than 1.1 (400, §4.2.1 item 1).
    HttpVersionTooOld,
    /// There is no `Host` header (400, §4.2.1 item 2).
    MissingHost,
    /// There is more than one `Host` header (400, RFC 9112 §3.2).
    DuplicateHost,
    /// The `Host` value is empty or has characters a host cannot have (400).
    InvalidHost,
    /// `Upgrade` does not contain the token `websocket` (400, §4.2.1 item 3).
    UpgradeNotWebSocket,
    /// `Connection` does not contain the token `upgrade` (400, §4.2.1 item 4).
    ConnectionNotUpgrade,
    /// There is no `Sec-WebSocket-Version` header (400, §4.2.1 item 6).
    MissingVersion,
    /// There is more than one `Sec-WebSocket-Version` header (400).
    DuplicateVersion,
    /// `Sec-WebSocket-Version` is not a decimal number (400).
    InvalidVersion,
    /// `Sec-WebSocket-Version` is a number ws-edge does not speak (426,
    /// RFC 6455 §4.2.2, with `Sec-WebSocket-Version: 13, 8`).
    UnsupportedVersion {
        /// The requested version (saturated at `u32::MAX`).
        requested: u32,
    },
    /// There is no `Sec-WebSocket-Key` header (400, §4.2.1 item 5).
    MissingKey,
    /// There is more than one `Sec-WebSocket-Key` header (400).
    DuplicateKey,
    /// `Sec-WebSocket-Key` is not the base64 encoding of 16 bytes (400).
    InvalidKey,
    /// There is more than one `Origin` (version 13) or `Sec-WebSocket-Origin`
    /// (version 8) header (400).
    DuplicateOrigin,
    /// The origin header is not valid UTF-8 (400).
    InvalidOrigin,
    /// `Sec-WebSocket-Protocol` is not a comma list of distinct tokens (400,
    /// RFC 6455 §4.1 item 10).
    InvalidProtocols,
    /// `Sec-WebSocket-Extensions` does not follow RFC 6455 §9.1 (400).
    InvalidExtensions,
}

impl Rejection {
    /// The HTTP status of the response.
    pub const fn status(self) -> u16 {
        match self {
            Rejection::HeadTooLarge | Rejection::TooManyHeaders => 431,
            Rejection::UnsupportedVersion { .. } => 426,
            _ => 400,
        }
    }

    /// The text sent in `X-WebSocket-Reject-Reason`, naming the rule.
    pub const fn reason(self) -> &'static str {
        match self {
            Rejection::HeadTooLarge => "request head too large",
            Rejection::TooManyHeaders => "too many header fields",
            Rejection::MalformedHttp => "malformed HTTP request",
            Rejection::InvalidHeader => "invalid method, target or header field",
            Rejection::InvalidTarget => "request target must be a path or a ws/wss/http/https URI",
            Rejection::MethodNotGet => "method must be GET",
            Rejection::HttpVersionTooOld => "HTTP/1.1 or later is required",
            Rejection::MissingHost => "Host header is required",
            Rejection::DuplicateHost => "Host header must appear once",
            Rejection::InvalidHost => "Host header is invalid",
            Rejection::UpgradeNotWebSocket => "Upgrade header must contain websocket",
            Rejection::ConnectionNotUpgrade => "Connection header must contain upgrade",
            Rejection::MissingVersion => "Sec-WebSocket-Version header is required",
            Rejection::DuplicateVersion => "Sec-WebSocket-Version header must appear once",
            Rejection::InvalidVersion => "Sec-WebSocket-Version must be a number",
            Rejection::UnsupportedVersion { .. } => "unsupported Sec-WebSocket-Version",
            Rejection::MissingKey => "Sec-WebSocket-Key header is required",
            Rejection::DuplicateKey => "Sec-WebSocket-Key header must appear once",
            Rejection::InvalidKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            Rejection::DuplicateOrigin => "Origin header must appear at most once",
            Rejection::InvalidOrigin => "Origin header must be UTF-8 text",
            Rejection::InvalidProtocols => {
                "Sec-WebSocket-Protocol must be a list of distinct tokens"
            }
            Rejection::InvalidExtensions => "Sec-WebSocket-Extensions is malformed",
        }
    }

    /// Whether the response advertises the supported versions.
    const fn advertises_versions(self) -> bool {
        matches!(
            self,
            Rejection::MissingVersion
                | Rejection::DuplicateVersion
                | Rejection::InvalidVersion
                | Rejection::UnsupportedVersion { .. }
        )
    }

    /// The complete response: the status, `Connection: close`,
    /// `X-WebSocket-Reject-Reason`, `Sec-WebSocket-Version: 13, 8` (plus
    /// `Upgrade: websocket` for `426`, RFC 9110 §15.5.22) for version
    /// problems, and `Content-Length: 0`.
    pub fn response(self) -> Response {
        let mut headers = Vec::with_capacity(5);
        headers.push(Header::new("Connection", "close"));
        headers.push(Header::new("X-WebSocket-Reject-Reason", self.reason()));
        if self.advertises_versions() {
            headers.push(Header::new(
                "Sec-WebSocket-Version",
                SUPPORTED_VERSIONS_HEADER,
            ));
        }
        if self.status() == 426 {
            headers.push(Header::new("Upgrade", "websocket"));
        }
        headers.push(content_length(0));
        Response {
            status: self.status(),
            reason: Cow::Borrowed(reason_phrase(self.status())),
            headers,
            body: Vec::new(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnsupportedVersion { requested } => write!(
                f,
                "unsupported Sec-WebSocket-Version {requested} (supported: {SUPPORTED_VERSIONS_HEADER})"
            ),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for Rejection {}

/// What a handler rejects a request with; see
/// [`Request::reject`](super::Request::reject).
///
/// The default is `403 Forbidden` with no reason, headers or body.
///
/// ```
/// use ws_edge::handshake::RejectOptions;
/// let opts = RejectOptions::new(401)
///     .reason("token expired")
///     .header("WWW-Authenticate", "Bearer")
///     .body("log in first");
/// assert_eq!(opts.status, 401);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectOptions {
    /// The status code, 300–599.
    pub status: u16,
    /// A human-readable reason, sent in `X-WebSocket-Reject-Reason` after
    /// control characters are replaced by spaces and the text is cut to 512
    /// bytes. `None` or blank sends no such header.
    pub reason: Option<String>,
    /// Extra headers. Names must be tokens; values may not hold control
    /// characters other than HTAB; `Connection`, `Content-Length`,
    /// `Transfer-Encoding` and `X-WebSocket-Reject-Reason` are reserved.
    pub headers: Vec<Header>,
    /// The body. If non-empty and no `Content-Type` is among `headers`,
    /// `Content-Type: text/plain; charset=utf-8` is added.
    pub body: Vec<u8>,
}

impl Default for RejectOptions {
    fn default() -> Self {
        RejectOptions::new(403)
    }
}

impl RejectOptions {
    /// A rejection with `status` and nothing else.
    pub fn new(status: u16) -> Self {
        RejectOptions {
            status,
            reason: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sets the reason text.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
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

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// Why [`Request::reject`](super::Request::reject) refused to build a
/// response. The request stays unresolved (except for
/// [`AlreadyResolved`](Self::AlreadyResolved)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectError {
    /// The request was already accepted or rejected.
    #[error("the request was already accepted or rejected")]
    AlreadyResolved,
    /// The status is outside 300–599.
    #[error("status {0} cannot reject an upgrade (use 300-599)")]
    InvalidStatus(u16),
    /// An extra header is invalid or reserved.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// Headers a handler may not give to `reject`.
const RESERVED_ON_REJECT: [&str; 4] = [
    "Connection",
    "Content-Length",
    "Transfer-Encoding",
    "X-WebSocket-Reject-Reason",
];

/// Longest reason text sent, in bytes.
const MAX_REASON_BYTES: usize = 512;

/// Builds a handler's rejection response (the request state is the caller's
/// business).
pub(crate) fn build_rejection(opts: &RejectOptions) -> Result<Response, RejectError> {
    if !(300..=599).contains(&opts.status) {
        return Err(RejectError::InvalidStatus(opts.status));
    }
    for h in &opts.headers {
        super::response::check_extra_header(h, &RESERVED_ON_REJECT)?;
    }
    let mut headers = Vec::with_capacity(opts.headers.len() + 4);
    headers.push(Header::new("Connection", "close"));
    if let Some(reason) = opts.reason.as_deref().and_then(sanitize_reason) {
        headers.push(Header::new("X-WebSocket-Reject-Reason", reason));
    }
    headers.extend(opts.headers.iter().cloned());
    if !opts.body.is_empty() && !opts.headers.iter().any(|h| h.is("Content-Type")) {
        headers.push(Header::new("Content-Type", "text/plain; charset=utf-8"));
    }
    headers.push(content_length(opts.body.len()));
    Ok(Response {
        status: opts.status,
        reason: Cow::Borrowed(reason_phrase(opts.status)),
        headers,
        body: opts.body.clone(),
    })
}

/// Replaces control characters by spaces, trims, and cuts to
/// [`MAX_REASON_BYTES`] at a character boundary. `None` if nothing is left.
pub(crate) fn sanitize_reason(reason: &str) -> Option<String> {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_BYTES));
    for c in reason.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON_BYTES {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_end();
    if trimmed.is_empty() {
        None
    } else {
        debug_assert!(trimmed.bytes().all(is_field_value_byte));
        Some(trimmed.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize() {
        assert_eq!(
            sanitize_reason("bad\r\nX-Evil: 1").as_deref(),
            Some("bad  X-Evil: 1")
        );
        assert_eq!(sanitize_reason(" \r\n "), None);
        let long = "é".repeat(400);
        let s = sanitize_reason(&long).unwrap();
        assert_eq!(s.len(), 512);
    }
}
