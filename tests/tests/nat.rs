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
