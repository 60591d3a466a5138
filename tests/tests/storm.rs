//! Storm control (issue 10): a loop in the topology (one veth joining two
//! ports of the bridge) makes broadcast frames circle forever. With the
//! per-port flood limit on by default, the switch drops the excess,
//! counts it, and hosts on the bridge keep talking.

use std::process::Command;
use std::time::Duration;
use tests::names::unique;
use tests::{ping, ping_report, Lab};

/// A veth pair in the root namespace, deleted on drop.
struct Pair(String, String);

impl Pair {
    fn new() -> Pair {
        let (a, b) = (unique("lpa"), unique("lpb"));
        let ok = Command::new("ip")
            .args(["link", "add", &a, "type", "veth", "peer", "name", &b])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link add {a} type veth peer name {b}");
        for n in [&a, &b] {
            Command::new("ip")
                .args(["link", "set", n, "up"])
                .status()
                .unwrap();
        }
        Pair(a, b)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn a_loop_is_held_to_the_flood_limit_and_hosts_keep_talking() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let d = &lab.daemon;
    let lp = Pair::new();
    d.vsctl_ok(&["add-port", &lab.bridge, &lp.0]);
    d.vsctl_ok(&["add-port", &lab.bridge, &lp.1]);
    // Broadcasts enter the loop (ARP for an address nobody has).
    let _ = ping(a, "10.77.0.99".parse().unwrap(), 3);
    std::thread::sleep(Duration::from_secs(1));
    let r = ping_report(a, b.ip(), 20);
    assert!(
        r.received >= 19,
        "with a loop, host to host lost {} of 20 pings:\n{}",
        20 - r.received,
        r.output
    );
    let limited: u64 = [&lp.0, &lp.1]
        .iter()
        .map(|p| {
            lab.port_stats(p)
                .drops
                .get("flood-limit")
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert!(limited > 0, "the loop's floods were never limited");
    // The limit is a port setting; removing the loop ends the storm.
    d.vsctl_ok(&["set", "port", &lp.0, "other_config:flood-limit=100"]);
    d.vsctl_ok(&["del-port", &lab.bridge, &lp.1]);
    assert!(ping(a, b.ip(), 3));
    let out = d.vsctl(&["set", "port", &lp.0, "other_config:flood-limit=fast"]);
    assert!(
        !out.success() && out.stderr.contains("flood-limit"),
        "{out}"
    );
}

/// Roles and states of `rstp/show BR`, by port name.
fn rstp_ports(d: &tests::daemon::Daemon, br: &str) -> Vec<(String, String, String)> {
    let v = d.vsctl_json(&["rstp/show", br]);
    v[0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("role"), s("state"))
        })
        .collect()
}

#[test]
fn rstp_blocks_a_loop_and_hosts_lose_nothing() {
    let lab = Lab::new(2);
    let (a, b) = (lab.host(0), lab.host(1));
    let d = &lab.daemon;
    let br = lab.bridge.as_str();
    // Bad settings are refused and change nothing.
    for bad in [
        vec!["set", "bridge", br, "rstp_enable=maybe"],
        vec!["set", "bridge", br, "other_config:rstp-priority=5"],
        vec!["set", "bridge", br, "other_config:rstp-forward-delay=99"],
        vec!["set", "port", a.port(), "other_config:rstp-path-cost=0"],
    ] {
        let out = d.vsctl(&bad);
        assert!(
            !out.success() && out.stderr.contains("rstp"),
            "{bad:?}: {out}"
        );
    }
    assert!(!d.vsctl(&["rstp/show", br]).success());
    d.vsctl_ok(&["set", "bridge", br, "rstp_enable=true"]);
    // Storm control off on the loop: only RSTP may hold it.
    let lp = Pair::new();
    for p in [&lp.0, &lp.1] {
        d.vsctl_ok(&[
            "add-port",
            br,
            p,
            "--",
            "set",
            "port",
            p,
            "other_config:flood-limit=0",
        ]);
    }
    let mut last = Vec::new();
    let converged = tests::poll::wait_until(Duration::from_secs(20), || {
        last = rstp_ports(d, br);
        let state = |n: &str| {
            last.iter()
                .find(|p| p.0 == n)
                .map(|p| (p.1.as_str(), p.2.as_str()))
        };
        let loop_ends = [state(&lp.0), state(&lp.1)];
        loop_ends.contains(&Some(("backup", "discarding")))
            && loop_ends.contains(&Some(("designated", "forwarding")))
            && [a.port(), b.port()]
                .iter()
                .all(|h| state(h) == Some(("designated", "forwarding")))
    });
    assert!(converged, "RSTP did not block the loop in 20 s: {last:?}");
    let blocked = if last.iter().any(|p| p.0 == lp.0 && p.1 == "backup") {
        &lp.0
    } else {
        &lp.1
    };
    // Broadcasts enter the loop (ARP for an address nobody has).
    let _ = ping(a, "10.77.0.99".parse().unwrap(), 3);
    let before = lab.port_stats(blocked);
    let r = ping_report(a, b.ip(), 50);
    assert_eq!(
        r.received, 50,
        "with RSTP on a loop, pings were lost:\n{}",
        r.output
    );
    let after = lab.port_stats(blocked);
    // No storm: the blocked end saw a few frames, not a circling flood.
    assert!(
        after.rx_packets - before.rx_packets < 500,
        "{} frames reached the blocked port during 50 pings",
        after.rx_packets - before.rx_packets
    );
    assert!(after.drops.get("rstp-discarding").copied().unwrap_or(0) > 0);
    let text = d.vsctl_ok(&["rstp/show", br]);
    assert!(
        text.contains("This bridge is the root") && text.contains("Backup"),
        "{text}"
    );
    // The loop's other end goes: the blocked port takes over and forwards.
    let other = if blocked == &lp.0 { &lp.1 } else { &lp.0 };
    d.vsctl_ok(&["del-port", br, other]);
    let took_over = tests::poll::wait_until(Duration::from_secs(20), || {
        rstp_ports(d, br)
            .iter()
            .any(|p| &p.0 == blocked && p.1 == "designated" && p.2 == "forwarding")
    });
    assert!(took_over, "{:?}", rstp_ports(d, br));
    assert!(ping(a, b.ip(), 3));
    // RSTP off: every port forwards at once.
    d.vsctl_ok(&["set", "bridge", br, "rstp_enable=false"]);
    assert!(!d.vsctl(&["rstp/show", br]).success());
    assert!(ping(a, b.ip(), 3));
}
