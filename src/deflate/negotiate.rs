//! Accepting a `permessage-deflate` offer (RFC 7692 §5, §7.1).

use super::{DeflateConfig, DeflateParams, EXTENSION_NAME};
use crate::handshake::ExtensionOffer;

/// Why one offer was declined ([`negotiate_offer`]). A declined offer is
/// not an error of the handshake: the next offer is tried, and with none
/// acceptable the connection goes on without compression (RFC 7692 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The offer is for another extension.
    #[error("not a permessage-deflate offer")]
    OtherExtension,
    /// A parameter RFC 7692 does not define.
    #[error("unknown permessage-deflate parameter")]
    UnknownParameter,
    /// A parameter given twice (§7, "multiple parameters with the same
    /// name").
    #[error("duplicate permessage-deflate parameter")]
    DuplicateParameter,
    /// A `*_no_context_takeover` with a value, a `server_max_window_bits`
    /// without one, or window bits that are not a decimal 8–15 without a
    /// leading zero.
    #[error("invalid permessage-deflate parameter value")]
    InvalidValue,
}

/// Picks the first acceptable `permessage-deflate` offer among `offers` (in
/// the client's order, as [`Request::requested_extensions`] lists them),
/// or `None` when there is none: the connection then runs uncompressed.
///
/// [`Request::requested_extensions`]: crate::handshake::Request::requested_extensions
///
/// ```
/// use ws_edge::deflate::{DeflateConfig, negotiate};
/// // The first offer is malformed (duplicate parameter): the second wins.
/// let p = negotiate(
///     "permessage-deflate; server_no_context_takeover; server_no_context_takeover, \
///      permessage-deflate; server_max_window_bits=10",
///     &DeflateConfig::default(),
/// )
/// .unwrap();
/// assert_eq!(p.server_max_window_bits, 10);
/// assert!(!p.server_no_context_takeover);
/// assert!(negotiate("x-webkit-deflate-frame", &DeflateConfig::default()).is_none());
/// ```
pub fn negotiate<'a, O>(offers: O, config: &DeflateConfig) -> Option<DeflateParams>
where
    O: IntoOffers<'a>,
{
    offers
        .into_offers()
        .find_map(|offer| negotiate_offer(&offer, config).ok())
}

/// What [`negotiate`] takes: the offers of a request
/// ([`ExtensionOffers`](crate::handshake::ExtensionOffers)) or a header value
/// (`&str`, which must follow RFC 6455 §9.1; a malformed one has no offers).
pub trait IntoOffers<'a> {
    /// The offers, in order.
    fn into_offers(self) -> impl Iterator<Item = ExtensionOffer<'a>>;
}

impl<'a> IntoOffers<'a> for crate::handshake::ExtensionOffers<'a> {
    fn into_offers(self) -> impl Iterator<Item = ExtensionOffer<'a>> {
        self
    }
}

impl<'a> IntoOffers<'a> for &'a str {
    fn into_offers(self) -> impl Iterator<Item = ExtensionOffer<'a>> {
        crate::handshake::ExtensionOffers::parse(self.as_bytes())
            .into_iter()
            .flatten()
    }
}

/// Accepts or declines one offer under `config` (RFC 7692 §7.1).
///
/// - `server_no_context_takeover` (no value): honoured; also answered when
///   `config` asks for it.
/// - `client_no_context_takeover` (no value): the client will reset anyway;
///   answered (so both sides agree) as when `config` asks for it.
/// - `server_max_window_bits=N` (8–15, required value): we compress with at
///   most N bits and answer it. With N = 8 we send every message
///   uncompressed (zlib cannot produce an 8-bit window).
/// - `client_max_window_bits[=N]` (optional value 8–15): we may limit the
///   client to `config.client_max_window_bits`; without this parameter the
///   client cannot be limited and we inflate with 15 bits.
pub fn negotiate_offer(
    offer: &ExtensionOffer<'_>,
    config: &DeflateConfig,
) -> Result<DeflateParams, NegotiationError> {
    let Params {
        server_nct,
        client_nct,
        server_bits,
        client_bits,
    } = Params::parse(offer)?;
    let ours_server = config.server_max_window_bits.clamp(9, 15);
    let (server_max_window_bits, answer_server_bits) = match server_bits {
        Some(n) => (n.min(ours_server), true),
        None => (ours_server, ours_server < 15),
    };
    let ours_client = config.client_max_window_bits.clamp(9, 15);
    let (client_max_window_bits, answer_client_bits) = match client_bits {
        // The client cannot be limited: it may use 15 bits.
        None => (15, false),
        // The client limits itself to n; answer only to limit it further.
        Some(offered) => {
            let n = offered.unwrap_or(15);
            if ours_client < n {
                (ours_client, true)
            } else {
                (n, false)
            }
        }
    };
    Ok(DeflateParams {
        server_no_context_takeover: server_nct || config.server_no_context_takeover,
        client_no_context_takeover: client_nct || config.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
        threshold: config.threshold,
        level: config.level.min(9),
        answer_server_bits,
        answer_client_bits,
    })
}

