//! The configuration: a plain value, stored as JSON, changed only by
//! transactions of vswctl commands and diffed against the running datapath.
//!
//! Column names follow Open vSwitch (`tag`, `trunks`, `vlan_mode`,
//! `other_config`, `external_ids`, `options`) so that `ovs-vsctl` users find
//! what they expect. An unknown field is an error, not silently dropped; a
//! stored configuration is checked by [`validate`] before it is used.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod validate;

pub type Map = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bumped on every committed change.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub bridges: BTreeMap<String, Bridge>,
    /// The routed port toward the outside (`add-uplink`), shared by every
    /// bridge with a gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplink: Option<Uplink>,
    /// Switch-wide settings (OVS's `Open_vSwitch` table): the connection
    /// tracker's limit and timeouts (`ct-*`, see `nat::ct_config`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub other_config: Map,
    /// Membership of an etcd cluster whose overlay networks this host
    /// joins (`cluster/join`, see `crate::cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterCfg>,
}

/// `cluster/join` as given: where etcd is and who this host is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterCfg {
    /// `http://IP:PORT` of each etcd member.
    pub endpoints: Vec<String>,
    /// This host's name in the cluster (unique).
    pub host: String,
    /// The VTEP address given with `--vtep-ip`; without it, the source
    /// address of the route toward the first endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep_ip: Option<String>,
    /// Lease TTL in seconds: how long the others keep this host's entries
    /// after it stops renewing them.
    pub ttl: u32,
}

/// A routed port with the switch's own address, MAC and next hop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// The network device.
    pub port: String,
    /// The switch's address on it, `IP/PREFIX`.
    pub address: String,
    /// The next hop toward everything beyond `address`'s subnet.
    pub nexthop: String,
    /// How the device is opened, as a bridge port's `type`.
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofport: Option<u16>,
}

/// A published port range (`vswctl publish`), on the bridge of the
/// container it leads to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// "tcp" or "udp".
    pub proto: String,
    pub host_port: u16,
    /// Last port of the range (the same as `host_port` for one port).
    pub host_port_end: u16,
    /// Only connections to this uplink address (default: the uplink's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub to: String,
    pub to_port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    /// Ports other than the bridge's own internal port.
    #[serde(default)]
    pub ports: BTreeMap<String, Port>,
    #[serde(default)]
    pub other_config: Map,
    #[serde(default)]
    pub external_ids: Map,
    /// Ports published to containers of this bridge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
    /// Port mirrors (`add-mirror`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Port number of the bridge's internal port (stable across restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofport: Option<u16>,
    /// RSTP (`set bridge BR rstp_enable=true`, OVS's column).
    #[serde(default)]
    pub rstp_enable: bool,
}

/// A mirror, with OVS's Mirror columns: which frames (received on the
/// `select_src_port`s, sent to the `select_dst_port`s, in the
/// `select_vlan`s, or all) are copied to `output_port`, or flooded into
/// `output_vlan` (RSPAN).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select_src_port: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select_dst_port: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select_vlan: Vec<u16>,
    #[serde(default)]
    pub select_all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_vlan: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Interface type: "" (system: AF_XDP, falling back to AF_PACKET),
    /// "afxdp", "afpacket", "tap", "internal", "vxlan".
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub tag: Option<u16>,
    #[serde(default)]
    pub trunks: Vec<u16>,
    #[serde(default)]
    pub vlan_mode: Option<String>,
    /// Interface options (`options:xdp-mode=native`).
    #[serde(default)]
    pub options: Map,
    #[serde(default)]
    pub other_config: Map,
    #[serde(default)]
    pub external_ids: Map,
    /// Port number inside the datapath, assigned once and kept across
    /// restarts (OVS's `ofport`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofport: Option<u16>,
    /// The MTU the device is given before the port opens (OVS's
    /// `mtu_request`).
    #[serde(default)]
    pub mtu_request: Option<u32>,
}

pub const PORT_TYPES: &[&str] = &[
    "", "system", "afxdp", "afpacket", "tap", "internal", "vxlan", "patch",
];

/// The bridge settings the datapath uses, parsed from `other_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeSettings {
    pub mac_aging_secs: u32,
    pub mac_table_size: usize,
}

