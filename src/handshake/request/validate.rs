//! Building a [`Request`]: from raw bytes or from parts a host parsed, and
//! RFC 6455 §4.2.1, in one place.

use base64::Engine as _;

use super::super::config::{HandshakeConfig, SUPPORTED_VERSIONS};
use super::super::extensions::validate_line;
use super::super::forwarded;
use super::super::http::{
    HeaderSpan, HttpVersion, Lines, RequestParts, Span, Transport, is_field_value_byte, is_token,
    list_contains_token, trim_ows,
};
use super::super::parse::{RawStatus, parse_raw};
use super::super::reject::Rejection;
use super::{Request, Resolution};
use crate::Parsed;

const GET: &[u8] = b"GET";

impl Request {
    /// Parses and validates a raw request head in one step (the fast path
    /// for hosts that only have a socket).
    ///
    /// Returns [`Parsed::Incomplete`] until `buf` holds a whole head, then
    /// the request or the [`Rejection`] to answer with. See
    /// [`parse_head`](crate::handshake::parse_head) for the limits and the
    /// meaning of `consumed`, and [`from_parts`](Self::from_parts) for the
    /// validation.
    pub fn from_head(
        buf: &[u8],
        transport: Transport,
        config: &HandshakeConfig,
    ) -> Parsed<Result<Request, Rejection>> {
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
    ) -> Parsed<Result<Request, Rejection>> {
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
    ) -> Parsed<Result<Request, Rejection>> {
        raw.into_parsed(|raw| {
            Request::validate(
                storage(raw.consumed),
                raw.method,
                raw.target,
                raw.version,
                raw.headers,
                transport,
                config,
            )
        })
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
    /// 5. exactly one `Sec-WebSocket-Version`, a number, one of the supported
    ///    versions 13 and 8 (else 426);
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
            Some(v) => {
                let requested = parse_version(v.get(&buf))?;
                match SUPPORTED_VERSIONS
                    .into_iter()
                    .find(|&s| u32::from(s) == requested)
                {
                    Some(supported) => supported,
                    None => return Err(Rejection::UnsupportedVersion { requested }),
                }
            }
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
