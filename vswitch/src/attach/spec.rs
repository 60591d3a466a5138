//! The arguments of `attach` and `detach`, parsed and checked before
//! anything is touched.
//!
//! ```text
//! attach BRIDGE CONTAINER [IP/PREFIX[@GATEWAY]] [--ifname NAME] [--mac MAC] [--tag N] [--mtu N]
//! detach BRIDGE CONTAINER [--ifname NAME]
//! ```
//!
//! Options may be written `--opt value` or `--opt=value`, anywhere after
//! the command name. `0/0` stands for "no address".

use ports::netdev::check_ifname;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// Interface name inside the container when `--ifname` is not given.
pub const DEFAULT_IFNAME: &str = "eth1";
/// Smallest MTU an IPv4 interface may have.
pub const MIN_MTU: u32 = 68;
/// Largest MTU the switch's ports carry (see [`ports::MAX_MTU`]).
pub const MAX_MTU: u32 = ports::MAX_MTU;

pub const ATTACH_USAGE: &str = "attach BRIDGE CONTAINER [IP/PREFIX[@GATEWAY][,IP6/PREFIX[@GATEWAY6]]] [--ifname NAME] [--mac MAC] [--tag VLAN] [--mtu MTU] [--type tap|veth]";
pub const DETACH_USAGE: &str = "detach BRIDGE CONTAINER [--ifname NAME]";

/// An IPv4 address with its prefix, and optionally a default gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpConfig {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

impl IpConfig {
    /// Parses `IP/PREFIX[@GATEWAY]`; `0/0` (or `0.0.0.0/0`) gives None.
    pub fn parse(s: &str) -> Result<Option<IpConfig>, String> {
        let (cidr, gw) = match s.split_once('@') {
            Some((c, g)) => (c, Some(g)),
            None => (s, None),
        };
        if cidr == "0/0" || cidr == "0.0.0.0/0" {
            if gw.is_some() {
                return Err(format!(
                    "\"{s}\": a gateway needs an address; write IP/PREFIX@GATEWAY"
                ));
            }
            return Ok(None);
        }
        let Some((a, p)) = cidr.split_once('/') else {
            return Err(format!(
                "\"{s}\" is not IP/PREFIX[@GATEWAY] (for example 10.0.0.2/24@10.0.0.1): the /PREFIX is missing; use 0/0 for no address"
            ));
        };
        let addr: Ipv4Addr = a.parse().map_err(|_| {
            format!("\"{a}\" in \"{s}\" is not an IPv4 address (only IPv4 is supported)")
        })?;
        let prefix = match p.parse::<u8>() {
            Ok(v) if (1..=32).contains(&v) => v,
            _ => {
                return Err(format!(
                    "\"/{p}\" in \"{s}\" is not a prefix length from 1 to 32"
                ))
            }
        };
        let ip = IpConfig {
            addr,
            prefix,
            gateway: None,
        };
        ip.check_host(addr, "address", s)?;
        let gateway = match gw {
            None => None,
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| format!("gateway \"{g}\" in \"{s}\" is not an IPv4 address"))?;
                if g == addr {
                    return Err(format!(
                        "gateway {g} in \"{s}\" is the container's own address"
                    ));
                }
                if ip.contains(g) {
                    ip.check_host(g, "gateway", s)?;
                } else {
                    check_unicast(g, "gateway", s)?;
                }
                Some(g)
            }
        };
        Ok(Some(IpConfig { gateway, ..ip }))
    }

    pub fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// True when `ip` is on this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// The subnet's broadcast address; None for /31 and /32.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then(|| Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }

    /// `ip` must be a usable host address on this subnet.
    fn check_host(&self, ip: Ipv4Addr, what: &str, arg: &str) -> Result<(), String> {
        check_unicast(ip, what, arg)?;
        if self.prefix <= 30 && ip == self.network() {
            return Err(format!(
                "{what} {ip} in \"{arg}\" is the network address of {}/{}, not a host address",
                self.network(),
                self.prefix
            ));
        }
        if Some(ip) == self.broadcast() {
            return Err(format!(
                "{what} {ip} in \"{arg}\" is the broadcast address of {}/{}, not a host address",
                self.network(),
                self.prefix
            ));
        }
        Ok(())
    }
}

