//! Arbitrary bytes as a request head, then a handler's answer.
//!
//! The head (and whatever follows it) goes to `Request::from_head` with the
//! default configuration and with a trusted-proxy configuration. The bytes
//! after the head (the "tail") drive what a handler does: which subprotocol
//! to pick, which cookies and extra headers to add, or how to reject.
//! Checked:
//! - never a panic; `Incomplete` only within `max_head_bytes`;
//! - `parse_head` + `from_parts` agree with `from_head`;
//! - every accessor works and is consistent (see `check_request`);
//! - every serialized response parses back with httparse as exactly the
//!   structured response (no CR/LF/NUL injection, one `Connection`,
//!   `Content-Length` = body);
//! - a 101 only from a successful `accept`, with the right
//!   `Sec-WebSocket-Accept` and only an offered subprotocol; a failed
//!   `accept`/`reject` leaves the request pending and names a real fault;
//! - a request resolves at most once.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use ws_edge::Parsed;
use ws_edge::handshake::{
    AcceptError, AcceptOptions, CookieError, Expires, HandshakeConfig, Header, OriginPolicy,
    RejectError, RejectOptions, Rejection, Request, SameSite, SetCookie, Transport, accept_key,
    parse_head,
};
use ws_edge_fuzz::{
    check_request, check_response, default_setup, is_tchar, policy, proxy_setup, same_request,
    summary, touch,
};

type U<'a> = Unstructured<'a>;

/// A string: one of `choices` (the first when the input is exhausted) or
/// arbitrary UTF-8.
fn text(u: &mut U<'_>, choices: &[&str]) -> String {
    if u.ratio(3, 4).unwrap_or(true) {
        (*u.choose(choices).unwrap_or(&choices[0])).to_owned()
    } else {
        u.arbitrary::<String>().unwrap_or_default()
    }
}

fn bytes(u: &mut U<'_>, choices: &[&str]) -> Vec<u8> {
    if u.ratio(3, 4).unwrap_or(true) {
        u.choose(choices).unwrap_or(&choices[0]).as_bytes().to_vec()
    } else {
        u.arbitrary::<Vec<u8>>().unwrap_or_default()
    }
}

fn cookie(u: &mut U<'_>) -> SetCookie {
    let name = text(
        u,
        &[
            "session",
            "__Host-id",
            "__Secure-t",
            "a b",
            "",
            "x\r\nSet-Cookie: y",
        ],
    );
    let value = text(u, &["abc123", "\"quoted\"", "", "a;b", "v\r\nX: 1", "é"]);
    let mut c = SetCookie::new(name, value);
    if u.ratio(1, 2).unwrap_or(false) {
        c.path = Some(text(u, &["/", "/chat", "/a;b", "/\n"]));
    }
    if u.ratio(1, 3).unwrap_or(false) {
        c.domain = Some(text(
            u,
            &["example.com", ".Example.COM", "a..b", "ex ample"],
        ));
    }
    match u.int_in_range(0..=2u8).unwrap_or(0) {
        1 => {
            c.expires = Some(Expires::HttpDate(text(
                u,
                &[
                    "Sun, 06 Nov 1994 08:49:37 GMT",
                    "Sun, 32 Nov 1994 08:49:37 GMT",
                    "",
                ],
            )))
        }
        2 => c.expires = Some(Expires::UnixSeconds(u.arbitrary().unwrap_or(0))),
        _ => {}
    }
    if u.ratio(1, 3).unwrap_or(false) {
        c.max_age = Some(u.arbitrary().unwrap_or(0));
    }
    c.secure = u.arbitrary().unwrap_or(false);
    c.http_only = u.arbitrary().unwrap_or(false);
    c.same_site = match u.int_in_range(0..=3u8).unwrap_or(0) {
        1 => Some(SameSite::Strict),
        2 => Some(SameSite::Lax),
        3 => Some(SameSite::None),
        _ => None,
    };
    c
}

