//! VLAN classification and tag push/pop, on any port configuration and any
//! frame. Invariants: an access port never lets a tag through (what it
//! accepts leaves classification untagged, in the port's VLAN); pushing a
//! tag and popping it gives back the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::stage::{Ctx, Stage};
use pipeline::vlan::{self, VlanIngress, VlanMode, VlanPort};
use pipeline::{Batch, Verdict};
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    /// One batch for every input: a packet holds 65 KiB, and a new batch
    /// per input would zero 2 MiB each time.
    static BATCH: RefCell<Batch> = RefCell::new(Batch::new());
}

fuzz_target!(|data: &[u8]| {
    let [mode, tag_hi, tag_lo, trunk, q, frame @ ..] = data else {
        return;
    };
    let mode = [
        VlanMode::Access,
        VlanMode::Trunk,
        VlanMode::NativeTagged,
        VlanMode::NativeUntagged,
        VlanMode::Dot1qTunnel,
    ][*mode as usize % 5];
    let tag = u16::from_be_bytes([*tag_hi, *tag_lo]) & 0x0fff;
    let trunks = [*trunk as u16, tag];
    let port = VlanPort::new(Some(mode), Some(tag), &trunks, &[], *q & 1 == 1);
    let stage = VlanIngress(Arc::new(port.clone()));

    BATCH.with_borrow_mut(|batch| {
        batch.clear();
        if !batch.push_copy(frame) {
            return;
        }
        let mut v = [Verdict::Continue];
        stage.process(&Ctx::default(), batch.packets_mut(), &mut v);
        let pkt = &mut batch.packets_mut()[0];
        if v[0] == Verdict::Continue && mode == VlanMode::Access {
            let f = pkt.data();
            let et = u16::from_be_bytes([f[12], f[13]]);
            assert!(
                et != 0x8100 && et != 0x88a8,
                "a tag got through an access port"
            );
            assert_eq!(pkt.meta.vlan, tag);
        }
        let before = pkt.data().to_vec();
        if vlan::push_tag(pkt, 0x8100) {
            assert_eq!(pkt.len(), before.len() + 4);
            vlan::pop_tag(pkt);
            assert_eq!(pkt.data(), &before[..], "push then pop changed the frame");
        }
    });
});