fn check_unicast(ip: Ipv4Addr, what: &str, arg: &str) -> Result<(), String> {
    let bad = if ip.is_unspecified() || ip.octets()[0] == 0 {
        Some("in 0.0.0.0/8")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() || ip.octets()[0] >= 240 {
        Some("a reserved or broadcast address")
    } else {
        None
    };
    unicast_or(bad, what, ip, arg)
}

/// The error for an address that is `bad` (why it is not unicast), if it is.
pub(super) fn unicast_or(
    bad: Option<&str>,
    what: &str,
    ip: impl fmt::Display,
    arg: &str,
) -> Result<(), String> {
    match bad {
        Some(why) => Err(format!(
            "{what} {ip} in \"{arg}\" is {why}; a container needs a unicast address"
        )),
        None => Ok(()),
    }
}

impl fmt::Display for IpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if let Some(g) = self.gateway {
            write!(f, "@{g}")?;
        }
        Ok(())
    }
}

/// Parses a MAC address such as `02:00:00:aa:bb:cc`; it must be unicast.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("\"{s}\" is not a MAC address like 02:00:00:aa:bb:cc");
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "MAC {s} is a multicast address (lowest bit of the first byte set); an interface needs a unicast one"
        ));
    }
    if mac == [0; 6] {
        return Err(format!("MAC {s} is all zeros"));
    }
    Ok(mac)
}

/// Checks an interface name given for the container side.
fn check_container_ifname(name: &str) -> Result<(), String> {
    check_ifname(name).map_err(|e| format!("--ifname: {e}"))
}

/// A container as written on the command line: checked only for what
/// could never name one.
fn check_container(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("CONTAINER is empty".into());
    }
    if c.starts_with('-') {
        return Err(format!(
            "\"{c}\" is not a container: unknown option, or a name starting with '-' (not allowed)"
        ));
    }
    if c.chars().any(|ch| ch.is_control()) {
        return Err(format!("container {c:?} contains a control character"));
    }
    Ok(())
}

/// Everything `attach` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachArgs {
    pub bridge: String,
    pub container: String,
    pub ip: Option<IpConfig>,
    /// An IPv6 address beside (or instead of) the IPv4 one.
    pub ip6: Option<super::ip6::Ip6Config>,
    /// No address argument: on a bridge in an overlay network, the
    /// network gives one (`crate::cluster::ipam`).
    pub auto_ip: bool,
    pub ifname: String,
    pub mac: Option<[u8; 6]>,
    pub tag: Option<u16>,
    pub mtu: Option<u32>,
    /// `--type tap` (`Some(true)`): a TAP device with the virtio-net header
    /// inside the container; `--type veth` (`Some(false)`): a veth pair.
    /// Not given: the switch's `other_config:attach-type`
    /// ([`default_is_tap`]), TAP unless it says veth.
    pub tap: Option<bool>,
    pub may_exist: bool,
}

/// The switch's `other_config` key for the port type of an `attach` that
/// does not give `--type`.
pub const ATTACH_TYPE_KEY: &str = "attach-type";

/// `tap` (true) or `veth` (false), as `--type` or `other_config:attach-type`
/// (`what`) gives it.
pub fn parse_type(what: &str, t: &str) -> Result<bool, String> {
    match t {
        "tap" => Ok(true),
        "veth" => Ok(false),
        _ => Err(format!("{what} \"{t}\" is not tap or veth")),
    }
}

