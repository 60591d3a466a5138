//! ICMP errors and NAT. An error (destination unreachable, including
//! "fragmentation needed" that path MTU discovery depends on, time
//! exceeded, parameter problem) quotes the start of the packet that caused
//! it. Behind NAT that quote shows the translated addresses and ports, so
//! the error must be translated too, inside and out, or the sender's
//! socket never learns of it.

use super::conn::ConnId;
use super::parse::{icmp_type, parse, L4Info, Parsed, ICMP_HEADER_LEN};
use super::table::ConnTable;
use super::translate::{be32, put_be32, ICMP_CHECKSUM, ICMP_ECHO_ID, TCP_CHECKSUM, UDP_CHECKSUM};
use super::Dir;
use crate::checksum::{checksum, update16, update32};
use crate::wire::{be16, eth, ip_proto, ipv4, put_be16};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorError {
    /// `parsed` is not an ICMP error (or does not fit the frame).
    NotIcmpError,
    /// The quoted packet belongs to no live connection.
    NotTracked,
}

/// What [`rewrite_icmp_error`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpNat {
    /// The connection the quoted packet belongs to.
    pub conn: ConnId,
    /// The direction the error travels in (opposite to the quoted packet).
    pub dir: Dir,
    /// The error's destination after translation (for routing it).
    pub dst: u32,
}

/// Writes `new` at `off` and keeps the enclosing ICMP checksum in step.
#[inline]
fn set16(frame: &mut [u8], off: usize, new: u16, icmp_sum: &mut u16) {
    let old = be16(frame, off);
    if old != new {
        *icmp_sum = update16(*icmp_sum, old, new);
        put_be16(frame, off, new);
    }
}

#[inline]
fn set32(frame: &mut [u8], off: usize, new: u32, icmp_sum: &mut u16) {
    set16(frame, off, (new >> 16) as u16, icmp_sum);
    set16(frame, off + 2, new as u16, icmp_sum);
}

/// Translates an ICMP error about a tracked connection. The quoted packet
/// went the opposite way to the error, so its tuple reversed finds the
/// entry and the direction `dir` the error travels in; the quote is then
/// made to look as it did on the side the error goes to, the outer
/// destination becomes the quoted packet's source, and the outer source is
/// translated when the error comes from the peer itself (not from a router
/// on the path). Checksums: the quoted IP header's, the quoted L4 one when
/// it was quoted (UDP always; TCP when at least 18 bytes are), the ICMP
/// checksum and the outer IP header's, all incrementally.
pub fn rewrite_icmp_error(
    frame: &mut [u8],
    l3: usize,
    parsed: &Parsed,
    table: &ConnTable,
    now_ms: u64,
) -> Result<IcmpNat, IcmpErrorError> {
    let L4Info::IcmpError(emb) = parsed.info.l4 else {
        return Err(IcmpErrorError::NotIcmpError);
    };
    let l4 = l3.saturating_add(parsed.info.ihl as usize);
    let inner = l4.saturating_add(ICMP_HEADER_LEN);
    let inner_l4 = inner.saturating_add(emb.ihl as usize);
    let quoted = (emb.quoted as usize).min(frame.len().saturating_sub(inner_l4));
    if emb.ihl < ipv4::MIN_HEADER_LEN as u8 || quoted < 8 {
        return Err(IcmpErrorError::NotIcmpError);
    }
    let (id, dir) = table
        .lookup(&emb.tuple.reversed(), now_ms)
        .ok_or(IcmpErrorError::NotTracked)?;
    let conn = table.get(id);
    // What the quoted packet (direction `dir.opposite()`) looks like on the
    // side the error is going to.
    let want = match dir {
        Dir::Reply => conn.orig,
        Dir::Orig => conn.reply,
    };
    let proto = emb.tuple.proto;
    let mut icmp_sum = be16(frame, l4 + ICMP_CHECKSUM);

    // The quoted L4 checksum, when present and used.
    let l4_sum_at = match proto {
        ip_proto::UDP if be16(frame, inner_l4 + UDP_CHECKSUM) != 0 => Some(UDP_CHECKSUM),
        ip_proto::TCP if quoted >= TCP_CHECKSUM + 2 => Some(TCP_CHECKSUM),
        ip_proto::ICMP => Some(ICMP_CHECKSUM),
        _ => None,
    };
    let pseudo = proto != ip_proto::ICMP;
    let mut l4c = l4_sum_at.map_or(0, |o| be16(frame, inner_l4 + o));
    let mut ipc = be16(frame, inner + ipv4::CHECKSUM);
    for (off, new) in [(ipv4::SRC, want.src), (ipv4::DST, want.dst)] {
        let old = be32(frame, inner + off);
        if old != new {
            ipc = update32(ipc, old, new);
            if pseudo {
                l4c = update32(l4c, old, new);
            }
            set32(frame, inner + off, new, &mut icmp_sum);
        }
    }
    set16(frame, inner + ipv4::CHECKSUM, ipc, &mut icmp_sum);
    let ports: &[(usize, u16)] = if proto == ip_proto::ICMP {
        &[(ICMP_ECHO_ID, want.sport)]
    } else {
        &[(0, want.sport), (2, want.dport)]
    };
    for &(off, new) in ports {
        let old = be16(frame, inner_l4 + off);
        if old != new {
            l4c = update16(l4c, old, new);
            set16(frame, inner_l4 + off, new, &mut icmp_sum);
        }
    }
    if let Some(off) = l4_sum_at {
        if l4c == 0 && proto == ip_proto::UDP {
            l4c = 0xffff;
        }
        set16(frame, inner_l4 + off, l4c, &mut icmp_sum);
    }
    put_be16(frame, l4 + ICMP_CHECKSUM, icmp_sum);

    // The outer header: to the quoted packet's sender; from the peer's
    // translated address if the peer sent it.
    let old_src = be32(frame, l3 + ipv4::SRC);
    let new_src = if old_src == emb.tuple.dst {
        want.dst
    } else {
        old_src
    };
    let mut c = be16(frame, l3 + ipv4::CHECKSUM);
    for (off, new) in [(ipv4::SRC, new_src), (ipv4::DST, want.src)] {
        let old = be32(frame, l3 + off);
        if old != new {
            c = update32(c, old, new);
            put_be32(frame, l3 + off, new);
        }
    }
    put_be16(frame, l3 + ipv4::CHECKSUM, c);
    Ok(IcmpNat {
        conn: id,
        dir,
        dst: want.src,
    })
}

