//! VXLAN (RFC 7348): the 8-byte header, the outer IPv4 + UDP + VXLAN headers
//! of a tunnel, the UDP source port that spreads flows over ECMP paths, and
//! the ICMP "fragmentation needed" answer for an inner frame too large for
//! the tunnel.
//!
//! Who calls what: the decap stage on the poll threads calls [`parse`] on the
//! UDP payload of each received datagram; the encap stage on output calls
//! [`src_port`] and [`OuterV4::write`] for each frame it tunnels, and
//! [`frag_needed`] for a DF frame that would not fit. The control thread
//! builds one [`OuterV4`] per (tunnel, remote) from configuration and hands it
//! to the poll threads with the rest of the configuration; the poll threads
//! only read it. Nothing here allocates or keeps state.
//!
//! Why the outer header stops at IPv4: the switch sends tunnelled frames
//! through the host's routing with a raw IPv4 socket (`IP_HDRINCL`), so the
//! kernel chooses the route and the device, resolves the next hop and adds
//! the Ethernet header. [`OUTER_LEN`] is what the switch writes; [`OVERHEAD`]
//! (one more Ethernet header) is what the MTU arithmetic subtracts.

use crate::checksum::{checksum, fold, l3_offset, sum};
use crate::wire::{be16, eth, ip_proto, ipv4, ipv6, put_be16, udp};

/// The VXLAN header.
pub const HEADER_LEN: usize = 8;
/// IPv4 (20) + UDP (8) + VXLAN (8): what the raw socket sends in front of
/// the inner frame.
pub const OUTER_LEN: usize = ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + HEADER_LEN;
/// [`OUTER_LEN`] + the outer Ethernet header: inner MTU = underlay MTU - 50.
pub const OVERHEAD: usize = OUTER_LEN + eth::HEADER_LEN;
pub const DEFAULT_PORT: u16 = 4789;
pub const VNI_MAX: u32 = (1 << 24) - 1;

mod field {
    use std::ops::Range;

    /// The VXLAN header: flags (1), reserved (3), VNI (3), reserved (1).
    pub const FLAGS: usize = 0;
    pub const VNI: Range<usize> = 4..7;
    /// The I flag: the VNI is valid.
    pub const FLAG_I: u8 = 0x08;

    /// IPv4 fields that `wire::ipv4` does not name.
    pub const IP_TOS: usize = 1;
    pub const IP_ID: usize = 4;
    pub const IP_TTL: usize = 8;
    pub const IP_ADDRS: Range<usize> = 12..20;
    pub const IP_VERSION_IHL: u8 = 0x45;
    pub const IP_DF: u16 = 0x4000;
    pub const IP_FRAG_OFFSET: u16 = 0x1fff;

    /// The outer headers written by `OuterV4::write`.
    pub const OUTER_IP: Range<usize> = 0..20;
    pub const OUTER_UDP: Range<usize> = 20..36; // UDP header and VXLAN header
    pub const UDP_SRC: usize = 20;
    pub const UDP_DST: usize = 22;
    pub const UDP_LEN: usize = 24;
    pub const UDP_CHECKSUM: usize = 26;
    pub const VXLAN: Range<usize> = 28..36;

    /// ICMP destination unreachable: type, code, checksum, unused, MTU.
    pub const ICMP_TYPE: usize = 0;
    pub const ICMP_CODE: usize = 1;
    pub const ICMP_CHECKSUM: usize = 2;
    pub const ICMP_UNUSED: usize = 4;
    pub const ICMP_MTU: usize = 6;
    pub const ICMP_HEADER_LEN: usize = 8;
}

/// Why a received VXLAN payload is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapError {
    /// Shorter than the 8-byte header.
    Short,
    /// The I flag is clear: no valid VNI.
    BadFlags,
}

impl DecapError {
    pub fn name(self) -> &'static str {
        match self {
            DecapError::Short => "short",
            DecapError::BadFlags => "bad-flags",
        }
    }
}

impl std::fmt::Display for DecapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads the VXLAN header at the front of a UDP payload and returns the VNI.
/// The I flag must be set; every reserved bit is ignored on receive, as
/// RFC 7348 asks.
#[inline]
pub fn parse(payload: &[u8]) -> Result<u32, DecapError> {
    let h = payload.get(..HEADER_LEN).ok_or(DecapError::Short)?;
    if h[field::FLAGS] & field::FLAG_I == 0 {
        return Err(DecapError::BadFlags);
    }
    let v = &h[field::VNI];
    Ok(u32::from_be_bytes([0, v[0], v[1], v[2]]))
}

