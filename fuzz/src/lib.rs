//! Helpers shared by the handshake fuzz targets: the configurations under
//! test, a full dump of what a handler can observe on a [`Request`], and the
//! response checks (every serialized response must parse back with
//! `httparse` as exactly the structured response, so nothing was injected).

use std::net::SocketAddr;

use ws_edge::handshake::{
    HandshakeConfig, Limits, OriginPolicy, ProxyHeader, Request, Response, Transport,
    TrustedProxies,
};

/// The peer a default-config request comes from.
pub const UNTRUSTED_PEER: &str = "198.51.100.7:5555";

/// Peers used with the trusted-proxy configuration: three inside the trusted
/// networks (one as a v4-mapped v6 address), one outside.
pub const PROXY_PEERS: [&str; 4] = [
    "10.0.0.2:4711",
    "[fd00::1]:443",
    "[::ffff:10.9.8.7]:80",
    "203.0.113.50:1234",
];

/// The default configuration, peer [`UNTRUSTED_PEER`].
pub fn default_setup() -> (HandshakeConfig, Transport) {
    (
        HandshakeConfig::default(),
        Transport {
            peer: UNTRUSTED_PEER.parse().ok(),
            tls: false,
        },
    )
}

/// A trusted-proxy configuration chosen by `ctl`: the header, the peer, the
/// parse flags and (sometimes) small limits vary.
pub fn proxy_setup(ctl: u8) -> (HandshakeConfig, Transport) {
    let header = if ctl & 1 == 0 {
        ProxyHeader::XForwardedFor
    } else {
        ProxyHeader::Forwarded
    };
    let mut config = HandshakeConfig {
        trusted_proxies: TrustedProxies::new(header)
            .trust("10.0.0.0/8")
            .and_then(|t| t.trust("fd00::/8"))
            .and_then(|t| t.trust("192.168.1.1"))
            .expect("valid networks"),
        parse_cookies: ctl & 8 == 0,
        parse_extensions: ctl & 16 == 0,
        ..HandshakeConfig::default()
    };
    if ctl & 32 != 0 {
        config.limits = Limits {
            max_head_bytes: 300,
            max_headers: 8,
        };
    }
    let peer: SocketAddr = PROXY_PEERS[usize::from((ctl >> 1) & 3)]
        .parse()
        .expect("valid peer");
    (
        config,
        Transport {
            peer: Some(peer),
            tls: ctl & 64 != 0,
        },
    )
}

/// Everything a handler can read, as text, for comparing two requests.
/// Calls every accessor (each must not panic).
pub fn summary(r: &Request) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let url = r.resource_url();
    let _ = writeln!(
        s,
        "{} {:?} {:?} host={:?} key={:?} v={} origin={:?} tls={}",
        r.method(),
        r.http_version(),
        r.resource(),
        r.host(),
        r.key(),
        r.websocket_version(),
        r.origin(),
        r.is_tls(),
    );
    let _ = writeln!(
        s,
        "path={:?} decoded={:?} query={:?} pairs={:?} q={:?}",
        url.path(),
        url.decoded_path(),
        url.query(),
        url.query_pairs().collect::<Vec<_>>(),
        url.query_value("token"),
    );
    let protocols: Vec<&str> = r.requested_protocols().collect();
    let _ = writeln!(s, "protocols={protocols:?}");
    for e in r.requested_extensions() {
        let _ = writeln!(
            s,
            "ext {:?} {:?} cmwb={:?}",
            e.name(),
            e.params().collect::<Vec<_>>(),
            e.param("client_max_window_bits"),
        );
    }
    for c in r.cookies() {
        let _ = writeln!(s, "cookie {:?}={:?} raw={:?}", c.name, c.value, c.raw_value);
    }
    let _ = writeln!(s, "cookie(session)={:?}", r.cookie("session"));
    let _ = writeln!(
        s,
        "remote={:?} chain={:?}",
        r.remote_address(),
        r.remote_addresses()
    );
    for h in r.headers() {
        let _ = writeln!(s, "h {:?}: {:?}", h.name, h.value);
    }
    let _ = writeln!(
        s,
        "upgrade={:?} {:?} values={}",
        r.header("upgrade"),
        r.header_str("Sec-WebSocket-Key"),
        r.header_values("connection").count(),
    );
    let policy = OriginPolicy::new()
        .allow("https://example.com")
        .and_then(|p| p.allow("https://*.example.org"))
        .and_then(|p| p.allow("null"))
        .expect("valid policy")
        .allow_missing(true);
    let _ = writeln!(s, "verdict={:?} debug={r:?}", r.check_origin(&policy));
    s
}

