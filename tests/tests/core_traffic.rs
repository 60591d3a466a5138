//! Three hosts on one bridge with plain `add-port` (AF_XDP) ports and the
//! veths at their default offloads: ICMP, TCP and UDP from real sockets
//! must all get through intact. (Ping alone proves nothing: see the
//! checksum trap in shared/NOTES.md.)

use std::thread;

use tests::model;
use tests::{tcp_transfer, udp_exchange, Lab};

#[test]
fn ports_are_afxdp_and_up() {
    let lab = Lab::new(3);
    let show = lab.show();
    for h in &lab.hosts {
        let p = model::show_port(&show, h.port())
            .unwrap_or_else(|| panic!("port {} missing from show: {show:#}", h.port()));
        assert_eq!(
            p["type"], "system",
            "plain add-port configures a system port (OVS's empty type): {p}"
        );
        assert_eq!(
            p["backend"],
            "afxdp",
            "port {} fell back to another backend: {p}",
            h.port()
        );
        assert!(p["error"].is_null(), "port {} has an error: {p}", h.port());
    }
    let ports = model::string_list(&lab.daemon.vsctl_json(&["list-ports", &lab.bridge]));
    let mut want: Vec<String> = lab.hosts.iter().map(|h| h.port().to_string()).collect();
    let mut got = ports.clone();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "list-ports must list exactly the added ports (not the internal one)"
    );
}

#[test]
fn ping_every_direction() {
    let lab = Lab::new(3);
    tests::assert_ping_mesh(&lab.hosts, 5);
}

#[test]
fn tcp_50mb_verified_byte_for_byte() {
    let lab = Lab::new(3);
    let r = tcp_transfer(lab.host(0), lab.host(2), 50_000_000);
    assert!(r.ok(), "{r}");
    let r = tcp_transfer(lab.host(2), lab.host(1), 10_000_000);
    assert!(r.ok(), "{r}");
}

#[test]
fn tcp_both_directions_at_once() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let (ab, ba) = thread::scope(|s| {
        let ab = s.spawn(|| tcp_transfer(a, b, 20_000_000));
        let ba = s.spawn(|| tcp_transfer(b, a, 20_000_000));
        (ab.join().expect("thread"), ba.join().expect("thread"))
    });
    assert!(ab.ok() && ba.ok(), "{ab}\n{ba}");
}

#[test]
fn udp_datagrams_each_way() {
    let lab = Lab::new(3);
    for (a, b) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)] {
        let r = udp_exchange(lab.host(a), lab.host(b), 300);
        assert!(r.ok(300), "{r}");
    }
}

#[test]
fn port_counters_follow_the_traffic() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    let before_a = lab.port_stats(a.port());
    let before_b = lab.port_stats(b.port());
    let before_c = lab.port_stats(c.port());
    let r = tcp_transfer(a, b, 5_000_000);
    assert!(r.ok(), "{r}");
    let after_a = lab.port_stats(a.port());
    let after_b = lab.port_stats(b.port());
    let after_c = lab.port_stats(c.port());
    assert!(
        after_a.rx_bytes.saturating_sub(before_a.rx_bytes) >= 5_000_000,
        "{} rx_bytes grew by {} for a 5 MB upload: {before_a:?} -> {after_a:?}",
        a.port(),
        after_a.rx_bytes.saturating_sub(before_a.rx_bytes)
    );
    assert!(
        after_b.tx_bytes.saturating_sub(before_b.tx_bytes) >= 5_000_000,
        "{} tx_bytes grew by {} for a 5 MB download: {before_b:?} -> {after_b:?}",
        b.port(),
        after_b.tx_bytes.saturating_sub(before_b.tx_bytes)
    );
    assert!(
        after_a.rx_packets > before_a.rx_packets && after_b.tx_packets > before_b.tx_packets,
        "packet counters did not move: {after_a:?} {after_b:?}"
    );
    // Once a and b are learned, their unicast traffic must not reach c.
    assert!(
        after_c.tx_bytes.saturating_sub(before_c.tx_bytes) < 500_000,
        "{} (not part of the transfer) was sent {} bytes: learned unicast is flooded",
        c.port(),
        after_c.tx_bytes.saturating_sub(before_c.tx_bytes)
    );
}

