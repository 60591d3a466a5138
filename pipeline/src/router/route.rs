//! Routing one packet: ARP for the router's addresses, connection lookup
//! and translation, TTL, and the next hop's MAC.

use super::arp;
use super::neigh::{Iface, Known, Lookup, Neighbors};
use super::{lock, Gateway, Router, Target, Uplink, UPLINK_IFACE};
use crate::checksum::{self, update16};
use crate::conntrack::{self as ct, ConnTable, Dir, L4Info, Tuple};
use crate::packet::Packet;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{be16, eth, ip_proto, ipv4, put_be16};
use std::sync::MutexGuard;

/// Routed frames are untagged inside the pipeline: IPv4 right after the
/// Ethernet header.
const L3: usize = eth::HEADER_LEN;
/// Ports masquerade may hand out (Linux's default for MASQUERADE keeps the
/// source port when it can, and otherwise picks from the unprivileged range).
const NAT_PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// The router's shared state, each part locked on first use and held for
/// the rest of the stage's call. Locks are always taken in one order
/// (connections, then neighbours; the outbox, a leaf, at any time),
/// so two poll threads can never wait for each other.
pub(super) struct Locks<'a> {
    pub router: &'a Router,
    ct: Option<MutexGuard<'a, ConnTable>>,
    neigh: Option<MutexGuard<'a, Neighbors>>,
    /// The last next hop looked up in this call, and where it is: routed
    /// packets of a batch mostly share one.
    last_hop: Option<(Iface, u32, Known)>,
}

impl<'a> Locks<'a> {
    pub fn new(router: &'a Router) -> Self {
        Locks {
            router,
            ct: None,
            neigh: None,
            last_hop: None,
        }
    }

    fn ct(&mut self) -> &mut ConnTable {
        let state = &self.router.state;
        self.ct.get_or_insert_with(|| lock(&state.conntrack))
    }

    fn neigh(&mut self) -> &mut Neighbors {
        self.ct();
        let state = &self.router.state;
        self.neigh.get_or_insert_with(|| lock(&state.neighbors))
    }

    /// Records a neighbour and sends what waited for it.
    fn learn(&mut self, iface: Iface, ip: u32, at: Known, now_ms: u64) {
        self.last_hop = None;
        let released = self.neigh().learn(iface, ip, at, now_ms);
        for mut f in released {
            f[eth::DST].copy_from_slice(&at.mac);
            self.router.state.push_out(Target::Port(at.port), f);
        }
    }
}

/// A frame received on a port of the gateway's bridge (VLAN 0).
pub(super) fn from_bridge(lk: &mut Locks, gw: &Gateway, pkt: &mut Packet, now: u64) -> Verdict {
    let in_port = pkt.meta.in_port;
    let frame = pkt.data_mut();
    if frame.len() < eth::HEADER_LEN {
        return Verdict::Continue;
    }
    match be16(frame, eth::ETHERTYPE.start) {
        eth::TYPE_ARP => {
            let Some(a) = arp::parse(frame) else {
                return Verdict::Continue;
            };
            // Containers announce themselves (gratuitous ARP on attach)
            // and ask for the gateway: both say where they are.
            if gw.subnet.contains(a.sender_ip) && a.sender_ip != gw.ip && a.sender_ip != 0 {
                let at = Known {
                    mac: a.sender_mac,
                    port: in_port,
                };
                lk.learn(gw.zone, a.sender_ip, at, now);
            }
            if a.target_ip != gw.ip {
                return Verdict::Continue;
            }
            if a.request {
                arp::answer_in_place(frame, &a, gw.mac, gw.ip);
                return Verdict::Output(in_port);
            }
            Verdict::Consumed
        }
        eth::TYPE_IPV4 if frame[eth::DST] == gw.mac => route(lk, Some(gw), pkt, now),
        _ => Verdict::Continue,
    }
}

/// A frame received on the uplink.
pub(super) fn from_uplink(lk: &mut Locks, up: &Uplink, pkt: &mut Packet, now: u64) -> Verdict {
    let in_port = pkt.meta.in_port;
    pkt.meta.vlan = 0;
    let frame = pkt.data_mut();
    if frame.len() < eth::HEADER_LEN {
        return Verdict::Drop(DropReason::Runt);
    }
    match be16(frame, eth::ETHERTYPE.start) {
        eth::TYPE_ARP => {
            let Some(a) = arp::parse(frame) else {
                return Verdict::Drop(DropReason::NotForRouter);
            };
            if a.target_ip != up.ip {
                return Verdict::Drop(DropReason::NotForRouter);
            }
            if up.subnet.contains(a.sender_ip) && a.sender_ip != 0 {
                let at = Known {
                    mac: a.sender_mac,
                    port: in_port,
                };
                lk.learn(UPLINK_IFACE, a.sender_ip, at, now);
            }
            if a.request {
                arp::answer_in_place(frame, &a, up.mac, up.ip);
                return Verdict::Output(in_port);
            }
            Verdict::Consumed
        }
        eth::TYPE_IPV4 if frame[eth::DST] == up.mac => route(lk, None, pkt, now),
        _ => Verdict::Drop(DropReason::NotForRouter),
    }
}

