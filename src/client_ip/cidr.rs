//! IPv4 and IPv6 networks in CIDR notation: the trusted proxies.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::ConfigError;

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`);
/// a bare address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`; refuses a prefix longer than the address
    /// or host bits set in `addr`.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ConfigError> {
        // A v4-mapped network (`::ffff:10.0.0.0/104`) becomes its IPv4 form.
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            if prefix < 96 {
                return Err(ConfigError::new(
                    "trusted proxy",
                    format!(
                        "{addr}/{prefix}: an IPv4-mapped network needs a prefix of at least /96"
                    ),
                ));
            }
            return Self::new(IpAddr::V4(v4), prefix - 96);
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ConfigError::new(
                "trusted proxy",
                format!("prefix /{prefix} is longer than the {max} bits of {addr}"),
            ));
        }
        let cidr = Self { addr, prefix };
        if !cidr.contains_bits(addr, true) {
            let network = cidr.network();
            return Err(ConfigError::new(
                "trusted proxy",
                format!("{addr}/{prefix} has host bits set; did you mean {network}/{prefix}?"),
            ));
        }
        Ok(cidr)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bits(ip.to_canonical(), false)
    }

    /// With `exact_host_bits`, checks that `ip`'s host bits are all zero.
    fn contains_bits(&self, ip: IpAddr, exact_host_bits: bool) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = if exact_host_bits {
                    u32::MAX
                } else {
                    mask32(self.prefix)
                };
                u32::from(net) & mask32(self.prefix) == u32::from(ip) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = if exact_host_bits {
                    u128::MAX
                } else {
                    mask128(self.prefix)
                };
                u128::from(net) & mask128(self.prefix) == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The network mask of an IPv6 `/prefix` (also used by the limit keys).
pub(super) fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ConfigError::new(
                "trusted proxy",
                format!("{s:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8, fd00::/8)"),
            )
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => {
                // Digits only: `u8::from_str` would also take "+8".
                if prefix.is_empty()
                    || prefix.len() > 3
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad());
                }
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                (addr, prefix.parse::<u8>().map_err(|_| bad())?)
            }
            None => {
                let addr: IpAddr = s.trim().parse().map_err(|_| bad())?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        Self::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client_ip::SetClientIpLayer;
    use crate::test_helpers::ip;

    #[test]
    fn cidr_parsing() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.1.1")), "v4-mapped counts as v4");
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        let c: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(c.to_string(), "192.0.2.7/32");
        assert!(c.contains(ip("192.0.2.7")) && !c.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")) && !all6.contains(ip("8.8.8.8")));
        let mapped: Cidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_cidrs_are_config_errors() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "hello",
            "",
            "::ffff:10.0.0.0/8",
        ] {
            let err = SetClientIpLayer::builder()
                .trust_proxy(bad)
                .build()
                .unwrap_err();
            assert_eq!(err.setting, "trusted proxy", "{bad}");
        }
        let err = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert!(err.reason.contains("did you mean 10.0.0.0/8"), "{err}");
    }
}
