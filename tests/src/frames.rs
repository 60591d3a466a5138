//! Building and recognising Ethernet frames for raw-socket tests.
//!
//! Test frames carry an 8-byte token right after the Ethernet header (and
//! the VLAN tag, if any), so a capture full of unrelated traffic (ARP, ...)
//! can be searched for exactly the frames a test sent.

use std::sync::atomic::{AtomicU64, Ordering};

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];

/// An EtherType reserved for local experiments (IEEE 802 "local
/// experimental 1"); no kernel protocol consumes it.
pub const ETHERTYPE_TEST: u16 = 0x88b5;
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// "aa:bb:cc:dd:ee:ff", lowercase.
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses "aa:bb:cc:dd:ee:ff" (either case).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// A fresh token: distinct within the process and unlikely to match
/// anything outside it.
pub fn new_token() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    crate::traffic::pattern::splitmix64((u64::from(std::process::id()) << 32) ^ n)
}

/// An untagged frame: dst, src, EtherType, then `token` and `payload`.
pub fn eth_frame(dst: Mac, src: Mac, ethertype: u16, token: u64, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 8 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&token.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A test frame (EtherType [`ETHERTYPE_TEST`]) padded to 60 bytes.
pub fn test_frame(dst: Mac, src: Mac, token: u64) -> Vec<u8> {
    eth_frame(dst, src, ETHERTYPE_TEST, token, &[0u8; 38])
}

/// An 802.1Q-tagged test frame: dst, src, 0x8100, TCI (PCP 0, VID `vid`),
/// [`ETHERTYPE_TEST`], token, padding.
pub fn tagged_test_frame(dst: Mac, src: Mac, vid: u16, token: u64) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&ETHERTYPE_TEST.to_be_bytes());
    f.extend_from_slice(&token.to_be_bytes());
    f.extend_from_slice(&[0u8; 38]);
    f
}

pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6)?.try_into().ok()
}

pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12)?.try_into().ok()
}

/// The VLAN id if the frame carries an 802.1Q tag.
pub fn vlan_id(frame: &[u8]) -> Option<u16> {
    let tpid = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    if tpid != ETHERTYPE_VLAN {
        return None;
    }
    Some(u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?) & 0x0fff)
}

/// The token of a test frame (tagged or not), if it is one.
pub fn token_of(frame: &[u8]) -> Option<u64> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
    if ethertype == ETHERTYPE_VLAN {
        off += 4;
        ethertype = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
    }
    if ethertype != ETHERTYPE_TEST {
        return None;
    }
    let t = frame.get(off + 2..off + 10)?;
    Some(u64::from_be_bytes(t.try_into().ok()?))
}

/// How many frames in `frames` carry `token`.
pub fn count_token(frames: &[Vec<u8>], token: u64) -> usize {
    frames.iter().filter(|f| token_of(f) == Some(token)).count()
}

/// A random locally administered unicast MAC from `rng`.
pub fn random_mac(rng: &mut crate::traffic::pattern::Rng) -> Mac {
    let b = rng.next_u64().to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m = [0x02, 0xab, 0, 1, 0xff, 0x10];
        assert_eq!(mac_to_string(&m), "02:ab:00:01:ff:10");
        assert_eq!(parse_mac("02:AB:00:01:ff:10"), Some(m));
        assert_eq!(parse_mac("02:ab:00:01:ff"), None);
        assert_eq!(parse_mac("02:ab:00:01:ff:10:11"), None);
    }

    #[test]
    fn tokens_found_in_tagged_and_untagged() {
        let t = new_token();
        let a = test_frame(BROADCAST, [2, 0, 0, 0, 0, 1], t);
        let b = tagged_test_frame(BROADCAST, [2, 0, 0, 0, 0, 1], 10, t);
        assert_eq!(a.len(), 60);
        assert_eq!(b.len(), 64);
        assert_eq!(token_of(&a), Some(t));
        assert_eq!(token_of(&b), Some(t));
        assert_eq!(vlan_id(&b), Some(10));
        assert_eq!(vlan_id(&a), None);
        assert_eq!(token_of(&a[..20]), None);
        assert_eq!(count_token(&[a, b, vec![0; 14]], t), 2);
    }
}
