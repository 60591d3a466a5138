//! Forwarding one received batch: run the stages, group the packets by
//! output port (VPP's `nexts[]`), then hand each group to its port's
//! transmit half, locking each output port once per batch.

use super::{cycles, PortRef, Snapshot};
use pipeline::l2::{self, Ingress};
use pipeline::vlan::{self, Egress};
use pipeline::{Batch, DropReason, PortNo, Verdict, BATCH_SIZE};
use std::sync::PoisonError;

/// Packet indices of one batch bound for one output port.
#[derive(Clone, Copy)]
struct Group {
    port: PortNo,
    len: u8,
    idx: [u8; BATCH_SIZE],
}

impl Group {
    const EMPTY: Group = Group {
        port: 0,
        len: 0,
        idx: [0; BATCH_SIZE],
    };

    #[inline]
    fn members(&self) -> &[u8] {
        &self.idx[..self.len as usize]
    }
}

/// Merges two ascending index lists, marking the second list's entries.
fn in_batch_order<'a>(a: &'a [u8], b: &'a [u8]) -> impl Iterator<Item = (u8, bool)> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || match (a.get(i), b.get(j)) {
        (Some(&x), Some(&y)) if x < y => {
            i += 1;
            Some((x, false))
        }
        (_, Some(&y)) => {
            j += 1;
            Some((y, true))
        }
        (Some(&x), None) => {
            i += 1;
            Some((x, false))
        }
        (None, None) => None,
    })
}

/// Per-thread forwarding state, reused for every batch.
pub struct Forwarder {
    verdicts: [Verdict; BATCH_SIZE],
    /// Unicast groups of the current batch (`ngroups` in use).
    groups: [Group; BATCH_SIZE],
    ngroups: usize,
    /// Packets of the current batch to flood.
    flood: Group,
    /// Output ports with frames still waiting for the kernel.
    pending: Vec<PortNo>,
    /// Cycles spent handing frames to the kernel (`TxQueue::flush`: the
    /// AF_XDP TX kick and what the kernel does inside it), since the last
    /// `take_tx_cycles`.
    tx_cycles: u64,
}

impl Default for Forwarder {
    fn default() -> Self {
        Self::new()
    }
}

impl Forwarder {
    pub fn new() -> Self {
        Forwarder {
            verdicts: [Verdict::Flood; BATCH_SIZE],
            groups: [Group::EMPTY; BATCH_SIZE],
            ngroups: 0,
            flood: Group::EMPTY,
            pending: Vec::with_capacity(64),
            tx_cycles: 0,
        }
    }

    /// Forwards `batch`, received on `in_port`. The batch keeps its packets
    /// (frames are copied into the output rings); the caller clears it.
    pub fn process(&mut self, snap: &Snapshot, in_port: PortNo, batch: &mut Batch, now_ms: u64) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let Some(port) = snap.port(in_port) else {
            return;
        };
        let bytes: usize = batch.packets().iter().map(|p| p.len()).sum();
        port.stats.add_rx(n as u64, bytes as u64);
        let Some(bridge) = snap.bridges.get(port.bridge) else {
            port.stats.add_drop(DropReason::NoBridge, n as u64);
            return;
        };

        let verdicts = &mut self.verdicts[..n];
        verdicts.fill(Verdict::Flood);
        vlan::ingress_batch(batch, &port.vlan, verdicts);
        let ingress = Ingress {
            port: in_port,
            max_frame: port.max_frame,
        };
        {
            let mut macs = bridge.macs.lock().unwrap_or_else(PoisonError::into_inner);
            l2::switch_batch(batch, ingress, &mut macs, now_ms, verdicts);
        }
        self.group(port, n);

