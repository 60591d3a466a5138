//! TCP super-frames held whole (`Packet::gso`: a container's TSO sender
//! behind a TAP, see `ports::tap::vnet`) leaving by a port that does not
//! take them whole: an AF_XDP or AF_PACKET port, a tunnel, a tagged
//! egress. They are cut here into segments of the sender's MSS, each with
//! its own headers and complete checksum, and each sent as an ordinary
//! frame. The kernel would have done the same in the sender's driver.

use super::forward::{encapsulate, TxCount};
use super::PortRef;
use pipeline::gso::Segmenter;
use pipeline::vlan;
use pipeline::Packet;
use ports::TxQueue;

/// A packet to cut segments into, reused.
pub(super) struct Cutter {
    seg: Box<Packet>,
}

impl Default for Cutter {
    fn default() -> Self {
        Cutter {
            seg: Box::new(Packet::new()),
        }
    }
}

impl Cutter {
    /// Sends `pkt`, a super-frame, by `out` as segments, each tagged with
    /// `tpid` if set or encapsulated for a tunnel port. Returns true when
    /// one was too big for a tunnel's underlay.
    pub fn send(
        &mut self,
        tx: &mut dyn TxQueue,
        out: &PortRef,
        pkt: &Packet,
        tpid: Option<u16>,
        scratch: &mut [u8; ports::GATHER_MAX],
        c: &mut TxCount,
    ) -> bool {
        let frame = pkt.data();
        let Some(mut cut) = Segmenter::with_mss(frame, usize::from(pkt.gso())) else {
            c.too_big += 1;
            return false;
        };
        let seg = &mut *self.seg;
        let (mut too_big, mut any) = (false, false);
        while let Some(n) = cut.next_into(frame, seg.rx_area()) {
            seg.set_len(n);
            seg.meta = pkt.meta;
            too_big |= send_segment(tx, out, seg, tpid, scratch, c);
            any = true;
        }
        if !any {
            // Segments longer than a packet holds.
            c.too_big += 1;
        }
        too_big
    }
}

/// The forwarder's output step for one segment (which, unlike the
/// packets of a batch, is never flooded elsewhere: tagged in place).
fn send_segment(
    tx: &mut dyn TxQueue,
    out: &PortRef,
    seg: &mut Packet,
    tpid: Option<u16>,
    scratch: &mut [u8; ports::GATHER_MAX],
    c: &mut TxCount,
) -> bool {
    if let Some(encap) = &out.encap {
        return encapsulate(tx, encap, seg, tpid, false, scratch, c);
    }
    if tpid.is_some_and(|tpid| !vlan::push_tag(seg, tpid)) || seg.len() > out.max_frame {
        c.too_big += 1;
        return false;
    }
    let ok = tx.send(seg.data());
    c.count(ok, seg.len());
    false
}

/// Passes each segment of `pkt`, a super-frame, to `send`, which returns
/// whether it went; returns how many went and how many did not. For the
/// rare paths (mirror copies) that take frames one by one.
pub(super) fn each_segment(pkt: &Packet, mut send: impl FnMut(&[u8]) -> bool) -> (u64, u64) {
    let frame = pkt.data();
    let Some(mut cut) = Segmenter::with_mss(frame, usize::from(pkt.gso())) else {
        return (0, 1);
    };
    let mut buf = vec![0u8; cut.max_len()];
    let (mut ok, mut failed) = (0, 0);
    while let Some(n) = cut.next_into(frame, &mut buf) {
        match send(&buf[..n]) {
            true => ok += 1,
            false => failed += 1,
        }
    }
    (ok, failed)
}
