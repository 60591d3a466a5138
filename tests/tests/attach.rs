//! `vswctl attach / detach / list-attachments` with real "containers":
//! namespaces with a process in them (attached by PID or by namespace file)
//! and named namespaces (attached by name). Traffic is real: ping, a TCP
//! stream and UDP datagrams checked byte for byte, with the veths at their
//! default offloads (the switch completes partial checksums itself). The
//! daemons here make veth pairs (`other_config:attach-type=veth`).
//!
//! The failure test checks that nothing is left in the root namespace, so
//! it runs alone: every other test here holds [`LOCK`] shared, it holds it
//! exclusively. (Other test binaries never make `vsw*` links.)

use std::net::Ipv4Addr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;
use tests::container::{root_links, tcp_transfer, udp_echo, Container};
use tests::poll::wait_until;
use tests::{names, Daemon};

static LOCK: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOCK.write().unwrap_or_else(|e| e.into_inner())
}

/// How long the switch may take to notice that a container went away.
const VANISH_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_PING: Duration = Duration::from_secs(10);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A daemon with one bridge, whose `attach` makes veth pairs unless told
/// `--type tap` (the default is TAP; `attach_tap.rs` tests that kind).
fn switch() -> (Daemon, String) {
    let d = Daemon::start();
    let br = names::unique("br");
    d.vsctl_ok(&["add-br", &br]);
    d.vsctl_ok(&["set", "open_vswitch", ".", "other_config:attach-type=veth"]);
    (d, br)
}

fn attachments(d: &Daemon, br: &str) -> Vec<Value> {
    match d.vsctl_json(&["list-attachments", br]) {
        Value::Array(a) => a,
        other => panic!("list-attachments --format json is not a list: {other}"),
    }
}

fn attachment_of<'a>(all: &'a [Value], container: &str) -> &'a Value {
    all.iter()
        .find(|a| a["container"] == container)
        .unwrap_or_else(|| panic!("no attachment of {container} in {all:#?}"))
}

/// Root-namespace links that `attach` could have made.
fn vsw_links() -> Vec<String> {
    root_links()
        .into_iter()
        .filter(|l| l.starts_with("vsw"))
        .collect()
}

/// Pings between every pair, `count` each; panics with the first failure.
fn ping_mesh(cs: &[(&Container, Ipv4Addr)]) {
    for (a, _) in cs {
        for (b, bip) in cs {
            if std::ptr::eq(*a, *b) {
                continue;
            }
            let got = a.ping(*bip, 3);
            assert_eq!(got, 3, "ping {} -> {bip}: {got} of 3 answered", a.name());
        }
    }
}

