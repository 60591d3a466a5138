//! VXLAN decapsulation, encapsulation and the ICMP "fragmentation needed"
//! answer. Invariants: a datagram that re-enters lost exactly the 8-byte
//! header and still holds an Ethernet header; encapsulation then
//! decapsulation gives back the inner frame and VNI; an ICMP answer has
//! valid IPv4 and ICMP checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::checksum::checksum;
use pipeline::stage::{Ctx, Stage};
use pipeline::tunnel::{RemoteCounters, VxlanDecap};
use pipeline::vxlan::{self, OuterV4, OUTER_LEN};
use pipeline::{Batch, Verdict};
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    /// One batch for every input: a packet holds 65 KiB, and a new batch
    /// per input would zero 2 MiB each time.
    static BATCH: RefCell<Batch> = RefCell::new(Batch::new());
}

fuzz_target!(|data: &[u8]| {
    let [vni_byte, remote, rest @ ..] = data else {
        return;
    };
    let mut decap = VxlanDecap::new();
    decap.add(*vni_byte as u32, 1, 3, Arc::new(RemoteCounters::default()));
    BATCH.with_borrow_mut(|batch| {
        batch.clear();
        if !batch.push_copy(rest) {
            return;
        }
        batch.packets_mut()[0].meta.tun_remote = u32::from(*remote & 1);
        let mut v = [Verdict::Continue];
        decap.process(&Ctx::default(), batch.packets_mut(), &mut v);
        if let Verdict::Reenter(p) = v[0] {
            assert_eq!(p, 3);
            let pkt = &batch.packets()[0];
            assert_eq!(pkt.len() + vxlan::HEADER_LEN, rest.len());
            assert!(pkt.len() >= 14);
            assert_eq!(pkt.meta.in_port, 3);
        }

        // Encapsulate `rest` as an inner frame, then take the headers off.
        let outer = OuterV4 {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            dst_port: 4789,
            vni: u32::from(*vni_byte) << 8 | u32::from(*remote),
            ttl: 64,
            tos: None,
            df: true,
            csum: *remote & 2 != 0,
        };
        let mut hdr = [0u8; OUTER_LEN];
        outer
            .template()
            .write(&mut hdr, rest, vxlan::src_port(rest));
        let mut check = [0u8; OUTER_LEN];
        outer.write(&mut check, rest, vxlan::src_port(rest));
        assert_eq!(hdr, check, "template and write disagree");
        assert_eq!(checksum(&hdr[..20]), 0, "outer IPv4 checksum");
        assert_eq!(vxlan::parse(&hdr[28..]), Ok(outer.vni));

        let mut out = [0u8; 14 + 576];
        if let Some(n) = vxlan::frag_needed(rest, 1450, &mut out) {
            assert_eq!(checksum(&out[14..34]), 0, "answer IPv4 checksum");
            assert_eq!(checksum(&out[34..n]), 0, "answer ICMP checksum");
        }
    });
});
