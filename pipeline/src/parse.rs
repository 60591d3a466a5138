//! Where a frame's headers are: parsed once per frame by the first stage
//! that needs them, and kept in its metadata (`Meta::l3`, `Meta::l4`,
//! `Meta::proto`) for the stages after it. Bounds are checked here, so a
//! later reader of those offsets only has to check them against the frame's
//! length, never re-parse.

use crate::checksum::sum;
use crate::wire::{be16, eth, ipv4, ipv6, vlan};

/// Offset of the L3 header and the ethertype, skipping up to two VLAN tags.
#[inline]
pub fn l3_offset(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = eth::HEADER_LEN;
    if frame.len() < off {
        return None;
    }
    let mut et = be16(frame, eth::ETHERTYPE.start);
    for _ in 0..2 {
        if et != eth::TYPE_VLAN && et != eth::TYPE_QINQ {
            break;
        }
        if frame.len() < off + vlan::TAG_LEN {
            return None;
        }
        et = be16(frame, off + 2);
        off += vlan::TAG_LEN;
    }
    Some((off, et))
}

/// Where the L4 header is, which protocol, its length, and the
/// pseudo-header sum.
pub struct L4 {
    /// Offset of the L3 header.
    pub l3: usize,
    /// Offset of the L4 header.
    pub off: usize,
    pub proto: u8,
    /// L4 header and payload length, from the IP header.
    pub len: usize,
    /// The pseudo-header sum (not folded).
    pub pseudo: u64,
}

/// The L4 header of an IPv4 or IPv6 frame (not a fragment) whose lengths
/// are consistent, or `None`.
#[inline]
pub fn locate_l4(frame: &[u8]) -> Option<L4> {
    let (l3, et) = l3_offset(frame)?;
    match et {
        eth::TYPE_IPV4 => {
            let ip = frame.get(l3..)?;
            if ip.len() < ipv4::MIN_HEADER_LEN || ip[0] >> 4 != 4 {
                return None;
            }
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let total = be16(ip, ipv4::TOTAL_LEN) as usize;
            if ihl < ipv4::MIN_HEADER_LEN || total < ihl || total > ip.len() {
                return None;
            }
            if be16(ip, ipv4::FLAGS_FRAG) & ipv4::FRAG_MASK != 0 {
                return None;
            }
            let proto = ip[ipv4::PROTO];
            let len = total - ihl;
            let pseudo = sum(&ip[ipv4::SRC..ipv4::DST + 4], proto as u64 + len as u64);
            Some(L4 {
                l3,
                off: l3 + ihl,
                proto,
                len,
                pseudo,
            })
        }
        eth::TYPE_IPV6 => {
            let ip = frame.get(l3..)?;
            if ip.len() < ipv6::HEADER_LEN || ip[0] >> 4 != 6 {
                return None;
            }
            let len = be16(ip, ipv6::PAYLOAD_LEN) as usize;
            if ipv6::HEADER_LEN + len > ip.len() {
                return None;
            }
            // Extension headers are not walked: TCP and UDP directly after
            // the fixed header is what sockets send.
            let proto = ip[ipv6::NEXT_HEADER];
            let pseudo = sum(&ip[ipv6::SRC..ipv6::DST + 16], proto as u64 + len as u64);
            Some(L4 {
                l3,
                off: l3 + ipv6::HEADER_LEN,
                proto,
                len,
                pseudo,
            })
        }
        _ => None,
    }
}

/// True when the frame's ethertype (right after the MACs) is IPv4, IPv6 or
/// a VLAN tag that may hold one: the cheap test before [`locate_l4`].
#[inline]
pub fn ip_ethertype(frame: &[u8]) -> bool {
    matches!(
        frame.get(eth::ETHERTYPE),
        Some([0x08, 0x00]) | Some([0x86, 0xdd]) | Some([0x81, 0x00]) | Some([0x88, 0xa8])
    )
}
