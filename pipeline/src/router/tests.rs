//! The router's stages on hand-made frames: ARP answered in place, the
//! first packet to an unresolved next hop held and sent once the answer
//! comes, masquerade out and back, ICMP to the router's own address.

use super::*;
use crate::checksum::{checksum, l4_checksum_ok};
use crate::conntrack::Config as CtConfig;
use crate::verdict::DropReason;
use crate::wire::{be16, eth, ip_proto, ipv4};

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const UP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const C_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const HOP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
const GW: u32 = 0xac1f_0001; // 172.31.0.1
const C: u32 = 0xac1f_000a; // 172.31.0.10
const UP: u32 = 0xc000_0202; // 192.0.2.2
const HOP: u32 = 0xc000_0201; // 192.0.2.1
const SERVER: u32 = 0xc633_640a; // 198.51.100.10
const C_PORT: u16 = 3;
const UP_PORT: u16 = 9;

fn router() -> Arc<Router> {
    let cfg = RouterConfig {
        gateways: vec![Gateway {
            zone: 5,
            bridge: 0,
            ip: GW,
            subnet: Subnet {
                addr: GW & !0xff,
                len: 24,
            },
            mac: GW_MAC,
            masquerade: true,
        }],
        uplink: Some(Uplink {
            port: UP_PORT,
            ip: UP,
            subnet: Subnet {
                addr: UP & !0xff,
                len: 24,
            },
            mac: UP_MAC,
            nexthop: HOP,
        }),
        publish: Vec::new(),
    };
    Arc::new(Router {
        cfg,
        state: Arc::new(RouterState::new(ConnTable::new(CtConfig::default()))),
    })
}

fn udp(src_mac: [u8; 6], dst_mac: [u8; 6], src: u32, dst: u32, sport: u16, dport: u16) -> Vec<u8> {
    let payload = b"hello router";
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        ip_proto::UDP,
        0,
        0,
    ];
    ip.extend_from_slice(&src.to_be_bytes());
    ip.extend_from_slice(&dst.to_be_bytes());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let ulen = 8 + payload.len();
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(ulen as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let l4 = crate::parse::locate_l4(&f).unwrap();
    let c = !crate::checksum::fold(crate::checksum::sum(&f[l4.off..], l4.pseudo));
    f[l4.off + 6..l4.off + 8].copy_from_slice(&c.to_be_bytes());
    f
}

fn run(stage: &dyn Stage, frame: &[u8], in_port: u16, now: u64) -> (Verdict, Vec<u8>) {
    let mut p = Packet::new();
    assert!(p.fill(frame));
    p.meta.in_port = in_port;
    let mut pkts = [p];
    let mut v = [Verdict::Continue];
    stage.process(&Ctx { now_ms: now }, &mut pkts, &mut v);
    (v[0], pkts[0].data().to_vec())
}

fn ip_at(f: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([f[off], f[off + 1], f[off + 2], f[off + 3]])
}

#[test]
fn arp_for_the_gateway_is_answered_in_place_and_teaches_the_asker() {
    let r = router();
    let gw = GatewayStage {
        router: r.clone(),
        gateway: 0,
    };
    let ask = arp::request(C_MAC, C, GW);
    let (v, out) = run(&gw, &ask, C_PORT, 0);
    assert_eq!(v, Verdict::Output(C_PORT));
    let a = arp::parse(&out).unwrap();
    assert!(!a.request);
    assert_eq!((a.sender_mac, a.sender_ip, a.target_ip), (GW_MAC, GW, C));
    let known = lock(&r.state.neighbors).known();
    assert_eq!(
        known,
        vec![(
            5,
            C,
            neigh::Known {
                mac: C_MAC,
                port: C_PORT
            }
        )]
    );
    // ARP for someone else goes on to L2.
    let (v, _) = run(&gw, &arp::request(C_MAC, C, C + 1), C_PORT, 0);
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn masquerade_holds_the_first_packet_until_the_next_hop_answers_then_translates_back() {
    let r = router();
    let gw = GatewayStage {
        router: r.clone(),
        gateway: 0,
    };
    let up = UplinkStage { router: r.clone() };
    let out_frame = udp(C_MAC, GW_MAC, C, SERVER, 40000, 53);
    let (v, _) = run(&gw, &out_frame, C_PORT, 0);
    assert_eq!(v, Verdict::Drop(DropReason::ArpWait));
    // The question for the next hop went to the outbox.
    let q = r.state.take_outbox();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0, Target::Port(UP_PORT));
    let ask = arp::parse(&q[0].1).unwrap();
    assert_eq!(
        (ask.sender_ip, ask.target_ip, ask.sender_mac),
        (UP, HOP, UP_MAC)
    );
    // The answer releases the held packet, translated.
    let mut answer = q[0].1.clone();
    arp::answer_in_place(&mut answer, &ask, HOP_MAC, HOP);
    let (v, _) = run(&up, &answer, UP_PORT, 1);
    assert_eq!(v, Verdict::Consumed);
    let sent = r.state.take_outbox();
    assert_eq!(sent.len(), 1);
    let (to, f) = &sent[0];
    assert_eq!(*to, Target::Port(UP_PORT));
    assert_eq!(&f[eth::DST], &HOP_MAC);
    assert_eq!(&f[eth::SRC], &UP_MAC);
    assert_eq!(ip_at(f, 14 + ipv4::SRC), UP);
    assert_eq!(f[14 + 8], 63, "TTL decremented");
    assert_eq!(checksum(&f[14..34]), 0, "IP checksum");
    assert_eq!(l4_checksum_ok(f), Some(true));
    let nat_port = be16(f, 34);
    // Now resolved: the next packet leaves at once.
    let (v, _) = run(&gw, &out_frame, C_PORT, 2);
    assert_eq!(v, Verdict::Output(UP_PORT));
    // The reply comes back to the container.
    let back = udp(HOP_MAC, UP_MAC, SERVER, UP, 53, nat_port);
    let (v, _) = run(&up, &back, UP_PORT, 3);
    assert_eq!(
        v,
        Verdict::Drop(DropReason::ArpWait),
        "container MAC not known yet"
    );
    lock(&r.state.neighbors).learn(
        5,
        C,
        neigh::Known {
            mac: C_MAC,
            port: C_PORT,
        },
        3,
    );
    let (v, f2) = run(&up, &back, UP_PORT, 4);
    assert_eq!(v, Verdict::Output(C_PORT));
    assert_eq!(ip_at(&f2, 14 + ipv4::DST), C);
    assert_eq!(be16(&f2, 36), 40000);
    assert_eq!(&f2[eth::DST], &C_MAC);
    assert_eq!(&f2[eth::SRC], &GW_MAC);
    assert_eq!(l4_checksum_ok(&f2), Some(true));
    let ct = lock(&r.state.conntrack);
    let c = ct.iter().next().unwrap();
    assert!(c.replied);
    assert_eq!(c.zone, 5);
}

