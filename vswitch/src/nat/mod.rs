//! The control side of routing and NAT: a bridge's gateway
//! (`other_config:gateway`, `other_config:masquerade`), the uplink
//! (`add-uplink`), published ports (`publish`), and the connection
//! tracker's limits (`other_config:ct-*` of the switch), parsed and checked
//! here and turned into the datapath's [`RouterConfig`].
//!
//! The checks run on every transaction and on every load, so a stored
//! configuration can never hold two gateways on one subnet, an uplink that
//! is also a bridge port, or a port published twice.

pub mod commands;
mod show;

use crate::config::{Config, Published, Uplink};
use pipeline::conntrack::{self, Timeouts};
use pipeline::router::{Gateway, Publish, RouterConfig, Subnet, UPLINK_IFACE};
use pipeline::wire::ip_proto;
use std::net::Ipv4Addr;

/// Bridge `other_config` keys.
pub const GATEWAY_KEY: &str = "gateway";
pub const MASQUERADE_KEY: &str = "masquerade";

/// The switch's `other_config` keys for the connection tracker, with their
/// ranges: (key, lowest, highest).
pub const CT_KEYS: &[(&str, u64, u64)] = &[
    ("ct-max-entries", 1, 16_777_216),
    ("ct-tcp-established", 1, 10_000_000),
    ("ct-tcp-transitory", 1, 10_000_000),
    ("ct-udp-unreplied", 1, 10_000_000),
    ("ct-udp-replied", 1, 10_000_000),
    ("ct-icmp", 1, 10_000_000),
];

/// The drop reasons that belong to routing and NAT.
pub const NAT_DROPS: &[pipeline::DropReason] = &[
    pipeline::DropReason::IpMalformed,
    pipeline::DropReason::FragUnknown,
    pipeline::DropReason::CtInvalid,
    pipeline::DropReason::CtFull,
    pipeline::DropReason::NatNoPort,
    pipeline::DropReason::NatUnsupported,
    pipeline::DropReason::IcmpUntracked,
    pipeline::DropReason::NoRoute,
    pipeline::DropReason::TtlExpired,
    pipeline::DropReason::NotForRouter,
];

/// An address with its prefix, `IP/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub ip: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    pub fn parse(s: &str, what: &str) -> Result<Cidr, String> {
        let (ip, len) = s.split_once('/').ok_or_else(|| {
            format!("{what} \"{s}\" is not IP/PREFIX (for example 172.18.0.1/16)")
        })?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{what} \"{s}\": \"{ip}\" is not an IPv4 address"))?;
        let len: u8 = match len.parse() {
            Ok(n) if (1..=30).contains(&n) => n,
            _ => return Err(format!("{what} \"{s}\": the prefix must be from 1 to 30")),
        };
        let c = Cidr { ip, len };
        let ipu = u32::from(ip);
        let net = c.subnet();
        if ip.is_multicast() || ip.is_loopback() || ip.is_unspecified() {
            return Err(format!("{what} \"{s}\": {ip} is not a unicast address"));
        }
        if ipu == net.addr || ipu == net.broadcast() {
            return Err(format!(
                "{what} \"{s}\": {ip} is the subnet's network or broadcast address"
            ));
        }
        Ok(c)
    }

    pub fn subnet(&self) -> Subnet {
        let s = Subnet {
            addr: 0,
            len: self.len,
        };
        Subnet {
            addr: u32::from(self.ip) & s.mask(),
            len: self.len,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.len)
    }
}

fn overlaps(a: &Subnet, b: &Subnet) -> bool {
    let len = a.len.min(b.len);
    let m = Subnet { addr: 0, len }.mask();
    (a.addr ^ b.addr) & m == 0
}

fn fmt_subnet(s: &Subnet) -> String {
    format!("{}/{}", Ipv4Addr::from(s.addr), s.len)
}

/// A bridge's gateway, when it has one.
pub fn gateway(br: &crate::config::Bridge) -> Result<Option<Cidr>, String> {
    br.other_config
        .get(GATEWAY_KEY)
        .map(|g| Cidr::parse(g, "other_config:gateway"))
        .transpose()
}

/// Whether a bridge's containers are masqueraded (Docker's `ip-masq`, on
/// unless `other_config:masquerade=false`).
pub fn masquerade(br: &crate::config::Bridge) -> bool {
    br.other_config.get(MASQUERADE_KEY).map(String::as_str) != Some("false")
}

/// The uplink's address and next hop.
pub fn uplink_addrs(u: &Uplink) -> Result<(Cidr, Ipv4Addr), String> {
    let addr = Cidr::parse(&u.address, "uplink address")?;
    let hop: Ipv4Addr = u
        .nexthop
        .parse()
        .map_err(|_| format!("next hop \"{}\" is not an IPv4 address", u.nexthop))?;
    if !addr.subnet().contains(u32::from(hop)) {
        return Err(format!(
            "next hop {hop} is not in the uplink's subnet {}",
            fmt_subnet(&addr.subnet())
        ));
    }
    if hop == addr.ip {
        return Err(format!("next hop {hop} is the uplink's own address"));
    }
    Ok((addr, hop))
}

