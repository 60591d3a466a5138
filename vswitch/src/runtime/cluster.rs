//! The running side of the cluster overlay: the configuration applied is
//! the stored one plus the tunnel ports the cluster's state calls for
//! (`crate::cluster::overlay`), then the remote members' static FDB
//! entries and the ARP answers are brought in line with it.

use super::{lock, PortState, Runtime};
use crate::cluster::overlay::{self, Overlay};
use crate::config::Config;
use pipeline::arp_responder::ArpTable;
use pipeline::mac_table::Dest;
use pipeline::PortNo;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Static entries installed on one bridge: MAC to tunnel port and VTEP.
pub(super) type Installed = BTreeMap<[u8; 6], (PortNo, Ipv4Addr)>;

impl Runtime {
    /// Brings the running datapath in line with `cfg` and with the
    /// cluster's state, and tells the cluster agent what to publish.
    pub fn apply(&mut self, cfg: &Config) {
        self.cluster
            .configure(cfg.cluster.as_ref(), crate::cluster::desired(cfg));
        self.cluster_seen = self.cluster.generation();
        let o = overlay::overlay(cfg, &self.cluster.view());
        self.apply_effective(&o.config);
        self.install_overlay(&o);
    }

    /// Applies the cluster's state again if it changed since the last
    /// [`Runtime::apply`] (the control loop calls this often).
    pub fn cluster_tick(&mut self, cfg: &Config) {
        if self.overlay_flushed.swap(false, Relaxed) {
            // `fdb/flush` took the static entries: all of them again.
            self.cluster_fdb.clear();
            self.apply(cfg);
        } else if self.cluster.generation() != self.cluster_seen {
            self.apply(cfg);
        }
    }

    /// The ARP tables and static entries of the overlay.
    fn install_overlay(&mut self, o: &Overlay) {
        let mut republish = false;
        for (name, b) in self.bridges.iter_mut() {
            match (o.bridges.get(name), &b.arp) {
                (Some(_), None) => {
                    b.arp = Some(Arc::new(ArpTable::default()));
                    republish = true;
                }
                (None, Some(_)) => {
                    b.arp = None;
                    republish = true;
                }
                _ => {}
            }
            if let (Some(ob), Some(t)) = (o.bridges.get(name), &b.arp) {
                t.set(ob.arp.clone());
            }
        }
        if republish {
            self.publish();
        }
        let names: Vec<String> = self.bridges.keys().cloned().collect();
        for bname in names {
            let want = self.wanted_fdb(&bname, o);
            let have = self.cluster_fdb.remove(&bname).unwrap_or_default();
            let Some(b) = self.bridges.get(&bname) else {
                continue;
            };
            let mut macs = lock(&b.macs);
            for (mac, _) in have.iter().filter(|(m, v)| want.get(*m) != Some(v)) {
                macs.remove(0, mac);
            }
            let mut full = 0usize;
            for (mac, &(port, vtep)) in want.iter().filter(|(m, v)| have.get(*m) != Some(v)) {
                if !macs.add_static(0, mac, Dest::new(port, u32::from(vtep))) {
                    full += 1;
                }
            }
            drop(macs);
            if full > 0 {
                log::warn!("bridge {bname}: {full} remote members found no room in the MAC table");
            }
            if !want.is_empty() {
                self.cluster_fdb.insert(bname, want);
            }
        }
        self.cluster_fdb.retain(|b, _| self.bridges.contains_key(b));
    }

    /// The static entries `o` wants on `bridge`, through its tunnel port
    /// as now open.
    fn wanted_fdb(&self, bridge: &str, o: &Overlay) -> Installed {
        let Some(ob) = o.bridges.get(bridge) else {
            return Installed::new();
        };
        let Some(p) = self.ports.get(&overlay::tunnel_port(bridge)) else {
            return Installed::new();
        };
        if !matches!(p.state, PortState::Open { .. }) {
            return Installed::new();
        }
        ob.fdb
            .iter()
            .map(|(mac, vtep)| (*mac, (p.port_no, *vtep)))
            .collect()
    }

    /// How many static entries the overlay has installed on `bridge`.
    pub fn overlay_entries(&self, bridge: &str) -> usize {
        self.cluster_fdb.get(bridge).map_or(0, |i| i.len())
    }
}
