//! Several hosts sharing overlay networks through a real etcd: hosts are
//! namespaces on one underlay segment, each running its own vswitchd that
//! joins the etcd cluster (Debian's etcd-server, started by the test in a
//! namespace of its own). Containers attached without addresses get them
//! from etcd; remote members are static FDB entries and ARP answers, so
//! the underlay carries no ARP; hosts that die are dropped within the
//! lease TTL; an etcd outage stops nothing that already works.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::cmd::{run, ADMIN_TIMEOUT};
use tests::container::{tcp_transfer, Container};
use tests::etcd::Etcd;
use tests::frames::{new_token, test_frame, token_of};
use tests::overlay::{Fabric, OverlayHost, UNDERLAY_IF};
use tests::poll::wait_until;
use tests::{send_raw, Capture};

const TCP_BYTES: u64 = 8 << 20;

/// Fields drop in order: daemons, containers, etcd, the fabric.
struct Lab {
    hosts: Vec<OverlayHost>,
    containers: Vec<Container>,
    etcd: Etcd,
    _fabric: Fabric,
}

impl Lab {
    /// `n` vswitch hosts (10.99.0.1..n) and an etcd of `members`, every
    /// host joined as hN with lease TTL `ttl`.
    fn new(n: u8, members: usize, ttl: u32) -> Lab {
        let fabric = Fabric::new();
        let etcd = Etcd::start(&fabric, members);
        let hosts: Vec<OverlayHost> = (1..=n).map(|i| OverlayHost::vswitch(&fabric, i)).collect();
        for (i, h) in hosts.iter().enumerate() {
            h.vsctl(&[
                "cluster/join",
                &etcd.endpoints(),
                "--host",
                &format!("h{}", i + 1),
                "--ttl",
                &ttl.to_string(),
            ]);
        }
        Lab {
            hosts,
            containers: Vec::new(),
            etcd,
            _fabric: fabric,
        }
    }

    fn h(&self, i: usize) -> &OverlayHost {
        &self.hosts[i]
    }

    /// Bridge `br` on host `i`, part of network `net`.
    fn bridge(&self, i: usize, br: &str, net: &str) {
        self.h(i).vsctl(&[
            "--may-exist",
            "add-br",
            br,
            "--",
            "set",
            "bridge",
            br,
            &format!("other_config:network={net}"),
        ]);
    }

    /// A new container attached to `br` on host `i` without an address;
    /// returns its index and the address the network gave it.
    fn attach(&mut self, i: usize, br: &str) -> (usize, Ipv4Addr) {
        let c = Container::named();
        let j = self.h(i).daemon().vsctl_json(&["attach", br, &c.name()]);
        self.containers.push(c);
        (self.containers.len() - 1, ip_of(&j))
    }

    /// Network "red" (`vni`, `subnet`) with bridge br0 in it on hosts 1
    /// and 2.
    fn red_on_two(&self, vni: u32, subnet: &str) {
        let vni = vni.to_string();
        self.h(0)
            .vsctl(&["network/create", "red", "--vni", &vni, "--subnet", subnet]);
        self.bridge(0, "br0", "red");
        self.bridge(1, "br0", "red");
    }

    /// [`Lab::red_on_two`] with a container on each host that reaches the
    /// other: host 1's container, and host 2's address.
    fn red_pair(&mut self, vni: u32, subnet: &str) -> (usize, Ipv4Addr) {
        self.red_on_two(vni, subnet);
        let (a, _) = self.attach(0, "br0");
        let (_, ip_b) = self.attach(1, "br0");
        assert_reach(self.c(a), ip_b);
        (a, ip_b)
    }

    fn c(&self, k: usize) -> &Container {
        &self.containers[k]
    }

    fn show(&self, i: usize) -> Value {
        self.h(i).daemon().vsctl_json(&["cluster/show"])
    }
}

fn ip_of(attachment: &Value) -> Ipv4Addr {
    let ip = attachment["ip"]
        .as_str()
        .unwrap_or_else(|| panic!("no ip in {attachment}"));
    ip.split('/').next().unwrap().parse().unwrap()
}

fn assert_reach(from: &Container, to: Ipv4Addr) {
    assert!(
        from.wait_ping(to, Duration::from_secs(10)),
        "{} cannot reach {to}",
        from.name()
    );
    assert_eq!(
        from.ping(to, 3),
        3,
        "pings from {} to {to} were lost",
        from.name()
    );
}