#[test]
fn three_containers_by_pid_name_and_path_talk_tcp_and_udp() {
    let _g = shared();
    let (d, br) = switch();
    let c1 = Container::process();
    let c2 = Container::named();
    let c3 = Container::process();
    let c3_path = c3.ns_path().display().to_string();
    d.vsctl_ok(&["attach", &br, &c1.name(), "10.79.0.1/24@10.79.0.254"]);
    d.vsctl_ok(&[
        "attach",
        &br,
        &c2.name(),
        "10.79.0.2/24@10.79.0.254",
        "--mac",
        "02:79:00:00:00:02",
    ]);
    d.vsctl_ok(&["attach", &br, &c3_path, "10.79.0.3/24@10.79.9.1"]);

    // What list-attachments says.
    let all = attachments(&d, &br);
    assert_eq!(all.len(), 3, "{all:#?}");
    for (c, who, addr) in [
        (&c1, c1.name(), "10.79.0.1/24"),
        (&c2, c2.name(), "10.79.0.2/24"),
        (&c3, c3_path.clone(), "10.79.0.3/24"),
    ] {
        let a = attachment_of(&all, &who);
        assert_eq!(a["bridge"], br.as_str(), "{a}");
        assert_eq!(a["ifname"], "eth1", "{a}");
        assert_eq!(a["ip"], addr, "{a}");
        assert!(a["tag"].is_null(), "{a}");
        assert_eq!(a["netns"], c.ns_path().display().to_string(), "{a}");
        let port = a["port"].as_str().unwrap_or_default();
        assert!(
            port.starts_with("vsw") && port.len() <= 15,
            "host veth name {port:?} must be vsw + hash, at most 15 bytes"
        );
        // The port records the attachment in external_ids.
        let ids = d.vsctl_ok(&["get", "port", port, "external_ids"]);
        for want in ["vswitch-attachment=true", "ifname=eth1"] {
            assert!(ids.contains(want), "external_ids of {port}: {ids}");
        }
        // Inside: eth1 up, with the MAC list-attachments reports, the
        // bridge's MTU and the address.
        let l = c.link("eth1").unwrap_or_else(|| panic!("no eth1 in {who}"));
        assert_eq!(l["address"], a["mac"], "{l}");
        assert_eq!(l["mtu"], 1500, "{l}");
        assert!(
            l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "UP")),
            "eth1 of {who} is not up: {l}"
        );
        assert_eq!(c.addresses(), vec![format!("eth1 {addr}")], "{who}");
    }
    let text = d.vsctl_ok(&["list-attachments"]);
    assert_eq!(text.lines().count(), 4, "header and three rows:\n{text}");
    assert!(text.starts_with("BRIDGE"), "{text}");

    // MACs: given, or derived and locally administered unicast.
    assert_eq!(attachment_of(&all, &c2.name())["mac"], "02:79:00:00:00:02");
    let m1 = attachment_of(&all, &c1.name())["mac"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let first = u8::from_str_radix(&m1[..2], 16).unwrap_or(1);
    assert_eq!(first & 0x03, 0x02, "derived MAC {m1} must be local unicast");

    // Routes: a gateway on the subnet, and one that is not (host route).
    let r1 = c1.routes();
    assert!(
        r1.iter()
            .any(|r| r.starts_with("default via 10.79.0.254 dev eth1")),
        "{r1:?}"
    );
    let r3 = c3.routes();
    assert!(
        r3.iter()
            .any(|r| r.starts_with("default via 10.79.9.1 dev eth1")),
        "{r3:?}"
    );
    assert!(
        r3.iter()
            .any(|r| r.starts_with("10.79.9.1 dev eth1") && r.contains("scope link")),
        "gateway off the subnet needs a host route: {r3:?}"
    );

    // Traffic.
    assert!(
        c1.wait_ping(ip("10.79.0.2"), FIRST_PING),
        "no first ping from c1 to c2\n{}",
        d.vsctl(&["show"])
    );
    let cs = [
        (&c1, ip("10.79.0.1")),
        (&c2, ip("10.79.0.2")),
        (&c3, ip("10.79.0.3")),
    ];
    ping_mesh(&cs);
    tcp_transfer(&c1, &c2, ip("10.79.0.2"), 10_000_000)
        .unwrap_or_else(|e| panic!("TCP c1 -> c2: {e}"));
    tcp_transfer(&c3, &c1, ip("10.79.0.1"), 5_000_000)
        .unwrap_or_else(|e| panic!("TCP c3 -> c1: {e}"));
    udp_echo(&c2, &c3, ip("10.79.0.3"), 100).unwrap_or_else(|e| panic!("UDP c2 <-> c3: {e}"));
}

