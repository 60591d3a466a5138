//! VXLAN (RFC 7348) on the wire: the 8-byte header, the outer IPv4 and UDP
//! headers in front of it, the per-flow UDP source port, and the ICMP
//! "fragmentation needed" a switch sends back for a frame too big for the
//! tunnel.
//!
//! Who calls what: the decapsulation stage ([`crate::tunnel::VxlanDecap`])
//! reads headers with [`parse`] on the poll threads; the output step writes
//! [`OuterV4`] templates, which the control thread builds from each tunnel
//! port's configuration, in front of each frame as it is copied to the
//! underlay. The outer headers stop at IPv4: the switch sends through the
//! host's routing with a raw IPv4 socket, so the kernel writes the Ethernet
//! header of the next hop it resolved.

use crate::checksum::{checksum, fold, sum};
use crate::parse::l3_offset;
use crate::wire::{be16, eth, ip_proto, ipv4, put_be16};

/// The VXLAN header.
pub const HEADER_LEN: usize = 8;
/// IPv4 (20) + UDP (8) + VXLAN (8): what goes in front of the inner frame.
pub const OUTER_LEN: usize = 36;
/// [`OUTER_LEN`] plus the outer Ethernet header: inner MTU = underlay MTU
/// less this.
pub const OVERHEAD: usize = 50;
pub const DEFAULT_PORT: u16 = 4789;
pub const VNI_MAX: u32 = (1 << 24) - 1;

mod field {
    use std::ops::Range;
    /// Flags byte: only the I bit (VNI present) has a meaning.
    pub const FLAGS: usize = 0;
    pub const FLAG_I: u8 = 0x08;
    /// 24-bit VNI; byte 7 is reserved.
    pub const VNI: Range<usize> = 4..7;

