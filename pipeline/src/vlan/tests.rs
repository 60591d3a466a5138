use super::*;

const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];
const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn untagged() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend((0..46).map(|i| i as u8));
    f
}

fn tagged(tpid: u16, pcp: u8, vid: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&vlan::tci(pcp, vid).to_be_bytes());
    f.extend_from_slice(&inner[12..]);
    f
}

fn pkt(bytes: &[u8]) -> Packet {
    let mut p = Packet::new();
    assert!(p.fill(bytes));
    p
}

fn access(tag: u16) -> VlanPort {
    VlanPort::new(None, Some(tag), &[], &[], false)
}

fn trunk(list: &[u16]) -> VlanPort {
    VlanPort::new(None, None, list, &[], false)
}

#[test]
fn mode_defaults_follow_ovs() {
    assert_eq!(access(5).mode, VlanMode::Access);
    assert_eq!(trunk(&[]).mode, VlanMode::Trunk);
}

#[test]
fn access_port_accepts_untagged_and_priority_tagged() {
    let mut p = pkt(&untagged());
    classify(&mut p, &access(100)).unwrap();
    assert_eq!(p.meta.vlan, 100);
    assert_eq!(p.data(), &untagged()[..]);

    let mut p = pkt(&tagged(0x8100, 5, 0, &untagged()));
    classify(&mut p, &access(100)).unwrap();
    assert_eq!(p.meta.vlan, 100);
    assert_eq!(p.data(), &untagged()[..]);
}

#[test]
fn access_port_drops_tagged_and_stacked() {
    let mut p = pkt(&tagged(0x8100, 0, 100, &untagged()));
    assert_eq!(
        classify(&mut p, &access(100)),
        Err(DropReason::VlanNotAllowed)
    );
    let stacked = tagged(0x8100, 0, 0, &tagged(0x8100, 0, 7, &untagged()));
    let mut p = pkt(&stacked);
    assert_eq!(
        classify(&mut p, &access(100)),
        Err(DropReason::VlanNotAllowed)
    );
}

#[test]
fn malformed_tags_are_dropped() {
    let f = tagged(0x8100, 0, 100, &untagged());
    for n in [14, 16, 17, 18] {
        let mut p = pkt(&f[..n]);
        assert_eq!(
            classify(&mut p, &trunk(&[])),
            Err(DropReason::MalformedVlan),
            "{n} bytes"
        );
    }
    let mut p = pkt(&f[..13]);
    assert_eq!(classify(&mut p, &trunk(&[])), Err(DropReason::Runt));
}

#[test]
fn trunk_keeps_vid_pcp_and_filters() {
    let mut p = pkt(&tagged(0x8100, 6, 200, &untagged()));
    classify(&mut p, &trunk(&[100, 200])).unwrap();
    assert_eq!((p.meta.vlan, p.meta.pcp), (200, 6));
    assert_eq!(p.data(), &untagged()[..]);
    // Out again on another trunk: same bytes as came in.
    assert_eq!(trunk(&[]).egress(200, p.meta.tpid), Egress::Tagged(0x8100));
    assert!(push_tag(&mut p, 0x8100));
    assert_eq!(p.data(), &tagged(0x8100, 6, 200, &untagged())[..]);
    pop_tag(&mut p);
    assert_eq!(p.data(), &untagged()[..]);

    let mut p = pkt(&tagged(0x8100, 0, 300, &untagged()));
    assert_eq!(
        classify(&mut p, &trunk(&[100, 200])),
        Err(DropReason::VlanNotAllowed)
    );
    let mut p = pkt(&untagged());
    assert_eq!(
        classify(&mut p, &trunk(&[100])),
        Err(DropReason::VlanNotAllowed)
    );
    assert_eq!(trunk(&[100]).egress(200, 0), Egress::No);
}