/// Room [`time_exceeded`] needs at most for an `l3` of up to 22 (two
/// VLAN tags): L2, IPv4 and ICMP headers, a quoted 60-byte IP header and
/// 8 bytes of its payload.
pub const TIME_EXCEEDED_MAX: usize =
    eth::HEADER_LEN + 2 * 4 + ipv4::MIN_HEADER_LEN + ICMP_HEADER_LEN + 60 + QUOTE_PAYLOAD;

/// TTL of the errors we generate.
const TTL: u8 = 64;
/// TOS of ICMP errors (internetwork control, as Linux sends them).
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
/// Bytes of the offending datagram's payload quoted (RFC 792).
const QUOTE_PAYLOAD: usize = 8;

/// Builds in `out` an ICMP time exceeded (type 11, code 0) from `src_ip`
/// for the packet at `l3` in `frame`, whose TTL ran out: the L2 header of
/// `frame` (VLAN tags kept) with the MACs swapped, an IPv4 header to the
/// packet's source, the ICMP header, and the packet's IP header plus 8
/// bytes. Returns the length, or `None` when `out` is too small, the
/// packet is malformed, or RFC 1812 forbids an error: the packet is itself
/// an ICMP error or a non-first fragment, or was sent to or from a
/// broadcast or multicast address.
pub fn time_exceeded(frame: &[u8], l3: usize, src_ip: u32, out: &mut [u8]) -> Option<usize> {
    let p = parse(frame, l3).ok()?;
    let t = &p.tuple;
    let group = |a: u32| a >> 28 == 0xe || a == u32::MAX;
    if l3 < eth::HEADER_LEN
        || eth::is_multicast(&frame[eth::DST])
        || matches!(p.info.l4, L4Info::IcmpError(_))
        || p.info.is_later_fragment()
        || group(t.src)
        || group(t.dst)
        || t.src == 0
    {
        return None;
    }
    let ihl = p.info.ihl as usize;
    let quote = (ihl + QUOTE_PAYLOAD).min(ihl + p.info.l4_len as usize);
    let ip_len = ipv4::MIN_HEADER_LEN + ICMP_HEADER_LEN + quote;
    let len = l3 + ip_len;
    let out = out.get_mut(..len)?;
    out[..l3].copy_from_slice(&frame[..l3]);
    out[eth::DST].copy_from_slice(&frame[eth::SRC]);
    out[eth::SRC].copy_from_slice(&frame[eth::DST]);

    let ip = &mut out[l3..];
    ip[..ipv4::MIN_HEADER_LEN].fill(0);
    ip[0] = 0x45;
    ip[1] = TOS_INTERNETWORK_CONTROL;
    put_be16(ip, ipv4::TOTAL_LEN, ip_len as u16);
    ip[8] = TTL;
    ip[ipv4::PROTO] = ip_proto::ICMP;
    put_be32(ip, ipv4::SRC, src_ip);
    put_be32(ip, ipv4::DST, t.src);
    let c = checksum(&ip[..ipv4::MIN_HEADER_LEN]);
    put_be16(ip, ipv4::CHECKSUM, c);

    let icmp = &mut ip[ipv4::MIN_HEADER_LEN..];
    icmp[..ICMP_HEADER_LEN].fill(0);
    icmp[0] = icmp_type::TIME_EXCEEDED;
    icmp[ICMP_HEADER_LEN..].copy_from_slice(&frame[l3..l3 + quote]);
    let c = checksum(icmp);
    put_be16(icmp, ICMP_CHECKSUM, c);
    Some(len)
}