/// Calls the accessors `same_request` does not, without formatting.
pub fn touch(r: &Request, policy: &OriginPolicy) {
    let url = r.resource_url();
    std::hint::black_box((
        url.query_value("token"),
        url.path(),
        url.query(),
        r.cookie("session"),
        r.header_str("sec-websocket-key"),
        r.header_values("connection").count(),
        r.find_protocol("CHAT"),
        r.check_origin(policy),
        r.transport(),
        r.is_accepted(),
        r.accepted_protocol(),
    ));
    for e in r.requested_extensions() {
        std::hint::black_box(e.param("client_max_window_bits"));
    }
}

/// The origin policy `touch` checks against.
pub fn policy() -> OriginPolicy {
    OriginPolicy::new()
        .allow("https://example.com")
        .and_then(|p| p.allow("https://*.example.org"))
        .and_then(|p| p.allow("null"))
        .expect("valid policy")
        .allow_missing(true)
}

/// Whether two requests look the same through every accessor a handler
/// has (no formatting, so it is cheap enough to run on every input).
pub fn same_request(a: &Request, b: &Request) -> bool {
    let (ua, ub) = (a.resource_url(), b.resource_url());
    a.method() == b.method()
        && a.http_version() == b.http_version()
        && a.resource() == b.resource()
        && ua == ub
        && ua.decoded_path() == ub.decoded_path()
        && ua.query_pairs().eq(ub.query_pairs())
        && a.host() == b.host()
        && a.key() == b.key()
        && a.websocket_version() == b.websocket_version()
        && a.origin() == b.origin()
        && a.is_tls() == b.is_tls()
        && a.remote_address() == b.remote_address()
        && a.remote_addresses() == b.remote_addresses()
        && a.requested_protocols().eq(b.requested_protocols())
        && a.requested_extensions().eq(b.requested_extensions())
        && a.cookies().eq(b.cookies())
        && a.headers().eq(b.headers())
        && a.is_resolved() == b.is_resolved()
}

