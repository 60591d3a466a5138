//! A port on an interface the host uses too (`open_pooled_filtered` with
//! [`OwnFrames`]). Each test builds
//!
//! ```text
//!   root namespace                         namespace xn<pid><tag>
//!   A: the host's 10.211.N.1/24, and  --veth--  B: 10.211.N.3/24
//!      the AF_XDP port (OWN_MAC, 10.211.N.2)
//! ```
//!
//! with the veth named `xt<pid><tag>{a,b}`, all deleted by guards even on
//! panic. N comes from the process id and the test, so that concurrent
//! tests do not put one subnet on two links (the host's replies would
//! leave through the other). A packet socket on A sees the frames the
//! program passes to the host's stack and none it redirects (generic XDP
//! runs before the taps, native XDP before there is an skb). The tests need
//! root.

use super::testnet::{run, xdp_prog_name, Netns, PacketSocket, Veth};
use super::*;
use pipeline::Batch;
use std::process::Command;
use std::time::{Duration, Instant};

/// The switch's MAC (locally administered), and one nobody has.
const OWN_MAC: [u8; 6] = [0x02, 0x5a, 0x0e, 0x00, 0x00, 0x02];
const THIRD_MAC: [u8; 6] = [0x02, 0x5a, 0x0e, 0x00, 0x00, 0x09];
/// IEEE 802 local experimental EtherType: nothing in the kernel handles it.
const ETHERTYPE: u16 = 0x88b5;
const MAGIC: &[u8; 4] = b"VSOF";
const ETH_P_ALL: u16 = 0x0003;

/// The addresses of the test, on 10.211.N.0/24.
struct Net {
    host: [u8; 4],
    own: [u8; 4],
    peer: [u8; 4],
    other: [u8; 4],
}

impl Net {
    /// The subnet of test `index` (0 or 1) of this process.
    fn new(index: u32) -> Net {
        let n = ((std::process::id() % 125) * 2 + index) as u8;
        Net {
            host: [10, 211, n, 1],
            own: [10, 211, n, 2],
            peer: [10, 211, n, 3],
            other: [10, 211, n, 9],
        }
    }
}

fn dotted(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// An 80-byte test frame to `dst`: the experimental EtherType, magic and
/// `seq`, then a pattern.
fn frame(dst: [u8; 6], src: [u8; 6], seq: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend(src);
    f.extend(ETHERTYPE.to_be_bytes());
    f.extend(MAGIC);
    f.push(seq);
    while f.len() < 80 {
        f.push(f.len() as u8 ^ seq);
    }
    f
}

/// A broadcast ARP request from `sha`/`spa` for `tpa`, padded to 60 bytes.
fn arp_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend(sha);
    f.extend([0x08, 0x06]);
    // Ethernet, IPv4, address lengths 6 and 4, request.
    f.extend([0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend(sha);
    f.extend(spa);
    f.extend([0; 6]);
    f.extend(tpa);
    f.resize(60, 0);
    f
}

fn is_arp_request_for(f: &[u8], tpa: [u8; 4]) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 1] && f[38..42] == tpa
}

/// Every frame A's packet socket got, in order.
struct Sniffer {
    sock: PacketSocket,
    seen: Vec<Vec<u8>>,
}

impl Sniffer {
    /// Whether a frame `pred` accepts arrives within 2 s.
    fn saw(&mut self, pred: impl Fn(&[u8]) -> bool) -> bool {
        if self.seen.iter().any(|f| pred(f)) {
            return true;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Some(f) = self.sock.recv_frame(50) {
                let hit = pred(&f);
                self.seen.push(f);
                if hit {
                    return true;
                }
            }
        }
        false
    }

    /// Takes in what arrived by now (waiting `idle` for more).
    fn drain(&mut self, idle: Duration) {
        while let Some(f) = self.sock.recv_frame(idle.as_millis() as i32) {
            self.seen.push(f);
        }
    }
}

/// The frames the port's sockets get until `want` of them or `timeout`.
fn on_socket(port: &mut crate::OpenPort, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let mut batch = Batch::new();
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout;
    while got.len() < want && Instant::now() < deadline {
        for q in port.rxqs.iter_mut() {
            q.recv(&mut batch);
            got.extend(batch.packets().iter().map(|p| p.data().to_vec()));
            q.release(&mut batch);
            batch.clear();
        }
    }
    got
}

#[test]
fn native_mode_takes_only_own_frames() {
    own_frames(XdpMode::Native, "on", 0);
}

