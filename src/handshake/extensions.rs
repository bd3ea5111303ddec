//! `Sec-WebSocket-Extensions` offers (RFC 6455 §9.1). The one ws-edge
//! negotiates is permessage-deflate ([`crate::deflate`]), when the handler
//! asks for it.
//!
//! The grammar, with the list and parameter rules of RFC 9110 §5.6:
//!
//! ```text
//! Sec-WebSocket-Extensions = 1#extension
//! extension      = token *( OWS ";" OWS extension-param )
//! extension-param = token [ "=" ( token / quoted-string ) ]
//! ```
//!
//! A quoted-string value must be a token once unescaped (§9.1). Names keep
//! the client's spelling; registered names are lower-case, compare them with
//! [`str::eq_ignore_ascii_case`]. Commas and semicolons inside quoted strings
//! do not split, unlike WebSocket-Node's regex split.
//!
//! The header is validated once during the handshake; the accessors below
//! re-walk the (already validated) bytes without allocating.

use std::borrow::Cow;

use super::http::{Lines, SplitQuoted, is_tchar, trim_ows, unquote};

/// One extension the client offered, for example `permessage-deflate;
/// client_max_window_bits`.
#[derive(Clone, Debug)]
pub struct ExtensionOffer<'a> {
    name: &'a str,
    params: &'a [u8],
}

impl<'a> ExtensionOffer<'a> {
    /// The extension token, in the client's spelling.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The parameters, in order.
    pub fn params(&self) -> ExtensionParams<'a> {
        ExtensionParams {
            inner: SplitQuoted::new(self.params, b';'),
        }
    }

    /// The first parameter named `name` (ASCII case-insensitive): `None` if
    /// absent, `Some(None)` if present without a value.
    pub fn param(&self, name: &str) -> Option<Option<Cow<'a, str>>> {
        self.params()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }
}

impl PartialEq for ExtensionOffer<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.params().eq(other.params())
    }
}

/// One extension parameter: `name` or `name=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExtensionParam<'a> {
    /// The parameter name.
    pub name: &'a str,
    /// The value with quotes and escapes removed, `None` if there is no `=`.
    pub value: Option<Cow<'a, str>>,
}

/// Iterator over the parameters of an [`ExtensionOffer`].
#[derive(Clone, Debug)]
pub struct ExtensionParams<'a> {
    inner: SplitQuoted<'a>,
}

impl<'a> Iterator for ExtensionParams<'a> {
    type Item = ExtensionParam<'a>;

    fn next(&mut self) -> Option<ExtensionParam<'a>> {
        loop {
            let piece = self.inner.next()?;
            if let Some(p) = parse_param(piece) {
                return Some(p);
            }
        }
    }
}

/// Iterator over every offer in every `Sec-WebSocket-Extensions` line.
#[derive(Clone, Debug)]
pub struct ExtensionOffers<'a> {
    lines: Lines<'a>,
    current: SplitQuoted<'a>,
}

impl<'a> ExtensionOffers<'a> {
    pub(crate) fn new(lines: Lines<'a>) -> Self {
        ExtensionOffers {
            lines,
            current: SplitQuoted::empty(),
        }
    }

    /// The offers of one `Sec-WebSocket-Extensions` value, or `None` if it
    /// does not follow the RFC 6455 §9.1 grammar.
    ///
    /// ```
    /// use ws_edge::handshake::ExtensionOffers;
    /// let offers: Vec<_> = ExtensionOffers::parse(b"permessage-deflate; client_max_window_bits, foo")
    ///     .unwrap()
    ///     .map(|o| o.name())
    ///     .collect();
    /// assert_eq!(offers, ["permessage-deflate", "foo"]);
    /// assert!(ExtensionOffers::parse(b"foo bar").is_none());
    /// ```
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        validate_line(value).then(|| ExtensionOffers::new(Lines::One(Some(value))))
    }
}

impl<'a> Iterator for ExtensionOffers<'a> {
    type Item = ExtensionOffer<'a>;

    fn next(&mut self) -> Option<ExtensionOffer<'a>> {
        loop {
            match self.current.next() {
                Some(element) => {
                    if let Some(offer) = parse_offer(element) {
                        return Some(offer);
                    }
                }
                None => self.current = SplitQuoted::new(self.lines.next()?, b','),
            }
        }
    }
}

