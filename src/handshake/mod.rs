//! The opening handshake (RFC 6455 §4.2), without I/O.
//!
//! # Flow
//!
//! 1. Bytes from a socket go to [`Request::from_head`] (or [`parse_head`]
//!    then [`Request::from_parts`]); a host that parsed HTTP itself calls
//!    [`Request::from_parts`] with [`RequestParts`]. Until the head is
//!    complete the answer is [`Parsed::Incomplete`](crate::Parsed::Incomplete).
//! 2. All of RFC 6455 §4.2.1 is checked in [`Request::from_parts`] (one
//!    place, WebSocket-Node's `readHandshake`). A failure is a [`Rejection`]
//!    naming the rule, whose [`Rejection::response`] is the 400 / 426 / 431
//!    to send.
//! 3. A handler inspects the [`Request`] (host, resource, origin, protocols,
//!    extensions, cookies, client address, any header) and calls
//!    [`Request::accept`] or [`Request::reject`] once. Both return the
//!    complete [`Response`]; [`Response::write_to`] serializes it.
//!
//! ```
//! use ws_edge::Parsed;
//! use ws_edge::handshake::*;
//! let config = HandshakeConfig::default();
//! let head = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\n\r\n";
//! let policy = OriginPolicy::new().allow("https://example.com").unwrap();
//! let response = match Request::from_head(head, Transport::default(), &config) {
//!     Parsed::Incomplete => unreachable!("read more bytes"),
//!     Parsed::Complete { value: Err(rejection), .. } => rejection.response(),
//!     Parsed::Complete { value: Ok(mut request), .. } => {
//!         if request.check_origin(&policy).is_allowed() {
//!             request.accept(&AcceptOptions::new()).unwrap().response
//!         } else {
//!             request.reject(&RejectOptions::new(403)).unwrap()
//!         }
//!     }
//! };
//! assert!(response.to_bytes().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! ```
//!
//! # Deliberate differences from WebSocket-Node
//!
//! | WebSocket-Node | ws-edge | why |
//! |---|---|---|
//! | checks only Host, key presence and version | also method `GET`, HTTP ≥ 1.1, `Upgrade`/`Connection` tokens, key = base64 of 16 bytes, single Host/key/version/origin, protocol and extension grammar | RFC 6455 §4.2.1 requires them; other servers answered 101 to `h2c` upgrades and junk keys |
//! | `parseInt` version (`"13abc"` is 13) | digits only, no leading zero | a malformed value is a 400, not a guess |
//! | 426 advertises `Sec-WebSocket-Version: 13` | `13, 8` (and `Upgrade: websocket`) | both are accepted, so both are advertised |
//! | protocols lower-cased; `accept` needs the lower-case form | original spelling kept; exact match, else ASCII case-insensitive; client's spelling echoed | issues #72 / #269; browsers compare the echo exactly |
//! | `accept` errors send a 500 *then* throw | typed [`AcceptError`] before anything is answered; request stays pending | the caller decides the answer (issues #32 / #293) |
//! | `allowedOrigin` echoed as `Origin` / `Sec-WebSocket-Origin` | checked against the request, never echoed | no such response header in RFC 6455 |
//! | cookies: malformed `%` rejects the whole handshake; `,` splits | raw value kept; only `;` splits | PR #400; RFC 6265 |
//! | `Set-Cookie` sanitized silently, joined by `;`, no `SameSite`, `maxage` > 0 only | invalid cookies are errors; `"; "`; `SameSite` (None needs Secure), `__Host-`/`__Secure-` rules, `Max-Age=0` allowed, duplicates per name+path+domain | fail loudly; RFC 6265bis |
//! | extensions: whole header lower-cased, naive split | RFC 6455 §9.1 grammar with quoted strings; malformed → 400 | the header is a grammar, not a regex |
//! | X-Forwarded-For trusted by default, left-most entry | never trusted unless the peer is a configured proxy; right-most untrusted hop; one configured header | the left-most entry is client-controlled |
//! | reject: unknown status → `undefined`, no `Content-Length`, any status | class phrase, `Content-Length`, optional body, 300–599 only | a valid HTTP response |
//! | reject headers: CR/LF stripped, any name, may repeat `Connection` | tokens only, control characters refused, `Connection`/`Content-Length` reserved | no header injection, no contradictory framing |
//! | no size limits of its own | head ≤ 8 KiB and ≤ 64 fields, else 431 | bounded memory in the guest |
//!
//! Version 8 (`Sec-WebSocket-Origin`) is still accepted, as in WebSocket-Node.

mod accept;
mod config;
mod cookies;
mod extensions;
mod forwarded;
mod http;
mod origin;
mod parse;
mod reject;
mod request;
mod response;

pub use accept::{AcceptError, AcceptOptions, Accepted, accept_key};
pub use config::{HandshakeConfig, Limits};
pub use cookies::{Cookie, CookieError, Cookies, Expires, SameSite, SetCookie};
pub use extensions::{ExtensionOffer, ExtensionOffers, ExtensionParam, ExtensionParams};
pub use forwarded::{ProxyHeader, ProxyParseError, TrustedProxies};
pub use http::{Header, HttpVersion, RequestParts, Transport};
pub use origin::{OriginPatternError, OriginPolicy, OriginVerdict};
pub use parse::parse_head;
pub use reject::{RejectError, RejectOptions, Rejection};
pub use request::{HeaderRef, HeaderValues, Headers, Protocols, Request, ResourceUrl};
pub use response::{HeaderError, Response, reason_phrase};

/// `ipnet`, re-exported for [`TrustedProxies::trust_network`].
pub use ipnet;