fn extra_headers(u: &mut U<'_>) -> Vec<Header> {
    let n = u.int_in_range(0..=3u8).unwrap_or(0);
    (0..n)
        .map(|_| {
            let name = text(
                u,
                &[
                    "X-Custom",
                    "Upgrade",
                    "Connection",
                    "content-length",
                    "Set-Cookie",
                    "Bad Name",
                    "X-A\r\nX-B",
                    "",
                    "Sec-WebSocket-Protocol",
                    "X-WebSocket-Reject-Reason",
                    "Content-Type",
                    "Transfer-Encoding",
                ],
            );
            let value = bytes(
                u,
                &["1", "", "a\r\nX-Evil: 1", "a\nb", "a\0b", "\t x \t", "é"],
            );
            Header::from_bytes(name, value)
        })
        .collect()
}

fn header_ok(h: &Header, reserved: &[&str]) -> bool {
    !h.name.is_empty()
        && h.name.bytes().all(is_tchar)
        && h.value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        && !matches!(h.value.first(), Some(b' ' | b'\t'))
        && !matches!(h.value.last(), Some(b' ' | b'\t'))
        && !reserved.iter().any(|r| h.is(r))
}

const RESERVED_ACCEPT: [&str; 8] = [
    "Set-Cookie",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];
const RESERVED_REJECT: [&str; 4] = [
    "Connection",
    "Content-Length",
    "Transfer-Encoding",
    "X-WebSocket-Reject-Reason",
];

fn flip_case(s: &str, mask: u64) -> String {
    s.chars()
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

fn accept_options(r: &Request, u: &mut U<'_>) -> AcceptOptions {
    let offered: Vec<String> = r.requested_protocols().map(str::to_owned).collect();
    let pick = |u: &mut U<'_>| u.choose(&offered).cloned().ok();
    let mut o = AcceptOptions::new();
    o.protocol = match u.int_in_range(0..=4u8).unwrap_or(0) {
        0 => offered.first().cloned(),
        1 => None,
        2 => pick(u).map(|p| flip_case(&p, u.arbitrary().unwrap_or(0))),
        3 => Some(text(u, &["chat", "", "chat\r\nX: 1", "superchat"])),
        _ => pick(u),
    };
    o.allowed_origin = match u.int_in_range(0..=2u8).unwrap_or(0) {
        1 => r
            .origin()
            .map(|x| flip_case(x, u.arbitrary().unwrap_or(0)))
            .or(Some(String::new())),
        2 => Some(text(u, &["https://example.com", "null", ""])),
        _ => None,
    };
    for _ in 0..u.int_in_range(0..=3u8).unwrap_or(0) {
        o.cookies.push(cookie(u));
    }
    o.headers = extra_headers(u);
    o
}

fn reject_options(u: &mut U<'_>) -> RejectOptions {
    let status = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => 403,
        1 => u.arbitrary().unwrap_or(0),
        _ => u.int_in_range(300..=599).unwrap_or(300),
    };
    let mut o = RejectOptions::new(status);
    if u.ratio(1, 2).unwrap_or(false) {
        o.reason = Some(text(
            u,
            &[
                "go away",
                "bad\r\nX-Evil: 1",
                " \r\n ",
                "\0",
                &"é".repeat(300),
            ],
        ));
    }
    o.headers = extra_headers(u);
    if u.ratio(1, 2).unwrap_or(false) {
        o.body = bytes(u, &["denied", "", "HTTP/1.1 200 OK\r\n\r\n"]);
    }
    o
}