/// Invariants every validated request must satisfy. `head` is the bytes the
/// request was parsed from (`consumed` long), `transport` what was given.
pub fn check_request(r: &Request, head: &[u8], config: &HandshakeConfig, transport: &Transport) {
    assert!(!r.is_resolved());
    assert_eq!(r.method(), "GET");
    assert!(matches!(r.websocket_version(), 8 | 13));
    assert_eq!(r.key().len(), 24);
    // The resource is exactly the request-target bytes of the request line.
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .expect("request line");
    let line = head[start..]
        .split(|&b| b == b'\n')
        .next()
        .expect("request line");
    let target = line.split(|&b| b == b' ').nth(1).expect("target");
    assert_eq!(
        r.resource().as_bytes(),
        target,
        "resource differs from target"
    );
    assert!(r.resource_url().path().starts_with('/'));
    assert!(!r.host().is_empty());

    // Header accessors agree with each other.
    let headers: Vec<_> = r.headers().collect();
    assert!(headers.len() <= config.limits.max_headers);
    for h in &headers {
        assert!(!h.name.is_empty());
        assert!(!h.value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
        let first = r.header(h.name).expect("header by its own name");
        assert_eq!(
            Some(first),
            r.header_values(h.name).next(),
            "header / header_values disagree"
        );
    }
    // Offered protocols are distinct tokens.
    let protocols: Vec<&str> = r.requested_protocols().collect();
    for (i, p) in protocols.iter().enumerate() {
        assert!(!p.is_empty() && p.bytes().all(is_tchar), "protocol {p:?}");
        assert!(!protocols[..i].contains(p), "duplicate protocol {p:?}");
        assert_eq!(r.find_protocol(p), Some(*p));
    }
    if !config.parse_extensions {
        assert_eq!(r.requested_extensions().count(), 0);
    }
    if !config.parse_cookies {
        assert_eq!(r.cookies().count(), 0);
    }
    for e in r.requested_extensions() {
        assert!(!e.name().is_empty() && e.name().bytes().all(is_tchar));
        for p in e.params() {
            assert!(!p.name.is_empty() && p.name.bytes().all(is_tchar));
        }
    }

    // Client address: the peer unless a trusted proxy vouches otherwise.
    let peer = transport.peer.map(|p| p.ip().to_canonical());
    let chain = r.remote_addresses();
    let trusted = &config.trusted_proxies;
    if peer.is_some_and(|p| !trusted.is_empty() && trusted.contains(p)) {
        assert_eq!(chain.last().copied(), peer, "chain must end at the peer");
        if let Some(client) = r.remote_address() {
            assert_eq!(chain.first(), Some(&client), "client heads the chain");
        }
        for hop in chain.iter().skip(1) {
            assert!(trusted.contains(*hop), "untrusted hop {hop} vouched for");
        }
    } else {
        assert_eq!(r.remote_address(), peer, "forwarding headers believed");
        assert_eq!(chain, peer.as_slice());
    }
}

/// RFC 9110 tchar.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a serialized response back and checks it is exactly `resp`: a
/// complete HTTP/1.1 response with the same status, reason and header
/// fields (so no CR/LF smuggled an extra one in), framed by
/// `Content-Length` unless it is a 101.
pub fn check_response(resp: &Response) -> Vec<u8> {
    let bytes = resp.to_bytes();
    assert_eq!(bytes.len(), resp.serialized_len());
    let mut slots = [httparse::EMPTY_HEADER; 96];
    let mut parsed = httparse::Response::new(&mut slots);
    let n = match parsed.parse(&bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "response does not parse: {other:?}\n{:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(parsed.version, Some(1));
    assert_eq!(parsed.code, Some(resp.status));
    assert_eq!(parsed.reason, Some(&*resp.reason));
    assert!(!resp.reason.bytes().any(|b| b.is_ascii_control()));
    assert_eq!(
        parsed.headers.len(),
        resp.headers.len(),
        "header count changed"
    );
    for (p, h) in parsed.headers.iter().zip(&resp.headers) {
        assert_eq!(p.name, &*h.name);
        // A recipient strips whitespace around a field value (RFC 9110 §5.5).
        assert_eq!(trim(p.value), trim(&h.value));
        assert!(h.name.bytes().all(is_tchar) && !h.name.is_empty());
        assert!(!h.value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
    }
    let body = &bytes[n..];
    assert_eq!(body, &resp.body[..]);
    let lengths: Vec<&[u8]> = resp
        .headers
        .iter()
        .filter(|h| h.is("Content-Length"))
        .map(|h| &*h.value)
        .collect();
    assert!(!resp.headers.iter().any(|h| h.is("Transfer-Encoding")));
    if resp.status == 101 {
        assert!(lengths.is_empty() && body.is_empty());
    } else {
        assert_eq!(lengths, [body.len().to_string().as_bytes()]);
        let closes = resp.headers.iter().filter(|h| h.is("Connection")).count();
        assert_eq!(closes, 1);
        assert_eq!(resp.header("Connection"), Some(&b"close"[..]));
    }
    bytes
}

/// Strips SP / HTAB from both ends.
pub fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}