/// A published rule's protocol number.
pub fn proto_number(p: &str) -> Result<u8, String> {
    match p {
        "tcp" => Ok(ip_proto::TCP),
        "udp" => Ok(ip_proto::UDP),
        _ => Err(format!("protocol \"{p}\" is not tcp or udp")),
    }
}

/// One switch `other_config` key.
pub fn check_switch_other_config(key: &str, value: &str) -> Result<(), String> {
    let Some(&(_, lo, hi)) = CT_KEYS.iter().find(|(k, _, _)| *k == key) else {
        return Ok(());
    };
    match value.parse::<u64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(()),
        _ => Err(format!(
            "other_config:{key} \"{value}\" must be an integer from {lo} to {hi}"
        )),
    }
}

/// The connection tracker's settings from the switch's `other_config`.
pub fn ct_config(cfg: &Config) -> conntrack::Config {
    let get = |k: &str| cfg.other_config.get(k).and_then(|v| v.parse::<u64>().ok());
    let d = Timeouts::default();
    let secs = |k: &str, dflt: u32| get(k).map_or(dflt, |v| v.min(u32::MAX as u64) as u32);
    conntrack::Config {
        timeouts: Timeouts {
            tcp_established_s: secs("ct-tcp-established", d.tcp_established_s),
            tcp_transitory_s: secs("ct-tcp-transitory", d.tcp_transitory_s),
            udp_unreplied_s: secs("ct-udp-unreplied", d.udp_unreplied_s),
            udp_replied_s: secs("ct-udp-replied", d.udp_replied_s),
            icmp_s: secs("ct-icmp", d.icmp_s),
        },
        max_entries: get("ct-max-entries")
            .map_or(conntrack::Config::default().max_entries, |v| v as usize),
    }
}

/// Checks what holds routing together: gateways on distinct subnets, an
/// uplink off every bridge and subnet, published ports that lead into
/// their bridge's subnet and are published once.
pub fn validate(cfg: &Config) -> Result<(), String> {
    for (k, v) in &cfg.other_config {
        check_switch_other_config(k, v)?;
    }
    let mut nets: Vec<(String, Subnet)> = Vec::new();
    for (b, br) in &cfg.bridges {
        let Some(gw) = gateway(br).map_err(|e| format!("bridge {b}: {e}"))? else {
            if !br.published.is_empty() {
                return Err(format!(
                    "bridge {b} publishes ports but has no gateway (set other_config:gateway)"
                ));
            }
            continue;
        };
        let net = gw.subnet();
        if let Some((other, _)) = nets.iter().find(|(_, n)| overlaps(n, &net)) {
            return Err(format!(
                "the gateway {gw} of bridge {b} overlaps the subnet of bridge {other}'s gateway"
            ));
        }
        nets.push((b.clone(), net));
    }
    let uplink = match &cfg.uplink {
        Some(u) => {
            if let Some(b) = cfg.port_bridge(&u.port) {
                return Err(format!(
                    "{} cannot be the uplink: it is a port of bridge {b}",
                    u.port
                ));
            }
            let (addr, _) = uplink_addrs(u)?;
            if let Some((b, _)) = nets.iter().find(|(_, n)| overlaps(n, &addr.subnet())) {
                return Err(format!(
                    "the uplink's subnet {} overlaps the gateway subnet of bridge {b}",
                    fmt_subnet(&addr.subnet())
                ));
            }
            Some(addr.ip)
        }
        None => None,
    };
    let mut seen: Vec<(u8, Option<Ipv4Addr>, u16, u16, String)> = Vec::new();
    for (b, br) in &cfg.bridges {
        let net = nets.iter().find(|(n, _)| n == b).map(|(_, s)| *s);
        for p in &br.published {
            let rule = check_published(p, net, uplink).map_err(|e| format!("bridge {b}: {e}"))?;
            let ip = rule.ip.map(Ipv4Addr::from);
            let clash = seen.iter().find(|(proto, sip, lo, hi, _)| {
                *proto == rule.proto
                    && (sip.is_none() || ip.is_none() || *sip == ip)
                    && *lo <= p.host_port_end
                    && p.host_port <= *hi
            });
            if let Some((_, _, lo, hi, other)) = clash {
                return Err(format!(
                    "{} port {} is already published (ports {lo}-{hi} on bridge {other})",
                    p.proto, p.host_port
                ));
            }
            seen.push((rule.proto, ip, p.host_port, p.host_port_end, b.clone()));
        }
    }
    Ok(())
}

