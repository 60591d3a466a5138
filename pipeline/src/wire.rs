//! Wire formats the switch reads, as named offsets (no magic numbers in the
//! stages) and a few bounds-checked accessors.

pub mod eth {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HEADER_LEN: usize = 14;
    pub const ADDR_LEN: usize = 6;

    pub const TYPE_IPV4: u16 = 0x0800;
    pub const TYPE_ARP: u16 = 0x0806;
    pub const TYPE_VLAN: u16 = 0x8100;
    pub const TYPE_QINQ: u16 = 0x88a8;
    pub const TYPE_IPV6: u16 = 0x86dd;

    pub const BROADCAST: [u8; 6] = [0xff; 6];

    /// A group (multicast or broadcast) address has the I/G bit set.
    #[inline]
    pub fn is_multicast(mac: &[u8]) -> bool {
        mac[0] & 1 == 1
    }

    #[inline]
    pub fn mac(frame: &[u8], r: Range<usize>) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&frame[r]);
        m
    }

    /// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
    pub fn fmt_mac(m: &[u8; 6]) -> String {
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    /// Parses `aa:bb:cc:dd:ee:ff`.
    pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
        let mut m = [0u8; 6];
        let mut parts = s.split(':');
        for b in m.iter_mut() {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(m)
    }
}

pub mod vlan {
    /// A tag is 4 bytes: TPID (2) then TCI (2). Inserted after the MACs.
    pub const TAG_LEN: usize = 4;
    pub const OFFSET: usize = 12;
    pub const VID_MASK: u16 = 0x0fff;

    #[inline]
    pub fn tci(pcp: u8, vid: u16) -> u16 {
        ((pcp as u16 & 7) << 13) | (vid & VID_MASK)
    }
}

pub mod ipv4 {
    pub const MIN_HEADER_LEN: usize = 20;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    /// MF flag plus fragment offset: non-zero means a fragment.
    pub const FRAG_MASK: u16 = 0x3fff;
}

pub mod ipv6 {
    pub const HEADER_LEN: usize = 40;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

pub mod tcp {
    pub const CHECKSUM: usize = 16;
    pub const MIN_HEADER_LEN: usize = 20;
}

pub mod udp {
    pub const CHECKSUM: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

/// Reads a big-endian u16 at `off`; the caller has checked the bounds.
#[inline]
pub fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
pub fn put_be16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m = eth::parse_mac("02:ab:00:10:ff:09").unwrap();
        assert_eq!(eth::fmt_mac(&m), "02:ab:00:10:ff:09");
        assert!(eth::parse_mac("02:ab:00:10:ff").is_none());
        assert!(eth::parse_mac("02:ab:00:10:ff:09:00").is_none());
        assert!(eth::parse_mac("0g:ab:00:10:ff:09").is_none());
    }

    #[test]
    fn multicast_bit() {
        assert!(eth::is_multicast(&eth::BROADCAST));
        assert!(eth::is_multicast(&[0x01, 0, 0x5e, 0, 0, 1]));
        assert!(!eth::is_multicast(&[0x02, 0, 0, 0, 0, 1]));
    }
}
