//! Port types other than the default AF_XDP: a TAP port and the bridge's
//! internal port (both devices the switch creates, moved here into test
//! namespaces so all traffic stays inside them), and AF_PACKET ports.
//!
//! Hosts made from switch-created devices are declared before the `Lab`,
//! so they drop after it: the daemon stops (and its devices vanish) before
//! their namespaces go.

use tests::model;
use tests::{ping_report, tcp_transfer, udp_exchange, Host, Lab};

fn backend(lab: &Lab, port: &str) -> String {
    let show = lab.show();
    let p = model::show_port(&show, port).unwrap_or_else(|| panic!("{port} not in show: {show:#}"));
    p["backend"].as_str().unwrap_or_default().to_string()
}

#[test]
fn tap_port_carries_tcp_and_udp() {
    let tap_host: Host;
    let lab = Lab::new(1);
    let tap = tests::names::unique("t");
    lab.daemon
        .vsctl_ok(&["add-port", &lab.bridge, &tap, "type=tap"]);
    lab.wait_port_up(&tap);
    assert_eq!(backend(&lab, &tap), "tap");
    tap_host = Host::adopt(20, &tap);
    let a = lab.host(0);
    let r = ping_report(a, tap_host.ip(), 3);
    assert!(
        r.received > 0,
        "no ping through the TAP port: {r:?}\n{}",
        lab.diagnostics()
    );
    let t = tcp_transfer(a, &tap_host, 5 << 20);
    assert!(t.ok(), "TCP to the TAP host: {t:?}\n{}", lab.diagnostics());
    let t = tcp_transfer(&tap_host, a, 5 << 20);
    assert!(
        t.ok(),
        "TCP from the TAP host: {t:?}\n{}",
        lab.diagnostics()
    );
    let u = udp_exchange(&tap_host, a, 50);
    assert!(u.ok(50), "UDP from the TAP host: {u:?}");
    drop(lab);
    drop(tap_host);
}

#[test]
fn internal_port_carries_tcp() {
    let br_host: Host;
    let lab = Lab::new(1);
    assert_eq!(backend(&lab, &lab.bridge), "internal");
    br_host = Host::adopt(30, &lab.bridge);
    let a = lab.host(0);
    let r = ping_report(a, br_host.ip(), 3);
    assert!(
        r.received > 0,
        "no ping to the internal port: {r:?}\n{}",
        lab.diagnostics()
    );
    let t = tcp_transfer(a, &br_host, 5 << 20);
    assert!(
        t.ok(),
        "TCP to the internal port's host: {t:?}\n{}",
        lab.diagnostics()
    );
    drop(lab);
    drop(br_host);
}

/// AF_PACKET ports: ICMP, UDP and TCP at default offloads (a veth peer with
/// TSO on sends TCP super-frames, which the port cuts into segments), and
/// jumbo frames.
#[test]
fn afpacket_ports_carry_ping_udp_tcp_and_jumbo_frames() {
    let daemon = tests::Daemon::start();
    let bridge = tests::names::unique("br");
    daemon.vsctl_ok(&["add-br", &bridge]);
    let lab = Lab {
        daemon,
        bridge,
        hosts: vec![Host::new(1), Host::new(2)],
    };
    lab.daemon
        .vsctl_ok(&["add-port", &lab.bridge, lab.host(0).port(), "type=afpacket"]);
    lab.daemon
        .vsctl_ok(&["add-port", &lab.bridge, lab.host(1).port()]);
    lab.wait_connected();
    assert_eq!(backend(&lab, lab.host(0).port()), "afpacket");
    assert_eq!(backend(&lab, lab.host(1).port()), "afxdp");
    let (a, b) = (lab.host(0), lab.host(1));
    let r = ping_report(b, a.ip(), 3);
    assert!(r.received == 3, "ping across AF_PACKET and AF_XDP: {r:?}");
    let u = udp_exchange(a, b, 100);
    assert!(
        u.ok(100),
        "UDP from the AF_PACKET host: {u:?}\n{}",
        lab.diagnostics()
    );
    let u = udp_exchange(b, a, 100);
    assert!(
        u.ok(100),
        "UDP to the AF_PACKET host: {u:?}\n{}",
        lab.diagnostics()
    );
    // TCP from the AF_PACKET host's veth, TSO on as by default: its
    // super-frames come behind a virtio-net header (PACKET_VNET_HDR) and are
    // cut into segments; every byte arrives, nothing is dropped.
    for (from, to) in [(a, b), (b, a)] {
        let t = tcp_transfer(from, to, 4 << 20);
        assert!(
            t.ok(),
            "TCP {} -> {}: {t:?}\n{}",
            from.ip(),
            to.ip(),
            lab.diagnostics()
        );
    }
    assert_eq!(
        lab.port_stats(a.port()).drop_count("kernel-rx-ring"),
        0,
        "{}",
        lab.diagnostics()
    );
    // Jumbo frames: 9,000-byte IPv4 packets, unfragmented, each way between
    // the AF_PACKET port (read whole from its ring) and the AF_XDP one
    // (several UMEM buffers per frame).
    for h in [a, b] {
        tests::cmd::ip_ok(&["link", "set", h.port(), "mtu", "9000"]);
        tests::cmd::ip_ok(&["-n", h.ns(), "link", "set", h.ifname(), "mtu", "9000"]);
    }
    // The switch notices the new device MTU and opens the ports again.
    let reopened = tests::poll::wait_until(std::time::Duration::from_secs(5), || {
        let show = lab.show();
        [a, b].iter().all(|h| {
            model::show_port(&show, h.port())
                .is_some_and(|p| p["mtu"] == 9000 && p["error"].is_null())
        })
    });
    assert!(reopened, "ports not reopened at MTU 9000: {:#}", lab.show());
    lab.wait_connected();
    for (from, to) in [(a, b), (b, a)] {
        let mut ping = std::process::Command::new("ip");
        ping.args(["netns", "exec", from.ns(), "ping", "-n", "-q", "-c", "3"])
            .args(["-i", "0.2", "-W", "1", "-M", "do", "-s", "8972"])
            .arg(to.ip().to_string());
        let out = tests::cmd::run(ping, std::time::Duration::from_secs(10));
        assert!(
            out.stdout.contains("3 received"),
            "jumbo ping {} -> {}: {}\n{}",
            from.ip(),
            to.ip(),
            out.stdout,
            lab.diagnostics()
        );
    }
}
