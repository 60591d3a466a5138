//! `vswctl attach --type tap`: the container's interface is a TAP device
//! with the virtio-net header, made in its namespace and held by the
//! switch. Real traffic at default offloads: the container's stack hands
//! the switch TCP super-frames, which leave toward a veth peer as
//! MTU-sized segments with valid checksums.

use std::net::Ipv4Addr;
use std::time::Duration;
use tests::container::{tcp_transfer, udp_echo, Container};
use tests::poll::wait_until;
use tests::{names, Capture, Daemon};

const FIRST: Duration = Duration::from_secs(10);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A daemon, a bridge, a TAP container (10.61.0.1) and a veth container
/// (10.61.0.2).
/// A daemon with one bridge.
fn switch() -> (Daemon, String) {
    let d = Daemon::start();
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    (d, br)
}

fn lab() -> (Daemon, String, Container, Container) {
    let (d, br) = switch();
    let tap = Container::named();
    let veth = Container::named();
    d.vsctl_ok(&["attach", &br, &tap.name(), "10.61.0.1/24", "--type", "tap"]);
    d.vsctl_ok(&[
        "attach",
        &br,
        &veth.name(),
        "10.61.0.2/24",
        "--type",
        "veth",
    ]);
    (d, br, tap, veth)
}

fn kind(c: &Container, ifname: &str) -> String {
    let l = c
        .link(ifname)
        .unwrap_or_else(|| panic!("no {ifname} in the container"));
    l["linkinfo"]["info_kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The one's-complement checksum of a TCP segment in an IPv4 frame
/// verifies.
fn tcp_checksum_ok(f: &[u8]) -> bool {
    let ihl = (f[14] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([f[16], f[17]]) as usize;
    let tcp = &f[14 + ihl..14 + total];
    let mut s: u64 = 0;
    for w in f[26..34].chunks(2) {
        s += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    s += 6 + tcp.len() as u64;
    for w in tcp.chunks(2) {
        s += u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u64;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

#[test]
fn a_tap_container_talks_to_a_veth_container_with_segments_on_the_wire() {
    let (d, br, tap, veth) = lab();
    assert_eq!(kind(&tap, "eth1"), "tun", "the TAP container's eth1");
    assert!(
        tap.addresses().contains(&"eth1 10.61.0.1/24".to_string()),
        "{:?}",
        tap.addresses()
    );
    assert!(tap.wait_ping(ip("10.61.0.2"), FIRST));
    // Watch what reaches the veth container while the TAP one sends.
    let cap = Capture::start(&veth.name(), "eth1").unwrap();
    if let Err(e) = tcp_transfer(&tap, &veth, ip("10.61.0.2"), 200_000_000) {
        panic!(
            "TAP to veth, 200 MB: {e}\n{}",
            d.vsctl_ok(&["dump-ports", &br])
        );
    }
    let frames = cap.stop();
    let tcp: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [0x08, 0x00] && f[23] == 6)
        .collect();
    assert!(tcp.len() > 1000, "{} TCP frames seen", tcp.len());
    for f in &tcp {
        assert!(f.len() <= 1514, "a {}-byte frame reached the veth", f.len());
        assert!(
            tcp_checksum_ok(f),
            "a TCP segment with a bad checksum reached the veth"
        );
    }
    tcp_transfer(&veth, &tap, ip("10.61.0.1"), 200_000_000).expect("veth to TAP, 200 MB");
    udp_echo(&tap, &veth, ip("10.61.0.2"), 50).expect("UDP");
}

#[test]
fn two_tap_containers_pass_super_frames_whole() {
    let (d, br, tap, _veth) = lab();
    let tap2 = Container::named();
    let a = d.vsctl_json(&["attach", &br, &tap2.name(), "10.61.0.3/24", "--type", "tap"]);
    let port2 = a["port"]
        .as_str()
        .expect("the attachment's port")
        .to_string();
    assert!(tap.wait_ping(ip("10.61.0.3"), FIRST));
    let ports = |d: &Daemon| tests::model::port_stats(&d.vsctl_json(&["dump-ports", &br]));
    let before = ports(&d);
    tcp_transfer(&tap, &tap2, ip("10.61.0.3"), 50_000_000).expect("TAP to TAP");
    tcp_transfer(&tap2, &tap, ip("10.61.0.1"), 50_000_000).expect("TAP to TAP, back");
    // The sender's port took the 50 MB as super-frames, not as 1,500-byte
    // segments, and they left by the other TAP whole: no drops.
    let after = ports(&d);
    let grew = |name: &str| {
        let b = before.iter().find(|s| s.port == name);
        let a = after.iter().find(|s| s.port == name).expect("the port");
        let (p0, b0) = b.map_or((0, 0), |b| (b.rx_packets, b.rx_bytes));
        (
            a.rx_packets - p0,
            a.rx_bytes - b0,
            a.tx_dropped + a.rx_dropped,
        )
    };
    let (packets, bytes, dropped) = grew(&port2);
    assert!(bytes >= 50_000_000, "{port2} received {bytes} bytes");
    assert!(
        bytes / packets > 4000,
        "{port2}: {packets} packets for {bytes} bytes: super-frames were cut\n{}",
        d.vsctl_ok(&["dump-ports", &br])
    );
    assert_eq!(dropped, 0, "{}", d.vsctl_ok(&["dump-ports", &br]));
}

#[test]
fn the_interface_survives_restarts_and_detach_removes_it() {
    let (mut d, br, tap, veth) = lab();
    assert!(tap.wait_ping(ip("10.61.0.2"), FIRST));
    d.restart();
    assert_eq!(kind(&tap, "eth1"), "tun", "eth1 went away with the daemon");
    assert!(tap.addresses().contains(&"eth1 10.61.0.1/24".to_string()));
    assert!(
        tap.wait_ping(ip("10.61.0.2"), FIRST),
        "no traffic after a restart"
    );
    d.kill9();
    assert_eq!(
        kind(&tap, "eth1"),
        "tun",
        "eth1 went away with a killed daemon"
    );
    d.restart();
    assert!(
        tap.wait_ping(ip("10.61.0.2"), FIRST),
        "no traffic after kill -9 and a start"
    );
    tcp_transfer(&veth, &tap, ip("10.61.0.1"), 10_000_000).expect("TCP after restarts");
    d.vsctl_ok(&["detach", &br, &tap.name()]);
    let gone = wait_until(Duration::from_secs(5), || tap.link("eth1").is_none());
    assert!(gone, "detach left the TAP device in the container");
    let list = d.vsctl_ok(&["list-attachments", &br]);
    assert!(!list.contains(&tap.name()), "{list}");
}

#[test]
fn a_vanished_namespace_takes_its_port_away() {
    let (d, br, mut tap, _veth) = lab();
    let port = d.vsctl_ok(&["list-ports", &br]);
    let before = port.lines().count();
    tap.kill();
    let gone = wait_until(Duration::from_secs(10), || {
        d.vsctl_ok(&["list-ports", &br]).lines().count() == before - 1
    });
    assert!(gone, "the port of a deleted namespace stayed");
}

#[test]
fn tap_is_the_default_and_the_switch_may_say_veth() {
    let (d, br) = switch();
    let (a, b) = (Container::named(), Container::named());
    d.vsctl_ok(&["attach", &br, &a.name(), "10.61.1.1/24"]);
    assert_eq!(kind(&a, "eth1"), "tun");
    // A bad setting is refused with the reason.
    let out = d.vsctl(&[
        "set",
        "open_vswitch",
        ".",
        "other_config:attach-type=macvlan",
    ]);
    assert!(
        !out.success() && out.stderr.contains("is not tap or veth"),
        "{out}"
    );
    d.vsctl_ok(&["set", "open_vswitch", ".", "other_config:attach-type=veth"]);
    d.vsctl_ok(&["attach", &br, &b.name(), "10.61.1.2/24"]);
    assert_eq!(kind(&b, "eth1"), "veth");
    let types: Vec<String> = match d.vsctl_json(&["list-attachments", &br]) {
        serde_json::Value::Array(all) => all.iter().map(|a| a["type"].to_string()).collect(),
        other => panic!("not a list: {other}"),
    };
    assert_eq!(types.len(), 2);
    assert!(
        types.contains(&"\"tap\"".into()) && types.contains(&"\"veth\"".into()),
        "{types:?}"
    );
    assert!(a.wait_ping("10.61.1.2".parse().unwrap(), Duration::from_secs(10)));
}

#[test]
fn bad_type_is_refused() {
    let (d, br) = switch();
    let c = Container::named();
    let out = d.vsctl(&[
        "attach",
        &br,
        &c.name(),
        "10.61.0.9/24",
        "--type",
        "macvlan",
    ]);
    assert!(
        !out.success() && out.stderr.contains("is not tap or veth"),
        "{out}"
    );
    assert!(c.link("eth1").is_none());
}

/// The host's side: a bridge's internal port (a TAP device the switch
/// makes, with the virtio-net header too, here moved into a namespace of
/// the test's) and a TAP container exchange TCP super-frames whole, both
/// ways.
#[test]
fn the_internal_port_and_a_tap_container_pass_super_frames_whole() {
    let host = Container::named();
    let (d, br) = switch();
    tests::cmd::ip_ok(&["link", "set", &br, "netns", &host.name()]);
    host.ip_ok(&["addr", "add", "10.61.3.1/24", "dev", &br]);
    host.ip_ok(&["link", "set", &br, "up"]);
    let c = Container::named();
    let a = d.vsctl_json(&["attach", &br, &c.name(), "10.61.3.2/24"]);
    let port = a["port"]
        .as_str()
        .expect("the attachment's port")
        .to_string();
    assert!(c.wait_ping(ip("10.61.3.1"), FIRST), "{}", d.log_tail(20));
    let ports = |d: &Daemon| tests::model::port_stats(&d.vsctl_json(&["dump-ports", &br]));
    let before = ports(&d);
    tcp_transfer(&host, &c, ip("10.61.3.2"), 50_000_000).expect("host to container");
    tcp_transfer(&c, &host, ip("10.61.3.1"), 50_000_000).expect("container to host");
    let after = ports(&d);
    for name in [br.as_str(), port.as_str()] {
        let b = before.iter().find(|s| s.port == name);
        let a = after.iter().find(|s| s.port == name).expect("the port");
        let (p0, b0) = b.map_or((0, 0), |b| (b.rx_packets, b.rx_bytes));
        let (packets, bytes) = (a.rx_packets - p0, a.rx_bytes - b0);
        assert!(bytes >= 50_000_000, "{name} received {bytes} bytes");
        assert!(
            bytes / packets > 4000,
            "{name}: {packets} packets for {bytes} bytes: super-frames were cut\n{}",
            d.vsctl_ok(&["dump-ports", &br])
        );
        assert_eq!(
            a.tx_dropped + a.rx_dropped,
            0,
            "{}",
            d.vsctl_ok(&["dump-ports", &br])
        );
    }
}

/// `UDP_SEGMENT` (linux/udp.h): the socket option of UDP segmentation.
const UDP_SEGMENT: libc::c_int = 103;

/// Frames the container's eth1 has sent.
fn tx_frames(c: &Container) -> u64 {
    let out = c.ip_ok(&["-s", "-j", "link", "show", "eth1"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j prints JSON");
    v[0]["stats64"]["tx"]["packets"]
        .as_u64()
        .expect("tx packets")
}

/// What [`uso_burst`] sends: nine 1,000-byte datagrams and a 456-byte one.
fn uso_payload() -> Vec<u8> {
    (0..9 * 1000 + 456).map(|i| (i * 7 % 251) as u8).collect()
}

/// One `send` of nine 1,000-byte datagrams and a 456-byte one, with UDP
/// segmentation on the socket, from `from` to `to_ip` in `to`. Returns
/// what `to` received and how many frames `from`'s eth1 sent meanwhile.
fn uso_burst(from: &Container, to: &Container, to_ip: Ipv4Addr) -> (Vec<Vec<u8>>, u64) {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    let payload = uso_payload();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let server = tests::container::spawn_in(to.ns_path(), move || {
        let s = UdpSocket::bind((to_ip, 0)).expect("bind");
        port_tx
            .send(s.local_addr().expect("address").port())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (mut got, mut buf) = (Vec::new(), vec![0u8; 65_536]);
        while let Ok(n) = s.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    });
    let port = port_rx.recv_timeout(FIRST).expect("the receiver's port");
    let before = tx_frames(from);
    from.run_in(move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        let size: libc::c_int = 1000;
        // SAFETY: `size` is a live c_int and the length says so; the fd is
        // open while `s` lives.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_UDP,
                UDP_SEGMENT,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "UDP_SEGMENT: {}", std::io::Error::last_os_error());
        s.send_to(&payload, (to_ip, port)).expect("send");
    })
    .expect("sender");
    let sent = tx_frames(from) - before;
    (server.join().expect("receiver").expect("receiver"), sent)
}

#[test]
fn udp_segmentation_offload_reaches_tap_and_veth_peers_as_the_senders_datagrams() {
    let (d, br, tap, veth) = lab();
    let tap2 = Container::named();
    d.vsctl_ok(&["attach", &br, &tap2.name(), "10.61.0.3/24", "--type", "tap"]);
    let mut ethtool = std::process::Command::new("ip");
    ethtool.args(["netns", "exec", &tap.name(), "ethtool", "-k", "eth1"]);
    let features = tests::cmd::run(ethtool, FIRST).stdout;
    assert!(
        features.contains("tx-udp-segmentation: on"),
        "the TAP offers USO to the container:\n{features}"
    );
    for (to, to_ip) in [(&tap2, ip("10.61.0.3")), (&veth, ip("10.61.0.2"))] {
        assert!(tap.wait_ping(to_ip, FIRST));
        let mut last = None;
        for _ in 0..3 {
            let (got, frames) = uso_burst(&tap, to, to_ip);
            let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
            let whole: Vec<u8> = got.concat();
            if sizes == [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 456]
                && whole == uso_payload()
            {
                // Fewer frames than datagrams: the stack handed over a
                // super-frame, and the switch cut it.
                assert!(frames < 10, "to {to_ip}: eth1 sent {frames} frames");
                last = None;
                break;
            }
            last = Some(format!("to {to_ip}: datagrams of {sizes:?}"));
        }
        assert_eq!(last, None, "{}", d.vsctl_ok(&["dump-ports", &br]));
    }
}
