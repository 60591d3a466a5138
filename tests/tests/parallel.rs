//! Two daemons side by side, each with its own run directory, db, bridge
//! and two hosts (with the same IP addresses: the two L2 domains must stay
//! apart). Traffic runs through both at the same time.

use std::thread;

use tests::cmd::run;
use tests::{model, ping, tcp_transfer, udp_exchange, Daemon, Lab};

#[test]
fn two_daemons_forward_independently_at_the_same_time() {
    let one = Lab::new(2);
    let two = Lab::new(2);
    assert_ne!(one.daemon.rundir(), two.daemon.rundir());

    for (lab, other) in [(&one, &two), (&two, &one)] {
        let list = model::string_list(&lab.daemon.vsctl_json(&["list-br"]));
        assert_eq!(
            list,
            vec![lab.bridge.clone()],
            "each daemon lists only its own bridge"
        );
        let out = lab.daemon.vsctl(&["port-to-br", other.host(0).port()]);
        assert!(
            !out.success(),
            "a daemon claims a port of the other daemon's bridge:\n{out}"
        );
    }

    let results = thread::scope(|s| {
        let runs: Vec<_> = [&one, &two]
            .into_iter()
            .map(|lab| {
                s.spawn(move || {
                    let (a, b) = (lab.host(0), lab.host(1));
                    let tcp = tcp_transfer(a, b, 20_000_000);
                    let udp = udp_exchange(b, a, 200);
                    let pinged = ping(a, b.ip(), 3);
                    (tcp, udp, pinged)
                })
            })
            .collect();
        runs.into_iter()
            .map(|h| h.join().expect("traffic thread"))
            .collect::<Vec<_>>()
    });
    for (i, (tcp, udp, pinged)) in results.iter().enumerate() {
        assert!(tcp.ok(), "daemon {}: {tcp}", i + 1);
        assert!(udp.ok(200), "daemon {}: {udp}", i + 1);
        assert!(pinged, "daemon {}: ping during parallel traffic", i + 1);
    }

    for (lab, other) in [(&one, &two), (&two, &one)] {
        let fdb = lab.fdb();
        for h in &other.hosts {
            assert!(
                fdb.iter().all(|e| e.mac != h.mac_str()),
                "daemon of {} learned {} from the other daemon's bridge: {fdb:#?}",
                lab.bridge,
                h.mac_str()
            );
        }
    }
}

/// Without --rundir, vswctl finds its daemon through VSWITCH_RUNDIR.
#[test]
fn vswctl_uses_vswitch_rundir_from_the_environment() {
    let one = Daemon::start();
    let two = Daemon::start();
    one.vsctl_ok(&["add-br", &tests::names::unique("br")]);
    for d in [&one, &two] {
        let mut c = d.bins().vswctl_command();
        c.env("VSWITCH_RUNDIR", d.rundir())
            .args(["--format", "json", "list-br"]);
        let out = run(c, std::time::Duration::from_secs(10));
        assert!(out.success(), "{out}");
        let via_env: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{out}"));
        assert_eq!(
            via_env,
            d.vsctl_json(&["list-br"]),
            "VSWITCH_RUNDIR={}",
            d.rundir().display()
        );
    }
}
