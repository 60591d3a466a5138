//! Test helpers shared by the AF_PACKET and TAP tests: interfaces that clean
//! up after themselves, a plain raw socket to talk to them, and marked frames.

use crate::netdev;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// A unique interface name for this test process: `<prefix><pid><tag>`.
pub fn ifname(prefix: &str, tag: &str) -> String {
    let name = format!("{prefix}{}{tag}", std::process::id());
    assert!(name.len() <= netdev::MAX_IFNAME, "{name} is too long");
    name
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the named interfaces when dropped, even when the test panics.
pub struct LinkGuard(pub Vec<String>);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        for name in &self.0 {
            if netdev::exists(name) {
                let _ = Command::new("ip").args(["link", "del", name]).output();
            }
        }
    }
}

/// Creates the veth pair `<a>`/`<b>`, both up.
pub fn veth_pair(a: &str, b: &str) -> LinkGuard {
    let guard = LinkGuard(vec![a.to_string(), b.to_string()]);
    ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
    ip(&["link", "set", a, "up"]);
    ip(&["link", "set", b, "up"]);
    guard
}

/// A plain AF_PACKET socket bound to one interface, ignoring its own output.
pub struct RawSocket(OwnedFd);

impl RawSocket {
    pub fn bind(ifname: &str) -> RawSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket() call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: valid pointer and size of a c_int.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                4,
            )
        };
        assert_eq!(rc, 0, "PACKET_IGNORE_OUTGOING");
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = netdev::ifindex(ifname).expect("ifindex") as i32;
        // SAFETY: `sll` is valid and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        RawSocket(fd)
    }

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is valid for reads of its length.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Frames received within `wait` whose marker is in `want`, until all
    /// of them arrived.
    pub fn recv_marked(&self, want: &[u32], wait: Duration) -> Vec<(u32, Vec<u8>)> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < want.len() && Instant::now() < deadline {
            let (fd, len) = (self.0.as_raw_fd(), buf.len());
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), len, 0) };
            if n < 0 {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let f = &buf[..n as usize];
            if let Some(m) = marker(f).filter(|m| want.contains(m)) {
                got.push((m, f.to_vec()));
            }
        }
        got
    }
}

/// Waits until `fd` is readable or `ms` milliseconds passed.
pub fn wait_readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Local experimental EtherType, so the kernel's own frames are ignored.
const ETHERTYPE: u16 = 0x88b5;
const MAGIC: &[u8; 4] = b"VSWT";

/// A 60-byte frame to a foreign unicast MAC carrying `marker`, with an
/// optional VLAN tag (TPID, TCI).
pub fn frame(marker: u32, tag: Option<(u16, u16)>) -> Vec<u8> {
    let mut f = vec![
        0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
    ];
    if let Some((tpid, tci)) = tag {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&marker.to_be_bytes());
    f.resize(60, 0x5a);
    f
}

/// The marker of a frame built by [`frame`], tagged or not.
pub fn marker(f: &[u8]) -> Option<u32> {
    let at = |o: usize| f.get(o..o + 2) == Some(&ETHERTYPE.to_be_bytes()[..]);
    let body = if at(12) {
        14
    } else if at(16) {
        18
    } else {
        return None;
    };
    if f.get(body..body + 4)? != MAGIC {
        return None;
    }
    let m = f.get(body + 4..body + 8)?;
    Some(u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
}
