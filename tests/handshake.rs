//! Integration tests of the opening handshake: real client heads that must be
//! accepted, one fixture per rule violation, the RFC 6455 vectors, and the
//! accept / reject / proxy / cookie / extension behaviour.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use base64::Engine as _;
use sha1::Digest as _;
use ws_edge::Parsed;
use ws_edge::handshake::*;

mod support;
use support::head_with;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/requests")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn peer(s: &str) -> Transport {
    Transport {
        peer: Some(s.parse().unwrap()),
        tls: false,
    }
}

fn complete<T>(status: Parsed<Result<T, Rejection>>) -> (usize, Result<T, Rejection>) {
    match status {
        Parsed::Complete { consumed, value } => (consumed, value),
        Parsed::Incomplete => panic!("head reported incomplete"),
    }
}

fn request_with(head: &[u8], transport: Transport, config: &HandshakeConfig) -> Request {
    let (consumed, result) = complete(Request::from_head(head, transport, config));
    assert_eq!(consumed, head.len());
    result.unwrap_or_else(|r| panic!("rejected: {r}"))
}

fn request(head: &[u8]) -> Request {
    request_with(head, Transport::default(), &HandshakeConfig::default())
}

/// Independent computation of the accept value (not through ws-edge).
fn expected_accept(key: &str) -> String {
    let mut sha = sha1::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

struct AcceptCase {
    file: &'static str,
    host: &'static str,
    resource: &'static str,
    version: u8,
    origin: Option<&'static str>,
    protocols: &'static [&'static str],
    extensions: &'static [&'static str],
}

/// One test module per accepted fixture (`accept_fixture::chrome_131::...`),
/// so a failing fixture does not hide the others; the list of files is
/// checked against the directory.
macro_rules! accept_fixtures {
    ($($name:ident: $case:expr,)*) => {
        const ACCEPT_FILES: &[&str] = &[$($case.file),*];
        mod accept_fixture {
            $(
                mod $name {
                    use super::super::AcceptCase;

                    const CASE: AcceptCase = $case;

                    #[test]
                    fn is_accepted() {
                        super::super::check_accepted(&CASE);
                    }

                    #[test]
                    fn structured_and_raw_paths_agree() {
                        super::super::check_paths_agree(&CASE);
                    }
                }
            )*
        }
    };
}

accept_fixtures! {
    chrome_131: AcceptCase {
        file: "chrome-131.http",
        host: "localhost:8080",
        resource: "/chat",
        version: 13,
        origin: Some("http://localhost:8080"),
        protocols: &["chat", "superchat"],
        extensions: &["permessage-deflate"],
    },
    firefox_133: AcceptCase {
        file: "firefox-133.http",
        host: "example.com",
        resource: "/socket?token=abc%20def&room=7",
        version: 13,
        origin: Some("https://example.com"),
        protocols: &[],
        extensions: &["permessage-deflate"],
    },
    safari_18: AcceptCase {
        file: "safari-18.http",
        host: "chat.example.com",
        resource: "/ws",
        version: 13,
        origin: Some("https://chat.example.com"),
        protocols: &[],
        extensions: &["permessage-deflate"],
    },
    curl_8: AcceptCase {
        file: "curl-8.http",
        host: "127.0.0.1:9001",
        resource: "/echo",
        version: 13,
        origin: None,
        protocols: &[],
        extensions: &[],
    },
    websocat_1: AcceptCase {
        file: "websocat-1.http",
        host: "127.0.0.1:8080",
        resource: "/ws",
        version: 13,
        origin: None,
        protocols: &[],
        extensions: &[],
    },
    websocat_protocol: AcceptCase {
        file: "websocat-protocol.http",
        host: "broker.local",
        resource: "/mqtt",
        version: 13,
        origin: None,
        protocols: &["MQTT"],
        extensions: &[],
    },
    python_websockets_14: AcceptCase {
        file: "python-websockets-14.http",
        host: "localhost:8765",
        resource: "/feed",
        version: 13,
        origin: None,
        protocols: &[],
        extensions: &["permessage-deflate"],
    },
    node_ws_8: AcceptCase {
        file: "node-ws-8.http",
        host: "localhost:8080",
        resource: "/",
        version: 13,
        origin: None,
        protocols: &[],
        extensions: &["permessage-deflate"],
    },
    rfc6455_example: AcceptCase {
        file: "rfc6455-example.http",
        host: "server.example.com",
        resource: "/chat",
        version: 13,
        origin: Some("http://example.com"),
        protocols: &["chat", "superchat"],
        extensions: &[],
    },
    hybi_version_8: AcceptCase {
        file: "hybi-version-8.http",
        host: "server.example.com",
        resource: "/chat",
        version: 8,
        origin: Some("http://example.com"),
        protocols: &["chat", "superchat"],
        extensions: &[],
    },
}

