//! Joining the TCP segments a batch sends to one TAP port back into one
//! super-frame, written with a GSO virtio-net header: the container's stack
//! then takes 64 KB in one `write` and one skb instead of forty, as GRO
//! would have given it behind a NIC.
//!
//! Segments join when they continue one another exactly: the same
//! Ethernet, IPv4 (no options, not fragmented) and TCP headers but for the
//! lengths, the IP id, the sequence number and PSH; sequence numbers in a
//! row; every segment but the last a full MSS (the first one's length); a
//! verified checksum (a damaged segment is never laundered into a valid
//! super-frame); ACK set and SYN, FIN, RST, URG clear. Anything else is
//! written alone, after what was joined so far, so order is kept.

use pipeline::checksum::{checksum, fold, sum};
use pipeline::wire::{be16, put_be16};

const ETH: usize = 14;
const IP_LEN: usize = 20;
const L4: usize = ETH + IP_LEN;
/// Largest IPv4 packet.
const MAX_IP: usize = 65_535;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
/// SYN, FIN, RST, URG, and the ECN flags that belong to one segment.
const NO_JOIN: u8 = 0x01 | 0x02 | 0x04 | 0x20 | 0x40 | 0x80;

/// A super-frame being built.
#[derive(Default)]
pub struct Coalescer {
    buf: Vec<u8>,
    /// End of the headers (Ethernet, IP, TCP); 0 when empty.
    hdr: usize,
    mss: usize,
    segs: u16,
    next_seq: u32,
    /// A short segment came: nothing more may follow it.
    closed: bool,
}

/// What [`Coalescer::frame`] hands to `writev`: the virtio-net header and
/// the frame.
pub struct Out<'a> {
    pub hdr: [u8; super::vnet::HDR_LEN],
    pub frame: &'a [u8],
}

/// Where a joinable segment's TCP header ends, its payload length and its
/// sequence number; `None` for a frame that can only go alone.
fn joinable(f: &[u8]) -> Option<(usize, usize, u32)> {
    if f.len() < L4 + 20 || f[12..14] != [0x08, 0x00] || f[ETH] != 0x45 || f[ETH + 9] != 6 {
        return None;
    }
    if be16(f, ETH + 6) & 0x3fff != 0 || be16(f, ETH + 2) as usize != f.len() - ETH {
        return None;
    }
    let thl = (f[L4 + 12] >> 4) as usize * 4;
    let flags = f[L4 + 13];
    if thl < 20 || L4 + thl >= f.len() || flags & ACK == 0 || flags & NO_JOIN != 0 {
        return None;
    }
    let tcp_len = f.len() - L4;
    let pseudo = sum(&f[ETH + 12..ETH + 20], 6 + tcp_len as u64);
    if fold(sum(&f[L4..], pseudo)) != 0xffff {
        return None;
    }
    let seq = u32::from_be_bytes([f[L4 + 4], f[L4 + 5], f[L4 + 6], f[L4 + 7]]);
    Some((L4 + thl, f.len() - L4 - thl, seq))
}

impl Coalescer {
    pub fn is_empty(&self) -> bool {
        self.hdr == 0
    }

    /// Adds `f` to the super-frame when it continues it, or starts a new
    /// one when the coalescer is empty. False when `f` must be written on
    /// its own or after what is here (the caller writes [`Self::frame`]
    /// first, clears, and offers `f` again).
    pub fn push(&mut self, f: &[u8]) -> bool {
        let Some((hdr, payload, seq)) = joinable(f) else {
            return false;
        };
        if self.is_empty() {
            self.buf.clear();
            self.buf.extend_from_slice(f);
            (self.hdr, self.mss, self.segs) = (hdr, payload, 1);
            self.next_seq = seq.wrapping_add(payload as u32);
            self.closed = false;
            return true;
        }
        let b = &self.buf;
        let same = hdr == self.hdr
            && !self.closed
            && seq == self.next_seq
            && payload <= self.mss
            && b.len() + payload <= ETH + MAX_IP
            // MACs and type; TOS; TTL, protocol; addresses; ports; ACK
            // number; flags but PSH; window; options.
            && f[..ETH] == b[..ETH]
            && f[ETH + 1] == b[ETH + 1]
            && f[ETH + 8..ETH + 10] == b[ETH + 8..ETH + 10]
            && f[ETH + 12..L4] == b[ETH + 12..L4]
            && f[L4..L4 + 4] == b[L4..L4 + 4]
            && f[L4 + 8..L4 + 12] == b[L4 + 8..L4 + 12]
            && (f[L4 + 13] | PSH) == (b[L4 + 13] | PSH)
            && f[L4 + 14..L4 + 16] == b[L4 + 14..L4 + 16]
            && f[L4 + 20..hdr] == b[L4 + 20..hdr];
        if !same {
            return false;
        }
        self.buf.extend_from_slice(&f[hdr..]);
        self.buf[L4 + 13] |= f[L4 + 13] & PSH;
        self.next_seq = seq.wrapping_add(payload as u32);
        self.segs += 1;
        self.closed = payload < self.mss;
        true
    }

