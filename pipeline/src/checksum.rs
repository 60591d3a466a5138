//! Internet checksums: full computation, incremental update (RFC 1624, for
//! NAT), and completion of *partial* TCP/UDP checksums.
//!
//! Why completion: a socket inside a namespace sends through a veth with
//! checksum offload on, so TCP/UDP leave with CHECKSUM_PARTIAL: the checksum
//! field holds only the folded pseudo-header sum, and the kernel expects the
//! device to finish it. AF_XDP and AF_PACKET hand the switch the bytes only,
//! so the switch finishes the sum before forwarding.
//!
//! Detection is cheap: compute the pseudo-header sum (a few words) and compare
//! with the field. A real checksum equals that value only by chance (1 in
//! 65536); in that case recomputing writes the same correct value again, so a
//! false positive costs time, never correctness.

pub use crate::parse::l3_offset;
use crate::parse::{locate_l4, L4};
use crate::wire::{be16, ip_proto, put_be16, tcp, udp};

/// One's-complement sum of `data` added to `initial` (not folded).
#[inline]
pub fn sum(data: &[u8], initial: u64) -> u64 {
    let mut acc = initial;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Add the two 32-bit halves; 64-bit accumulator cannot overflow for
        // any frame size we handle.
        acc += w >> 32;
        acc += w & 0xffff_ffff;
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u16::from_be_bytes([p[0], p[1]]) as u64;
    }
    if let [last] = pairs.remainder() {
        acc += (*last as u64) << 8;
    }
    acc
}

/// Folds a sum to 16 bits (not complemented).
#[inline]
pub fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum of `data` (complemented fold).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// RFC 1624 incremental update of checksum `check` when a 16-bit field
/// changes from `old` to `new`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let s = (!check as u64) + (!old as u64) + new as u64;
    !fold(s)
}

/// Incremental update for a 32-bit field (an IPv4 address).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    // Both halves in one sum, folded once (NAT rewrites two or three
    // addresses per packet).
    let s = (!check as u64)
        + (!(old >> 16) & 0xffff) as u64
        + (!old & 0xffff) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64;
    !fold(s)
}

/// An ICMP checksum after an incremental update (RFC 1624), made right in
/// the one case where the update and a full computation disagree: when
/// every other byte of the message is zero, the update gives 0x0000 but
/// the checksum is 0xffff (a sum of zeros is +0, never -0), and receivers
/// (Linux's `csum_fold`) reject 0x0000. TCP and UDP cannot meet this case
/// (the pseudo-header's protocol is never zero); ICMP has no
/// pseudo-header, and an echo reply with identifier, sequence number and
/// payload all zero is one. `msg` is the ICMP message, its checksum at
/// `at`. Looks at the message only when `check` is 0.
#[inline]
pub fn icmp_update_fixup(msg: &[u8], at: usize, check: u16) -> u16 {
    if check != 0 {
        return check;
    }
    let zero = msg
        .iter()
        .enumerate()
        .all(|(i, &b)| b == 0 || i == at || i == at + 1);
    if zero {
        0xffff
    } else {
        0
    }
}

/// Completes a partial TCP or UDP checksum in place. Returns true when the
/// checksum field was rewritten. Frames that are not TCP/UDP over IPv4/IPv6,
/// fragments and truncated frames are left untouched.
#[inline]
pub fn complete_partial(frame: &mut [u8]) -> bool {
    // Fast exit for what is not IP right after the MACs (ARP, tagged
    // frames inside a Q-in-Q tunnel are rare enough to take the slow path).
    if !crate::parse::ip_ethertype(frame) {
        return false;
    }
    match locate_l4(frame) {
        Some(l4) => complete_partial_l4(frame, &l4),
        None => false,
    }
}

/// [`complete_partial`] for a frame already parsed by [`locate_l4`].
#[inline]
pub fn complete_partial_l4(frame: &mut [u8], l4: &L4) -> bool {
    complete_partial_unless(frame, l4, &0)
}

