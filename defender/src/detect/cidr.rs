//! CIDR blocks for `in-cidr-set` / `not-in-cidr-set`, parsed once when a
//! behaviour is compiled so evaluation is integer masking only. std has no
//! CIDR type and this is small enough not to justify a dependency.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address block. A bare address is accepted as a single-host block
/// (/32 or /128): the model's `Cidr` pattern allows it and users write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cidr {
    V4 { net: u32, prefix: u8 },
    V6 { net: u128, prefix: u8 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError(pub String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a valid CIDR block", self.0)
    }
}

fn mask32(prefix: u8) -> u32 {
    // `u32::MAX << 32` overflows, so /0 is special-cased.
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let err = || CidrError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                // Digits only: `u8::from_str` would also take "+8".
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                (a, Some(p.parse::<u8>().map_err(|_| err())?))
            }
            None => (s, None),
        };
        // Host bits set below the prefix (12.8.1.0/16) are masked off rather
        // than refused: the block meant is unambiguous.
        match IpAddr::from_str(addr).map_err(|_| err())? {
            IpAddr::V4(a) => {
                let prefix = prefix.unwrap_or(32);
                if prefix > 32 {
                    return Err(err());
                }
                Ok(Cidr::V4 {
                    net: u32::from(a) & mask32(prefix),
                    prefix,
                })
            }
            IpAddr::V6(a) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return Err(err());
                }
                Ok(Cidr::V6 {
                    net: u128::from(a) & mask128(prefix),
                    prefix,
                })
            }
        }
    }
}

impl Cidr {
    /// Whether `ip` is inside the block. An IPv4-mapped IPv6 address
    /// (`::ffff:12.8.1.2`, what a dual-stack listener reports) counts as
    /// its IPv4 address, so one rule covers both listeners.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Cidr::V4 { net, prefix }, IpAddr::V4(a)) => u32::from(a) & mask32(*prefix) == *net,
            (Cidr::V6 { net, prefix }, IpAddr::V6(a)) => u128::from(a) & mask128(*prefix) == *net,
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cidr::V4 { net, prefix } => write!(f, "{}/{}", Ipv4Addr::from(*net), prefix),
            Cidr::V6 { net, prefix } => write!(f, "{}/{}", Ipv6Addr::from(*net), prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn v4_blocks() {
        let c: Cidr = "12.8.0.0/16".parse().expect("valid");
        assert!(c.contains(ip("12.8.1.2")));
        assert!(c.contains(ip("12.8.255.255")));
        assert!(!c.contains(ip("12.9.0.0")));
        assert!(!c.contains(ip("8.8.8.8")));
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn bare_address_is_a_host_block() {
        let c: Cidr = "15.102.16.7".parse().expect("valid");
        assert_eq!(c.to_string(), "15.102.16.7/32");
        assert!(c.contains(ip("15.102.16.7")));
        assert!(!c.contains(ip("15.102.16.8")));
    }

    #[test]
    fn v6_blocks_and_mapped_v4() {
        let c: Cidr = "2001:db8::/32".parse().expect("valid");
        assert!(c.contains(ip("2001:db8::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        let v4: Cidr = "12.8.0.0/16".parse().expect("valid");
        assert!(v4.contains(ip("::ffff:12.8.1.2")));
        let all6: Cidr = "::/0".parse().expect("valid");
        assert!(all6.contains(ip("fe80::1")));
    }

    #[test]
    fn host_bits_are_masked() {
        let c: Cidr = "12.8.1.0/16".parse().expect("valid");
        assert_eq!(c.to_string(), "12.8.0.0/16");
    }

    #[test]
    fn bad_blocks() {
        for s in [
            "",
            "/",
            "12.8.0.0/33",
            "::/129",
            "12.8.0.0/",
            "12.8.0.0/+8",
            "12.8/16",
            "x/8",
            "1.2.3.4/1/2",
        ] {
            assert!(s.parse::<Cidr>().is_err(), "{s} accepted");
        }
    }
}