/// The outer headers of one (tunnel, remote) pair, fixed by configuration
/// and built by the control thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterV4 {
    /// IPv4 source, host byte order; 0 lets the kernel choose. With `csum`
    /// the UDP checksum covers the 0, so a checksummed tunnel needs a source.
    pub src: u32,
    /// IPv4 destination, host byte order.
    pub dst: u32,
    pub dst_port: u16,
    /// Only the low 24 bits are written.
    pub vni: u32,
    pub ttl: u8,
    /// None: copy the inner IPv4 TOS or IPv6 traffic class, ECN bits included
    /// (RFC 6040 normal mode); 0 if the inner frame is not IP.
    pub tos: Option<u8>,
    pub df: bool,
    /// Compute the UDP checksum; false sends 0, the RFC 7348 default.
    pub csum: bool,
}

impl OuterV4 {
    /// Writes IPv4 + UDP + VXLAN headers for `inner`, the inner Ethernet
    /// frame exactly as it follows them on the wire. The IPv4 id is 0 (the
    /// kernel fills it in for `IP_HDRINCL`). Lengths past 65535 are clamped:
    /// such a frame cannot be sent anyway.
    pub fn write(&self, out: &mut [u8; OUTER_LEN], inner: &[u8], src_port: u16) {
        let len16 = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        let udp_len = len16(udp::HEADER_LEN + HEADER_LEN + inner.len());
        out[0] = field::IP_VERSION_IHL;
        out[field::IP_TOS] = self.tos.unwrap_or_else(|| inner_tos(inner));
        put_be16(out, ipv4::TOTAL_LEN, len16(OUTER_LEN + inner.len()));
        put_be16(out, field::IP_ID, 0);
        put_be16(
            out,
            ipv4::FLAGS_FRAG,
            if self.df { field::IP_DF } else { 0 },
        );
        out[field::IP_TTL] = self.ttl;
        out[ipv4::PROTO] = ip_proto::UDP;
        put_be16(out, ipv4::CHECKSUM, 0);
        out[ipv4::SRC..ipv4::SRC + 4].copy_from_slice(&self.src.to_be_bytes());
        out[ipv4::DST..ipv4::DST + 4].copy_from_slice(&self.dst.to_be_bytes());
        let c = checksum(&out[field::OUTER_IP]);
        put_be16(out, ipv4::CHECKSUM, c);

        put_be16(out, field::UDP_SRC, src_port);
        put_be16(out, field::UDP_DST, self.dst_port);
        put_be16(out, field::UDP_LEN, udp_len);
        put_be16(out, field::UDP_CHECKSUM, 0);
        let vx = &mut out[field::VXLAN];
        vx.fill(0);
        vx[field::FLAGS] = field::FLAG_I;
        vx[field::VNI].copy_from_slice(&(self.vni & VNI_MAX).to_be_bytes()[1..]);

        if self.csum {
            let pseudo = sum(&out[field::IP_ADDRS], ip_proto::UDP as u64 + udp_len as u64);
            // The UDP and VXLAN headers are 16 bytes, so `inner` starts on
            // an even offset and the sums chain.
            let s = sum(inner, sum(&out[field::OUTER_UDP], pseudo));
            let c = match !fold(s) {
                0 => 0xffff,
                c => c,
            };
            put_be16(out, field::UDP_CHECKSUM, c);
        }
    }
}

impl OuterV4 {
    /// The headers with every field the configuration fixes written once,
    /// for [`OuterTemplate::write`] on the fast path.
    pub fn template(&self) -> OuterTemplate {
        let mut hdr = [0u8; OUTER_LEN];
        // Lengths 0, TOS 0, checksums 0: what changes per frame is added
        // to `ip_sum` then.
        self.write(&mut hdr, &[], 0);
        hdr[field::IP_TOS] = 0;
        put_be16(&mut hdr, ipv4::TOTAL_LEN, 0);
        put_be16(&mut hdr, ipv4::CHECKSUM, 0);
        put_be16(&mut hdr, field::UDP_LEN, 0);
        put_be16(&mut hdr, field::UDP_CHECKSUM, 0);
        OuterTemplate {
            hdr,
            ip_sum: sum(&hdr[field::OUTER_IP], 0),
            tos: self.tos,
            csum: self.csum,
        }
    }
}

/// An [`OuterV4`] prepared once: per frame only the lengths, the inherited
/// TOS, the source port and the checksums are written, the IPv4 checksum
/// incrementally (VPP's rewrite string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterTemplate {
    hdr: [u8; OUTER_LEN],
    /// Sum of the IPv4 header with the per-frame fields zero.
    ip_sum: u64,
    tos: Option<u8>,
    csum: bool,
}

