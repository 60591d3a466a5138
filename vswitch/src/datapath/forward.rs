//! Forwarding one received batch: run the stages, then hand each packet to
//! the transmit halves its verdict names, locking each output port once per
//! batch.

use super::{PortRef, Snapshot};
use pipeline::l2::{self, Ingress};
use pipeline::vlan::{self, Egress};
use pipeline::{Batch, DropReason, PortNo, Verdict, BATCH_SIZE};
use std::sync::PoisonError;

/// Per-thread forwarding state, reused for every batch.
pub struct Forwarder {
    verdicts: [Verdict; BATCH_SIZE],
    /// Output ports with frames still waiting for the kernel.
    pending: Vec<PortNo>,
    targets: Vec<PortNo>,
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
            pending: Vec::with_capacity(64),
            targets: Vec::with_capacity(BATCH_SIZE),
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

        self.targets.clear();
        let mut flood = false;
        for v in verdicts.iter() {
            match *v {
                Verdict::Drop(r) => port.stats.add_drop(r, 1),
                Verdict::Flood => flood = true,
                Verdict::Output(p) => {
                    if !self.targets.contains(&p) {
                        self.targets.push(p);
                    }
                }
            }
        }
        if flood {
            self.targets.clear();
            self.targets
                .extend(bridge.ports.iter().copied().filter(|&p| p != in_port));
        }
        for i in 0..self.targets.len() {
            let t = self.targets[i];
            if let Some(out) = snap.port(t) {
                self.output(out, batch);
            }
        }
    }

    /// Sends every packet of `batch` whose verdict includes `out`.
    fn output(&mut self, out: &PortRef, batch: &mut Batch) {
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        let mut tx = out.tx.lock().unwrap_or_else(PoisonError::into_inner);
        for (pkt, v) in batch.packets_mut().iter_mut().zip(self.verdicts.iter()) {
            let wanted = match *v {
                Verdict::Flood => pkt.meta.in_port != out.port_no,
                Verdict::Output(p) => p == out.port_no,
                Verdict::Drop(_) => false,
            };
            if !wanted {
                continue;
            }
            let egress = out.vlan.egress(pkt.meta.vlan, pkt.meta.tpid);
            if egress == Egress::No {
                continue;
            }
            let tagged = match egress {
                Egress::Tagged(tpid) => vlan::push_tag(pkt, tpid),
                _ => false,
            };
            if pkt.len() > out.max_frame {
                out.stats.add_drop(DropReason::Oversize, 1);
            } else if tx.send(pkt.data()) {
                sent += 1;
                bytes += pkt.len() as u64;
            } else {
                dropped += 1;
            }
            if tagged {
                vlan::pop_tag(pkt);
            }
        }
        tx.flush();
        let pending = tx.pending();
        drop(tx);
        if pending && !self.pending.contains(&out.port_no) {
            self.pending.push(out.port_no);
        }
        out.stats.add_tx(sent, bytes);
        if dropped > 0 {
            out.stats.add_drop(DropReason::TxFull, dropped);
        }
    }

    /// True while some output port still has frames for the kernel.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Kicks the transmit halves that still have frames outstanding.
    pub fn flush_pending(&mut self, snap: &Snapshot) {
        self.pending.retain(|&p| {
            let Some(port) = snap.port(p) else {
                return false;
            };
            let mut tx = port.tx.lock().unwrap_or_else(PoisonError::into_inner);
            tx.flush();
            tx.pending()
        });
    }
}
