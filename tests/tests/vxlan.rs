//! VXLAN tunnel ports between hosts that are namespaces on one underlay
//! segment, each running its own vswitchd (or the kernel's vxlan device and
//! bridge, as the reference): ping meshes, TCP with verified bytes, VNI
//! isolation, split horizon counted on the underlay, path MTU, restart,
//! bad options, hostile datagrams.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use serde_json::Value;
use tests::container::{tcp_transfer, Container};
use tests::frames::{new_token, test_frame, token_of};
use tests::netns::run_in_netns;
use tests::overlay::{vxlan_args, Fabric, OverlayHost, UNDERLAY_IF};
use tests::poll::wait_until;
use tests::{send_raw, Capture};

const MTU: u32 = 1450;
const TCP_BYTES: u64 = 20 << 20;

fn overlay_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, i)
}

fn add_port(h: &OverlayHost, bridge: &str, port: &str, remotes: &[u8], vni: u32) {
    add_port_with(h, bridge, port, remotes, vni, &[]);
}

/// A VXLAN port with more settings (`tag=N`).
fn add_port_with(
    h: &OverlayHost,
    bridge: &str,
    port: &str,
    remotes: &[u8],
    vni: u32,
    more: &[&str],
) {
    let mut args = vec!["add-port".to_string(), bridge.into(), port.into()];
    args.extend(more.iter().map(|m| m.to_string()));
    args.extend(vxlan_args(remotes, vni));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    h.vsctl(&args);
}

/// Every container pings every other one (after a first answer, which may
/// wait for learning), and none loses a ping.
fn assert_mesh(cs: &[(&Container, Ipv4Addr)]) {
    for (a, _) in cs {
        for (_, ip) in cs {
            if a.wait_ping(*ip, Duration::from_secs(10)) {
                assert_eq!(
                    a.ping(*ip, 3),
                    3,
                    "pings from {} to {ip} were lost",
                    a.name()
                );
            } else {
                panic!("{} cannot reach {ip}", a.name());
            }
        }
    }
}

fn tunnel_show(h: &OverlayHost) -> Value {
    h.daemon().vsctl_json(&["tunnel/show"])
}

/// The frames in `frames` that are VXLAN datagrams carrying test frame
/// `token`.
fn vxlan_with_token(frames: &[Vec<u8>], token: u64) -> usize {
    frames
        .iter()
        .filter(|f| f.len() > 50 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0x12, 0xb5])
        .filter(|f| token_of(&f[50..]) == Some(token))
        .count()
}

