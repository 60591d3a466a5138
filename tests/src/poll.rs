//! Waiting for a condition with a deadline instead of sleeping blindly.

use std::time::{Duration, Instant};

/// How often conditions are re-checked.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Calls `f` until it returns true or `timeout` passes; true on success.
/// `f` is always called at least once, and once more at the deadline.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || f().then_some(())).is_some()
}

/// Calls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_at_the_deadline() {
        let start = Instant::now();
        let mut calls = 0;
        assert!(!wait_until(Duration::from_millis(120), || {
            calls += 1;
            false
        }));
        assert!(start.elapsed() >= Duration::from_millis(120));
        assert!(calls >= 2);
        assert_eq!(wait_for(Duration::ZERO, || Some(5)), Some(5));
    }
}
