//! Mirrors in the datapath (configuration: `crate::mirror`). A bridge with
//! mirrors carries them in its snapshot entry; the forwarder copies the
//! selected frames of each run before they leave (a unicast frame's buffer
//! may be handed to its output port afterwards). A bridge without mirrors
//! pays one emptiness check per run.

use super::{PortRef, Snapshot};
use pipeline::stage::{Ctx, Stage};
use pipeline::vlan::Egress;
use pipeline::wire::vlan::OFFSET as TAG_OFFSET;
use pipeline::{DropReason, Packet, PortNo, Verdict};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

/// Copies sent by one mirror.
#[derive(Default)]
pub struct MirrorCounters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

pub enum MirrorOut {
    Port(PortNo),
    /// RSPAN: flooded into this VLAN, tagged with it.
    Vlan(u16),
}

pub struct MirrorRt {
    pub src: Vec<PortNo>,
    pub dst: Vec<PortNo>,
    pub vlans: Vec<u16>,
    pub all: bool,
    pub out: MirrorOut,
    pub counters: Arc<MirrorCounters>,
}

impl MirrorRt {
    /// Whether the frame `pkt`, received on `in_port` and decided `v`,
    /// is selected. `flood_to` are the bridge's ports (for a flood).
    fn selects(&self, pkt: &Packet, in_port: PortNo, v: Verdict, flood_to: &[PortNo]) -> bool {
        if self.all || self.src.contains(&in_port) || self.vlans.contains(&pkt.meta.vlan) {
            return true;
        }
        match v {
            Verdict::Output(p) => self.dst.contains(&p),
            Verdict::Flood => self
                .dst
                .iter()
                .any(|d| *d != in_port && flood_to.contains(d)),
            _ => false,
        }
    }
}

/// The ingress chain of a mirror output port: everything it receives is
/// dropped (it forwards nothing of its own).
pub struct MirrorOutputIngress;

impl Stage for MirrorOutputIngress {
    fn name(&self) -> &'static str {
        "mirror-output"
    }

    fn process(&self, _: &Ctx, _: &mut [Packet], verdicts: &mut [Verdict]) {
        for v in verdicts.iter_mut().filter(|v| **v == Verdict::Continue) {
            *v = Verdict::Drop(DropReason::MirrorOutput);
        }
    }
}

/// Sends copies of the frames of `pkts` (decided `verdicts`, received on
/// `port` of a bridge with `mirrors`) that each mirror selects.
pub fn copy_selected(
    snap: &Snapshot,
    mirrors: &[MirrorRt],
    flood_to: &[PortNo],
    port: &PortRef,
    pkts: &[Packet],
    verdicts: &[Verdict],
) {
    for m in mirrors {
        for (pkt, &v) in pkts.iter().zip(verdicts) {
            if !matches!(v, Verdict::Output(_) | Verdict::Flood)
                || !m.selects(pkt, port.port_no, v, flood_to)
            {
                continue;
            }
            match m.out {
                MirrorOut::Port(o) => {
                    let Some(out) = snap.port(o) else { continue };
                    // As on a trunk: the frame's VLAN as a tag.
                    let tag = (pkt.meta.vlan != 0).then_some(pipeline::wire::eth::TYPE_VLAN);
                    if send_copy(out, pkt, tag) {
                        m.counters.packets.fetch_add(1, Ordering::Relaxed);
                        m.counters
                            .bytes
                            .fetch_add(pkt.len() as u64, Ordering::Relaxed);
                    }
                }
                MirrorOut::Vlan(vid) => {
                    for &t in flood_to.iter().filter(|&&t| t != port.port_no) {
                        let Some(out) = snap.port(t) else { continue };
                        let tag = match out.vlan.egress(vid, 0) {
                            Egress::No => continue,
                            Egress::Untagged => None,
                            Egress::Tagged(tpid) => Some(tpid),
                        };
                        if send_copy_vid(out, pkt, tag, vid) {
                            m.counters.packets.fetch_add(1, Ordering::Relaxed);
                            m.counters
                                .bytes
                                .fetch_add(pkt.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}

fn send_copy(out: &PortRef, pkt: &Packet, tag: Option<u16>) -> bool {
    send_copy_vid(out, pkt, tag, pkt.meta.vlan)
}

/// Sends a copy of `pkt` by `out`, tagged with `vid` when `tag` is set.
fn send_copy_vid(out: &PortRef, pkt: &Packet, tag: Option<u16>, vid: u16) -> bool {
    let f = pkt.data();
    let mut tx = out.tx.lock().unwrap_or_else(PoisonError::into_inner);
    let mut send = |f: &[u8]| match tag {
        None => tx.send(f),
        Some(tpid) => {
            let tci = pipeline::wire::vlan::tci(pkt.meta.pcp, vid);
            let (t, c) = (tpid.to_be_bytes(), tci.to_be_bytes());
            let tag = [t[0], t[1], c[0], c[1]];
            let at = TAG_OFFSET.min(f.len());
            tx.send_parts(&[&f[..at], &tag, &f[at..]])
        }
    };
    let ok = match pkt.gso() {
        0 => send(f),
        // A super-frame held whole is mirrored as its segments.
        _ => super::gso::each_segment(pkt, send).1 == 0,
    };
    tx.flush();
    drop(tx);
    if ok {
        out.stats.add_tx_locked(1, f.len() as u64);
    } else {
        out.stats.add_drop(DropReason::TxFull, 1);
    }
    ok
}
