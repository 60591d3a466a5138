//! Algebraic invariants, checked on generated inputs: a VLAN tag pushed
//! and popped leaves the frame as it was; VXLAN encapsulation then
//! decapsulation gives back the inner frame on its tunnel port; a TCP
//! super-frame cut into segments gives back its payload, every segment
//! with a valid checksum.

use pipeline::checksum::{checksum, l4_checksum_ok};
use pipeline::gso::Segmenter;
use pipeline::stage::{Ctx, Stage};
use pipeline::tunnel::{RemoteCounters, VxlanDecap};
use pipeline::vxlan::{self, OuterV4, OUTER_LEN};
use pipeline::{vlan, Batch, Packet, Verdict};
use proptest::prelude::*;
use std::sync::Arc;

fn ether(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5];
    f.extend_from_slice(payload);
    f
}

/// Ethernet + IPv4 + TCP with `payload`, header checksum and TCP checksum
/// left for the segmenter to write.
fn tcp_super_frame(payload: &[u8], seq: u32, flags: u8) -> Vec<u8> {
    let total = (40 + payload.len()) as u16;
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let t = total.to_be_bytes();
    f.extend_from_slice(&[
        0x45, 0, t[0], t[1], 0, 9, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let s = seq.to_be_bytes();
    f.extend_from_slice(&[
        0x9c, 0x40, 0, 80, s[0], s[1], s[2], s[3], 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f.extend_from_slice(payload);
    f
}

proptest! {
    #[test]
    fn push_then_pop_is_the_identity(payload in proptest::collection::vec(any::<u8>(), 0..1500),
                                     vid in 0u16..4096, pcp in 0u8..8, qinq in any::<bool>()) {
        let frame = ether(&payload);
        let mut p = Packet::new();
        prop_assert!(p.fill(&frame));
        p.meta.vlan = vid;
        p.meta.pcp = pcp;
        let tpid = if qinq { 0x88a8 } else { 0x8100 };
        prop_assert!(vlan::push_tag(&mut p, tpid));
        prop_assert_eq!(p.len(), frame.len() + 4);
        prop_assert_eq!(&p.data()[14..16], &vlan::tag_bytes(&p, 0)[2..4]);
        vlan::pop_tag(&mut p);
        prop_assert_eq!(p.data(), &frame[..]);
    }

    #[test]
    fn encap_then_decap_gives_back_the_frame(payload in proptest::collection::vec(any::<u8>(), 0..1400),
                                             vni in 0u32..=vxlan::VNI_MAX, csum in any::<bool>(),
                                             remote in 1u32..u32::MAX) {
        let inner = ether(&payload);
        let outer = OuterV4 { src: 0x0a00_0001, dst: remote, dst_port: 4789, vni, ttl: 64,
                              tos: None, df: true, csum };
        let mut hdr = [0u8; OUTER_LEN];
        outer.template().write(&mut hdr, &inner, vxlan::src_port(&inner));
        prop_assert_eq!(checksum(&hdr[..20]), 0);
        // What the receiving socket hands over: the UDP payload.
        let mut udp_payload = hdr[28..].to_vec();
        udp_payload.extend_from_slice(&inner);
        let mut decap = VxlanDecap::new();
        decap.add(vni, remote, 9, Arc::new(RemoteCounters::default()));
        let mut b = Batch::new();
        prop_assert!(b.push_copy(&udp_payload));
        b.packets_mut()[0].meta.tun_remote = remote;
        let mut v = [Verdict::Continue];
        decap.process(&Ctx::default(), b.packets_mut(), &mut v);
        prop_assert_eq!(v[0], Verdict::Reenter(9));
        prop_assert_eq!(b.packets()[0].data(), &inner[..]);
    }

    #[test]
    fn segments_add_up_to_the_super_frame(payload in proptest::collection::vec(any::<u8>(), 1..20_000),
                                          mtu in 100usize..9000, seq in any::<u32>(), fin in any::<bool>()) {
        let frame = tcp_super_frame(&payload, seq, if fin { 0x19 } else { 0x18 });
        let mut seg = Segmenter::new(&frame, 0, mtu).expect("a TCP frame");
        let mut out = vec![0u8; 70_000];
        let mut got = Vec::new();
        let mut next_seq = seq;
        while let Some(n) = seg.next_into(&frame, &mut out) {
            let s = &out[..n];
            prop_assert!(n - 14 <= mtu);
            prop_assert_eq!(l4_checksum_ok(s), Some(true));
            prop_assert_eq!(checksum(&s[14..34]), 0);
            prop_assert_eq!(u32::from_be_bytes([s[38], s[39], s[40], s[41]]), next_seq);
            next_seq = next_seq.wrapping_add((n - 54) as u32);
            got.extend_from_slice(&s[54..]);
        }
        prop_assert_eq!(got, payload);
    }
}
