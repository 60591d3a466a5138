//! Trunk ports: two switches joined by a trunk carrying VLANs 100 and 200
//! (watched on the wire), and a trunk limited to some VLANs.

use std::time::Duration;

use tests::frames::{new_token, test_frame, BROADCAST};
use tests::lab::FIRST_PING_TIMEOUT;
use tests::poll::wait_for;
use tests::vlan::{
    add_port, capture_on, describe, expect_exactly, expect_none, send_from, tags_of, token_any,
    vlan_lab, wait_path, with_tags, Tag, TrunkWire,
};
use tests::{ping_report, tcp_transfer, wait_ping, Capture, Host};

/// The tags on every frame `cap` holds from `host`; panics unless there
/// is at least one and all carry exactly `want`.
fn assert_all_tagged(cap: &Capture, host: &Host, want: &[Tag], what: &str) {
    let frames: Vec<Vec<u8>> = cap
        .frames()
        .into_iter()
        .filter(|f| f.get(6..12) == Some(&host.mac()[..]))
        .collect();
    assert!(
        !frames.is_empty(),
        "{what}: no frame from {} seen on the trunk",
        host.describe()
    );
    let wrong: Vec<String> = frames
        .iter()
        .filter(|f| tags_of(f) != want)
        .map(|f| describe(f))
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: {} of {} frames from {} on the trunk do not carry exactly {want:?}:\n  {}",
        wrong.len(),
        frames.len(),
        host.describe(),
        wrong.join("\n  ")
    );
}

fn assert_ping_fails(from: &Host, to: &Host, why: &str) {
    let r = ping_report(from, to.ip(), 2);
    assert!(
        r.received == 0,
        "{why}: ping {} -> {} must get no reply:\n{}",
        from.describe(),
        to.describe(),
        r.output
    );
}

#[test]
fn two_switches_share_vlans_over_a_trunk() {
    let wire = TrunkWire::new();
    // Switch 1: A (VLAN 100), C (VLAN 200); switch 2: B (100), D (200).
    let s1 = vlan_lab(1, &[&["tag=100"], &["tag=200"]]);
    let s2 = vlan_lab(3, &[&["tag=100"], &["tag=200"]]);
    add_port(&s1, wire.port_a(), &["trunks=100,200"]);
    add_port(&s2, wire.port_b(), &["trunks=100,200"]);
    s1.wait_port_up(wire.port_a());
    s2.wait_port_up(wire.port_b());
    let (a, c) = (s1.host(0), s1.host(1));
    let (b, d) = (s2.host(0), s2.host(1));
    let (wire1, wire2) = (wire.capture_a(), wire.capture_b());

    for (x, y) in [(a, b), (c, d)] {
        assert!(
            wait_ping(x, y.ip(), FIRST_PING_TIMEOUT).is_some(),
            "no ping reply from {} to {} (same VLAN, across the trunk) within \
             {FIRST_PING_TIMEOUT:?}",
            x.describe(),
            y.describe()
        );
        let r = ping_report(y, x.ip(), 3);
        assert!(
            r.all_answered(),
            "ping back across the trunk:\n{}",
            r.output
        );
        let r = tcp_transfer(x, y, 5_000_000);
        assert!(r.ok(), "TCP across the trunk: {r}");
    }
    // What the pings and transfers looked like on the wire.
    assert_all_tagged(&wire1, a, &[Tag::q(100)], "switch 1 sending A's frames");
    assert_all_tagged(&wire1, c, &[Tag::q(200)], "switch 1 sending C's frames");
    assert_all_tagged(&wire2, b, &[Tag::q(100)], "switch 2 sending B's frames");
    assert_all_tagged(&wire2, d, &[Tag::q(200)], "switch 2 sending D's frames");

    assert_ping_fails(a, d, "A is in VLAN 100, D in 200");
    assert_ping_fails(c, b, "C is in VLAN 200, B in 100");

    // Raw broadcasts, byte for byte: tagged on the wire, untagged at the
    // far access port, and only in their own VLAN.
    let (cap_b, cap_d) = (capture_on(b), capture_on(d));
    let from_a = test_frame(BROADCAST, a.mac(), new_token());
    let from_c = test_frame(BROADCAST, c.mac(), new_token());
    send_from(a, std::slice::from_ref(&from_a));
    expect_exactly(
        &wire1,
        &with_tags(&from_a, &[Tag::q(100)]),
        "A's broadcast on the wire",
    );
    expect_exactly(&cap_b, &from_a, "A's broadcast at B (VLAN 100, switch 2)");
    send_from(c, std::slice::from_ref(&from_c));
    expect_exactly(
        &wire1,
        &with_tags(&from_c, &[Tag::q(200)]),
        "C's broadcast on the wire",
    );
    expect_exactly(&cap_d, &from_c, "C's broadcast at D (VLAN 200, switch 2)");
    // Each capture has now seen a later frame than the one it must miss.
    expect_none(
        &cap_d,
        token_any(&from_a).unwrap_or(0),
        "VLAN 100 broadcast at D",
    );
    let from_b = test_frame(BROADCAST, b.mac(), new_token());
    send_from(b, std::slice::from_ref(&from_b));
    expect_exactly(
        &wire2,
        &with_tags(&from_b, &[Tag::q(100)]),
        "B's broadcast on the wire",
    );
    expect_none(
        &cap_b,
        token_any(&from_c).unwrap_or(0),
        "VLAN 200 broadcast at B",
    );
}