impl OuterTemplate {
    /// Writes what [`OuterV4::write`] writes, from the template.
    #[inline]
    pub fn write(&self, out: &mut [u8; OUTER_LEN], inner: &[u8], src_port: u16) {
        *out = self.hdr;
        let total = (OUTER_LEN + inner.len()).min(u16::MAX as usize) as u16;
        let udp_len = total.saturating_sub(ipv4::MIN_HEADER_LEN as u16);
        let tos = self.tos.unwrap_or_else(|| inner_tos(inner));
        out[field::IP_TOS] = tos;
        put_be16(out, ipv4::TOTAL_LEN, total);
        let c = !fold(self.ip_sum + total as u64 + tos as u64);
        put_be16(out, ipv4::CHECKSUM, c);
        put_be16(out, field::UDP_SRC, src_port);
        put_be16(out, field::UDP_LEN, udp_len);
        if self.csum {
            let pseudo = sum(&out[field::IP_ADDRS], ip_proto::UDP as u64 + udp_len as u64);
            let s = sum(inner, sum(&out[field::OUTER_UDP], pseudo));
            let c = match !fold(s) {
                0 => 0xffff,
                c => c,
            };
            put_be16(out, field::UDP_CHECKSUM, c);
        }
    }
}

/// The inner IPv4 TOS or IPv6 traffic class (after up to two VLAN tags).
fn inner_tos(inner: &[u8]) -> u8 {
    let Some((l3, et)) = l3_offset(inner) else {
        return 0;
    };
    match (et, inner.get(l3..l3 + 2)) {
        (eth::TYPE_IPV4, Some(&[b0, tos])) if b0 >> 4 == 4 => tos,
        (eth::TYPE_IPV6, Some(&[b0, b1])) if b0 >> 4 == 6 => (b0 << 4) | (b1 >> 4),
        _ => 0,
    }
}

/// The dynamic port range RFC 7348 recommends: 49152..=65535 (14 bits).
const PORT_BASE: u16 = 0xc000;

/// The UDP source port for an inner frame: a hash of its flow, so that ECMP
/// spreads flows but keeps each on one path. Hashes the Ethernet addresses
/// and ethertype; for IPv4/IPv6 (after up to two VLAN tags) the addresses and
/// protocol; for TCP/UDP that is not a fragment, the ports. IPv6 extension
/// headers are not walked. A short frame hashes what is there.
#[inline]
pub fn src_port(inner: &[u8]) -> u16 {
    // Destination MAC + 2 bytes of source, then the rest of it + ethertype.
    let mut h = mix(0x51_7cc1_b727_220a, load(inner, 0, 8));
    h = mix(h, load(inner, 8, 6));
    if let Some((l3, et)) = l3_offset(inner) {
        let ip = &inner[l3..];
        h = mix(h, et as u64);
        match et {
            eth::TYPE_IPV4 => {
                h = mix(h, load(ip, ipv4::SRC, 8));
                let proto = ip.get(ipv4::PROTO).copied().unwrap_or(0);
                h = mix(h, proto as u64);
                let frag = ip.len() > ipv4::FLAGS_FRAG + 1
                    && be16(ip, ipv4::FLAGS_FRAG) & ipv4::FRAG_MASK != 0;
                let ihl = ip.first().map_or(0, |b| (b & 0x0f) as usize * 4);
                if !frag && (proto == ip_proto::TCP || proto == ip_proto::UDP) {
                    h = mix(h, load(ip, ihl, 4));
                }
            }
            eth::TYPE_IPV6 => {
                for off in (ipv6::SRC..ipv6::DST + 16).step_by(8) {
                    h = mix(h, load(ip, off, 8));
                }
                let proto = ip.get(ipv6::NEXT_HEADER).copied().unwrap_or(0);
                h = mix(h, proto as u64);
                if proto == ip_proto::TCP || proto == ip_proto::UDP {
                    h = mix(h, load(ip, ipv6::HEADER_LEN, 4));
                }
            }
            _ => {}
        }
    }
    PORT_BASE | (finish(h) >> 50) as u16
}

/// Up to 8 bytes at `off`, big-endian; bytes past the end read as 0.
#[inline]
fn load(b: &[u8], off: usize, n: usize) -> u64 {
    if let Some(s) = b.get(off..off + n) {
        return s.iter().fold(0, |w, &x| (w << 8) | x as u64);
    }
    (off..off + n).fold(0, |w, i| (w << 8) | b.get(i).copied().unwrap_or(0) as u64)
}

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

/// The murmur3 64-bit finaliser: every input bit reaches the top bits.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMP errors (RFC 1122 3.2.2: never answered with another error).
const ICMP_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// Types above this are unknown; Linux does not answer them either.
const ICMP_MAX_TYPE: u8 = 18;
/// The largest ICMP error datagram (RFC 1812 4.3.2.3, Linux `icmp_send`).
const ICMP_MAX_DATAGRAM: usize = 576;
/// Linux: `(tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL`.
const ICMP_TOS_MASK: u8 = 0x1e;
const ICMP_TOS_PREC: u8 = 0xc0;
const ICMP_TTL: u8 = 64;

