//! The three C library calls the benchmark needs beyond std: catching
//! Ctrl-C (so the namespaces, veths, bridge and daemon are removed on the way
//! out), sending a signal to a process we started, and asking whether we run
//! as root. Declared here rather than pulling in the `libc` crate, whose
//! addition to bench/Cargo.toml is not ours to make; std links the C library
//! anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn kill(pid: i32, sig: i32) -> i32;
    fn geteuid() -> u32;
}

extern "C" fn on_signal(_sig: i32) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT, SIGTERM and SIGHUP set a flag instead of killing the
/// process; every wait in the benchmark checks it ([`sleep`], `cmd::run`).
pub fn catch_interrupts() {
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // SAFETY: `on_signal` has the C signature signal(2) expects and only
        // stores to an atomic, which is async-signal-safe.
        unsafe { signal(sig, on_signal) };
    }
}

/// True once Ctrl-C (or SIGTERM/SIGHUP) has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Error text used when a wait was cut short by Ctrl-C.
pub const INTERRUPTED_MSG: &str = "interrupted (Ctrl-C); cleaning up";

/// Sleeps for `d` in short slices, returning early with an error on Ctrl-C.
pub fn sleep(d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    loop {
        if interrupted() {
            return Err(INTERRUPTED_MSG.into());
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Sends `sig` to process `pid`. Only ever called with the pid of a process
/// this benchmark started. Returns false if the process is gone.
pub fn send_signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // never a process group or "every process"
    }
    // SAFETY: plain syscall wrapper; `pid` is a positive single process id.
    unsafe { kill(pid, sig) == 0 }
}

/// Sends `sig` to the process group `pgid` (a child we started in a group
/// of its own, and whatever it forked).
pub fn signal_group(pgid: u32, sig: i32) -> bool {
    match i32::try_from(pgid) {
        // Never group 0 (our own) or 1 (init's).
        // SAFETY: plain syscall wrapper; -pgid names one process group.
        Ok(p) if p > 1 => unsafe { kill(-p, sig) == 0 },
        _ => false,
    }
}

/// True if the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and has no side effects.
    unsafe { geteuid() == 0 }
}

/// True while `/proc/PID` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(") ").and_then(|(_, r)| r.bytes().next()) != Some(b'Z'),
        Err(_) => false,
    }
}

/// Asks `pid` to stop with SIGTERM and waits up to `grace`; then SIGKILL.
pub fn terminate(pid: u32, grace: Duration) {
    if !send_signal(pid, SIGTERM) {
        return;
    }
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    send_signal(pid, SIGKILL);
}