#[test]
fn trunk_limited_to_100_drops_200_and_counts_it() {
    // X: trunks=100; A: VLAN 100; C: VLAN 200; Y: trunk of all VLANs.
    let lab = vlan_lab(1, &[&["trunks=100"], &["tag=100"], &["tag=200"], &[]]);
    let (x, a, c, y) = (lab.host(0), lab.host(1), lab.host(2), lab.host(3));
    let caps: Vec<Capture> = [x, a, c, y].iter().map(|h| capture_on(h)).collect();
    let (cap_x, cap_a, cap_c, cap_y) = (&caps[0], &caps[1], &caps[2], &caps[3]);
    wait_path(x, cap_a, "trunk X -> access A in VLAN 100", |t| {
        with_tags(&test_frame(BROADCAST, x.mac(), t), &[Tag::q(100)])
    });
    let before = lab.port_stats(x.port()).drop_count("vlan-not-allowed");

    // Ingress: three frames tagged 200, then one tagged 100.
    let f200: Vec<Vec<u8>> = (0..3)
        .map(|_| with_tags(&test_frame(BROADCAST, x.mac(), new_token()), &[Tag::q(200)]))
        .collect();
    let plain100 = test_frame(BROADCAST, x.mac(), new_token());
    let f100 = with_tags(&plain100, &[Tag::q(100)]);
    send_from(x, &f200);
    send_from(x, std::slice::from_ref(&f100));
    expect_exactly(cap_a, &plain100, "VLAN 100 frame from trunk X at access A");
    expect_exactly(cap_y, &f100, "VLAN 100 frame from trunk X at trunk Y");
    for f in &f200 {
        let t = token_any(f).unwrap_or(0);
        expect_none(cap_c, t, "VLAN 200 frame entering a trunks=100 port, at C");
        expect_none(cap_y, t, "VLAN 200 frame entering a trunks=100 port, at Y");
    }
    let counted = wait_for(Duration::from_secs(2), || {
        let n = lab.port_stats(x.port()).drop_count("vlan-not-allowed");
        (n.saturating_sub(before) == 3).then_some(())
    });
    assert!(
        counted.is_some(),
        "3 frames tagged 200 entered trunks=100 port {}: want vlan-not-allowed +3 (was {before}), \
         dump-ports: {:?}",
        x.port(),
        lab.port_stats(x.port())
    );

    // Egress: VLAN 200 from C goes out Y tagged but not out X; VLAN 100
    // from A goes out X tagged 100.
    let from_c = test_frame(BROADCAST, c.mac(), new_token());
    send_from(c, std::slice::from_ref(&from_c));
    expect_exactly(
        cap_y,
        &with_tags(&from_c, &[Tag::q(200)]),
        "VLAN 200 at trunk Y",
    );
    let from_a = test_frame(BROADCAST, a.mac(), new_token());
    send_from(a, std::slice::from_ref(&from_a));
    expect_exactly(
        cap_x,
        &with_tags(&from_a, &[Tag::q(100)]),
        "VLAN 100 at trunk X",
    );
    expect_none(
        cap_x,
        token_any(&from_c).unwrap_or(0),
        "VLAN 200 broadcast leaving a trunks=100 port",
    );

    // `set port X trunks=100,200` applies at once: 200 now passes.
    lab.daemon
        .vsctl_ok(&["set", "port", x.port(), "trunks=100,200"]);
    let plain200 = test_frame(BROADCAST, x.mac(), new_token());
    send_from(x, &[with_tags(&plain200, &[Tag::q(200)])]);
    expect_exactly(
        cap_c,
        &plain200,
        "VLAN 200 from X after `set port X trunks=100,200`, at C",
    );
}