fn parse_offer(element: &[u8]) -> Option<ExtensionOffer<'_>> {
    if element.is_empty() {
        return None;
    }
    let (name, params) = match element.iter().position(|&b| b == b';') {
        Some(i) => (trim_ows(&element[..i]), &element[i + 1..]),
        None => (element, &b""[..]),
    };
    Some(ExtensionOffer {
        name: std::str::from_utf8(name).ok()?,
        params,
    })
}

fn parse_param(piece: &[u8]) -> Option<ExtensionParam<'_>> {
    if piece.is_empty() {
        return None;
    }
    let (name, value) = match piece.iter().position(|&b| b == b'=') {
        Some(i) => (trim_ows(&piece[..i]), Some(trim_ows(&piece[i + 1..]))),
        None => (piece, None),
    };
    let name = std::str::from_utf8(name).ok()?;
    let value = match value {
        None => None,
        Some(v) if v.first() == Some(&b'"') => Some(match unquote(v)? {
            Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).ok()?),
            Cow::Owned(o) => Cow::Owned(String::from_utf8(o).ok()?),
        }),
        Some(v) => Some(Cow::Borrowed(std::str::from_utf8(v).ok()?)),
    };
    Some(ExtensionParam { name, value })
}

/// Checks one `Sec-WebSocket-Extensions` line against the §9.1 grammar in a
/// single pass. Empty list elements are allowed (RFC 9110 §5.6.1), an
/// all-empty line too.
pub(crate) fn validate_line(s: &[u8]) -> bool {
    let mut i = 0;
    loop {
        i = skip_ows(s, i);
        match s.get(i) {
            None => return true,
            Some(b',') => {
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        // extension-token
        let Some(next) = take_token(s, i) else {
            return false;
        };
        i = next;
        // *( ";" extension-param ) then "," or the end
        loop {
            i = skip_ows(s, i);
            match s.get(i) {
                None => return true,
                Some(b',') => {
                    i += 1;
                    break;
                }
                Some(b';') => {
                    let Some(next) = take_token(s, skip_ows(s, i + 1)) else {
                        return false;
                    };
                    i = skip_ows(s, next);
                    if s.get(i) == Some(&b'=') {
                        i = skip_ows(s, i + 1);
                        let value = if s.get(i) == Some(&b'"') {
                            take_quoted_token(s, i)
                        } else {
                            take_token(s, i)
                        };
                        let Some(next) = value else {
                            return false;
                        };
                        i = next;
                    }
                }
                Some(_) => return false,
            }
        }
    }
}

fn skip_ows(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// Index after a non-empty token starting at `i`.
fn take_token(s: &[u8], i: usize) -> Option<usize> {
    let len = s.get(i..)?.iter().take_while(|&&b| is_tchar(b)).count();
    (len > 0).then_some(i + len)
}

/// Index after a quoted-string at `i` whose unescaped content is a token.
fn take_quoted_token(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut empty = true;
    loop {
        match *s.get(j)? {
            b'"' => return (!empty).then_some(j + 1),
            b'\\' => {
                if !is_tchar(*s.get(j + 1)?) {
                    return None;
                }
                j += 2;
            }
            b if is_tchar(b) => j += 1,
            _ => return None,
        }
        empty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(validate_line(b"permessage-deflate; client_max_window_bits"));
        assert!(validate_line(
            br#"permessage-deflate; client_max_window_bits="15", x-webkit-deflate-frame"#
        ));
        assert!(validate_line(b""));
        assert!(validate_line(b" , foo"));
        assert!(!validate_line(b"foo; bar=\"a b\""));
        assert!(!validate_line(b"; bar"));
        assert!(!validate_line(b"foo bar"));
        assert!(!validate_line(b"foo; =1"));
        assert!(!validate_line(b"foo; a=\"1"));
        assert!(!validate_line(b"foo; a=\"\""));
        assert!(!validate_line(b"foo; a=1 2"));
        assert!(!validate_line(b"foo;"));
        assert!(validate_line(br#"foo ; a = "1\2" ;b, ,bar"#));
    }

    #[test]
    fn offers() {
        let line =
            br#"permessage-deflate; client_max_window_bits; server_max_window_bits="1\0", foo"#;
        assert!(validate_line(line));
        let offers: Vec<_> = ExtensionOffers::new(Lines::One(Some(&line[..]))).collect();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].name(), "permessage-deflate");
        assert_eq!(offers[0].param("client_max_window_bits"), Some(None));
        assert_eq!(
            offers[0].param("server_max_window_bits"),
            Some(Some(Cow::Owned("10".to_owned())))
        );
        assert_eq!(offers[1].name(), "foo");
        assert_eq!(offers[1].params().count(), 0);
    }
}