/// The VXLAN datagrams (to UDP 4789) among `frames`: (VNI, inner frame).
fn vxlan(frames: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
    frames
        .iter()
        .filter(|f| f.len() > 50 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0x12, 0xb5])
        .map(|f| {
            (
                u32::from_be_bytes([0, f[46], f[47], f[48]]),
                f[50..].to_vec(),
            )
        })
        .collect()
}

fn is_arp(inner: &[u8]) -> bool {
    inner.len() >= 14 && inner[12..14] == [8, 6]
}

fn remotes_of(h: &OverlayHost) -> BTreeSet<String> {
    let t = h.daemon().vsctl_json(&["tunnel/show"]);
    t["tunnels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["remotes"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["remote_ip"].as_str().map(String::from))
        .collect()
}

fn fdb_remotes(h: &OverlayHost, br: &str) -> BTreeSet<String> {
    let fdb = h.daemon().vsctl_json(&["fdb/show", br]);
    fdb.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["remote"].as_str().map(String::from))
        .collect()
}

#[test]
fn three_hosts_two_networks_addresses_mesh_isolation_and_no_arp_on_the_underlay() {
    let mut lab = Lab::new(3, 1, 10);
    lab.h(0).vsctl(&[
        "network/create",
        "red",
        "--vni",
        "100",
        "--subnet",
        "10.50.0.0/24",
        "--gateway",
        "10.50.0.1",
    ]);
    lab.h(1).vsctl(&[
        "network/create",
        "blue",
        "--vni",
        "200",
        "--subnet",
        "10.60.0.0/24",
    ]);
    let list = lab.h(2).daemon().vsctl_json(&["network/list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    for i in 0..3 {
        lab.bridge(i, "br0", "red");
        // Host 3 has a blue bridge but no blue member.
        lab.bridge(i, "br1", "blue");
    }
    let red: Vec<(usize, Ipv4Addr)> = (0..3).map(|i| lab.attach(i, "br0")).collect();
    let blue: Vec<(usize, Ipv4Addr)> = (0..2).map(|i| lab.attach(i, "br1")).collect();
    let addrs: BTreeSet<Ipv4Addr> = red.iter().chain(&blue).map(|(_, ip)| *ip).collect();
    assert_eq!(addrs.len(), 5, "addresses given twice: {red:?} {blue:?}");
    for (_, ip) in &red {
        assert!(
            ip.octets()[..3] == [10, 50, 0] && *ip != Ipv4Addr::new(10, 50, 0, 1),
            "{ip}"
        );
    }
    for (_, ip) in &blue {
        assert_eq!(ip.octets()[..3], [10, 60, 0], "{ip}");
    }
    // The gateway given to the network is the containers' default route.
    let routes = lab.c(red[0].0).routes();
    assert!(
        routes.iter().any(|r| r.contains("default via 10.50.0.1")),
        "{routes:?}"
    );

    for (a, _) in &red {
        for (_, ip) in &red {
            assert_reach(lab.c(*a), *ip);
        }
    }
    assert_reach(lab.c(blue[0].0), blue[1].1);
    assert_reach(lab.c(blue[1].0), blue[0].1);
    tcp_transfer(lab.c(red[0].0), lab.c(red[2].0), red[2].1, TCP_BYTES)
        .expect("TCP h1 -> h3 on red");
    tcp_transfer(lab.c(blue[1].0), lab.c(blue[0].0), blue[0].1, TCP_BYTES)
        .expect("TCP h2 -> h1 on blue");

    // Each host's view: the others with their VTEPs, static entries for
    // the remote members.
    let s = lab.show(0);
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["vtep"], "10.99.0.1", "{s}");
    assert_eq!(s["hosts"]["h3"], "10.99.0.3", "{s}");
    assert_eq!(
        fdb_remotes(lab.h(0), "br0"),
        ["10.99.0.2", "10.99.0.3"].map(String::from).into(),
    );
    // fdb/flush takes the static entries too; the overlay puts them back.
    lab.h(0).vsctl(&["fdb/flush", "br0"]);
    let both: BTreeSet<String> = ["10.99.0.2", "10.99.0.3"].map(String::from).into();
    assert!(wait_until(Duration::from_secs(3), || fdb_remotes(
        lab.h(0),
        "br0"
    ) == both));

    // ARP suppression: with every neighbour cache empty, pings to each
    // remote member get their ARP answered locally; no ARP frame crosses
    // the underlay, while the pings themselves do.
    for (k, _) in red.iter().chain(&blue) {
        lab.c(*k).ip_ok(&["neigh", "flush", "all"]);
    }
    let caps: Vec<Capture> = lab
        .hosts
        .iter()
        .map(|h| Capture::start(h.ns(), UNDERLAY_IF).expect("capture"))
        .collect();
    for (a, _) in &red {
        for (_, ip) in &red {
            assert_eq!(
                lab.c(*a).ping(*ip, 1),
                1,
                "ping to {ip} after the neighbour flush"
            );
        }
    }
    assert_eq!(lab.c(blue[0].0).ping(blue[1].1, 1), 1);
    let frames: Vec<Vec<u8>> = caps.into_iter().flat_map(|c| c.stop()).collect();
    let tunnelled = vxlan(&frames);
    assert!(
        tunnelled.len() >= 12,
        "the pings crossed the underlay: {}",
        tunnelled.len()
    );
    let arps = tunnelled.iter().filter(|(_, f)| is_arp(f)).count();
    assert_eq!(arps, 0, "ARP frames on the underlay");

    // Broadcasts reach only the hosts with members of the network: a blue
    // broadcast from host 1 reaches host 2, never host 3; and never a red
    // container.
    let h2 = Capture::start(lab.h(1).ns(), UNDERLAY_IF).expect("capture");
    let h3 = Capture::start(lab.h(2).ns(), UNDERLAY_IF).expect("capture");
    let red_seen = Capture::start(&lab.c(red[1].0).name(), "eth1").expect("capture");
    let token = new_token();
    let frame = test_frame([0xff; 6], [0x02, 0x42, 0, 0, 0x77, 0x01], token);
    send_raw(&lab.c(blue[0].0).name(), "eth1", &[frame]).expect("send broadcast");
    let carries = |fs: &[Vec<u8>]| {
        vxlan(fs)
            .iter()
            .filter(|(v, f)| *v == 200 && token_of(f) == Some(token))
            .count()
    };
    assert!(
        h2.wait_for(Duration::from_secs(3), |f| carries(f) == 1),
        "host 2 did not get the blue broadcast"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        carries(&h3.stop()),
        0,
        "host 3 (no blue member) got a blue broadcast"
    );
    assert_eq!(
        red_seen
            .stop()
            .iter()
            .filter(|f| token_of(f) == Some(token))
            .count(),
        0,
        "a blue broadcast reached a red container"
    );
    drop(h2);
}

