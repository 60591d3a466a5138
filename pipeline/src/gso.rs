//! TCP segmentation in software: a super-frame (one Ethernet + IPv4/IPv6 +
//! TCP header in front of up to 64 KB of payload, as a TSO sender hands it
//! over) becomes frames that each fit an MTU, with every header and
//! checksum as the sender's NIC would have written them. The same for UDP
//! (a sender with `UDP_SEGMENT`, USO): one UDP header in front of many
//! datagrams' payloads becomes those datagrams, each of the size the
//! sender chose.
//!
//! Where super-frames come from: a kernel vxlan device encapsulates a GSO
//! packet whole, and across a veth underlay it reaches the switch's UDP
//! socket as one datagram of up to 64 KB (the kernel segments only
//! `SKB_GSO_UDP_L4` datagrams for a plain socket, not tunnelled ones).
//!
//! The state is plain numbers ([`Segmenter`]) and the frame is passed to
//! each call, so a receive queue can emit a super-frame's segments across
//! several batches.

use crate::checksum::{checksum, fold, sum};
use crate::parse::{l3_offset, locate_l4, L4};
use crate::wire::{be16, eth, ip_proto, ipv4, ipv6, put_be16, tcp, udp};

/// TCP flags that belong only to the last segment (FIN, PSH) or only to
/// the first (CWR).
const FIN_PSH: u8 = 0x09;
const CWR: u8 = 0x80;
const TCP_FLAGS: usize = 13;
const TCP_SEQ: usize = 4;

/// The most datagrams one UDP super-frame may be cut into: the kernel's own
/// limit for a `UDP_SEGMENT` send (`UDP_MAX_SEGMENTS`). A header asking
/// for more (only a raw socket can write one) is refused, so one frame
/// never costs the switch more than that many.
pub const UDP_MAX_SEGMENTS: usize = 128;

/// Where the next segment of one super-frame starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmenter {
    /// Bytes before the Ethernet header that every segment repeats (a
    /// VXLAN header), then the offsets of the IP and TCP headers and the
    /// end of the headers, all from the start of the buffer.
    prefix: usize,
    l3: usize,
    l4: usize,
    hdr_end: usize,
    /// End of the TCP payload (IP lengths, not the buffer's, count).
    end: usize,
    /// Payload bytes per segment.
    mss: usize,
    /// Start of the next segment's payload.
    next: usize,
    /// Segments written so far.
    count: u16,
    ipv4: bool,
    /// UDP datagrams, not TCP segments.
    udp: bool,
}

impl Segmenter {
    /// Plans the segmentation of `buf`: `prefix` opaque bytes, then a TCP
    /// frame over IPv4 or IPv6 (tags allowed) whose IP packets must not
    /// exceed `mtu` bytes. `None` when it is not such a frame, or its
    /// headers leave no room for payload.
    pub fn new(buf: &[u8], prefix: usize, mtu: usize) -> Option<Segmenter> {
        let frame = buf.get(prefix..)?;
        let (l3, et) = l3_offset(frame)?;
        let l4 = locate_l4(frame)?;
        if l4.proto != ip_proto::TCP || l4.len < tcp::MIN_HEADER_LEN {
            return None;
        }
        let thl = ((frame[l4.off + 12] >> 4) as usize) * 4;
        if thl < tcp::MIN_HEADER_LEN || thl > l4.len {
            return None;
        }
        let mss = mtu.checked_sub(l4.off + thl - l3).filter(|&m| m > 0)?;
        Some(Segmenter::plan(prefix, (l3, et), &l4, thl, mss, false))
    }

    /// Plans cutting `buf` (`prefix` opaque bytes, then a UDP frame over
    /// IPv4 or IPv6) into datagrams of `size` payload bytes each, the last
    /// one shorter, as a sender with UDP segmentation offload asked. `None`
    /// when it is not such a frame, `size` is 0, a datagram would exceed
    /// `mtu` bytes of IP, or it would make more than [`UDP_MAX_SEGMENTS`].
    pub fn udp(buf: &[u8], prefix: usize, size: usize, mtu: usize) -> Option<Segmenter> {
        let frame = buf.get(prefix..)?;
        let (l3, et) = l3_offset(frame)?;
        let l4 = locate_l4(frame)?;
        if l4.proto != ip_proto::UDP || l4.len < udp::HEADER_LEN || size == 0 {
            return None;
        }
        let hdr_end = l4.off + udp::HEADER_LEN;
        let payload = l4.len - udp::HEADER_LEN;
        if hdr_end - l3 + size > mtu || payload.div_ceil(size) > UDP_MAX_SEGMENTS {
            return None;
        }
        Some(Segmenter::plan(
            prefix,
            (l3, et),
            &l4,
            udp::HEADER_LEN,
            size,
            true,
        ))
    }

