//! A NAT lab: a switch with one bridge whose gateway is the containers'
//! router, containers attached to it, and an "outside" namespace on the
//! uplink, holding the next hop and a server address beyond it.
//!
//! ```text
//!  containers 172.31.0.10.. --[br, gateway 172.31.0.1/24]--(switch)--
//!      uplink 192.0.2.2/24 -- outside 192.0.2.1 (next hop), 198.51.100.10 (server)
//! ```

use crate::container::{spawn_in, Container};
use crate::names;
use crate::traffic::pattern;
use crate::veth::Veth;
use crate::Daemon;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const GATEWAY: &str = "172.31.0.1/24";
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
pub const UPLINK: &str = "192.0.2.2/24";
pub const UPLINK_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const NEXTHOP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// An address beyond the next hop (on the outside namespace's loopback).
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const STALL: Duration = Duration::from_secs(10);

pub struct NatLab {
    pub d: Daemon,
    pub br: String,
    pub uplink: String,
    pub outside: Container,
    pub cs: Vec<Container>,
    _link: Veth,
}

/// The address of container `i`.
pub fn container_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 31, 0, 10 + i as u8)
}

impl NatLab {
    /// The lab with `n` containers attached (addresses from
    /// [`container_ip`], the gateway taken from the bridge).
    pub fn new(n: usize) -> NatLab {
        let d = Daemon::start();
        let br = names::unique("br");
        d.vsctl_ok(&["add-br", &br]);
        d.vsctl_ok(&[
            "set",
            "bridge",
            &br,
            &format!("other_config:gateway={GATEWAY}"),
        ]);
        let outside = Container::named();
        let uplink = names::unique("up");
        let ns = outside.name();
        let link = Veth::create(&uplink, &ns, "out0", names::unique_mac());
        outside.ip_ok(&["addr", "add", &format!("{NEXTHOP}/24"), "dev", "out0"]);
        outside.ip_ok(&["link", "set", "lo", "up"]);
        outside.ip_ok(&["addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
        d.vsctl_ok(&["add-uplink", &uplink, &format!("{UPLINK}@{NEXTHOP}")]);
        let mut lab = NatLab {
            d,
            br,
            uplink,
            outside,
            cs: Vec::new(),
            _link: link,
        };
        for _ in 0..n {
            lab.add_container();
        }
        lab
    }

    /// Attaches one more container; returns its index.
    pub fn add_container(&mut self) -> usize {
        let i = self.cs.len();
        let c = Container::named();
        let cidr = format!("{}/24", container_ip(i));
        self.d
            .vsctl_ok(&["attach", &self.br, &c.name(), &cidr, "--ifname", "eth1"]);
        self.cs.push(c);
        i
    }

    pub fn conntrack(&self) -> Vec<serde_json::Value> {
        match self.d.vsctl_json(&["conntrack/show"]) {
            serde_json::Value::Array(a) => a,
            other => panic!("conntrack/show --format json is not a list: {other}"),
        }
    }
}

/// What a [`tcp_server`] thread ends with: the peer and the bytes read.
pub type ServerResult = JoinHandle<io::Result<Result<(SocketAddr, u64), String>>>;

/// A TCP server on `ip:port` in `ns` that takes one connection and reads
/// until EOF: the peer's address and the byte count, each byte checked
/// against `seed`'s pattern.
pub fn tcp_server(
    ns: &Container,
    ip: Ipv4Addr,
    port: u16,
    seed: u64,
) -> io::Result<(u16, ServerResult)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = spawn_in(
        ns.ns_path(),
        move || -> Result<(SocketAddr, u64), String> {
            let l = TcpListener::bind((ip, port)).map_err(|e| format!("bind {ip}:{port}: {e}"));
            let l = match l {
                Ok(l) => {
                    let _ = tx.send(Ok(l.local_addr().map(|a| a.port()).unwrap_or(port)));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            let start = Instant::now();
            let (mut s, peer) = loop {
                match l.accept() {
                    Ok(x) => break x,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < STALL * 2 =>
                    {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => return Err(format!("accept: {e}")),
                }
            };
            s.set_nonblocking(false).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0u64;
            loop {
                let n = s
                    .read(&mut buf)
                    .map_err(|e| format!("read after {got} bytes: {e}"))?;
                if n == 0 {
                    return Ok((peer, got));
                }
                if let Some(i) = pattern::first_mismatch(seed, got, &buf[..n]) {
                    return Err(format!("data corrupted at byte {}", got + i as u64));
                }
                got += n as u64;
            }
        },
    );
    let port = rx
        .recv_timeout(STALL)
        .map_err(|_| io::Error::other("the server never started"))?
        .map_err(io::Error::other)?;
    Ok((port, h))
}

/// Connects from `ns` to `to` (from `local_port` when given), sends
/// `bytes` bytes of `seed`'s pattern and closes.
pub fn tcp_send(
    ns: &Container,
    to: SocketAddrV4,
    local_port: Option<u16>,
    bytes: u64,
    seed: u64,
) -> Result<(), String> {
    let h = spawn_in(ns.ns_path(), move || -> Result<(), String> {
        let mut s = match local_port {
            None => TcpStream::connect_timeout(&to.into(), STALL)
                .map_err(|e| format!("connect {to}: {e}"))?,
            Some(p) => connect_from(p, to)?,
        };
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
        s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
        // Wait for the server's close, so the whole FIN handshake is done.
        s.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
        let _ = s.read(&mut [0u8; 1]);
        Ok(())
    });
    match h.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("client thread panicked".into()),
    }
}

/// A TCP connection from a fixed local port (a socket bound before
/// connect, as a client with a fixed source port).
fn connect_from(port: u16, to: SocketAddrV4) -> Result<TcpStream, String> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until
    // it is handed to TcpStream; the address structs live across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error().to_string());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let sa = |a: SocketAddrV4| libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let local = sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(format!("bind port {port}: {}", io::Error::last_os_error()));
        }
        let remote = sa(to);
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(format!("connect {to}: {}", io::Error::last_os_error()));
        }
        Ok(stream)
    }
}

/// Runs a whole TCP transfer from `from` to `to_ns`, which listens on
/// `listen`; the client connects to `dial`. Returns the address the
/// server saw the client at.
pub fn tcp_through(
    from: &Container,
    to_ns: &Container,
    listen: SocketAddrV4,
    dial: SocketAddrV4,
    bytes: u64,
) -> Result<SocketAddr, String> {
    let seed = crate::frames::new_token();
    let (_, server) =
        tcp_server(to_ns, *listen.ip(), listen.port(), seed).map_err(|e| e.to_string())?;
    let sent = tcp_send(from, dial, None, bytes, seed);
    let got = match server.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("server thread panicked".into()),
    };
    match (sent, got) {
        (Ok(()), Ok((peer, n))) if n == bytes => Ok(peer),
        (Ok(()), Ok((_, n))) => Err(format!("server received {n} of {bytes} bytes")),
        (s, g) => Err(format!("client: {s:?}; server: {g:?}")),
    }
}