/// The parameters of one `permessage-deflate` element, checked (§7.1).
struct Params {
    server_nct: bool,
    client_nct: bool,
    server_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_bits: Option<Option<u8>>,
}

impl Params {
    fn parse(offer: &ExtensionOffer<'_>) -> Result<Params, NegotiationError> {
        if !offer.name().eq_ignore_ascii_case(EXTENSION_NAME) {
            return Err(NegotiationError::OtherExtension);
        }
        let mut p = Params {
            server_nct: false,
            client_nct: false,
            server_bits: None,
            client_bits: None,
        };
        for param in offer.params() {
            let name = param.name;
            if name.eq_ignore_ascii_case("server_no_context_takeover") {
                set_flag(&mut p.server_nct, param.value.is_some())?;
            } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
                set_flag(&mut p.client_nct, param.value.is_some())?;
            } else if name.eq_ignore_ascii_case("server_max_window_bits") {
                if p.server_bits.is_some() {
                    return Err(NegotiationError::DuplicateParameter);
                }
                let v = param
                    .value
                    .as_deref()
                    .ok_or(NegotiationError::InvalidValue)?;
                p.server_bits = Some(window_bits(v)?);
            } else if name.eq_ignore_ascii_case("client_max_window_bits") {
                if p.client_bits.is_some() {
                    return Err(NegotiationError::DuplicateParameter);
                }
                p.client_bits = Some(match param.value.as_deref() {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                });
            } else {
                return Err(NegotiationError::UnknownParameter);
            }
        }
        Ok(p)
    }
}

/// The client's side of the negotiation: reads a server's
/// `Sec-WebSocket-Extensions` answer (one `permessage-deflate` element) into
/// the parameters both ends use, for
/// [`PerMessageDeflate::client`](super::PerMessageDeflate::client). For
/// tests, tools and load generators that play the client; `threshold` and
/// `level` are the client's own.
///
/// ```
/// use ws_edge::deflate::parse_response;
/// let p = parse_response("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 0, 1)
///     .unwrap();
/// assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (12, 12));
/// assert!(parse_response("permessage-deflate; client_max_window_bits", 0, 1).is_err());
/// ```
pub fn parse_response(
    value: &str,
    threshold: usize,
    level: u32,
) -> Result<DeflateParams, NegotiationError> {
    let mut answers = crate::handshake::ExtensionOffers::parse(value.as_bytes())
        .ok_or(NegotiationError::InvalidValue)?;
    let answer = answers.next().ok_or(NegotiationError::OtherExtension)?;
    if answers.next().is_some() {
        return Err(NegotiationError::DuplicateParameter);
    }
    let p = Params::parse(&answer)?;
    // An answer's client_max_window_bits must carry a value (§7.1.2.2).
    let client_bits = match p.client_bits {
        Some(None) => return Err(NegotiationError::InvalidValue),
        Some(Some(n)) => n,
        None => 15,
    };
    Ok(DeflateParams {
        server_no_context_takeover: p.server_nct,
        client_no_context_takeover: p.client_nct,
        server_max_window_bits: p.server_bits.unwrap_or(15),
        client_max_window_bits: client_bits,
        threshold,
        level: level.min(9),
        answer_server_bits: p.server_bits.is_some(),
        answer_client_bits: p.client_bits.is_some(),
    })
}

fn set_flag(flag: &mut bool, has_value: bool) -> Result<(), NegotiationError> {
    if *flag {
        return Err(NegotiationError::DuplicateParameter);
    }
    if has_value {
        return Err(NegotiationError::InvalidValue);
    }
    *flag = true;
    Ok(())
}

