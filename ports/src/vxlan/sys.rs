//! The system calls of the VXLAN underlay, behind safe functions: socket
//! options, the raw IPv4 socket, `recvmmsg`/`sendmmsg` and `getifaddrs`.
//!
//! [`RecvMsgs`] and [`SendMsgs`] hold the message headers of one batched
//! call, allocated once with their queue. Every pointer in a header is
//! written afresh from `&mut self` at the start of each call and used only
//! during it, so the stored pointers never outlive what they point at.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Most datagrams one [`RecvMsgs::recv`] takes (a batch).
pub const RECV_MAX: usize = 32;
/// Most datagrams one [`SendMsgs::send`] hands over.
pub const SEND_MAX: usize = 64;

/// `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)`, non-blocking: sends IPv4
/// datagrams whose header the caller wrote (IPPROTO_RAW implies
/// IP_HDRINCL). Receives nothing. Needs CAP_NET_RAW.
pub fn raw_ipv4_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket() call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the integer socket option `level`/`opt` to `value`.
pub fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size;
    // the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the integer socket option `level`/`opt`.
pub fn get_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and writable, and `len` says how
    // many bytes `value` has.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// One datagram [`RecvMsgs::recv`] received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes received: into its buffer, and past that into its spill area.
    pub len: usize,
    /// The sender's IPv4 address, host byte order.
    pub from: u32,
    /// The kernel cut it short (MSG_TRUNC): the buffer was too small.
    pub truncated: bool,
}

/// Control buffer for one message: room for an `SO_RXQ_OVFL` cmsg
/// (CMSG_SPACE(4) = 24 bytes on 64-bit), 8-byte aligned as cmsghdr wants.
type Control = [u64; 4];

/// Headers for one `recvmmsg` of up to [`RECV_MAX`] datagrams.
pub struct RecvMsgs {
    hdrs: Box<[libc::mmsghdr; RECV_MAX]>,
    /// Per message: its buffer, then its spill area.
    iovs: Box<[[libc::iovec; 2]; RECV_MAX]>,
    names: Box<[libc::sockaddr_in; RECV_MAX]>,
    ctrl: Box<[Control; RECV_MAX]>,
    /// Datagrams the socket dropped, as last reported by `SO_RXQ_OVFL`.
    drops: u32,
}

// SAFETY: the raw pointers inside the headers are rewritten from `&mut
// self` at the start of every call and only used during it; between calls
// they are plain stale numbers that nothing reads, so moving the struct to
// another thread is harmless.
unsafe impl Send for RecvMsgs {}

impl RecvMsgs {
    pub fn new() -> Self {
        RecvMsgs {
            // SAFETY: mmsghdr, iovec and sockaddr_in are plain old data for
            // which all-zero (null pointers, zero lengths) is valid.
            hdrs: Box::new(unsafe { std::mem::zeroed() }),
            // SAFETY: as above.
            iovs: Box::new(unsafe { std::mem::zeroed() }),
            // SAFETY: as above.
            names: Box::new(unsafe { std::mem::zeroed() }),
            ctrl: Box::new([[0; 4]; RECV_MAX]),
            drops: 0,
        }
    }

