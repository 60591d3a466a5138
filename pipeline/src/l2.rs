//! The layer-2 stage: validate, parse, learn the source, look up the
//! destination.
//!
//! One call per run of packets. For each packet still undecided it writes a
//! [`Verdict`]; it never sends anything itself. The bridge's MAC table is
//! locked once per call. A frame that came through a tunnel is learned with
//! the remote VTEP it came from (`meta.tun_remote`), and a frame to a MAC
//! behind a tunnel port leaves with that remote in `meta.tun_remote`.

use crate::checksum;
use crate::mac_table::{Dest, MacTable};
use crate::packet::{Packet, MIN_FRAME};
use crate::parse;
use crate::stage::{Ctx, Stage};
use crate::verdict::{DropReason, Verdict};
use std::sync::{Arc, Mutex, PoisonError};

/// The L2 stage of one port: its bridge's table and its frame limit.
pub struct L2Switch {
    pub macs: Arc<Mutex<MacTable>>,
    /// Largest frame accepted on the ingress port (bytes, without FCS).
    pub max_frame: usize,
}

impl Stage for L2Switch {
    fn name(&self) -> &'static str {
        "l2-switch"
    }

    fn keeps_gso(&self) -> bool {
        true
    }

    fn process(&self, cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        let mut table = self.macs.lock().unwrap_or_else(PoisonError::into_inner);
        switch(pkts, self.max_frame, &mut table, cx.now_ms, verdicts);
    }

    fn for_trace(&self) -> Option<Arc<dyn Stage>> {
        let table = self
            .macs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some(Arc::new(L2Switch {
            macs: Arc::new(Mutex::new(table)),
            max_frame: self.max_frame,
        }))
    }
}

/// True for a TCP super-frame held whole, which may be longer than any
/// MTU (out of line: only frames over the MTU ask).
#[cold]
#[inline(never)]
fn held_whole(pkt: &Packet) -> bool {
    pkt.gso() != 0
}

/// Runs the stage over `pkts`, whose VLAN (`meta.vlan`) and ingress port
/// (`meta.in_port`) are set, writing one verdict per undecided packet.
pub fn switch(
    pkts: &mut [Packet],
    max_frame: usize,
    table: &mut MacTable,
    now_ms: u64,
    verdicts: &mut [Verdict],
) {
    // One-entry caches, valid for this call only (VPP does the same):
    // consecutive packets from one source are learned once, and consecutive
    // packets to one destination are looked up once. A learn that changes
    // the table drops the destination cache. Keys are (VLAN, MAC) as u64;
    // NO_KEY matches none (a VLAN id has 12 bits).
    const NO_KEY: u64 = u64::MAX;
    let (mut last_src, mut last_from) = (NO_KEY, Dest::default());
    let (mut last_dst, mut last_out) = (NO_KEY, None);
    for (pkt, verdict) in pkts.iter_mut().zip(verdicts.iter_mut()) {
        if *verdict != Verdict::Continue {
            continue;
        }
        let len = pkt.len();
        if len < MIN_FRAME {
            *verdict = Verdict::Drop(DropReason::Runt);
            continue;
        }
        if len > max_frame && !held_whole(pkt) {
            *verdict = Verdict::Drop(DropReason::Oversize);
            continue;
        }
        let from = Dest::new(pkt.meta.in_port, pkt.meta.tun_remote);
        let vlan = (pkt.meta.vlan as u64) << 48;
        let (frame, gso) = pkt.data_mut_and_gso();
        // Both MACs from two 8-byte loads: dst is bytes 0..6, src 6..12.
        let head = u64::from_be_bytes(frame[0..8].try_into().unwrap_or([0; 8]));
        let tail = u64::from_be_bytes(frame[4..12].try_into().unwrap_or([0; 8]));
        let dst = head >> 16;
        let src = tail & 0xffff_ffff_ffff;
        if src & GROUP_BIT != 0 {
            *verdict = Verdict::Drop(DropReason::MulticastSource);
            continue;
        }
        if let Some(l4) = parse::ip_ethertype(frame)
            .then(|| parse::locate_l4(frame))
            .flatten()
        {
            // A super-frame's partial checksum is finished per segment,
            // by the kernel behind a TAP or by whoever cuts it.
            checksum::complete_partial_unless(frame, &l4, gso);
            let m = &mut pkt.meta;
            (m.l3, m.l4, m.proto) = (l4.l3 as u16, l4.off as u16, l4.proto);
        }
        let src_key = vlan | src;
        if src_key != last_src || from != last_from {
            if table.learn_key(src_key, from, now_ms) {
                last_dst = NO_KEY;
            }
            (last_src, last_from) = (src_key, from);
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
            Some(d) if d.port() == pkt.meta.in_port => Verdict::Drop(DropReason::SamePort),
            Some(d) => {
                pkt.meta.tun_remote = d.remote();
                Verdict::Output(d.port())
            }
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
    use crate::{Batch, PortNo, BATCH_SIZE};

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
        let mut v = [Verdict::Continue; BATCH_SIZE];
        let n = batch.len();
        for p in batch.packets_mut() {
            p.meta.in_port = port;
        }
        switch(batch.packets_mut(), 1518, t, 0, &mut v[..n]);
        v[..n].to_vec()
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
    fn a_tunnelled_source_is_learned_with_its_remote_and_answered_there() {
        let mut t = MacTable::default();
        let mut b = Batch::new();
        b.push_copy(&frame(B, A));
        b.packets_mut()[0].meta.tun_remote = 0x0a00_0002;
        run(&mut b, 4, &mut t);
        b.clear();
        b.push_copy(&frame(A, B));
        assert_eq!(run(&mut b, 1, &mut t), vec![Verdict::Output(4)]);
        assert_eq!(b.packets()[0].meta.tun_remote, 0x0a00_0002);
    }

    #[test]
    fn decided_packets_are_left_alone() {
        let mut t = MacTable::default();
        let mut b = Batch::new();
        b.push_copy(&frame(B, A));
        let mut v = [Verdict::Drop(DropReason::VlanNotAllowed)];
        switch(b.packets_mut(), 1518, &mut t, 0, &mut v);
        assert_eq!(v, [Verdict::Drop(DropReason::VlanNotAllowed)]);
        assert!(t.is_empty(), "a dropped frame teaches nothing");
    }

    #[test]
    fn ip_frames_are_parsed_into_meta() {
        let mut t = MacTable::default();
        let mut f = frame(B, A);
        f[14] = 0x45; // IPv4, 20-byte header
        f[16..18].copy_from_slice(&46u16.to_be_bytes());
        f[23] = 17; // UDP
        f[38..40].copy_from_slice(&26u16.to_be_bytes());
        let mut b = Batch::new();
        b.push_copy(&f);
        run(&mut b, 1, &mut t);
        let m = b.packets()[0].meta;
        assert_eq!((m.l3, m.l4, m.proto), (14, 34, 17));
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
