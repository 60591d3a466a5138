//! The poll threads' cycle counter, for busy/idle accounting (what
//! `pmd/stats-show` reports, like OVS's `dpif-netdev/pmd-stats-show`).
//!
//! On x86_64 it is the time-stamp counter: one `rdtsc`, a few cycles, no
//! system call and no vDSO clock. Elsewhere it counts nanoseconds from a
//! monotonic clock. [`Calibration`] turns counts into seconds by comparing
//! the counter with the monotonic clock over the daemon's lifetime, so
//! nothing is measured at start-up.

use std::sync::OnceLock;
use std::time::Instant;

/// The counter's current value.
#[inline]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` reads a counter register; it touches no memory
        // and every x86_64 CPU has it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        fallback_ns()
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fallback_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the call writes; CLOCK_MONOTONIC
    // always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts counter ticks into time: ticks per second, from two readings of
/// the counter and the monotonic clock taken apart in time.
#[derive(Debug)]
pub struct Calibration {
    ticks0: u64,
    t0: Instant,
    /// Measured once enough time has passed to be precise.
    hz: OnceLock<f64>,
}

impl Default for Calibration {
    fn default() -> Self {
        Self::start()
    }
}

/// How long after the first reading the rate is precise enough to keep
/// (the clocks are read within a microsecond of each other: 1 ppm).
const SETTLE_SECS: f64 = 1.0;

impl Calibration {
    pub fn start() -> Self {
        Calibration {
            ticks0: now(),
            t0: Instant::now(),
            hz: OnceLock::new(),
        }
    }

    /// Counter ticks per second.
    pub fn hz(&self) -> f64 {
        if let Some(&hz) = self.hz.get() {
            return hz;
        }
        let (ticks, secs) = (now(), self.t0.elapsed().as_secs_f64());
        let hz = if secs > 0.0 {
            ticks.wrapping_sub(self.ticks0) as f64 / secs
        } else {
            0.0
        };
        if secs >= SETTLE_SECS && hz > 0.0 {
            let _ = self.hz.set(hz);
        }
        hz
    }

    /// `ticks` in nanoseconds (0 before the rate can be measured).
    pub fn to_ns(&self, ticks: u64) -> u64 {
        let hz = self.hz();
        if hz > 0.0 {
            (ticks as f64 * 1e9 / hz) as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_forward_at_a_plausible_rate() {
        let c = Calibration::start();
        let a = now();
        std::thread::sleep(Duration::from_millis(20));
        let b = now();
        assert!(b > a, "the counter must move: {a} -> {b}");
        let hz = c.hz();
        // Any CPU of the last twenty years: 100 MHz .. 10 GHz (1 GHz for
        // the nanosecond fallback).
        assert!((1e8..1e10).contains(&hz), "implausible rate {hz} Hz");
        let ns = c.to_ns(b - a);
        assert!(
            (15_000_000..2_000_000_000).contains(&ns),
            "20 ms sleep measured as {ns} ns"
        );
    }
}