/// A window size: a decimal 8–15 without a leading zero (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Result<u8, NegotiationError> {
    match v.as_bytes() {
        [d @ b'8'..=b'9'] => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + (d - b'0')),
        _ => Err(NegotiationError::InvalidValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ExtensionOffers;

    fn one(value: &str, config: &DeflateConfig) -> Result<DeflateParams, NegotiationError> {
        let offer = ExtensionOffers::parse(value.as_bytes())
            .expect("valid grammar")
            .next()
            .expect("one offer");
        negotiate_offer(&offer, config)
    }

    fn answer(value: &str, config: &DeflateConfig) -> String {
        one(value, config).expect("accepted").response_value()
    }

    #[test]
    fn default_offers_of_real_clients() {
        let d = DeflateConfig::default();
        // Chromium and Firefox.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", &d),
            "permessage-deflate"
        );
        // Python websockets (client defaults).
        let p = one("permessage-deflate; client_max_window_bits=12", &d).unwrap();
        assert_eq!(p.response_value(), "permessage-deflate");
        assert_eq!(p.client_max_window_bits, 12);
        assert_eq!(p.server_max_window_bits, 15);
        // Autobahn's default offer.
        assert_eq!(
            answer(
                "permessage-deflate; client_no_context_takeover; client_max_window_bits",
                &d
            ),
            "permessage-deflate; client_no_context_takeover"
        );
        // Bare offer: the client may not be limited.
        let p = one(
            "permessage-deflate",
            &DeflateConfig {
                client_max_window_bits: 9,
                ..d.clone()
            },
        )
        .unwrap();
        assert_eq!(p.response_value(), "permessage-deflate");
        assert_eq!(p.client_max_window_bits, 15);
    }

    #[test]
    fn all_four_parameters() {
        let cfg = DeflateConfig {
            server_max_window_bits: 12,
            client_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        let p = one(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=14; client_max_window_bits=11",
            &cfg,
        )
        .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (12, 10)
        );
        assert_eq!(
            p.response_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=10"
        );
        // The client asks for less than ours: its value wins.
        let p = one("permessage-deflate; server_max_window_bits=9", &cfg).unwrap();
        assert_eq!(p.server_max_window_bits, 9);
        assert!(p.response_value().ends_with("server_max_window_bits=9"));
        // Ours below 15 is answered even unasked (RFC 7692 §7.1.2.1).
        assert_eq!(
            answer("permessage-deflate", &cfg),
            "permessage-deflate; server_max_window_bits=12"
        );
        // A client window already below ours is not answered.
        let p = one("permessage-deflate; client_max_window_bits=9", &cfg).unwrap();
        assert_eq!(p.client_max_window_bits, 9);
        assert_eq!(
            p.response_value(),
            "permessage-deflate; server_max_window_bits=12"
        );
        // Quoted values are values (RFC 6455 §9.1).
        let p = one("permessage-deflate; server_max_window_bits=\"10\"", &cfg).unwrap();
        assert_eq!(p.server_max_window_bits, 10);
        // Names are case-insensitive.
        let p = one("Permessage-Deflate; Server_No_Context_Takeover", &cfg).unwrap();
        assert!(p.server_no_context_takeover);
    }

    #[test]
    fn config_asks_for_no_context_takeover() {
        assert_eq!(
            answer(
                "permessage-deflate; client_max_window_bits",
                &DeflateConfig::low_memory()
            ),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=12"
        );
    }

    #[test]
    fn window_bits_8() {
        let p = one(
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (8, 8));
        assert_eq!(
            p.response_value(),
            "permessage-deflate; server_max_window_bits=8"
        );
        // Our own settings never go below 9.
        let p = one(
            "permessage-deflate; client_max_window_bits",
            &DeflateConfig {
                server_max_window_bits: 8,
                client_max_window_bits: 1,
                ..DeflateConfig::default()
            },
        )
        .unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (9, 9));
    }

    #[test]
    fn malformed_offers_are_declined() {
        let d = DeflateConfig::default();
        for (value, err) in [
            ("x-webkit-deflate-frame", NegotiationError::OtherExtension),
            (
                "permessage-deflate; foo",
                NegotiationError::UnknownParameter,
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                NegotiationError::DuplicateParameter,
            ),
            (
                "permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover",
                NegotiationError::DuplicateParameter,
            ),
            (
                "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
                NegotiationError::DuplicateParameter,
            ),
            (
                "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
                NegotiationError::DuplicateParameter,
            ),
            (
                "permessage-deflate; server_max_window_bits",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits=7",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; client_max_window_bits=+9",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; client_max_window_bits=abc",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_no_context_takeover=1",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; client_no_context_takeover=\"x\"",
                NegotiationError::InvalidValue,
            ),
        ] {
            assert_eq!(one(value, &d).err(), Some(err), "{value}");
        }
    }

    #[test]
    fn the_client_reads_our_answer_back() {
        let cfg = DeflateConfig {
            server_max_window_bits: 11,
            client_max_window_bits: 10,
            ..DeflateConfig::low_memory()
        };
        for offer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate",
        ] {
            let ours = one(offer, &cfg).unwrap();
            let theirs =
                parse_response(&ours.response_value(), ours.threshold, ours.level).unwrap();
            assert_eq!(theirs, ours, "{offer}");
        }
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; x=1",
            "foo",
            "",
        ] {
            assert!(parse_response(bad, 0, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_acceptable_offer_wins() {
        let d = DeflateConfig::default();
        // Autobahn 13.7's three offers: the first is acceptable.
        let p = negotiate(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9, \
             permessage-deflate; server_no_context_takeover, permessage-deflate",
            &d,
        )
        .unwrap();
        assert_eq!(
            p.response_value(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        // Declined offers are skipped, other extensions too.
        let p = negotiate(
            "foo, permessage-deflate; bar, permessage-deflate; server_max_window_bits=99, \
             permessage-deflate; client_max_window_bits=13",
            &d,
        )
        .unwrap();
        assert_eq!(p.client_max_window_bits, 13);
        assert!(negotiate("permessage-deflate; bar", &d).is_none());
        assert!(negotiate("", &d).is_none());
        assert!(negotiate("permessage-deflate; a=\"b c\"", &d).is_none());
    }
}