#[test]
fn vswitch_to_vswitch_full_mesh_with_per_remote_and_multi_remote_ports() {
    let fabric = Fabric::new();
    let mut hosts: Vec<OverlayHost> = (1..=3).map(|i| OverlayHost::vswitch(&fabric, i)).collect();
    // Host 1: one port per remote, as OVS users write it. Hosts 2 and 3:
    // one port with both remotes (head-end replication).
    add_port(&hosts[0], "br0", "vx2", &[2], 100);
    add_port(&hosts[0], "br0", "vx3", &[3], 100);
    add_port(&hosts[1], "br0", "vx", &[1, 3], 100);
    add_port(&hosts[2], "br0", "vx", &[1, 2], 100);
    for (i, h) in hosts.iter_mut().enumerate() {
        h.add_container("br0", &format!("10.100.0.{}/24", i + 1), MTU, None);
    }
    let cs: Vec<(&Container, Ipv4Addr)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.container(0), overlay_ip(i as u8 + 1)))
        .collect();
    assert_mesh(&cs);
    tcp_transfer(cs[0].0, cs[1].0, cs[1].1, TCP_BYTES).expect("TCP host 1 -> host 2");
    tcp_transfer(cs[2].0, cs[0].0, cs[0].1, TCP_BYTES).expect("TCP host 3 -> host 1");

    // The remote MACs are learned with the VTEP they live behind.
    let fdb = hosts[0].daemon().vsctl_json(&["fdb/show", "br0"]);
    let remotes: Vec<&str> = fdb
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["remote"].as_str())
        .collect();
    assert!(
        remotes.contains(&"10.99.0.2") && remotes.contains(&"10.99.0.3"),
        "{fdb}"
    );
    let text = hosts[0].vsctl(&["fdb/show", "br0"]);
    assert!(
        text.contains("Remote") && text.contains("10.99.0.3"),
        "{text}"
    );
    // Per-remote counters.
    let t = tunnel_show(&hosts[1]);
    let remotes = &t["tunnels"][0]["remotes"];
    assert_eq!(remotes.as_array().unwrap().len(), 2, "{t}");
    for r in remotes.as_array().unwrap() {
        assert!(r["rx_packets"].as_u64().unwrap() > 0, "{t}");
        assert!(r["tx_packets"].as_u64().unwrap() > 0, "{t}");
        assert_eq!(r["underlay"], UNDERLAY_IF, "{t}");
        assert_eq!(r["local_ip"], "10.99.0.2", "{t}");
    }

    // Split horizon: a broadcast from host 1's container reaches each other
    // host exactly once on the underlay, never relayed by another host.
    let caps: Vec<Capture> = hosts
        .iter()
        .map(|h| Capture::start(h.ns(), UNDERLAY_IF).expect("capture"))
        .collect();
    let token = new_token();
    let src = [0x02, 0x42, 0, 0, 0x99, 0x01];
    let frame = test_frame([0xff; 6], src, token);
    send_raw(&cs[0].0.name(), "eth1", &[frame]).expect("send broadcast");
    for (i, c) in caps.iter().enumerate().skip(1) {
        assert!(
            c.wait_for(Duration::from_secs(3), |f| vxlan_with_token(f, token) >= 1),
            "host {} never got the broadcast",
            i + 1
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let counts: Vec<usize> = caps
        .into_iter()
        .map(|c| vxlan_with_token(&c.stop(), token))
        .collect();
    assert_eq!(
        counts,
        vec![0, 1, 1],
        "received copies per host on the underlay"
    );
}

#[test]
fn vswitch_and_kernel_vxlan_interoperate_both_ways() {
    let fabric = Fabric::new();
    let mut vs = OverlayHost::vswitch(&fabric, 1);
    let mut kernel = OverlayHost::kernel(&fabric, 2, 4242, &[1]);
    add_port(&vs, "br0", "vx", &[2], 4242);
    vs.add_container("br0", "10.100.0.1/24", MTU, None);
    kernel.add_container("br0", "10.100.0.2/24", MTU, None);
    let (a, b) = (vs.container(0), kernel.container(0));
    assert_mesh(&[(a, overlay_ip(1)), (b, overlay_ip(2))]);
    tcp_transfer(a, b, overlay_ip(2), TCP_BYTES).expect("TCP vswitch -> kernel");
    tcp_transfer(b, a, overlay_ip(1), TCP_BYTES).expect("TCP kernel -> vswitch");
    let t = tunnel_show(&vs);
    assert_eq!(t["endpoints"][0]["udp_port"], 4789, "{t}");
    assert!(
        t["tunnels"][0]["remotes"][0]["rx_bytes"].as_u64().unwrap() > TCP_BYTES,
        "{t}"
    );
}

#[test]
fn two_vnis_on_the_same_hosts_stay_isolated() {
    let fabric = Fabric::new();
    let mut h1 = OverlayHost::vswitch(&fabric, 1);
    let mut h2 = OverlayHost::vswitch(&fabric, 2);
    for h in [&h1, &h2] {
        h.vsctl(&["add-br", "br1"]);
    }
    add_port(&h1, "br0", "vxa", &[2], 100);
    add_port(&h1, "br1", "vxb", &[2], 200);
    add_port(&h2, "br0", "vxa", &[1], 100);
    add_port(&h2, "br1", "vxb", &[1], 200);
    // The same subnet on both VNIs: only the VNI keeps them apart.
    h1.add_container("br0", "10.100.0.1/24", MTU, None);
    h1.add_container("br1", "10.100.0.11/24", MTU, None);
    h2.add_container("br0", "10.100.0.2/24", MTU, None);
    h2.add_container("br1", "10.100.0.12/24", MTU, None);
    assert_mesh(&[
        (h1.container(0), overlay_ip(1)),
        (h2.container(0), overlay_ip(2)),
    ]);
    assert_mesh(&[
        (h1.container(1), overlay_ip(11)),
        (h2.container(1), overlay_ip(12)),
    ]);
    assert_eq!(
        h1.container(0).ping(overlay_ip(12), 3),
        0,
        "VNI 100 reached VNI 200"
    );
    assert_eq!(
        h1.container(1).ping(overlay_ip(2), 3),
        0,
        "VNI 200 reached VNI 100"
    );
}

#[test]
fn a_tag_maps_a_vlan_to_the_vni() {
    let fabric = Fabric::new();
    let mut h1 = OverlayHost::vswitch(&fabric, 1);
    let mut h2 = OverlayHost::vswitch(&fabric, 2);
    // On host 1 the tunnel carries VLAN 30 of the bridge; on host 2 the
    // same VNI is untagged. The containers are access ports of VLAN 30 on
    // host 1 and untagged on host 2.
    add_port_with(&h1, "br0", "vx", &[2], 7, &["tag=30"]);
    add_port(&h2, "br0", "vx", &[1], 7);
    h1.add_container("br0", "10.100.0.1/24", MTU, Some(30));
    h1.add_container("br0", "10.100.0.3/24", MTU, Some(31));
    h2.add_container("br0", "10.100.0.2/24", MTU, None);
    assert_mesh(&[
        (h1.container(0), overlay_ip(1)),
        (h2.container(0), overlay_ip(2)),
    ]);
    assert_eq!(
        h1.container(1).ping(overlay_ip(2), 2),
        0,
        "VLAN 31 leaked into the VNI"
    );
}

#[test]
fn static_entries_are_added_shown_and_removed() {
    let fabric = Fabric::new();
    let h1 = OverlayHost::vswitch(&fabric, 1);
    let _h2 = OverlayHost::vswitch(&fabric, 2);
    // Written the way OVS users write it: the port, then its interface.
    h1.vsctl(&[
        "add-port",
        "br0",
        "vx",
        "--",
        "set",
        "interface",
        "vx",
        "type=vxlan",
        "options:remote_ip=10.99.0.2,10.99.0.3",
        "options:key=5",
    ]);
    let t = tunnel_show(&h1);
    assert_eq!(t["tunnels"][0]["port"], "vx", "{t}");
    assert_eq!(t["tunnels"][0]["vni"], 5, "{t}");
    h1.vsctl(&[
        "fdb/add",
        "br0",
        "02:00:00:00:00:aa",
        "vx",
        "vlan=0",
        "remote=10.99.0.3",
    ]);
    let fdb = h1.daemon().vsctl_json(&["fdb/show", "br0"]);
    let e = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == "02:00:00:00:00:aa")
        .unwrap_or_else(|| panic!("no static entry: {fdb}"));
    assert_eq!(
        (e["remote"].as_str(), e["static"].as_bool()),
        (Some("10.99.0.3"), Some(true))
    );
    assert!(h1.vsctl(&["fdb/show", "br0"]).contains("static"));
    // A remote the port does not have, and a port the bridge does not have.
    for args in [
        vec![
            "fdb/add",
            "br0",
            "02:00:00:00:00:ab",
            "vx",
            "remote=10.99.0.9",
        ],
        vec!["fdb/add", "br0", "02:00:00:00:00:ab", "nope"],
        vec!["fdb/add", "br0", "02:00:00:00:00", "vx"],
        vec!["fdb/add", "br0", "02:00:00:00:00:ab", "vx", "vlan=5000"],
    ] {
        let out = h1.daemon().vsctl(&args);
        assert!(
            !out.success() && !out.stderr.is_empty(),
            "{args:?} was accepted: {out}"
        );
    }
    h1.vsctl(&["fdb/del", "br0", "02:00:00:00:00:aa"]);
    let fdb = h1.daemon().vsctl_json(&["fdb/show", "br0"]);
    assert!(
        fdb.as_array()
            .unwrap()
            .iter()
            .all(|e| e["mac"] != "02:00:00:00:00:aa"),
        "{fdb}"
    );
    assert!(!h1
        .daemon()
        .vsctl(&["fdb/del", "br0", "02:00:00:00:00:aa"])
        .success());
}