#[test]
fn native_modes() {
    let nt = VlanPort::new(Some(VlanMode::NativeTagged), Some(10), &[20], &[], false);
    let nu = VlanPort::new(Some(VlanMode::NativeUntagged), Some(10), &[20], &[], false);
    for port in [&nt, &nu] {
        let mut p = pkt(&untagged());
        classify(&mut p, port).unwrap();
        assert_eq!(p.meta.vlan, 10);
        let mut p = pkt(&tagged(0x8100, 0, 20, &untagged()));
        classify(&mut p, port).unwrap();
        assert_eq!(p.meta.vlan, 20);
        let mut p = pkt(&tagged(0x8100, 0, 30, &untagged()));
        assert!(classify(&mut p, port).is_err());
        assert_eq!(port.egress(20, 0), Egress::Tagged(0x8100));
        assert_eq!(port.egress(30, 0), Egress::No);
    }
    assert_eq!(nt.egress(10, 0), Egress::Tagged(0x8100));
    assert_eq!(nu.egress(10, 0), Egress::Untagged);
}

#[test]
fn dot1q_tunnel_keeps_customer_tag_and_pushes_outer() {
    let port = VlanPort::new(Some(VlanMode::Dot1qTunnel), Some(500), &[], &[], false);
    let customer = tagged(0x8100, 3, 42, &untagged());
    let mut p = pkt(&customer);
    classify(&mut p, &port).unwrap();
    assert_eq!(p.meta.vlan, 500);
    assert_eq!(p.data(), &customer[..]);
    // Leaving on a trunk: outer 802.1ad tag, customer tag inside.
    assert_eq!(trunk(&[]).egress(500, p.meta.tpid), Egress::Tagged(0x88a8));
    push_tag(&mut p, 0x88a8);
    assert_eq!(p.data(), &tagged(0x88a8, 0, 500, &customer)[..]);
    pop_tag(&mut p);
    // Leaving on the tunnel port: outer tag gone.
    assert_eq!(port.egress(500, 0x88a8), Egress::Untagged);

    let q = VlanPort::new(Some(VlanMode::Dot1qTunnel), Some(500), &[], &[], true);
    let mut p = pkt(&customer);
    classify(&mut p, &q).unwrap();
    assert_eq!(trunk(&[]).egress(500, p.meta.tpid), Egress::Tagged(0x8100));

    let limited = VlanPort::new(Some(VlanMode::Dot1qTunnel), Some(500), &[], &[42], false);
    let mut p = pkt(&customer);
    assert!(classify(&mut p, &limited).is_ok());
    let mut p = pkt(&tagged(0x8100, 0, 43, &untagged()));
    assert_eq!(classify(&mut p, &limited), Err(DropReason::VlanNotAllowed));
}

#[test]
fn trunk_accepts_88a8_outer_tag() {
    let qinq = tagged(0x88a8, 0, 500, &tagged(0x8100, 0, 42, &untagged()));
    let mut p = pkt(&qinq);
    classify(&mut p, &trunk(&[])).unwrap();
    assert_eq!((p.meta.vlan, p.meta.tpid), (500, 0x88a8));
    assert_eq!(p.data(), &tagged(0x8100, 0, 42, &untagged())[..]);
}

#[test]
fn vlan_sets() {
    let s = VlanSet::from_list(&[1, 4095]);
    assert!(s.contains(1) && s.contains(4095) && !s.contains(2));
    assert!(VlanSet::from_list(&[]).contains(77));
}

#[test]
fn limited_trunk_does_not_carry_vlan_0() {
    assert_eq!(trunk(&[100]).egress(0, 0), Egress::No);
    assert_eq!(trunk(&[0, 100]).egress(0, 0), Egress::Untagged);
    assert_eq!(trunk(&[]).egress(0, 0), Egress::Untagged);
}

#[test]
fn dot1q_tunnel_cvlans_limit_egress_too() {
    let port = VlanPort::new(Some(VlanMode::Dot1qTunnel), Some(600), &[], &[42], false);
    let mut ok = pkt(&tagged(0x8100, 0, 42, &untagged()));
    ok.meta.vlan = 600;
    assert_eq!(port.egress_packet(&ok), Egress::Untagged);
    let mut other = pkt(&tagged(0x8100, 0, 43, &untagged()));
    other.meta.vlan = 600;
    assert_eq!(port.egress_packet(&other), Egress::No);
    let mut plain = pkt(&untagged());
    plain.meta.vlan = 600;
    assert_eq!(port.egress_packet(&plain), Egress::No);
}