impl Bridge {
    pub fn settings(&self) -> BridgeSettings {
        let get = |k: &str| self.other_config.get(k).and_then(|v| v.parse::<u64>().ok());
        BridgeSettings {
            mac_aging_secs: get("mac-aging-time")
                .map(|v| v as u32)
                .unwrap_or(pipeline::mac_table::DEFAULT_AGING_SECS),
            mac_table_size: get("mac-table-size")
                .map(|v| v as usize)
                .unwrap_or(pipeline::mac_table::DEFAULT_MAX_ENTRIES),
        }
    }
}

impl Port {
    /// This port's own limit on learned MACs (`other_config:mac-limit`);
    /// 0 when unset: no limit beyond the table's.
    pub fn mac_limit(&self) -> usize {
        self.other_config
            .get("mac-limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    }
}

impl Config {
    /// True when `other` configures the same switch (the version aside).
    pub fn same_as(&self, other: &Config) -> bool {
        self.bridges == other.bridges
            && self.uplink == other.uplink
            && self.other_config == other.other_config
            && self.cluster == other.cluster
    }

    /// Gives every port (and bridge internal port) without a number the
    /// lowest free one. Numbers already given never change.
    pub fn assign_ofports(&mut self) {
        let mut used: std::collections::BTreeSet<u16> = self
            .bridges
            .values()
            .flat_map(|b| std::iter::once(b.ofport).chain(b.ports.values().map(|p| p.ofport)))
            .chain(self.uplink.iter().map(|u| u.ofport))
            .flatten()
            .collect();
        // Numbers are only taken, so the lowest free one never goes down:
        // the search goes on from the last one (one pass, not one each).
        let mut next = 1u16;
        let mut take = |slot: &mut Option<u16>| {
            if slot.is_none() {
                while next < u16::MAX && used.contains(&next) {
                    next += 1;
                }
                if next < u16::MAX {
                    used.insert(next);
                    *slot = Some(next);
                }
            }
        };
        for b in self.bridges.values_mut() {
            take(&mut b.ofport);
            for p in b.ports.values_mut() {
                take(&mut p.ofport);
            }
        }
        if let Some(u) = &mut self.uplink {
            take(&mut u.ofport);
        }
    }

    /// The port number of port or internal port `name`.
    pub fn ofport(&self, name: &str) -> Option<u16> {
        if let Some(u) = self.uplink.as_ref().filter(|u| u.port == name) {
            return u.ofport;
        }
        self.bridges.iter().find_map(|(b, br)| {
            if b == name {
                br.ofport
            } else {
                br.ports.get(name).and_then(|p| p.ofport)
            }
        })
    }

    /// The port named `name`, in whichever bridge has it.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.bridges.values().find_map(|b| b.ports.get(name))
    }

    /// The bridge that has port (or internal port) `name`.
    pub fn port_bridge(&self, name: &str) -> Option<&str> {
        self.bridges
            .iter()
            .find(|(b, br)| b.as_str() == name || br.ports.contains_key(name))
            .map(|(b, _)| b.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_defaults() {
        let mut c = Config::default();
        let mut b = Bridge::default();
        b.ports.insert(
            "p1".into(),
            Port {
                tag: Some(100),
                ..Default::default()
            },
        );
        c.bridges.insert("br0".into(), b);
        let s = serde_json::to_string(&c).unwrap();
        let back: Config = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
        let minimal: Config = serde_json::from_str(r#"{"bridges":{"b":{}}}"#).unwrap();
        assert_eq!(minimal.bridges["b"].settings().mac_table_size, 8192);
        assert_eq!(minimal.port_bridge("b"), Some("b"));
    }

    #[test]
    fn ofports_are_assigned_once_and_reused_when_freed() {
        let mut c: Config =
            serde_json::from_str(r#"{"bridges":{"a":{"ports":{"p":{},"q":{}}}}}"#).unwrap();
        c.assign_ofports();
        assert_eq!(
            (c.ofport("a"), c.ofport("p"), c.ofport("q")),
            (Some(1), Some(2), Some(3))
        );
        c.bridges.get_mut("a").unwrap().ports.remove("p");
        c.bridges
            .get_mut("a")
            .unwrap()
            .ports
            .insert("r".into(), Port::default());
        c.assign_ofports();
        assert_eq!((c.ofport("q"), c.ofport("r")), (Some(3), Some(2)));
    }
}