#[test]
fn a_frame_too_big_for_the_underlay_gets_frag_needed_with_the_tunnel_mtu() {
    let fabric = Fabric::new();
    let mut h1 = OverlayHost::vswitch(&fabric, 1);
    let mut h2 = OverlayHost::vswitch(&fabric, 2);
    add_port(&h1, "br0", "vx", &[2], 9);
    add_port(&h2, "br0", "vx", &[1], 9);
    // The containers think their link carries 1500 bytes.
    h1.add_container("br0", "10.100.0.1/24", 1500, None);
    h2.add_container("br0", "10.100.0.2/24", 1500, None);
    let a = h1.container(0);
    assert!(a.wait_ping(overlay_ip(2), Duration::from_secs(10)));
    let mut c = std::process::Command::new("nsenter");
    c.arg(format!("--net={}", a.ns_path().display())).args([
        "ping",
        "-n",
        "-c",
        "2",
        "-W",
        "1",
        "-M",
        "do",
        "-s",
        "1472",
        "10.100.0.2",
    ]);
    let out = tests::cmd::run(c, Duration::from_secs(10));
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("mtu = 1450") || said.contains("mtu=1450"),
        "{said}"
    );
    let t = tunnel_show(&h1);
    assert_eq!(t["tunnels"][0]["inner_mtu"], 1450, "{t}");
    let drops = h1.daemon().vsctl_json(&["dump-ports", "br0", "vx"]);
    assert!(
        drops[0]["drops"]["tx-too-big"].as_u64().unwrap() >= 1,
        "{drops}"
    );
    // Path MTU discovery: now the container sends what fits.
    tcp_transfer(a, h2.container(0), overlay_ip(2), 4 << 20).expect("TCP after PMTU discovery");
}

