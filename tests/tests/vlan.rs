//! VLANs on one switch: access ports keep VLANs apart, a port's tag can
//! change at runtime, learning is per VLAN, and malformed or forbidden
//! tagged frames are dropped and counted while everything else still
//! flows. (Trunks between switches: vlan_trunk.rs; native and Q-in-Q
//! modes byte by byte: vlan_modes.rs.)

use std::time::Duration;

use tests::frames::{mac_to_string, new_token, test_frame, BROADCAST};
use tests::lab::FIRST_PING_TIMEOUT;
use tests::model::FdbEntry;
use tests::names;
use tests::poll::wait_for;
use tests::vlan::{
    capture_on, expect_exactly, expect_none, send_from, token_any, vlan_lab, wait_path, with_tags,
    Tag,
};
use tests::{ping_report, tcp_transfer, wait_ping, Capture, Host, Lab};

/// Polls `fdb/show` until `pred` holds; returns the last table either way.
fn wait_fdb(lab: &Lab, pred: impl Fn(&[FdbEntry]) -> bool) -> (bool, Vec<FdbEntry>) {
    let mut last = Vec::new();
    let ok = wait_for(Duration::from_secs(2), || {
        last = lab.fdb();
        pred(&last).then_some(())
    })
    .is_some();
    (ok, last)
}

/// (port, vlan) of every fdb entry for `mac`, sorted.
fn where_is(fdb: &[FdbEntry], mac: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fdb
        .iter()
        .filter(|e| e.mac == mac)
        .map(|e| (e.port.clone(), e.vlan))
        .collect();
    v.sort();
    v
}

fn assert_ping_fails(from: &Host, to: &Host, why: &str) {
    let r = ping_report(from, to.ip(), 2);
    assert!(
        r.received == 0,
        "{why}: ping {} -> {} must get no reply, got {} of {}:\n{}",
        from.describe(),
        to.describe(),
        r.received,
        r.transmitted,
        r.output
    );
}

fn assert_ping_works(from: &Host, to: &Host, why: &str) {
    assert!(
        wait_ping(from, to.ip(), FIRST_PING_TIMEOUT).is_some(),
        "{why}: no ping reply from {} to {} within {FIRST_PING_TIMEOUT:?}",
        from.describe(),
        to.describe()
    );
    let r = ping_report(from, to.ip(), 3);
    assert!(
        r.all_answered(),
        "{why}: ping {} -> {}:\n{}",
        from.describe(),
        to.describe(),
        r.output
    );
}

/// Frames in `cap` sent by `mac` (any content).
fn from_mac(cap: &Capture, mac: [u8; 6]) -> Vec<Vec<u8>> {
    cap.frames()
        .into_iter()
        .filter(|f| f.get(6..12) == Some(&mac[..]))
        .collect()
}

#[test]
fn access_ports_keep_vlans_apart() {
    let lab = vlan_lab(1, &[&["tag=100"], &["tag=100"], &["tag=200"], &["tag=200"]]);
    let (a, b, c, d) = (lab.host(0), lab.host(1), lab.host(2), lab.host(3));

    assert_ping_works(a, b, "A and B are both in VLAN 100");
    assert_ping_works(b, a, "A and B are both in VLAN 100");
    assert_ping_works(c, d, "C and D are both in VLAN 200");
    for (x, y) in [(a, b), (b, a)] {
        let r = tcp_transfer(x, y, 5_000_000);
        assert!(r.ok(), "TCP inside VLAN 100: {r}");
    }

    let caps: Vec<Capture> = [a, b, d].iter().map(|h| capture_on(h)).collect();
    for target in [a, b] {
        assert_ping_fails(c, target, "C is in VLAN 200, the target in VLAN 100");
    }
    // C's ARP requests were broadcasts: D (VLAN 200) got them, A and B not.
    assert!(
        !from_mac(&caps[2], c.mac()).is_empty(),
        "the ARP requests of {} did not even reach {} in its own VLAN",
        c.describe(),
        d.describe()
    );

    // A raw broadcast from C: D gets it as it was sent (access ports send
    // untagged), A and B never see it.
    let bcast = test_frame(BROADCAST, c.mac(), new_token());
    send_from(c, std::slice::from_ref(&bcast));
    expect_exactly(&caps[2], &bcast, "broadcast C -> D inside VLAN 200");
    // The flood to every port went out in the same pass that reached D;
    // markers inside VLAN 100 show that A's and B's captures work.
    let to_a = test_frame(a.mac(), b.mac(), new_token());
    let to_b = test_frame(b.mac(), a.mac(), new_token());
    send_from(b, std::slice::from_ref(&to_a));
    send_from(a, std::slice::from_ref(&to_b));
    expect_exactly(&caps[0], &to_a, "unicast B -> A inside VLAN 100");
    expect_exactly(&caps[1], &to_b, "unicast A -> B inside VLAN 100");
    for (h, cap) in [(a, &caps[0]), (b, &caps[1])] {
        let leaked = from_mac(cap, c.mac());
        assert!(
            leaked.is_empty(),
            "{} (VLAN 100) received {} frame(s) from {} (VLAN 200): {leaked:02x?}",
            h.describe(),
            leaked.len(),
            c.describe()
        );
    }
}

