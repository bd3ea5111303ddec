//! Cookies: reading the request's `Cookie` header and building validated
//! `Set-Cookie` headers for the 101 response (RFC 6265, plus `SameSite` from
//! RFC 6265bis).

use std::borrow::Cow;
use std::fmt;

use super::http::{ByteSplit, Lines, is_token};

/// One cookie from the request's `Cookie` header.
///
/// The value has surrounding double quotes removed and `%XX` escapes decoded
/// (as JavaScript's `decodeURIComponent`, which WebSocket-Node uses). If an
/// escape is malformed or decodes to invalid UTF-8, the value is the raw text
/// instead: a strange cookie never fails the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Cookie<'a> {
    /// The name. A pair without `=` has an empty name (RFC 6265bis §5.6).
    pub name: Cow<'a, str>,
    /// The decoded value.
    pub value: Cow<'a, str>,
    /// The value as sent, quotes included.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub raw_value: &'a [u8],
}

/// Iterator over the cookies of every `Cookie` line, in order; duplicates are
/// kept.
#[derive(Clone, Debug)]
pub struct Cookies<'a> {
    lines: Lines<'a>,
    current: Option<ByteSplit<'a>>,
}

impl<'a> Cookies<'a> {
    pub(crate) fn new(lines: Lines<'a>) -> Self {
        Cookies {
            lines,
            current: None,
        }
    }
}

fn is_semicolon(b: &u8) -> bool {
    *b == b';'
}

impl<'a> Iterator for Cookies<'a> {
    type Item = Cookie<'a>;

    fn next(&mut self) -> Option<Cookie<'a>> {
        loop {
            if let Some(split) = &mut self.current
                && let Some(pair) = split.next()
            {
                if let Some(c) = parse_pair(pair) {
                    return Some(c);
                }
                continue;
            }
            let line = self.lines.next()?;
            self.current = Some(line.split(is_semicolon as fn(&u8) -> bool));
        }
    }
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn parse_pair(pair: &[u8]) -> Option<Cookie<'_>> {
    let pair = trim_ws(pair);
    if pair.is_empty() {
        return None;
    }
    let (name, raw) = match pair.iter().position(|&b| b == b'=') {
        Some(i) => (trim_ws(&pair[..i]), trim_ws(&pair[i + 1..])),
        None => (&b""[..], pair),
    };
    let unquoted = match raw {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    Some(Cookie {
        name: String::from_utf8_lossy(name),
        value: decode_value(unquoted),
        raw_value: raw,
    })
}

/// `decodeURIComponent`, falling back to the raw text where it would throw.
fn decode_value(v: &[u8]) -> Cow<'_, str> {
    if v.contains(&b'%') && well_formed_escapes(v) {
        let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode(v).into();
        if let Ok(s) = std::str::from_utf8(&decoded) {
            return Cow::Owned(s.to_owned());
        }
    }
    String::from_utf8_lossy(v)
}

