//! Storm control: a per-port limit on the frames a port's traffic floods
//! (broadcast, multicast, unknown unicast), so that a loop in a lab
//! topology costs a bounded share of the poll thread instead of all of it.
//! A token bucket in frames per second (`other_config:flood-limit`, on by
//! default at [`DEFAULT_PPS`]; 0 turns it off), with a tenth of a second
//! of burst. It is asked once per run of packets that floods, never for
//! unicast.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Flooded frames a port may send into its bridge per second by default:
/// far above what ARP, DHCP and neighbour discovery of a busy host need,
/// far below what a loop makes (a ~100 kpps storm saturates a poll thread).
pub const DEFAULT_PPS: u64 = 5_000;

#[derive(Debug, Default)]
struct Bucket {
    tokens: u64,
    last_ms: u64,
}

#[derive(Debug)]
pub struct FloodLimit {
    /// Frames per second; 0: no limit.
    pps: AtomicU64,
    bucket: Mutex<Bucket>,
}

impl Default for FloodLimit {
    fn default() -> Self {
        FloodLimit::new(DEFAULT_PPS)
    }
}

impl FloodLimit {
    pub fn new(pps: u64) -> FloodLimit {
        FloodLimit {
            pps: AtomicU64::new(pps),
            bucket: Mutex::new(Bucket {
                tokens: burst(pps),
                last_ms: 0,
            }),
        }
    }

    pub fn set(&self, pps: u64) {
        self.pps.store(pps, Ordering::Relaxed);
    }

    pub fn pps(&self) -> u64 {
        self.pps.load(Ordering::Relaxed)
    }

    /// How many of `n` frames to flood now (the rest are dropped).
    pub fn admit(&self, n: u64, now_ms: u64) -> u64 {
        let pps = self.pps();
        if pps == 0 {
            return n;
        }
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now_ms.saturating_sub(b.last_ms);
        if elapsed > 0 {
            b.tokens = (b.tokens + elapsed.saturating_mul(pps) / 1000).min(burst(pps));
            b.last_ms = now_ms;
        }
        let take = n.min(b.tokens);
        b.tokens -= take;
        take
    }
}

/// A tenth of a second of frames, at least 64.
fn burst(pps: u64) -> u64 {
    (pps / 10).max(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_beyond_the_rate_are_cut_and_the_bucket_refills() {
        let l = FloodLimit::new(1000);
        // A burst of 100 (a tenth of a second), then nothing until time
        // passes.
        assert_eq!(l.admit(150, 0), 100);
        assert_eq!(l.admit(10, 0), 0);
        // 50 ms later: 50 more.
        assert_eq!(l.admit(80, 50), 50);
        // Over a simulated second of 2,000 frames offered, about 1,000 pass.
        let passed: u64 = (1..=100).map(|i| l.admit(20, 50 + i * 10)).sum();
        assert!((950..=1100).contains(&passed), "{passed}");
        l.set(0);
        assert_eq!(l.admit(1_000_000, 2000), 1_000_000);
    }
}
