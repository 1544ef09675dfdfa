//! The egress policy: by default a guest may reach public addresses only.
//!
//! Denied unless allowed (Taubyte's netguard list, plus reserved space): loopback, private
//! (RFC 1918), CGNAT (100.64/10), link-local (with the cloud metadata addresses
//! 169.254.169.254 and 168.63.129.16), multicast, unspecified, reserved and benchmarking
//! ranges, and their IPv6 equivalents (`::1`, `::`, fe80::/10, fc00::/7, ff00::/8, the
//! NAT64 64:ff9b::/96, 6to4 2002::/16 and Teredo 2001::/32, which embed IPv4 addresses).
//! An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is judged as the IPv4 address it is.
//!
//! An allow list opens host names (exact, case-insensitive) or CIDR blocks. The check is
//! meant for every address a name resolves to, at connect time, so that a name that
//! resolves to a denied address (`localhost`, DNS rebinding) is refused too.

pub use crate::project::egress::{canonical, Allow};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `allow` is a block holding `addr`.
fn contains(allow: &Allow, addr: IpAddr) -> bool {
    let Allow::Cidr { net, prefix } = allow else {
        return false;
    };
    in_block(canonical(addr), *net, *prefix)
}

/// What a function may reach: the default deny list, opened by an allow list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EgressPolicy {
    pub allow: Vec<Allow>,
}

impl EgressPolicy {
    /// Whether a request to host name `host` may connect to `addr` (one of the addresses
    /// `host` resolved to, or the literal address itself).
    pub fn permits(&self, host: &str, addr: IpAddr) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let named = self
            .allow
            .iter()
            .any(|a| matches!(a, Allow::Host(h) if h.eq_ignore_ascii_case(host)));
        named || self.allow.iter().any(|a| contains(a, addr)) || !is_denied(addr)
    }
}

/// IPv4 blocks no guest reaches by default.
const DENIED_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(168, 63, 129, 16), 32),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// IPv6 blocks no guest reaches by default.
const DENIED_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::UNSPECIFIED, 128),
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// Whether the default list denies `addr`.
pub fn is_denied(addr: IpAddr) -> bool {
    match canonical(addr) {
        IpAddr::V4(v4) => DENIED_V4
            .iter()
            .any(|(net, prefix)| in_block(IpAddr::V4(v4), IpAddr::V4(*net), *prefix)),
        IpAddr::V6(v6) => {
            // IPv4-compatible (::a.b.c.d, deprecated) addresses are judged as IPv4 too.
            let compat = v6.segments()[..6] == [0; 6];
            if compat && !v6.is_loopback() && !v6.is_unspecified() {
                let [.., a, b, c, d] = v6.octets();
                return is_denied(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            DENIED_V6
                .iter()
                .any(|(net, prefix)| in_block(IpAddr::V6(v6), IpAddr::V6(*net), *prefix))
        }
    }
}

fn in_block(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_denied_range_is_denied_and_public_addresses_are_not() {
        let denied = [
            "0.0.0.0",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.9.9.9",
            "168.63.129.16",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ];
        for addr in denied {
            assert!(is_denied(ip(addr)), "{addr} should be denied");
            assert!(
                !EgressPolicy::default().permits("example.com", ip(addr)),
                "{addr}"
            );
        }
        for addr in [
            "1.1.1.1",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(!is_denied(ip(addr)), "{addr} should be allowed");
        }
    }

    #[test]
    fn an_allow_list_opens_hosts_and_blocks() {
        let allow = ["127.0.0.1", "10.1.0.0/16", "Internal.Example", "[::1]"]
            .map(|a| a.parse::<Allow>().unwrap());
        let policy = EgressPolicy {
            allow: allow.to_vec(),
        };
        assert!(policy.permits("x", ip("127.0.0.1")));
        assert!(
            policy.permits("x", ip("::ffff:127.0.0.1")),
            "mapped is normalised"
        );
        assert!(!policy.permits("x", ip("127.0.0.2")));
        assert!(policy.permits("x", ip("10.1.200.3")));
        assert!(!policy.permits("x", ip("10.2.0.1")));
        assert!(policy.permits("internal.example", ip("192.168.0.5")));
        assert!(policy.permits("[::1]", ip("::1")));
        assert!(!policy.permits("other", ip("192.168.0.5")));
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for bad in ["", "10.0.0.0/33", "::/129", "nope/8", "a b", "http://x"] {
            assert!(bad.parse::<Allow>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "::ffff:10.0.0.0/8".parse::<Allow>(),
            Ok(Allow::Cidr {
                net: ip("10.0.0.0"),
                prefix: 8
            })
        );
    }
}