/// Two poll threads (one per CPU): each port's queue is polled by one of
/// them, so frames cross from one thread's receive queue to a transmit half
/// another thread also uses. Traffic in both directions at once must arrive
/// intact and `pmd/rxq-show` must show both threads polling.
#[test]
fn two_poll_threads_share_the_ports() {
    let opts = tests::DaemonOptions {
        extra_args: vec!["--pmd-cpus".into(), "0,1".into()],
        ..Default::default()
    };
    let lab = Lab::with_options(3, opts);
    let rxqs = lab.daemon.vsctl_json(&["pmd/rxq-show"]);
    let threads = rxqs.as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(threads, 2, "two poll threads expected: {rxqs}");
    let busy = rxqs
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|t| t["rxqs"].as_array().is_some_and(|q| !q.is_empty()))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(busy, 2, "both threads must poll some queue: {rxqs}");
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    let t1 = thread::scope(|s| {
        let ab = s.spawn(|| tcp_transfer(a, b, 8 << 20));
        let ca = s.spawn(|| tcp_transfer(c, a, 8 << 20));
        (ab.join(), ca.join())
    });
    let (ab, ca) = (t1.0.expect("a->b thread"), t1.1.expect("c->a thread"));
    assert!(
        ab.ok(),
        "a -> b across poll threads: {ab:?}\n{}",
        lab.diagnostics()
    );
    assert!(
        ca.ok(),
        "c -> a across poll threads: {ca:?}\n{}",
        lab.diagnostics()
    );
}

/// `pmd/stats-show` counts what the poll thread received and splits its
/// time the way OVS's pmd-stats-show does (idle and processing cycles, the
/// transmit system calls apart); `pmd/stats-clear` starts it again.
#[test]
fn pmd_stats_count_traffic_and_clear() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    lab.daemon.vsctl_ok(&["pmd/stats-clear"]);
    let r = udp_exchange(a, b, 200);
    assert!(r.ok(200), "UDP exchange failed: {r:?}");
    // Counters are published every 100 ms and when the thread goes idle.
    thread::sleep(std::time::Duration::from_millis(300));
    let stats = lab.daemon.vsctl_json(&["pmd/stats-show"]);
    let t = &stats[0];
    let n = |k: &str| {
        t[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing: {stats}"))
    };
    // 200 datagrams, plus ARP.
    assert!(n("packets") >= 200.0, "packets: {stats}");
    assert!(
        n("batches") >= 1.0 && n("batches") <= n("packets"),
        "{stats}"
    );
    assert!(n("busy_cycles") > 0.0 && n("idle_cycles") > 0.0, "{stats}");
    assert!(
        n("tx_cycles") > 0.0 && n("tx_cycles") <= n("busy_cycles"),
        "transmit cycles are part of the busy ones: {stats}"
    );
    assert!(n("cycles_hz") > 1e8, "the counter's rate: {stats}");
    let per = n("busy_cycles_per_packet");
    assert!(
        (per - n("busy_cycles") / n("packets")).abs() < 1.0,
        "{stats}"
    );
    let text = lab.daemon.vsctl_ok(&["pmd/stats-show"]);
    for line in [
        "packets received:",
        "idle cycles:",
        "processing cycles:",
        "of which in transmit system calls:",
        "avg processing cycles per packet:",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    lab.daemon.vsctl_ok(&["pmd/stats-clear"]);
    let cleared = lab.daemon.vsctl_json(&["pmd/stats-show"]);
    // A stray frame (a late neighbour solicitation, say) may arrive between
    // the clear and the read, so the counts must start again from nothing,
    // not stay exactly 0.
    let after = |k: &str| cleared[0][k].as_f64().unwrap_or(f64::MAX);
    assert!(after("packets") < 5.0, "after stats-clear: {cleared}");
    assert!(
        after("tx_cycles") < n("tx_cycles"),
        "after stats-clear: {cleared}"
    );
}
