//! Egress allow entries (`wisp.egress` of a function, `--egress-allow` of `serve`): what
//! a guest's outbound HTTP may reach beyond the public internet. The policy that judges
//! addresses by them is the host's `egress` module.

use std::net::IpAddr;

/// One entry of an allow list: a host name or an address block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Allow {
    /// A host name, lower-case, compared exactly.
    Host(String),
    /// An address block; a bare address is a block of one.
    Cidr { net: IpAddr, prefix: u8 },
}

impl std::str::FromStr for Allow {
    type Err = String;

    /// `HOST`, `ADDRESS` or `ADDRESS/PREFIX`.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty egress entry; give a host name or a CIDR block".into());
        }
        if let Some((addr, prefix)) = text.split_once('/') {
            let net: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{text}` is not a CIDR block: `{addr}` is no address"))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
                format!("`{text}` is not a CIDR block: the prefix must be 0..={max}")
            })?;
            return Ok(Allow::Cidr {
                net: canonical(net),
                prefix,
            });
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(net) = bare.parse::<IpAddr>() {
            let prefix = if net.is_ipv4() { 32 } else { 128 };
            return Ok(Allow::Cidr {
                net: canonical(net),
                prefix,
            });
        }
        let valid = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(format!("`{text}` is neither a host name nor a CIDR block"));
        }
        Ok(Allow::Host(text.to_ascii_lowercase()))
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned into the IPv4 address it carries.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}