    /// Receives up to `bufs.len()` datagrams (at most [`RECV_MAX`]) with one
    /// non-blocking `recvmmsg`, datagram `k` into `bufs[k]` and, when it is
    /// longer, on into `spill[k]` (if given), and describes them in
    /// `out[k]`. Returns how many arrived; an error (EAGAIN when nothing was
    /// waiting) when none did.
    pub fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        bufs: &mut [&mut [u8]],
        spill: &mut [&mut [u8]],
        out: &mut [Datagram],
    ) -> io::Result<usize> {
        let n = bufs.len().min(out.len()).min(RECV_MAX);
        if n == 0 {
            return Ok(0);
        }
        for (k, buf) in bufs.iter_mut().take(n).enumerate() {
            self.iovs[k][0] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let spilled = match spill.get_mut(k) {
                Some(s) => {
                    self.iovs[k][1] = libc::iovec {
                        iov_base: s.as_mut_ptr().cast(),
                        iov_len: s.len(),
                    };
                    2
                }
                None => 1,
            };
            let h = &mut self.hdrs[k];
            h.msg_hdr.msg_name = (&mut self.names[k] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = self.iovs[k].as_mut_ptr();
            h.msg_hdr.msg_iovlen = spilled;
            h.msg_hdr.msg_control = self.ctrl[k].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = size_of::<Control>() as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let got = loop {
            // SAFETY: the first `n` headers were just filled: each points at
            // one or two iovecs (a buffer of `bufs` and one of `spill`, each
            // writable for its length and borrowed mutably for this call),
            // one sockaddr_in and one
            // control buffer of the lengths given, all alive until the call
            // returns. No timeout is passed.
            let rc = unsafe {
                libc::recvmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            match usize::try_from(rc) {
                Ok(got) => break got.min(n),
                Err(_) => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        };
        for (k, d) in out.iter_mut().take(got).enumerate() {
            let h = &self.hdrs[k];
            let room = bufs[k].len() + spill.get(k).map_or(0, |s| s.len());
            *d = Datagram {
                len: (h.msg_len as usize).min(room),
                from: u32::from_be(self.names[k].sin_addr.s_addr),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        // The drop count is cumulative and stamped on each datagram as it
        // is queued, so the last one carries the newest value (and none
        // at all while it is zero).
        if let Some(drops) = got.checked_sub(1).and_then(|k| self.rxq_ovfl(k)) {
            self.drops = drops;
        }
        Ok(got)
    }

    /// Datagrams the socket dropped (receive buffer full), as last
    /// reported; zero unless `SO_RXQ_OVFL` is on.
    pub fn socket_drops(&self) -> u32 {
        self.drops
    }

    /// The `SO_RXQ_OVFL` value in the control data of message `k`, which
    /// the last `recv` filled.
    fn rxq_ovfl(&self, k: usize) -> Option<u32> {
        let h = &self.hdrs.get(k)?.msg_hdr;
        // SAFETY: `h` is a header the kernel just filled: msg_control points
        // into `self.ctrl[k]` (alive, borrowed by `&self`), and
        // msg_controllen says how much of it holds cmsgs, so the CMSG_*
        // walk stays inside that buffer.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(h) };
        while !c.is_null() {
            // SAFETY: CMSG_FIRSTHDR/NXTHDR return null or a complete cmsghdr
            // inside the control buffer; it may be unaligned in principle,
            // so it is read as such.
            let cm = unsafe { c.read_unaligned() };
            if cm.cmsg_level == libc::SOL_SOCKET && cm.cmsg_type == libc::SO_RXQ_OVFL {
                // SAFETY: an SO_RXQ_OVFL cmsg carries one u32 right after
                // its header, inside the buffer (the kernel checked the
                // space when it wrote it).
                return Some(unsafe { libc::CMSG_DATA(c).cast::<u32>().read_unaligned() });
            }
            // SAFETY: as for CMSG_FIRSTHDR; `c` is a cmsg of this header.
            c = unsafe { libc::CMSG_NXTHDR(h, c) };
        }
        None
    }
}

/// Headers for one `sendmmsg` of up to [`SEND_MAX`] datagrams.
pub struct SendMsgs {
    hdrs: Box<[libc::mmsghdr; SEND_MAX]>,
    iovs: Box<[libc::iovec; SEND_MAX]>,
    names: Box<[libc::sockaddr_in; SEND_MAX]>,
}

// SAFETY: as for `RecvMsgs`: the pointers are rewritten at the start of
// every call and only used during it.
unsafe impl Send for SendMsgs {}

impl SendMsgs {
    pub fn new() -> Self {
        SendMsgs {
            // SAFETY: mmsghdr, iovec and sockaddr_in are plain old data for
            // which all-zero is valid.
            hdrs: Box::new(unsafe { std::mem::zeroed() }),
            // SAFETY: as above.
            iovs: Box::new(unsafe { std::mem::zeroed() }),
            // SAFETY: as above.
            names: Box::new(unsafe { std::mem::zeroed() }),
        }
    }

    /// Sends `msgs[k]` to `dests[k]` (port 0, as a raw socket wants) with
    /// one non-blocking `sendmmsg`. Returns how many the kernel took, from
    /// the first; an error only when it took none (the error is then the
    /// first message's).
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        msgs: &[&[u8]],
        dests: &[Ipv4Addr],
    ) -> io::Result<usize> {
        let n = msgs.len().min(dests.len()).min(SEND_MAX);
        if n == 0 {
            return Ok(0);
        }
        for (k, (msg, dest)) in msgs.iter().zip(dests).take(n).enumerate() {
            // The kernel only reads through iov_base on send.
            self.iovs[k] = libc::iovec {
                iov_base: msg.as_ptr().cast_mut().cast(),
                iov_len: msg.len(),
            };
            self.names[k].sin_family = libc::AF_INET as libc::sa_family_t;
            self.names[k].sin_port = 0;
            self.names[k].sin_addr.s_addr = u32::from(*dest).to_be();
            let h = &mut self.hdrs[k];
            h.msg_hdr.msg_name = (&mut self.names[k] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[k];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        loop {
            // SAFETY: the first `n` headers were just filled: each points at
            // one iovec over a message of `msgs` (alive and unchanged for
            // the call; the kernel only reads it) and one sockaddr_in.
            let rc = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            match usize::try_from(rc) {
                Ok(sent) => return Ok(sent.min(n)),
                Err(_) => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Every IPv4 address of this network namespace, with the interface that
/// holds it (`getifaddrs`).
pub fn ipv4_addrs() -> io::Result<Vec<(String, Ipv4Addr)>> {
    /// Frees the list however the walk ends.
    struct List(*mut libc::ifaddrs);
    impl Drop for List {
        fn drop(&mut self) {
            if !self.0.is_null() {
                // SAFETY: the pointer came from getifaddrs and is freed only
                // here, after the last use of any node.
                unsafe { libc::freeifaddrs(self.0) };
            }
        }
    }
    let mut list = List(std::ptr::null_mut());
    // SAFETY: getifaddrs writes the head of a list it allocated into the
    // pointer it is given.
    if unsafe { libc::getifaddrs(&mut list.0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = list.0;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list, which stays allocated until
        // `list` is dropped after the loop.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr points to a sockaddr, whose family
        // field every sockaddr type starts with.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if libc::c_int::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a whole sockaddr_in; read unaligned
        // since the list's layout is libc's business.
        let sin = unsafe { ifa.ifa_addr.cast::<libc::sockaddr_in>().read_unaligned() };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        out.push((
            name.to_string_lossy().into_owned(),
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        ));
    }
    Ok(out)
}
