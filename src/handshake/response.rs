//! The HTTP/1.1 response to an upgrade request, its serialization and the
//! reason phrase table.

use std::borrow::Cow;

use super::http::{Header, is_field_value_byte, is_token, push_decimal};

/// A complete HTTP/1.1 response to an upgrade request.
///
/// ```
/// use ws_edge::handshake::{Header, Response};
/// let r = Response {
///     status: 404,
///     reason: "Not Found".into(),
///     headers: vec![Header::new("Content-Length", "0")],
///     body: Vec::new(),
/// };
/// assert_eq!(r.to_bytes(), b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Response {
    /// The status code (`101` when accepted).
    pub status: u16,
    /// The reason phrase, for example `Switching Protocols`.
    pub reason: Cow<'static, str>,
    /// The header fields in serialization order.
    pub headers: Vec<Header>,
    /// The body; `Content-Length` in `headers` gives its length.
    pub body: Vec<u8>,
}

impl Response {
    /// Appends the HTTP/1.1 serialization (status line, header fields, the
    /// empty line and the body) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.serialized_len());
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&h.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The HTTP/1.1 serialization as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// The exact length of [`to_bytes`](Self::to_bytes).
    pub fn serialized_len(&self) -> usize {
        let digits = match self.status {
            0..=9 => 1,
            10..=99 => 2,
            100..=999 => 3,
            1000..=9999 => 4,
            _ => 5,
        };
        let head: usize = self
            .headers
            .iter()
            .map(|h| h.name.len() + 2 + h.value.len() + 2)
            .sum();
        9 + digits + 1 + self.reason.len() + 2 + head + 2 + self.body.len()
    }

    /// A response the server sends on its own, when no handler answers: for
    /// a host that must refuse a connection before or without its component
    /// (408, 431, 503) or after the component failed (500). The status line
    /// uses [`reason_phrase`]; the fields are `Connection: close` and, for a
    /// non-empty body, `Content-Type: text/plain; charset=utf-8`, then
    /// `Content-Length`.
    ///
    /// ```
    /// use ws_edge::handshake::Response;
    /// let r = Response::plain(503, "no instance available\n");
    /// assert!(r.to_bytes().starts_with(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"));
    /// assert_eq!(r.header("content-length"), Some(&b"22"[..]));
    /// ```
    pub fn plain(status: u16, body: &str) -> Response {
        let mut headers = Vec::with_capacity(3);
        headers.push(Header::new("Connection", "close"));
        if !body.is_empty() {
            headers.push(Header::new("Content-Type", "text/plain; charset=utf-8"));
        }
        headers.push(content_length(body.len()));
        Response {
            status,
            reason: Cow::Borrowed(reason_phrase(status)),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.is(name))
            .map(|h| h.value.as_ref())
    }
}

/// The reason phrase for `status`: the RFC 9110 / IANA registry phrase for
/// registered codes, otherwise a phrase for the status class
/// (`Client Error`, `Server Error`, …). Never empty, never `undefined`.
///
/// ```
/// use ws_edge::handshake::reason_phrase;
/// assert_eq!(reason_phrase(426), "Upgrade Required");
/// assert_eq!(reason_phrase(499), "Client Error");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    registered_phrase(status).unwrap_or(match status {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Unknown Status",
    })
}

fn registered_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// Why an extra header given to `accept` or `reject` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The name is not an RFC 9110 token.
    #[error("header name {0:?} is not a token")]
    InvalidName(String),
    /// The value contains CR, LF, NUL or another control character, or
    /// starts or ends with whitespace (RFC 9110 §5.5 field-value).
    #[error("value of header {0:?} contains a control character or surrounding whitespace")]
    InvalidValue(String),
    /// The header is set by ws-edge itself and may not be overridden.
    #[error("header {0:?} is set by ws-edge and may not be given")]
    Reserved(String),
}

/// Checks an extra response header: token name, no control characters other
/// than HTAB in the value, no leading or trailing whitespace, and not one of
/// `reserved`.
pub(crate) fn check_extra_header(h: &Header, reserved: &[&str]) -> Result<(), HeaderError> {
    if !is_token(h.name.as_bytes()) {
        return Err(HeaderError::InvalidName(h.name.to_string()));
    }
    let padded = matches!(h.value.first(), Some(b' ' | b'\t'))
        || matches!(h.value.last(), Some(b' ' | b'\t'));
    if padded || !h.value.iter().all(|&b| is_field_value_byte(b)) {
        return Err(HeaderError::InvalidValue(h.name.to_string()));
    }
    if reserved.iter().any(|r| h.is(r)) {
        return Err(HeaderError::Reserved(h.name.to_string()));
    }
    Ok(())
}

/// `Content-Length: n`.
pub(crate) fn content_length(n: usize) -> Header {
    if n == 0 {
        return Header::new("Content-Length", "0");
    }
    let mut v = Vec::with_capacity(8);
    push_decimal(&mut v, n as u64);
    Header::from_bytes("Content-Length", v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_phrase() {
        for s in 0..=u16::MAX {
            let p = reason_phrase(s);
            assert!(!p.is_empty() && p != "undefined");
        }
    }

    #[test]
    fn serialized_len_matches() {
        let r = Response {
            status: 101,
            reason: "Switching Protocols".into(),
            headers: vec![Header::new("Upgrade", "websocket")],
            body: b"xy".to_vec(),
        };
        assert_eq!(r.serialized_len(), r.to_bytes().len());
    }
}
