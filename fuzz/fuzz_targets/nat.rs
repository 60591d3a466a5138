//! The router's NAT and connection tracking (`pipeline::router`: the
//! gateway stage of two bridges and the uplink stage, sharing one
//! connection table) over a short sequence of frames from the inside and
//! the outside, with a fake clock that advances between them.
//!
//! Input: two bytes of configuration, then records (see `Case::run`):
//! structured frames (protocol, addresses from a small pool, ports, TCP
//! flags and sequence numbers, fragment bits, TTL, options), raw frames,
//! ARP, ICMP errors about the last translated frame, and retransmissions.
//!
//! Invariants, asserted:
//! - the connection table never holds more than its limit (and its count,
//!   its entries and its stats agree);
//! - every IPv4 frame that leaves (an `Output` verdict or the outbox) has
//!   valid IPv4 and L4 (TCP, UDP, ICMP) checksums, when what came in had
//!   (the harness fixes the checksums of what it sends, unless the
//!   configuration asks for raw bytes); a routed frame lost one TTL;
//! - a translation is explained by a table entry, and a reply to a
//!   translated frame comes back translated to the original addresses and
//!   ports (translation then reverse is the identity on the 5-tuple), for
//!   TCP, UDP and ICMP echo; an ICMP error about a translated frame reaches
//!   the original sender quoting the packet as it sent it;
//! - a malformed IPv4 frame to the router is dropped with `ip-malformed`,
//!   a runt on the uplink with `runt`, unchanged, and nothing else is sent
//!   for it; a frame the gateway passes on to L2 is unchanged; the uplink
//!   decides every frame; `Consumed` only for ARP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::checksum::{fold, sum};
use pipeline::conntrack::{self as ct, Config, L4Info, Timeouts, Tuple};
use pipeline::router::neigh::Known;
use pipeline::router::{
    arp, Gateway, GatewayStage, Publish, Router, RouterConfig, RouterState, Subnet, Target, Uplink,
    UplinkStage, UPLINK_IFACE,
};
use pipeline::stage::{Ctx, Stage};
use pipeline::{DropReason, Packet, Verdict};
use std::sync::Arc;

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const GW2_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];
const UP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const HOP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
const GW: u32 = 0xac1f_0001; // 172.31.0.1/24, zone 5
const GW2: u32 = 0xac20_0001; // 172.32.0.1/24, zone 6
const UP: u32 = 0xc000_0202; // 192.0.2.2/24
const HOP: u32 = 0xc000_0201; // 192.0.2.1
const ZONES: [u16; 2] = [5, 6];
/// Ports: 3 and 4 on the first bridge, 6 on the second, 9 the uplink.
const PORTS: [u16; 4] = [3, 4, 6, UP_PORT];
const UP_PORT: u16 = 9;

/// Addresses the structured frames pick from.
const POOL: [u32; 15] = [
    0xac1f_000a, // 172.31.0.10 (bridge 1)
    0xac1f_000b, // 172.31.0.11 (bridge 1, published tcp 8080)
    0xac1f_000c, // 172.31.0.12 (bridge 1, published udp 5000-5009)
    0xac20_000a, // 172.32.0.10 (bridge 2, published tcp 2222)
    GW,
    GW2,
    UP,
    HOP,
    0xc633_640a, // 198.51.100.10
    0xcb00_7105, // 203.0.113.5
    0xc000_0232, // 192.0.2.50 (on the uplink's subnet)
    0xac1f_00ff, // the first bridge's broadcast
    0xffff_ffff,
    0,
    0xe000_0005, // 224.0.0.5
];

fn addr(sel: u8) -> u32 {
    match POOL.get(sel as usize & 15) {
        Some(a) => *a,
        None => 0x0a00_0000 | u32::from(sel >> 4), // 10.0.0.x
    }
}

