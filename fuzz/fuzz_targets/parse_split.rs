//! Split invariance of `Request::from_head`: a host calls it again with
//! everything read so far, so every prefix of the bytes must be
//! `Incomplete` or give the same answer as the whole.
//!
//! For the whole input's outcome W and a prefix of length p (copied to a new
//! buffer, as a host's read buffer would be):
//! - W incomplete: the prefix is incomplete;
//! - W a head of `c` bytes (accepted, or rejected by a WebSocket rule): the
//!   prefix is incomplete if p < c, else exactly W (same consumed, same
//!   request as seen through every accessor, or same rejection);
//! - W a rejection found while parsing (malformed, too large, too many
//!   headers): the prefix is incomplete or the same rejection, with
//!   consumed = min(p, max_head_bytes).
//!
//! Run with the default and a trusted-proxy configuration (chosen by the
//! last byte).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_edge::Parsed;
use ws_edge::handshake::{HandshakeConfig, Rejection, Request, Transport};
use ws_edge_fuzz::{default_setup, proxy_setup, same_request};

enum Outcome {
    Incomplete,
    Head(usize, Request),
    Rejected(usize, Rejection),
}

fn outcome(buf: &[u8], config: &HandshakeConfig, transport: Transport) -> Outcome {
    match Request::from_head(buf, transport, config) {
        Parsed::Incomplete => Outcome::Incomplete,
        Parsed::Complete {
            consumed,
            value: Ok(r),
        } => Outcome::Head(consumed, r),
        Parsed::Complete {
            consumed,
            value: Err(e),
        } => Outcome::Rejected(consumed, e),
    }
}

/// A short description for assertion messages.
fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Incomplete => "incomplete".into(),
        Outcome::Head(c, r) => format!("head of {c} bytes: {r:?}"),
        Outcome::Rejected(c, e) => format!("rejected after {c} bytes: {e:?}"),
    }
}

/// Whether two outcomes are the same; `full` compares requests through
/// every accessor (see `summary`), otherwise through the cheap ones.
fn same(a: &Outcome, b: &Outcome, full: bool) -> bool {
    match (a, b) {
        (Outcome::Incomplete, Outcome::Incomplete) => true,
        (Outcome::Rejected(c, e), Outcome::Rejected(d, f)) => c == d && e == f,
        (Outcome::Head(c, r), Outcome::Head(d, s)) => {
            c == d
                && if full {
                    same_request(r, s)
                } else {
                    r.resource() == s.resource()
                        && r.host() == s.host()
                        && r.key() == s.key()
                        && r.origin() == s.origin()
                        && r.remote_addresses() == s.remote_addresses()
                        && r.headers().eq(s.headers())
                }
        }
        _ => false,
    }
}

fn is_parse_rejection(e: Rejection) -> bool {
    matches!(
        e,
        Rejection::MalformedHttp | Rejection::HeadTooLarge | Rejection::TooManyHeaders
    )
}

fn check(data: &[u8], config: &HandshakeConfig, transport: Transport) {
    let whole = outcome(data, config, transport);
    let max = config.limits.max_head_bytes;
    let end = match &whole {
        Outcome::Head(c, _) => Some(*c),
        Outcome::Rejected(c, e) if !is_parse_rejection(*e) => Some(*c),
        _ => None,
    };

    // Split points: around the end of the head, the ends, and pseudo-random.
    let len = data.len();
    let mut points = vec![0, 1, len / 2, len.saturating_sub(1), len];
    if let Some(c) = end {
        points.extend([c.saturating_sub(1), c, c + 1, c.saturating_sub(2)]);
    }
    let mut seed = (len as u32).wrapping_mul(0x9e37_79b9) | 1;
    for &b in data.iter().take(8) {
        seed = seed.rotate_left(5) ^ u32::from(b) | 1;
    }
    for _ in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        points.push(seed as usize % (len + 1));
    }

    for p in points {
        if p > len {
            continue;
        }
        let prefix = data[..p].to_vec();
        let got = outcome(&prefix, config, transport);
        let ctx = || {
            format!(
                "prefix {p}: {} / whole: {}",
                describe(&got),
                describe(&whole)
            )
        };
        match (&whole, end) {
            (Outcome::Incomplete, _) => assert!(matches!(got, Outcome::Incomplete), "{}", ctx()),
            (_, Some(c)) if p < c => assert!(matches!(got, Outcome::Incomplete), "{}", ctx()),
            (_, Some(c)) => assert!(same(&got, &whole, p == c || p == len), "{}", ctx()),
            (Outcome::Rejected(_, e), None) => match got {
                Outcome::Incomplete => assert!(p <= max, "{}", ctx()),
                Outcome::Rejected(c, g) => {
                    assert!(g == *e && c == p.min(max), "{}", ctx());
                }
                Outcome::Head(..) => panic!("{}", ctx()),
            },
            (Outcome::Head(..), None) => unreachable!(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (config, transport) = default_setup();
    check(data, &config, transport);
    let ctl = data.last().copied().unwrap_or(0);
    let (config, transport) = proxy_setup(ctl);
    check(data, &config, transport);
});
