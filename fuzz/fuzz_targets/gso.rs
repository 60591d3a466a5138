//! TCP segmentation of super-frames. Invariants: every segment fits the
//! MTU, its IPv4/TCP checksums verify, and the segments' payloads add up to
//! the super-frame's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::checksum::l4_checksum_ok;
use pipeline::gso::Segmenter;
use pipeline::parse::locate_l4;

fuzz_target!(|data: &[u8]| {
    let [mtu, frame @ ..] = data else {
        return;
    };
    let mtu = 60 + *mtu as usize * 8;
    let Some(mut seg) = Segmenter::new(frame, 0, mtu) else {
        return;
    };
    let Some(l4) = locate_l4(frame) else {
        panic!("a segmenter for a frame without L4");
    };
    let thl = ((frame[l4.off + 12] >> 4) as usize) * 4;
    let payload = &frame[l4.off + thl..l4.off + l4.len];
    let mut out = vec![0u8; 70_000];
    let mut got = Vec::new();
    let mut n = 0;
    while let Some(len) = seg.next_into(frame, &mut out) {
        n += 1;
        assert!(n <= payload.len() + 1, "segments never end");
        let s = &out[..len];
        assert!(
            len - l4.l3 <= mtu,
            "segment of {} bytes over MTU {mtu}",
            len - l4.l3
        );
        assert_eq!(l4_checksum_ok(s), Some(true), "segment checksum");
        got.extend_from_slice(&s[l4.off + thl..]);
    }
    assert_eq!(got, payload, "payloads do not add up");
});