/// Checks one published rule of a bridge whose gateway subnet is `net`.
fn check_published(
    p: &Published,
    net: Option<Subnet>,
    uplink: Option<Ipv4Addr>,
) -> Result<Publish, String> {
    let proto = proto_number(&p.proto)?;
    if p.host_port == 0 || p.host_port_end < p.host_port {
        return Err(format!(
            "host ports {}-{} are not a range of ports from 1 to 65535",
            p.host_port, p.host_port_end
        ));
    }
    let span = p.host_port_end - p.host_port;
    if p.to_port == 0 || p.to_port.checked_add(span).is_none() {
        return Err(format!(
            "container ports {}-{} are not a range of ports from 1 to 65535",
            p.to_port,
            p.to_port as u32 + span as u32
        ));
    }
    let to: Ipv4Addr =
        p.to.parse()
            .map_err(|_| format!("\"{}\" is not an IPv4 address", p.to))?;
    let Some(net) = net else {
        return Err("the bridge has no gateway".into());
    };
    if !net.contains(u32::from(to)) || u32::from(to) == net.addr || u32::from(to) == net.broadcast()
    {
        return Err(format!(
            "{to} is not a host address of the bridge's subnet {}",
            fmt_subnet(&net)
        ));
    }
    let ip = match &p.ip {
        None => None,
        Some(s) => {
            let ip: Ipv4Addr = s
                .parse()
                .map_err(|_| format!("--ip \"{s}\" is not an IPv4 address"))?;
            if uplink.is_some_and(|u| u != ip) {
                return Err(format!("--ip {ip} is not the uplink's address"));
            }
            Some(u32::from(ip))
        }
    };
    Ok(Publish {
        proto,
        ip,
        first: p.host_port,
        last: p.host_port_end,
        to: u32::from(to),
        to_port: p.to_port,
        zone: 0,
    })
}

/// What the datapath's router needs from a checked configuration; port
/// numbers and bridge indices are filled in by the caller.
pub struct Plan {
    /// (bridge name, gateway, masquerade).
    pub gateways: Vec<(String, Cidr, bool)>,
    /// (uplink port name, address, next hop).
    pub uplink: Option<(String, Cidr, Ipv4Addr)>,
    /// (bridge name, rule).
    pub publish: Vec<(String, Publish)>,
}

impl Plan {
    pub fn new(cfg: &Config) -> Plan {
        let mut plan = Plan {
            gateways: Vec::new(),
            uplink: None,
            publish: Vec::new(),
        };
        plan.uplink = cfg
            .uplink
            .as_ref()
            .and_then(|u| uplink_addrs(u).ok().map(|(a, h)| (u.port.clone(), a, h)));
        let up = plan.uplink.as_ref().map(|u| u.1.ip);
        for (b, br) in &cfg.bridges {
            let Ok(Some(gw)) = gateway(br) else { continue };
            plan.gateways.push((b.clone(), gw, masquerade(br)));
            for p in &br.published {
                if let Ok(rule) = check_published(p, Some(gw.subnet()), up) {
                    plan.publish.push((b.clone(), rule));
                }
            }
        }
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty() && self.uplink.is_none()
    }

    /// The router of one snapshot: `zone` gives a bridge's zone and index
    /// in the snapshot, `uplink_port` the uplink's port number if open.
    pub fn router_config(
        &self,
        zone: impl Fn(&str) -> Option<(u16, usize)>,
        uplink_port: Option<u16>,
    ) -> RouterConfig {
        let mut rc = RouterConfig::default();
        for (b, gw, masq) in &self.gateways {
            let Some((z, idx)) = zone(b) else { continue };
            rc.gateways.push(Gateway {
                zone: z,
                bridge: idx,
                ip: u32::from(gw.ip),
                subnet: gw.subnet(),
                mac: gateway_mac(b),
                masquerade: *masq,
            });
        }
        if let (Some((name, addr, hop)), Some(port)) = (&self.uplink, uplink_port) {
            rc.uplink = Some(pipeline::router::Uplink {
                port,
                ip: u32::from(addr.ip),
                subnet: addr.subnet(),
                mac: uplink_mac(name),
                nexthop: u32::from(*hop),
            });
        }
        for (b, rule) in &self.publish {
            if let Some((z, _)) = zone(b) {
                rc.publish.push(Publish {
                    zone: z,
                    ..rule.clone()
                });
            }
        }
        debug_assert!(rc.gateways.iter().all(|g| g.zone != UPLINK_IFACE));
        rc
    }
}

/// The gateway's MAC on bridge `b`: stable across restarts, so containers'
/// neighbour entries stay right.
pub fn gateway_mac(b: &str) -> [u8; 6] {
    ports::netdev::stable_mac(&format!("{b}/gateway"))
}

/// The router's own MAC on the uplink (not the device's: frames to the
/// device's MAC stay the host's).
pub fn uplink_mac(port: &str) -> [u8; 6] {
    ports::netdev::stable_mac(&format!("{port}/uplink"))
}

#[cfg(test)]
mod tests;
