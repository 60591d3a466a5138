//! Routing and NAT in the switch: containers on a bridge with a gateway,
//! an "outside" namespace on the uplink (see `tests::nat`). Real traffic:
//! TCP with every byte checked, UDP, ping, and what the far side sees.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;
use tests::container::spawn_in;
use tests::nat::{container_ip, tcp_through, NatLab, GATEWAY_IP, NEXTHOP, SERVER, UPLINK_IP};
use tests::poll::wait_until;

const FIRST: Duration = Duration::from_secs(10);

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

#[test]
fn masquerade_tcp_from_two_containers_leaves_with_the_uplink_address() {
    let lab = NatLab::new(2);
    assert!(
        lab.cs[0].wait_ping(GATEWAY_IP, FIRST),
        "the gateway does not answer ping"
    );
    assert!(
        lab.cs[0].wait_ping(SERVER, FIRST),
        "no ping through masquerade"
    );
    for (i, c) in lab.cs.iter().enumerate() {
        let peer = tcp_through(
            c,
            &lab.outside,
            v4(SERVER, 5001 + i as u16),
            v4(SERVER, 5001 + i as u16),
            3_000_000,
        )
        .unwrap_or_else(|e| panic!("container {i}: {e}"));
        assert_eq!(
            peer.ip(),
            std::net::IpAddr::V4(UPLINK_IP),
            "the server saw {peer}"
        );
    }
    let flows = lab.conntrack();
    let tcp: Vec<_> = flows.iter().filter(|f| f["proto"] == "tcp").collect();
    assert!(tcp.len() >= 2, "conntrack/show: {flows:#?}");
    for f in &tcp {
        assert_eq!(f["reply"]["dst"], UPLINK_IP.to_string(), "{f}");
        assert_eq!(f["bridge"], lab.br.as_str(), "{f}");
    }
    assert!(
        tcp.iter().any(|f| f["state"] == "TIME_WAIT"),
        "a closed connection is not in TIME_WAIT: {tcp:#?}"
    );
}

#[test]
fn udp_request_response_and_a_fragmented_datagram() {
    let lab = NatLab::new(1);
    assert!(lab.cs[0].wait_ping(SERVER, FIRST));
    // An echo server outside, answering with what it got and who sent it.
    let server = spawn_in(lab.outside.ns_path(), || -> Result<Vec<String>, String> {
        let s = UdpSocket::bind((SERVER, 7000)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 65536];
        for _ in 0..2 {
            let (n, peer) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
            seen.push(peer.to_string());
            s.send_to(&buf[..n], peer).map_err(|e| e.to_string())?;
        }
        Ok(seen)
    });
    std::thread::sleep(Duration::from_millis(200));
    let client = spawn_in(lab.cs[0].ns_path(), || -> Result<(), String> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
        s.connect((SERVER, 7000)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        for len in [100usize, 4000] {
            let out: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            s.send(&out).map_err(|e| e.to_string())?;
            let mut back = vec![0u8; 65536];
            let n = s.recv(&mut back).map_err(|e| format!("{len} bytes: {e}"))?;
            if back[..n] != out[..] {
                return Err(format!("{len} bytes: the answer differs ({n} bytes back)"));
            }
        }
        Ok(())
    });
    client.join().unwrap().unwrap().unwrap();
    let seen = server.join().unwrap().unwrap().unwrap();
    for s in seen {
        assert!(
            s.starts_with(&format!("{UPLINK_IP}:")),
            "the server saw {s}"
        );
    }
}

#[test]
fn udp_to_a_closed_port_is_refused_through_the_translated_icmp_error() {
    let lab = NatLab::new(1);
    assert!(lab.cs[0].wait_ping(SERVER, FIRST));
    let r = spawn_in(lab.cs[0].ns_path(), || -> Result<(), String> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
        s.connect((SERVER, 9)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        s.send(b"anyone?").map_err(|e| e.to_string())?;
        match s.recv(&mut [0u8; 64]) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
            other => Err(format!("expected ECONNREFUSED, got {other:?}")),
        }
    });
    r.join().unwrap().unwrap().unwrap();
}