#[test]
fn tunnels_come_back_after_a_restart() {
    let fabric = Fabric::new();
    let mut h1 = OverlayHost::vswitch(&fabric, 1);
    let mut h2 = OverlayHost::vswitch(&fabric, 2);
    add_port(&h1, "br0", "vx", &[2], 77);
    add_port(&h2, "br0", "vx", &[1], 77);
    h1.add_container("br0", "10.100.0.1/24", MTU, None);
    h2.add_container("br0", "10.100.0.2/24", MTU, None);
    assert_mesh(&[
        (h1.container(0), overlay_ip(1)),
        (h2.container(0), overlay_ip(2)),
    ]);
    h1.daemon_mut().restart();
    assert!(
        h1.container(0)
            .wait_ping(overlay_ip(2), Duration::from_secs(10)),
        "no traffic after restart"
    );
    h1.daemon_mut().kill9();
    h1.daemon_mut().restart();
    assert!(
        h2.container(0)
            .wait_ping(overlay_ip(1), Duration::from_secs(10)),
        "no traffic after kill -9 and start"
    );
}

#[test]
fn bad_options_are_refused_and_change_nothing() {
    let fabric = Fabric::new();
    let h = OverlayHost::vswitch(&fabric, 1);
    add_port(&h, "br0", "vx", &[2], 1);
    // A kernel vxlan device holds UDP port 4790.
    h.ip(&[
        "link",
        "add",
        "kvx",
        "type",
        "vxlan",
        "id",
        "3",
        "dstport",
        "4790",
        "local",
        "10.99.0.1",
        "dev",
        UNDERLAY_IF,
    ]);
    assert!(h.ip(&["link", "set", "kvx", "up"]).success());
    let before = h.daemon().vsctl_json(&["show"]);
    for (settings, says) in [
        (
            vec!["options:remote_ip=10.99.0.3", "options:key=16777216"],
            "out of range",
        ),
        (
            vec!["options:remote_ip=10.99.0.300", "options:key=1"],
            "not an IPv4",
        ),
        (vec!["options:key=1"], "remote_ip"),
        (
            vec![
                "options:remote_ip=10.99.0.3",
                "options:key=1",
                "options:dst_port=4790",
            ],
            "already in use",
        ),
        // The same VNI from the same remote as port vx.
        (
            vec!["options:remote_ip=10.99.0.2", "options:key=1"],
            "both carry VNI 1",
        ),
        (
            vec!["options:remote_ip=10.99.0.3", "options:csum=maybe"],
            "true or false",
        ),
    ] {
        let mut args = vec!["add-port", "br0", "vy", "type=vxlan"];
        args.extend(settings.iter().copied());
        let out = h.daemon().vsctl(&args);
        assert!(!out.success(), "{args:?} was accepted");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    let out = h
        .daemon()
        .vsctl(&["set", "interface", "vx", "options:key=99999999"]);
    assert!(
        !out.success() && out.stderr.contains("out of range"),
        "{out}"
    );
    assert_eq!(
        h.daemon().vsctl_json(&["show"]),
        before,
        "a refused command changed the switch"
    );
}

#[test]
fn hostile_datagrams_are_counted_and_the_tunnel_keeps_working() {
    let fabric = Fabric::new();
    let mut h1 = OverlayHost::vswitch(&fabric, 1);
    let mut h2 = OverlayHost::vswitch(&fabric, 2);
    // Host 1's tunnel is an access port of VLAN 5, like its container.
    add_port_with(&h1, "br0", "vx", &[2], 100, &["tag=5"]);
    add_port(&h2, "br0", "vx", &[1], 100);
    h1.add_container("br0", "10.100.0.1/24", MTU, Some(5));
    h2.add_container("br0", "10.100.0.2/24", MTU, None);
    let vni = |v: u32| {
        let b = v.to_be_bytes();
        [0x08, 0, 0, 0, b[1], b[2], b[3], 0]
    };
    let inner = test_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 1);
    let mut tagged = inner[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0, 0, 7]);
    tagged.extend_from_slice(&inner[12..]);
    let mut datagrams: Vec<Vec<u8>> = vec![
        vec![0x08, 0, 0],                                     // short
        [&[0u8, 0, 0, 0, 0, 0, 100, 0][..], &inner].concat(), // I flag clear
        [&vni(999)[..], &inner].concat(),                     // unknown VNI
        [&vni(100)[..], &inner[..8]].concat(),                // inner runt
    ];
    // A tagged inner frame into a tunnel that is an access port (tag=5):
    // dropped by VLAN classification, not by the decapsulation.
    datagrams.push([&vni(100)[..], &tagged].concat());
    let sent = datagrams.clone();
    run_in_netns(h2.ns(), move || {
        let s = UdpSocket::bind("10.99.0.2:0").unwrap();
        for d in &sent {
            s.send_to(d, "10.99.0.1:4789").unwrap();
        }
    })
    .expect("send from host 2");
    let counted = wait_until(Duration::from_secs(5), || {
        let t = tunnel_show(&h1);
        let e = &t["endpoints"][0]["decap_errors"];
        [
            "vxlan-short",
            "vxlan-bad-flags",
            "vxlan-unknown-vni",
            "vxlan-inner-invalid",
        ]
        .iter()
        .all(|k| e[k].as_u64() == Some(1))
    });
    assert!(counted, "{}", tunnel_show(&h1));
    let drops = h1.daemon().vsctl_json(&["dump-ports", "br0", "vx"]);
    assert_eq!(drops[0]["drops"]["vlan-not-allowed"], 1, "{drops}");
    assert_mesh(&[
        (h1.container(0), overlay_ip(1)),
        (h2.container(0), overlay_ip(2)),
    ]);
}

