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