#[test]
fn published_port_reaches_the_container_with_the_client_address() {
    let lab = NatLab::new(2);
    let target = container_ip(0);
    lab.d
        .vsctl_ok(&["publish", &lab.br, "tcp", "8080", &format!("{target}:80")]);
    let listed = lab.d.vsctl_ok(&["list-published"]);
    assert!(
        listed.contains(&format!("{UPLINK_IP}:8080 -> {target}:80")),
        "{listed}"
    );
    let peer = tcp_through(
        &lab.outside,
        &lab.cs[0],
        v4(target, 80),
        v4(UPLINK_IP, 8080),
        2_000_000,
    )
    .expect("outside to the published port");
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(NEXTHOP),
        "the container saw {peer}"
    );
    // Hairpin: the second container reaches the first at the published
    // address, and the first sees the gateway (so its replies come back
    // through the switch).
    let peer = tcp_through(
        &lab.cs[1],
        &lab.cs[0],
        v4(target, 80),
        v4(UPLINK_IP, 8080),
        500_000,
    )
    .expect("hairpin");
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(GATEWAY_IP),
        "hairpin: the container saw {peer}"
    );
    lab.d.vsctl_ok(&["unpublish", &lab.br, "tcp", "8080"]);
    let after = tcp_through(
        &lab.outside,
        &lab.cs[0],
        v4(target, 80),
        v4(UPLINK_IP, 8080),
        1000,
    );
    assert!(
        after.is_err(),
        "unpublished port still reached the container"
    );
}

#[test]
fn conntrack_entries_expire_with_short_timeouts() {
    let lab = NatLab::new(1);
    lab.d
        .vsctl_ok(&["set", "open_vswitch", ".", "other_config:ct-icmp=1"]);
    assert!(lab.cs[0].wait_ping(SERVER, FIRST));
    assert!(
        lab.conntrack().iter().any(|f| f["proto"] == "icmp"),
        "{:#?}",
        lab.conntrack()
    );
    let gone = wait_until(Duration::from_secs(5), || {
        !lab.conntrack().iter().any(|f| f["proto"] == "icmp")
    });
    assert!(gone, "ICMP entry did not expire: {:#?}", lab.conntrack());
}

#[test]
fn udp_publish_of_a_port_range() {
    let lab = NatLab::new(1);
    let target = container_ip(0);
    lab.d.vsctl_ok(&[
        "publish",
        &lab.br,
        "udp",
        "9000-9002",
        &format!("{target}:7000-7002"),
    ]);
    for k in 0..3u16 {
        let server = spawn_in(lab.cs[0].ns_path(), move || -> Result<String, String> {
            let s = UdpSocket::bind((target, 7000 + k)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 64];
            let (n, peer) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
            s.send_to(&buf[..n], peer).map_err(|e| e.to_string())?;
            Ok(peer.ip().to_string())
        });
        std::thread::sleep(Duration::from_millis(100));
        let client = spawn_in(lab.outside.ns_path(), move || -> Result<(), String> {
            let s = UdpSocket::bind((NEXTHOP, 0)).map_err(|e| e.to_string())?;
            s.connect((UPLINK_IP, 9000 + k))
                .map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .map_err(|e| e.to_string())?;
            for _ in 0..10 {
                s.send(b"ping").map_err(|e| e.to_string())?;
                if let Ok(4) = s.recv(&mut [0u8; 64]) {
                    return Ok(());
                }
            }
            Err("no answer".into())
        });
        client
            .join()
            .unwrap()
            .unwrap()
            .unwrap_or_else(|e| panic!("port {}: {e}", 9000 + k));
        let peer = server.join().unwrap().unwrap().unwrap();
        assert_eq!(peer, NEXTHOP.to_string());
    }
}