#[test]
fn attach_on_a_bridge_with_a_tunnel_takes_the_tunnel_mtu_and_says_so() {
    let fabric = Fabric::new();
    let h1 = OverlayHost::vswitch(&fabric, 1);
    let _h2 = OverlayHost::vswitch(&fabric, 2);
    add_port(&h1, "br0", "vx", &[2], 3);
    let c = Container::named();
    let out = h1
        .daemon()
        .vsctl(&["attach", "br0", &c.name(), "10.100.0.9/24"]);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("MTU 1450"), "{out}");
    let link = c.link("eth1").expect("eth1 in the container");
    assert_eq!(link["mtu"], 1450, "{link}");
    // --mtu still wins.
    let d = Container::named();
    let out = h1
        .daemon()
        .vsctl(&["attach", "br0", &d.name(), "10.100.0.8/24", "--mtu", "1400"]);
    assert!(out.success() && !out.stdout.contains("MTU"), "{out}");
    assert_eq!(d.link("eth1").expect("eth1")["mtu"], 1400);
    h1.vsctl(&["detach", "br0", &c.name()]);
    h1.vsctl(&["detach", "br0", &d.name()]);
}

/// Containers attached by TAP hand the switch 64 KB TCP super-frames; a
/// tunnel port cannot take them whole, so they are cut to the sender's MSS
/// (the tunnel's MTU, which attach gave the container) before the VXLAN
/// headers go on, and joined again for the TAP on the far side.
#[test]
fn tap_containers_carry_tcp_over_the_tunnel() {
    let fabric = Fabric::new();
    let h1 = OverlayHost::vswitch(&fabric, 1);
    let h2 = OverlayHost::vswitch(&fabric, 2);
    add_port(&h1, "br0", "vx", &[2], 7);
    add_port(&h2, "br0", "vx", &[1], 7);
    let (a, b) = (Container::named(), Container::named());
    let tap = |h: &OverlayHost, c: &Container, ip: &str| {
        h.daemon()
            .vsctl_ok(&["attach", "br0", &c.name(), ip, "--type", "tap"]);
    };
    tap(&h1, &a, "10.100.0.1/24");
    tap(&h2, &b, "10.100.0.2/24");
    assert_mesh(&[(&a, overlay_ip(1)), (&b, overlay_ip(2))]);
    tcp_transfer(&a, &b, overlay_ip(2), TCP_BYTES).expect("TAP to TAP over VXLAN");
    tcp_transfer(&b, &a, overlay_ip(1), TCP_BYTES).expect("and back");
    // Every segment fitted the tunnel: none was dropped as too big.
    for h in [&h1, &h2] {
        let p = h.daemon().vsctl_json(&["dump-ports", "br0", "vx"]);
        assert!(
            p[0]["drops"]["tx-too-big"].as_u64().unwrap_or(0) == 0,
            "{p}"
        );
        assert!(p[0]["tx_packets"].as_u64().unwrap_or(0) > 10_000, "{p}");
    }
}
