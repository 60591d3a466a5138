//! The running side of RSTP (`set bridge BR rstp_enable=true`): each such
//! bridge has a [`crate::rstp::Rstp`] driven by the control thread, and an
//! inbox its ports' [`StpGate`] stages fill with BPDUs.
//!
//! Every control-loop round ([`Runtime::rstp_tick`]) reads the BPDUs,
//! moves the state machines on and sends what they say through the ports'
//! transmit halves. A port that changes state makes a new snapshot (its
//! gate and the flood list follow the state); a topology change flushes
//! the bridge's MAC table.
//!
//! Tunnel, patch and mirror-output ports take no part: they are left
//! forwarding, as OVS leaves ports with `rstp-enable=false`.

use super::{PortState, Runtime};
use crate::config::{Bridge, Config, Port};
use crate::rstp::{self, bpdu, BridgeCfg, PortCfg, Rstp, State};
use pipeline::stp::{BpduInbox, StpGate};
use pipeline::PortNo;
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

pub(super) struct RstpRt {
    pub st: Rstp,
    pub inbox: Arc<BpduInbox>,
    /// The ports' settings, by name, from the configuration last applied.
    port_cfgs: BTreeMap<String, PortCfg>,
}

/// One line of `rstp/show` for a port.
pub struct PortRstpView {
    pub name: String,
    pub port_no: PortNo,
    pub port: rstp::Port,
}

/// `rstp/show` for a bridge.
pub struct RstpView {
    pub bridge: String,
    pub id: u64,
    pub root: u64,
    pub root_cost: u32,
    pub root_port: Option<String>,
    pub cfg: BridgeCfg,
    pub times: bpdu::Times,
    pub ports: Vec<PortRstpView>,
}