#[test]
fn the_same_source_port_from_two_containers_to_one_server() {
    let lab = NatLab::new(2);
    for c in &lab.cs {
        assert!(c.wait_ping(SERVER, FIRST));
    }
    // Both connect from port 40000 to the same server port, one after the
    // other while the first is still open.
    let seed = 77;
    let (_, s1) = tests::nat::tcp_server(&lab.outside, SERVER, 6001, seed).unwrap();
    let (_, s2) = tests::nat::tcp_server(&lab.outside, SERVER, 6002, seed).unwrap();
    let dial = |i: usize, port: u16| {
        tests::nat::tcp_send(&lab.cs[i], v4(SERVER, port), Some(40000), 100_000, seed)
    };
    std::thread::scope(|s| {
        let a = s.spawn(|| dial(0, 6001));
        let b = s.spawn(|| dial(1, 6002));
        a.join().unwrap().expect("container 0");
        b.join().unwrap().expect("container 1");
    });
    let p1 = s1.join().unwrap().unwrap().unwrap();
    let p2 = s2.join().unwrap().unwrap().unwrap();
    assert_eq!((p1.1, p2.1), (100_000, 100_000));
    // Same server address, different server ports: endpoint-dependent
    // mapping may keep 40000 for both. Now the same server port. The first
    // server must be gone (its listener closed) before the second binds;
    // the first connection's entry stays in TIME_WAIT and holds its tuple.
    let (_, s3) = tests::nat::tcp_server(&lab.outside, SERVER, 6003, seed).unwrap();
    dial(0, 6003).expect("first to 6003");
    let a = s3.join().unwrap().unwrap().unwrap().0;
    let (_, s5) = tests::nat::tcp_server(&lab.outside, SERVER, 6003, seed).unwrap();
    dial(1, 6003).expect("second to 6003");
    let b = s5.join().unwrap().unwrap().unwrap().0;
    assert_eq!(a.ip(), b.ip());
    assert_ne!(
        a.port(),
        b.port(),
        "two connections share one translated tuple"
    );
}

