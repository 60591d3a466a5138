//! "Containers" for the attachment tests: a network namespace with a
//! process in it (`unshare -n sleep`), or a named one (`ip netns add`), and
//! what a test does with them: look at their links, addresses and routes,
//! ping, and move TCP and UDP data checked byte for byte.
//!
//! A container is removed on drop (its process killed, or its namespace
//! deleted), also when the test panics; a process container is also killed
//! by the kernel when the thread that started it exits.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::{run, Output, ADMIN_TIMEOUT};
use crate::netns::Netns;
use crate::poll::wait_until;
use crate::traffic::pattern;

/// How long a new process may take to get its own namespace.
const UNSHARE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a TCP connection, or for progress in a transfer.
const STALL: Duration = Duration::from_secs(5);

enum Kind {
    Process(Option<Child>),
    Named(Option<Netns>),
}

/// A network namespace standing in for a container.
pub struct Container {
    kind: Kind,
    path: PathBuf,
}

impl Container {
    /// A process in a fresh network namespace (`unshare -n sleep 1000`).
    pub fn process() -> Container {
        let mut cmd = Command::new("unshare");
        cmd.args(["-n", "sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = crate::cmd::spawn_tied(&mut cmd)
            .unwrap_or_else(|e| panic!("could not start unshare -n sleep: {e}"));
        let path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let c = Container {
            kind: Kind::Process(Some(child)),
            path,
        };
        // Until unshare has run, the process is still in our namespace.
        let own = ns_inode(Path::new("/proc/thread-self/ns/net"));
        let moved = wait_until(UNSHARE_TIMEOUT, || {
            let ino = ns_inode(&c.path);
            ino.is_some() && ino != own
        });
        assert!(
            moved,
            "process {} did not get its own network namespace within {UNSHARE_TIMEOUT:?}",
            c.name()
        );
        c.quiet();
        c
    }

    /// A named namespace (`/var/run/netns/NAME`) with no process in it.
    pub fn named() -> Container {
        let ns = Netns::create();
        let path = PathBuf::from("/var/run/netns").join(ns.name());
        Container {
            kind: Kind::Named(Some(ns)),
            path,
        }
    }

    /// IPv6 off (no router solicitations or MLD reports), loopback up.
    fn quiet(&self) {
        for key in ["all", "default"] {
            let p = format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6");
            let res = self.run_in(move || std::fs::write(&p, "1"));
            if let Ok(Err(e)) | Err(e) = res {
                panic!("disabling IPv6 in {}: {e}", self.name());
            }
        }
        self.ip_ok(&["link", "set", "lo", "up"]);
    }

    /// A namespace someone else owns (a Docker container's
    /// `/proc/PID/ns/net`): used, never removed.
    pub fn at(path: PathBuf) -> Container {
        Container {
            kind: Kind::Named(None),
            path,
        }
    }

    /// What `vswctl attach` takes: the PID or the namespace name.
    pub fn name(&self) -> String {
        match &self.kind {
            Kind::Process(Some(c)) => c.id().to_string(),
            Kind::Named(Some(ns)) => ns.name().to_string(),
            _ => self.path.to_string_lossy().into_owned(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::Process(Some(c)) => Some(c.id()),
            _ => None,
        }
    }

    /// The namespace file (`/proc/PID/ns/net` or `/var/run/netns/NAME`).
    pub fn ns_path(&self) -> &Path {
        &self.path
    }

    /// Ends the container: kills the process or deletes the namespace, so
    /// the namespace goes away (once nothing else holds it).
    pub fn kill(&mut self) {
        match &mut self.kind {
            Kind::Process(child) => {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Kind::Named(ns) => {
                ns.take();
            }
        }
    }

    /// Runs `ip ARGS...` inside the container.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path.display()))
            .arg("ip")
            .args(args);
        run(c, ADMIN_TIMEOUT)
    }

    /// Runs `ip ARGS...` inside the container; panics if it fails.
    pub fn ip_ok(&self, args: &[&str]) -> String {
        let out = self.ip(args);
        assert!(out.success(), "command in container failed:\n{out}");
        out.stdout
    }

    /// Names of the container's interfaces.
    pub fn links(&self) -> BTreeSet<String> {
        let v = self.ip_json(&["-j", "link", "show"]);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str().map(String::from))
            .collect()
    }

    /// `ip -j -d link show dev IFNAME`, or None when there is no such link.
    pub fn link(&self, ifname: &str) -> Option<Value> {
        let out = self.ip(&["-j", "-d", "link", "show", "dev", ifname]);
        if !out.success() {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("ip printed invalid JSON ({e}):\n{out}"));
        v.as_array().and_then(|a| a.first()).cloned()
    }

    /// Every IPv4 address but loopback's, as "IFNAME ADDR/PREFIX", sorted.
    pub fn addresses(&self) -> Vec<String> {
        let v = self.ip_json(&["-j", "-4", "addr", "show"]);
        let mut out = Vec::new();
        for l in v.as_array().into_iter().flatten() {
            let ifname = l["ifname"].as_str().unwrap_or_default();
            if ifname == "lo" {
                continue;
            }
            for a in l["addr_info"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{ifname} {}/{}",
                    a["local"].as_str().unwrap_or_default(),
                    a["prefixlen"]
                ));
            }
        }
        out.sort();
        out
    }