#[test]
fn every_accept_fixture_has_a_test() {
    assert_eq!(fixture_files("accept"), sorted(ACCEPT_FILES));
}

/// The `.http` files of `tests/fixtures/requests/{dir}`, sorted.
fn fixture_files(dir: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/requests")
        .join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".http"))
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort();
    v
}

fn check_accepted(case: &AcceptCase) {
    let config = HandshakeConfig::default();
    let head = fixture(&format!("accept/{}", case.file));
    let mut req = request_with(&head, peer("198.51.100.4:50000"), &config);
    let ctx = case.file;
    assert_eq!(req.host(), case.host, "{ctx}");
    assert_eq!(req.resource(), case.resource, "{ctx}");
    assert_eq!(req.websocket_version(), case.version, "{ctx}");
    assert_eq!(req.origin(), case.origin, "{ctx}");
    assert_eq!(
        req.requested_protocols().collect::<Vec<_>>(),
        case.protocols,
        "{ctx}"
    );
    assert_eq!(
        req.requested_extensions()
            .map(|e| e.name())
            .collect::<Vec<_>>(),
        case.extensions,
        "{ctx}"
    );
    assert_eq!(req.remote_address(), Some("198.51.100.4".parse().unwrap()));
    let key = req.key().to_owned();
    let protocol = case.protocols.first().map(|p| p.to_string());
    let accepted = req
        .accept(&AcceptOptions {
            protocol: protocol.clone(),
            ..AcceptOptions::default()
        })
        .unwrap();
    let r = &accepted.response;
    assert_eq!(r.status, 101, "{ctx}");
    assert_eq!(r.reason, "Switching Protocols");
    assert_eq!(r.header("Upgrade"), Some(&b"websocket"[..]));
    assert_eq!(r.header("Connection"), Some(&b"Upgrade"[..]));
    assert_eq!(
        r.header("Sec-WebSocket-Accept"),
        Some(expected_accept(&key).as_bytes()),
        "{ctx}"
    );
    assert_eq!(
        r.header("Sec-WebSocket-Protocol"),
        protocol.as_deref().map(str::as_bytes)
    );
    // Offered or not, no extension is negotiated.
    assert_eq!(r.header("Sec-WebSocket-Extensions"), None, "{ctx}");
    assert_eq!(accepted.protocol, protocol);
    assert_eq!(req.accepted_protocol(), protocol.as_deref());
    assert!(r.body.is_empty());
}

fn check_paths_agree(case: &AcceptCase) {
    let config = HandshakeConfig::default();
    let head = fixture(&format!("accept/{}", case.file));
    let (_, parts) = complete(parse_head(&head, &config));
    let mut parts = parts.unwrap();
    parts.transport = peer("[2001:db8::7]:443");
    let from_parts = Request::from_parts(parts, &config).unwrap();
    let from_head = request_with(&head, peer("[2001:db8::7]:443"), &config);
    assert_eq!(from_parts.host(), from_head.host());
    assert_eq!(from_parts.resource(), from_head.resource());
    assert_eq!(from_parts.key(), from_head.key());
    assert_eq!(from_parts.origin(), from_head.origin());
    assert!(from_parts.headers().eq(from_head.headers()));
    assert_eq!(from_parts.remote_addresses(), from_head.remote_addresses());
}

#[test]
fn bytes_after_the_head_are_not_consumed() {
    let mut bytes = fixture("accept/curl-8.http");
    let head_len = bytes.len();
    bytes.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]);
    let (consumed, result) = complete(Request::from_head(
        &bytes,
        Transport::default(),
        &HandshakeConfig::default(),
    ));
    assert_eq!(consumed, head_len);
    assert!(result.is_ok());
}

/// One test per reject fixture (`reject_fixture::method_post`, ...), so a
/// failing fixture does not hide the others; the list of files is checked
/// against the directory.
macro_rules! reject_fixtures {
    ($($name:ident: $file:literal => $expected:expr,)*) => {
        const REJECT_FILES: &[&str] = &[$(concat!($file, ".http")),*];
        mod reject_fixture {
            use ws_edge::handshake::Rejection::*;
            $(
                #[test]
                fn $name() {
                    super::check_rejected($file, $expected);
                }
            )*
        }
    };
}

