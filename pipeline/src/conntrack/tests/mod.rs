//! Tests of conntrack and NAT, on frames built by hand here. Checksums of
//! rewritten frames are always verified by recomputing them from scratch,
//! never with the incremental code under test.

mod icmp_frag;
mod props;
mod rewrite;
mod table;
mod tcp;

use super::*;
use crate::checksum::{checksum, fold, sum};
use crate::wire::{be16, ip_proto, put_be16};

pub const L3: usize = 14;
pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

pub fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

pub const CONTAINER: u32 = 0xac12_0002; // 172.18.0.2
pub const CONTAINER2: u32 = 0xac12_0003; // 172.18.0.3
pub const WEB: u32 = 0xac12_0005; // 172.18.0.5
pub const GATEWAY: u32 = 0xac12_0001; // 172.18.0.1
pub const UPLINK: u32 = 0xc0a8_0102; // 192.168.1.2
pub const SERVER: u32 = 0x0a00_0009; // 10.0.0.9

/// IPv4 header fields a test may want to set.
#[derive(Clone, Copy)]
pub struct IpOpts {
    pub id: u16,
    /// Flags and fragment offset, as on the wire.
    pub frag: u16,
    pub ttl: u8,
    /// Bytes of IP options (a multiple of 4).
    pub options: usize,
}

impl Default for IpOpts {
    fn default() -> Self {
        IpOpts {
            id: 0x1234,
            frag: 0x4000,
            ttl: 64,
            options: 0,
        }
    }
}

/// An IPv4 packet (no L2) with a correct header checksum; L4 bytes as
/// given.
pub fn ipv4(src: u32, dst: u32, proto: u8, l4: &[u8], o: IpOpts) -> Vec<u8> {
    let ihl = 20 + o.options;
    let mut p = vec![0u8; ihl];
    p[0] = 0x40 | (ihl / 4) as u8;
    put_be16(&mut p, 2, (ihl + l4.len()) as u16);
    put_be16(&mut p, 4, o.id);
    put_be16(&mut p, 6, o.frag);
    p[8] = o.ttl;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.to_be_bytes());
    p[16..20].copy_from_slice(&dst.to_be_bytes());
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = if i == 0 { 1 } else { 0 }; // NOP then end of options
    }
    let c = checksum(&p);
    put_be16(&mut p, 10, c);
    p.extend_from_slice(l4);
    p
}

pub fn ether(ip_packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip_packet.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(ip_packet);
    f
}

/// The pseudo-header sum for L4 checksums.
pub fn pseudo(src: u32, dst: u32, proto: u8, len: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&src.to_be_bytes());
    b[4..].copy_from_slice(&dst.to_be_bytes());
    sum(&b, proto as u64 + len as u64)
}

/// Computes, from scratch, the L4 checksum of an L4 segment.
pub fn l4_checksum(src: u32, dst: u32, proto: u8, l4: &[u8]) -> u16 {
    let at = match proto {
        ip_proto::TCP => 16,
        ip_proto::UDP => 6,
        _ => 2,
    };
    let mut seg = l4.to_vec();
    put_be16(&mut seg, at, 0);
    let init = if proto == ip_proto::ICMP {
        0
    } else {
        pseudo(src, dst, proto, seg.len())
    };
    let c = !fold(sum(&seg, init));
    if proto == ip_proto::UDP && c == 0 {
        0xffff
    } else {
        c
    }
}

pub fn with_checksum(src: u32, dst: u32, proto: u8, mut l4: Vec<u8>) -> Vec<u8> {
    let at = match proto {
        ip_proto::TCP => 16,
        ip_proto::UDP => 6,
        _ => 2,
    };
    let c = l4_checksum(src, dst, proto, &l4);
    put_be16(&mut l4, at, c);
    l4
}

#[derive(Clone, Copy)]
pub struct Seg {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub win: u16,
    pub wscale: Option<u8>,
}

pub fn seg(flags: u8, seq: u32, ack: u32) -> Seg {
    Seg {
        flags,
        seq,
        ack,
        win: 65535,
        wscale: None,
    }
}

