//! The runtime side of the lab tools and of storm control: captures in
//! the snapshot, egress impairment wrapped around a port's transmit half,
//! per-port flood limits, mirrors and patch peers resolved to port numbers.

use super::*;
use crate::capture::{Filter, Record, Tap};
use crate::datapath::mirror::{MirrorOut, MirrorRt};
use crossbeam_channel::Receiver;
use ports::impair::{ImpairHandle, ImpairedTx, Impairment};

/// The `type` of a patch port.
pub const PATCH_KIND: &str = "patch";

impl Runtime {
    /// Gives each port its storm-control rate (`other_config:flood-limit`),
    /// at once.
    pub(super) fn apply_flood_limits(&mut self, cfg: &Config) {
        for (name, p) in self.ports.iter_mut() {
            p.flood_pps = cfg
                .port(name)
                .and_then(|port| port.other_config.get("flood-limit"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(FLOOD_DEFAULT);
            if let PortState::Open { dp, .. } = &p.state {
                dp.flood_limit.set(p.flood_pps);
            }
        }
    }

    /// Gives each port the egress impairment its options ask for, at
    /// once: a port impaired for the first time gets its transmit half
    /// wrapped; one already wrapped just gets the new settings.
    pub(super) fn apply_impairments(&mut self, cfg: &Config) {
        for (name, p) in self.ports.iter_mut() {
            let wanted = cfg
                .port(name)
                .and_then(|port| Impairment::from_options(&port.options).ok().flatten());
            match (&p.impair, wanted) {
                (Some(h), w) => h.set(w.unwrap_or_default()),
                (None, None) => {}
                (None, Some(w)) => {
                    let h = ImpairHandle::new(w);
                    if let PortState::Open { dp, .. } = &p.state {
                        wrap_impaired(dp, &h);
                    }
                    p.impair = Some(h);
                }
            }
        }
    }

    /// Starts a capture on `ports`: from the next snapshot on, their
    /// frames are copied to the returned queue.
    pub fn add_capture(
        &mut self,
        ports: Vec<String>,
        filter: Filter,
    ) -> (Arc<Tap>, Receiver<Record>) {
        let id = self.next_capture;
        self.next_capture += 1;
        let (tap, rx) = Tap::new(id, ports, filter);
        self.captures.push(tap.clone());
        self.publish();
        (tap, rx)
    }

    /// Takes the captures that ended out of the datapath.
    pub fn reap_captures(&mut self) {
        let before = self.captures.len();
        self.captures.retain(|t| t.is_active());
        if self.captures.len() != before {
            self.publish();
        }
    }

    /// A port's impairment counters, if it was ever impaired.
    pub fn impair_stats(&self, port: &str) -> Option<ports::impair::ImpairStats> {
        self.ports.get(port)?.impair.as_ref().map(|h| h.stats())
    }

    /// The mirrors of bridge `br` with port numbers.
    pub(super) fn mirrors_of(&self, br: &str) -> Vec<MirrorRt> {
        let no = |n: &String| self.ports.get(n).map(|p| p.port_no);
        self.bridges[br]
            .mirrors
            .values()
            .filter_map(|(m, counters)| {
                let out = match (&m.output_port, m.output_vlan) {
                    (Some(p), _) => MirrorOut::Port(no(p)?),
                    (None, Some(v)) => MirrorOut::Vlan(v),
                    (None, None) => return None,
                };
                Some(MirrorRt {
                    src: m.select_src_port.iter().filter_map(no).collect(),
                    dst: m.select_dst_port.iter().filter_map(no).collect(),
                    vlans: m.select_vlan.clone(),
                    all: m.select_all,
                    out,
                    counters: counters.clone(),
                })
            })
            .collect()
    }

    pub(super) fn is_mirror_output(&self, br: &str, port: &str) -> bool {
        self.bridges.get(br).is_some_and(|b| {
            b.mirrors
                .values()
                .any(|(m, _)| m.output_port.as_deref() == Some(port))
        })
    }

    /// Copies a mirror has sent: (packets, bytes).
    pub fn mirror_counters(&self, br: &str, name: &str) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bridges
            .get(br)
            .and_then(|b| b.mirrors.get(name))
            .map_or((0, 0), |(_, c)| {
                (c.packets.load(Relaxed), c.bytes.load(Relaxed))
            })
    }

    /// The port number of `p`'s patch peer (frames to a patch port whose
    /// peer is not there yet are lost, as in OVS).
    pub(super) fn patch_peer_of(&self, p: &PortRt) -> Option<PortNo> {
        let peer = self.ports.get(p.spec.peer.as_deref()?)?;
        matches!(peer.state, PortState::Open { .. }).then_some(peer.port_no)
    }
}

/// Puts `dp`'s transmit half inside an impairment wrapper.
fn wrap_impaired(dp: &DpPort, h: &Arc<ImpairHandle>) {
    let mut tx = lock(&dp.tx);
    let inner = std::mem::replace(&mut *tx, Box::new(ports::memory::SinkTx::default()));
    *tx = Box::new(ImpairedTx::new(inner, h.clone()));
}