reject_fixtures! {
    method_post: "method-post" => MethodNotGet,
    method_lowercase_get: "method-lowercase-get" => MethodNotGet,
    http_1_0: "http-1.0" => HttpVersionTooOld,
    target_authority_form: "target-authority-form" => InvalidTarget,
    target_asterisk: "target-asterisk" => InvalidTarget,
    host_missing: "host-missing" => MissingHost,
    host_duplicate: "host-duplicate" => DuplicateHost,
    host_invalid: "host-invalid" => InvalidHost,
    upgrade_missing: "upgrade-missing" => UpgradeNotWebSocket,
    upgrade_h2c: "upgrade-h2c" => UpgradeNotWebSocket,
    connection_missing: "connection-missing" => ConnectionNotUpgrade,
    connection_keep_alive: "connection-keep-alive" => ConnectionNotUpgrade,
    version_missing: "version-missing" => MissingVersion,
    version_duplicate: "version-duplicate" => DuplicateVersion,
    version_joined: "version-joined" => InvalidVersion,
    version_13abc: "version-13abc" => InvalidVersion,
    version_7: "version-7" => UnsupportedVersion { requested: 7 },
    version_14: "version-14" => UnsupportedVersion { requested: 14 },
    key_missing: "key-missing" => MissingKey,
    key_duplicate: "key-duplicate" => DuplicateKey,
    key_13_bytes: "key-13-bytes" => InvalidKey,
    key_not_base64: "key-not-base64" => InvalidKey,
    origin_duplicate: "origin-duplicate" => DuplicateOrigin,
    origin_not_utf8: "origin-not-utf8" => InvalidOrigin,
    protocol_duplicate: "protocol-duplicate" => InvalidProtocols,
    protocol_not_token: "protocol-not-token" => InvalidProtocols,
    extensions_malformed: "extensions-malformed" => InvalidExtensions,
    extensions_no_name: "extensions-no-name" => InvalidExtensions,
    malformed_request_line: "malformed-request-line" => MalformedHttp,
    malformed_header_space: "malformed-header-space" => MalformedHttp,
}

#[test]
fn every_reject_fixture_has_a_test() {
    assert_eq!(fixture_files("reject"), sorted(REJECT_FILES));
}

fn check_rejected(name: &str, expected: Rejection) {
    use Rejection::*;
    let config = HandshakeConfig::default();
    let head = fixture(&format!("reject/{name}.http"));
    let (_, result) = complete(Request::from_head(&head, Transport::default(), &config));
    let rejection = result.expect_err(name);
    assert_eq!(rejection, expected, "{name}");
    let status = match expected {
        UnsupportedVersion { .. } => 426,
        _ => 400,
    };
    let response = rejection.response();
    assert_eq!(response.status, status, "{name}");
    assert_eq!(response.reason, reason_phrase(status));
    assert_eq!(
        response.header("X-WebSocket-Reject-Reason"),
        Some(expected.reason().as_bytes()),
        "{name}"
    );
    assert_eq!(response.header("Connection"), Some(&b"close"[..]));
    assert_eq!(response.header("Content-Length"), Some(&b"0"[..]));
    let advertises = matches!(
        expected,
        MissingVersion | DuplicateVersion | InvalidVersion | UnsupportedVersion { .. }
    );
    assert_eq!(
        response.header("Sec-WebSocket-Version"),
        advertises.then_some(&b"13, 8"[..]),
        "{name}"
    );

    // The structured path rejects the same way (when the head parses).
    if let (_, Ok(parts)) = complete(parse_head(&head, &config)) {
        assert_eq!(
            Request::from_parts(parts, &config).unwrap_err(),
            expected,
            "{name} via parts"
        );
    }
}

#[test]
fn version_426_response_bytes() {
    let head = fixture("reject/version-7.http");
    let (_, result) = complete(Request::from_head(
        &head,
        Transport::default(),
        &HandshakeConfig::default(),
    ));
    assert_eq!(
        String::from_utf8(result.unwrap_err().response().to_bytes()).unwrap(),
        "HTTP/1.1 426 Upgrade Required\r\n\
         Connection: close\r\n\
         X-WebSocket-Reject-Reason: unsupported Sec-WebSocket-Version\r\n\
         Sec-WebSocket-Version: 13, 8\r\n\
         Upgrade: websocket\r\n\
         Content-Length: 0\r\n\r\n"
    );
}