#[test]
fn tags_100_100_200_isolate_the_third() {
    let _g = shared();
    let (d, br) = switch();
    let c1 = Container::process();
    let c2 = Container::named();
    let c3 = Container::process();
    for (c, addr, tag) in [
        (&c1, "10.79.1.1/24", "100"),
        (&c2, "10.79.1.2/24", "100"),
        (&c3, "10.79.1.3/24", "200"),
    ] {
        d.vsctl_ok(&["attach", &br, &c.name(), addr, "--tag", tag]);
    }
    let all = attachments(&d, &br);
    assert_eq!(attachment_of(&all, &c1.name())["tag"], 100);
    assert_eq!(attachment_of(&all, &c3.name())["tag"], 200);
    let port3 = attachment_of(&all, &c3.name())["port"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(d.vsctl_ok(&["get", "port", &port3, "tag"]).trim(), "200");

    assert!(
        c1.wait_ping(ip("10.79.1.2"), FIRST_PING),
        "tag 100 to tag 100 must work"
    );
    tcp_transfer(&c2, &c1, ip("10.79.1.1"), 5_000_000)
        .unwrap_or_else(|e| panic!("TCP c2 -> c1 on VLAN 100: {e}"));
    assert_eq!(c3.ping(ip("10.79.1.1"), 3), 0, "VLAN 200 reached VLAN 100");
    assert_eq!(c1.ping(ip("10.79.1.3"), 3), 0, "VLAN 100 reached VLAN 200");
}

#[test]
fn del_br_detaches_its_containers() {
    let _g = shared();
    let (d, br) = switch();
    let (c1, c2) = (Container::process(), Container::process());
    let before = (c1.links(), c2.links());
    d.vsctl_ok(&["attach", &br, &c1.name(), "10.79.4.1/24"]);
    d.vsctl_ok(&["attach", &br, &c2.name(), "10.79.4.2/24"]);
    let ports: Vec<String> = attachments(&d, &br)
        .iter()
        .map(|a| a["port"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ports.len(), 2);
    d.vsctl_ok(&["del-br", &br]);
    for p in &ports {
        assert!(
            !root_links().contains(p),
            "host veth {p} is still there after del-br"
        );
    }
    assert_eq!(
        (c1.links(), c2.links()),
        before,
        "the containers' ends are still there"
    );
}

#[test]
fn detach_removes_every_trace() {
    let _g = shared();
    let (d, br) = switch();
    let c = Container::process();
    let links_before = c.links();
    // No address (0/0), a given MTU.
    d.vsctl_ok(&[
        "attach",
        &br,
        &c.name(),
        "0/0",
        "--mtu",
        "1400",
        "--ifname",
        "net0",
    ]);
    let all = attachments(&d, &br);
    let port = attachment_of(&all, &c.name())["port"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(all[0]["ip"].is_null(), "0/0 means no address: {all:#?}");
    let l = c.link("net0").expect("net0 in the container");
    assert_eq!(l["mtu"], 1400, "{l}");
    assert!(c.addresses().is_empty(), "{:?}", c.addresses());
    assert!(root_links().contains(&port));

    d.vsctl_ok(&["detach", &br, &c.name(), "--ifname", "net0"]);
    assert!(attachments(&d, &br).is_empty());
    assert_eq!(d.vsctl_ok(&["list-ports", &br]), "");
    assert!(
        !root_links().contains(&port),
        "host veth {port} is still there"
    );
    assert_eq!(
        c.links(),
        links_before,
        "the container's end is still there"
    );

    // Twice: an error, or nothing with --if-exists.
    let out = d.vsctl(&["detach", &br, &c.name(), "--ifname", "net0"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("no interface net0 attached"), "{out}");
    d.vsctl_ok(&["--if-exists", "detach", &br, &c.name(), "--ifname", "net0"]);
}

#[test]
fn attaching_twice_is_an_error_or_nothing_with_may_exist() {
    let _g = shared();
    let (d, br) = switch();
    let c = Container::named();
    d.vsctl_ok(&["attach", &br, &c.name(), "10.79.2.1/24"]);
    let before = d.vsctl_ok(&["--format", "json", "show"]);
    let out = d.vsctl(&["attach", &br, &c.name(), "10.79.2.1/24"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("already attached"), "{out}");
    d.vsctl_ok(&["--may-exist", "attach", &br, &c.name(), "10.79.2.1/24"]);
    // Another spelling of the same container (its namespace file).
    let path = c.ns_path().display().to_string();
    let out = d.vsctl(&["attach", &br, &path, "10.79.2.1/24"]);
    assert!(out.stderr.contains("already attached"), "{out}");
    assert_eq!(d.vsctl_ok(&["--format", "json", "show"]), before);
    assert_eq!(c.links().len(), 2, "lo and one eth1: {:?}", c.links());
    // Detach finds it by namespace too.
    d.vsctl_ok(&["detach", &br, &path]);
    assert!(attachments(&d, &br).is_empty());
}

#[test]
fn an_address_another_attachment_of_the_bridge_has_is_refused() {
    let _g = exclusive();
    let (d, br) = switch();
    let (a, b) = (Container::named(), Container::named());
    d.vsctl_ok(&["attach", &br, &a.name(), "10.79.4.1/24"]);
    expect_clean_failure(
        &d,
        &b,
        &["attach", &br, &b.name(), "10.79.4.1/24@10.79.4.254"],
        "already used",
    );
    // Another address, or the same one on another bridge, is fine.
    d.vsctl_ok(&["attach", &br, &b.name(), "10.79.4.2/24"]);
    let br2 = names::unique("br");
    d.vsctl_ok(&["add-br", &br2]);
    d.vsctl_ok(&[
        "attach",
        &br2,
        &b.name(),
        "10.79.4.1/24",
        "--ifname",
        "eth2",
    ]);
}

/// Runs a failing attach and checks that it said `needle`, exited 1, and
/// left the root namespace, the container and the configuration as they
/// were.
fn expect_clean_failure(d: &Daemon, c: &Container, args: &[&str], needle: &str) {
    let root = vsw_links();
    let links = c.links();
    let addrs = c.addresses();
    let routes = c.routes();
    let db = std::fs::read(d.db()).unwrap_or_default();
    let out = d.vsctl(args);
    assert_eq!(out.code, Some(1), "must fail with exit code 1:\n{out}");
    assert!(
        out.stderr.contains(needle),
        "the message must say {needle:?}:\n{out}"
    );
    // Only new links count: pairs of containers that other tests deleted
    // may still be vanishing (the kernel tears namespaces down later).
    let new: Vec<String> = vsw_links()
        .into_iter()
        .filter(|l| !root.contains(l))
        .collect();
    assert!(
        new.is_empty(),
        "{args:?} left {new:?} in the root namespace"
    );
    assert_eq!(c.links(), links, "{args:?} left a link in the container");
    assert_eq!(c.addresses(), addrs, "{args:?} left an address");
    assert_eq!(c.routes(), routes, "{args:?} left a route");
    assert_eq!(
        std::fs::read(d.db()).unwrap_or_default(),
        db,
        "{args:?} changed the configuration"
    );
}

#[test]
fn every_failure_leaves_nothing_behind() {
    let _g = exclusive();
    let (d, br) = switch();
    let c = Container::named();
    let n = c.name();
    let gone = {
        let mut p = Container::process();
        let pid = p.name();
        p.kill();
        pid
    };
    let nosuch = names::unique("nc");
    let own = std::process::id().to_string();
    let nobr = names::unique("nb");
    for (args, needle) in [
        (
            vec!["attach", &br, &nosuch, "10.79.3.1/24"],
            format!("no container \"{nosuch}\""),
        ),
        (
            vec!["attach", &br, &gone, "10.79.3.1/24"],
            format!("no process with PID {gone}"),
        ),
        (
            vec!["attach", &nobr, &n, "10.79.3.1/24"],
            format!("no bridge named {nobr}"),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.300/24"],
            "not an IPv4 address".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.1/33"],
            "prefix length".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.1"],
            "/PREFIX is missing".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.0/24"],
            "network address".into(),
        ),
        (
            vec![
                "attach",
                &br,
                &n,
                "10.79.3.1/24",
                "--ifname",
                "a-name-too-long0",
            ],
            "at most 15".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.1/24", "--tag", "4096"],
            "not a VLAN id".into(),
        ),
        (
            vec![
                "attach",
                &br,
                &n,
                "10.79.3.1/24",
                "--mac",
                "01:00:5e:00:00:01",
            ],
            "multicast".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.1/24", "--colour", "red"],
            "unknown option".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.1/24", "--mtu", "9001"],
            "the largest MTU is 9000".into(),
        ),
        (
            vec!["attach", &br, &own, "10.79.3.1/24"],
            "switch's own network namespace".into(),
        ),
        (
            vec!["attach", &br, "/proc/self/ns/uts", "10.79.3.1/24"],
            "not a network namespace".into(),
        ),
        (
            vec!["attach", &br, &n, "10.79.3.1/24", "--", "list-br"],
            "only command".into(),
        ),
    ] {
        expect_clean_failure(&d, &c, &args, &needle);
    }

    // The interface name is taken inside the container: the existing
    // interface gets no address.
    c.ip_ok(&["link", "add", "eth1", "type", "veth", "peer", "name", "vx1"]);
    expect_clean_failure(
        &d,
        &c,
        &["attach", &br, &n, "10.79.3.1/24"],
        "already has an interface named eth1",
    );

    // A failure after the veth pair exists (the container has a default
    // route already): the pair, address and routes are all undone.
    c.ip_ok(&["link", "set", "eth1", "up"]);
    c.ip_ok(&["link", "set", "vx1", "up"]);
    c.ip_ok(&["addr", "add", "192.168.250.1/24", "dev", "eth1"]);
    c.ip_ok(&["route", "add", "default", "via", "192.168.250.2"]);
    expect_clean_failure(
        &d,
        &c,
        &[
            "attach",
            &br,
            &n,
            "10.79.3.1/24@10.79.3.254",
            "--ifname",
            "eth2",
        ],
        "already has a default route",
    );
    let log = d.log_tail(10);
    assert!(
        log.contains("deleted veth"),
        "the default-route failure must have been a rollback of a made pair:\n{log}"
    );

    // And after all that, a good attach still works.
    d.vsctl_ok(&["attach", &br, &n, "10.79.3.1/24", "--ifname", "eth2"]);
    assert_eq!(attachments(&d, &br).len(), 1);
}

#[test]
fn a_container_that_exits_loses_its_port() {
    let _g = shared();
    let (d, br) = switch();
    let mut dying = Container::process();
    let staying = Container::named();
    d.vsctl_ok(&["attach", &br, &dying.name(), "10.79.4.1/24"]);
    d.vsctl_ok(&["attach", &br, &staying.name(), "10.79.4.2/24"]);
    let all = attachments(&d, &br);
    let port = |c: &Container| {
        attachment_of(&all, &c.name())["port"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (dying_port, staying_port) = (port(&dying), port(&staying));
    assert!(root_links().contains(&dying_port));

    dying.kill();
    let gone = wait_until(VANISH_TIMEOUT, || {
        !d.vsctl_ok(&["list-ports", &br]).contains(&dying_port)
    });
    assert!(
        gone,
        "port {dying_port} still configured {VANISH_TIMEOUT:?} after its container exited\n{}",
        d.log_tail(20)
    );
    assert!(
        !root_links().contains(&dying_port),
        "host veth {dying_port} is still there"
    );
    let all = attachments(&d, &br);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["port"], staying_port.as_str());
    assert!(root_links().contains(&staying_port));
    assert!(staying.link("eth1").is_some());
}

#[test]
fn attachments_survive_a_restart() {
    let _g = shared();
    let (mut d, br) = switch();
    let c1 = Container::process();
    let c2 = Container::named();
    d.vsctl_ok(&["attach", &br, &c1.name(), "10.79.5.1/24", "--tag", "7"]);
    d.vsctl_ok(&["attach", &br, &c2.name(), "10.79.5.2/24", "--tag", "7"]);
    assert!(c1.wait_ping(ip("10.79.5.2"), FIRST_PING));
    let before = attachments(&d, &br);

    d.restart();
    // Past a few ticks of the namespace watcher: nothing was removed.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(attachments(&d, &br), before);
    assert!(
        c2.wait_ping(ip("10.79.5.1"), FIRST_PING),
        "no ping after the restart\n{}",
        d.log_tail(20)
    );
    tcp_transfer(&c1, &c2, ip("10.79.5.2"), 5_000_000)
        .unwrap_or_else(|e| panic!("TCP after the restart: {e}"));
}

/// `ping -6` from container `from` to `to`: replies received of `n`.
fn ping6(from: &Container, to: &str, n: u32) -> bool {
    let mut c = std::process::Command::new("ip");
    c.args([
        "netns",
        "exec",
        &from.name(),
        "ping",
        "-6",
        "-c",
        &n.to_string(),
    ])
    .args(["-i", "0.2", "-W", "2", to]);
    tests::cmd::run(c, Duration::from_secs(20)).success()
}

#[test]
fn ipv6_beside_ipv4_or_alone() {
    let _g = exclusive();
    let (d, br) = switch();
    let (a, b) = (Container::named(), Container::named());
    d.vsctl_ok(&["attach", &br, &a.name(), "10.79.6.1/24,2001:db8:79::1/64"]);
    d.vsctl_ok(&[
        "attach",
        &br,
        &b.name(),
        "2001:db8:79::2/64@2001:db8:79::fe",
    ]);
    let addrs = a.ip_ok(&["-6", "addr", "show", "eth1"]);
    // Usable at once: no duplicate address detection to wait for.
    let global = addrs.lines().find(|l| l.contains("2001:db8:79::1/64"));
    assert!(global.is_some_and(|l| !l.contains("tentative")), "{addrs}");
    assert!(a
        .ip_ok(&["-4", "addr", "show", "eth1"])
        .contains("10.79.6.1/24"));
    let routes = b.ip_ok(&["-6", "route"]);
    assert!(routes.contains("default via 2001:db8:79::fe"), "{routes}");
    assert!(
        wait_until(Duration::from_secs(10), || ping6(&a, "2001:db8:79::2", 1)),
        "{}",
        d.log_tail(20)
    );
    assert!(ping6(&b, "2001:db8:79::1", 3));
    let all = attachments(&d, &br);
    assert_eq!(
        attachment_of(&all, &b.name())["ip6"],
        "2001:db8:79::2/64",
        "{all:?}"
    );
    assert_eq!(
        attachment_of(&all, &b.name())["gateway6"],
        "2001:db8:79::fe"
    );
    let c = Container::named();
    for (arg, needle) in [
        ("2001:db8:79::3/129", "prefix length"),
        ("ff02::1/64", "multicast"),
        ("10.79.6.3/24,10.79.6.4/24", "two IPv4"),
    ] {
        expect_clean_failure(&d, &c, &["attach", &br, &c.name(), arg], needle);
    }
}

/// Pings `to` from `c` with `size` bytes of payload and DF set: true when
/// all `count` are answered.
fn ping_df(c: &Container, to: Ipv4Addr, size: u32, count: u32) -> bool {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", c.ns_path().display()))
        .args(["ping", "-n", "-q", "-M", "do", "-W", "1", "-i", "0.2"])
        .args([
            "-c",
            &count.to_string(),
            "-s",
            &size.to_string(),
            &to.to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("{count} received"))
}

#[test]
fn the_largest_mtu_crosses_and_mtu_request_sets_the_device() {
    let _g = shared();
    let (d, br) = switch();
    let (c1, c2) = (Container::process(), Container::process());
    // Jumbo frames: c1 through a veth (AF_XDP, the frames as several UMEM
    // buffers), c2 through a TAP device.
    let max = "9000";
    d.vsctl_ok(&["attach", &br, &c1.name(), "10.79.9.1/24", "--mtu", max]);
    d.vsctl_ok(&[
        "attach",
        &br,
        &c2.name(),
        "10.79.9.2/24",
        "--mtu",
        max,
        "--type",
        "tap",
    ]);
    assert!(c1.wait_ping(ip("10.79.9.2"), Duration::from_secs(10)));
    // A whole 9,000-byte IPv4 packet (9,014-byte frame) each way.
    assert!(
        ping_df(&c1, ip("10.79.9.2"), 9000 - 28, 5),
        "9000-byte packets were lost"
    );
    assert!(ping_df(&c2, ip("10.79.9.1"), 9000 - 28, 5));

    // mtu_request sets the device's MTU (here the host end of c1's veth).
    let all = attachments(&d, &br);
    let port = attachment_of(&all, &c1.name())["port"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mtu_of = |p: &str| -> String {
        let out = std::process::Command::new("cat")
            .arg(format!("/sys/class/net/{p}/mtu"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    d.vsctl_ok(&["set", "interface", &port, "mtu_request=1400"]);
    assert!(
        wait_until(Duration::from_secs(5), || mtu_of(&port) == "1400"),
        "{}",
        mtu_of(&port)
    );
    assert!(ping_df(&c2, ip("10.79.9.1"), 1400 - 28, 3));
    assert_eq!(
        d.vsctl_ok(&["get", "interface", &port, "mtu_request"])
            .trim(),
        "1400"
    );
    // Too big, or on a port with no device: refused, nothing changed.
    let db = std::fs::read(d.db()).unwrap();
    let out = d.vsctl(&["set", "interface", &port, "mtu_request=9001"]);
    assert!(
        !out.success() && out.stderr.contains("largest MTU is 9000"),
        "{out}"
    );
    let out = d.vsctl(&["set", "interface", &port, "mtu_request=64"]);
    assert!(!out.success() && out.stderr.contains("below 68"), "{out}");
    assert_eq!(std::fs::read(d.db()).unwrap(), db);
    // Removed: the device keeps the MTU it has.
    d.vsctl_ok(&["set", "interface", &port, "mtu_request=[]"]);
    assert_eq!(mtu_of(&port), "1400");
}

#[test]
fn add_port_warns_of_a_device_mtu_larger_than_the_switch_carries() {
    let _g = shared();
    let (d, br) = switch();
    let (a, b) = (names::unique("jma"), names::unique("jmb"));
    let sh = |args: &[&str]| {
        let ok = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip {args:?}");
    };
    sh(&[
        "link", "add", &a, "mtu", "9100", "type", "veth", "peer", "name", &b,
    ]);
    let out = d.vsctl(&["add-port", &br, &a]);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &a])
        .status();
    assert!(out.success(), "{out}");
    assert!(
        out.stderr.contains("MTU is 9100") && out.stderr.contains("mtu_request=9000"),
        "{out}"
    );
}