/// OVS: a trunk carries VLAN 0 (untagged traffic) only if `trunks` is
/// empty or lists 0, in both directions.
#[test]
fn trunk_limited_to_100_does_not_carry_untagged_traffic() {
    // X: trunks=100; P: no VLAN settings (untagged = VLAN 0); Y: trunk of
    // all VLANs; A: VLAN 100.
    let lab = vlan_lab(1, &[&["trunks=100"], &[], &[], &["tag=100"]]);
    let (x, p, y, a) = (lab.host(0), lab.host(1), lab.host(2), lab.host(3));
    let (cap_x, cap_p, cap_y) = (capture_on(x), capture_on(p), capture_on(y));
    wait_path(p, &cap_y, "untagged P -> trunk Y", |t| {
        test_frame(BROADCAST, p.mac(), t)
    });

    // Ingress: an untagged frame into X is dropped and counted.
    let before = lab.port_stats(x.port()).drop_count("vlan-not-allowed");
    let from_x = test_frame(BROADCAST, x.mac(), new_token());
    let marker = with_tags(&test_frame(BROADCAST, x.mac(), new_token()), &[Tag::q(100)]);
    send_from(x, &[from_x.clone(), marker.clone()]);
    expect_exactly(
        &cap_y,
        &marker,
        "VLAN 100 from X after an untagged one, at Y",
    );
    for cap in [&cap_p, &cap_y] {
        expect_none(
            cap,
            token_any(&from_x).unwrap_or(0),
            "untagged frame into trunks=100",
        );
    }
    let counted = wait_for(Duration::from_secs(2), || {
        let n = lab.port_stats(x.port()).drop_count("vlan-not-allowed");
        (n.saturating_sub(before) == 1).then_some(())
    });
    assert!(
        counted.is_some(),
        "untagged frame into trunks=100 port {}: want vlan-not-allowed +1, dump-ports: {:?}",
        x.port(),
        lab.port_stats(x.port())
    );

    // Egress: P's untagged broadcast reaches Y untagged, but not X.
    let from_p = test_frame(BROADCAST, p.mac(), new_token());
    send_from(p, std::slice::from_ref(&from_p));
    expect_exactly(&cap_y, &from_p, "untagged broadcast from P, at trunk Y");
    let from_a = test_frame(BROADCAST, a.mac(), new_token());
    send_from(a, std::slice::from_ref(&from_a));
    expect_exactly(
        &cap_x,
        &with_tags(&from_a, &[Tag::q(100)]),
        "VLAN 100 at trunk X",
    );
    expect_none(
        &cap_x,
        token_any(&from_p).unwrap_or(0),
        "VLAN 0 (untagged) broadcast leaving a trunks=100 port",
    );
}
