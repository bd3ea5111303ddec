//! Borrowed views of a [`Request`](super::Request)'s headers and offered
//! subprotocols.

use super::super::http::{ByteSplit, HeaderSpan, Lines, trim_ows};

/// One header field of a [`Request`](super::Request), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The name as the client spelled it.
    pub name: &'a str,
    /// The value without surrounding whitespace.
    pub value: &'a [u8],
}

/// Iterator over a request's header fields in the order received.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    pub(super) buf: &'a [u8],
    pub(super) iter: std::slice::Iter<'a, HeaderSpan>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        let h = self.iter.next()?;
        Some(HeaderRef {
            name: std::str::from_utf8(h.name.get(self.buf)).unwrap_or_default(),
            value: h.value.get(self.buf),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Iterator over the values of every header line with one name.
#[derive(Clone, Debug)]
pub struct HeaderValues<'a> {
    pub(super) buf: &'a [u8],
    pub(super) iter: std::slice::Iter<'a, HeaderSpan>,
    pub(super) name: &'a str,
}

impl<'a> Iterator for HeaderValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (buf, name) = (self.buf, self.name);
        self.iter
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.get(buf))
    }
}

/// Iterator over the offered subprotocols, in the client's order and
/// spelling.
#[derive(Clone, Debug)]
pub struct Protocols<'a> {
    lines: Lines<'a>,
    current: ByteSplit<'a>,
}

fn is_comma(b: &u8) -> bool {
    *b == b','
}

impl<'a> Protocols<'a> {
    pub(super) fn new(lines: Lines<'a>) -> Self {
        Protocols {
            lines,
            current: b""[..].split(is_comma as fn(&u8) -> bool),
        }
    }
}

impl<'a> Iterator for Protocols<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            match self.current.next() {
                Some(item) => {
                    let item = trim_ows(item);
                    if !item.is_empty()
                        && let Ok(s) = std::str::from_utf8(item)
                    {
                        return Some(s);
                    }
                }
                None => {
                    self.current = self.lines.next()?.split(is_comma as fn(&u8) -> bool);
                }
            }
        }
    }
}
