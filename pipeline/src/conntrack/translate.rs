//! Header rewriting for NAT, with incremental checksum updates only
//! (RFC 1624): a translated packet costs a few adds per changed field,
//! whatever its length, and a checksum that was wrong stays wrong (we
//! never launder a corrupted packet into a valid one).

use super::parse::{L4Info, Parsed};
use crate::checksum::{icmp_update_fixup, update16, update32};
use crate::wire::{be16, ipv4, put_be16};

pub(crate) const TCP_CHECKSUM: usize = 16;
pub(crate) const UDP_CHECKSUM: usize = 6;
pub(crate) const ICMP_CHECKSUM: usize = 2;
pub(crate) const ICMP_ECHO_ID: usize = 4;
const TTL: usize = 8;

#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
pub(crate) fn put_be32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// The L4 checksum a rewrite must keep in step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum L4Sum {
    /// Covers the pseudo-header (addresses) and the ports.
    TcpUdp,
    /// ICMP: covers the echo identifier, not the addresses.
    Icmp,
    None,
}

/// Rewrites the packet at `l3` (parsed by [`parse`](super::parse) from
/// this frame) so that it carries `src:sport -> dst:dport`; fields already
/// equal are left alone. Updates the IPv4 header checksum and the TCP or
/// UDP checksum (pseudo-header and ports; a UDP checksum of 0, meaning
/// none, stays 0, and an updated one that comes out 0 is sent as 0xffff),
/// or for ICMP echo the identifier (taken from `sport`) and the ICMP
/// checksum. A non-first fragment has no L4 header: only its IP header is
/// rewritten; the first fragment's L4 checksum, which covers the whole
/// datagram, takes the pseudo-header change. A `parsed` that does not fit
/// `frame` leaves it untouched.
pub fn rewrite(
    frame: &mut [u8],
    l3: usize,
    parsed: &Parsed,
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
) {
    let info = &parsed.info;
    let l4 = l3.saturating_add(info.ihl as usize);
    let (kind, csum_at, need) = match info.l4 {
        L4Info::Tcp(_) => (L4Sum::TcpUdp, TCP_CHECKSUM, 20),
        L4Info::Udp { .. } => (L4Sum::TcpUdp, UDP_CHECKSUM, 8),
        L4Info::IcmpEcho { .. } => (L4Sum::Icmp, ICMP_CHECKSUM, 8),
        _ => (L4Sum::None, 0, 0),
    };
    if info.ihl < ipv4::MIN_HEADER_LEN as u8 || frame.len() < l4.saturating_add(need) {
        return;
    }
    let udp = matches!(info.l4, L4Info::Udp { .. });
    // A UDP checksum of zero means "not computed": leave it so.
    let keep_sum = kind != L4Sum::None && !(udp && be16(frame, l4 + UDP_CHECKSUM) == 0);
    let mut ipc = be16(frame, l3 + ipv4::CHECKSUM);
    let mut l4c = if keep_sum {
        be16(frame, l4 + csum_at)
    } else {
        0
    };
    for (off, new) in [(ipv4::SRC, src), (ipv4::DST, dst)] {
        let old = be32(frame, l3 + off);
        if old != new {
            ipc = update32(ipc, old, new);
            if kind == L4Sum::TcpUdp {
                l4c = update32(l4c, old, new);
            }
            put_be32(frame, l3 + off, new);
        }
    }
    put_be16(frame, l3 + ipv4::CHECKSUM, ipc);
    let ports: &[(usize, u16)] = match kind {
        L4Sum::TcpUdp => &[(0, sport), (2, dport)],
        L4Sum::Icmp => &[(ICMP_ECHO_ID, sport)],
        L4Sum::None => &[],
    };
    for &(off, new) in ports {
        let old = be16(frame, l4 + off);
        if old != new {
            l4c = update16(l4c, old, new);
            put_be16(frame, l4 + off, new);
        }
    }
    if keep_sum {
        if l4c == 0 && udp {
            l4c = 0xffff;
        }
        if kind == L4Sum::Icmp {
            let end = l4.saturating_add(info.l4_len as usize).min(frame.len());
            l4c = icmp_update_fixup(&frame[l4..end], ICMP_CHECKSUM, l4c);
        }
        put_be16(frame, l4 + csum_at, l4c);
    }
}

/// Decrements the TTL of the IPv4 packet at `l3`, updating the header
/// checksum. Returns false, changing nothing, when the TTL was 0 or 1 (the
/// caller answers with [`time_exceeded`](super::time_exceeded)) or when
/// there is no IPv4 header there.
pub fn dec_ttl(frame: &mut [u8], l3: usize) -> bool {
    let Some(ip) = frame.get_mut(l3..l3.saturating_add(ipv4::MIN_HEADER_LEN)) else {
        return false;
    };
    if ip.len() < ipv4::MIN_HEADER_LEN || ip[TTL] <= 1 {
        return false;
    }
    let old = be16(ip, TTL);
    ip[TTL] -= 1;
    let c = update16(be16(ip, ipv4::CHECKSUM), old, be16(ip, TTL));
    put_be16(ip, ipv4::CHECKSUM, c);
    true
}
