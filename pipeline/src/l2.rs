//! The layer-2 stage: validate, learn the source, look up the destination.
//!
//! One call per batch. For each packet it writes a [`Verdict`]; it never sends
//! anything itself. The MAC table is passed in already locked, once per batch.

use crate::checksum;
use crate::mac_table::MacTable;
use crate::packet::{PortNo, MIN_FRAME};
use crate::verdict::{DropReason, Verdict};
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
    // One-entry caches, valid for this batch only (VPP does the same):
    // consecutive packets from one source are learned once, and consecutive
    // packets to one destination are looked up once. A learn that changes
    // the table drops the destination cache. Keys are (VLAN, MAC) as u64;
    // NO_KEY matches none (a VLAN id has 12 bits).
    const NO_KEY: u64 = u64::MAX;
    let mut last_src = NO_KEY;
    let (mut last_dst, mut last_out) = (NO_KEY, None);
    let n = batch.len().min(verdicts.len());
    for (pkt, verdict) in batch.packets_mut()[..n].iter_mut().zip(&mut verdicts[..n]) {
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
        let vlan = (pkt.meta.vlan as u64) << 48;
        let frame = pkt.data_mut();
        // Both MACs from two 8-byte loads: dst is bytes 0..6, src 6..12.
        let head = u64::from_be_bytes(frame[0..8].try_into().unwrap_or([0; 8]));
        let tail = u64::from_be_bytes(frame[4..12].try_into().unwrap_or([0; 8]));
        let dst = head >> 16;
        let src = tail & 0xffff_ffff_ffff;
        if src & GROUP_BIT != 0 {
            *verdict = Verdict::Drop(DropReason::MulticastSource);
            continue;
        }
        checksum::complete_partial(frame);
        let src_key = vlan | src;
        if src_key != last_src {
            if table.learn_key(src_key, ingress.port, now_ms) {
                last_dst = NO_KEY;
            }
            last_src = src_key;
        }
        if dst & GROUP_BIT != 0 {
            *verdict = Verdict::Flood;
            continue;
        }
        let dst_key = vlan | dst;
        if dst_key != last_dst {
            last_out = table.lookup_key(dst_key);
            last_dst = dst_key;
        }
        *verdict = match last_out {
            Some(p) if p == ingress.port => Verdict::Drop(DropReason::SamePort),
            Some(p) => Verdict::Output(p),
            None => Verdict::Flood,
        };
    }
}

/// The I/G bit of a MAC held in the low 48 bits of a u64.
const GROUP_BIT: u64 = 1 << 40;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::eth;
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