    /// The IPv4 routes of the main table, one line each, as `ip route` prints.
    pub fn routes(&self) -> Vec<String> {
        self.ip_ok(&["-4", "route", "show"])
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn ip_json(&self, args: &[&str]) -> Value {
        let text = self.ip_ok(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("ip {args:?} printed invalid JSON ({e}): {text}"))
    }

    /// Sends `count` pings to `to`; the number answered.
    pub fn ping(&self, to: Ipv4Addr, count: u32) -> u32 {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path.display())).args([
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-W",
            "1",
            "-i",
            "0.2",
            &to.to_string(),
        ]);
        let out = run(c, Duration::from_millis(2_000 + 400 * u64::from(count)));
        out.stdout
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .and_then(|l| l.split(',').nth(1)?.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Pings once at a time until an answer comes or `timeout` passes.
    pub fn wait_ping(&self, to: Ipv4Addr, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.ping(to, 1) == 1 {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `f` on a thread inside the container's namespace.
    pub fn run_in<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        spawn_in(&self.path, f)
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("thread inside container panicked")))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Runs `f` on a new thread inside the namespace at `path`.
pub fn spawn_in<T, F>(path: &Path, f: F) -> thread::JoinHandle<io::Result<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = path.to_path_buf();
    thread::spawn(move || {
        let file = File::open(&path)?;
        // SAFETY: `file` is an open namespace file that lives across the
        // call; setns changes only this thread's network namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f())
    })
}

/// Names of the root namespace's interfaces.
pub fn root_links() -> BTreeSet<String> {
    let mut c = Command::new("ip");
    c.args(["-j", "link", "show"]);
    let out = run(c, ADMIN_TIMEOUT);
    assert!(out.success(), "{out}");
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("ip printed invalid JSON ({e}):\n{out}"));
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect()
}