    /// The plan for a frame at `prefix` with its IP header at `l3` (of
    /// ethertype `et`), its L4 header `l4` of `hdr_len` bytes, and `mss`
    /// payload bytes per segment.
    fn plan(
        prefix: usize,
        (l3, et): (usize, u16),
        l4: &L4,
        hdr_len: usize,
        mss: usize,
        udp: bool,
    ) -> Segmenter {
        let hdr_end = prefix + l4.off + hdr_len;
        Segmenter {
            prefix,
            l3: prefix + l3,
            l4: prefix + l4.off,
            hdr_end,
            end: prefix + l4.off + l4.len,
            mss,
            next: hdr_end,
            count: 0,
            ipv4: et == eth::TYPE_IPV4,
            udp,
        }
    }

    /// Plans cutting a super-frame held whole in a packet (`Packet::gso`)
    /// into segments of `mss` payload bytes each, as its sender asked.
    pub fn with_mss(buf: &[u8], mss: usize) -> Option<Segmenter> {
        let mut s = Segmenter::new(buf, 0, usize::MAX)?;
        (mss > 0).then(|| {
            s.mss = mss;
            s
        })
    }

    /// True when the frame needs no segmenting (it fits in one segment).
    pub fn fits(&self) -> bool {
        self.end - self.hdr_end <= self.mss
    }

    /// The largest segment [`Segmenter::next_into`] writes.
    pub fn max_len(&self) -> usize {
        self.hdr_end + self.mss
    }

    /// Writes the next segment of `buf` (the buffer given to `new`) into
    /// `out` and returns its length; `None` once every segment is out, or
    /// when `out` is too small (nothing written then).
    pub fn next_into(&mut self, buf: &[u8], out: &mut [u8]) -> Option<usize> {
        let first = self.count == 0;
        if self.next >= self.end && !(first && self.next == self.end) {
            return None;
        }
        let chunk = (self.end - self.next).min(self.mss);
        let last = self.next + chunk >= self.end;
        let len = self.hdr_end + chunk;
        let (hdr, payload) = (
            buf.get(..self.hdr_end)?,
            buf.get(self.next..self.next + chunk)?,
        );
        let out = out.get_mut(..len)?;
        out[..self.hdr_end].copy_from_slice(hdr);
        out[self.hdr_end..].copy_from_slice(payload);

        let ip_len = len - self.l3;
        let ip = &mut out[self.l3..];
        if self.ipv4 {
            let ihl = self.l4 - self.l3;
            put_be16(ip, ipv4::TOTAL_LEN, ip_len as u16);
            let id = be16(ip, 4).wrapping_add(self.count);
            put_be16(ip, 4, id);
            put_be16(ip, ipv4::CHECKSUM, 0);
            let c = checksum(&ip[..ihl]);
            put_be16(ip, ipv4::CHECKSUM, c);
        } else {
            put_be16(ip, ipv6::PAYLOAD_LEN, (ip_len - ipv6::HEADER_LEN) as u16);
        }
        if self.udp {
            self.finish_udp(out, len);
        } else {
            self.finish_tcp(out, len, first, last);
        }
        self.next += chunk.max(1);
        self.count = self.count.wrapping_add(1);
        Some(len)
    }

    /// The pseudo-header sum of the segment in `out[..len]`.
    fn pseudo(&self, out: &[u8], proto: u8, l4_len: usize) -> u64 {
        let addrs = if self.ipv4 {
            self.l3 + ipv4::SRC..self.l3 + ipv4::DST + 4
        } else {
            self.l3 + ipv6::SRC..self.l3 + ipv6::DST + 16
        };
        sum(&out[addrs], proto as u64 + l4_len as u64)
    }

