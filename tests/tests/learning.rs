//! MAC learning: what `fdb/show` lists, flooding of unknown unicast,
//! aging, the table size limit, moves, and frames that must not be
//! learned or forwarded.

use std::time::{Duration, Instant};

use tests::frames::{self, count_token, new_token, test_frame, Mac, BROADCAST};
use tests::model::FdbEntry;
use tests::poll::wait_for;
use tests::traffic::pattern::Rng;
use tests::{assert_ping_mesh, ping, ping_report, send_raw, Capture, Host, Lab};

/// A MAC no host has: frames to it are unknown unicast.
const UNKNOWN_DST: Mac = [0x02, 0xee, 0xee, 0xee, 0xee, 0x01];

/// Pings every ordered pair once, so every host has sent frames.
fn ping_all(lab: &Lab) {
    assert_ping_mesh(&lab.hosts, 1);
}

fn entries<'a>(fdb: &'a [FdbEntry], mac: &str) -> Vec<&'a FdbEntry> {
    fdb.iter().filter(|e| e.mac == mac).collect()
}

/// Polls `fdb/show` until `pred` holds; returns the last table either way.
fn wait_fdb(
    lab: &Lab,
    timeout: Duration,
    pred: impl Fn(&[FdbEntry]) -> bool,
) -> (bool, Vec<FdbEntry>) {
    let mut last = Vec::new();
    let ok = wait_for(timeout, || {
        last = lab.fdb();
        pred(&last).then_some(())
    })
    .is_some();
    (ok, last)
}

fn on_port(fdb: &[FdbEntry], h: &Host, port: &str) -> bool {
    let e = entries(fdb, &h.mac_str());
    e.len() == 1 && e[0].port == port && e[0].vlan == 0
}

fn captures(hosts: &[&Host]) -> Vec<Capture> {
    hosts
        .iter()
        .map(|h| Capture::start(h.ns(), h.ifname()).expect("start capture"))
        .collect()
}

#[test]
fn fdb_lists_each_host_on_its_own_port() {
    let lab = Lab::new(3);
    ping_all(&lab);
    let (ok, fdb) = wait_fdb(&lab, Duration::from_secs(2), |fdb| {
        lab.hosts.iter().all(|h| on_port(fdb, h, h.port()))
    });
    assert!(
        ok,
        "after traffic, fdb/show must list each host's MAC once, on its own port, vlan 0.\n\
         hosts: {:#?}\nfdb: {fdb:#?}",
        lab.hosts.iter().map(|h| h.describe()).collect::<Vec<_>>()
    );
}

#[test]
fn unknown_unicast_floods_to_every_other_port() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    let caps = captures(&[a, b, c]);
    let tok = new_token();
    send_raw(a.ns(), a.ifname(), &[test_frame(UNKNOWN_DST, a.mac(), tok)]).expect("send");
    for (h, cap) in [(b, &caps[1]), (c, &caps[2])] {
        assert!(
            cap.wait_for(Duration::from_secs(2), |fs| count_token(fs, tok) == 1),
            "a frame to unknown {} from {} was not flooded to {} (captured {} copies)",
            frames::mac_to_string(&UNKNOWN_DST),
            a.describe(),
            h.describe(),
            count_token(&cap.frames(), tok)
        );
    }
    assert_eq!(
        count_token(&caps[0].frames(), tok),
        0,
        "flood went back out of the ingress port"
    );
}

#[test]
fn known_unicast_goes_only_to_its_port() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    ping_all(&lab);
    let caps = captures(&[b, c]);
    let tok = new_token();
    let marker = new_token();
    let sent = [
        test_frame(b.mac(), a.mac(), tok),
        test_frame(BROADCAST, a.mac(), marker),
    ];
    send_raw(a.ns(), a.ifname(), &sent).expect("send");
    assert!(
        caps[0].wait_for(Duration::from_secs(2), |fs| count_token(fs, tok) == 1),
        "unicast to learned {} did not arrive",
        b.describe()
    );
    // The broadcast marker was sent after the unicast: once c has it, c
    // would also have the unicast had it been flooded.
    assert!(
        caps[1].wait_for(Duration::from_secs(2), |fs| count_token(fs, marker) == 1),
        "broadcast marker did not reach {}",
        c.describe()
    );
    assert_eq!(
        count_token(&caps[1].frames(), tok),
        0,
        "unicast to learned {} was also sent to {}",
        b.mac_str(),
        c.describe()
    );
}

#[test]
fn short_aging_time_empties_the_table() {
    let lab = Lab::new(3);
    lab.daemon.vsctl_ok(&[
        "set",
        "bridge",
        &lab.bridge,
        "other_config:mac-aging-time=2",
    ]);
    ping_all(&lab);
    let (learned, fdb) = wait_fdb(&lab, Duration::from_secs(1), |fdb| {
        lab.hosts.iter().all(|h| on_port(fdb, h, h.port()))
    });
    assert!(learned, "hosts not learned right after traffic: {fdb:#?}");
    // Refresh every entry with one last frame, so the time traffic stopped
    // is known to within a few milliseconds.
    for h in &lab.hosts {
        send_raw(
            h.ns(),
            h.ifname(),
            &[test_frame(UNKNOWN_DST, h.mac(), new_token())],
        )
        .expect("send");
    }
    let stopped = Instant::now();
    let host_ports: Vec<&str> = lab.hosts.iter().map(|h| h.port()).collect();
    let (empty, fdb) = wait_fdb(&lab, Duration::from_secs(10), |fdb| {
        fdb.iter().all(|e| !host_ports.contains(&e.port.as_str()))
    });
    assert!(
        empty,
        "with mac-aging-time=2, entries of the hosts' ports are still there {:?} after \
         traffic stopped: {fdb:#?}",
        stopped.elapsed()
    );
    assert!(
        stopped.elapsed() >= Duration::from_millis(1500),
        "entries vanished after {:?}, before the 2 s aging time",
        stopped.elapsed()
    );
}