    // Outer headers, as offsets into the 36 bytes.
    pub const IP_TOS: usize = 1;
    pub const IP_TOTAL_LEN: usize = 2;
    pub const IP_FLAGS: usize = 6;
    pub const IP_TTL: usize = 8;
    pub const IP_PROTO: usize = 9;
    pub const IP_CHECKSUM: usize = 10;
    pub const IP_SRC: Range<usize> = 12..16;
    pub const IP_DST: Range<usize> = 16..20;
    pub const UDP: usize = 20;
    pub const UDP_SRC: usize = 20;
    pub const UDP_DST: usize = 22;
    pub const UDP_LEN: usize = 24;
    pub const UDP_CHECKSUM: usize = 26;
    pub const VXLAN: usize = 28;
    /// The DF bit in the flags/fragment word.
    pub const DF: u16 = 0x4000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapError {
    /// Shorter than the VXLAN header.
    Short,
    /// The I flag is clear: no VNI.
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

/// Reads the VXLAN header at the front of a UDP payload and returns the
/// VNI. Reserved bits are ignored, as RFC 7348 asks of a receiver.
#[inline]
pub fn parse(payload: &[u8]) -> Result<u32, DecapError> {
    let Some(h) = payload.get(..HEADER_LEN) else {
        return Err(DecapError::Short);
    };
    if h[field::FLAGS] & field::FLAG_I == 0 {
        return Err(DecapError::BadFlags);
    }
    let v = &h[field::VNI];
    Ok(u32::from_be_bytes([0, v[0], v[1], v[2]]))
}

/// The outer headers of one (tunnel port, remote), fixed by configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterV4 {
    /// Source address (host byte order); 0 lets the kernel choose.
    pub src: u32,
    /// The remote VTEP (host byte order).
    pub dst: u32,
    pub dst_port: u16,
    pub vni: u32,
    pub ttl: u8,
    /// `None`: the inner IPv4 TOS or IPv6 traffic class (0 for non-IP).
    pub tos: Option<u8>,
    pub df: bool,
    /// Compute the UDP checksum (otherwise 0, RFC 7348's default).
    pub csum: bool,
}

impl OuterV4 {
    /// Writes the IPv4, UDP and VXLAN headers for `inner`, the frame that
    /// follows them, with UDP source port `src_port`.
    #[inline]
    pub fn write(&self, out: &mut [u8; OUTER_LEN], inner: &[u8], src_port: u16) {
        let udp_len = (OUTER_LEN - field::UDP + inner.len()) as u16;
        let total = udp_len.wrapping_add(field::UDP as u16);
        out[0] = 0x45;
        out[field::IP_TOS] = self.tos.unwrap_or_else(|| inner_tos(inner));
        put_be16(out, field::IP_TOTAL_LEN, total);
        put_be16(out, 4, 0); // identification
        put_be16(out, field::IP_FLAGS, if self.df { field::DF } else { 0 });
        out[field::IP_TTL] = self.ttl;
        out[field::IP_PROTO] = ip_proto::UDP;
        put_be16(out, field::IP_CHECKSUM, 0);
        out[field::IP_SRC].copy_from_slice(&self.src.to_be_bytes());
        out[field::IP_DST].copy_from_slice(&self.dst.to_be_bytes());
        let c = checksum(&out[..field::UDP]);
        put_be16(out, field::IP_CHECKSUM, c);
        put_be16(out, field::UDP_SRC, src_port);
        put_be16(out, field::UDP_DST, self.dst_port);
        put_be16(out, field::UDP_LEN, udp_len);
        put_be16(out, field::UDP_CHECKSUM, 0);
        let v = self.vni.to_be_bytes();
        out[field::VXLAN..].copy_from_slice(&[field::FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]);
        if self.csum {
            let pseudo = sum(
                &out[field::IP_SRC.start..field::IP_DST.end],
                17 + udp_len as u64,
            );
            let s = sum(inner, sum(&out[field::UDP..], pseudo));
            let c = !fold(s);
            put_be16(out, field::UDP_CHECKSUM, if c == 0 { 0xffff } else { c });
        }
    }
}

/// The TOS (IPv4) or traffic class (IPv6) of an inner frame, 0 otherwise.
#[inline]
fn inner_tos(inner: &[u8]) -> u8 {
    match l3_offset(inner) {
        Some((l3, eth::TYPE_IPV4)) => inner.get(l3 + 1).copied().unwrap_or(0),
        Some((l3, eth::TYPE_IPV6)) => match inner.get(l3..l3 + 2) {
            Some(b) => (b[0] << 4) | (b[1] >> 4),
            None => 0,
        },
        _ => 0,
    }
}

/// The UDP source port for `inner`: a hash of its flow, so ECMP spreads
/// flows and keeps each on one path, in 49152..=65535 (RFC 7348). Hashes
/// the MACs and ethertype, and for IP the addresses and protocol, and for
/// TCP/UDP that is not a fragment the ports. Never reads past the frame.
#[inline]
pub fn src_port(inner: &[u8]) -> u16 {
    let word = |at: usize, n: usize| -> u64 {
        let mut b = [0u8; 8];
        if let Some(s) = inner.get(at..at + n) {
            b[..n].copy_from_slice(s);
        }
        u64::from_le_bytes(b)
    };
    let mut h = mix(0x9e37_79b9_7f4a_7c15, word(0, 8));
    h = mix(h, word(8, 6));
    if let Some((l3, et)) = l3_offset(inner) {
        match et {
            eth::TYPE_IPV4 if inner.len() >= l3 + ipv4::MIN_HEADER_LEN => {
                let proto = inner[l3 + ipv4::PROTO];
                h = mix(h, word(l3 + ipv4::SRC, 8) ^ ((proto as u64) << 56));
                let ihl = (inner[l3] & 0x0f) as usize * 4;
                let frag = be16(inner, l3 + ipv4::FLAGS_FRAG) & ipv4::FRAG_MASK != 0;
                if !frag && (proto == ip_proto::TCP || proto == ip_proto::UDP) {
                    h = mix(h, word(l3 + ihl, 4));
                }
            }
            eth::TYPE_IPV6 => {
                let proto = inner.get(l3 + 6).copied().unwrap_or(0);
                h = mix(h, word(l3 + 8, 8) ^ word(l3 + 16, 8));
                h = mix(
                    h,
                    word(l3 + 24, 8) ^ word(l3 + 32, 8) ^ ((proto as u64) << 56),
                );
                if proto == ip_proto::TCP || proto == ip_proto::UDP {
                    h = mix(h, word(l3 + 40, 4));
                }
            }
            other => h = mix(h, other as u64),
        }
    }
    0xc000 | (h >> 50) as u16
}

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(29)
}

/// How much of the original datagram an ICMP error quotes: enough to keep
/// the error's IP datagram within 576 bytes, as Linux does.
const ICMP_ERROR_MAX: usize = 576;
const ICMP_HEADER_LEN: usize = 8;