#[test]
fn limits_give_431() {
    let config = HandshakeConfig::default();
    // One header too many.
    let many: Vec<String> = (0..60).map(|i| format!("X-H{i}: {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let head = head_with(&many);
    let (_, result) = complete(Request::from_head(&head, Transport::default(), &config));
    assert_eq!(result.unwrap_err(), Rejection::TooManyHeaders);
    assert_eq!(Rejection::TooManyHeaders.response().status, 431);
    // Exactly 64 headers pass.
    let head = head_with(&many[..59]);
    assert!(
        complete(Request::from_head(&head, Transport::default(), &config))
            .1
            .is_ok()
    );

    // A head over 8 KiB: 431 once more than 8192 bytes arrived without the end.
    let big = format!("X-Big: {}", "a".repeat(9000));
    let head = head_with(&[&big]);
    assert!(Request::from_head(&head[..8192], Transport::default(), &config).is_incomplete());
    let (consumed, result) = complete(Request::from_head(
        &head[..8193],
        Transport::default(),
        &config,
    ));
    assert_eq!(result.unwrap_err(), Rejection::HeadTooLarge);
    assert_eq!(consumed, 8192);
    let (_, result) = complete(Request::from_head(&head, Transport::default(), &config));
    assert_eq!(result.unwrap_err(), Rejection::HeadTooLarge);
    let (_, result) = complete(parse_head(&head, &config));
    assert_eq!(result.unwrap_err().status(), 431);

    // Configurable.
    let mut small = HandshakeConfig::default();
    small.limits.max_head_bytes = 64;
    let head = head_with(&[]);
    let (_, result) = complete(Request::from_head(&head, Transport::default(), &small));
    assert_eq!(result.unwrap_err(), Rejection::HeadTooLarge);
    let mut few = HandshakeConfig::default();
    few.limits.max_headers = 3;
    let (_, parts) = complete(parse_head(&head, &HandshakeConfig::default()));
    assert_eq!(
        Request::from_parts(parts.unwrap(), &few).unwrap_err(),
        Rejection::TooManyHeaders
    );
    // More than the stack slots.
    let mut wide = HandshakeConfig::default();
    wide.limits.max_headers = 200;
    let head = head_with(&many);
    assert!(
        complete(Request::from_head(&head, Transport::default(), &wide))
            .1
            .is_ok()
    );
}

#[test]
fn structured_requests_are_checked_for_header_injection() {
    let config = HandshakeConfig::default();
    let (_, parts) = complete(parse_head(&head_with(&[]), &config));
    let parts = parts.unwrap();
    let mut bad_value = parts.clone();
    bad_value
        .headers
        .push(Header::new("X-Evil", "a\r\nSet-Cookie: x=1"));
    assert_eq!(
        Request::from_parts(bad_value, &config).unwrap_err(),
        Rejection::InvalidHeader
    );
    let mut bad_name = parts.clone();
    bad_name.headers.push(Header::new("X Evil", "1"));
    assert_eq!(
        Request::from_parts(bad_name, &config).unwrap_err(),
        Rejection::InvalidHeader
    );
    let mut bad_target = parts.clone();
    bad_target.target = "/a b".into();
    assert_eq!(
        Request::from_parts(bad_target, &config).unwrap_err(),
        Rejection::InvalidHeader
    );
    let mut h2 = parts.clone();
    h2.version = HttpVersion { major: 1, minor: 0 };
    assert_eq!(
        Request::from_parts(h2, &config).unwrap_err(),
        Rejection::HttpVersionTooOld
    );
    // Values are trimmed.
    let mut padded = parts;
    padded.headers[0].value = b"  example.com \t".to_vec().into();
    assert_eq!(
        Request::from_parts(padded, &config).unwrap().host(),
        "example.com"
    );
}

#[test]
fn rfc6455_section_1_3_vector() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    // The whole server handshake of §1.3 for the §1.2 client request.
    let mut req = request(&fixture("accept/rfc6455-example.http"));
    let accepted = req.accept(&AcceptOptions::new().protocol("chat")).unwrap();
    assert_eq!(
        String::from_utf8(accepted.response.to_bytes()).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Protocol: chat\r\n\r\n"
    );
    let mut out = b"prefix".to_vec();
    accepted.response.write_to(&mut out);
    assert_eq!(&out[6..], &accepted.response.to_bytes()[..]);
}

#[test]
fn protocol_matching_and_echo() {
    let head = head_with(&["Sec-WebSocket-Protocol: Chat.v2, chat.V2, MQTT"]);
    let req = request(&head);
    assert_eq!(req.find_protocol("chat.V2"), Some("chat.V2"));
    assert_eq!(req.find_protocol("CHAT.v2"), Some("Chat.v2"));
    assert_eq!(req.find_protocol("mqtt"), Some("MQTT"));
    assert_eq!(req.find_protocol("amqp"), None);

    let mut req = request(&head);
    let accepted = req.accept(&AcceptOptions::new().protocol("mqtt")).unwrap();
    assert_eq!(
        accepted.response.header("Sec-WebSocket-Protocol"),
        Some(&b"MQTT"[..])
    );
    assert_eq!(accepted.protocol.as_deref(), Some("MQTT"));

    // Several header lines form one list.
    let req = request(&head_with(&[
        "Sec-WebSocket-Protocol: a",
        "Sec-WebSocket-Protocol: b, c",
    ]));
    assert_eq!(
        req.requested_protocols().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    // An empty value is no offer, not an error.
    let req = request(&head_with(&["Sec-WebSocket-Protocol: "]));
    assert_eq!(req.requested_protocols().count(), 0);
}

#[test]
fn accept_errors_leave_the_request_pending() {
    let head = head_with(&["Sec-WebSocket-Protocol: chat", "Origin: https://a.example"]);
    let mut req = request(&head);
    assert_eq!(
        req.accept(&AcceptOptions::new().protocol("superchat")),
        Err(AcceptError::ProtocolNotOffered("superchat".into()))
    );
    assert_eq!(
        req.accept(&AcceptOptions::new().allowed_origin("https://b.example")),
        Err(AcceptError::OriginNotAllowed)
    );
    assert!(matches!(
        req.accept(&AcceptOptions::new().cookie(SetCookie::new("bad name", "1"))),
        Err(AcceptError::Cookie(CookieError::InvalidName(_)))
    ));
    assert_eq!(
        req.accept(
            &AcceptOptions::new()
                .cookie(SetCookie::new("a", "1"))
                .cookie(SetCookie::new("a", "2"))
        ),
        Err(AcceptError::Cookie(CookieError::Duplicate("a".into())))
    );
    for reserved in [
        "Upgrade",
        "connection",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Content-Length",
    ] {
        assert!(
            matches!(
                req.accept(&AcceptOptions::new().header(reserved, "x")),
                Err(AcceptError::Header(HeaderError::Reserved(_)))
            ),
            "{reserved}"
        );
    }
    assert!(matches!(
        req.accept(&AcceptOptions::new().header("X-A", "1\r\nX-B: 2")),
        Err(AcceptError::Header(HeaderError::InvalidValue(_)))
    ));
    assert!(matches!(
        req.accept(&AcceptOptions::new().header("X-A", "nul\0")),
        Err(AcceptError::Header(HeaderError::InvalidValue(_)))
    ));
    assert!(matches!(
        req.accept(&AcceptOptions::new().header("X:A", "1")),
        Err(AcceptError::Header(HeaderError::InvalidName(_)))
    ));
    assert!(!req.is_resolved());

    // Still answerable: reject works after failed accepts.
    let response = req
        .reject(&RejectOptions::new(403).reason("origin"))
        .unwrap();
    assert_eq!(response.status, 403);
    assert!(req.is_resolved());
    assert!(!req.is_accepted());
    assert_eq!(
        req.accept(&AcceptOptions::new()),
        Err(AcceptError::AlreadyResolved)
    );
    assert_eq!(
        req.reject(&RejectOptions::default()),
        Err(RejectError::AlreadyResolved)
    );
}

#[test]
fn accept_with_cookies_origin_and_headers() {
    let mut req = request(&head_with(&["Origin: https://App.example"]));
    let accepted = req
        .accept(
            &AcceptOptions::new()
                .allowed_origin("https://app.example")
                .cookie(
                    SetCookie::new("sid", "\"abc\"")
                        .path("/")
                        .domain("App.Example")
                        .expires(Expires::HttpDate("Wed, 21 Oct 2026 07:28:00 GMT".into()))
                        .max_age(0)
                        .secure(true)
                        .http_only(true)
                        .same_site(SameSite::None),
                )
                .cookie(SetCookie::new("sid", "2").path("/other"))
                .header("X-Served-By", "edge-1"),
        )
        .unwrap();
    let text = String::from_utf8(accepted.response.to_bytes()).unwrap();
    assert!(text.contains(
        "\r\nSet-Cookie: sid=\"abc\"; Path=/; Domain=app.example; \
         Expires=Wed, 21 Oct 2026 07:28:00 GMT; Max-Age=0; Secure; HttpOnly; SameSite=None\r\n"
    ));
    assert!(text.contains("\r\nSet-Cookie: sid=2; Path=/other\r\n"));
    assert!(text.ends_with("\r\nX-Served-By: edge-1\r\n\r\n"));
    // The origin is checked, never echoed.
    assert!(!text.contains("Origin"));
    assert!(req.is_accepted());
    assert_eq!(req.accepted_protocol(), None);
}

#[test]
fn reject_responses() {
    let mut req = request(&head_with(&[]));
    let response = req
        .reject(
            &RejectOptions::new(401)
                .reason("token expired\r\nX-Injected: 1")
                .header("WWW-Authenticate", "Bearer")
                .body("login first"),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(response.to_bytes()).unwrap(),
        "HTTP/1.1 401 Unauthorized\r\n\
         Connection: close\r\n\
         X-WebSocket-Reject-Reason: token expired  X-Injected: 1\r\n\
         WWW-Authenticate: Bearer\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 11\r\n\r\n\
         login first"
    );

    for (status, phrase) in [
        (404, "Not Found"),
        (429, "Too Many Requests"),
        (499, "Client Error"),
        (503, "Service Unavailable"),
        (599, "Server Error"),
        (308, "Permanent Redirect"),
        (399, "Redirection"),
    ] {
        let mut req = request(&head_with(&[]));
        let r = req.reject(&RejectOptions::new(status)).unwrap();
        assert_eq!(r.reason, phrase);
        assert_eq!(r.header("Content-Length"), Some(&b"0"[..]));
        assert_eq!(r.header("X-WebSocket-Reject-Reason"), None);
    }

    let mut req = request(&head_with(&[]));
    for status in [101, 200, 299, 600, 0] {
        assert_eq!(
            req.reject(&RejectOptions::new(status)),
            Err(RejectError::InvalidStatus(status))
        );
    }
    assert!(matches!(
        req.reject(&RejectOptions::new(400).header("Connection", "keep-alive")),
        Err(RejectError::Header(HeaderError::Reserved(_)))
    ));
    assert!(!req.is_resolved());
    // A caller-chosen content type is kept.
    let r = req
        .reject(
            &RejectOptions::new(400)
                .header("Content-Type", "application/json")
                .body("{}"),
        )
        .unwrap();
    assert_eq!(r.header("Content-Type"), Some(&b"application/json"[..]));
    assert_eq!(r.header("Content-Length"), Some(&b"2"[..]));
    assert_eq!(RejectOptions::default().status, 403);
}

#[test]
fn accessors() {
    let head = head_with(&[
        "Cookie: a=1; b=%E0%A4%A; c=%E2%9C%93",
        "Cookie: d=\"quoted\"",
        "X-Multi: one",
        "x-multi: two",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; \
         server_max_window_bits=\"10\", x-webkit-deflate-frame",
    ]);
    let head = String::from_utf8(head)
        .unwrap()
        .replace("GET /ws ", "GET /a%20b/c?x=1&y=two+words&x=3 ");
    let req = request(head.as_bytes());
    let url = req.resource_url();
    assert_eq!(url.path(), "/a%20b/c");
    assert_eq!(url.decoded_path(), "/a b/c");
    assert_eq!(url.query(), Some("x=1&y=two+words&x=3"));
    assert_eq!(url.query_value("y").as_deref(), Some("two words"));
    assert_eq!(url.query_pairs().filter(|(k, _)| k == "x").count(), 2);
    // The request's own shortcuts: the decoded path and the same query.
    assert_eq!(req.path(), "/a b/c");
    assert_eq!(req.query(), Some("x=1&y=two+words&x=3"));
    assert_eq!(req.query_value("y").as_deref(), Some("two words"));
    assert_eq!(req.query_value("x").as_deref(), Some("1"));
    assert_eq!(req.query_value("z"), None);
    assert_eq!(req.query_pairs().count(), 3);

    let cookies: Vec<(String, String)> = req
        .cookies()
        .map(|c| (c.name.into_owned(), c.value.into_owned()))
        .collect();
    assert_eq!(
        cookies,
        [
            ("a", "1"),
            ("b", "%E0%A4%A"),
            ("c", "\u{2713}"),
            ("d", "quoted")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(req.cookie("c").as_deref(), Some("\u{2713}"));

    assert_eq!(req.header("x-MULTI"), Some(&b"one"[..]));
    assert_eq!(req.header_str("Host"), Some("example.com"));
    assert_eq!(
        req.header_values("X-Multi").collect::<Vec<_>>(),
        [&b"one"[..], b"two"]
    );
    assert_eq!(req.headers().len(), 10);
    assert_eq!(req.headers().next().unwrap().name, "Host");
    assert_eq!(req.method(), "GET");
    assert_eq!(req.http_version(), HttpVersion::HTTP_11);
    assert_eq!(req.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert!(!req.is_tls());

    let ext: Vec<_> = req.requested_extensions().collect();
    assert_eq!(ext.len(), 2);
    assert_eq!(ext[0].name(), "permessage-deflate");
    let params: Vec<_> = ext[0].params().collect();
    assert_eq!(params.len(), 2);
    assert_eq!(params[0].name, "client_max_window_bits");
    assert_eq!(params[0].value, None);
    assert_eq!(params[1].name, "server_max_window_bits");
    assert_eq!(params[1].value.as_deref(), Some("10"));
    assert_eq!(ext[1].name(), "x-webkit-deflate-frame");

    // Switched off by configuration.
    let config = HandshakeConfig {
        parse_cookies: false,
        parse_extensions: false,
        ..HandshakeConfig::default()
    };
    let req = request_with(head.as_bytes(), Transport::default(), &config);
    assert_eq!(req.cookies().count(), 0);
    assert_eq!(req.requested_extensions().count(), 0);
    // A malformed extension header is ignored when extensions are off.
    let bad = head_with(&["Sec-WebSocket-Extensions: ;;=;"]);
    assert!(
        complete(Request::from_head(&bad, Transport::default(), &config))
            .1
            .is_ok()
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn client_address_behind_proxies() {
    let xff = head_with(&[
        "X-Forwarded-For: 6.6.6.6, 203.0.113.9",
        "X-Forwarded-For: 10.0.0.1",
        "Forwarded: for=7.7.7.7",
    ]);
    // Default: never trusted.
    let req = request_with(&xff, peer("10.0.0.2:4000"), &HandshakeConfig::default());
    assert_eq!(req.remote_address(), Some(ip("10.0.0.2")));
    assert_eq!(req.remote_addresses(), [ip("10.0.0.2")]);

    let config = HandshakeConfig {
        trusted_proxies: TrustedProxies::new(ProxyHeader::XForwardedFor)
            .trust("10.0.0.0/8")
            .unwrap(),
        ..HandshakeConfig::default()
    };
    // Trusted peer: the right-most untrusted hop, not the spoofed left-most.
    let req = request_with(&xff, peer("10.0.0.2:4000"), &config);
    assert_eq!(req.remote_address(), Some(ip("203.0.113.9")));
    assert_eq!(
        req.remote_addresses(),
        [ip("203.0.113.9"), ip("10.0.0.1"), ip("10.0.0.2")]
    );
    // Untrusted peer: its headers are ignored.
    let req = request_with(&xff, peer("192.0.2.1:4000"), &config);
    assert_eq!(req.remote_address(), Some(ip("192.0.2.1")));
    // IPv4-mapped peers count as IPv4.
    let req = request_with(&xff, peer("[::ffff:10.0.0.2]:4000"), &config);
    assert_eq!(req.remote_address(), Some(ip("203.0.113.9")));
    // All hops trusted: the left-most is the client.
    let all = head_with(&["X-Forwarded-For: 10.1.1.1, 10.0.0.1"]);
    let req = request_with(&all, peer("10.0.0.2:1"), &config);
    assert_eq!(req.remote_address(), Some(ip("10.1.1.1")));
    // No header: the proxy itself.
    let req = request_with(&head_with(&[]), peer("10.0.0.2:1"), &config);
    assert_eq!(req.remote_address(), Some(ip("10.0.0.2")));
    // No peer known.
    let req = request_with(&xff, Transport::default(), &config);
    assert_eq!(req.remote_address(), None);
    assert!(req.remote_addresses().is_empty());

    // RFC 7239.
    let config = HandshakeConfig {
        trusted_proxies: TrustedProxies::new(ProxyHeader::Forwarded)
            .trust("2001:db8::/32")
            .unwrap(),
        ..HandshakeConfig::default()
    };
    let fwd = head_with(&[
        "X-Forwarded-For: 6.6.6.6",
        "Forwarded: for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https",
    ]);
    let req = request_with(&fwd, peer("[2001:db8::1]:443"), &config);
    assert_eq!(req.remote_address(), Some(ip("192.0.2.43")));
    assert_eq!(
        req.remote_addresses(),
        [ip("192.0.2.43"), ip("2001:db8:cafe::17"), ip("2001:db8::1")]
    );
    let hidden = head_with(&["Forwarded: for=_hidden, for=unknown"]);
    let req = request_with(&hidden, peer("[2001:db8::1]:443"), &config);
    assert_eq!(req.remote_address(), None);
    assert_eq!(req.remote_addresses(), [ip("2001:db8::1")]);
}

#[test]
fn origin_policy_on_requests() {
    let policy = OriginPolicy::new()
        .allow("https://*.example.com")
        .unwrap()
        .allow("http://localhost:8080")
        .unwrap();
    let verdict = |file: &str| request(&fixture(file)).check_origin(&policy);
    assert_eq!(verdict("accept/chrome-131.http"), OriginVerdict::Allowed);
    assert_eq!(verdict("accept/safari-18.http"), OriginVerdict::Allowed);
    assert_eq!(verdict("accept/firefox-133.http"), OriginVerdict::Denied);
    assert_eq!(verdict("accept/curl-8.http"), OriginVerdict::MissingDenied);
    let lenient = policy.clone().allow_missing(true);
    assert_eq!(
        request(&fixture("accept/curl-8.http")).check_origin(&lenient),
        OriginVerdict::MissingAllowed
    );
    // Version 8 reads Sec-WebSocket-Origin, and ignores Origin.
    let v8 = String::from_utf8(fixture("accept/hybi-version-8.http"))
        .unwrap()
        .replace("\r\n\r\n", "\r\nOrigin: https://x.example.com\r\n\r\n");
    assert_eq!(request(v8.as_bytes()).origin(), Some("http://example.com"));
    assert!(!OriginVerdict::Denied.is_allowed());
}

#[test]
fn peer_socket_addresses() {
    let t = Transport {
        peer: Some(SocketAddr::from(([127, 0, 0, 1], 9))),
        tls: true,
    };
    let req = request_with(&head_with(&[]), t, &HandshakeConfig::default());
    assert!(req.is_tls());
    assert_eq!(req.transport().peer, t.peer);
}

#[cfg(feature = "serde")]
#[test]
fn json_dump() {
    let req = request_with(
        &fixture("accept/chrome-131.http"),
        peer("198.51.100.4:1"),
        &HandshakeConfig::default(),
    );
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(v["host"], "localhost:8080");
    assert_eq!(
        v["requested_protocols"],
        serde_json::json!(["chat", "superchat"])
    );
    assert_eq!(
        v["requested_extensions"][0]["params"][0]["name"],
        "client_max_window_bits"
    );
    assert_eq!(v["cookies"][1]["value"], "dark");
    assert_eq!(v["remote_address"], "198.51.100.4");
    assert_eq!(v["headers"][0][0], "Host");
}

#[test]
fn extra_headers_may_not_be_padded_or_smuggle_cookies() {
    let mut req = request(&head_with(&[]));
    for (name, value) in [("X-Pad", " edge-1"), ("X-Pad", "edge-1\t")] {
        assert_eq!(
            req.accept(&AcceptOptions::new().header(name, value)),
            Err(AcceptError::Header(HeaderError::InvalidValue(name.into())))
        );
    }
    // Cookies go through `SetCookie`, which validates them.
    assert_eq!(
        req.accept(&AcceptOptions::new().header("Set-Cookie", "sid=1; Path=/")),
        Err(AcceptError::Header(HeaderError::Reserved(
            "Set-Cookie".into()
        )))
    );
    assert!(!req.is_resolved());
    // Inner whitespace stays legal.
    assert!(
        req.accept(&AcceptOptions::new().header("X-Pad", "a b\tc"))
            .is_ok()
    );
}
