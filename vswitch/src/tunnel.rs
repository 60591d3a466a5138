//! VXLAN tunnel ports as configured: OVS's `type=vxlan` with
//! `options:remote_ip`, `key`, `dst_port`, `local_ip`, `ttl`, `tos` and
//! `csum`, checked when a command sets them and when the configuration is
//! loaded; and what the datapath builds from them (the decapsulation stage
//! of each underlay endpoint, the outer headers of each remote).
//!
//! Every VXLAN UDP port in use (4789 by default) has one endpoint: a
//! receive-only port named `vxlan_sys_PORT` (as OVS names its datapath
//! port), outside every bridge, that the runtime opens while some tunnel
//! port uses that UDP port.

use crate::config::{Config, Map};
use pipeline::vxlan::{self, OuterV4};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub const KIND: &str = "vxlan";
/// The runtime's port kind of an underlay endpoint.
pub const ENDPOINT_KIND: &str = "vxlan-endpoint";
pub const OPTIONS: &[&str] = &[
    "remote_ip",
    "key",
    "dst_port",
    "local_ip",
    "ttl",
    "tos",
    "csum",
];

/// The settings of one VXLAN port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub remotes: Vec<Ipv4Addr>,
    pub vni: u32,
    pub dst_port: u16,
    pub local_ip: Option<Ipv4Addr>,
    pub ttl: u8,
    /// None: inherit the inner frame's.
    pub tos: Option<u8>,
    pub csum: bool,
}

/// The endpoint port name for UDP port `port`.
pub fn endpoint_name(port: u16) -> String {
    format!("vxlan_sys_{port}")
}

/// The UDP port of an endpoint named by [`endpoint_name`].
pub fn endpoint_port(name: &str) -> Option<u16> {
    name.strip_prefix("vxlan_sys_")?.parse().ok()
}

fn parse_ip(key: &str, s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s
        .trim()
        .parse()
        .map_err(|_| format!("options:{key} \"{s}\" is not an IPv4 address"))?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(format!(
            "options:{key} {ip} is not a unicast address (multicast underlays are not supported)"
        ));
    }
    Ok(ip)
}

fn parse_remotes(s: &str) -> Result<Vec<Ipv4Addr>, String> {
    if s.trim() == "flow" {
        return Err(
            "options:remote_ip=flow is not supported: give the remotes' addresses (IP1,IP2,...)"
                .into(),
        );
    }
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for part in s.split(',') {
        let ip = parse_ip("remote_ip", part)?;
        if out.contains(&ip) {
            return Err(format!("options:remote_ip lists {ip} twice"));
        }
        out.push(ip);
    }
    Ok(out)
}

fn parse_num<T: std::str::FromStr>(key: &str, s: &str, range: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("options:{key} \"{s}\" is not a number in {range}"))
}

/// Checks one option's value on its own (the command that sets it fails
/// at once with the reason).
pub fn check_option(key: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    match key {
        "remote_ip" => parse_remotes(v).map(|_| ()),
        "local_ip" => parse_ip(key, v).map(|_| ()),
        "key" => {
            if v == "flow" {
                return Err(
                    "options:key=flow is not supported: give the VNI (0 to 16777215)".into(),
                );
            }
            let k: u64 = parse_num(key, v, "0 to 16777215")?;
            if k > vxlan::VNI_MAX as u64 {
                return Err(format!(
                    "options:key {k} is out of range (a VNI is 0 to 16777215)"
                ));
            }
            Ok(())
        }
        "dst_port" => match parse_num::<u16>(key, v, "1 to 65535")? {
            0 => Err("options:dst_port 0 is not a UDP port (1 to 65535)".into()),
            _ => Ok(()),
        },
        "ttl" => match parse_num::<u8>(key, v, "1 to 255")? {
            0 => Err("options:ttl 0 would never arrive (1 to 255)".into()),
            _ => Ok(()),
        },
        "tos" if v == "inherit" => Ok(()),
        "tos" => parse_num::<u8>(key, v, "0 to 255, or inherit").map(|_| ()),
        "csum" if v == "true" || v == "false" => Ok(()),
        "csum" => Err(format!("options:csum \"{v}\" must be true or false")),
        _ => Err(format!("\"{key}\" is not a VXLAN option")),
    }
}

impl VxlanSpec {
    /// The settings in a port's `options`; `remote_ip` is required.
    pub fn from_options(o: &Map) -> Result<VxlanSpec, String> {
        for (k, v) in o {
            if !OPTIONS.contains(&k.as_str()) {
                return Err(format!(
                    "option \"{k}\" does not apply to a vxlan port (known: {})",
                    OPTIONS.join(", ")
                ));
            }
            check_option(k, v)?;
        }
        let get = |k: &str| o.get(k).map(|v| v.trim());
        let remotes = match get("remote_ip") {
            Some(v) => parse_remotes(v)?,
            None => return Err("a vxlan port needs options:remote_ip=IP[,IP...]".into()),
        };
        Ok(VxlanSpec {
            remotes,
            vni: get("key").map_or(Ok(0), |v| parse_num("key", v, ""))?,
            dst_port: get("dst_port")
                .map_or(Ok(vxlan::DEFAULT_PORT), |v| parse_num("dst_port", v, ""))?,
            local_ip: get("local_ip")
                .map(|v| parse_ip("local_ip", v))
                .transpose()?,
            ttl: get("ttl").map_or(Ok(64), |v| parse_num("ttl", v, ""))?,
            tos: match get("tos") {
                None | Some("inherit") => None,
                Some(v) => Some(parse_num("tos", v, "")?),
            },
            csum: get("csum") == Some("true"),
        })
    }

