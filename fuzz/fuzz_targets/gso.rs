//! TCP and UDP segmentation of super-frames. Invariants: every segment
//! fits the MTU, its IPv4/TCP or UDP checksums verify, the segments'
//! payloads add up to the super-frame's, and UDP datagrams have the size
//! asked for (the last one may be shorter), at most `UDP_MAX_SEGMENTS`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::checksum::l4_checksum_ok;
use pipeline::gso::{Segmenter, UDP_MAX_SEGMENTS};
use pipeline::parse::locate_l4;

fuzz_target!(|data: &[u8]| {
    let [mtu, size, frame @ ..] = data else {
        return;
    };
    let mtu = 60 + *mtu as usize * 8;
    let size = 1 + *size as usize * 4;
    let (mut seg, udp) = match Segmenter::new(frame, 0, mtu) {
        Some(s) => (s, false),
        None => match Segmenter::udp(frame, 0, size, mtu) {
            Some(s) => (s, true),
            None => return,
        },
    };
    let Some(l4) = locate_l4(frame) else {
        panic!("a segmenter for a frame without L4");
    };
    let hdr = if udp {
        8
    } else {
        ((frame[l4.off + 12] >> 4) as usize) * 4
    };
    let payload = &frame[l4.off + hdr..l4.off + l4.len];
    let mut out = vec![0u8; 70_000];
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while let Some(len) = seg.next_into(frame, &mut out) {
        sizes.push(len - l4.off - hdr);
        assert!(sizes.len() <= payload.len() + 1, "segments never end");
        let s = &out[..len];
        assert!(
            len - l4.l3 <= mtu,
            "segment of {} bytes over MTU {mtu}",
            len - l4.l3
        );
        assert_eq!(l4_checksum_ok(s), Some(true), "segment checksum");
        got.extend_from_slice(&s[l4.off + hdr..]);
    }
    assert_eq!(got, payload, "payloads do not add up");
    if udp {
        assert!(sizes.len() <= UDP_MAX_SEGMENTS, "{} datagrams", sizes.len());
        let (last, rest) = sizes.split_last().expect("one datagram at least");
        assert!(rest.iter().all(|&n| n == size) && *last <= size, "{sizes:?}");
    }
});
