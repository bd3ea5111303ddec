//! An allow-list for the request's origin, the defence against cross-site
//! WebSocket hijacking (RFC 6455 §10.2).
//!
//! Browsers always send `Origin` (version 13) or `Sec-WebSocket-Origin`
//! (version 8). Other clients (curl, websocat, server-side libraries) usually
//! send none, and cannot be driven by a hostile page, so an absent origin is a
//! separate case with its own switch, [`OriginPolicy::allow_missing`].
//!
//! Matching is ASCII case-insensitive; the default port of the scheme is
//! ignored (`https://a.example:443` is `https://a.example`); any other port
//! must match exactly. A wildcard entry `https://*.example.com` matches every
//! subdomain at any depth (`https://a.example.com`, `https://a.b.example.com`)
//! but not `https://example.com` itself: list that separately. The opaque
//! origin `null` (sandboxed frames, `file:` pages) only matches an explicit
//! `null` entry.

/// Allowed origins.
///
/// ```
/// use ws_edge::handshake::{OriginPolicy, OriginVerdict};
/// let policy = OriginPolicy::new()
///     .allow("https://example.com").unwrap()
///     .allow("https://*.example.com").unwrap()
///     .allow_missing(true);
/// assert_eq!(policy.check(Some("https://chat.example.com")), OriginVerdict::Allowed);
/// assert_eq!(policy.check(Some("https://evil.com")), OriginVerdict::Denied);
/// assert_eq!(policy.check(None), OriginVerdict::MissingAllowed);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    entries: Vec<Entry>,
    allow_missing: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Null,
    Exact(Origin),
    /// `host` holds the suffix after `*.` (without the dot).
    Wildcard(Origin),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// The outcome of [`OriginPolicy::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OriginVerdict {
    /// The origin matches an entry.
    Allowed,
    /// The origin is present and matches no entry (or is not an origin).
    Denied,
    /// There is no origin and the policy allows that (non-browser client).
    MissingAllowed,
    /// There is no origin and the policy does not allow that.
    MissingDenied,
}

impl OriginVerdict {
    /// Whether the connection may proceed.
    pub const fn is_allowed(self) -> bool {
        matches!(self, OriginVerdict::Allowed | OriginVerdict::MissingAllowed)
    }
}

/// An allow-list entry that is not `scheme://host[:port]`, `null`, or a
/// wildcard `scheme://*.domain[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an origin pattern: {0:?}")]
pub struct OriginPatternError(pub String);

impl OriginPolicy {
    /// A policy that allows nothing, not even a missing origin.
    pub fn new() -> Self {
        OriginPolicy::default()
    }

    /// Adds an entry: an origin such as `https://example.com:8443`, a
    /// wildcard such as `https://*.example.com`, or `null`.
    ///
    /// Fails if the entry is none of these (a path, a `*` anywhere but the
    /// first host label, …).
    pub fn allow(mut self, pattern: &str) -> Result<Self, OriginPatternError> {
        let bad = || OriginPatternError(pattern.to_owned());
        let entry = if pattern.eq_ignore_ascii_case("null") {
            Entry::Null
        } else {
            let o = parse_origin(pattern).ok_or_else(bad)?;
            match o.host.strip_prefix("*.") {
                Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                    Entry::Wildcard(Origin {
                        host: suffix.to_owned(),
                        ..o
                    })
                }
                Some(_) => return Err(bad()),
                None if o.host.contains('*') => return Err(bad()),
                None => Entry::Exact(o),
            }
        };
        self.entries.push(entry);
        Ok(self)
    }

    /// Whether a request without an origin is allowed (default `false`).
    /// Browsers always send one, so allowing its absence only admits
    /// non-browser clients, which cross-site hijacking cannot drive.
    pub fn allow_missing(mut self, allow: bool) -> Self {
        self.allow_missing = allow;
        self
    }

    /// Judges an origin (`None` when the request has none).
    pub fn check(&self, origin: Option<&str>) -> OriginVerdict {
        let Some(origin) = origin else {
            return if self.allow_missing {
                OriginVerdict::MissingAllowed
            } else {
                OriginVerdict::MissingDenied
            };
        };
        if origin.eq_ignore_ascii_case("null") {
            return if self.entries.contains(&Entry::Null) {
                OriginVerdict::Allowed
            } else {
                OriginVerdict::Denied
            };
        }
        let Some(o) = parse_origin(origin) else {
            return OriginVerdict::Denied;
        };
        if o.host.contains('*') {
            return OriginVerdict::Denied;
        }
        let matched = self.entries.iter().any(|e| match e {
            Entry::Null => false,
            Entry::Exact(p) => *p == o,
            Entry::Wildcard(p) => {
                p.scheme == o.scheme
                    && p.port == o.port
                    && o.host.len() > p.host.len() + 1
                    && o.host.ends_with(p.host.as_str())
                    && o.host.as_bytes()[o.host.len() - p.host.len() - 1] == b'.'
            }
        });
        if matched {
            OriginVerdict::Allowed
        } else {
            OriginVerdict::Denied
        }
    }
}

/// `scheme "://" host [ ":" port ]`, lower-cased, default port removed.
fn parse_origin(s: &str) -> Option<Origin> {
    let (scheme, rest) = s.split_once("://")?;
    let scheme_ok = scheme.as_bytes().first()?.is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok || rest.is_empty() {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&rest[..inside.len() + 2], port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*')));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    Some(Origin {
        port: port.filter(|p| Some(*p) != default),
        host: host.to_ascii_lowercase(),
        scheme,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let p = OriginPolicy::new()
            .allow("https://Example.com")
            .unwrap()
            .allow("https://*.example.com")
            .unwrap()
            .allow("http://localhost:3000")
            .unwrap();
        use OriginVerdict::*;
        assert_eq!(p.check(Some("https://example.com")), Allowed);
        assert_eq!(p.check(Some("https://EXAMPLE.com:443")), Allowed);
        assert_eq!(p.check(Some("https://a.b.example.com")), Allowed);
        assert_eq!(p.check(Some("https://badexample.com")), Denied);
        assert_eq!(p.check(Some("http://a.example.com")), Denied);
        assert_eq!(p.check(Some("https://a.example.com:8443")), Denied);
        assert_eq!(p.check(Some("http://localhost:3000")), Allowed);
        assert_eq!(p.check(Some("http://localhost:3001")), Denied);
        assert_eq!(p.check(Some("https://example.com/path")), Denied);
        assert_eq!(p.check(Some("null")), Denied);
        assert_eq!(p.check(Some("https://*.example.com")), Denied);
        assert_eq!(p.check(None), MissingDenied);
        let p = p.allow("null").unwrap().allow_missing(true);
        assert_eq!(p.check(Some("null")), Allowed);
        assert_eq!(p.check(None), MissingAllowed);
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "example.com",
            "https://",
            "https://a.*.com",
            "https://*.",
            "https://x.com/p",
            "https://x.com:99999",
        ] {
            assert!(OriginPolicy::new().allow(bad).is_err(), "{bad}");
        }
        assert!(OriginPolicy::new().allow("http://[::1]:8080").is_ok());
    }
}