#[test]
fn a_killed_host_is_dropped_within_the_ttl_and_comes_back_on_restart() {
    const TTL: u64 = 3;
    let mut lab = Lab::new(2, 1, TTL as u32);
    let (a, ip_b) = lab.red_pair(300, "10.51.0.0/24");
    assert!(remotes_of(lab.h(0)).contains("10.99.0.2"));

    lab.hosts[1].daemon_mut().kill9();
    let t = Instant::now();
    let gone = wait_until(Duration::from_secs(TTL + 2), || {
        let s = lab.show(0);
        s["hosts"].get("h2").is_none()
            && !remotes_of(lab.h(0)).contains("10.99.0.2")
            && !fdb_remotes(lab.h(0), "br0").contains("10.99.0.2")
    });
    assert!(
        gone,
        "host 2 still known {:?} after its kill: {}",
        t.elapsed(),
        lab.show(0)
    );

    lab.hosts[1].daemon_mut().restart();
    assert!(
        wait_until(Duration::from_secs(10), || remotes_of(lab.h(0))
            .contains("10.99.0.2")),
        "host 2 did not come back: {}",
        lab.show(0)
    );
    assert_reach(lab.c(a), ip_b);
}

/// Runs `nft` inside host `ns`.
fn nft(ns: &str, script: &str) {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", ns, "nft", script]);
    let out = run(c, ADMIN_TIMEOUT);
    assert!(out.success(), "{out}");
}