#[test]
fn table_size_limit_holds_under_a_mac_flood() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    lab.daemon.vsctl_ok(&[
        "set",
        "bridge",
        &lab.bridge,
        "other_config:mac-table-size=64",
    ]);
    let rx_before = lab.port_stats(a.port()).rx_packets;
    let mut rng = Rng::new(0x5eed);
    let flood: Vec<Vec<u8>> = (0..3000)
        .map(|_| test_frame(UNKNOWN_DST, frames::random_mac(&mut rng), new_token()))
        .collect();
    send_raw(a.ns(), a.ifname(), &flood).expect("send flood");
    let rx = wait_for(Duration::from_secs(3), || {
        let n = lab
            .port_stats(a.port())
            .rx_packets
            .saturating_sub(rx_before);
        (n >= 1000).then_some(n)
    });
    assert!(
        rx.is_some(),
        "the switch received fewer than 1000 of 3000 flood frames on {}: {:?}",
        a.port(),
        lab.port_stats(a.port())
    );
    let fdb = lab.fdb();
    assert!(
        fdb.len() <= 64,
        "mac-table-size=64 but fdb/show has {} entries",
        fdb.len()
    );
    for (x, y) in [(b, c), (c, b)] {
        let r = ping_report(x, y.ip(), 3);
        assert!(
            r.all_answered(),
            "after the MAC flood, ping {} -> {}:\n{}",
            x.ip(),
            y.ip(),
            r.output
        );
    }
    let fdb = lab.fdb();
    assert!(
        fdb.len() <= 64,
        "after pings, fdb/show has {} entries",
        fdb.len()
    );
}

#[test]
fn a_moved_mac_is_relearned_at_once() {
    let lab = Lab::new(3);
    let (b, c) = (lab.host(1), lab.host(2));
    ping_all(&lab);
    let (ok, fdb) = wait_fdb(&lab, Duration::from_secs(2), |fdb| {
        on_port(fdb, b, b.port())
    });
    assert!(ok, "{} not learned on its port: {fdb:#?}", b.describe());
    // b's MAC now speaks from c's port.
    send_raw(
        c.ns(),
        c.ifname(),
        &[test_frame(BROADCAST, b.mac(), new_token())],
    )
    .expect("send");
    let (moved, fdb) = wait_fdb(&lab, Duration::from_secs(1), |fdb| {
        on_port(fdb, b, c.port())
    });
    assert!(
        moved,
        "{} seen on port {} was not moved there within 1 s: {fdb:#?}",
        b.mac_str(),
        c.port()
    );
    // And back, when b itself speaks again.
    send_raw(
        b.ns(),
        b.ifname(),
        &[test_frame(BROADCAST, b.mac(), new_token())],
    )
    .expect("send");
    let (back, fdb) = wait_fdb(&lab, Duration::from_secs(1), |fdb| {
        on_port(fdb, b, b.port())
    });
    assert!(
        back,
        "{} did not move back to {}: {fdb:#?}",
        b.mac_str(),
        b.port()
    );
    assert!(
        ping(lab.host(0), b.ip(), 3),
        "ping to {} after the moves",
        b.describe()
    );
}

#[test]
fn multicast_source_frames_are_dropped_and_counted() {
    let lab = Lab::new(3);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    let caps = captures(&[b, c]);
    let before = lab.port_stats(a.port()).drop_count("multicast-source");
    let bad_src: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x42];
    let bad = new_token();
    let marker = new_token();
    let sent = [
        test_frame(BROADCAST, bad_src, bad),
        test_frame(UNKNOWN_DST, bad_src, bad),
        test_frame(BROADCAST, a.mac(), marker),
    ];
    send_raw(a.ns(), a.ifname(), &sent).expect("send");
    for (h, cap) in [(b, &caps[0]), (c, &caps[1])] {
        assert!(
            cap.wait_for(Duration::from_secs(2), |fs| count_token(fs, marker) == 1),
            "good marker frame did not reach {}",
            h.describe()
        );
        assert_eq!(
            count_token(&cap.frames(), bad),
            0,
            "a frame with multicast source {} was forwarded to {}",
            frames::mac_to_string(&bad_src),
            h.describe()
        );
    }
    let counted = wait_for(Duration::from_secs(2), || {
        let s = lab.port_stats(a.port());
        (s.drop_count("multicast-source") >= before + 2).then_some(s)
    });
    assert!(
        counted.is_some(),
        "2 multicast-source frames sent, dump-ports shows {:?}",
        lab.port_stats(a.port())
    );
    let fdb = lab.fdb();
    assert!(
        entries(&fdb, &frames::mac_to_string(&bad_src)).is_empty(),
        "a multicast source MAC was learned: {fdb:#?}"
    );
}

/// Header-only and short frames (14..59 bytes, which veth delivers as
/// they are) must not disturb the switch.
#[test]
fn short_frames_do_not_disturb_the_switch() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let short: Vec<Vec<u8>> = (14..60)
        .map(|len| {
            let mut f = test_frame(BROADCAST, a.mac(), new_token());
            f.truncate(len);
            f
        })
        .collect();
    send_raw(a.ns(), a.ifname(), &short).expect("send short frames");
    assert!(ping(a, b.ip(), 3), "ping after short frames");
    for args in [vec!["show"], vec!["dump-ports", &lab.bridge]] {
        let out = lab.daemon.vsctl(&args);
        assert!(out.success(), "daemon unwell after short frames:\n{out}");
    }
}