    /// The joined frame with its header (a plain frame when one segment
    /// came), fixed up for writing. The coalescer is empty afterwards.
    pub fn frame(&mut self) -> Out<'_> {
        let mut hdr = [0u8; super::vnet::HDR_LEN];
        if self.segs > 1 {
            let b = &mut self.buf;
            let ip_len = b.len() - ETH;
            put_be16(b, ETH + 2, ip_len as u16);
            put_be16(b, ETH + 10, 0);
            let c = checksum(&b[ETH..L4]);
            put_be16(b, ETH + 10, c);
            // A partial checksum: the pseudo-header sum, for the receiver
            // to finish (NEEDS_CSUM).
            let tcp_len = b.len() - L4;
            let pseudo = fold(sum(&b[ETH + 12..ETH + 20], 6 + tcp_len as u64));
            put_be16(b, L4 + 16, pseudo);
            // The joined frame is TCP over IPv4 by construction (`joinable`).
            if let Some(h) = super::vnet::gso_header(b, self.mss as u16) {
                hdr = h;
            }
        }
        self.hdr = 0;
        self.segs = 0;
        Out {
            hdr,
            frame: &self.buf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP/IPv4 segment 10.0.0.1:1000 -> 10.0.0.2:2000 with `n` payload
    /// bytes (value = sequence position), flags ACK plus `flags`.
    fn seg(seq: u32, n: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (40 + n) as u16;
        let t = total.to_be_bytes();
        f.extend_from_slice(&[
            0x45, 0, t[0], t[1], 0, 7, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        let c = checksum(&f[ETH..L4]);
        f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0]);
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 9, 0x50, ACK | flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend((0..n).map(|i| (seq as usize + i) as u8));
        let pseudo = sum(&f[ETH + 12..ETH + 20], 6 + (20 + n) as u64);
        let c = !fold(sum(&f[L4..], pseudo));
        f[L4 + 16..L4 + 18].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn segments_in_a_row_join_into_one_gso_frame() {
        let mut c = Coalescer::default();
        assert!(c.push(&seg(100, 1000, 0)));
        assert!(c.push(&seg(1100, 1000, 0)));
        assert!(c.push(&seg(2100, 500, PSH)));
        // After a short segment nothing joins.
        assert!(!c.push(&seg(2600, 1000, 0)));
        let out = c.frame();
        assert_eq!(out.hdr[1], 1, "GSO TCPv4");
        assert_eq!(
            u16::from_le_bytes([out.hdr[4], out.hdr[5]]),
            1000,
            "gso_size"
        );
        let f = out.frame;
        assert_eq!(f.len(), 54 + 2500);
        assert_eq!(be16(f, ETH + 2) as usize, 40 + 2500);
        assert_eq!(checksum(&f[ETH..L4]), 0);
        assert_ne!(f[L4 + 13] & PSH, 0, "PSH of the last segment");
        let payload: Vec<u8> = (0..2500).map(|i| (100 + i) as u8).collect();
        assert_eq!(&f[54..], &payload[..]);
        // The partial checksum finishes to a valid one.
        let mut g = f.to_vec();
        let c2 = !fold(sum(&g[L4..], 0));
        g[L4 + 16..L4 + 18].copy_from_slice(&c2.to_be_bytes());
        let pseudo = sum(&g[ETH + 12..ETH + 20], 6 + (g.len() - L4) as u64);
        assert_eq!(fold(sum(&g[L4..], pseudo)), 0xffff);
        assert!(c.is_empty());
    }

    #[test]
    fn gaps_other_flows_bad_checksums_and_control_segments_stay_alone() {
        let mut c = Coalescer::default();
        assert!(c.push(&seg(100, 1000, 0)));
        assert!(!c.push(&seg(5000, 1000, 0)), "a gap");
        let mut other = seg(1100, 1000, 0);
        other[L4 + 1] ^= 1; // another port (checksum now wrong too)
        assert!(!c.push(&other));
        let mut bad = seg(1100, 1000, 0);
        bad[60] ^= 0xff;
        assert!(!c.push(&bad), "a damaged segment");
        assert!(!c.push(&seg(1100, 1000, 0x01)), "FIN");
        assert!(c.push(&seg(1100, 1000, 0)));
        let out = c.frame();
        assert_eq!(out.frame.len(), 54 + 2000);
        // One segment goes out as it came.
        assert!(c.push(&seg(7, 10, 0)));
        let out = c.frame();
        assert_eq!(out.hdr, [0; 10]);
        assert_eq!(out.frame, &seg(7, 10, 0)[..]);
    }
}
