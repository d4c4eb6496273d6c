//! The client's address: the socket peer, or behind a trusted proxy what the proxy reports.
//!
//! Everything here fails closed. A header value that is missing, repeated, a list, or not an
//! address makes the client's address *unknown*: a key with an `ips` allowlist is refused, and
//! the failure limit counts the request against the proxy it came through, never against an
//! address the client chose.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use rocket::Request;

/// Where a request came from, as far as the configuration lets us believe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAddr {
    /// The client's address: the peer itself, or the one a trusted proxy reported.
    Known(IpAddr),
    /// The peer is a trusted proxy that did not report one unambiguous client address.
    Unknown {
        /// The proxy.
        peer: IpAddr,
    },
    /// No socket peer at all (a local client request without `.remote(…)`).
    NoPeer,
}

impl ClientAddr {
    /// The address of the request under `trusted_proxies`: see the module documentation.
    pub fn of(req: &Request<'_>, trusted_proxies: &[IpNet]) -> ClientAddr {
        let Some(peer) = req.remote().map(|peer| peer.ip().to_canonical()) else {
            return ClientAddr::NoPeer;
        };
        if !is_trusted(trusted_proxies, peer) {
            return ClientAddr::Known(peer);
        }
        let header = req
            .rocket()
            .config()
            .ip_header
            .as_deref()
            .map(|h| h.as_str());
        let reported = match header {
            // Trusting a proxy while Rocket reads no client-address header: nothing is reported.
            None => None,
            Some(name) if name.eq_ignore_ascii_case("x-forwarded-for") => {
                let values: Vec<&str> = req.headers().get(name).collect();
                forwarded_for(&values, trusted_proxies)
            }
            Some(name) => single_address(req.headers().get(name)),
        };
        match reported {
            Some(ip) => ClientAddr::Known(ip),
            None => ClientAddr::Unknown { peer },
        }
    }

    /// The client's address when it is known: what an `ips` allowlist is checked against.
    pub fn known(self) -> Option<IpAddr> {
        match self {
            ClientAddr::Known(ip) => Some(ip),
            ClientAddr::Unknown { .. } | ClientAddr::NoPeer => None,
        }
    }

    /// The address failures are counted against behind a proxy: the client's when known,
    /// otherwise the proxy's, so a proxy that reports nothing usable shares one allowance rather
    /// than granting each request a fresh one.
    pub fn accountable(self) -> Option<IpAddr> {
        match self {
            ClientAddr::Known(ip) | ClientAddr::Unknown { peer: ip } => Some(ip),
            ClientAddr::NoPeer => None,
        }
    }
}

fn is_trusted(trusted_proxies: &[IpNet], ip: IpAddr) -> bool {
    trusted_proxies.iter().any(|net| net.contains(&ip))
}

/// A header that must carry one address (`X-Real-IP`, set by the proxy): exactly one header
/// holding exactly one address, or nothing.
fn single_address<'a>(mut values: impl Iterator<Item = &'a str>) -> Option<IpAddr> {
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_address(value)
}

/// `X-Forwarded-For`: every proxy appends the address it received the request from, so only the
/// right end of the list was written by proxies we trust. Walking from the right through every
/// header and entry, the first address that is not a trusted proxy is the client; an entry that
/// does not parse before it, or a list made only of trusted proxies, leaves it unknown.
pub fn forwarded_for(values: &[&str], trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    for value in values.iter().rev() {
        for entry in value.rsplit(',') {
            let ip = parse_address(entry)?;
            if !is_trusted(trusted_proxies, ip) {
                return Some(ip);
            }
        }
    }
    None
}

/// One address as proxies write it: `192.0.2.1`, `2001:db8::1`, and with a port as some load
/// balancers add one, `192.0.2.1:443` or `[2001:db8::1]:443` (or bracketed without a port).
/// Surrounding spaces are allowed; anything else is not an address.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches(|c| c == ' ' || c == '\t');
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_as_proxies_write_them() {
        for (text, want) in [
            ("192.0.2.1", "192.0.2.1"),
            (" 192.0.2.1\t", "192.0.2.1"),
            ("192.0.2.1:443", "192.0.2.1"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
        ] {
            assert_eq!(parse_address(text), Some(ip(want)), "{text}");
        }
        for text in [
            "",
            " ",
            "unknown",
            "192.0.2.1, 10.0.0.7",
            "192.0.2",
            "192.0.2.1/32",
            "_hidden",
            "for=192.0.2.1",
            "192.0.2.1 10.0.0.7",
            "[192.0.2.1]",
        ] {
            assert_eq!(parse_address(text), None, "{text:?}");
        }
    }

    #[test]
    fn one_real_ip_header_with_one_address() {
        assert_eq!(
            single_address(["192.0.2.1"].into_iter()),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(single_address([].into_iter()), None);
        assert_eq!(single_address(["192.0.2.1", "192.0.2.1"].into_iter()), None);
        assert_eq!(single_address(["203.0.113.9, 10.0.0.7"].into_iter()), None);
    }

    #[test]
    fn forwarded_for_takes_the_rightmost_untrusted_address() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let xff = |values: &[&str]| forwarded_for(values, &trusted);
        assert_eq!(xff(&["192.0.2.1"]), Some(ip("192.0.2.1")));
        // The client's own claim sits to the left of what our proxies appended.
        assert_eq!(
            xff(&["6.6.6.6, 192.0.2.1, 10.0.0.7"]),
            Some(ip("192.0.2.1"))
        );
        // Several headers are one list, in order.
        assert_eq!(
            xff(&["6.6.6.6", "192.0.2.1", "10.0.0.7"]),
            Some(ip("192.0.2.1"))
        );
        // Garbage to the right of the client: unknown; to its left: never read.
        assert_eq!(xff(&["192.0.2.1, junk"]), None);
        assert_eq!(xff(&["192.0.2.1, , 10.0.0.7"]), None);
        assert_eq!(xff(&["junk, 192.0.2.1"]), Some(ip("192.0.2.1")));
        // Only proxies, or nothing: unknown.
        assert_eq!(xff(&["10.0.0.7, 127.0.0.1"]), None);
        assert_eq!(xff(&[]), None);
        assert_eq!(xff(&[""]), None);
    }
}