/// Sends `bytes` bytes of a pseudo-random stream over TCP from `from` to
/// `to_ip` inside `to`; Ok when every byte arrived and matched.
pub fn tcp_transfer(
    from: &Container,
    to: &Container,
    to_ip: Ipv4Addr,
    bytes: u64,
) -> Result<(), String> {
    let seed = crate::frames::new_token();
    let deadline = Instant::now() + Duration::from_secs(30) + Duration::from_millis(bytes / 2_000);
    let (port_tx, port_rx) = mpsc::channel();
    let server = spawn_in(to.ns_path(), move || -> Result<u64, String> {
        let l = TcpListener::bind((to_ip, 0)).map_err(|e| format!("bind {to_ip}: {e}"))?;
        let _ = port_tx.send(l.local_addr().map_err(|e| e.to_string())?.port());
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < STALL * 2 => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        loop {
            if Instant::now() > deadline {
                return Err(format!("server: time limit passed after {got} bytes"));
            }
            let n = s
                .read(&mut buf)
                .map_err(|e| format!("server read after {got} bytes: {e}"))?;
            if n == 0 {
                return Ok(got);
            }
            if let Some(i) = pattern::first_mismatch(seed, got, &buf[..n]) {
                return Err(format!("data corrupted at byte {}", got + i as u64));
            }
            got += n as u64;
        }
    });
    let port = port_rx
        .recv_timeout(STALL)
        .map_err(|_| "the server never reported its port".to_string());
    let client = port.map(|port| {
        spawn_in(from.ns_path(), move || -> Result<(), String> {
            let addr = SocketAddr::from((to_ip, port));
            let mut s = TcpStream::connect_timeout(&addr, STALL)
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            s.set_write_timeout(Some(STALL))
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            while sent < bytes {
                let n = (bytes - sent).min(buf.len() as u64) as usize;
                pattern::fill(seed, sent, &mut buf[..n]);
                s.write_all(&buf[..n])
                    .map_err(|e| format!("write after {sent} bytes: {e}"))?;
                sent += n as u64;
            }
            s.shutdown(Shutdown::Write).map_err(|e| e.to_string())
        })
    });
    let join = |h: thread::JoinHandle<io::Result<Result<(), String>>>| match h.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("client thread panicked".into()),
    };
    let client_res = match client {
        Ok(h) => join(h),
        Err(e) => Err(e),
    };
    let server_res = match server.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("server thread panicked".into()),
    };
    match (client_res, server_res) {
        (Ok(()), Ok(got)) if got == bytes => Ok(()),
        (Ok(()), Ok(got)) => Err(format!("received {got} of {bytes} bytes")),
        (c, s) => Err(format!("client: {c:?}; server: {s:?}")),
    }
}

/// Sends `n` UDP datagrams of varying size from `from` to `to_ip` inside
/// `to`, each echoed back; Ok when every one came back intact (a lost one
/// is sent again, up to three times).
pub fn udp_echo(from: &Container, to: &Container, to_ip: Ipv4Addr, n: u32) -> Result<(), String> {
    let seed = crate::frames::new_token();
    let (port_tx, port_rx) = mpsc::channel();
    let server = spawn_in(to.ns_path(), move || -> Result<(), String> {
        let s = UdpSocket::bind((to_ip, 0)).map_err(|e| format!("bind {to_ip}: {e}"))?;
        let _ = port_tx.send(s.local_addr().map_err(|e| e.to_string())?.port());
        s.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 2048];
        loop {
            let (len, peer) = match s.recv_from(&mut buf) {
                Ok(x) => x,
                Err(_) => return Ok(()), // the client is done (or gone)
            };
            if &buf[..len] == b"done" {
                return Ok(());
            }
            s.send_to(&buf[..len], peer).map_err(|e| e.to_string())?;
        }
    });
    let port = port_rx
        .recv_timeout(STALL)
        .map_err(|_| "the server never reported its port".to_string())?;
    let client = spawn_in(from.ns_path(), move || -> Result<(), String> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
        s.connect((to_ip, port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        let mut out = vec![0u8; 1472];
        let mut back = [0u8; 2048];
        for seq in 0..n {
            let len = 16 + (seq as usize * 337) % (1472 - 16);
            pattern::fill(seed ^ u64::from(seq), 0, &mut out[..len]);
            let mut ok = false;
            for _ in 0..3 {
                s.send(&out[..len])
                    .map_err(|e| format!("send #{seq}: {e}"))?;
                match s.recv(&mut back) {
                    Ok(m) if back[..m] == out[..len] => {
                        ok = true;
                        break;
                    }
                    Ok(_) => return Err(format!("datagram #{seq} came back changed")),
                    Err(_) => continue,
                }
            }
            if !ok {
                return Err(format!("datagram #{seq} ({len} bytes) never came back"));
            }
        }
        let _ = s.send(b"done");
        Ok(())
    });
    let c = match client.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("client thread panicked".into()),
    };
    let s = match server.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("server thread panicked".into()),
    };
    c.and(s)
}
