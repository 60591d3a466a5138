//! Patch ports (`type=patch options:peer=PORT`): two bridges joined inside
//! the switch, with no kernel device, as in OVS. A frame that leaves by a
//! patch port is copied (with the tag the patch port's VLAN settings give
//! it) into a batch for the peer, and the forwarder runs that batch
//! through the peer's chain right after the batch it came from, in the same
//! poll iteration. A ring of patch ports cannot spin forever: a frame that
//! has crossed [`MAX_HOPS`] patch ports is dropped (`patch-loop`).

use super::forward::in_batch_order;
use super::PortRef;
use pipeline::gso::Segmenter;
use pipeline::vlan::{self, Egress};
use pipeline::{Batch, DropReason, PortNo};

/// Patch ports a frame may cross in one poll iteration.
pub const MAX_HOPS: u8 = 8;

/// Batches waiting to enter their patch peers.
#[derive(Default)]
pub struct PatchQueue {
    /// Peer, frames, and how many patch ports those frames have crossed.
    waiting: Vec<(PortNo, Batch, u8)>,
    /// Emptied batches, kept for reuse (no allocation once warm).
    spare: Vec<Batch>,
    /// Hops of the batch being forwarded now (0: one received from a
    /// device).
    pub hops: u8,
}

impl PatchQueue {
    #[inline]
    pub fn has_work(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The next batch to enter its peer.
    pub fn pop(&mut self) -> Option<(PortNo, Batch, u8)> {
        if self.waiting.is_empty() {
            None
        } else {
            Some(self.waiting.remove(0))
        }
    }

    pub fn recycle(&mut self, mut b: Batch) {
        b.clear();
        if self.spare.len() < 8 {
            self.spare.push(b);
        }
    }

    /// Copies the packets listed in `uni` and `flood` (batch order), which
    /// leave by patch port `out`, into a batch for `peer`.
    pub fn take(&mut self, out: &PortRef, peer: PortNo, batch: &Batch, uni: &[u8], flood: &[u8]) {
        let hops = self.hops + 1;
        let pkts = batch.packets();
        let (mut sent, mut bytes, mut full) = (0u64, 0u64, 0u64);
        for (i, _) in in_batch_order(uni, flood) {
            let Some(pkt) = pkts.get(i as usize) else {
                continue;
            };
            let tpid = match out.vlan.egress(pkt.meta.vlan, pkt.meta.tpid) {
                Egress::No => continue,
                Egress::Untagged => None,
                Egress::Tagged(tpid) => Some(tpid),
            };
            // A super-frame held whole crosses as its segments: the peer's
            // chain may not keep it whole.
            let mut cut = match pkt.gso() {
                0 => None,
                mss => match Segmenter::with_mss(pkt.data(), usize::from(mss)) {
                    Some(c) => Some(c),
                    None => {
                        full += 1;
                        continue;
                    }
                },
            };
            loop {
                let b = self.batch_for(peer, hops);
                let Some(slot) = b.next_slot() else {
                    full += 1;
                    break;
                };
                let filled = match &mut cut {
                    None => slot.fill(pkt.data()),
                    Some(c) => match c.next_into(pkt.data(), slot.rx_area()) {
                        Some(n) => {
                            slot.set_len(n);
                            true
                        }
                        None => break,
                    },
                };
                if !filled {
                    full += 1;
                    break;
                }
                if let Some(tpid) = tpid {
                    slot.meta.vlan = pkt.meta.vlan;
                    slot.meta.pcp = pkt.meta.pcp;
                    if !vlan::push_tag(slot, tpid) {
                        full += 1;
                        break;
                    }
                }
                let len = slot.len();
                if let Some(t) = out.hooks.as_deref().and_then(|h| h.taps()) {
                    t.tx(&[slot.data()]);
                }
                b.commit();
                sent += 1;
                bytes += len as u64;
                if cut.is_none() {
                    break;
                }
            }
        }
        out.stats.add_tx_locked(sent, bytes);
        if full > 0 {
            out.stats.add_drop(DropReason::TxFull, full);
        }
    }

    /// The waiting batch for `peer` at `hops` with room, or a new one.
    fn batch_for(&mut self, peer: PortNo, hops: u8) -> &mut Batch {
        let at = self
            .waiting
            .iter()
            .position(|(p, b, h)| *p == peer && *h == hops && !b.is_full());
        let at = match at {
            Some(at) => at,
            None => {
                let b = self.spare.pop().unwrap_or_default();
                self.waiting.push((peer, b, hops));
                self.waiting.len() - 1
            }
        };
        &mut self.waiting[at].1
    }
}
