//! Property tests of the handshake: a head split at any byte boundary parses
//! the same, the raw and structured paths agree, and no input panics or
//! produces a response with injected header lines.

use std::path::PathBuf;

use proptest::prelude::*;
use ws_edge::Parsed;
use ws_edge::handshake::*;

fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/requests")
        .join(dir);
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// What a handshake attempt amounts to, for comparing two paths.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Incomplete,
    Done {
        consumed: usize,
        result: Result<String, Rejection>,
    },
}

fn summary(r: &Request) -> String {
    format!(
        "{} {} {:?} {:?} {:?} {:?}",
        r.host(),
        r.resource(),
        r.origin(),
        r.requested_protocols().collect::<Vec<_>>(),
        r.requested_extensions()
            .map(|e| (
                e.name().to_owned(),
                e.params()
                    .map(|p| (p.name.to_owned(), p.value.map(|v| v.into_owned())))
                    .collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>(),
        r.cookies()
            .map(|c| (c.name.into_owned(), c.value.into_owned()))
            .collect::<Vec<_>>(),
    )
}

/// The raw path; the borrowing and the owning entry points must agree.
fn outcome(buf: &[u8], config: &HandshakeConfig) -> Outcome {
    let summarize = |status: Parsed<Result<Request, Rejection>>| match status {
        Parsed::Incomplete => Outcome::Incomplete,
        Parsed::Complete { consumed, value } => Outcome::Done {
            consumed,
            result: value.map(|r| summary(&r)),
        },
    };
    let borrowed = summarize(Request::from_head(buf, Transport::default(), config));
    let owned = summarize(Request::from_head_vec(
        buf.to_vec(),
        Transport::default(),
        config,
    ));
    assert_eq!(borrowed, owned, "from_head and from_head_vec disagree");
    borrowed
}

/// The structured path, for heads that parse.
fn outcome_via_parts(buf: &[u8], config: &HandshakeConfig) -> Outcome {
    match parse_head(buf, config) {
        Parsed::Incomplete => Outcome::Incomplete,
        Parsed::Complete { consumed, value } => Outcome::Done {
            consumed,
            result: value
                .and_then(|parts| Request::from_parts(parts, config))
                .map(|r| summary(&r)),
        },
    }
}

#[test]
fn every_prefix_of_an_accepted_head_is_incomplete() {
    let config = HandshakeConfig::default();
    for (name, head) in fixtures("accept") {
        let full = outcome(&head, &config);
        assert!(
            matches!(&full, Outcome::Done { consumed, result: Ok(_) } if *consumed == head.len()),
            "{name}: {full:?}"
        );
        for cut in 0..head.len() {
            assert_eq!(
                outcome(&head[..cut], &config),
                Outcome::Incomplete,
                "{name} cut at {cut}"
            );
        }
        assert_eq!(outcome_via_parts(&head, &config), full, "{name}");
    }
}

#[test]
fn every_prefix_of_a_rejected_head_is_incomplete_or_the_same_rejection() {
    let config = HandshakeConfig::default();
    for (name, head) in fixtures("reject") {
        let Outcome::Done {
            result: Err(rejection),
            ..
        } = outcome(&head, &config)
        else {
            panic!("{name} was not rejected");
        };
        for cut in 0..head.len() {
            match outcome(&head[..cut], &config) {
                Outcome::Incomplete => {}
                Outcome::Done { result, .. } => {
                    assert_eq!(result, Err(rejection), "{name} cut at {cut}")
                }
            }
        }
    }
}

/// A valid request with randomized spelling, order and optional fields.
#[derive(Debug, Clone)]
struct Generated {
    head: Vec<u8>,
    host: String,
    target: String,
    protocols: Vec<String>,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn case_mix(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

prop_compose! {
    fn generated()(
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        path in "(/[A-Za-z0-9._~%-]{0,10}){1,4}",
        query in proptest::option::of("[A-Za-z0-9=&+%]{0,20}"),
        key in proptest::array::uniform16(any::<u8>()),
        protocols in proptest::collection::btree_set(token(), 0..4),
        cookies in proptest::collection::vec(("[a-z]{1,6}", "[A-Za-z0-9%\"]{0,8}"), 0..3),
        extra in proptest::collection::vec(("X-[A-Za-z]{1,8}", "[ -~]{0,30}"), 0..6),
        ext in proptest::option::of(Just(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=\"12\"")),
        upgrade_case in any::<u64>(),
        conn in prop_oneof![Just("Upgrade"), Just("keep-alive, Upgrade"), Just("upgrade")],
        order in any::<u64>(),
        ows in prop_oneof![Just(""), Just(" "), Just("\t ")],
    ) -> Generated {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let protocols: Vec<String> = protocols.into_iter().collect();
        let mut lines: Vec<String> = vec![
            format!("{}: {ows}{host}{ows}", case_mix("host", order)),
            format!("Upgrade: {}", case_mix("websocket", upgrade_case)),
            format!("Connection: {conn}"),
            format!("{}: {key}", case_mix("sec-websocket-key", order >> 7)),
            "Sec-WebSocket-Version: 13".to_owned(),
        ];
        if !protocols.is_empty() {
            lines.push(format!("Sec-WebSocket-Protocol: {}", protocols.join(", ")));
        }
        if !cookies.is_empty() {
            let c: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            lines.push(format!("Cookie: {}", c.join("; ")));
        }
        if let Some(e) = ext {
            lines.push(format!("Sec-WebSocket-Extensions: {e}"));
        }
        for (n, v) in &extra {
            lines.push(format!("{n}: {}", v.trim()));
        }
        // Shuffle deterministically from `order`.
        let mut seed = order | 1;
        for i in (1..lines.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            lines.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let head = format!("GET {target} HTTP/1.1\r\n{}\r\n\r\n", lines.join("\r\n"));
        Generated { head: head.into_bytes(), host, target, protocols }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn split_anywhere_parses_the_same(g in generated(), cut in any::<prop::sample::Index>(),
                                      tail in proptest::collection::vec(any::<u8>(), 0..16)) {
        let config = HandshakeConfig::default();
        let full = outcome(&g.head, &config);
        let Outcome::Done { consumed, result: Ok(_) } = &full else {
            return Err(TestCaseError::fail(format!("{full:?} for {:?}", String::from_utf8_lossy(&g.head))));
        };
        prop_assert_eq!(*consumed, g.head.len());
        let cut = cut.index(g.head.len());
        prop_assert_eq!(outcome(&g.head[..cut], &config), Outcome::Incomplete);
        // Frame bytes after the head change nothing.
        let mut more = g.head.clone();
        more.extend_from_slice(&tail);
        prop_assert_eq!(outcome(&more, &config), full.clone());
        prop_assert_eq!(outcome_via_parts(&g.head, &config), full);

        let Parsed::Complete { value: Ok(mut req), .. } =
            Request::from_head(&g.head, Transport::default(), &config) else { unreachable!() };
        prop_assert_eq!(req.host(), g.host.as_str());
        prop_assert_eq!(req.resource(), g.target.as_str());
        prop_assert_eq!(req.requested_protocols().collect::<Vec<_>>(), g.protocols.clone());
        let choice = g.protocols.first().map(|p| p.to_ascii_uppercase());
        let accepted = req.accept(&AcceptOptions { protocol: choice, ..Default::default() }).unwrap();
        prop_assert_eq!(accepted.protocol, g.protocols.first().cloned());
        let expected = accept_key(req.key());
        prop_assert_eq!(
            accepted.response.header("Sec-WebSocket-Accept"),
            Some(expected.as_bytes())
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let config = HandshakeConfig::default();
        let raw = outcome(&bytes, &config);
        let parts = outcome_via_parts(&bytes, &config);
        prop_assert_eq!(raw, parts);
    }

    #[test]
    fn mutated_heads_never_panic_and_paths_agree(
        g in generated(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut head = g.head.clone();
        for (at, byte, op) in edits {
            if head.is_empty() { break; }
            let i = at.index(head.len());
            match op {
                0 => head[i] = byte,
                1 => head.insert(i, byte),
                _ => { head.remove(i); }
            }
        }
        let config = HandshakeConfig {
            trusted_proxies: TrustedProxies::new(ProxyHeader::Forwarded).trust("0.0.0.0/0").unwrap(),
            ..HandshakeConfig::default()
        };
        prop_assert_eq!(outcome(&head, &config), outcome_via_parts(&head, &config));
    }

    #[test]
    fn arbitrary_parts_never_panic(
        method in "[A-Za-z]{0,5}",
        target in ".{0,20}",
        minor in 0u8..3,
        headers in proptest::collection::vec(
            (prop_oneof![Just("Host".to_owned()), Just("Upgrade".to_owned()),
                         Just("Connection".to_owned()), Just("Sec-WebSocket-Key".to_owned()),
                         Just("Sec-WebSocket-Version".to_owned()), Just("X-Forwarded-For".to_owned()),
                         Just("Sec-WebSocket-Protocol".to_owned()), Just("Cookie".to_owned()),
                         Just("Sec-WebSocket-Extensions".to_owned()), ".{0,8}"],
             proptest::collection::vec(any::<u8>(), 0..24)),
            0..12),
        peer in proptest::option::of(any::<std::net::SocketAddr>()),
    ) {
        let parts = RequestParts {
            method, target,
            version: HttpVersion { major: 1, minor },
            headers: headers.into_iter().map(|(n, v)| Header::from_bytes(n, v)).collect(),
            transport: Transport { peer, tls: false },
        };
        let config = HandshakeConfig {
            trusted_proxies: TrustedProxies::new(ProxyHeader::XForwardedFor)
                .trust("::/0").unwrap()
                .trust("0.0.0.0/0").unwrap(),
            ..HandshakeConfig::default()
        };
        if let Ok(req) = Request::from_parts(parts, &config) {
            let _ = summary(&req);
            let _ = req.remote_addresses();
        }
    }

    #[test]
    fn accept_never_emits_injected_lines(
        protocol in proptest::option::of(".{0,10}"),
        header_name in ".{0,10}",
        header_value in proptest::collection::vec(any::<u8>(), 0..20),
        cookie_name in ".{0,8}",
        cookie_value in ".{0,8}",
        path in proptest::option::of(".{0,8}"),
        domain in proptest::option::of(".{0,8}"),
        date in proptest::option::of(".{0,30}"),
        secs in proptest::option::of(any::<u64>()),
    ) {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Protocol: chat\r\n\r\n";
        let Parsed::Complete { value: Ok(mut req), .. } =
            Request::from_head(head, Transport::default(), &HandshakeConfig::default()) else { unreachable!() };
        let mut cookie = SetCookie::new(cookie_name, cookie_value);
        cookie.path = path;
        cookie.domain = domain;
        cookie.expires = date.map(Expires::HttpDate).or(secs.map(Expires::UnixSeconds));
        let options = AcceptOptions {
            protocol,
            allowed_origin: None,
            cookies: vec![cookie],
            headers: vec![Header::from_bytes(header_name, header_value)],
            deflate: None,
        };
        if let Ok(accepted) = req.accept(&options) {
            assert_single_response(&accepted.response.to_bytes(), accepted.response.headers.len())?;
        } else {
            prop_assert!(!req.is_resolved());
        }
    }

    #[test]
    fn reject_never_emits_injected_lines(
        status in any::<u16>(),
        reason in proptest::option::of(".{0,40}"),
        header_name in ".{0,10}",
        header_value in proptest::collection::vec(any::<u8>(), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let Parsed::Complete { value: Ok(mut req), .. } =
            Request::from_head(head, Transport::default(), &HandshakeConfig::default()) else { unreachable!() };
        let options = RejectOptions {
            status, reason,
            headers: vec![Header::from_bytes(header_name, header_value)],
            body: body.clone(),
        };
        if let Ok(response) = req.reject(&options) {
            let wire = response.to_bytes();
            let n = assert_single_response(&wire, response.headers.len())?;
            prop_assert_eq!(&wire[n..], &body[..]);
            prop_assert_eq!(response.reason.as_ref(), reason_phrase(status));
        }
    }

    #[test]
    fn origin_policy_never_panics(origin in ".{0,40}", pattern in ".{0,40}") {
        let policy = OriginPolicy::new().allow("https://*.example.com").unwrap();
        let _ = policy.check(Some(&origin));
        if let Ok(p) = OriginPolicy::new().allow(&pattern) {
            let _ = p.check(Some(&origin));
        }
    }
}

/// The bytes are one HTTP response head with exactly `headers` fields;
/// returns the head length.
fn assert_single_response(wire: &[u8], headers: usize) -> Result<usize, TestCaseError> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut slots);
    match resp.parse(wire) {
        Ok(httparse::Status::Complete(n)) => {
            prop_assert_eq!(resp.headers.len(), headers);
            Ok(n)
        }
        other => Err(TestCaseError::fail(format!(
            "{other:?}: {:?}",
            String::from_utf8_lossy(wire)
        ))),
    }
}