fn try_accept(r: &mut Request, u: &mut U<'_>) -> bool {
    let was_resolved = r.is_resolved();
    let o = accept_options(r, u);
    match r.accept(&o) {
        Ok(acc) => {
            assert!(!was_resolved, "accepted twice");
            assert!(r.is_accepted() && r.is_resolved());
            let resp = &acc.response;
            assert_eq!(resp.status, 101);
            check_response(resp);
            assert_eq!(
                resp.header("Sec-WebSocket-Accept"),
                Some(accept_key(r.key()).as_bytes())
            );
            assert_eq!(resp.header("Upgrade"), Some(&b"websocket"[..]));
            assert_eq!(resp.header("Connection"), Some(&b"Upgrade"[..]));
            assert_eq!(acc.protocol.as_deref(), r.accepted_protocol());
            match &o.protocol {
                Some(p) => {
                    let chosen = r.find_protocol(p).expect("only offered protocols");
                    assert_eq!(acc.protocol.as_deref(), Some(chosen));
                }
                None => assert!(acc.protocol.is_none()),
            }
            assert_eq!(
                resp.header("Sec-WebSocket-Protocol"),
                acc.protocol.as_deref().map(str::as_bytes)
            );
            if let Some(a) = &o.allowed_origin {
                assert!(r.origin().is_some_and(|x| x.eq_ignore_ascii_case(a)));
            }
            let set: Vec<&[u8]> = resp
                .headers
                .iter()
                .filter(|h| h.is("Set-Cookie"))
                .map(|h| &*h.value)
                .collect();
            let want: Vec<String> = o
                .cookies
                .iter()
                .map(|c| c.to_header_value().expect("accepted cookie is valid"))
                .collect();
            assert_eq!(set.len(), want.len());
            for (s, w) in set.iter().zip(&want) {
                assert_eq!(*s, w.as_bytes());
            }
            assert!(o.headers.iter().all(|h| header_ok(h, &RESERVED_ACCEPT)));
            assert_eq!(resp.header("Sec-WebSocket-Extensions"), None);
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(r.is_resolved(), was_resolved, "failed accept changed state");
            match e {
                AcceptError::AlreadyResolved => assert!(was_resolved),
                AcceptError::ProtocolNotOffered(p) => {
                    assert!(r.find_protocol(&p).is_none());
                }
                AcceptError::OriginNotAllowed => {
                    let a = o
                        .allowed_origin
                        .as_deref()
                        .expect("an allowed origin was set");
                    assert!(!r.origin().is_some_and(|x| x.eq_ignore_ascii_case(a)));
                }
                AcceptError::Cookie(CookieError::Duplicate(_)) => {
                    assert!(o.cookies.len() > 1);
                }
                AcceptError::Cookie(_) => {
                    assert!(o.cookies.iter().any(|c| c.validate().is_err()));
                }
                AcceptError::Header(_) => {
                    assert!(!o.headers.iter().all(|h| header_ok(h, &RESERVED_ACCEPT)));
                }
            }
            false
        }
    }
}