#[test]
fn changing_the_tag_moves_the_port() {
    let lab = vlan_lab(1, &[&["tag=100"], &["tag=100"], &["tag=200"]]);
    let (a, b, c) = (lab.host(0), lab.host(1), lab.host(2));
    assert_ping_works(a, b, "A and B start in VLAN 100");
    assert_ping_fails(a, c, "C is in VLAN 200, A in 100");
    let mac_a = a.mac_str();
    let (ok, fdb) = wait_fdb(&lab, |f| {
        where_is(f, &mac_a) == [(a.port().to_string(), 100)]
    });
    assert!(
        ok,
        "{} not learned in VLAN 100 on its port: {fdb:#?}",
        mac_a
    );

    lab.daemon.vsctl_ok(&["set", "port", a.port(), "tag=200"]);
    // Only VLAN 100 entries count: an ARP retry of the failed ping above
    // may already have been learned in VLAN 200.
    let fdb = lab.fdb();
    let stale: Vec<&FdbEntry> = fdb
        .iter()
        .filter(|e| e.port == a.port() && e.vlan == 100)
        .collect();
    assert!(
        stale.is_empty(),
        "after `set port {} tag=200`, fdb/show still lists what that port learned in VLAN \
         100: {stale:#?}",
        a.port()
    );

    assert_ping_works(a, c, "A moved to VLAN 200, where C is");
    assert_ping_fails(a, b, "A moved to VLAN 200, B stayed in 100");
    assert_ping_fails(b, a, "A moved to VLAN 200, B stayed in 100");
    let (ok, fdb) = wait_fdb(&lab, |f| {
        where_is(f, &mac_a) == [(a.port().to_string(), 200)]
    });
    assert!(
        ok,
        "after the move, {mac_a} must be learned in VLAN 200 only (on {}): {fdb:#?}",
        a.port()
    );
}

#[test]
fn same_mac_is_learned_separately_per_vlan() {
    let lab = vlan_lab(1, &[&[], &[], &["tag=100"], &["tag=200"]]);
    let (y1, y2, a, c) = (lab.host(0), lab.host(1), lab.host(2), lab.host(3));
    let (cap_y1, cap_y2, cap_a, cap_c) =
        (capture_on(y1), capture_on(y2), capture_on(a), capture_on(c));
    wait_path(a, &cap_y1, "access A -> trunk Y1", |t| {
        test_frame(BROADCAST, a.mac(), t)
    });

    // One MAC speaks from Y1 in VLAN 100 and from Y2 in VLAN 200.
    let shared = names::unique_mac();
    let base1 = test_frame(BROADCAST, shared, new_token());
    let base2 = test_frame(BROADCAST, shared, new_token());
    send_from(y1, &[with_tags(&base1, &[Tag::q(100)])]);
    expect_exactly(
        &cap_a,
        &base1,
        "VLAN 100 broadcast from trunk Y1 to access A",
    );
    send_from(y2, &[with_tags(&base2, &[Tag::q(200)])]);
    expect_exactly(
        &cap_c,
        &base2,
        "VLAN 200 broadcast from trunk Y2 to access C",
    );

    let mac = mac_to_string(&shared);
    let want = {
        let mut w = vec![(y1.port().to_string(), 100), (y2.port().to_string(), 200)];
        w.sort();
        w
    };
    let (ok, fdb) = wait_fdb(&lab, |f| where_is(f, &mac) == want);
    assert!(
        ok,
        "{mac} spoke from {} in VLAN 100 and from {} in VLAN 200; fdb/show must list both \
         entries, and only them: {fdb:#?}",
        y1.port(),
        y2.port()
    );

    // Forwarding uses the entry of the frame's VLAN.
    let from_a = test_frame(shared, a.mac(), new_token());
    let from_c = test_frame(shared, c.mac(), new_token());
    send_from(a, std::slice::from_ref(&from_a));
    send_from(c, std::slice::from_ref(&from_c));
    let (ta, tc) = (
        token_any(&from_a).unwrap_or_default(),
        token_any(&from_c).unwrap_or_default(),
    );
    expect_exactly(
        &cap_y1,
        &with_tags(&from_a, &[Tag::q(100)]),
        "unicast to the shared MAC in VLAN 100",
    );
    expect_exactly(
        &cap_y2,
        &with_tags(&from_c, &[Tag::q(200)]),
        "unicast to the shared MAC in VLAN 200",
    );
    expect_none(&cap_y2, ta, "VLAN 100 unicast to a MAC known on Y1");
    expect_none(&cap_y1, tc, "VLAN 200 unicast to a MAC known on Y2");
}

