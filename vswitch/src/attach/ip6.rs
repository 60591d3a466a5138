//! IPv6 in `attach`: the address argument may hold an IPv4 and an IPv6
//! address, comma-separated (`10.0.0.2/24@10.0.0.1,2001:db8::2/64@2001:db8::1`),
//! either one alone, or `0/0` for none. The IPv6 address is added without
//! duplicate address detection (the switch knows who has it), after IPv6
//! is turned on for the container's interface.

use super::spec::IpConfig;
use std::fmt;
use std::net::Ipv6Addr;

/// An IPv6 address with its prefix, and optionally a default gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip6Config {
    pub addr: Ipv6Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv6Addr>,
}

fn check_unicast(ip: Ipv6Addr, what: &str, arg: &str) -> Result<(), String> {
    let bad = if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_loopback() {
        Some("the loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    };
    super::spec::unicast_or(bad, what, ip, arg)
}

impl Ip6Config {
    /// Parses `IP6/PREFIX[@GATEWAY6]`.
    pub fn parse(s: &str) -> Result<Ip6Config, String> {
        let (cidr, gw) = match s.split_once('@') {
            Some((c, g)) => (c, Some(g)),
            None => (s, None),
        };
        let (a, p) = cidr.split_once('/').ok_or_else(|| {
            format!("\"{s}\" is not IP6/PREFIX[@GATEWAY] (for example 2001:db8::2/64@2001:db8::1): the /PREFIX is missing")
        })?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("\"{a}\" in \"{s}\" is not an IPv6 address"))?;
        let prefix = p
            .parse::<u8>()
            .ok()
            .filter(|v| (1..=128).contains(v))
            .ok_or_else(|| format!("\"/{p}\" in \"{s}\" is not a prefix length from 1 to 128"))?;
        check_unicast(addr, "address", s)?;
        let gateway = match gw {
            None => None,
            Some(g) => {
                let g: Ipv6Addr = g
                    .parse()
                    .map_err(|_| format!("gateway \"{g}\" in \"{s}\" is not an IPv6 address"))?;
                check_unicast(g, "gateway", s)?;
                if g == addr {
                    return Err(format!(
                        "gateway {g} in \"{s}\" is the container's own address"
                    ));
                }
                Some(g)
            }
        };
        Ok(Ip6Config {
            addr,
            prefix,
            gateway,
        })
    }
}

impl fmt::Display for Ip6Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if let Some(g) = self.gateway {
            write!(f, "@{g}")?;
        }
        Ok(())
    }
}

/// Splits `attach`'s address argument into its IPv4 and IPv6 parts.
pub fn parse_addresses(arg: &str) -> Result<(Option<IpConfig>, Option<Ip6Config>), String> {
    let (mut v4, mut v6) = (None, None);
    let mut seen4 = false;
    for part in arg.split(',') {
        let part = part.trim();
        // An IPv6 address has a ':' before any '/'.
        let is6 = part.split('/').next().is_some_and(|a| a.contains(':'));
        if is6 {
            if v6.is_some() {
                return Err(format!("\"{arg}\" gives two IPv6 addresses; give one"));
            }
            v6 = Some(Ip6Config::parse(part)?);
        } else {
            if seen4 {
                return Err(format!("\"{arg}\" gives two IPv4 addresses; give one"));
            }
            seen4 = true;
            v4 = IpConfig::parse(part)?;
        }
    }
    Ok((v4, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_one_or_none() {
        let (a, b) = parse_addresses("10.0.0.2/24@10.0.0.1,2001:db8::2/64@2001:db8::1").unwrap();
        assert_eq!(a.unwrap().to_string(), "10.0.0.2/24@10.0.0.1");
        assert_eq!(b.unwrap().to_string(), "2001:db8::2/64@2001:db8::1");
        let (a, b) = parse_addresses("2001:db8::2/64").unwrap();
        assert!(a.is_none() && b.unwrap().gateway.is_none());
        let (a, b) = parse_addresses("0/0").unwrap();
        assert!(a.is_none() && b.is_none());
        let (a, b) = parse_addresses("fe80::2/64@fe80::1").unwrap();
        assert!(a.is_none() && b.is_some());
    }

    #[test]
    fn bad_ipv6_says_why() {
        for (arg, needle) in [
            ("2001:db8::2", "/PREFIX is missing"),
            ("2001:db8::2/129", "prefix length"),
            ("2001:zz::2/64", "not an IPv6 address"),
            ("ff02::1/64", "multicast"),
            ("::/64", "unspecified"),
            ("2001:db8::2/64@2001:db8::2", "own address"),
            ("2001:db8::2/64@ff02::2", "multicast"),
            ("2001:db8::2/64,2001:db8::3/64", "two IPv6"),
            ("10.0.0.2/24,10.0.0.3/24", "two IPv4"),
        ] {
            let e = parse_addresses(arg).unwrap_err();
            assert!(e.contains(needle), "{arg}: {e}");
        }
    }
}