/// A single host: not 0, loopback, multicast, class E or broadcast
/// (RFC 1812 4.3.2.7). Used for both addresses: the answer swaps them.
#[inline]
fn is_unicast(a: u32) -> bool {
    a != 0 && a >> 24 != 127 && a >> 28 < 0xe
}

/// Builds an ICMPv4 "fragmentation needed" (type 3 code 4) answering
/// `frame`, an untagged inner Ethernet frame too large for the tunnel, with
/// next-hop MTU `mtu`; returns the answer's length in `out`.
///
/// None unless `frame` is IPv4 with DF set, not a non-first fragment, not an
/// ICMP error (or unknown ICMP type, or one too short to tell), and both its
/// addresses are single hosts and both MACs unicast (the answer swaps them,
/// and RFC 1122 forbids answering broadcasts). None also when `out` is
/// shorter than the answer (14 + 576 always suffices). A total length that
/// lies is trimmed to what the frame holds.
pub fn frag_needed(frame: &[u8], mtu: u16, out: &mut [u8]) -> Option<usize> {
    let (dst_mac, src_mac) = (frame.get(eth::DST)?, frame.get(eth::SRC)?);
    let ip = frame.get(eth::HEADER_LEN..)?;
    if be16(frame, eth::ETHERTYPE.start) != eth::TYPE_IPV4
        || eth::is_multicast(dst_mac)
        || eth::is_multicast(src_mac)
        || ip.len() < ipv4::MIN_HEADER_LEN
        || ip[0] >> 4 != 4
    {
        return None;
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = be16(ip, ipv4::TOTAL_LEN) as usize;
    let flags = be16(ip, ipv4::FLAGS_FRAG);
    if ihl < ipv4::MIN_HEADER_LEN
        || ihl > ip.len()
        || total < ihl
        || flags & field::IP_DF == 0
        || flags & field::IP_FRAG_OFFSET != 0
    {
        return None;
    }
    let datagram = &ip[..total.min(ip.len())];
    let addr = |off: usize| u32::from_be_bytes([ip[off], ip[off + 1], ip[off + 2], ip[off + 3]]);
    if !is_unicast(addr(ipv4::SRC)) || !is_unicast(addr(ipv4::DST)) {
        return None;
    }
    if ip[ipv4::PROTO] == ip_proto::ICMP {
        let t = *datagram.get(ihl)?;
        if t > ICMP_MAX_TYPE || ICMP_ERRORS.contains(&t) {
            return None;
        }
    }

    let head = ipv4::MIN_HEADER_LEN + field::ICMP_HEADER_LEN;
    let quote = datagram.len().min(ICMP_MAX_DATAGRAM - head);
    let len = eth::HEADER_LEN + head + quote;
    let out = out.get_mut(..len)?;
    out[eth::DST].copy_from_slice(src_mac);
    out[eth::SRC].copy_from_slice(dst_mac);
    put_be16(out, eth::ETHERTYPE.start, eth::TYPE_IPV4);

    let (hdr, icmp) = out[eth::HEADER_LEN..].split_at_mut(ipv4::MIN_HEADER_LEN);
    hdr.fill(0);
    hdr[0] = field::IP_VERSION_IHL;
    hdr[field::IP_TOS] = (ip[field::IP_TOS] & ICMP_TOS_MASK) | ICMP_TOS_PREC;
    put_be16(hdr, ipv4::TOTAL_LEN, (head + quote) as u16); // at most 576
    hdr[field::IP_TTL] = ICMP_TTL;
    hdr[ipv4::PROTO] = ip_proto::ICMP;
    hdr[ipv4::SRC..ipv4::SRC + 4].copy_from_slice(&ip[ipv4::DST..ipv4::DST + 4]);
    hdr[ipv4::DST..ipv4::DST + 4].copy_from_slice(&ip[ipv4::SRC..ipv4::SRC + 4]);
    let c = checksum(hdr);
    put_be16(hdr, ipv4::CHECKSUM, c);

    icmp[field::ICMP_TYPE] = ICMP_DEST_UNREACH;
    icmp[field::ICMP_CODE] = ICMP_FRAG_NEEDED;
    put_be16(icmp, field::ICMP_CHECKSUM, 0);
    put_be16(icmp, field::ICMP_UNUSED, 0);
    put_be16(icmp, field::ICMP_MTU, mtu);
    icmp[field::ICMP_HEADER_LEN..].copy_from_slice(&datagram[..quote]);
    let c = checksum(icmp);
    put_be16(icmp, field::ICMP_CHECKSUM, c);
    Some(len)
}

#[cfg(test)]
mod tests;
