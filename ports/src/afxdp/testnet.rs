//! What the veth tests share: veth pairs and network namespaces that delete
//! themselves, an AF_PACKET socket on one interface, and small system
//! helpers. Everything a test creates is named after the test process and
//! removed on drop.

use super::netdev;
use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::time::{Duration, Instant};

pub(super) fn poll_in(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    rc == 1 && p.revents & libc::POLLIN != 0
}

pub(super) fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it; the call
    // changes only the calling thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub(super) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A veth pair this test created; deleted on drop.
pub(super) struct Veth {
    pub(super) a: String,
    pub(super) b: String,
}

impl Veth {
    /// Creates the pair (with two queues per end when `two_queues`), or
    /// returns `None` with a message when not running as root.
    pub(super) fn new(tag: &str, two_queues: bool) -> Option<Veth> {
        if !is_root() {
            eprintln!("skipped: needs root to create veth pairs and attach XDP");
            return None;
        }
        let q: &[&str] = if two_queues {
            &["numtxqueues", "2", "numrxqueues", "2"]
        } else {
            &[]
        };
        let v = Self::with_queues(tag, q, q);
        if two_queues {
            for n in [&v.a, &v.b] {
                run("ethtool", &["-L", n, "rx", "2", "tx", "2"]);
            }
        }
        Some(v)
    }

    /// Creates the pair with `ip link` queue arguments for each end (root
    /// is checked by the caller), its `b` end up.
    pub(super) fn with_queues(tag: &str, qa: &[&str], qb: &[&str]) -> Veth {
        let a = format!("xt{}{tag}a", std::process::id());
        let b = format!("xt{}{tag}b", std::process::id());
        assert!(a.len() <= netdev::MAX_IFNAME);
        let mut args = vec!["link", "add", &a];
        args.extend(qa);
        args.extend(["type", "veth", "peer", "name", &b]);
        args.extend(qb);
        run("ip", &args);
        // From here on the pair is ours: the guard deletes it.
        let v = Veth { a, b };
        for n in [&v.a, &v.b] {
            // Keep IPv6 neighbour discovery noise off the test links.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{n}/disable_ipv6"), "1");
        }
        run("ip", &["link", "set", &v.b, "up"]);
        v
    }

    pub(super) fn xdp_attached(&self) -> bool {
        xdp_prog_name(&self.a).is_some()
    }

    /// Whether the program is gone within 2 s. Closing the link detaches
    /// at once, but a process another test thread is spawning holds copies
    /// of all fds (the link's too) from fork until exec closes them.
    pub(super) fn detached(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.xdp_attached() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", "dev", &self.a])
            .status();
    }
}

/// A network namespace this test created (`xn<pid><tag>`); deleted on
/// drop, and with it the interfaces moved into it. Sockets opened inside
/// hold it until they are closed, so they should be dropped first.
pub(super) struct Netns {
    pub(super) name: String,
}

impl Netns {
    pub(super) fn new(tag: &str) -> Netns {
        let name = format!("xn{}{tag}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Netns { name }
    }

    /// `ip -n <namespace> args...`.
    pub(super) fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args);
        run("ip", &all)
    }

    /// `cmd args...` run inside the namespace (`ip netns exec`).
    pub(super) fn exec(&self, cmd: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str(), cmd];
        all.extend(args);
        run("ip", &all)
    }

    /// Runs `f` on a thread of its own that has entered the namespace:
    /// sockets it opens (a `PacketSocket` on an interface there) stay in it.
    pub(super) fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("opening namespace {}: {e}", self.name));
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: plain setns() call with an open namespace fd; it
                // changes only this thread's network namespace.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The name of the XDP program attached to `ifname`, if there is one.
pub(super) fn xdp_prog_name(ifname: &str) -> Option<String> {
    let out = run("ip", &["-d", "link", "show", "dev", ifname]);
    let mut words = out.split_whitespace().skip_while(|w| *w != "prog/xdp");
    words.next()?;
    let name = words.skip_while(|w| *w != "name").nth(1);
    Some(name.unwrap_or("?").to_string())
}

pub(super) fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An AF_PACKET socket bound to one interface (receiving `proto` frames;
/// protocol 0 receives nothing and is for sending).
pub(super) struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    pub(super) fn open(ifname: &str, proto: u16) -> PacketSocket {
        let ifindex = netdev::ifindex(ifname).unwrap();
        // SAFETY: plain socket() call; the result is checked and owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto.to_be()),
            )
        };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 32 << 20;
        // SAFETY: `size` is a live c_int of the size passed.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        PacketSocket { fd }
    }

    pub(super) fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is a live buffer of the length passed.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            rc,
            frame.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
    }

    /// The next frame received within `timeout_ms`, as its bytes.
    pub(super) fn recv_frame(&self, timeout_ms: i32) -> Option<Vec<u8>> {
        if !poll_in(self.fd.as_raw_fd(), timeout_ms) {
            return None;
        }
        let mut buf = vec![0u8; 16384];
        let n = self.recv_into(&mut buf)?;
        buf.truncate(n);
        Some(buf)
    }

    /// Distinct frames (by the number `parse` finds in them) received
    /// until `want` or `idle` without any.
    pub(super) fn collect(
        &self,
        want: usize,
        idle: Duration,
        parse: impl Fn(&[u8]) -> Option<u32>,
    ) -> HashSet<u32> {
        let mut got = HashSet::new();
        let mut buf = vec![0u8; 16384];
        while got.len() < want {
            if !poll_in(self.fd.as_raw_fd(), idle.as_millis() as i32) {
                break;
            }
            if let Some(seq) = self.recv_into(&mut buf).and_then(|n| parse(&buf[..n])) {
                got.insert(seq);
            }
        }
        got
    }

    /// One frame into `buf` without waiting; its length, or `None`.
    fn recv_into(&self, buf: &mut [u8]) -> Option<usize> {
        let (fd, len) = (self.fd.as_raw_fd(), buf.len());
        // SAFETY: `buf` is a live, writable buffer of the length passed.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), len, libc::MSG_DONTWAIT) };
        usize::try_from(n).ok()
    }
}