#[test]
fn a_full_table_drops_new_connections_and_keeps_the_old_ones() {
    let lab = NatLab::new(1);
    assert!(lab.cs[0].wait_ping(SERVER, FIRST));
    lab.d.vsctl_ok(&["conntrack/flush"]);
    lab.d
        .vsctl_ok(&["set", "open_vswitch", ".", "other_config:ct-max-entries=1"]);
    // One long stream holds the only entry while new connections fail.
    let seed = 5;
    let (_, server) = tests::nat::tcp_server(&lab.outside, SERVER, 6100, seed).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let c0 = lab.cs[0].ns_path().to_path_buf();
    let stream = std::thread::spawn(move || {
        let f = std::fs::File::open(&c0).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: an open namespace file; changes only this thread.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        use std::io::Write;
        let mut s = std::net::TcpStream::connect((SERVER, 6100)).map_err(|e| e.to_string())?;
        let mut sent = 0u64;
        let mut buf = vec![0u8; 1000];
        loop {
            tests::traffic::pattern::fill(seed, sent, &mut buf);
            s.write_all(&buf).map_err(|e| e.to_string())?;
            sent += 1000;
            if go_rx.try_recv().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(s);
        Ok::<u64, String>(sent)
    });
    std::thread::sleep(Duration::from_millis(500));
    let refused = spawn_in(lab.cs[0].ns_path(), || {
        std::net::TcpStream::connect_timeout(&v4(SERVER, 6101).into(), Duration::from_secs(2))
            .is_err()
    });
    assert!(
        refused.join().unwrap().unwrap(),
        "a second connection got through a full table"
    );
    let stats = lab.d.vsctl_json(&["conntrack/stats"]);
    assert!(
        stats["drops"]["ct-full"].as_u64().unwrap_or(0) > 0,
        "{stats:#}"
    );
    go_tx.send(()).unwrap();
    let sent = stream
        .join()
        .unwrap()
        .expect("the established stream broke");
    let (_, got) = server.join().unwrap().unwrap().unwrap();
    assert_eq!(got, sent, "the established stream lost bytes");
}

#[test]
fn published_ports_work_again_after_a_restart() {
    let mut lab = NatLab::new(1);
    let target = container_ip(0);
    lab.d
        .vsctl_ok(&["publish", &lab.br, "tcp", "8081", &format!("{target}:81")]);
    tcp_through(
        &lab.outside,
        &lab.cs[0],
        v4(target, 81),
        v4(UPLINK_IP, 8081),
        100_000,
    )
    .expect("before");
    lab.d.restart();
    let listed = lab.d.vsctl_ok(&["list-published", &lab.br]);
    assert!(listed.contains("8081"), "{listed}");
    let ok = wait_until(FIRST, || {
        tcp_through(
            &lab.outside,
            &lab.cs[0],
            v4(target, 81),
            v4(UPLINK_IP, 8081),
            100_000,
        )
        .is_ok()
    });
    assert!(ok, "the published port does not work after a restart");
}

#[test]
fn two_bridges_with_gateways_share_one_uplink() {
    let lab = NatLab::new(1);
    let br2 = tests::names::unique("br");
    lab.d.vsctl_ok(&["add-br", &br2]);
    lab.d
        .vsctl_ok(&["set", "bridge", &br2, "other_config:gateway=172.30.0.1/24"]);
    let c2 = tests::container::Container::named();
    lab.d.vsctl_ok(&[
        "attach",
        &br2,
        &c2.name(),
        "172.30.0.10/24",
        "--ifname",
        "eth1",
    ]);
    for c in [&lab.cs[0], &c2] {
        let peer = tcp_through(c, &lab.outside, v4(SERVER, 6200), v4(SERVER, 6200), 200_000)
            .expect("masquerade");
        assert_eq!(peer.ip(), std::net::IpAddr::V4(UPLINK_IP));
    }
    // And the bridges route to each other (no translation between them).
    let peer = tcp_through(
        &c2,
        &lab.cs[0],
        v4(container_ip(0), 6201),
        v4(container_ip(0), 6201),
        100_000,
    )
    .expect("between bridges");
    assert_eq!(peer.ip().to_string(), "172.30.0.10");
}

#[test]
fn bad_commands_say_why_and_change_nothing() {
    let lab = NatLab::new(1);
    let target = container_ip(0);
    lab.d
        .vsctl_ok(&["publish", &lab.br, "tcp", "8080", &format!("{target}:80")]);
    let before = std::fs::read(lab.d.db()).unwrap();
    let br2 = "nope";
    for (args, needle) in [
        (
            vec!["publish", &lab.br, "tcp", "8080", "172.31.0.11:80"],
            "already published",
        ),
        (
            vec!["publish", &lab.br, "tcp", "70000", "172.31.0.11:80"],
            "not PORT",
        ),
        (
            vec!["publish", &lab.br, "tcp", "0", "172.31.0.11:80"],
            "not PORT",
        ),
        (
            vec!["publish", &lab.br, "sctp", "1", "172.31.0.11:80"],
            "not tcp or udp",
        ),
        (
            vec!["publish", &lab.br, "tcp", "8090", "10.9.9.9:80"],
            "not a host address",
        ),
        (
            vec!["publish", br2, "tcp", "8090", "172.31.0.11:80"],
            "no bridge",
        ),
        (
            vec!["add-uplink", "x", "10.0.0.2/24@10.0.0.1"],
            "already has an uplink",
        ),
        (
            vec![
                "set",
                "bridge",
                &lab.br,
                "other_config:gateway=172.31.0.0/24",
            ],
            "network or broadcast",
        ),
        (
            vec!["set", "open_vswitch", ".", "other_config:ct-max-entries=0"],
            "ct-max-entries",
        ),
        (
            vec!["unpublish", &lab.br, "udp", "8080"],
            "does not publish",
        ),
    ] {
        let out = lab.d.vsctl(&args);
        assert!(!out.success(), "{args:?} succeeded");
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
    }
    // A second bridge whose gateway overlaps, an uplink that is a bridge
    // port, a container outside the subnet.
    let br3 = tests::names::unique("br");
    lab.d.vsctl_ok(&["add-br", &br3]);
    let before3 = std::fs::read(lab.d.db()).unwrap();
    let out = lab.d.vsctl(&[
        "set",
        "bridge",
        &br3,
        "other_config:gateway=172.31.0.100/25",
    ]);
    assert!(!out.success() && out.stderr.contains("overlaps"), "{out}");
    lab.d.vsctl_ok(&["del-uplink", &lab.uplink]);
    let out = lab.d.vsctl(&["add-uplink", &br3, "10.0.0.2/24@10.0.0.1"]);
    assert!(
        !out.success() && out.stderr.contains("internal port of bridge"),
        "{out}"
    );
    let c = tests::container::Container::named();
    let out = lab.d.vsctl(&["attach", &lab.br, &c.name(), "10.1.1.5/24"]);
    assert!(
        !out.success() && out.stderr.contains("outside the subnet"),
        "{out}"
    );
    lab.d
        .vsctl_ok(&["add-uplink", &lab.uplink, "192.0.2.2/24@192.0.2.1"]);
    let after = std::fs::read(lab.d.db()).unwrap();
    let strip = |b: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v.as_object_mut().unwrap().remove("version");
        v
    };
    assert_ne!(before, before3);
    assert_eq!(
        strip(&before3),
        strip(&after),
        "a refused command changed the configuration"
    );
}