/// How a packet's addresses and ports are rewritten.
#[derive(Clone, Copy)]
struct Rewrite {
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
}

/// Routes an IPv4 frame addressed to the router's MAC, received from the
/// bridge of `from` (or from the uplink when `None`).
fn route(lk: &mut Locks, from: Option<&Gateway>, pkt: &mut Packet, now: u64) -> Verdict {
    let in_port = pkt.meta.in_port;
    let router = lk.router;
    let frame = pkt.data_mut();
    let Ok(p) = ct::parse(frame, L3) else {
        return Verdict::Drop(DropReason::IpMalformed);
    };
    // Local senders leave TCP/UDP checksums partial (offload): finish them
    // before they are updated incrementally.
    complete_partial(frame, &p);
    let len = frame.len();
    let t = p.tuple;
    let rw = if matches!(p.info.l4, L4Info::IcmpError(_)) {
        return icmp_error(lk, &p, pkt, now);
    } else if p.info.is_later_fragment() {
        let ct = lk.ct();
        match ct.fragment(&p, now) {
            Some((id, dir)) => translation(ct.get(id), dir),
            None => return Verdict::Drop(DropReason::FragUnknown),
        }
    } else if let Some(rw) = established(lk.ct(), &p, len, now) {
        match rw {
            Some(rw) => rw,
            None => return Verdict::Drop(DropReason::CtInvalid),
        }
    } else {
        match new_connection(lk, from, &p, len, now) {
            Ok(Some(rw)) => rw,
            Ok(None) if router.is_own(t.dst) => {
                return match echo_reply(pkt.data_mut()) {
                    true => Verdict::Output(in_port),
                    false => Verdict::Drop(DropReason::NoRoute),
                };
            }
            // From the outside, only the bridges' subnets are routed to
            // (never back out of the uplink).
            Ok(None)
                if from.is_none()
                    && !router.cfg.gateways.iter().any(|g| g.subnet.contains(t.dst)) =>
            {
                return Verdict::Drop(DropReason::NoRoute);
            }
            Ok(None) => Rewrite {
                src: t.src,
                sport: t.sport,
                dst: t.dst,
                dport: t.dport,
            },
            Err(r) => return Verdict::Drop(r),
        }
    };
    let frame = pkt.data_mut();
    if frame[L3 + IP_TTL] <= 1 {
        time_exceeded(lk, from, frame, in_port);
        return Verdict::Drop(DropReason::TtlExpired);
    }
    ct::rewrite(frame, L3, &p, rw.src, rw.sport, rw.dst, rw.dport);
    ct::dec_ttl(frame, L3);
    out(lk, pkt, rw.dst, now)
}

const IP_TTL: usize = 8;

/// Completes a partial TCP or UDP checksum of a parsed packet (see
/// `checksum::complete_partial`), without parsing it again.
#[inline]
fn complete_partial(frame: &mut [u8], p: &ct::Parsed) {
    if !matches!(p.info.l4, L4Info::Tcp(_) | L4Info::Udp { .. }) || p.info.is_fragment() {
        return;
    }
    let len = p.info.l4_len as usize;
    let l4 = crate::parse::L4 {
        l3: L3,
        off: L3 + p.info.ihl as usize,
        proto: p.tuple.proto,
        len,
        pseudo: checksum::sum(
            &frame[L3 + ipv4::SRC..L3 + ipv4::DST + 4],
            p.tuple.proto as u64 + len as u64,
        ),
    };
    checksum::complete_partial_l4(frame, &l4);
}

/// A packet of a known connection: its translation (None when tracking
/// marked it invalid). A first fragment is remembered for the later ones.
#[inline]
fn established(
    ct: &mut ConnTable,
    p: &ct::Parsed,
    len: usize,
    now: u64,
) -> Option<Option<Rewrite>> {
    let (id, dir) = ct.lookup(&p.tuple, now)?;
    if ct.track(id, dir, &p.info, len, now).is_err() {
        return Some(None);
    }
    ct.remember_fragment(p, id, dir, now);
    Some(Some(translation(ct.get(id), dir)))
}

