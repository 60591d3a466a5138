//! Completion of partial TCP/UDP checksums. Invariant: a checksum the
//! switch completed verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::checksum;

fuzz_target!(|data: &[u8]| {
    let mut frame = data.to_vec();
    if checksum::complete_partial(&mut frame) {
        assert_eq!(checksum::l4_checksum_ok(&frame), Some(true));
    }
});
