//! Splitting the request target into path and query.

use std::borrow::Cow;

/// The request target split into path and query, like Node's
/// `url.parse(resource, true)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceUrl<'a> {
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> ResourceUrl<'a> {
    /// Splits an origin-form (`/a?b`) or absolute-form (`ws://h/a?b`) target.
    pub fn parse(target: &'a str) -> Self {
        let rest = match target.find("://") {
            Some(i) if !target.starts_with('/') => {
                let after = &target[i + 3..];
                match after.find(['/', '?']) {
                    Some(j) => &after[j..],
                    None => "",
                }
            }
            _ => target,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        ResourceUrl {
            path: if path.is_empty() { "/" } else { path },
            query,
        }
    }

    /// The path, still percent-encoded (`/chat%20room`).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The path percent-decoded (invalid UTF-8 replaced by U+FFFD).
    pub fn decoded_path(&self) -> Cow<'a, str> {
        percent_encoding::percent_decode_str(self.path).decode_utf8_lossy()
    }

    /// The raw query after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The query as `application/x-www-form-urlencoded` pairs, decoded.
    pub fn query_pairs(&self) -> form_urlencoded::Parse<'a> {
        form_urlencoded::parse(self.query.unwrap_or_default().as_bytes())
    }

    /// The first query value named `name`.
    pub fn query_value(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}