#[test]
fn unsolicited_packets_on_the_uplink_are_dropped_and_counted() {
    let r = router();
    let up = UplinkStage { router: r.clone() };
    // No connection, no published port.
    let (v, _) = run(&up, &udp(HOP_MAC, UP_MAC, SERVER, UP, 53, 4444), UP_PORT, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
    // Addressed to the router's MAC but beyond it: never reflected back
    // out of the uplink.
    let (v, _) = run(
        &up,
        &udp(HOP_MAC, UP_MAC, SERVER, SERVER + 1, 53, 4444),
        UP_PORT,
        0,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
    // Another host's frame on a shared link.
    let (v, _) = run(
        &up,
        &udp(HOP_MAC, [2, 9, 9, 9, 9, 9], SERVER, UP, 53, 4444),
        UP_PORT,
        0,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NotForRouter));
    // Garbage after an IPv4 ethertype.
    let mut bad = udp(HOP_MAC, UP_MAC, SERVER, UP, 53, 4444);
    bad[14] = 0x4f; // IHL 60 > what is there
    let (v, _) = run(&up, &bad, UP_PORT, 0);
    assert_eq!(v, Verdict::Drop(DropReason::IpMalformed));
}

/// The gateway stage, and a frame from C to the gateway carrying `icmp`
/// (its checksum filled in) in a valid IPv4 header.
fn ping_to_gateway(icmp: &[u8]) -> (GatewayStage, Vec<u8>) {
    let gw = GatewayStage {
        router: router(),
        gateway: 0,
    };
    let mut f = Vec::new();
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&C_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let len = 20 + icmp.len() as u8;
    let mut ip = vec![0x45, 0, 0, len, 0, 1, 0, 0, 64, ip_proto::ICMP, 0, 0];
    ip.extend_from_slice(&C.to_be_bytes());
    ip.extend_from_slice(&GW.to_be_bytes());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut icmp = icmp.to_vec();
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&icmp);
    (gw, f)
}

#[test]
fn ping_to_the_gateway_is_answered_in_place() {
    let (gw, f) = ping_to_gateway(&[8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4]);
    let (v, out) = run(&gw, &f, C_PORT, 0);
    assert_eq!(v, Verdict::Output(C_PORT));
    assert_eq!(&out[eth::DST], &C_MAC);
    assert_eq!((ip_at(&out, 26), ip_at(&out, 30)), (GW, C));
    assert_eq!(out[34], 0, "echo reply");
    assert_eq!(checksum(&out[14..34]), 0);
    assert_eq!(checksum(&out[34..]), 0);
}

/// Regression (found by the `nat` fuzz target): a ping to the gateway with
/// identifier, sequence number and payload all 0 is answered with an ICMP
/// checksum of 0xffff (the incremental update gave 0x0000, which the
/// sender's stack rejects).
#[test]
fn ping_of_zeros_to_the_gateway_is_answered_with_a_valid_checksum() {
    let (gw, mut f) = ping_to_gateway(&[8, 0, 0, 0, 0, 0, 0, 0]);
    // Ethernet padding after the IP packet is not part of the message.
    f.extend_from_slice(&[0xee; 18]);
    let (v, out) = run(&gw, &f, C_PORT, 0);
    assert_eq!(v, Verdict::Output(C_PORT));
    assert_eq!(&out[34..42], &[0, 0, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(checksum(&out[34..42]), 0);
}
