//! permessage-deflate (RFC 7692): negotiation and the message codec.
//!
//! A handler turns it on by accepting with
//! [`AcceptOptions::deflate`](crate::handshake::AcceptOptions::deflate) and a
//! [`DeflateConfig`] (the library default is off). [`Request::accept`]
//! then picks the first acceptable `permessage-deflate` offer of the
//! client ([`negotiate`]), answers it in `Sec-WebSocket-Extensions`, and
//! reports the outcome as [`Accepted::deflate`]; the connection is created
//! with [`PerMessageDeflate`] as its [`Extension`](crate::protocol::Extension):
//!
//! ```
//! use ws_edge::deflate::{DeflateConfig, PerMessageDeflate};
//! use ws_edge::handshake::*;
//! use ws_edge::protocol::{Config, Connection};
//! let head = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\
//!     Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
//! let ws_edge::Parsed::Complete { value, .. } =
//!     Request::from_head(head, Transport::default(), &HandshakeConfig::default())
//!     else { panic!() };
//! let mut request = value.unwrap();
//! let accepted = request
//!     .accept(&AcceptOptions::new().deflate(DeflateConfig::default()))
//!     .unwrap();
//! assert_eq!(
//!     accepted.response.header("Sec-WebSocket-Extensions"),
//!     Some(&b"permessage-deflate"[..])
//! );
//! let params = accepted.deflate.unwrap();
//! let connection = Connection::with_extension(
//!     Config::default(),
//!     Box::new(PerMessageDeflate::new(params)),
//!     0,
//! );
//! # let _ = connection;
//! ```
//!
//! Decisions (docs/deflate.md has the reasoning and the measurements):
//!
//! - **Window bits 8.** zlib-family compressors cannot produce raw deflate
//!   with a 256-byte window (madler/zlib#171; flate2 refuses below 9). An
//!   offer that limits the server to `server_max_window_bits=8` is still
//!   accepted and answered with `8`, and every message ws-edge sends on that
//!   connection goes uncompressed, which RFC 7692 allows (compression is
//!   per message); received messages are inflated as usual. A client window
//!   of 8 needs nothing special: an inflater with a larger window reads a
//!   smaller window's stream, and ws-edge never asks a client for less
//!   than 9.
//! - **Bombs.** Inflated bytes count against
//!   [`Config::max_message`](crate::protocol::Config::max_message) as they
//!   are produced: past it the connection closes with 1009 and the rest is
//!   not inflated.
//! - **No context takeover** means no state between messages: the
//!   compressor (or inflater) is created for a message and dropped after it.
//!
//! [`Request::accept`]: crate::handshake::Request::accept
//! [`Accepted::deflate`]: crate::handshake::Accepted::deflate

mod codec;
mod negotiate;

pub use codec::PerMessageDeflate;
pub use negotiate::{IntoOffers, NegotiationError, negotiate, negotiate_offer, parse_response};

/// The extension token, `permessage-deflate`.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// A handler's permessage-deflate policy: what it accepts and how it
/// compresses. Used through
/// [`AcceptOptions::deflate`](crate::handshake::AcceptOptions::deflate);
/// without it (the default) no offer is accepted.
///
/// [`DeflateConfig::default`]: context takeover both ways, 15-bit windows,
/// level 2, messages under 1 KiB sent uncompressed. That keeps the best
/// ratio for streams of similar small messages (JSON updates, chat) at less
/// CPU than Node `ws`; what it costs is memory: a 15-bit compressor is
/// 371 KiB and an inflater 46 KiB, and a connection's instance keeps about
/// 470 KiB more once it has compressed a 64 KiB message, with or without
/// context takeover (docs/deflate.md has the figures). [`DeflateConfig::low_memory`] trades ratio for memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Outgoing messages shorter than this many bytes go uncompressed
    /// (default 1024, as Node `ws`). 0 compresses every message.
    pub threshold: usize,
    /// Compression level, 0–9 (default 2: on JSON within 20 % of level 6's
    /// size at a fifth of its CPU; level 1 is zlib-rs's static-Huffman
    /// strategy, faster again but 40 % larger; docs/deflate.md). Values
    /// above 9 are treated as 9.
    pub level: u32,
    /// Reset the compressor after every message we send (default `false`):
    /// answered as `server_no_context_takeover`. No compressor state is kept
    /// between messages. Forced on when the client asks for it.
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its compressor after every message (default
    /// `false`): answered as `client_no_context_takeover`, so no inflater
    /// state is kept between messages.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window we compress with, in bits, 9–15 (default 15;
    /// values outside are clamped). Smaller windows take less memory and
    /// compress less. Answered as `server_max_window_bits` when below 15;
    /// a client may ask for less.
    pub server_max_window_bits: u8,
    /// The largest window we let the client compress with, 9–15 (default
    /// 15; clamped). Answered as `client_max_window_bits` when below 15 and
    /// the client's offer allows it (an offer without
    /// `client_max_window_bits` means the client cannot be limited, and we
    /// inflate with 15 bits).
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            threshold: 1024,
            level: 2,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// Smaller peaks and no state between messages: 12-bit windows both
    /// ways (a 259 KiB compressor instead of 371 KiB; the client is limited
    /// when its offer allows) and no context takeover either way, so no
    /// compression state stays allocated between messages. Each message is
    /// compressed on its own: worse on small similar messages, about the
    /// same on large ones. (In a component the linear memory a message
    /// needed stays with the instance, so what counts is the peak; see
    /// docs/deflate.md.)
    pub fn low_memory() -> Self {
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 12,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        }
    }
}

/// The negotiated parameters of one connection (what
/// [`Accepted::deflate`](crate::handshake::Accepted::deflate) reports), plus
/// the handler's compression settings. [`PerMessageDeflate::new`] takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// We reset our compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message, so we keep no
    /// inflater between messages.
    pub client_no_context_takeover: bool,
    /// The window we compress with, 8–15. 8 means we send every message
    /// uncompressed (see the module docs).
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with, 8–15 (15 when not
    /// limited).
    pub client_max_window_bits: u8,
    /// Outgoing messages shorter than this go uncompressed.
    pub threshold: usize,
    /// Compression level, 0–9.
    pub level: u32,
    /// Whether our answer carries `server_max_window_bits` (the client asked
    /// for a limit, or ours is below 15).
    pub(crate) answer_server_bits: bool,
    /// Whether our answer carries `client_max_window_bits`.
    pub(crate) answer_client_bits: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value answering the accepted offer.
    ///
    /// ```
    /// use ws_edge::deflate::{DeflateConfig, negotiate};
    /// let p = negotiate(
    ///     "permessage-deflate; server_no_context_takeover; client_max_window_bits",
    ///     &DeflateConfig { client_max_window_bits: 10, ..DeflateConfig::default() },
    /// )
    /// .unwrap();
    /// assert_eq!(
    ///     p.response_value(),
    ///     "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
    /// );
    /// ```
    pub fn response_value(&self) -> String {
        let mut s = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.answer_server_bits {
            s.push_str("; server_max_window_bits=");
            s.push_str(&self.server_max_window_bits.to_string());
        }
        if self.answer_client_bits {
            s.push_str("; client_max_window_bits=");
            s.push_str(&self.client_max_window_bits.to_string());
        }
        s
    }
}