/// The addresses a packet of `conn` seen in `dir` leaves with.
fn translation(conn: &ct::Conn, dir: Dir) -> Rewrite {
    let t = conn.target(dir);
    Rewrite {
        src: t.src,
        sport: t.sport,
        dst: t.dst,
        dport: t.dport,
    }
}

/// Decides what a packet that starts a connection becomes: published port
/// (with the source rewritten too for hairpin), masquerade, or plain
/// routing (`Ok(None)`, nothing tracked).
fn new_connection(
    lk: &mut Locks,
    from: Option<&Gateway>,
    p: &ct::Parsed,
    len: usize,
    now: u64,
) -> Result<Option<Rewrite>, DropReason> {
    let router = lk.router;
    let t = p.tuple;
    let cfg = &router.cfg;
    let uplink_ip = cfg.uplink.as_ref().map(|u| u.ip);
    let published = (Some(t.dst) == uplink_ip || cfg.publish.iter().any(|r| r.ip == Some(t.dst)))
        .then(|| {
            cfg.publish
                .iter()
                .find_map(|r| Some((r.target(t.proto, t.dst, t.dport)?, r.zone)))
        })
        .flatten();
    let (reply, zone) = if let Some(((to, to_port), zone)) = published {
        let mut reply = Tuple {
            proto: t.proto,
            src: to,
            dst: t.src,
            sport: to_port,
            dport: t.sport,
        };
        // Hairpin: a container of the same bridge would get the answer
        // straight from its neighbour, past the translation; make it come
        // back through the gateway.
        if let Some(g) = from.filter(|g| g.zone == zone) {
            reply.dst = g.ip;
            reply.dport = free_port(lk.ct(), &reply, now)?;
        }
        (reply, zone)
    } else if let (Some(g), Some(up)) = (from, &cfg.uplink) {
        let beyond =
            !router.is_own(t.dst) && !cfg.gateways.iter().any(|g| g.subnet.contains(t.dst));
        if !g.masquerade || !beyond {
            return Ok(None);
        }
        let echo = matches!(p.info.l4, L4Info::IcmpEcho { reply: false });
        if !matches!(t.proto, ip_proto::TCP | ip_proto::UDP) && !echo {
            return Err(DropReason::NatUnsupported);
        }
        let mut reply = Tuple {
            proto: t.proto,
            src: t.dst,
            dst: up.ip,
            sport: t.dport,
            dport: t.sport,
        };
        reply.dport = free_port(lk.ct(), &reply, now)?;
        if echo {
            // Echo is tracked by its identifier, the same both ways.
            reply.sport = reply.dport;
        }
        (reply, g.zone)
    } else {
        return Ok(None);
    };
    if !p.info.may_create() {
        // A TCP segment of no known connection (a FIN, a RST, a SYN-ACK)
        // or an echo reply: translating it would leak the inside address.
        return Err(DropReason::CtInvalid);
    }
    let ct = lk.ct();
    let id = match ct.insert(t, reply, zone, now) {
        Ok(id) => id,
        Err(ct::InsertError::Full) => return Err(DropReason::CtFull),
        Err(_) => return Err(DropReason::CtInvalid),
    };
    if ct.track(id, Dir::Orig, &p.info, len, now).is_err() {
        ct.remove(id);
        return Err(DropReason::CtInvalid);
    }
    ct.remember_fragment(p, id, Dir::Orig, now);
    Ok(Some(translation(ct.get(id), Dir::Orig)))
}

/// A port (or echo identifier) for `reply.dport` that no live connection
/// uses in the same reply tuple: the packet's own when it is free, as
/// Linux's masquerade does, otherwise a random free one.
fn free_port(ct: &mut ConnTable, reply: &Tuple, now: u64) -> Result<u16, DropReason> {
    let range = if reply.proto == ip_proto::ICMP {
        0..=u16::MAX
    } else {
        NAT_PORTS
    };
    ct.alloc_port(reply, range, now)
        .ok_or(DropReason::NatNoPort)
}

