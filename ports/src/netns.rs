//! Running a piece of work inside another network namespace (a
//! container's), on a thread of its own: `setns` changes only the calling
//! thread, and that thread ends with the work, so no other thread of the
//! switch ever runs in the wrong namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Runs `f` on a new thread inside the network namespace at `path`
/// (`/proc/PID/ns/net`, `/run/netns/NAME`) and returns what it returned.
pub fn run_in<T, F>(path: &Path, f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let ns = File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: `ns` is an open namespace file for the whole call;
            // setns changes this thread's network namespace only.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread inside the namespace panicked")))
    })
}
