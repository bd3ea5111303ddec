//! Header injection is impossible through anything a handler (or a client)
//! puts into a handshake response: reject reasons, reject and accept extra
//! headers, cookies (name, value, path, domain), subprotocols (chosen by the
//! handler or offered by the client). Every byte that could end a header
//! line or a string (CR, LF, NUL, other controls) is tried in every place.
//! A field either refuses the value or the serialized response still parses
//! as exactly the headers it should have.

use ws_edge::Parsed;
use ws_edge::handshake::*;

mod support;
use support::head_with;

/// The bytes that could break a response: line ends alone and together,
/// NUL, and the other controls a parser might treat as whitespace.
const BAD: &[&str] = &["\r", "\n", "\r\n", "\0", "\x0b", "\x0c", "\x7f", "\r\n\r\n"];

fn request(extra: &[&str]) -> Request {
    match Request::from_head(
        &head_with(extra),
        Transport::default(),
        &HandshakeConfig::default(),
    ) {
        Parsed::Complete { value: Ok(r), .. } => r,
        other => panic!("expected an acceptable head, got {other:?}"),
    }
}

/// Parses `bytes` as one complete response: returns its header names, and
/// checks that no name or value carries a control byte and nothing follows
/// the declared body.
fn parse_clean(bytes: &[u8]) -> Vec<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "not one complete response ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    for h in resp.headers.iter() {
        assert!(
            !h.value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f),
            "control byte in {}: {:?}",
            h.name,
            String::from_utf8_lossy(h.value)
        );
    }
    let length = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        });
    match length {
        Some(len) => assert_eq!(bytes.len() - n, len, "bytes after the body"),
        None => assert_eq!(bytes.len(), n, "bytes after the head"),
    }
    resp.headers.iter().map(|h| h.name.to_owned()).collect()
}

#[test]
fn reject_reasons_cannot_add_headers() {
    for bad in BAD {
        let mut req = request(&[]);
        let reason = format!("bad{bad}X-Injected: 1{bad}");
        let response = req
            .reject(&RejectOptions::new(403).reason(reason))
            .expect("a reason is sanitised, never refused");
        let names = parse_clean(&response.to_bytes());
        assert_eq!(
            names,
            ["Connection", "X-WebSocket-Reject-Reason", "Content-Length"],
            "{bad:?}"
        );
    }
}

#[test]
fn reject_extra_headers_refuse_control_bytes() {
    for bad in BAD {
        let mut req = request(&[]);
        let value = format!("a{bad}X-Injected: 1");
        assert!(
            matches!(
                req.reject(&RejectOptions::new(403).header("X-A", value)),
                Err(RejectError::Header(HeaderError::InvalidValue(_)))
            ),
            "value with {bad:?}"
        );
        let name = format!("X-A{bad}");
        assert!(
            matches!(
                req.reject(&RejectOptions::new(403).header(name, "1")),
                Err(RejectError::Header(HeaderError::InvalidName(_)))
            ),
            "name with {bad:?}"
        );
        assert!(!req.is_resolved());
    }
}

#[test]
fn accept_extra_headers_refuse_control_bytes() {
    for bad in BAD {
        let mut req = request(&[]);
        assert!(
            matches!(
                req.accept(&AcceptOptions::new().header("X-A", format!("a{bad}X-B: 1"))),
                Err(AcceptError::Header(HeaderError::InvalidValue(_)))
            ),
            "value with {bad:?}"
        );
        assert!(
            matches!(
                req.accept(&AcceptOptions::new().header(format!("X{bad}A"), "1")),
                Err(AcceptError::Header(HeaderError::InvalidName(_)))
            ),
            "name with {bad:?}"
        );
        assert!(!req.is_resolved());
    }
}

