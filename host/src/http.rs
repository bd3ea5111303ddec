//! The little HTTP the host itself needs: finding the end of a request head
//! and recognising and answering a plain `GET /` for the demo page. The
//! responses and close frames the host writes when no guest answer is
//! available come from the core (`Response::plain`, `CloseFrame::write_to`).

/// Returns the length of the request head (up to and including the empty
/// line) if `buf` holds a complete one.
///
/// Lines may end in CRLF or a bare LF (as `httparse` allows). `from` is where
/// the previous search stopped, so trickled bytes are not rescanned.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    // A terminator is "\n\n" or "\n\r\n"; back up so one split across reads
    // is still found.
    let start = from.saturating_sub(2);
    let mut i = start;
    while i < buf.len() {
        let nl = buf[i..].iter().position(|&b| b == b'\n')? + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Whether `head` is a plain `GET /` (no `Upgrade` header): the demo page.
pub(crate) fn is_demo_request(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return false,
    }
    let path_is_root = req
        .path
        .is_some_and(|p| p == "/" || p.starts_with("/?") || p == "/index.html");
    req.method == Some("GET")
        && path_is_root
        && !req
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"))
}

/// The path of the request target in `head`, without the query, as the
/// client sent it (not percent-decoded), for choosing a route. An
/// absolute-form target (`http://host/path`) gives its path. `None` when
/// the head does not parse as an HTTP/1.x request; the component answers
/// those with the reason.
pub(crate) fn request_path(head: &[u8]) -> Option<&str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    // Only the request line matters here: too many headers is for the
    // component to judge.
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {}
        _ => return None,
    }
    let target = req.path?;
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    path.starts_with('/').then_some(path)
}

/// Whether the `101` response `wire` agreed to a WebSocket extension (a
/// `Sec-WebSocket-Extensions` field with a value): then one input byte may
/// cost the guest far more work than unmasking it (permessage-deflate
/// inflates it, and the echo deflates it again). A response that does not
/// parse counts as agreeing.
pub(crate) fn negotiates_extension(wire: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(wire) {
        Ok(httparse::Status::Complete(_)) => res.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("sec-websocket-extensions")
                && !h.value.trim_ascii().is_empty()
        }),
        _ => true,
    }
}

/// The demo page as a complete HTTP response.
pub(crate) fn demo_response() -> Vec<u8> {
    let body = DEMO_PAGE;
    format!(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const DEMO_PAGE: &str = include_str!("demo.html");

#[cfg(test)]
mod tests {
    #[test]
    fn extensions_are_found_in_the_response() {
        let plain = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert!(!super::negotiates_extension(plain));
        let deflate = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            sec-websocket-extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";
        assert!(super::negotiates_extension(deflate));
        let empty = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions:  \r\n\r\n";
        assert!(!super::negotiates_extension(empty));
        assert!(super::negotiates_extension(b"HTTP/1.1 101 Switching"));
    }

    use super::*;

    #[test]
    fn finds_crlf_and_lf_terminators() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nxyz", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nxyz", 0), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0), None);
    }

    #[test]
    fn finds_terminator_split_across_reads() {
        let full = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        for split in 0..full.len() {
            let first = find_head_end(&full[..split], 0);
            assert_eq!(first, None, "split {split}");
            assert_eq!(
                find_head_end(full, split),
                Some(full.len()),
                "split {split}"
            );
        }
    }

    #[test]
    fn request_paths_for_routing() {
        assert_eq!(
            request_path(b"GET /chat/a?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/chat/a")
        );
        assert_eq!(
            request_path(b"GET http://h:1/r/b?q HTTP/1.1\r\n\r\n"),
            Some("/r/b")
        );
        assert_eq!(request_path(b"GET http://h HTTP/1.1\r\n\r\n"), Some("/"));
        assert_eq!(request_path(b"GET * HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_path(b"garbage\r\n\r\n"), None);
    }

    #[test]
    fn demo_only_without_upgrade() {
        assert!(is_demo_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_demo_request(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
        ));
        assert!(!is_demo_request(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_demo_request(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
