//! The L2 stage over runs of arbitrary frames from arbitrary ports into a
//! small MAC table. Invariants: the table never exceeds its limit; every
//! packet gets a verdict; a unicast output never goes back to the port the
//! frame came in on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::l2;
use pipeline::{Batch, MacTable, Verdict};
use std::cell::RefCell;

thread_local! {
    /// One batch for every input: a packet holds 65 KiB, and a new batch
    /// per input would zero 2 MiB each time.
    static BATCH: RefCell<Batch> = RefCell::new(Batch::new());
}

fuzz_target!(|data: &[u8]| {
    let [limit, rest @ ..] = data else {
        return;
    };
    let max = (*limit as usize % 16) + 1;
    let mut table = MacTable::new(max, 300);
    // Records: port, length, then that many bytes of frame.
    let mut rest = rest;
    let mut now = 0;
    BATCH.with_borrow_mut(|batch| {
        batch.clear();
        while let [port, len, tail @ ..] = rest {
            let n = (*len as usize).min(tail.len());
            let (frame, next) = tail.split_at(n);
            rest = next;
            batch.clear();
            for _ in 0..3 {
                batch.push_copy(frame);
            }
            for p in batch.packets_mut() {
                p.meta.in_port = *port as u16 % 4;
                p.meta.tun_remote = u32::from(*port >> 6);
                // Some claim to be super-frames held whole (any length).
                p.set_gso(u16::from(*port & 0x20 != 0) * 1448);
            }
            let mut v = [Verdict::Continue; 3];
            now += 7;
            l2::switch(batch.packets_mut(), 1518, &mut table, now, &mut v);
            assert!(table.len() <= max, "{} entries, limit {max}", table.len());
            for verdict in v {
                assert_ne!(verdict, Verdict::Continue);
                assert_ne!(verdict, Verdict::Output(*port as u16 % 4));
            }
            table.age(now);
        }
    });
});