/// An IPv4 frame from the outside to the uplink: `ihl` in words, the IP
/// total length as given, `frag` the flags-and-offset field, then `l4`.
fn hostile(
    dst_mac: &[u8],
    src_mac: &[u8],
    ihl: u8,
    total: u16,
    frag: u16,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(dst_mac);
    f.extend_from_slice(src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x40 | ihl, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34]);
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&SERVER.octets());
    ip.extend_from_slice(&UPLINK_IP.octets());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

fn mac_of(lab: &NatLab, ip: Ipv4Addr) -> Vec<u8> {
    let out = lab.outside.ip_ok(&["neigh", "show", &ip.to_string()]);
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no neighbour entry for {ip}: {out}"));
    mac.split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

#[test]
fn hostile_packets_on_the_uplink_are_counted_and_the_switch_carries_on() {
    let lab = NatLab::new(1);
    let target = container_ip(0);
    lab.d
        .vsctl_ok(&["publish", &lab.br, "tcp", "8080", &format!("{target}:80")]);
    assert!(lab.cs[0].wait_ping(SERVER, FIRST));
    let (ours, theirs) = (mac_of(&lab, UPLINK_IP), {
        let l = lab.outside.link("out0").unwrap();
        let m = l["address"].as_str().unwrap().to_string();
        m.split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect::<Vec<u8>>()
    });
    let tcp_all_flags = {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&4444u16.to_be_bytes());
        t[2..4].copy_from_slice(&8080u16.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = 0xff;
        t
    };
    let garbage_icmp = {
        let mut t = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
        t.extend_from_slice(&[0x4f; 28]);
        t
    };
    let frames = vec![
        // IHL 15 with 20 bytes of header.
        hostile(&ours, &theirs, 15, 28, 0, 17, &[0; 8]),
        // A total length longer than the frame.
        hostile(&ours, &theirs, 5, 1400, 0, 17, &[0; 8]),
        // A total length shorter than the header.
        hostile(&ours, &theirs, 5, 10, 0, 17, &[0; 8]),
        // Overlapping later fragments of a datagram never seen.
        hostile(&ours, &theirs, 5, 28, 0x2001, 17, &[0; 8]),
        hostile(&ours, &theirs, 5, 28, 0x0001, 17, &[0; 8]),
        // An ICMP error that embeds garbage.
        hostile(
            &ours,
            &theirs,
            5,
            20 + garbage_icmp.len() as u16,
            0,
            1,
            &garbage_icmp,
        ),
        // A TCP segment with every flag set, to a published port.
        hostile(&ours, &theirs, 5, 40, 0, 6, &tcp_all_flags),
    ];
    tests::send_raw(&lab.outside.name(), "out0", &frames).expect("sending the frames");
    let counted = wait_until(Duration::from_secs(5), || {
        let d = &lab.d.vsctl_json(&["conntrack/stats"])["drops"];
        let n = |k: &str| d[k].as_u64().unwrap_or(0);
        // Three bad headers, and the garbage quoted in the ICMP error.
        n("ip-malformed") >= 4 && n("frag-unknown") >= 2 && n("ct-invalid") >= 1
    });
    assert!(counted, "{:#}", lab.d.vsctl_json(&["conntrack/stats"]));
    assert!(
        lab.cs[0].wait_ping(SERVER, FIRST),
        "the switch stopped routing"
    );
    tcp_through(
        &lab.outside,
        &lab.cs[0],
        v4(target, 80),
        v4(UPLINK_IP, 8080),
        100_000,
    )
    .expect("publish after");
}

/// The uplink on an interface the host also uses: the host keeps its own
/// address and traffic there while the switch masquerades through it.
#[test]
fn an_uplink_shared_with_the_host_keeps_the_hosts_own_traffic() {
    use tests::cmd::ip_ok;
    // The switch's host is a namespace, so that its "NIC" can carry an
    // address without touching the real root namespace.
    let host = tests::netns::Netns::create();
    let outside = tests::container::Container::named();
    let h = host.name();
    ip_ok(&["-n", h, "link", "set", "lo", "up"]);
    ip_ok(&[
        "-n",
        h,
        "link",
        "add",
        "nic0",
        "type",
        "veth",
        "peer",
        "name",
        "out0",
        "netns",
        &outside.name(),
    ]);
    ip_ok(&["-n", h, "addr", "add", "192.0.2.3/24", "dev", "nic0"]);
    ip_ok(&["-n", h, "link", "set", "nic0", "up"]);
    outside.ip_ok(&["addr", "add", &format!("{NEXTHOP}/24"), "dev", "out0"]);
    outside.ip_ok(&["link", "set", "out0", "up"]);
    outside.ip_ok(&["link", "set", "lo", "up"]);
    outside.ip_ok(&["addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    let host_ip: Ipv4Addr = "192.0.2.3".parse().unwrap();
    assert!(
        outside.wait_ping(host_ip, FIRST),
        "the host is not reachable before the switch starts"
    );
    let d = tests::Daemon::start_with(tests::DaemonOptions {
        netns: Some(h.to_string()),
        ..Default::default()
    });
    let br = tests::names::unique("br");
    d.vsctl_ok(&[
        "add-br",
        &br,
        "--",
        "set",
        "bridge",
        &br,
        "other_config:gateway=172.31.0.1/24",
    ]);
    d.vsctl_ok(&["add-uplink", "nic0", "192.0.2.2/24@192.0.2.1"]);
    let c = tests::container::Container::named();
    d.vsctl_ok(&["attach", &br, &c.name(), "172.31.0.10/24"]);
    assert!(
        c.wait_ping(SERVER, FIRST),
        "no ping through masquerade on the shared link"
    );
    let peer = tcp_through(&c, &outside, v4(SERVER, 6300), v4(SERVER, 6300), 1_000_000)
        .expect("masquerade");
    assert_eq!(peer.ip(), std::net::IpAddr::V4(UPLINK_IP));
    assert_eq!(
        outside.ping(host_ip, 5),
        5,
        "the host lost its own traffic on the uplink's interface"
    );
    // The host's TCP too, at the same time as the switch's.
    let hostc = HostNs(h.to_string());
    let peer = hostc.tcp_to(&outside, 6301);
    assert_eq!(peer, host_ip.to_string());
}

/// The switch's host namespace, for a TCP connection of its own.
struct HostNs(String);

impl HostNs {
    /// Sends 100 kB from the host to a server on `outside`; the address
    /// the server saw.
    fn tcp_to(&self, outside: &tests::container::Container, port: u16) -> String {
        let seed = 9;
        let (_, server) = tests::nat::tcp_server(outside, NEXTHOP, port, seed).unwrap();
        let ns = self.0.clone();
        let client = tests::netns::spawn_in_netns(&ns, move || -> Result<(), String> {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect((NEXTHOP, port)).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 100_000];
            tests::traffic::pattern::fill(seed, 0, &mut buf);
            s.write_all(&buf).map_err(|e| e.to_string())?;
            Ok(())
        });
        tests::netns::join(client).unwrap().expect("host client");
        let (peer, n) = server.join().unwrap().unwrap().expect("server");
        assert_eq!(n, 100_000);
        peer.ip().to_string()
    }
}