    /// The UDP length and checksum of one datagram (0 is sent as 0xffff).
    fn finish_udp(&self, out: &mut [u8], len: usize) {
        let t = self.l4;
        let l4_len = len - t;
        put_be16(out, t + 4, l4_len as u16);
        put_be16(out, t + udp::CHECKSUM, 0);
        let pseudo = self.pseudo(out, ip_proto::UDP, l4_len);
        let c = match !fold(sum(&out[t..len], pseudo)) {
            0 => 0xffff,
            c => c,
        };
        put_be16(out, t + udp::CHECKSUM, c);
    }

    /// The sequence number, flags and checksum of one TCP segment.
    fn finish_tcp(&self, out: &mut [u8], len: usize, first: bool, last: bool) {
        let t = self.l4;
        let seq = u32::from_be_bytes([
            out[t + TCP_SEQ],
            out[t + TCP_SEQ + 1],
            out[t + TCP_SEQ + 2],
            out[t + TCP_SEQ + 3],
        ])
        .wrapping_add((self.next - self.hdr_end) as u32);
        out[t + TCP_SEQ..t + TCP_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
        if !last {
            out[t + TCP_FLAGS] &= !FIN_PSH;
        }
        if !first {
            out[t + TCP_FLAGS] &= !CWR;
        }
        put_be16(out, t + tcp::CHECKSUM, 0);
        let pseudo = self.pseudo(out, ip_proto::TCP, len - t);
        let c = !fold(sum(&out[t..len], pseudo));
        put_be16(out, t + tcp::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::l4_checksum_ok;

    /// An IPv4 TCP super-frame: 10.0.0.1:1000 -> 10.0.0.2:2000, seq
    /// 0x01000000, ACK|PSH|FIN, `n` payload bytes counting up, id 0x1234.
    fn super_frame(prefix: &[u8], n: usize) -> Vec<u8> {
        let mut f = prefix.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 20 + n) as u16;
        let t = total.to_be_bytes();
        f.extend_from_slice(&[
            0x45, 0, t[0], t[1], 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend_from_slice(&[
            0x03, 0xe8, 0x07, 0xd0, 1, 0, 0, 0, 0, 0, 0, 9, 0x50, 0x19, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        f.extend((0..n).map(|i| i as u8));
        f
    }

    fn all(buf: &[u8], prefix: usize, mtu: usize) -> Vec<Vec<u8>> {
        let mut s = Segmenter::new(buf, prefix, mtu).expect("a TCP frame");
        let mut out = vec![0u8; 70_000];
        let mut v = Vec::new();
        while let Some(n) = s.next_into(buf, &mut out) {
            v.push(out[..n].to_vec());
        }
        v
    }

    #[test]
    fn a_super_frame_becomes_mtu_sized_segments_with_valid_headers() {
        let vx = [0x08, 0, 0, 0, 0, 0, 100, 0];
        let f = super_frame(&vx, 4000);
        let segs = all(&f, 8, 1450);
        assert_eq!(segs.len(), 3, "1410 + 1410 + 1180");
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(&s[..8], &vx, "the prefix is repeated");
            let frame = &s[8..];
            assert!(frame.len() - 14 <= 1450);
            assert_eq!(checksum(&frame[14..34]), 0, "IPv4 header checksum");
            assert_eq!(be16(frame, 16) as usize, frame.len() - 14);
            assert_eq!(be16(frame, 18), 0x1234 + i as u16, "ids count up");
            assert_eq!(l4_checksum_ok(frame), Some(true));
            let seq = u32::from_be_bytes(frame[38..42].try_into().unwrap());
            assert_eq!(seq, 0x0100_0000 + payload.len() as u32);
            let flags = frame[47];
            assert_eq!(flags & FIN_PSH != 0, i == 2, "FIN and PSH on the last only");
            payload.extend_from_slice(&frame[54..]);
        }
        assert_eq!(payload, (0..4000).map(|i| i as u8).collect::<Vec<_>>());
    }

    #[test]
    fn with_mss_cuts_at_the_senders_segment_size() {
        let f = super_frame(&[], 2500);
        let mut s = Segmenter::with_mss(&f, 1000).unwrap();
        let mut out = vec![0u8; 2000];
        let mut lens = Vec::new();
        while let Some(n) = s.next_into(&f, &mut out) {
            assert_eq!(l4_checksum_ok(&out[..n]), Some(true));
            lens.push(n - 54);
        }
        assert_eq!(lens, [1000, 1000, 500]);
        assert!(Segmenter::with_mss(&f, 0).is_none());
    }

    /// An IPv4 or IPv6 UDP super-frame of `n` payload bytes counting up,
    /// 10.0.0.1:1000 -> 10.0.0.2:2000 (fd00::1 -> fd00::2).
    fn udp_super_frame(v6: bool, n: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        let u = ((8 + n) as u16).to_be_bytes();
        if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, u[0], u[1], 17, 64]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            let t = ((20 + 8 + n) as u16).to_be_bytes();
            f.extend_from_slice(&[
                0x08, 0x00, 0x45, 0, t[0], t[1], 0x12, 0x34, 0, 0, 64, 17, 0, 0,
            ]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        }
        f.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0, u[0], u[1], 0xab, 0xcd]);
        f.extend((0..n).map(|i| (i * 7) as u8));
        f
    }

    #[test]
    fn a_udp_super_frame_becomes_the_senders_datagrams() {
        for v6 in [false, true] {
            let f = udp_super_frame(v6, 2500);
            let hdr = if v6 { 14 + 40 + 8 } else { 14 + 20 + 8 };
            let mut s = Segmenter::udp(&f, 0, 1000, 1500).expect("a UDP frame");
            let mut out = vec![0u8; 2000];
            let (mut lens, mut payload) = (Vec::new(), Vec::new());
            while let Some(n) = s.next_into(&f, &mut out) {
                let d = &out[..n];
                assert_eq!(l4_checksum_ok(d), Some(true), "v6 {v6}");
                assert_eq!(be16(d, hdr - 4) as usize, n - hdr + 8, "UDP length");
                if v6 {
                    assert_eq!(be16(d, 18) as usize, n - 54, "payload length");
                } else {
                    assert_eq!(checksum(&d[14..34]), 0, "IPv4 header checksum");
                    assert_eq!(be16(d, 16) as usize, n - 14);
                }
                lens.push(n - hdr);
                payload.extend_from_slice(&d[hdr..]);
            }
            assert_eq!(lens, [1000, 1000, 500], "v6 {v6}");
            assert_eq!(payload, f[hdr..].to_vec());
        }
    }

    #[test]
    fn udp_sizes_that_the_kernel_would_refuse_are_refused() {
        let f = udp_super_frame(false, 2500);
        assert!(Segmenter::udp(&f, 0, 0, 1500).is_none(), "size 0");
        assert!(Segmenter::udp(&f, 0, 1473, 1500).is_none(), "over the MTU");
        assert!(Segmenter::udp(&f, 0, 1472, 1500).is_some());
        assert!(Segmenter::udp(&f, 0, 19, 1500).is_none(), "132 datagrams");
        assert!(Segmenter::udp(&f, 0, 20, 1500).is_some(), "125 datagrams");
        assert!(
            Segmenter::udp(&super_frame(&[], 100), 0, 10, 1500).is_none(),
            "TCP"
        );
        for n in 0..f.len() {
            if let Some(mut s) = Segmenter::udp(&f[..n], 0, 50, 60) {
                let mut out = [0u8; 200];
                while s.next_into(&f[..n], &mut out).is_some() {}
            }
        }
    }

    #[test]
    fn a_frame_that_fits_is_one_segment_and_others_are_refused() {
        let f = super_frame(&[], 100);
        let s = Segmenter::new(&f, 0, 1500).unwrap();
        assert!(s.fits());
        let one = all(&f, 0, 1500);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].len(), &one[0][54..]), (f.len(), &f[54..]));
        assert_eq!(l4_checksum_ok(&one[0]), Some(true));
        let mut udp = f.clone();
        udp[23] = 17;
        assert!(Segmenter::new(&udp, 0, 1500).is_none());
        assert!(Segmenter::new(&f, 0, 40).is_none(), "no room for payload");
        for n in 0..f.len() {
            if let Some(mut s) = Segmenter::new(&f[..n], 0, 60) {
                let mut out = [0u8; 200];
                while s.next_into(&f[..n], &mut out).is_some() {}
            }
        }
    }
}