/// [`complete_partial_l4`], except that a partial checksum is left as it
/// is when `gso` is not 0 (a super-frame held whole, finished per segment
/// later). `gso` is read only for a partial checksum, the rare case.
#[inline]
pub fn complete_partial_unless(frame: &mut [u8], l4: &L4, gso: &u16) -> bool {
    let field = match l4.proto {
        ip_proto::TCP if l4.len >= tcp::MIN_HEADER_LEN => tcp::CHECKSUM,
        ip_proto::UDP if l4.len >= udp::HEADER_LEN => udp::CHECKSUM,
        _ => return false,
    };
    let at = l4.off + field;
    let current = be16(frame, at);
    let partial = fold(l4.pseudo);
    // 0x0000 and 0xffff are the same value in one's complement.
    let same = current == partial || (current | partial == 0xffff && current & partial == 0);
    if !same || *gso != 0 || (l4.proto == ip_proto::UDP && current == 0) {
        return false;
    }
    put_be16(frame, at, 0);
    let mut c = !fold(sum(&frame[l4.off..l4.off + l4.len], l4.pseudo));
    if l4.proto == ip_proto::UDP && c == 0 {
        c = 0xffff;
    }
    put_be16(frame, at, c);
    true
}

/// True when the TCP/UDP checksum of the frame verifies (tests and tracing).
pub fn l4_checksum_ok(frame: &[u8]) -> Option<bool> {
    let l4 = locate_l4(frame)?;
    if l4.proto != ip_proto::TCP && l4.proto != ip_proto::UDP {
        return None;
    }
    Some(fold(sum(&frame[l4.off..l4.off + l4.len], l4.pseudo)) == 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + UDP "hello" with a correct checksum.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // eth
            0x45, 0, 0, 33, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // ip
            0x30, 0x39, 0x00, 0x35, 0, 13, 0, 0, // udp
            b'h', b'e', b'l', b'l', b'o',
        ];
        let ipc = checksum(&f[14..34]);
        put_be16(&mut f, 24, ipc);
        let l4 = locate_l4(&f).unwrap();
        let c = !fold(sum(&f[l4.off..l4.off + l4.len], l4.pseudo));
        put_be16(&mut f, 40, c);
        f
    }

    #[test]
    fn full_checksum_verifies() {
        let f = udp_frame();
        assert_eq!(l4_checksum_ok(&f), Some(true));
        assert_eq!(checksum(&f[14..34]), 0);
    }

    #[test]
    fn partial_checksum_is_completed() {
        let good = udp_frame();
        let mut f = good.clone();
        let l4 = locate_l4(&f).unwrap();
        put_be16(&mut f, 40, fold(l4.pseudo));
        assert_eq!(l4_checksum_ok(&f), Some(false));
        assert!(complete_partial(&mut f));
        assert_eq!(f, good);
    }

    #[test]
    fn correct_checksum_is_left_alone() {
        let mut f = udp_frame();
        let before = f.clone();
        assert!(!complete_partial(&mut f));
        assert_eq!(f, before);
    }

    #[test]
    fn truncated_frames_do_not_panic() {
        let f = udp_frame();
        for n in 0..f.len() {
            let mut t = f[..n].to_vec();
            let _ = complete_partial(&mut t);
            let _ = l4_checksum_ok(&t);
        }
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut f = udp_frame();
        let old = u32::from_be_bytes([f[26], f[27], f[28], f[29]]);
        let new = 0xc0a8_0105u32;
        let c = update32(be16(&f, 24), old, new);
        f[26..30].copy_from_slice(&new.to_be_bytes());
        put_be16(&mut f, 24, c);
        assert_eq!(checksum(&f[14..34]), 0);
    }

    #[test]
    fn odd_length_sum() {
        assert_eq!(sum(&[0x12], 0), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56], 0), 0x1234 + 0x5600);
    }
}