fn gw_of_port(port: u16) -> usize {
    usize::from(port == 6)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn mac(b: &[u8], at: usize) -> [u8; 6] {
    b[at..at + 6].try_into().unwrap()
}

/// Recomputes the IPv4 header checksum and, for a packet that is not a
/// fragment, the TCP, UDP or ICMP one, where the lengths allow it. A UDP
/// checksum of 0 (none) is kept when `keep_zero_udp`.
fn fix_checksums(f: &mut [u8], keep_zero_udp: bool) {
    if f.len() < 34 || be16(f, 12) != 0x0800 || f[14] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(f[14] & 15) * 4;
    if ihl < 20 || 14 + ihl > f.len() {
        return;
    }
    f[24..26].fill(0);
    let c = !fold(sum(&f[14..14 + ihl], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(be16(f, 16));
    if total < ihl || 14 + total > f.len() || be16(f, 20) & 0x3fff != 0 {
        return;
    }
    let (l4, len) = (14 + ihl, total - ihl);
    let pseudo = sum(&f[26..34], u64::from(f[23]) + len as u64);
    let (at, pseudo) = match f[23] {
        6 if len >= 20 => (16, pseudo),
        17 if len >= 8 => (6, pseudo),
        1 if len >= 4 => (2, 0),
        _ => return,
    };
    if f[23] == 17 && keep_zero_udp && be16(f, l4 + 6) == 0 {
        return;
    }
    f[l4 + at..l4 + at + 2].fill(0);
    let mut c = !fold(sum(&f[l4..l4 + len], pseudo));
    if f[23] == 17 && c == 0 {
        c = 0xffff;
    }
    f[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Checks the checksums of an untagged IPv4 frame the router sends.
fn assert_checksums(f: &[u8], what: &str) {
    if f.len() < 14 || be16(f, 12) != 0x0800 {
        return;
    }
    assert!(f.len() >= 34, "{what}: short IPv4 frame sent: {f:02x?}");
    let ihl = usize::from(f[14] & 15) * 4;
    assert!(ihl >= 20 && 14 + ihl <= f.len(), "{what}: bad IHL sent");
    assert_eq!(
        fold(sum(&f[14..14 + ihl], 0)),
        0xffff,
        "{what}: IPv4 header checksum: {f:02x?}"
    );
    let total = usize::from(be16(f, 16));
    assert!(total >= ihl && 14 + total <= f.len(), "{what}: IPv4 length");
    if be16(f, 20) & 0x3fff != 0 {
        return; // a fragment: its L4 checksum covers the whole datagram
    }
    let (l4, len) = (14 + ihl, total - ihl);
    let pseudo = sum(&f[26..34], u64::from(f[23]) + len as u64);
    let ok = match f[23] {
        6 if len >= 20 => fold(sum(&f[l4..l4 + len], pseudo)) == 0xffff,
        17 if len >= 8 => be16(f, l4 + 6) == 0 || fold(sum(&f[l4..l4 + len], pseudo)) == 0xffff,
        1 if len >= 4 => fold(sum(&f[l4..l4 + len], 0)) == 0xffff,
        _ => true,
    };
    assert!(ok, "{what}: L4 checksum (proto {}): {f:02x?}", f[23]);
}

/// Ethernet + IPv4 (+ 4 bytes of options when `opts`) + `l4`, checksums
/// computed.
#[allow(clippy::too_many_arguments)]
fn ipv4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    proto: u8,
    src: u32,
    dst: u32,
    ttl: u8,
    flags_frag: u16,
    opts: bool,
    l4: &[u8],
    keep_zero_udp: bool,
) -> Vec<u8> {
    let ihl = if opts { 24 } else { 20 };
    let mut f = Vec::with_capacity(14 + ihl + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.push(0x40 | (ihl / 4) as u8);
    f.push(0);
    f.extend_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34]);
    f.extend_from_slice(&flags_frag.to_be_bytes());
    f.extend_from_slice(&[ttl, proto, 0, 0]);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    if opts {
        f.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
    }
    f.extend_from_slice(l4);
    fix_checksums(&mut f, keep_zero_udp);
    f
}

fn tcp_header(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, wscale: bool) -> Vec<u8> {
    let mut t = Vec::with_capacity(24);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(if wscale { 6 << 4 } else { 5 << 4 });
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    if wscale {
        t.extend_from_slice(&[1, 3, 3, 7]); // NOP, window scale 7
    }
    t
}

/// A frame that left translated, and what it was before.
#[derive(Clone)]
struct Translated {
    before: Tuple,
    after: Tuple,
    /// The frame as it left, and the port it left by.
    frame: Vec<u8>,
    port: u16,
}

struct Case {
    router: Arc<Router>,
    gateways: [GatewayStage; 2],
    uplink: UplinkStage,
    max: usize,
    /// What comes in has valid checksums (the harness fixed them).
    valid: bool,
    now: u64,
    last: Option<Translated>,
    last_frame: Option<(usize, Vec<u8>)>,
}

fn router(cfg0: u8, cfg1: u8) -> (Arc<Router>, usize) {
    let max = 1 + usize::from(cfg0 & 7);
    let t = 1 + u32::from(cfg1 & 15);
    let timeouts = Timeouts {
        tcp_established_s: t * 10,
        tcp_transitory_s: t,
        udp_unreplied_s: t,
        udp_replied_s: 2 * t,
        icmp_s: t,
    };
    let subnet = |ip: u32, len| Subnet {
        addr: ip & (u32::MAX << (32 - len)),
        len,
    };
    let mut publish = Vec::new();
    if cfg0 & 0x20 != 0 {
        let rule = |proto, ip, first, last, to, to_port, zone| Publish {
            proto,
            ip,
            first,
            last,
            to,
            to_port,
            zone,
        };
        publish.push(rule(6, None, 8080, 8080, POOL[1], 80, 5));
        publish.push(rule(17, Some(UP), 5000, 5009, POOL[2], 6000, 5));
        publish.push(rule(6, None, 2222, 2222, POOL[3], 22, 6));
    }
    let cfg = RouterConfig {
        gateways: vec![
            Gateway {
                zone: ZONES[0],
                bridge: 0,
                ip: GW,
                subnet: subnet(GW, 24),
                mac: GW_MAC,
                masquerade: cfg0 & 0x08 != 0,
            },
            Gateway {
                zone: ZONES[1],
                bridge: 1,
                ip: GW2,
                subnet: subnet(GW2, 24),
                mac: GW2_MAC,
                masquerade: cfg0 & 0x10 != 0,
            },
        ],
        uplink: Some(Uplink {
            port: UP_PORT,
            ip: UP,
            subnet: subnet(UP, 24),
            mac: UP_MAC,
            nexthop: HOP,
        }),
        publish,
    };
    let table = ct::ConnTable::new(Config {
        timeouts,
        max_entries: max,
    });
    let r = Arc::new(Router {
        cfg,
        state: Arc::new(RouterState::new(table)),
    });
    (r, max)
}

impl Case {
    fn new(cfg0: u8, cfg1: u8) -> Case {
        let (router, max) = router(cfg0, cfg1);
        let gw = |i| GatewayStage {
            router: router.clone(),
            gateway: i,
        };
        let case = Case {
            gateways: [gw(0), gw(1)],
            uplink: UplinkStage {
                router: router.clone(),
            },
            router,
            max,
            valid: cfg0 & 0x40 == 0,
            now: 1_000,
            last: None,
            last_frame: None,
        };
        if cfg0 & 0x80 != 0 {
            // The next hop and the containers already known.
            for ip in [HOP, POOL[0], POOL[1], POOL[2], POOL[3]] {
                case.learn_route_to(ip);
            }
        }
        case
    }

    /// The stage frames from `port` go through (3, 4: the first bridge's
    /// gateway; 6: the second's; 9: the uplink).
    fn stage(&self, port: u16) -> &dyn Stage {
        if port == UP_PORT {
            &self.uplink
        } else {
            &self.gateways[gw_of_port(port)]
        }
    }

    fn router_mac(&self, port: u16) -> [u8; 6] {
        match port {
            UP_PORT => UP_MAC,
            6 => GW2_MAC,
            _ => GW_MAC,
        }
    }

    /// Where the router sends a packet to `dst` (as `route::out` decides):
    /// the neighbour interface, the next hop, and the MAC and port the
    /// harness teaches for it.
    fn route_to(&self, dst: u32) -> (u16, u32, Known) {
        let cfg = &self.router.cfg;
        if let Some(g) = cfg.gateways.iter().find(|g| g.subnet.contains(dst)) {
            let port = if g.zone == ZONES[0] { 3 } else { 6 };
            let m = dst.to_be_bytes();
            let at = Known {
                mac: [2, 0xc, m[0], m[1], m[2], m[3]],
                port,
            };
            return (g.zone, dst, at);
        }
        let up = cfg.uplink.as_ref().unwrap();
        let hop = if up.subnet.contains(dst) {
            dst
        } else {
            up.nexthop
        };
        let at = Known {
            mac: if hop == HOP {
                HOP_MAC
            } else {
                [2, 0xd, 0, 0, 0, 1]
            },
            port: UP_PORT,
        };
        (UPLINK_IFACE, hop, at)
    }

    /// Makes sure the router knows where `dst`'s next hop is; returns the
    /// port it will send by. Frames that waited for it are checked.
    fn learn_route_to(&self, dst: u32) -> u16 {
        let (iface, hop, at) = self.route_to(dst);
        let mut n = self.router.state.neighbors.lock().unwrap();
        if let Some((_, _, k)) = n.known().into_iter().find(|e| (e.0, e.1) == (iface, hop)) {
            return k.port;
        }
        let released = n.learn(iface, hop, at, self.now);
        drop(n);
        for f in released {
            if self.valid {
                assert_checksums(&f, "a held frame");
            }
        }
        at.port
    }

    fn check_table(&self) {
        let t = self.router.state.conntrack.lock().unwrap();
        assert!(
            t.len() <= self.max,
            "{} entries, limit {}",
            t.len(),
            self.max
        );
        assert_eq!(t.iter().count(), t.len());
        assert_eq!(t.stats().entries, t.len());
    }

    /// Empties the outbox, checking what was in it.
    fn check_outbox(&self) -> usize {
        let out = self.router.state.take_outbox();
        for (to, f) in &out {
            match to {
                Target::Port(p) => assert!(PORTS.contains(p), "outbox to port {p}"),
                Target::Bridge(b) => assert!(*b < 2, "outbox to bridge {b}"),
            }
            if be16(f, 12) == 0x0806 {
                let a = arp::parse(f).expect("an ARP frame the router sends parses");
                assert!(a.request || a.sender_ip == UP || a.sender_ip == GW || a.sender_ip == GW2);
            } else if self.valid {
                assert_checksums(f, "outbox");
            }
        }
        out.len()
    }

    /// Runs `frames` from port `port` through its stage as one batch and
    /// checks each verdict; returns the translated ones.
    fn batch(&mut self, port: u16, frames: &[Vec<u8>]) -> Vec<Translated> {
        let mut pkts: Vec<Packet> = frames
            .iter()
            .map(|f| {
                let mut p = Packet::new();
                assert!(p.fill(f));
                p.meta.in_port = port;
                p
            })
            .collect();
        let mut v = vec![Verdict::Continue; pkts.len()];
        self.stage(port)
            .process(&Ctx { now_ms: self.now }, &mut pkts, &mut v);
        let rmac = self.router_mac(port);
        let mut all_bad = true;
        let mut done = Vec::new();
        for ((f, p), v) in frames.iter().zip(&pkts).zip(v) {
            let o = p.data();
            let ipv4 = f.len() >= 14 && be16(f, 12) == 0x0800;
            let to_router = f.len() >= 14 && f[..6] == rmac;
            let parsed = ct::parse(f, 14);
            if f.len() < 14 {
                let want = if port == UP_PORT {
                    Verdict::Drop(DropReason::Runt)
                } else {
                    Verdict::Continue
                };
                assert_eq!(v, want, "a runt");
                assert_eq!(o, &f[..]);
                continue;
            }
            if ipv4 && to_router && parsed.is_err() {
                assert_eq!(v, Verdict::Drop(DropReason::IpMalformed), "{f:02x?}");
                assert_eq!(o, &f[..], "a malformed frame was changed");
                continue;
            }
            all_bad = false;
            match v {
                Verdict::Continue => {
                    assert_ne!(port, UP_PORT, "the uplink left a frame undecided");
                    assert_eq!(o, &f[..], "a frame passed on to L2 was changed");
                }
                Verdict::Flood | Verdict::Reenter(_) => panic!("router verdict {v:?}"),
                Verdict::Consumed => assert_eq!(be16(f, 12), 0x0806, "consumed non-ARP"),
                Verdict::Drop(_) => {}
                Verdict::Output(out) => {
                    assert!(PORTS.contains(&out), "output to port {out}");
                    if !ipv4 {
                        let a = arp::parse(o).expect("an ARP answer");
                        assert!(!a.request);
                        assert_eq!(out, port, "an ARP answer leaves by its ingress");
                        continue;
                    }
                    if self.valid {
                        assert_checksums(o, "output");
                    }
                    let pin = parsed.expect("an IPv4 frame routed was parsed");
                    let pout = ct::parse(o, 14).expect("a routed frame parses");
                    let own = [GW, GW2, UP].contains(&pin.tuple.dst);
                    if pin.tuple.proto == 1 && own && pout.tuple == pin.tuple.reversed() {
                        // An echo request to the router, answered in place.
                        assert_eq!(out, port);
                        assert_eq!(pout.info.l4, L4Info::IcmpEcho { reply: true });
                        continue;
                    }
                    assert_eq!(o[22], f[22] - 1, "TTL of a routed frame");
                    if pin.is_icmp_error() || pin.is_later_fragment() {
                        continue;
                    }
                    if pout.tuple == pin.tuple {
                        continue;
                    }
                    // A translation: the table must say so.
                    let t = self.router.state.conntrack.lock().unwrap();
                    let (id, dir) = t
                        .lookup(&pin.tuple, self.now)
                        .expect("a translated frame has a connection");
                    assert_eq!(t.get(id).target(dir), pout.tuple, "translation vs table");
                    done.push(Translated {
                        before: pin.tuple,
                        after: pout.tuple,
                        frame: o.to_vec(),
                        port: out,
                    });
                }
            }
        }
        let sent = self.check_outbox();
        if all_bad {
            assert_eq!(sent, 0, "something sent for malformed frames");
        }
        self.check_table();
        done
    }

    /// Sends the reply to a translated frame and checks it comes back
    /// translated to the original tuple.
    fn reply(&mut self, tr: &Translated) {
        if !self.alive(tr) {
            return;
        }
        let want_port = self.learn_route_to(tr.before.src);
        let o = &tr.frame;
        let (a, ihl) = (tr.after, usize::from(o[14] & 15) * 4);
        let l4 = match a.proto {
            6 => {
                let (seq, ack, flags) = (
                    be32(o, 14 + ihl + 4),
                    be32(o, 14 + ihl + 8),
                    o[14 + ihl + 13],
                );
                let total = usize::from(be16(o, 16));
                let len = (total - ihl - usize::from(o[14 + ihl + 12] >> 4) * 4) as u32;
                let syn = u32::from(flags & 2 != 0);
                let fin = u32::from(flags & 1 != 0);
                let end = seq.wrapping_add(len + syn + fin);
                if flags & 0x12 == 0x02 {
                    tcp_header(a.dport, a.sport, 0x5000_0000, end, 0x12, false)
                } else {
                    tcp_header(a.dport, a.sport, ack, end, 0x10, false)
                }
            }
            17 => {
                let mut u = Vec::new();
                u.extend_from_slice(&a.dport.to_be_bytes());
                u.extend_from_slice(&a.sport.to_be_bytes());
                u.extend_from_slice(&13u16.to_be_bytes());
                u.extend_from_slice(&[0, 0, b'r', b'e', b'p', b'l', b'y']);
                u
            }
            1 => {
                let id = a.sport.to_be_bytes();
                vec![0, 0, 0, 0, id[0], id[1], 0, 1, 9, 9]
            }
            _ => return,
        };
        let f = ipv4_frame(
            mac(o, 6),
            mac(o, 0),
            a.proto,
            a.dst,
            a.src,
            64,
            0,
            false,
            &l4,
            false,
        );
        let (v, out) = self.one(tr.port, &f);
        match v {
            Verdict::Output(p) => {
                assert_eq!(p, want_port, "a reply left by the wrong port");
                assert_checksums(&out, "a reply");
                let t = ct::parse(&out, 14).unwrap().tuple;
                assert_eq!(t, tr.before.reversed(), "reply not translated back");
            }
            Verdict::Drop(DropReason::CtInvalid) if a.proto == 6 => {}
            v => panic!("a reply to {:?} -> {:?}: {v:?}", tr.before, tr.after),
        }
    }

    /// An ICMP error about a translated frame, from its peer (`from_peer`)
    /// or a router on the way: it must reach the original sender and quote
    /// the packet as that sender sent it.
    fn icmp_error(&mut self, tr: &Translated, from_peer: bool, time_exceeded: bool) {
        let o = &tr.frame;
        let ihl = usize::from(o[14] & 15) * 4;
        let quote = &o[14..(14 + ihl + 8).min(o.len())];
        let mut icmp = if time_exceeded {
            vec![11, 0, 0, 0, 0, 0, 0, 0]
        } else {
            vec![3, 4, 0, 0, 0, 0, 0x05, 0xdc]
        };
        icmp.extend_from_slice(quote);
        let src = if from_peer {
            tr.after.dst
        } else if tr.port == UP_PORT {
            0xc000_02fe // 192.0.2.254, a router on the uplink's link
        } else {
            0x0a09_0909
        };
        let alive = self.alive(tr);
        let want_port = alive.then(|| self.learn_route_to(tr.before.src));
        let f = ipv4_frame(
            mac(o, 6),
            mac(o, 0),
            1,
            src,
            tr.after.src,
            64,
            0,
            false,
            &icmp,
            false,
        );
        let (v, out) = self.one(tr.port, &f);
        let Some(want_port) = want_port else {
            return;
        };
        assert_eq!(
            v,
            Verdict::Output(want_port),
            "ICMP error about {:?}",
            tr.before
        );
        assert_checksums(&out, "an ICMP error");
        let p = ct::parse(&out, 14).expect("a translated ICMP error parses");
        let L4Info::IcmpError(emb) = p.info.l4 else {
            panic!("not an ICMP error any more");
        };
        assert_eq!(
            emb.tuple, tr.before,
            "the quote is not what the sender sent"
        );
        assert_eq!(p.tuple.dst, tr.before.src);
        if from_peer {
            assert_eq!(p.tuple.src, tr.before.dst);
        }
    }

    /// The connection of a translated frame is still there.
    fn alive(&self, tr: &Translated) -> bool {
        let t = self.router.state.conntrack.lock().unwrap();
        t.lookup(&tr.before, self.now)
            .is_some_and(|(id, dir)| t.get(id).target(dir) == tr.after)
    }

    fn one(&mut self, port: u16, f: &[u8]) -> (Verdict, Vec<u8>) {
        let mut p = Packet::new();
        assert!(p.fill(f));
        p.meta.in_port = port;
        let mut pkts = [p];
        let mut v = [Verdict::Continue];
        self.stage(port)
            .process(&Ctx { now_ms: self.now }, &mut pkts, &mut v);
        self.check_outbox();
        self.check_table();
        (v[0], pkts[0].data().to_vec())
    }

    /// A frame from a structured record `r` (18 bytes) sent on `port`.
    fn structured(&mut self, port: u16, r: &[u8; 18]) -> Option<Vec<u8>> {
        let sel = r[0];
        let (src, dst) = (addr(r[1]), addr(r[2]));
        let (sport, dport) = (be16(r, 3), be16(r, 5));
        let flags = r[7];
        let payload = vec![0x61; usize::from(r[8] & 0x7f)];
        let rmac = self.router_mac(port);
        let dst_mac = match r[9] & 3 {
            0 => rmac,
            1 => [0xff; 6],
            2 => [2, 0, 0, 0, 0, 0x77],
            _ => {
                if rmac == GW_MAC {
                    GW2_MAC
                } else {
                    GW_MAC
                }
            }
        };
        let src_mac = [2, 0xe, 0, 0, 0, r[9] >> 2];
        let (seq, ack) = (be32(r, 10), be32(r, 14));
        let opts = sel & 0x08 != 0;
        let mut ff = 0u16;
        if sel & 0x10 != 0 {
            ff |= 0x2000; // more fragments
        }
        if sel & 0x20 != 0 {
            ff |= u16::from(r[8] >> 4) + 1; // a later fragment
        }
        if ff == 0 && r[9] & 0x80 != 0 {
            ff = 0x4000; // DF
        }
        let ttl = if sel & 0x40 != 0 { 1 + (r[8] & 1) } else { 64 };
        let zero_udp = sel & 0x80 != 0;
        let frame = match sel & 7 {
            0 => {
                let mut l4 = tcp_header(
                    sport,
                    dport,
                    seq,
                    ack,
                    flags,
                    flags & 2 != 0 && r[9] & 0x40 != 0,
                );
                l4.extend_from_slice(&payload);
                ipv4_frame(dst_mac, src_mac, 6, src, dst, ttl, ff, opts, &l4, false)
            }
            1 => {
                let mut l4 = Vec::new();
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&dport.to_be_bytes());
                l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
                l4.extend_from_slice(&payload);
                ipv4_frame(dst_mac, src_mac, 17, src, dst, ttl, ff, opts, &l4, zero_udp)
            }
            2 | 3 => {
                let ty = if sel & 7 == 2 { 8 } else { 0 };
                let mut l4 = vec![ty, 0, 0, 0];
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&dport.to_be_bytes());
                l4.extend_from_slice(&payload);
                ipv4_frame(dst_mac, src_mac, 1, src, dst, ttl, ff, opts, &l4, false)
            }
            4 => {
                let tr = self.last.clone()?;
                self.icmp_error(&tr, r[1] & 1 == 0, r[7] & 1 != 0);
                return None;
            }
            5 => ipv4_frame(
                dst_mac, src_mac, 47, src, dst, ttl, ff, opts, &payload, false,
            ),
            6 => {
                // A request from `src` for `dst`, or (flags bit 0) the
                // answer "`src` is at `src_mac`" to `dst`.
                let mut f = arp::request(src_mac, src, dst);
                if flags & 1 != 0 {
                    f = arp::request(dst_mac, dst, src);
                    let q = arp::parse(&f).unwrap();
                    arp::answer_in_place(&mut f, &q, src_mac, src);
                }
                if r[9] & 3 == 0 {
                    f[..6].copy_from_slice(&dst_mac);
                }
                f.to_vec()
            }
            _ => {
                // The last structured frame of this side again.
                let (p, f) = self.last_frame.clone()?;
                (p == usize::from(port)).then_some(f)?
            }
        };
        self.last_frame = Some((usize::from(port), frame.clone()));
        Some(frame)
    }

    /// Records, each: a kind byte (bits 0-1 the port, bit 2 raw bytes,
    /// bit 3 same batch as the frame before, bits 5-7 how far the clock
    /// moves first), then either a length and that many bytes, or 18
    /// bytes of a structured frame.
    fn run(&mut self, mut data: &[u8]) {
        const DT: [u64; 8] = [0, 1, 50, 1_000, 5_000, 30_000, 120_000, 1_000_000];
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut pending_port = 0;
        let mut steps = 0;
        while let [kind, rest @ ..] = data {
            steps += 1;
            if steps > 64 {
                break;
            }
            let port = PORTS[usize::from(kind & 3)];
            let dt = DT[usize::from(kind >> 5)];
            let join = kind & 0x08 != 0 && dt == 0 && port == pending_port && pending.len() < 8;
            if !join && !pending.is_empty() {
                self.flush(pending_port, std::mem::take(&mut pending));
            }
            if dt != 0 {
                self.now += dt;
                // As the daemon does now and then.
                let swept = self
                    .router
                    .state
                    .conntrack
                    .lock()
                    .unwrap()
                    .sweep(self.now, 16);
                assert!(swept <= 16);
                self.router.retry_questions(self.now);
                self.check_outbox();
            }
            let frame = if kind & 0x04 != 0 {
                let [len, tail @ ..] = rest else { break };
                let n = usize::from(*len).min(tail.len());
                let mut f = tail[..n].to_vec();
                data = &tail[n..];
                if self.valid {
                    fix_checksums(&mut f, true);
                }
                Some(f)
            } else {
                let Some((r, tail)) = rest.split_first_chunk::<18>() else {
                    break;
                };
                data = tail;
                self.structured(port, r)
            };
            if let Some(f) = frame {
                pending_port = port;
                pending.push(f);
            }
        }
        if !pending.is_empty() {
            self.flush(pending_port, pending);
        }
    }

    fn flush(&mut self, port: u16, frames: Vec<Vec<u8>>) {
        let done = self.batch(port, &frames);
        for tr in &done {
            self.reply(tr);
        }
        if let Some(tr) = done.into_iter().last() {
            self.last = Some(tr);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [cfg0, cfg1, rest @ ..] = data else {
        return;
    };
    let mut case = Case::new(*cfg0, *cfg1);
    case.run(rest);
});