#[test]
fn cookies_refuse_control_bytes_in_every_field() {
    for bad in BAD {
        let cases = [
            SetCookie::new(format!("sid{bad}"), "1"),
            SetCookie::new("sid", format!("1{bad}Set-Cookie: x=2")),
            SetCookie::new("sid", "1").path(format!("/{bad}X: 1")),
            SetCookie::new("sid", "1").domain(format!("a.example{bad}")),
        ];
        for cookie in cases {
            assert!(cookie.validate().is_err(), "{cookie:?}");
            assert!(cookie.to_header_value().is_err(), "{cookie:?}");
            let mut req = request(&[]);
            assert!(
                matches!(
                    req.accept(&AcceptOptions::new().cookie(cookie.clone())),
                    Err(AcceptError::Cookie(_))
                ),
                "{cookie:?}"
            );
            assert!(!req.is_resolved());
        }
    }
    // The same cookie without the bad bytes is fine.
    let mut req = request(&[]);
    let accepted = req
        .accept(&AcceptOptions::new().cookie(SetCookie::new("sid", "1").path("/")))
        .expect("a clean cookie is accepted");
    let names = parse_clean(&accepted.response.to_bytes());
    assert!(names.iter().any(|n| n == "Set-Cookie"));
}

#[test]
fn subprotocols_chosen_by_the_handler_must_be_offered_tokens() {
    for bad in BAD {
        let mut req = request(&["Sec-WebSocket-Protocol: chat, superchat"]);
        let chosen = format!("chat{bad}X-Injected: 1");
        assert_eq!(
            req.accept(&AcceptOptions::new().protocol(chosen.clone())),
            Err(AcceptError::ProtocolNotOffered(chosen)),
            "{bad:?}"
        );
        assert!(!req.is_resolved());
    }
    let mut req = request(&["Sec-WebSocket-Protocol: chat, superchat"]);
    let accepted = req
        .accept(&AcceptOptions::new().protocol("superchat"))
        .expect("an offered protocol is accepted");
    let names = parse_clean(&accepted.response.to_bytes());
    assert_eq!(
        names,
        [
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Accept",
            "Sec-WebSocket-Protocol"
        ]
    );
}

#[test]
fn subprotocols_offered_with_control_bytes_never_reach_a_response() {
    // CR and LF end the header line at the parser; NUL and the other
    // controls are not allowed in a field value: the head is refused, or
    // the offer has no such protocol. Either way nothing is echoed.
    for bad in ["\0", "\x0b", "\x0c", "\x7f", "\r"] {
        let line = format!("Sec-WebSocket-Protocol: chat{bad}X, other");
        let bytes = head_with(&[&line]);
        match Request::from_head(&bytes, Transport::default(), &HandshakeConfig::default()) {
            Parsed::Complete { value: Err(_), .. } => {}
            Parsed::Complete {
                value: Ok(mut req), ..
            } => {
                let offered: Vec<String> = req.requested_protocols().map(str::to_owned).collect();
                assert!(
                    offered
                        .iter()
                        .all(|p| p.bytes().all(|b| b > 0x20 && b < 0x7f)),
                    "{bad:?}: offered {offered:?}"
                );
                if let Some(p) = offered.first() {
                    let accepted = req
                        .accept(&AcceptOptions::new().protocol(p.clone()))
                        .expect("an offered token can be chosen");
                    parse_clean(&accepted.response.to_bytes());
                }
            }
            Parsed::Incomplete => panic!("{bad:?}: a complete head is incomplete"),
        }
    }
}

#[test]
fn proxy_headers_are_ignored_by_default() {
    for extra in [
        &["X-Forwarded-For: 6.6.6.6"][..],
        &["Forwarded: for=6.6.6.6"][..],
        &[
            "X-Forwarded-For: 6.6.6.6",
            "Forwarded: for=\"[2001:db8::6]\"",
        ][..],
    ] {
        let bytes = head_with(extra);
        let peer = Transport {
            peer: "203.0.113.5:4000".parse().ok(),
            tls: false,
        };
        let req = match Request::from_head(&bytes, peer, &HandshakeConfig::default()) {
            Parsed::Complete { value: Ok(r), .. } => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            req.remote_address(),
            Some("203.0.113.5".parse().unwrap()),
            "{extra:?}"
        );
        assert_eq!(req.remote_addresses().len(), 1, "{extra:?}");
    }
    assert!(HandshakeConfig::default().trusted_proxies.is_empty());
}
