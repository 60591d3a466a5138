//! The exact bytes on the wire for native-tagged, native-untagged and
//! dot1q-tunnel ports, and 802.1p priority kept from trunk to trunk.
//!
//! Every check sends a raw frame from one host namespace into the switch
//! and compares the whole frame captured at another host with the frame
//! expected there: tag present or absent, TPID, VID and PCP.

use std::time::Duration;

use tests::frames::{new_token, test_frame, BROADCAST};
use tests::poll::wait_for;
use tests::vlan::{
    capture_on, expect_exactly, expect_none, send_from, token_any, vlan_lab, wait_path, with_tags,
    Tag,
};
use tests::{Host, Lab};

/// A fresh broadcast test frame from `h`, untagged.
fn bcast(h: &Host) -> Vec<u8> {
    test_frame(BROADCAST, h.mac(), new_token())
}

fn wait_vlan_not_allowed(lab: &Lab, port: &str, before: u64, n: u64, what: &str) {
    let ok = wait_for(Duration::from_secs(2), || {
        let now = lab.port_stats(port).drop_count("vlan-not-allowed");
        (now.saturating_sub(before) == n).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: want vlan-not-allowed +{n} on {port} (was {before}), dump-ports: {:?}",
        lab.port_stats(port)
    );
}

/// N: `vlan_mode=MODE tag=10 trunks=20`; Y: trunk of all VLANs; A: access
/// in VLAN 10. `native_tagged` says whether N sends VLAN 10 tagged.
fn native_mode(mode: &str, native_tagged: bool) {
    let mode_setting = format!("vlan_mode={mode}");
    let lab = vlan_lab(
        1,
        &[&[&mode_setting, "tag=10", "trunks=20"], &[], &["tag=10"]],
    );
    let (n, y, a) = (lab.host(0), lab.host(1), lab.host(2));
    let (cap_n, cap_y, cap_a) = (capture_on(n), capture_on(y), capture_on(a));
    wait_path(a, &cap_n, "access A -> native port N", |t| {
        test_frame(BROADCAST, a.mac(), t)
    });
    // How N sends a frame of its native VLAN.
    let native_out = |f: &[u8]| {
        if native_tagged {
            with_tags(f, &[Tag::q(10)])
        } else {
            f.to_vec()
        }
    };

    // Into N: untagged and tagged-10 frames are VLAN 10; tagged 20 is 20.
    let u = bcast(n);
    send_from(n, std::slice::from_ref(&u));
    expect_exactly(
        &cap_y,
        &with_tags(&u, &[Tag::q(10)]),
        "untagged from N, at Y",
    );
    expect_exactly(&cap_a, &u, "untagged from N, at access A (VLAN 10)");
    let t10 = bcast(n);
    send_from(n, &[with_tags(&t10, &[Tag::q(10).pcp(2)])]);
    expect_exactly(
        &cap_y,
        &with_tags(&t10, &[Tag::q(10).pcp(2)]),
        "tagged 10 from N, at Y",
    );
    expect_exactly(&cap_a, &t10, "tagged 10 from N, at A");
    let t20 = with_tags(&bcast(n), &[Tag::q(20)]);
    send_from(n, std::slice::from_ref(&t20));
    expect_exactly(&cap_y, &t20, "tagged 20 from N, at Y");
    expect_none(
        &cap_a,
        token_any(&t20).unwrap_or(0),
        "VLAN 20 at access A (VLAN 10)",
    );

    // Into N, a VLAN it does not carry: dropped and counted.
    let before = lab.port_stats(n.port()).drop_count("vlan-not-allowed");
    let t30 = with_tags(&bcast(n), &[Tag::q(30)]);
    let marker = with_tags(&bcast(n), &[Tag::q(20)]);
    send_from(n, &[t30.clone(), marker.clone()]);
    expect_exactly(&cap_y, &marker, "tagged 20 from N after a tagged 30, at Y");
    expect_none(
        &cap_y,
        token_any(&t30).unwrap_or(0),
        "VLAN 30 from N (not in trunks)",
    );
    wait_vlan_not_allowed(&lab, n.port(), before, 1, "tagged 30 into N");

    // Out of N: VLAN 10 from the trunk and from access A, VLAN 20 tagged,
    // VLAN 30 not at all.
    let y10 = bcast(y);
    send_from(y, &[with_tags(&y10, &[Tag::q(10).pcp(6)])]);
    let want = if native_tagged {
        with_tags(&y10, &[Tag::q(10).pcp(6)])
    } else {
        y10.clone()
    };
    expect_exactly(&cap_n, &want, "tagged 10 (PCP 6) from Y, at N");
    let a10 = bcast(a);
    send_from(a, std::slice::from_ref(&a10));
    expect_exactly(&cap_n, &native_out(&a10), "untagged from access A, at N");
    let y30 = with_tags(&bcast(y), &[Tag::q(30)]);
    let y20 = with_tags(&bcast(y), &[Tag::q(20)]);
    send_from(y, &[y30.clone(), y20.clone()]);
    expect_exactly(&cap_n, &y20, "tagged 20 from Y, at N");
    expect_none(&cap_n, token_any(&y30).unwrap_or(0), "VLAN 30 leaving N");
}

#[test]
fn native_tagged_port_tags_its_native_vlan() {
    native_mode("native-tagged", true);
}

#[test]
fn native_untagged_port_sends_its_native_vlan_untagged() {
    native_mode("native-untagged", false);
}

#[test]
fn dot1q_tunnel_pushes_and_pops_the_service_tag() {
    // Q: tunnel into service VLAN 500 (outer 0x88a8); Y: trunk; Q8: tunnel
    // into 700 with an 0x8100 outer tag; QC: tunnel into 600 that only
    // takes customer VLAN 42.
    let lab = vlan_lab(
        1,
        &[
            &["vlan_mode=dot1q-tunnel", "tag=500"],
            &[],
            &[
                "vlan_mode=dot1q-tunnel",
                "tag=700",
                "other_config:qinq-ethtype=802.1q",
            ],
            &["vlan_mode=dot1q-tunnel", "tag=600", "cvlans=42"],
        ],
    );
    let (q, y, q8, qc) = (lab.host(0), lab.host(1), lab.host(2), lab.host(3));
    let (cap_q, cap_y, cap_q8, cap_qc) =
        (capture_on(q), capture_on(y), capture_on(q8), capture_on(qc));
    wait_path(q, &cap_y, "tunnel Q -> trunk Y", |t| {
        test_frame(BROADCAST, q.mac(), t)
    });
    let c42 = Tag::q(42).pcp(3);

    // Customer frames into Q leave Y with an 0x88a8 tag for VLAN 500
    // (priority 0) in front of whatever the customer sent.
    let tagged = with_tags(&bcast(q), &[c42]);
    send_from(q, std::slice::from_ref(&tagged));
    expect_exactly(
        &cap_y,
        &with_tags(&tagged, &[Tag::ad(500)]),
        "customer frame tagged 42 (PCP 3) from Q, at Y",
    );
    let untagged = bcast(q);
    send_from(q, std::slice::from_ref(&untagged));
    expect_exactly(
        &cap_y,
        &with_tags(&untagged, &[Tag::ad(500)]),
        "untagged customer frame from Q, at Y",
    );
    for (h, cap) in [(q8, &cap_q8), (qc, &cap_qc)] {
        expect_none(
            cap,
            token_any(&tagged).unwrap_or(0),
            &format!(
                "service VLAN 500 frame at {} (another service VLAN)",
                h.port()
            ),
        );
    }

    // The reverse: the outer tag is popped, the customer's tag stays.
    let back = with_tags(&bcast(y), &[c42]);
    send_from(y, &[with_tags(&back, &[Tag::ad(500)])]);
    expect_exactly(&cap_q, &back, "0x88a8 500 + 0x8100 42 from Y, at Q");
    let back_plain = bcast(y);
    send_from(y, &[with_tags(&back_plain, &[Tag::ad(500)])]);
    expect_exactly(&cap_q, &back_plain, "0x88a8 500 + untagged from Y, at Q");

    // qinq-ethtype=802.1q: the outer tag is 0x8100, both ways.
    let t8 = with_tags(&bcast(q8), &[c42]);
    send_from(q8, std::slice::from_ref(&t8));
    expect_exactly(
        &cap_y,
        &with_tags(&t8, &[Tag::q(700)]),
        "customer frame from Q8 (qinq-ethtype=802.1q), at Y",
    );
    let back8 = with_tags(&bcast(y), &[c42]);
    send_from(y, &[with_tags(&back8, &[Tag::q(700)])]);
    expect_exactly(&cap_q8, &back8, "0x8100 700 + 0x8100 42 from Y, at Q8");

    // cvlans=42: customer VLAN 42 passes; 43 and untagged are dropped
    // and counted.
    let before = lab.port_stats(qc.port()).drop_count("vlan-not-allowed");
    let bad43 = with_tags(&bcast(qc), &[Tag::q(43)]);
    let bad_untagged = bcast(qc);
    let ok42 = with_tags(&bcast(qc), &[c42]);
    send_from(qc, &[bad43.clone(), bad_untagged.clone(), ok42.clone()]);
    expect_exactly(
        &cap_y,
        &with_tags(&ok42, &[Tag::ad(600)]),
        "customer VLAN 42 from QC (cvlans=42), at Y",
    );
    for f in [&bad43, &bad_untagged] {
        expect_none(
            &cap_y,
            token_any(f).unwrap_or(0),
            "a customer frame outside cvlans=42, at Y",
        );
    }
    wait_vlan_not_allowed(
        &lab,
        qc.port(),
        before,
        2,
        "customer VLAN 43 and untagged into QC",
    );
}

#[test]
fn priority_survives_trunk_to_trunk() {
    // Three trunks, so a flood pushes and pops a tag more than once.
    let lab = vlan_lab(1, &[&[], &[], &["tag=100"], &["trunks=100"]]);
    let (y1, y2, a, y3) = (lab.host(0), lab.host(1), lab.host(2), lab.host(3));
    let (cap_y2, cap_a, cap_y3) = (capture_on(y2), capture_on(a), capture_on(y3));
    wait_path(y1, &cap_y2, "trunk Y1 -> trunk Y2", |t| {
        with_tags(&test_frame(BROADCAST, y1.mac(), t), &[Tag::q(100)])
    });
    for pcp in [5, 1, 7] {
        let plain = bcast(y1);
        let f = with_tags(&plain, &[Tag::q(100).pcp(pcp)]);
        send_from(y1, std::slice::from_ref(&f));
        expect_exactly(&cap_y2, &f, &format!("VLAN 100 PCP {pcp} from Y1, at Y2"));
        expect_exactly(&cap_y3, &f, &format!("VLAN 100 PCP {pcp} from Y1, at Y3"));
        expect_exactly(&cap_a, &plain, &format!("VLAN 100 PCP {pcp} from Y1, at A"));
    }
    // Unicast to a learned MAC keeps it too.
    let f = with_tags(
        &test_frame(y2.mac(), y1.mac(), new_token()),
        &[Tag::q(100).pcp(5)],
    );
    send_from(y2, &[with_tags(&bcast(y2), &[Tag::q(100)])]);
    let mac = y2.mac_str();
    let learned = wait_for(Duration::from_secs(2), || {
        let fdb = lab.fdb();
        fdb.iter()
            .any(|e| e.mac == mac && e.vlan == 100 && e.port == y2.port())
            .then_some(())
    });
    assert!(
        learned.is_some(),
        "{mac} not learned in VLAN 100: {:#?}",
        lab.fdb()
    );
    send_from(y1, std::slice::from_ref(&f));
    expect_exactly(&cap_y2, &f, "unicast VLAN 100 PCP 5 from Y1, at Y2");
    expect_none(&cap_y3, token_any(&f).unwrap_or(0), "unicast to Y2, at Y3");
}

/// OVS: `cvlans` also limits what a dot1q-tunnel port sends: a frame of
/// the service VLAN leaves it only if its customer VLAN (0 if it has no
/// customer tag) is listed.
#[test]
fn dot1q_tunnel_cvlans_also_limit_egress() {
    let lab = vlan_lab(
        1,
        &[&["vlan_mode=dot1q-tunnel", "tag=600", "cvlans=42"], &[]],
    );
    let (qc, y) = (lab.host(0), lab.host(1));
    let cap_qc = capture_on(qc);
    wait_path(y, &cap_qc, "trunk Y -> tunnel QC", |t| {
        with_tags(
            &test_frame(BROADCAST, y.mac(), t),
            &[Tag::ad(600), Tag::q(42)],
        )
    });
    let c43 = with_tags(&bcast(y), &[Tag::q(43)]);
    let plain = bcast(y);
    let c42 = with_tags(&bcast(y), &[Tag::q(42)]);
    send_from(
        y,
        &[
            with_tags(&c43, &[Tag::ad(600)]),
            with_tags(&plain, &[Tag::ad(600)]),
            with_tags(&c42, &[Tag::ad(600)]),
        ],
    );
    expect_exactly(&cap_qc, &c42, "service 600 + customer 42 from Y, at QC");
    expect_none(
        &cap_qc,
        token_any(&c43).unwrap_or(0),
        "service 600 + customer 43 leaving a cvlans=42 port",
    );
    expect_none(
        &cap_qc,
        token_any(&plain).unwrap_or(0),
        "service 600 + untagged customer frame leaving a cvlans=42 port",
    );
}