fn try_reject(r: &mut Request, u: &mut U<'_>) {
    let was_resolved = r.is_resolved();
    let was_accepted = r.is_accepted();
    let o = reject_options(u);
    match r.reject(&o) {
        Ok(resp) => {
            assert!(!was_resolved, "resolved twice");
            assert!(r.is_resolved() && !r.is_accepted());
            assert_eq!(resp.status, o.status);
            assert!((300..=599).contains(&resp.status));
            check_response(&resp);
            assert!(o.headers.iter().all(|h| header_ok(h, &RESERVED_REJECT)));
            if let Some(reason) = resp.header("X-WebSocket-Reject-Reason") {
                assert!(reason.len() <= 512 && !reason.is_empty());
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(r.is_resolved(), was_resolved, "failed reject changed state");
            assert_eq!(r.is_accepted(), was_accepted);
            match e {
                RejectError::AlreadyResolved => assert!(was_resolved),
                RejectError::InvalidStatus(s) => assert!(!(300..=599).contains(&s)),
                RejectError::Header(_) => {
                    assert!(!o.headers.iter().all(|h| header_ok(h, &RESERVED_REJECT)));
                }
            }
        }
    }
}

fn is_raw_rejection(e: Rejection) -> bool {
    matches!(
        e,
        Rejection::MalformedHttp | Rejection::HeadTooLarge | Rejection::TooManyHeaders
    )
}

fn run(
    policy: &OriginPolicy,
    data: &[u8],
    config: &HandshakeConfig,
    transport: Transport,
    tail_ctl: Option<&[u8]>,
) -> usize {
    let status = Request::from_head(data, transport, config);
    let split = parse_head(data, config);
    match (&status, &split) {
        (Parsed::Incomplete, Parsed::Incomplete) => {
            assert!(data.len() <= config.limits.max_head_bytes);
            return data.len();
        }
        (Parsed::Complete { consumed: a, .. }, Parsed::Complete { consumed: b, .. }) => {
            assert_eq!(a, b, "parse_head and from_head consumed differ")
        }
        _ => panic!("parse_head and from_head disagree on completeness"),
    }
    let (
        Parsed::Complete {
            consumed,
            value: result,
        },
        Parsed::Complete { value: parts, .. },
    ) = (status, split)
    else {
        unreachable!()
    };
    assert!(consumed <= data.len() && consumed <= config.limits.max_head_bytes.max(1));
    // The separately parsed parts, validated by `from_parts` (with room for
    // its CRLF-based size estimate), must agree.
    let via_parts = parts.map(|mut p| {
        p.transport = transport;
        let mut c = config.clone();
        c.limits.max_head_bytes *= 2;
        Request::from_parts(p, &c)
    });
    match result {
        Err(e) => {
            assert!(matches!(e.status(), 400 | 426 | 431));
            assert!(!e.to_string().is_empty());
            let resp = e.response();
            assert_eq!(resp.status, e.status());
            check_response(&resp);
            let lossless = std::str::from_utf8(&data[..consumed]).is_ok();
            match via_parts {
                Err(p) => {
                    assert!(is_raw_rejection(e));
                    assert_eq!(p, e);
                }
                Ok(Err(p)) if lossless => assert_eq!(p, e, "from_parts rejects differently"),
                Ok(Ok(_)) if lossless => panic!("from_parts accepts what from_head rejects: {e:?}"),
                Ok(_) => {}
            }
        }
        Ok(mut r) => {
            let head = &data[..consumed];
            assert_eq!(head.last(), Some(&b'\n'));
            check_request(&r, head, config, &transport);
            let p = via_parts
                .expect("parts parsed")
                .expect("from_parts accepts what from_head accepts");
            assert!(
                same_request(&r, &p),
                "from_parts and from_head differ:\n{}\n{}",
                summary(&r),
                summary(&p)
            );
            touch(&r, policy);
            assert!(!format!("{r:?}").is_empty());

            // A handler answers, driven by the tail (or a replay of it).
            let tail = tail_ctl.unwrap_or(&data[consumed..]);
            let mut u = Unstructured::new(tail);
            let _ctl: u8 = u.arbitrary().unwrap_or(0);
            match u.int_in_range(0..=3u8).unwrap_or(0) {
                0 => {
                    try_accept(&mut r, &mut u);
                }
                1 => try_reject(&mut r, &mut u),
                2 => {
                    let accepted = try_accept(&mut r, &mut u);
                    try_reject(&mut r, &mut u);
                    if accepted {
                        try_accept(&mut r, &mut u);
                    }
                }
                _ => {
                    try_reject(&mut r, &mut u);
                    try_accept(&mut r, &mut u);
                    try_reject(&mut r, &mut u);
                }
            }
            // Accessors still work after resolution and did not change.
            assert_eq!(r.resource(), p.resource());
            assert!(r.requested_protocols().eq(p.requested_protocols()));
            assert!(r.headers().eq(p.headers()));
        }
    }
    consumed
}

fuzz_target!(|data: &[u8]| {
    let (config, transport) = default_setup();
    static POLICY: OnceLock<OriginPolicy> = OnceLock::new();
    let policy = POLICY.get_or_init(policy);
    let consumed = run(policy, data, &config, transport, None);
    let tail = data.get(consumed..).unwrap_or_default();
    let ctl = tail.first().copied().unwrap_or(0);
    let (config, transport) = proxy_setup(ctl);
    run(policy, data, &config, transport, Some(tail));
});