/// Writes into `out` an ICMPv4 "destination unreachable, fragmentation
/// needed" (type 3, code 4) with next-hop MTU `mtu`, answering `frame`, an
/// untagged Ethernet frame too big for a tunnel. The answer goes back to
/// the sender as if from the original destination. Returns its length, or
/// `None` when no answer is due: not IPv4, DF clear, a non-first fragment,
/// an ICMP error itself, a source that is not unicast, or a malformed
/// header. `out` must hold 14 + 576 bytes.
pub fn frag_needed(frame: &[u8], mtu: u16, out: &mut [u8]) -> Option<usize> {
    if be16(frame.get(..eth::HEADER_LEN)?, eth::ETHERTYPE.start) != eth::TYPE_IPV4 {
        return None;
    }
    let ip = &frame[eth::HEADER_LEN..];
    if ip.len() < ipv4::MIN_HEADER_LEN || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let flags = be16(ip, ipv4::FLAGS_FRAG);
    if ihl < ipv4::MIN_HEADER_LEN || ip.len() < ihl || flags & field::DF == 0 || flags & 0x1fff != 0
    {
        return None;
    }
    let (src, dst) = (&ip[ipv4::SRC..ipv4::SRC + 4], &ip[ipv4::DST..ipv4::DST + 4]);
    if src[0] >= 224 || src == [0; 4] || src == [255; 4] {
        return None;
    }
    if ip[ipv4::PROTO] == ip_proto::ICMP {
        match ip.get(ihl) {
            Some(3 | 4 | 5 | 11 | 12) | None => return None,
            _ => {}
        }
    }
    let quote = ip
        .len()
        .min(ICMP_ERROR_MAX - ipv4::MIN_HEADER_LEN - ICMP_HEADER_LEN);
    let len = eth::HEADER_LEN + ipv4::MIN_HEADER_LEN + ICMP_HEADER_LEN + quote;
    let out = out.get_mut(..len)?;
    out[eth::DST].copy_from_slice(&frame[eth::SRC]);
    out[eth::SRC].copy_from_slice(&frame[eth::DST]);
    put_be16(out, eth::ETHERTYPE.start, eth::TYPE_IPV4);
    let (hdr, icmp) = out[eth::HEADER_LEN..].split_at_mut(ipv4::MIN_HEADER_LEN);
    hdr[..12].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, ip_proto::ICMP, 0, 0]);
    hdr[ipv4::SRC..ipv4::SRC + 4].copy_from_slice(dst);
    hdr[ipv4::DST..ipv4::DST + 4].copy_from_slice(src);
    put_be16(
        hdr,
        ipv4::TOTAL_LEN,
        (ipv4::MIN_HEADER_LEN + ICMP_HEADER_LEN + quote) as u16,
    );
    let c = checksum(hdr);
    put_be16(hdr, ipv4::CHECKSUM, c);
    icmp[..ICMP_HEADER_LEN].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
    put_be16(icmp, 6, mtu);
    icmp[ICMP_HEADER_LEN..].copy_from_slice(&ip[..quote]);
    let c = checksum(icmp);
    put_be16(icmp, 2, c);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Ether/IPv4(tos 0x28, DF)/UDP 1234->5678 "hello vxlan", from scapy.
    const INNER: &str = "02000000000202000000000108004528002700014000401125d30a6400010a64000204d2162e00133b3168656c6c6f2076786c616e";
    /// scapy: IP(src=10.99.0.1, dst=10.99.0.2, DF, ttl 64, id 0, tos 0) /
    /// UDP(sport 50000, dport 4789, chksum 0) / VXLAN(vni 5000), 36 bytes.
    const OUTER_PLAIN: &str =
        "4500005900004000401125cc0a6300010a630002c35012b5004500000800000000138800";
    /// The same with ttl 9, tos 0x28, VNI 0xabcdef and the UDP checksum.
    const OUTER_CSUM: &str =
        "452800590000400009115ca40a6300010a630002c35012b500457ab308000000abcdef00";

    fn outer(vni: u32, ttl: u8, tos: Option<u8>, csum: bool) -> OuterV4 {
        OuterV4 {
            src: 0x0a63_0001,
            dst: 0x0a63_0002,
            dst_port: DEFAULT_PORT,
            vni,
            ttl,
            tos,
            df: true,
            csum,
        }
    }

    #[test]
    fn headers_match_scapy() {
        let inner = hex(INNER);
        let mut out = [0u8; OUTER_LEN];
        outer(5000, 64, Some(0), false).write(&mut out, &inner, 50000);
        assert_eq!(out.to_vec(), hex(OUTER_PLAIN));
        // TOS inherited from the inner IPv4 header, checksum computed.
        outer(0xab_cdef, 9, None, true).write(&mut out, &inner, 50000);
        assert_eq!(out.to_vec(), hex(OUTER_CSUM));
    }

    #[test]
    fn parse_reads_the_vni_and_ignores_reserved_bits() {
        assert_eq!(parse(&[0x08, 0, 0, 0, 0, 0x13, 0x88, 0]), Ok(5000));
        assert_eq!(parse(&[0x08, 0, 0, 0, 0, 0, 0, 0]), Ok(0));
        assert_eq!(
            parse(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(VNI_MAX)
        );
        assert_eq!(
            parse(&[0x00, 0, 0, 0, 0, 0, 1, 0]),
            Err(DecapError::BadFlags)
        );
        assert_eq!(parse(&[0x08, 0, 0, 0, 0, 0, 1]), Err(DecapError::Short));
        assert_eq!(DecapError::Short.name(), "short");
    }

    #[test]
    fn the_source_port_follows_the_flow() {
        let a = hex(INNER);
        let p = src_port(&a);
        assert!(p >= 49152);
        assert_eq!(p, src_port(&a));
        let mut ports = std::collections::BTreeSet::new();
        for sport in 0..64u16 {
            let mut f = a.clone();
            f[34..36].copy_from_slice(&sport.to_be_bytes());
            ports.insert(src_port(&f));
        }
        assert!(ports.len() > 32, "flows should spread: {}", ports.len());
        for n in 0..a.len() {
            assert!(src_port(&a[..n]) >= 49152);
        }
    }

    /// scapy: Ether/IP(id 7, DF, ttl 64)/ICMP echo(id 1, seq 1) + 1472 "x".
    const BIG_HEAD: &str =
        "0200000000020200000000010800450005dc00074000400120500a6400010a64000208009da300010001";
    /// scapy's answer: Ether/IP(src/dst swapped, ttl 64, id 0)/ICMP(3, 4,
    /// nexthopmtu 1450) quoting the first 548 bytes; its first 42 bytes
    /// (the ICMP checksum covers the quote).
    const ANSWER_HEAD: &str =
        "02000000000102000000000208004500024000000000400163f30a6400020a6400010304f751000005aa";

    fn big() -> Vec<u8> {
        let mut f = hex(BIG_HEAD);
        f.resize(1514, b'x');
        f
    }

    #[test]
    fn frag_needed_matches_scapy() {
        let f = big();
        let mut out = [0u8; 14 + 576];
        let n = frag_needed(&f, 1450, &mut out).expect("an answer");
        assert_eq!(n, 590);
        assert_eq!(out[..42].to_vec(), hex(ANSWER_HEAD));
        assert_eq!(&out[42..n], &f[14..14 + 548]);
    }

    #[test]
    fn frag_needed_only_when_due() {
        let mut out = [0u8; 14 + 576];
        let mut no_df = big();
        no_df[20] = 0;
        assert_eq!(frag_needed(&no_df, 1450, &mut out), None);
        let mut arp = big();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(frag_needed(&arp, 1450, &mut out), None);
        let mut later_fragment = big();
        later_fragment[21] = 0x10;
        assert_eq!(frag_needed(&later_fragment, 1450, &mut out), None);
        let mut icmp_error = big();
        icmp_error[34] = 3;
        assert_eq!(frag_needed(&icmp_error, 1450, &mut out), None);
        let mut multicast_src = big();
        multicast_src[26] = 224;
        assert_eq!(frag_needed(&multicast_src, 1450, &mut out), None);
        let mut lying_ihl = big();
        lying_ihl[14] = 0x4f;
        assert!(frag_needed(&lying_ihl, 1450, &mut out).is_some());
        lying_ihl[14] = 0x41;
        assert_eq!(frag_needed(&lying_ihl, 1450, &mut out), None);
        let f = big();
        for n in 0..80 {
            let _ = frag_needed(&f[..n], 1450, &mut out);
        }
        assert_eq!(frag_needed(&f, 1450, &mut [0u8; 64]), None);
    }
}