/// Whether an `attach` without `--type` makes a TAP device: yes, unless the
/// switch's `other_config:attach-type` is `veth`. TAP is the default
/// because it carries TCP between containers about 9 times faster (64 KB
/// super-frames whole; BENCHMARKS.md, issue 15).
pub fn default_is_tap(cfg: &crate::config::Config) -> bool {
    cfg.other_config
        .get(ATTACH_TYPE_KEY)
        .is_none_or(|t| parse_type("", t).unwrap_or(true))
}

impl AttachArgs {
    /// Parses the arguments after `attach`.
    pub fn parse(args: &[String], may_exist: bool) -> Result<AttachArgs, String> {
        let (pos, opts, flags) = split(
            "attach",
            args,
            &["ifname", "mac", "tag", "mtu", "type"],
            &["may-exist"],
        )?;
        let (bridge, container, ip) = match pos.as_slice() {
            [b, c, ip] => (b, c, Some(ip)),
            [b, c] => (b, c, None),
            _ => {
                return Err(format!(
                    "'attach' takes 2 or 3 arguments, got {} (usage: {ATTACH_USAGE})",
                    pos.len()
                ))
            }
        };
        let ifname = container_and_ifname(container, &opts)?;
        let mac = opts
            .get("mac")
            .map(|m| parse_mac(m).map_err(|e| format!("--mac: {e}")))
            .transpose()?;
        let tag = opts
            .get("tag")
            .map(|t| match t.parse::<u16>() {
                Ok(v) if v <= 4095 => Ok(v),
                _ => Err(format!(
                    "--tag \"{t}\" is not a VLAN id: expected an integer from 0 to 4095"
                )),
            })
            .transpose()?;
        let mtu = opts
            .get("mtu")
            .map(|m| match m.parse::<u32>() {
                Ok(v) if (MIN_MTU..=MAX_MTU).contains(&v) => Ok(v),
                Ok(v) if v > MAX_MTU => Err(crate::commands::columns::mtu_too_big("--mtu", v)),
                _ => Err(format!(
                    "--mtu \"{m}\" is not an MTU: expected an integer from {MIN_MTU} to {MAX_MTU}"
                )),
            })
            .transpose()?;
        let tap = match opts.get("type").map(String::as_str) {
            None => None,
            Some(t) => Some(parse_type("--type", t)?),
        };
        let (v4, v6) = match ip {
            Some(a) => super::ip6::parse_addresses(a)?,
            None => (None, None),
        };
        Ok(AttachArgs {
            bridge: bridge.clone(),
            container: container.clone(),
            ip: v4,
            ip6: v6,
            auto_ip: ip.is_none(),
            ifname,
            mac,
            tag,
            mtu,
            tap,
            may_exist: may_exist || flags.contains(&"may-exist"),
        })
    }
}

/// What `detach` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachArgs {
    pub bridge: String,
    pub container: String,
    pub ifname: String,
    pub if_exists: bool,
}

impl DetachArgs {
    pub fn parse(args: &[String], if_exists: bool) -> Result<DetachArgs, String> {
        let (pos, opts, flags) = split("detach", args, &["ifname"], &["if-exists"])?;
        let [bridge, container] = pos.as_slice() else {
            return Err(format!(
                "'detach' takes 2 arguments, got {} (usage: {DETACH_USAGE})",
                pos.len()
            ));
        };
        let ifname = container_and_ifname(container, &opts)?;
        Ok(DetachArgs {
            bridge: bridge.clone(),
            container: container.clone(),
            ifname,
            if_exists: if_exists || flags.contains(&"if-exists"),
        })
    }
}