        if self.flood.len > 0 {
            // Every other port of the bridge gets the flood, plus its own
            // unicast packets under the same lock.
            let flood = self.flood;
            for &t in &bridge.ports {
                if t == in_port {
                    continue;
                }
                let Some(out) = snap.port(t) else { continue };
                let uni = self.groups[..self.ngroups]
                    .iter()
                    .find(|g| g.port == t)
                    .copied()
                    .unwrap_or(Group::EMPTY);
                self.output(out, batch, uni.members(), flood.members());
            }
            // Unicast to ports not in the flood list (none today) is dropped.
        } else {
            for g in 0..self.ngroups {
                let group = self.groups[g];
                if let Some(out) = snap.port(group.port) {
                    self.output(out, batch, group.members(), &[]);
                }
            }
        }
    }

    /// Sorts the verdicts into unicast groups and the flood group, and
    /// counts drops against the ingress port.
    fn group(&mut self, port: &PortRef, n: usize) {
        self.ngroups = 0;
        self.flood.len = 0;
        for i in 0..n.min(BATCH_SIZE) {
            match self.verdicts[i] {
                Verdict::Drop(r) => port.stats.add_drop(r, 1),
                Verdict::Flood => {
                    self.flood.idx[self.flood.len as usize] = i as u8;
                    self.flood.len += 1;
                }
                Verdict::Output(p) => {
                    let g = match self.groups[..self.ngroups].iter().position(|g| g.port == p) {
                        Some(g) => g,
                        None => {
                            self.groups[self.ngroups].port = p;
                            self.groups[self.ngroups].len = 0;
                            self.ngroups += 1;
                            self.ngroups - 1
                        }
                    };
                    let grp = &mut self.groups[g];
                    grp.idx[grp.len as usize] = i as u8;
                    grp.len += 1;
                }
            }
        }
    }

    /// Sends the packets listed in `uni` and `flood` (batch indices, each
    /// list ascending) to `out` in batch order, tagging each as the port's
    /// VLAN mode requires. Flood packets go to other ports too: a tag pushed
    /// for this port is popped again afterwards. Unicast packets are finished
    /// after this call.
    fn output(&mut self, out: &PortRef, batch: &mut Batch, uni: &[u8], flood: &[u8]) {
        let (mut sent, mut bytes, mut dropped, mut oversize) = (0u64, 0u64, 0u64, 0u64);
        let pkts = batch.packets_mut();
        let mut tx = out.tx.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, shared) in in_batch_order(uni, flood) {
            let Some(pkt) = pkts.get_mut(i as usize) else {
                continue;
            };
            let tagged = match out.vlan.egress_packet(pkt) {
                Egress::No => continue,
                Egress::Untagged => false,
                Egress::Tagged(tpid) => {
                    if !vlan::push_tag(pkt, tpid) {
                        // No headroom: never send it untagged into the
                        // wrong VLAN. (Received packets always have room.)
                        oversize += 1;
                        continue;
                    }
                    true
                }
            };
            let len = pkt.len();
            // A unicast packet is finished after this port: the port may
            // take its buffer instead of copying it (zero-copy AF_XDP).
            let ok = len <= out.max_frame
                && if shared || !pkt.is_lent() {
                    tx.send(pkt.data())
                } else {
                    tx.send_packet(pkt)
                };
            if ok {
                sent += 1;
                bytes += len as u64;
            } else if len > out.max_frame {
                oversize += 1;
            } else {
                dropped += 1;
            }
            if tagged && shared {
                vlan::pop_tag(pkt);
            }
        }
        if out.timed_flush {
            let t0 = cycles::now();
            tx.flush();
            self.tx_cycles += cycles::now().wrapping_sub(t0);
        } else {
            tx.flush();
        }
        let pending = tx.pending();
        out.stats.add_tx_locked(sent, bytes);
        drop(tx);
        if pending && !self.pending.contains(&out.port_no) {
            self.pending.push(out.port_no);
        }
        if dropped > 0 {
            out.stats.add_drop(DropReason::TxFull, dropped);
        }
        if oversize > 0 {
            out.stats.add_drop(DropReason::Oversize, oversize);
        }
    }

    /// True while some output port still has frames for the kernel.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Kicks the transmit halves that still have frames outstanding.
    pub fn flush_pending(&mut self, snap: &Snapshot) {
        let t0 = cycles::now();
        self.pending.retain(|&p| {
            let Some(port) = snap.port(p) else {
                return false;
            };
            let mut tx = port.tx.lock().unwrap_or_else(PoisonError::into_inner);
            tx.flush();
            tx.pending()
        });
        self.tx_cycles += cycles::now().wrapping_sub(t0);
    }

    /// Cycles spent in `TxQueue::flush` since the last call.
    pub fn take_tx_cycles(&mut self) -> u64 {
        std::mem::take(&mut self.tx_cycles)
    }
}