/// TCP header (+ window scale option) and payload, checksum 0.
pub fn tcp_l4(sport: u16, dport: u16, s: Seg, payload: &[u8]) -> Vec<u8> {
    let opts: &[u8] = match s.wscale {
        Some(_) => &[1, 3, 3, 0],
        None => &[],
    };
    let hl = 20 + opts.len();
    let mut t = vec![0u8; hl];
    put_be16(&mut t, 0, sport);
    put_be16(&mut t, 2, dport);
    t[4..8].copy_from_slice(&s.seq.to_be_bytes());
    t[8..12].copy_from_slice(&s.ack.to_be_bytes());
    t[12] = ((hl / 4) as u8) << 4;
    t[13] = s.flags;
    put_be16(&mut t, 14, s.win);
    t[20..].copy_from_slice(opts);
    if let Some(w) = s.wscale {
        t[23] = w;
    }
    t.extend_from_slice(payload);
    t
}

pub fn tcp_frame(src: u32, sport: u16, dst: u32, dport: u16, s: Seg, payload: &[u8]) -> Vec<u8> {
    let l4 = with_checksum(src, dst, 6, tcp_l4(sport, dport, s, payload));
    ether(&ipv4(src, dst, 6, &l4, IpOpts::default()))
}

pub fn udp_l4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    put_be16(&mut u, 0, sport);
    put_be16(&mut u, 2, dport);
    put_be16(&mut u, 4, (8 + payload.len()) as u16);
    u.extend_from_slice(payload);
    u
}

/// A UDP frame with a correct checksum, or none (0) when `zero`.
pub fn udp_frame(
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    payload: &[u8],
    zero: bool,
) -> Vec<u8> {
    let mut l4 = udp_l4(sport, dport, payload);
    if !zero {
        l4 = with_checksum(src, dst, 17, l4);
    }
    ether(&ipv4(src, dst, 17, &l4, IpOpts::default()))
}

pub fn echo_frame(src: u32, dst: u32, id: u16, reply: bool) -> Vec<u8> {
    let mut l4 = vec![if reply { 0 } else { 8 }, 0, 0, 0, 0, 0, 0, 1];
    put_be16(&mut l4, 4, id);
    l4.extend_from_slice(b"ping data");
    let l4 = with_checksum(src, dst, 1, l4);
    ether(&ipv4(src, dst, 1, &l4, IpOpts::default()))
}

/// Asserts every checksum of an unfragmented frame verifies, from scratch.
pub fn assert_checksums(f: &[u8]) {
    let ihl = (f[L3] & 0x0f) as usize * 4;
    assert_eq!(checksum(&f[L3..L3 + ihl]), 0, "IP header checksum");
    let total = be16(f, L3 + 2) as usize;
    let l4 = &f[L3 + ihl..L3 + total];
    let proto = f[L3 + 9];
    let src = u32::from_be_bytes(f[L3 + 12..L3 + 16].try_into().unwrap());
    let dst = u32::from_be_bytes(f[L3 + 16..L3 + 20].try_into().unwrap());
    match proto {
        ip_proto::TCP | ip_proto::UDP => {
            if proto == ip_proto::UDP && be16(l4, 6) == 0 {
                return;
            }
            let s = sum(l4, pseudo(src, dst, proto, l4.len()));
            assert_eq!(fold(s), 0xffff, "L4 checksum");
        }
        ip_proto::ICMP => assert_eq!(checksum(l4), 0, "ICMP checksum"),
        _ => {}
    }
}

/// The tuple a frame carries now, re-parsed.
pub fn tuple_of(f: &[u8]) -> Tuple {
    parse(f, L3).unwrap().tuple
}

pub fn tup(proto: u8, src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
    Tuple {
        proto,
        src,
        dst,
        sport,
        dport,
    }
}

/// Translates `f` as its entry says; returns the entry and direction.
pub fn translate(t: &mut ConnTable, f: &mut [u8], now: u64) -> (ConnId, Dir) {
    let p = parse(f, L3).unwrap();
    let (id, dir) = t.lookup(&p.tuple, now).expect("tracked");
    t.track(id, dir, &p.info, f.len(), now).unwrap();
    let w = t.get(id).target(dir);
    rewrite(f, L3, &p, w.src, w.sport, w.dst, w.dport);
    (id, dir)
}