fn state(lab: &Lab, i: usize) -> String {
    lab.show(i)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn etcd_down_traffic_goes_on_and_a_host_cut_off_catches_up() {
    let mut lab = Lab::new(2, 1, 10);
    let (a, ip_b) = lab.red_pair(400, "10.52.0.0/24");

    // etcd stops: forwarding goes on with what is known.
    lab.etcd.kill(0);
    assert!(wait_until(Duration::from_secs(10), || state(&lab, 0) == "disconnected"));
    assert_reach(lab.c(a), ip_b);
    let c = Container::named();
    let out = lab.h(1).daemon().vsctl(&["attach", "br0", &c.name()]);
    assert!(
        !out.success() && out.stderr.contains("etcd"),
        "attach without etcd: {out}"
    );
    lab.etcd.restart(0);
    assert!(wait_until(Duration::from_secs(10), || state(&lab, 0)
        == "connected"
        && state(&lab, 1) == "connected"));

    // Host 1 alone is cut off from etcd; host 2 attaches meanwhile. Once
    // host 1 is back, it catches up and reaches the new member.
    nft(
        lab.h(0).ns(),
        "add table inet cut; add chain inet cut out { type filter hook output priority 0; }; add rule inet cut out tcp dport 2379 drop",
    );
    assert!(wait_until(Duration::from_secs(10), || state(&lab, 0) == "disconnected"));
    let (_, ip_new) = lab.attach(1, "br0");
    nft(lab.h(0).ns(), "delete table inet cut");
    assert!(wait_until(Duration::from_secs(10), || state(&lab, 0) == "connected"));
    assert_reach(lab.c(a), ip_new);

    // The same, with the revisions host 1 missed compacted away: it lists
    // everything again.
    nft(
        lab.h(0).ns(),
        "add table inet cut; add chain inet cut out { type filter hook output priority 0; }; add rule inet cut out tcp dport 2379 drop",
    );
    assert!(wait_until(Duration::from_secs(10), || state(&lab, 0) == "disconnected"));
    let (_, ip_newer) = lab.attach(1, "br0");
    lab.etcd.compact(0);
    nft(lab.h(0).ns(), "delete table inet cut");
    assert!(wait_until(Duration::from_secs(10), || state(&lab, 0) == "connected"));
    assert_reach(lab.c(a), ip_newer);
    let log = lab.h(0).daemon().log_tail(200);
    assert!(log.contains("compacted"), "{log}");
    drop(c);
}

#[test]
fn a_three_member_etcd_with_one_member_down_keeps_working() {
    let mut lab = Lab::new(2, 3, 10);
    let (a, _) = lab.red_pair(500, "10.53.0.0/24");
    // The member the hosts talk to (the first endpoint) dies.
    lab.etcd.kill(0);
    let (_, ip_c) = lab.attach(1, "br0");
    assert_reach(lab.c(a), ip_c);
    // Host 1 lost its watch with the member; it goes on with another.
    assert!(
        wait_until(Duration::from_secs(10), || state(&lab, 0) == "connected"),
        "{}",
        lab.show(0)
    );
    let s = lab.show(0);
    assert_ne!(s["endpoint"], lab.etcd.endpoint(0), "{s}");
}

#[test]
fn fifty_concurrent_attaches_on_two_hosts_get_distinct_addresses() {
    let lab = Lab::new(2, 1, 10);
    lab.red_on_two(600, "10.54.0.0/24");
    let per_host = 25;
    let results: Vec<Vec<(Container, Ipv4Addr)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let h = lab.h(i);
                s.spawn(move || {
                    (0..per_host)
                        .map(|_| {
                            let c = Container::named();
                            let j = h.daemon().vsctl_json(&["attach", "br0", &c.name()]);
                            (c, ip_of(&j))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("attacher"))
            .collect()
    });
    let all: Vec<Ipv4Addr> = results.iter().flatten().map(|(_, ip)| *ip).collect();
    let distinct: BTreeSet<Ipv4Addr> = all.iter().copied().collect();
    assert_eq!(all.len(), 2 * per_host);
    assert_eq!(distinct.len(), all.len(), "duplicate addresses: {all:?}");
    // Detach gives an address back: the next attach takes the lowest free.
    let (c0, ip0) = &results[0][0];
    lab.h(0).vsctl(&["detach", "br0", &c0.name()]);
    let c = Container::named();
    let j = lab.h(0).daemon().vsctl_json(&["attach", "br0", &c.name()]);
    assert_eq!(ip_of(&j), *ip0);
    // A given address is checked against the subnet and the others.
    let taken = results[1][0].1.to_string();
    let d = Container::named();
    let out = lab
        .h(0)
        .daemon()
        .vsctl(&["attach", "br0", &d.name(), &format!("{taken}/24")]);
    assert!(!out.success() && out.stderr.contains("taken"), "{out}");
    let out = lab
        .h(0)
        .daemon()
        .vsctl(&["attach", "br0", &d.name(), "10.99.7.7/24"]);
    assert!(
        !out.success() && out.stderr.contains("not a host address"),
        "{out}"
    );
}

#[test]
fn bad_cluster_commands_are_refused_and_change_nothing() {
    let mut lab = Lab::new(1, 1, 10);
    let d = lab.h(0).daemon();
    let before = d.vsctl_json(&["cluster/show"]);
    // Unreachable endpoints: nothing stored.
    let fabric2 = Fabric::new();
    let lone = OverlayHost::vswitch(&fabric2, 9);
    let out = lone
        .daemon()
        .vsctl(&["cluster/join", "http://10.99.0.250:2379", "--host", "x"]);
    assert!(
        !out.success() && out.stderr.contains("cannot reach etcd"),
        "{out}"
    );
    assert_eq!(lone.daemon().vsctl_json(&["cluster/show"])["joined"], false);
    for bad in [
        ["cluster/join", "https://10.99.0.200:2379"],
        ["cluster/join", "http://10.99.0.200:2379,nope:x"],
    ] {
        let out = lone.daemon().vsctl(&bad);
        assert!(!out.success(), "{out}");
    }
    let out = lone.daemon().vsctl(&["network/list"]);
    assert!(
        !out.success() && out.stderr.contains("not in a cluster"),
        "{out}"
    );

    d.vsctl_ok(&[
        "network/create",
        "red",
        "--vni",
        "700",
        "--subnet",
        "10.55.0.0/24",
    ]);
    for (args, why) in [
        (
            vec![
                "network/create",
                "red",
                "--vni",
                "701",
                "--subnet",
                "10.56.0.0/24",
            ],
            "exists",
        ),
        (
            vec![
                "network/create",
                "green",
                "--vni",
                "700",
                "--subnet",
                "10.56.0.0/24",
            ],
            "VNI 700 is taken",
        ),
        (
            vec![
                "network/create",
                "green",
                "--vni",
                "701",
                "--subnet",
                "10.55.0.128/25",
            ],
            "overlaps",
        ),
        (
            vec![
                "network/create",
                "green",
                "--vni",
                "701",
                "--subnet",
                "10.56.0.1/24",
            ],
            "host bits",
        ),
        (
            vec![
                "network/create",
                "green",
                "--vni",
                "0",
                "--subnet",
                "10.56.0.0/24",
            ],
            "VNI",
        ),
        (
            vec!["network/create", "green", "--subnet", "10.56.0.0/24"],
            "--vni is required",
        ),
        (
            vec![
                "network/create",
                "green",
                "--vni",
                "701",
                "--subnet",
                "10.56.0.0/24",
                "--gateway",
                "10.57.0.1",
            ],
            "not a host address",
        ),
        (vec!["network/delete", "nope"], "no network named nope"),
    ] {
        let out = d.vsctl(&args);
        assert!(
            !out.success() && out.stderr.contains(why),
            "{args:?}: {out}"
        );
    }
    // A network in use cannot be deleted; once empty it can.
    d.vsctl_ok(&[
        "add-br",
        "br1",
        "--",
        "set",
        "bridge",
        "br1",
        "other_config:network=red",
    ]);
    let c = Container::named();
    d.vsctl_ok(&["attach", "br1", &c.name()]);
    let out = d.vsctl(&["network/delete", "red"]);
    assert!(!out.success() && out.stderr.contains("in use"), "{out}");
    d.vsctl_ok(&["detach", "br1", &c.name()]);
    assert!(wait_until(Duration::from_secs(5), || d
        .vsctl(&["network/delete", "red"])
        .success()));
    let list = d.vsctl_json(&["network/list"]);
    assert_eq!(list, Value::Array(vec![]), "{list}");
    // A bridge outside any network cannot give an address.
    d.vsctl_ok(&["add-br", "plain"]);
    let out = d.vsctl(&["attach", "plain", &c.name()]);
    assert!(!out.success() && out.stderr.contains("IP/PREFIX"), "{out}");
    drop(lone);

    // Leaving forgets the cluster; joining again is stored and survives a
    // restart.
    assert_eq!(before["joined"], true, "{before}");
    d.vsctl_ok(&["cluster/leave"]);
    assert_eq!(d.vsctl_json(&["cluster/show"])["joined"], false);
    let out = d.vsctl(&["cluster/leave"]);
    assert!(
        !out.success() && out.stderr.contains("not in a cluster"),
        "{out}"
    );
    d.vsctl_ok(&["cluster/join", &lab.etcd.endpoints(), "--host", "again"]);
    lab.hosts[0].daemon_mut().restart();
    let ok = wait_until(Duration::from_secs(10), || {
        let s = lab.show(0);
        s["host"] == "again" && s["state"] == "connected"
    });
    assert!(ok, "{}", lab.show(0));
}