#[test]
fn generic_mode_takes_only_own_frames() {
    own_frames(XdpMode::Generic, "og", 1);
}

fn own_frames(mode: XdpMode, tag: &str, index: u32) {
    let Some(veth) = Veth::new(tag, false) else {
        return;
    };
    // Dropped in this order: the pair, then the namespace B was in.
    let lab = (veth, Netns::new(tag));
    let (veth, ns) = (&lab.0, &lab.1);
    let net = Net::new(index);
    // B into the namespace, with IPv6 (and its multicast chatter) off.
    ns.exec("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    run("ip", &["link", "set", "dev", &veth.b, "netns", &ns.name]);
    let peer_cidr = format!("{}/24", dotted(net.peer));
    ns.ip(&["addr", "add", &peer_cidr, "dev", &veth.b]);
    ns.ip(&["link", "set", "dev", &veth.b, "up"]);
    // A is the host's interface: it has the host's address.
    let host_cidr = format!("{}/24", dotted(net.host));
    run("ip", &["addr", "add", &host_cidr, "dev", &veth.a]);

    let pool = UmemPool::new();
    let own = OwnFrames::new(OWN_MAC, net.own.into());
    let mut port = open_pooled_filtered(&veth.a, mode, &pool, Some(own))
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(port.status.mode, mode.as_str());
    assert_eq!(xdp_prog_name(&veth.a).as_deref(), Some(own_prog::OWN_NAME));
    let mut sniff = Sniffer {
        sock: PacketSocket::open(&veth.a, ETH_P_ALL),
        seen: Vec::new(),
    };
    let (to_a, peer_mac) = ns.enter(|| {
        (
            PacketSocket::open(&veth.b, 0),
            netdev::mac(&veth.b).unwrap(),
        )
    });

    // (a) The host's own traffic reaches the host's stack: B resolves the
    // host's address with a broadcast ARP request, and pings it.
    let host = dotted(net.host);
    let ping = [
        "netns", "exec", &ns.name, "ping", "-c", "2", "-i", "0.2", "-W", "2", &host,
    ];
    let out = Command::new("ip").args(ping).output().unwrap();
    assert!(
        out.status.success(),
        "the host did not answer ping: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sniff.saw(|f| is_arp_request_for(f, net.host)),
        "the stack did not get the ARP request for the host's address"
    );
    let stray = on_socket(&mut port, 1, Duration::from_millis(200));
    assert!(
        stray.is_empty(),
        "the socket got host traffic: {stray:02x?}"
    );

    // (b) A frame to the switch's MAC goes to the socket, unchanged.
    let to_us = frame(OWN_MAC, peer_mac, 1);
    to_a.send(&to_us);
    let got = on_socket(&mut port, 1, Duration::from_secs(2));
    assert_eq!(
        got,
        std::slice::from_ref(&to_us),
        "frame to the switch's MAC"
    );

    // (c) So does a broadcast ARP request for the switch's address.
    let ask_us = arp_request(peer_mac, net.peer, net.own);
    to_a.send(&ask_us);
    let got = on_socket(&mut port, 1, Duration::from_secs(2));
    assert_eq!(
        got,
        std::slice::from_ref(&ask_us),
        "ARP request for the switch's address"
    );

    // (d) Frames not for the switch reach the stack and not the socket: to
    // a third MAC, broadcast, an ARP request for another address, and an
    // ARP frame too short to hold the target address.
    let ask_other = arp_request(peer_mac, net.peer, net.other);
    for (what, f) in [
        ("frame to a third MAC", frame(THIRD_MAC, peer_mac, 2)),
        ("broadcast frame", frame([0xff; 6], peer_mac, 3)),
        ("ARP request for another address", ask_other),
        ("truncated ARP request", ask_us[..38].to_vec()),
    ] {
        to_a.send(&f);
        assert!(sniff.saw(|s| s == f), "{what}: not passed to the stack");
        let got = on_socket(&mut port, 1, Duration::from_millis(100));
        assert!(got.is_empty(), "{what}: the socket got {got:02x?}");
    }

    // The stack never saw the switch's frames.
    sniff.drain(Duration::from_millis(200));
    assert!(
        !sniff.seen.contains(&to_us),
        "the stack got the frame to us"
    );
    assert!(
        !sniff.seen.contains(&ask_us),
        "the stack got the ARP for us"
    );

    drop((to_a, sniff, port));
    assert!(veth.detached(), "XDP program still attached after drop");
}
