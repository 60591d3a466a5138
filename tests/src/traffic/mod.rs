//! Real traffic between test hosts: ping, TCP, UDP and raw Ethernet frames,
//! all from sockets opened inside the hosts' namespaces.

pub mod pattern;
pub mod ping;
pub mod raw;
pub mod tcp;
pub mod udp;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits until `fd` is readable or `timeout` passes. True if readable.
pub(crate) fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `pfd` is a valid pollfd for the duration of the call and
        // the count passed is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