fn well_formed_escapes(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            let ok = v.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && v.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The `SameSite` attribute (RFC 6265bis §4.1.2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level navigations.
    Lax,
    /// Sent with cross-site requests too; browsers require `Secure`.
    None,
}

impl SameSite {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// When a cookie expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expires {
    /// An IMF-fixdate you formatted, for example
    /// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7). Checked for shape
    /// and field ranges (not for the weekday).
    HttpDate(String),
    /// Seconds since the Unix epoch; ws-edge formats the IMF-fixdate (it has
    /// no clock, so relative times are the caller's job).
    UnixSeconds(u64),
}

/// A cookie to set with the 101 response (`Set-Cookie`).
///
/// ```
/// use ws_edge::handshake::{SameSite, SetCookie};
/// let c = SetCookie::new("session", "abc123")
///     .path("/")
///     .max_age(3600)
///     .secure(true)
///     .http_only(true)
///     .same_site(SameSite::Lax);
/// assert_eq!(
///     c.to_header_value().unwrap(),
///     "session=abc123; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    /// The name: an RFC 9110 token.
    pub name: String,
    /// The value: RFC 6265 cookie-octets, optionally in double quotes. May
    /// be empty.
    pub value: String,
    /// `Path`: any characters but controls and `;`.
    pub path: Option<String>,
    /// `Domain`: letters, digits, `-` and `.`, at most one leading dot;
    /// written lower-case.
    pub domain: Option<String>,
    /// `Expires`.
    pub expires: Option<Expires>,
    /// `Max-Age` in seconds; `0` deletes the cookie.
    pub max_age: Option<u64>,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`.
    pub same_site: Option<SameSite>,
}

/// Why a [`SetCookie`] is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The name is empty or not a token.
    #[error("cookie name {0:?} is not a token")]
    InvalidName(String),
    /// The value has a character outside cookie-octet.
    #[error("value of cookie {0:?} has a character outside RFC 6265 cookie-octet")]
    InvalidValue(String),
    /// The path has a control character or `;`.
    #[error("path of cookie {0:?} has a control character or ';'")]
    InvalidPath(String),
    /// The domain is empty or has characters a domain cannot have.
    #[error("domain of cookie {0:?} is not a domain name")]
    InvalidDomain(String),
    /// `Expires::HttpDate` is not an IMF-fixdate, or `UnixSeconds` is past
    /// year 9999.
    #[error("expiry of cookie {0:?} is not a valid IMF-fixdate")]
    InvalidExpires(String),
    /// `SameSite=None` without `Secure` (browsers drop such cookies).
    #[error("cookie {0:?} has SameSite=None without Secure")]
    SameSiteNoneWithoutSecure(String),
    /// A `__Secure-` / `__Host-` prefixed cookie breaks its prefix's rules
    /// (`Secure`; for `__Host-` also `Path=/` and no `Domain`).
    #[error("cookie {0:?} breaks the rules of its name prefix")]
    PrefixRules(String),
    /// The same name, path and domain twice in one response.
    #[error("cookie {0:?} is set twice")]
    Duplicate(String),
}

impl SetCookie {
    /// A session cookie with only a name and value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        SetCookie {
            name: name.into(),
            value: value.into(),
            path: None,
            domain: None,
            expires: None,
            max_age: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// Sets `Path`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets `Domain`.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets `Expires`.
    pub fn expires(mut self, expires: Expires) -> Self {
        self.expires = Some(expires);
        self
    }

    /// Sets `Max-Age`.
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// Sets `Secure`.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `HttpOnly`.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets `SameSite`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// Checks every rule without formatting.
    pub fn validate(&self) -> Result<(), CookieError> {
        let err = |f: fn(String) -> CookieError| Err(f(self.name.clone()));
        if !is_token(self.name.as_bytes()) {
            return err(CookieError::InvalidName);
        }
        let value = match self.value.as_bytes() {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        if !value.iter().all(|&b| is_cookie_octet(b)) {
            return err(CookieError::InvalidValue);
        }
        if let Some(path) = &self.path
            && path.bytes().any(|b| b.is_ascii_control() || b == b';')
        {
            return err(CookieError::InvalidPath);
        }
        if let Some(domain) = &self.domain {
            let d = domain.strip_prefix('.').unwrap_or(domain);
            let ok = !d.is_empty()
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                return err(CookieError::InvalidDomain);
            }
        }
        match &self.expires {
            Some(Expires::HttpDate(d)) if !is_imf_fixdate(d.as_bytes()) => {
                return err(CookieError::InvalidExpires);
            }
            Some(Expires::UnixSeconds(s)) if *s > MAX_UNIX_SECONDS => {
                return err(CookieError::InvalidExpires);
            }
            _ => {}
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return err(CookieError::SameSiteNoneWithoutSecure);
        }
        let prefix_ok = if self.name.starts_with("__Host-") {
            self.secure && self.path.as_deref() == Some("/") && self.domain.is_none()
        } else if self.name.starts_with("__Secure-") {
            self.secure
        } else {
            true
        };
        if !prefix_ok {
            return err(CookieError::PrefixRules);
        }
        Ok(())
    }

    /// Validates and formats the `Set-Cookie` value: `name=value` then
    /// `Path`, `Domain`, `Expires`, `Max-Age`, `Secure`, `HttpOnly`,
    /// `SameSite`, joined by `"; "`.
    pub fn to_header_value(&self) -> Result<String, CookieError> {
        self.validate()?;
        let mut s = String::with_capacity(self.name.len() + self.value.len() + 32);
        s.push_str(&self.name);
        s.push('=');
        s.push_str(&self.value);
        if let Some(path) = &self.path {
            s.push_str("; Path=");
            s.push_str(path);
        }
        if let Some(domain) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(&domain.to_ascii_lowercase());
        }
        match &self.expires {
            Some(Expires::HttpDate(d)) => {
                s.push_str("; Expires=");
                s.push_str(d);
            }
            Some(Expires::UnixSeconds(secs)) => {
                s.push_str("; Expires=");
                s.push_str(&format_imf_fixdate(*secs));
            }
            None => {}
        }
        if let Some(age) = self.max_age {
            s.push_str("; Max-Age=");
            s.push_str(&age.to_string());
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if let Some(ss) = self.same_site {
            s.push_str("; SameSite=");
            s.push_str(ss.as_str());
        }
        Ok(s)
    }

    /// The identity used for the duplicate check: name, path, lower-cased
    /// domain.
    pub(crate) fn same_slot(&self, other: &SetCookie) -> bool {
        self.name == other.name
            && self.path == other.path
            && match (&self.domain, &other.domain) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl fmt::Display for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_header_value() {
            Ok(v) => f.write_str(&v),
            Err(e) => write!(f, "<invalid cookie: {e}>"),
        }
    }
}

/// cookie-octet of RFC 6265 §4.1.1.
const fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn is_imf_fixdate(s: &[u8]) -> bool {
    if s.len() != 29 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s[r].iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let day_ok = DAYS.iter().any(|d| d.as_bytes() == &s[0..3]);
    let month_ok = MONTHS.iter().any(|m| m.as_bytes() == &s[8..11]);
    let fixed = &s[3..5] == b", "
        && s[7] == b' '
        && s[11] == b' '
        && s[16] == b' '
        && s[19] == b':'
        && s[22] == b':'
        && &s[25..] == b" GMT";
    day_ok
        && month_ok
        && fixed
        && matches!(num(5..7), Some(1..=31))
        && num(12..16).is_some()
        && matches!(num(17..19), Some(0..=23))
        && matches!(num(20..22), Some(0..=59))
        && matches!(num(23..25), Some(0..=60))
}

/// Formats seconds since the epoch (≤ year 9999) as an IMF-fixdate.
pub(crate) fn format_imf_fixdate(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let weekday = DAYS[((days + 4) % 7) as usize];
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{weekday}, {d:02} {} {y:04} {h:02}:{m:02}:{s:02} GMT",
        MONTHS[(mo - 1) as usize]
    )
}

/// Gregorian (year, month 1–12, day 1–31) for a day count since 1970-01-01,
/// counting in 400-year eras that start on March 1st.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(header: &[u8]) -> Vec<(String, String)> {
        Cookies::new(Lines::One(Some(header)))
            .map(|c| (c.name.into_owned(), c.value.into_owned()))
            .collect()
    }

    #[test]
    fn parse_cookie_header() {
        assert_eq!(
            all(b"a=1; b=\"two\";c=%E2%82%AC; d=%E0%A4%A; e"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two".into()),
                ("c".into(), "\u{20ac}".into()),
                ("d".into(), "%E0%A4%A".into()),
                ("".into(), "e".into()),
            ]
        );
        // Invalid UTF-8 after decoding keeps the raw text.
        assert_eq!(all(b"x=%FF"), vec![("x".into(), "%FF".into())]);
        // Commas do not separate cookies.
        assert_eq!(all(b"x=a,b"), vec![("x".into(), "a,b".into())]);
    }

    #[test]
    fn dates() {
        assert_eq!(format_imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_imf_fixdate(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            format_imf_fixdate(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_imf_fixdate(MAX_UNIX_SECONDS),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert!(is_imf_fixdate(b"Sun, 06 Nov 1994 08:49:37 GMT"));
        assert!(!is_imf_fixdate(b"Sun, 06 Nov 1994 24:49:37 GMT"));
        assert!(!is_imf_fixdate(b"Sunday, 06-Nov-94 08:49:37 GMT"));
    }

    #[test]
    fn set_cookie_rules() {
        assert!(SetCookie::new("a", "").validate().is_ok());
        assert!(SetCookie::new("a", "\"q\"").validate().is_ok());
        assert_eq!(
            SetCookie::new("a b", "1").validate(),
            Err(CookieError::InvalidName("a b".into()))
        );
        assert!(matches!(
            SetCookie::new("a", "x;y").validate(),
            Err(CookieError::InvalidValue(_))
        ));
        assert!(SetCookie::new("a", "1").path("/a b").validate().is_ok());
        assert!(matches!(
            SetCookie::new("a", "1").path("/a;b").validate(),
            Err(CookieError::InvalidPath(_))
        ));
        assert!(matches!(
            SetCookie::new("a", "1").domain("exa mple.com").validate(),
            Err(CookieError::InvalidDomain(_))
        ));
        assert!(matches!(
            SetCookie::new("a", "1")
                .same_site(SameSite::None)
                .validate(),
            Err(CookieError::SameSiteNoneWithoutSecure(_))
        ));
        assert!(matches!(
            SetCookie::new("__Host-a", "1").secure(true).validate(),
            Err(CookieError::PrefixRules(_))
        ));
        assert!(
            SetCookie::new("__Host-a", "1")
                .secure(true)
                .path("/")
                .validate()
                .is_ok()
        );
        assert_eq!(
            SetCookie::new("a", "1")
                .domain("Example.COM")
                .expires(Expires::UnixSeconds(0))
                .to_header_value()
                .unwrap(),
            "a=1; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