    /// The outer headers toward `remote`, from source `local`.
    pub fn outer(&self, local: Ipv4Addr, remote: Ipv4Addr) -> OuterV4 {
        OuterV4 {
            src: u32::from(local),
            dst: u32::from(remote),
            dst_port: self.dst_port,
            vni: self.vni,
            ttl: self.ttl,
            tos: self.tos,
            df: true,
            csum: self.csum,
        }
    }
}

/// Every VXLAN port of the configuration with its settings, by name.
pub fn vxlan_ports(cfg: &Config) -> BTreeMap<String, Result<VxlanSpec, String>> {
    cfg.bridges
        .values()
        .flat_map(|b| b.ports.iter())
        .filter(|(_, p)| p.kind == KIND)
        .map(|(n, p)| (n.clone(), VxlanSpec::from_options(&p.options)))
        .collect()
}

/// Checks the tunnel ports of a whole configuration: each port's settings,
/// and that no two ports claim the same VNI from the same remote on the
/// same UDP port (a received frame would not know its port).
pub fn validate(cfg: &Config) -> Result<(), String> {
    let mut seen: BTreeMap<(u16, u32, Ipv4Addr), String> = BTreeMap::new();
    for (name, spec) in vxlan_ports(cfg) {
        let spec = spec.map_err(|e| format!("port {name}: {e}"))?;
        for r in &spec.remotes {
            if let Some(other) = seen.insert((spec.dst_port, spec.vni, *r), name.clone()) {
                return Err(format!(
                    "ports {other} and {name} both carry VNI {} from {r} on UDP port {}",
                    spec.vni, spec.dst_port
                ));
            }
        }
    }
    for b in cfg.bridges.values() {
        for (name, p) in &b.ports {
            if p.kind != KIND {
                if let Some(k) = p.options.keys().find(|k| OPTIONS.contains(&k.as_str())) {
                    return Err(format!(
                        "port {name}: options:{k} applies to vxlan ports only (set type=vxlan)"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The UDP ports the configuration's tunnels listen on.
pub fn dst_ports(cfg: &Config) -> Vec<u16> {
    let mut v: Vec<u16> = vxlan_ports(cfg)
        .into_values()
        .filter_map(|s| s.ok().map(|s| s.dst_port))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_ovs_and_the_rfc() {
        let s = VxlanSpec::from_options(&opts(&[("remote_ip", "10.0.0.2")])).unwrap();
        assert_eq!(s.remotes, vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(
            (s.vni, s.dst_port, s.ttl, s.tos, s.csum),
            (0, 4789, 64, None, false)
        );
        let s = VxlanSpec::from_options(&opts(&[
            ("remote_ip", "10.0.0.2,10.0.0.3"),
            ("key", "5000"),
            ("dst_port", "8472"),
            ("ttl", "9"),
            ("tos", "16"),
            ("csum", "true"),
            ("local_ip", "10.0.0.1"),
        ]))
        .unwrap();
        assert_eq!(s.remotes.len(), 2);
        assert_eq!(
            (s.vni, s.dst_port, s.ttl, s.tos, s.csum),
            (5000, 8472, 9, Some(16), true)
        );
        assert_eq!(s.local_ip, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        for (k, v, says) in [
            ("key", "16777216", "out of range"),
            ("key", "flow", "not supported"),
            ("key", "-1", "not a number"),
            ("remote_ip", "10.0.0.300", "not an IPv4"),
            ("remote_ip", "224.0.0.1", "not a unicast"),
            ("remote_ip", "10.0.0.2,10.0.0.2", "twice"),
            ("dst_port", "0", "not a UDP port"),
            ("dst_port", "70000", "not a number"),
            ("ttl", "0", "never arrive"),
            ("tos", "300", "not a number"),
            ("csum", "yes", "true or false"),
        ] {
            let e = check_option(k, v).unwrap_err();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
        let e = VxlanSpec::from_options(&opts(&[("key", "1")])).unwrap_err();
        assert!(e.contains("needs options:remote_ip"), "{e}");
        let e =
            VxlanSpec::from_options(&opts(&[("remote_ip", "10.0.0.2"), ("xdp-mode", "native")]))
                .unwrap_err();
        assert!(e.contains("does not apply"), "{e}");
    }

    #[test]
    fn endpoint_names_round_trip() {
        assert_eq!(endpoint_name(4789), "vxlan_sys_4789");
        assert_eq!(endpoint_port("vxlan_sys_4789"), Some(4789));
        assert_eq!(endpoint_port("veth0"), None);
    }
}
