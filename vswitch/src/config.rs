//! The configuration: a plain value, stored as JSON, changed only by
//! transactions of vswctl commands and diffed against the running datapath.
//!
//! Column names follow Open vSwitch (`tag`, `trunks`, `vlan_mode`,
//! `other_config`, `external_ids`, `options`) so that `ovs-vsctl` users find
//! what they expect.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Map = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Bumped on every committed change.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub bridges: BTreeMap<String, Bridge>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// Ports other than the bridge's own internal port.
    #[serde(default)]
    pub ports: BTreeMap<String, Port>,
    #[serde(default)]
    pub other_config: Map,
    #[serde(default)]
    pub external_ids: Map,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// Interface type: "" (system: AF_XDP, falling back to AF_PACKET),
    /// "afxdp", "afpacket", "tap", "internal".
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
}

pub const PORT_TYPES: &[&str] = &["", "system", "afxdp", "afpacket", "tap", "internal"];

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

impl Config {
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
}
