//! What the cluster's state means for this host's datapath: for each
//! bridge in a network, a VXLAN port toward the hosts with members in it,
//! static FDB entries for the remote members, and the ARP answers.
//!
//! The tunnel port is not part of the stored configuration: it is added to
//! the configuration the runtime applies ([`Overlay::config`]) and changes
//! whenever the cluster does, so `del-port` cannot take it and a restart
//! rebuilds it from etcd.

use super::bridge_network;
use super::view::View;
use crate::config::{Config, Port};
use pipeline::arp_responder::Answers;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Entries of the MAC table kept free for learning, above the remote
/// members' static entries.
const LEARNING_ROOM: usize = 2048;

/// The name of the tunnel port the switch manages on `bridge`.
pub fn tunnel_port(bridge: &str) -> String {
    format!("{bridge}-ovl")
}

/// One bridge's part of the overlay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BridgeOverlay {
    pub network: String,
    pub vni: u32,
    /// The VTEPs of the other hosts with members in the network.
    pub remotes: Vec<Ipv4Addr>,
    /// Remote members' MACs and their host's VTEP.
    pub fdb: BTreeMap<[u8; 6], Ipv4Addr>,
    /// Every member's address (this host's too).
    pub arp: Answers,
}

#[derive(Debug, Default, Clone)]
pub struct Overlay {
    /// The configuration to apply: the stored one plus the tunnel ports.
    pub config: Config,
    /// By bridge, for every bridge in a network while joined.
    pub bridges: BTreeMap<String, BridgeOverlay>,
}

/// The overlay of `cfg` given the cluster's state `view`.
pub fn overlay(cfg: &Config, view: &View) -> Overlay {
    let mut out = Overlay {
        config: cfg.clone(),
        bridges: BTreeMap::new(),
    };
    let Some(me) = cfg.cluster.as_ref().map(|c| c.host.as_str()) else {
        return out;
    };
    let hosts = view.hosts();
    for (bname, b) in &cfg.bridges {
        let Some(net) = bridge_network(b) else {
            continue;
        };
        let mut o = BridgeOverlay {
            network: net.to_string(),
            ..BridgeOverlay::default()
        };
        let Some(n) = view.network(net) else {
            out.bridges.insert(bname.clone(), o);
            continue;
        };
        o.vni = n.vni;
        for m in view.members(net) {
            o.arp.insert(u32::from(m.ip), m.mac);
            if m.host == me {
                continue;
            }
            // A member whose host has no live key is on its way out.
            let Some(&vtep) = hosts.get(m.host) else {
                continue;
            };
            o.fdb.insert(m.mac, vtep);
            if !o.remotes.contains(&vtep) {
                o.remotes.push(vtep);
            }
        }
        o.remotes.sort();
        if !o.remotes.is_empty() {
            add_tunnel_port(&mut out.config, bname, &o, cfg);
        }
        out.bridges.insert(bname.clone(), o);
    }
    out
}

fn add_tunnel_port(eff: &mut Config, bname: &str, o: &BridgeOverlay, cfg: &Config) {
    let name = tunnel_port(bname);
    let Some(b) = eff.bridges.get_mut(bname) else {
        return;
    };
    if b.ports.contains_key(&name) {
        log::warn!(
            "bridge {bname}: a port named {name} exists; the overlay tunnel cannot use that name"
        );
        return;
    }
    let remotes: Vec<String> = o.remotes.iter().map(|r| r.to_string()).collect();
    let mut port = Port {
        kind: crate::tunnel::KIND.into(),
        ..Port::default()
    };
    port.options.insert("remote_ip".into(), remotes.join(","));
    port.options.insert("key".into(), o.vni.to_string());
    if let Some(v) = cfg.cluster.as_ref().and_then(|c| c.vtep_ip.clone()) {
        port.options.insert("local_ip".into(), v);
    }
    b.ports.insert(name, port);
    // Room for every remote member's static entry and for learning.
    let want = o.fdb.len() + LEARNING_ROOM;
    if b.settings().mac_table_size < want {
        b.other_config
            .insert("mac-table-size".into(), want.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::test_kv as kv;
    use crate::config::{Bridge, ClusterCfg};

    fn cfg() -> Config {
        let mut c = Config {
            cluster: Some(ClusterCfg {
                endpoints: vec!["http://127.0.0.1:2379".into()],
                host: "a".into(),
                vtep_ip: None,
                ttl: 10,
            }),
            ..Config::default()
        };
        let mut b = Bridge::default();
        b.other_config.insert("network".into(), "red".into());
        c.bridges.insert("br0".into(), b);
        c.bridges.insert("plain".into(), Bridge::default());
        c
    }

    #[test]
    fn remote_members_become_a_tunnel_fdb_entries_and_arp_answers() {
        let v = View::from_list(
            vec![
                kv("hosts/a", r#"{"vtep":"192.168.0.1"}"#),
                kv("hosts/b", r#"{"vtep":"192.168.0.2"}"#),
                kv("hosts/c", r#"{"vtep":"192.168.0.3"}"#),
                kv("networks/red", r#"{"vni":10,"subnet":"10.1.0.0/24"}"#),
                kv("members/red/a/02:00:00:00:00:01", r#"{"ip":"10.1.0.2"}"#),
                kv("members/red/b/02:00:00:00:00:02", r#"{"ip":"10.1.0.3"}"#),
                // Host d's lease is gone: its member is ignored.
                kv("members/red/d/02:00:00:00:00:04", r#"{"ip":"10.1.0.5"}"#),
                kv("members/blue/c/02:00:00:00:00:03", r#"{"ip":"10.2.0.2"}"#),
            ],
            5,
        );
        let o = overlay(&cfg(), &v);
        let br = &o.bridges["br0"];
        assert_eq!(br.remotes, ["192.168.0.2".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(br.fdb.len(), 1);
        assert_eq!(br.arp.len(), 3);
        let port = &o.config.bridges["br0"].ports["br0-ovl"];
        assert_eq!(port.options["remote_ip"], "192.168.0.2");
        assert_eq!(port.options["key"], "10");
        assert!(!o.bridges.contains_key("plain"));
        assert!(o.config.bridges["plain"].ports.is_empty());
    }

    #[test]
    fn no_remote_members_no_tunnel_and_no_cluster_nothing() {
        let v = View::from_list(
            vec![
                kv("hosts/a", r#"{"vtep":"192.168.0.1"}"#),
                kv("networks/red", r#"{"vni":10,"subnet":"10.1.0.0/24"}"#),
                kv("members/red/a/02:00:00:00:00:01", r#"{"ip":"10.1.0.2"}"#),
            ],
            5,
        );
        let o = overlay(&cfg(), &v);
        assert!(o.config.bridges["br0"].ports.is_empty());
        assert_eq!(o.bridges["br0"].arp.len(), 1);
        let mut c = cfg();
        c.cluster = None;
        assert!(overlay(&c, &v).bridges.is_empty());
    }
}