/// An ICMP error about a tracked connection, translated like the packet
/// it is about would be in the other direction.
fn icmp_error(lk: &mut Locks, p: &ct::Parsed, pkt: &mut Packet, now: u64) -> Verdict {
    let frame = pkt.data_mut();
    let table = lk.ct();
    if ct::rewrite_icmp_error(frame, L3, p, table, now).is_err() {
        return Verdict::Drop(DropReason::IcmpUntracked);
    }
    if frame[L3 + IP_TTL] <= 1 {
        return Verdict::Drop(DropReason::TtlExpired);
    }
    ct::dec_ttl(frame, L3);
    let dst = u32::from_be_bytes([
        frame[L3 + ipv4::DST],
        frame[L3 + ipv4::DST + 1],
        frame[L3 + ipv4::DST + 2],
        frame[L3 + ipv4::DST + 3],
    ]);
    out(lk, pkt, dst, now)
}

/// Sends a routed packet to `dst`'s next hop: a container of a bridge
/// with a gateway, or through the uplink.
fn out(lk: &mut Locks, pkt: &mut Packet, dst: u32, now: u64) -> Verdict {
    let cfg = &lk.router.cfg;
    let (iface, mac, hop) = if let Some(g) = cfg.gateways.iter().find(|g| g.subnet.contains(dst)) {
        (g.zone, g.mac, dst)
    } else if let Some(up) = &cfg.uplink {
        let hop = if up.subnet.contains(dst) {
            dst
        } else {
            up.nexthop
        };
        (UPLINK_IFACE, up.mac, hop)
    } else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    pkt.meta.vlan = 0;
    pkt.meta.tpid = 0;
    let frame = pkt.data_mut();
    frame[eth::SRC].copy_from_slice(&mac);
    if let Some((i, h, at)) = lk.last_hop {
        if (i, h) == (iface, hop) {
            frame[eth::DST].copy_from_slice(&at.mac);
            return Verdict::Output(at.port);
        }
    }
    match lk.neigh().lookup(iface, hop, now) {
        Lookup::Found { at, ask_again } => {
            frame[eth::DST].copy_from_slice(&at.mac);
            lk.last_hop = Some((iface, hop, at));
            if ask_again {
                lk.router.ask(iface, hop);
            }
            Verdict::Output(at.port)
        }
        Lookup::Missing => {
            if lk.neigh().hold(iface, hop, frame, now) {
                lk.router.ask(iface, hop);
            }
            Verdict::Drop(DropReason::ArpWait)
        }
    }
}

/// Answers an ICMP echo request to one of the router's own addresses in
/// place. False when the packet is not one.
fn echo_reply(frame: &mut [u8]) -> bool {
    let ihl = (frame[L3] & 0x0f) as usize * 4;
    let icmp = L3 + ihl;
    if frame.len() < icmp + 8 || frame[L3 + ipv4::PROTO] != ip_proto::ICMP {
        return false;
    }
    if frame[icmp] != 8 || frame[icmp + 1] != 0 {
        return false;
    }
    let (d, s) = (eth::mac(frame, eth::DST), eth::mac(frame, eth::SRC));
    frame[eth::DST].copy_from_slice(&s);
    frame[eth::SRC].copy_from_slice(&d);
    // Swapping the addresses keeps both checksums.
    let (src, dst) = (L3 + ipv4::SRC, L3 + ipv4::DST);
    for i in 0..4 {
        frame.swap(src + i, dst + i);
    }
    let old = be16(frame, L3 + IP_TTL);
    let new = (64u16 << 8) | (old & 0xff);
    put_be16(frame, L3 + IP_TTL, new);
    let c = update16(be16(frame, L3 + ipv4::CHECKSUM), old, new);
    put_be16(frame, L3 + ipv4::CHECKSUM, c);
    frame[icmp] = 0;
    let c = update16(be16(frame, icmp + 2), 0x0800, 0x0000);
    let end = (L3 + be16(frame, L3 + ipv4::TOTAL_LEN) as usize).clamp(icmp, frame.len());
    let c = checksum::icmp_update_fixup(&frame[icmp..end], 2, c);
    put_be16(frame, icmp + 2, c);
    true
}

/// Sends "time exceeded" back to the sender of `frame`, from the
/// router's address on the interface it came in by.
fn time_exceeded(lk: &mut Locks, from: Option<&Gateway>, frame: &[u8], in_port: u16) {
    let router = lk.router;
    let ip = match (from, &router.cfg.uplink) {
        (Some(g), _) => g.ip,
        (None, Some(up)) => up.ip,
        (None, None) => return,
    };
    let mut out = vec![0u8; ct::TIME_EXCEEDED_MAX];
    if let Some(n) = ct::time_exceeded(frame, L3, ip, &mut out) {
        out.truncate(n);
        router.state.push_out(Target::Port(in_port), out);
    }
}