fn num<T: std::str::FromStr>(m: &crate::config::Map, key: &str, default: T) -> T {
    m.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn flag(m: &crate::config::Map, key: &str, default: bool) -> bool {
    m.get(key).map_or(default, |v| v == "true")
}

/// The bridge's RSTP settings from its `other_config`.
pub fn bridge_cfg(name: &str, br: &Bridge) -> BridgeCfg {
    let oc = &br.other_config;
    let mac = oc
        .get("rstp-address")
        .and_then(|a| crate::trace::flow::parse_mac(a))
        .or_else(|| ports::netdev::mac(name).ok())
        .unwrap_or_else(|| ports::netdev::stable_mac(&format!("rstp {name}")));
    BridgeCfg {
        priority: num(oc, "rstp-priority", 32768),
        mac,
        hello: num(oc, "rstp-hello-time", 2),
        max_age: num(oc, "rstp-max-age", 20),
        forward_delay: num(oc, "rstp-forward-delay", 15),
    }
}

/// A port's RSTP settings from its `other_config`.
pub fn port_cfg(p: Option<&Port>) -> PortCfg {
    let d = PortCfg::default();
    let Some(p) = p else { return d };
    let oc = &p.other_config;
    PortCfg {
        enabled: flag(oc, "rstp-enable", d.enabled),
        priority: num(oc, "rstp-port-priority", d.priority),
        cost: num(oc, "rstp-path-cost", d.cost),
        admin_edge: flag(oc, "rstp-port-admin-edge", d.admin_edge),
        auto_edge: flag(oc, "rstp-port-auto-edge", d.auto_edge),
    }
}

impl Runtime {
    /// Starts, updates or stops each bridge's RSTP as `cfg` says.
    pub(super) fn configure_rstp(&mut self, cfg: &Config) {
        for (name, br) in &cfg.bridges {
            let Some(rt) = self.bridges.get_mut(name) else {
                continue;
            };
            if !br.rstp_enable {
                rt.rstp = None;
                continue;
            }
            let bcfg = bridge_cfg(name, br);
            let r = rt.rstp.get_or_insert_with(|| RstpRt {
                st: Rstp::new(bcfg),
                inbox: Arc::default(),
                port_cfgs: BTreeMap::new(),
            });
            r.st.set_cfg(bcfg);
            r.port_cfgs = br
                .ports
                .iter()
                .map(|(n, p)| (n.clone(), port_cfg(Some(p))))
                .collect();
            r.port_cfgs.insert(name.clone(), port_cfg(None));
        }
    }

    /// Gives each RSTP the ports of its bridge that are open now (before
    /// every snapshot: ports open and close between configurations).
    pub(super) fn sync_rstp_ports(&mut self) {
        let now = self.clock.now_ms();
        let names: Vec<String> = self
            .bridges
            .iter()
            .filter(|(_, b)| b.rstp.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let ports: Vec<(PortNo, String)> = self
                .ports
                .iter()
                .filter(|(n, p)| {
                    p.spec.bridge == name
                        && matches!(p.state, PortState::Open { .. })
                        && p.tunnel.is_none()
                        && p.spec.peer.is_none()
                        && !self.is_mirror_output(&name, n)
                })
                .map(|(n, p)| (p.port_no, n.clone()))
                .collect();
            if let Some(r) = self.bridges.get_mut(&name).and_then(|b| b.rstp.as_mut()) {
                let list: Vec<(PortNo, PortCfg)> = ports
                    .into_iter()
                    .map(|(no, n)| (no, r.port_cfgs.get(&n).copied().unwrap_or_default()))
                    .collect();
                r.st.set_ports(&list, now);
            }
        }
    }

    /// The gate for port `no` of bridge `bridge`, and whether the port
    /// floods (is forwarding); `None` without RSTP.
    pub(super) fn rstp_gate(&self, bridge: &str, no: PortNo) -> Option<(Arc<StpGate>, bool)> {
        let r = self.bridges.get(bridge)?.rstp.as_ref()?;
        let forwarding =
            r.st.ports
                .get(&no)
                .is_none_or(|p| p.state == State::Forwarding);
        Some((
            Arc::new(StpGate {
                inbox: r.inbox.clone(),
                forwarding,
            }),
            forwarding,
        ))
    }

    /// One round of RSTP on every bridge that runs it (the control loop
    /// calls this every round, at least every 250 ms).
    pub fn rstp_tick(&mut self) {
        let now = self.clock.now_ms();
        let mut republish = false;
        let mut flush = Vec::new();
        let mut sends: Vec<(PortNo, Vec<u8>)> = Vec::new();
        for (name, b) in self.bridges.iter_mut() {
            let Some(r) = b.rstp.as_mut() else { continue };
            for (port, frame) in r.inbox.take() {
                if let Some(bpdu) = bpdu::parse(&frame) {
                    r.st.receive(port, &bpdu, now);
                }
            }
            let a = r.st.tick(now);
            let mac = r.st.cfg().mac;
            sends.extend(a.send.iter().map(|(p, b)| (*p, bpdu::build(mac, b))));
            republish |= a.states_changed;
            if a.flush {
                flush.push(name.clone());
            }
        }
        if republish {
            self.publish();
        }
        for b in flush {
            self.fdb_flush(Some(&b));
        }
        if let Some(snap) = &self.last_snap {
            for (port, frame) in sends {
                let Some(out) = snap.port(port) else { continue };
                let mut tx = out.tx.lock().unwrap_or_else(PoisonError::into_inner);
                if tx.send(&frame) {
                    out.stats.add_tx_locked(1, frame.len() as u64);
                }
                tx.flush();
            }
        }
    }

    /// RSTP's view of `bridge` (or of every bridge running it).
    pub fn rstp_show(&self, bridge: Option<&str>) -> Vec<RstpView> {
        let name_of = |no: PortNo| {
            self.ports
                .iter()
                .find(|(_, p)| p.port_no == no)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| no.to_string())
        };
        self.bridges
            .iter()
            .filter(|(n, _)| bridge.is_none_or(|b| b == n.as_str()))
            .filter_map(|(n, b)| {
                let r = b.rstp.as_ref()?;
                let (root, root_cost, root_port) = r.st.root();
                Some(RstpView {
                    bridge: n.clone(),
                    id: r.st.id(),
                    root,
                    root_cost,
                    root_port: root_port.map(name_of),
                    cfg: *r.st.cfg(),
                    times: r.st.root_times(),
                    ports: r
                        .st
                        .ports
                        .iter()
                        .map(|(no, p)| PortRstpView {
                            name: name_of(*no),
                            port_no: *no,
                            port: p.clone(),
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// True when `bridge` runs RSTP.
    pub fn rstp_enabled(&self, bridge: &str) -> bool {
        self.bridges.get(bridge).is_some_and(|b| b.rstp.is_some())
    }
}
