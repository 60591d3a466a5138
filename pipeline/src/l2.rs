//! The layer-2 stage: validate, learn the source, look up the destination.
//!
//! One call per batch. For each packet it writes a [`Verdict`]; it never sends
//! anything itself. The MAC table is passed in already locked, once per batch.

use crate::checksum;
use crate::mac_table::MacTable;
use crate::packet::{PortNo, MIN_FRAME};
use crate::verdict::{DropReason, Verdict};
use crate::wire::eth;
use crate::Batch;

/// What the stage needs to know about the ingress port.
#[derive(Debug, Clone, Copy)]
pub struct Ingress {
    pub port: PortNo,
    /// Largest frame accepted on this port (bytes, without FCS).
    pub max_frame: usize,
}

/// Runs the stage over `batch`, writing one verdict per packet into
/// `verdicts[..batch.len()]`. Packets get `meta.in_port` set; their VLAN
/// (`meta.vlan`) must already be classified.
pub fn switch_batch(
    batch: &mut Batch,
    ingress: Ingress,
    table: &mut MacTable,
    now_ms: u64,
    verdicts: &mut [Verdict],
) {
    // One-entry cache: consecutive packets from the same source are learned
    // once per batch.
    let mut last_src: Option<(u16, [u8; 6])> = None;
    for (pkt, verdict) in batch.packets_mut().iter_mut().zip(verdicts.iter_mut()) {
        pkt.meta.in_port = ingress.port;
        if matches!(*verdict, Verdict::Drop(_)) {
            continue;
        }
        let len = pkt.len();
        if len < MIN_FRAME {
            *verdict = Verdict::Drop(DropReason::Runt);
            continue;
        }
        if len > ingress.max_frame {
            *verdict = Verdict::Drop(DropReason::Oversize);
            continue;
        }
        let vlan = pkt.meta.vlan;
        let frame = pkt.data_mut();
        let src = eth::mac(frame, eth::SRC);
        if eth::is_multicast(&src) {
            *verdict = Verdict::Drop(DropReason::MulticastSource);
            continue;
        }
        checksum::complete_partial(frame);
        if last_src != Some((vlan, src)) {
            table.learn(vlan, &src, ingress.port, now_ms);
            last_src = Some((vlan, src));
        }
        let dst = eth::mac(frame, eth::DST);
        *verdict = if eth::is_multicast(&dst) {
            Verdict::Flood
        } else {
            match table.lookup(vlan, &dst) {
                Some(p) if p == ingress.port => Verdict::Drop(DropReason::SamePort),
                Some(p) => Verdict::Output(p),
                None => Verdict::Flood,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BATCH_SIZE;

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(60, 0);
        f
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn run(batch: &mut Batch, port: PortNo, t: &mut MacTable) -> Vec<Verdict> {
        let mut v = [Verdict::Flood; BATCH_SIZE];
        let ing = Ingress {
            port,
            max_frame: 1518,
        };
        switch_batch(batch, ing, t, 0, &mut v);
        v[..batch.len()].to_vec()
    }

    #[test]
    fn unknown_floods_then_known_is_forwarded() {
        let mut t = MacTable::default();
        let mut b = Batch::new();
        b.push_copy(&frame(B, A));
        assert_eq!(run(&mut b, 1, &mut t), vec![Verdict::Flood]);
        b.clear();
        b.push_copy(&frame(A, B));
        assert_eq!(run(&mut b, 2, &mut t), vec![Verdict::Output(1)]);
    }

    #[test]
    fn bad_frames_are_dropped_with_reasons() {
        let mut t = MacTable::default();
        let mut b = Batch::new();
        b.push_copy(&[0u8; 10]);
        b.push_copy(&frame(B, eth::BROADCAST));
        b.push_copy(&vec![0u8; 2000]);
        b.push_copy(&frame(eth::BROADCAST, A));
        let v = run(&mut b, 1, &mut t);
        assert_eq!(
            v,
            vec![
                Verdict::Drop(DropReason::Runt),
                Verdict::Drop(DropReason::MulticastSource),
                Verdict::Drop(DropReason::Oversize),
                Verdict::Flood,
            ]
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn hairpin_is_dropped() {
        let mut t = MacTable::default();
        t.learn(0, &B, 1, 0);
        let mut b = Batch::new();
        b.push_copy(&frame(B, A));
        assert_eq!(
            run(&mut b, 1, &mut t),
            vec![Verdict::Drop(DropReason::SamePort)]
        );
    }

    #[test]
    fn learning_is_per_vlan() {
        let mut t = MacTable::default();
        let mut b = Batch::new();
        b.push_copy(&frame(B, A));
        b.packets_mut()[0].meta.vlan = 100;
        run(&mut b, 1, &mut t);
        assert_eq!(t.lookup(100, &A), Some(1));
        assert_eq!(t.lookup(0, &A), None);
    }
}