pub(crate) type Split = (Vec<String>, BTreeMap<String, String>, Vec<&'static str>);

/// Checks the container argument and returns the container-side interface
/// name (`--ifname`, default `eth1`), checked too.
fn container_and_ifname(
    container: &str,
    opts: &BTreeMap<String, String>,
) -> Result<String, String> {
    check_container(container)?;
    let ifname = opts
        .get("ifname")
        .cloned()
        .unwrap_or_else(|| DEFAULT_IFNAME.into());
    check_container_ifname(&ifname)?;
    Ok(ifname)
}

/// Separates positional arguments, `--opt value` / `--opt=value` options
/// (each at most once) and bare `--flag`s.
pub(crate) fn split(
    cmd: &str,
    args: &[String],
    with_value: &[&str],
    flags: &[&'static str],
) -> Result<Split, String> {
    let mut pos = Vec::new();
    let mut opts = BTreeMap::new();
    let mut seen = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(opt) = a.strip_prefix("--") else {
            pos.push(a.clone());
            continue;
        };
        let (name, inline) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (opt, None),
        };
        if let Some(f) = flags.iter().find(|f| **f == name) {
            if inline.is_some() {
                return Err(format!("{cmd}: --{name} takes no value"));
            }
            seen.push(*f);
            continue;
        }
        if name == "format" {
            return Err(format!(
                "{cmd}: --format is an option of vswctl itself: write it before the command (vswctl --format json {cmd} ...)"
            ));
        }
        if !with_value.contains(&name) {
            let known: Vec<String> = with_value
                .iter()
                .chain(flags.iter())
                .map(|k| format!("--{k}"))
                .collect();
            return Err(format!(
                "{cmd}: unknown option \"{a}\" (known: {})",
                known.join(", ")
            ));
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{cmd}: option --{name} needs a value"))?,
        };
        if opts.insert(name.to_string(), value).is_some() {
            return Err(format!("{cmd}: option --{name} is given twice"));
        }
    }
    Ok((pos, opts, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn addresses() {
        let ip = IpConfig::parse("10.1.2.3/24@10.1.2.1").unwrap().unwrap();
        assert_eq!(ip.addr, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(ip.prefix, 24);
        assert_eq!(ip.gateway, Some(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(ip.network(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(ip.broadcast(), Some(Ipv4Addr::new(10, 1, 2, 255)));
        assert_eq!(ip.to_string(), "10.1.2.3/24@10.1.2.1");
        assert_eq!(IpConfig::parse("0/0").unwrap(), None);
        assert_eq!(IpConfig::parse("0.0.0.0/0").unwrap(), None);
        let off = IpConfig::parse("10.1.2.3/24@192.168.9.1").unwrap().unwrap();
        assert!(!off.contains(off.gateway.unwrap()));
        let p2p = IpConfig::parse("10.0.0.0/31").unwrap().unwrap();
        assert_eq!(p2p.broadcast(), None);
        assert!(IpConfig::parse("10.0.0.7/32").unwrap().is_some());
    }

    #[test]
    fn bad_addresses_say_why() {
        for (arg, needle) in [
            ("10.1.2.3", "/PREFIX is missing"),
            ("10.1.2.300/24", "not an IPv4 address"),
            ("fd00::1/64", "only IPv4"),
            ("10.1.2.3/33", "prefix length"),
            ("10.1.2.3/0", "prefix length"),
            ("10.1.2.3/x", "prefix length"),
            ("10.1.2.0/24", "network address"),
            ("10.1.2.255/24", "broadcast address"),
            ("127.0.0.2/8", "loopback"),
            ("224.0.0.1/24", "multicast"),
            ("0/0@10.0.0.1", "needs an address"),
            ("10.1.2.3/24@10.1.2.3", "own address"),
            ("10.1.2.3/24@10.1.2.255", "broadcast"),
            ("10.1.2.3/24@nowhere", "not an IPv4 address"),
        ] {
            let e = IpConfig::parse(arg).unwrap_err();
            assert!(e.contains(needle), "{arg}: {e}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:00:0A:bb:0c:dd").unwrap(),
            [2, 0, 10, 0xbb, 12, 0xdd]
        );
        for bad in ["02:00:00:00:00", "02:00:00:00:00:zz", "02:00:00:00:00:000"] {
            assert!(parse_mac(bad).unwrap_err().contains("not a MAC"), "{bad}");
        }
        assert!(parse_mac("01:00:5e:00:00:01")
            .unwrap_err()
            .contains("multicast"));
        assert!(parse_mac("00:00:00:00:00:00").is_err());
    }

    #[test]
    fn attach_arguments() {
        let a = AttachArgs::parse(
            &v("br0 c1 10.0.0.2/24 --ifname=eth2 --mac 02:00:00:00:00:01 --tag 100 --mtu 3000"),
            false,
        )
        .unwrap();
        assert_eq!(a.bridge, "br0");
        assert_eq!(a.container, "c1");
        assert_eq!(a.ifname, "eth2");
        assert_eq!(a.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(a.tag, Some(100));
        assert_eq!(a.mtu, Some(3000));
        assert!(!a.may_exist);
        let a = AttachArgs::parse(&v("--may-exist br0 1234 0/0"), false).unwrap();
        assert_eq!(a.ifname, DEFAULT_IFNAME);
        assert!(a.may_exist && a.ip.is_none() && !a.auto_ip);
        // No address at all: the bridge's overlay network gives one.
        let a = AttachArgs::parse(&v("br0 c1"), false).unwrap();
        assert!(a.ip.is_none() && a.auto_ip);
        assert_eq!(a.tap, None);
        let t = |args| AttachArgs::parse(&v(args), false).unwrap().tap;
        assert_eq!(t("br0 c1 --type tap"), Some(true));
        assert_eq!(t("br0 c1 --type veth"), Some(false));
    }

    #[test]
    fn the_default_type_is_tap_unless_the_switch_says_veth() {
        let mut cfg = crate::config::Config::default();
        assert!(default_is_tap(&cfg));
        cfg.other_config
            .insert(ATTACH_TYPE_KEY.into(), "veth".into());
        assert!(!default_is_tap(&cfg));
        cfg.other_config
            .insert(ATTACH_TYPE_KEY.into(), "tap".into());
        assert!(default_is_tap(&cfg));
    }

    #[test]
    fn bad_attach_arguments_say_why() {
        for (args, needle) in [
            ("br0", "takes 2 or 3 arguments"),
            ("br0 c1 10.0.0.2/24 extra", "takes 2 or 3 arguments"),
            ("br0 c1 10.0.0.2/24 --ifname", "needs a value"),
            (
                "br0 c1 10.0.0.2/24 --ifname averyveryverylongname",
                "at most 15",
            ),
            ("br0 c1 10.0.0.2/24 --ifname a/b", "does not allow"),
            ("br0 c1 10.0.0.2/24 --tag 4096", "not a VLAN id"),
            ("br0 c1 10.0.0.2/24 --mtu 67", "not an MTU"),
            ("br0 c1 10.0.0.2/24 --mac 03:00:00:00:00:01", "multicast"),
            ("br0 c1 10.0.0.2/24 --color red", "unknown option"),
            ("br0 c1 10.0.0.2/24 --tag 1 --tag 2", "given twice"),
            ("br0 c1 10.0.0.2/24 --format json", "before the command"),
            ("br0 -x 10.0.0.2/24", "starting with '-'"),
            ("br0 c1 --type macvlan", "is not tap or veth"),
        ] {
            let e = AttachArgs::parse(&v(args), false).unwrap_err();
            assert!(e.contains(needle), "{args}: {e}");
        }
    }

    #[test]
    fn detach_arguments() {
        let d = DetachArgs::parse(&v("br0 c1 --ifname eth3 --if-exists"), false).unwrap();
        assert_eq!(
            d,
            DetachArgs {
                bridge: "br0".into(),
                container: "c1".into(),
                ifname: "eth3".into(),
                if_exists: true
            }
        );
        assert!(DetachArgs::parse(&v("br0"), false)
            .unwrap_err()
            .contains("takes 2"));
        assert!(
            DetachArgs::parse(&v("br0 c1 --mac 02:00:00:00:00:01"), false)
                .unwrap_err()
                .contains("unknown option")
        );
    }
}