/// Sum of the VLAN drop reasons of `port`.
fn vlan_drops(lab: &Lab, port: &str) -> (u64, u64) {
    let s = lab.port_stats(port);
    (
        s.drop_count("malformed-vlan"),
        s.drop_count("vlan-not-allowed"),
    )
}

#[test]
fn malformed_and_stacked_tags_are_dropped_and_counted() {
    let lab = vlan_lab(1, &[&["tag=100"], &["tag=100"], &[]]);
    let (a, b, y) = (lab.host(0), lab.host(1), lab.host(2));
    let (cap_a, cap_b, cap_y) = (capture_on(a), capture_on(b), capture_on(y));
    wait_path(y, &cap_b, "trunk Y -> access B", |t| {
        with_tags(&test_frame(BROADCAST, y.mac(), t), &[Tag::q(100)])
    });
    let (mal_y0, nal_y0) = vlan_drops(&lab, y.port());
    let (mal_a0, nal_a0) = vlan_drops(&lab, a.port());

    // Truncated tags from the trunk: the frame ends right after the TPID,
    // inside the TCI, right after the tag, inside the inner EtherType, and
    // right after it (no payload). Their own source MAC shows any leak.
    let bad_src = names::unique_mac();
    let whole = with_tags(&test_frame(BROADCAST, bad_src, new_token()), &[Tag::q(100)]);
    let truncated: Vec<Vec<u8>> = [14, 15, 16, 17, 18]
        .iter()
        .map(|&n| whole[..n].to_vec())
        .collect();
    send_from(y, &truncated);
    let good_y = with_tags(&test_frame(BROADCAST, y.mac(), new_token()), &[Tag::q(100)]);
    send_from(y, std::slice::from_ref(&good_y));
    expect_exactly(
        &cap_b,
        &test_frame(BROADCAST, y.mac(), token_any(&good_y).unwrap_or(0)),
        "a good VLAN 100 frame from the trunk after the truncated ones",
    );

    // Tagged frames on an access port: stacked 0x8100 tags (outer one a
    // priority tag, or VLAN 100 itself) and a plain VLAN 100 tag.
    let stacked = [
        with_tags(
            &test_frame(BROADCAST, a.mac(), new_token()),
            &[Tag::q(0), Tag::q(7)],
        ),
        with_tags(
            &test_frame(BROADCAST, a.mac(), new_token()),
            &[Tag::q(100), Tag::q(7)],
        ),
        with_tags(&test_frame(BROADCAST, a.mac(), new_token()), &[Tag::q(100)]),
    ];
    send_from(a, &stacked);
    // A priority tag (VID 0) alone is no VLAN tag: accepted, and gone at B.
    let good_a = test_frame(BROADCAST, a.mac(), new_token());
    send_from(a, &[with_tags(&good_a, &[Tag::q(0)])]);
    expect_exactly(
        &cap_b,
        &good_a,
        "a priority-tagged frame from access A after the bad ones",
    );
    expect_exactly(
        &cap_y,
        &with_tags(&good_a, &[Tag::q(100)]),
        "a priority-tagged frame from access A to the trunk after the bad ones",
    );
    for f in &stacked {
        let t = token_any(f).unwrap_or(0);
        expect_none(&cap_b, t, "a tagged frame sent into an access port");
        expect_none(&cap_y, t, "a tagged frame sent into an access port");
    }
    for (h, cap) in [(a, &cap_a), (b, &cap_b)] {
        let leaked: Vec<Vec<u8>> = cap
            .frames()
            .into_iter()
            .filter(|f| f.get(6..12) == Some(&bad_src[..]))
            .collect();
        assert!(
            leaked.is_empty(),
            "parts of truncated tagged frames reached {}: {leaked:02x?}",
            h.describe()
        );
    }

    let counted = wait_for(Duration::from_secs(2), || {
        let (mal_y, _) = vlan_drops(&lab, y.port());
        let (mal_a, nal_a) = vlan_drops(&lab, a.port());
        let ok = mal_y.saturating_sub(mal_y0) == 5
            && mal_a.saturating_sub(mal_a0) + nal_a.saturating_sub(nal_a0) == 3;
        ok.then_some(())
    });
    assert!(
        counted.is_some(),
        "5 truncated tagged frames entered trunk {} (want malformed-vlan +5) and 3 tagged \
         frames entered access port {} (want malformed-vlan + vlan-not-allowed +3); before: \
         trunk {:?}, access {:?}; now: {:?} / {:?}",
        y.port(),
        a.port(),
        (mal_y0, nal_y0),
        (mal_a0, nal_a0),
        lab.port_stats(y.port()),
        lab.port_stats(a.port())
    );
    let fdb = lab.fdb();
    assert!(
        where_is(&fdb, &mac_to_string(&bad_src)).is_empty(),
        "the source of truncated frames was learned: {fdb:#?}"
    );

    assert_ping_works(a, b, "after the bad frames");
    let r = tcp_transfer(b, a, 1_000_000);
    assert!(r.ok(), "TCP after the bad frames: {r}");
}
