//! The client address behind reverse proxies: `X-Forwarded-For` and
//! `Forwarded` (RFC 7239).
//!
//! # Trust model
//!
//! Proxy headers are only read when the socket peer is one of the configured
//! [`TrustedProxies`]. Each proxy appends the address it received the request
//! from to the *right* of the list, so the list is walked from the right,
//! starting at the socket peer: every hop that is a trusted proxy is skipped,
//! and the first hop that is not is the client. Everything to its left was
//! written by the client itself and is not believed.
//!
//! WebSocket-Node instead trusts `X-Forwarded-For` by default and takes the
//! *left-most* entry, which any client can set to anything.
//!
//! Only one header is read, the one named by [`ProxyHeader`]: a proxy that
//! writes `X-Forwarded-For` does not sanitize a `Forwarded` the client sent,
//! so reading both would let the client inject hops.
//!
//! If the walk reaches a hop that is not an IP address (`unknown`, an
//! obfuscated `_identifier`, garbage), the client is unknown and
//! [`Request::remote_address`](super::Request::remote_address) is `None`.
//! If every hop is trusted, the left-most hop is the client.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::http::{SplitQuoted, trim_ows, unquote};

/// Which header the trusted proxies write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most
    /// load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ProxyHeader {
    /// The header's name.
    pub const fn name(self) -> &'static str {
        match self {
            ProxyHeader::XForwardedFor => "X-Forwarded-For",
            ProxyHeader::Forwarded => "Forwarded",
        }
    }
}

/// The reverse proxies whose forwarding headers are believed.
///
/// Empty by default, which means forwarding headers are never read.
///
/// ```
/// use ws_edge::handshake::{ProxyHeader, TrustedProxies};
/// let proxies = TrustedProxies::new(ProxyHeader::Forwarded)
///     .trust("10.0.0.0/8").unwrap()
///     .trust("::1").unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ProxyHeader,
}

/// A trusted-proxy entry that is neither an IP address nor a CIDR network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network: {0:?}")]
pub struct ProxyParseError(pub String);

impl TrustedProxies {
    /// No trusted proxies; forwarding headers of the given kind will be read
    /// once networks are added.
    pub fn new(header: ProxyHeader) -> Self {
        TrustedProxies {
            networks: Vec::new(),
            header,
        }
    }

    /// Adds a network (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
    ///
    /// Fails if `entry` is neither.
    pub fn trust(mut self, entry: &str) -> Result<Self, ProxyParseError> {
        let net = match entry.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match entry.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip.to_canonical()),
                Err(_) => return Err(ProxyParseError(entry.to_owned())),
            },
        };
        self.networks.push(net.trunc());
        Ok(self)
    }

    /// Adds a network.
    pub fn trust_network(mut self, net: IpNet) -> Self {
        self.networks.push(net.trunc());
        self
    }

    /// The header the proxies write.
    pub fn header(&self) -> ProxyHeader {
        self.header
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// Whether no proxy is trusted (forwarding headers are ignored).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is a trusted proxy. IPv4-mapped IPv6 addresses match
    /// IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|n| n.contains(&ip))
    }
}

/// The client address and the hop chain (client first, socket peer last).
pub(crate) struct Resolved {
    pub(crate) client: Option<IpAddr>,
    pub(crate) chain: Vec<IpAddr>,
}

/// Walks the hops from the right. `lines` are the values of every header
/// line of the configured kind, in order.
pub(crate) fn resolve<'a>(
    peer: IpAddr,
    trusted: &TrustedProxies,
    lines: impl Iterator<Item = &'a [u8]>,
) -> Resolved {
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for line in lines {
        for element in SplitQuoted::new(line, b',') {
            if element.is_empty() {
                continue;
            }
            hops.push(match trusted.header {
                ProxyHeader::XForwardedFor => parse_node(element),
                ProxyHeader::Forwarded => forwarded_for(element),
            });
        }
    }
    let mut chain = vec![peer];
    let mut client = Some(peer);
    for hop in hops.into_iter().rev() {
        let Some(last) = client else { break };
        if !trusted.contains(last) {
            break;
        }
        client = hop;
        if let Some(ip) = hop {
            chain.push(ip);
        }
    }
    chain.reverse();
    Resolved { client, chain }
}

/// The `for=` node of one `Forwarded` element, `None` if absent or not an IP.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    for pair in SplitQuoted::new(element, b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if !trim_ows(&pair[..eq]).eq_ignore_ascii_case(b"for") {
            continue;
        }
        let value = trim_ows(&pair[eq + 1..]);
        return if value.first() == Some(&b'"') {
            unquote(value).and_then(|v| parse_node(&v))
        } else {
            parse_node(value)
        };
    }
    None
}

/// Parses `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443`.
fn parse_node(node: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(trim_ows(node)).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nodes() {
        assert_eq!(parse_node(b"1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(parse_node(b" 1.2.3.4:80 "), Some(ip("1.2.3.4")));
        assert_eq!(parse_node(b"[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node(b"[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node(b"::ffff:1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(parse_node(b"unknown"), None);
        assert_eq!(
            forwarded_for(br#"by=10.0.0.1;For="[2001:db8:cafe::17]:4711";proto=https"#),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(forwarded_for(b"for=_hidden"), None);
        assert_eq!(forwarded_for(b"proto=http"), None);
    }

    #[test]
    fn right_most_untrusted_hop_wins() {
        let t = TrustedProxies::new(ProxyHeader::XForwardedFor)
            .trust("10.0.0.0/8")
            .unwrap();
        let r = resolve(
            ip("10.0.0.2"),
            &t,
            [&b"6.6.6.6, 203.0.113.9"[..], b"10.0.0.1"].into_iter(),
        );
        assert_eq!(r.client, Some(ip("203.0.113.9")));
        assert_eq!(
            r.chain,
            vec![ip("203.0.113.9"), ip("10.0.0.1"), ip("10.0.0.2")]
        );
    }
}
