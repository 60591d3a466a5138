//! Names and MAC addresses derived from a container and an interface name,
//! the same on every run and every machine, so `detach` finds what
//! `attach` made without asking anyone.
//!
//! The hash is 64-bit FNV-1a followed by MurmurHash3's 64-bit finalizer (so
//! that similar inputs give unrelated names): short, fixed by its
//! definition (std's hasher may change between Rust releases); a collision
//! is caught when the port is added, not trusted away.

/// Prefix of every host-side veth (and switch port) made by `attach`.
pub const HOST_PREFIX: &str = "vsw";
/// Hex digits after the prefix: "vsw" + 12 = 15 bytes, the kernel's limit.
pub const HOST_HASH_DIGITS: usize = 12;

fn hash(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            // A separator, so ("ab", "c") and ("a", "bc") differ.
            h ^= 0xff;
            h = h.wrapping_mul(PRIME);
        }
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    fmix64(h)
}

/// MurmurHash3's finalizer: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The host-side veth of `container`'s interface `ifname`: "vsw" and 12
/// hex digits.
pub fn host_ifname(container: &str, ifname: &str) -> String {
    let h = hash(&[b"host", container.as_bytes(), ifname.as_bytes()]);
    let hex = format!("{h:016x}");
    format!("{HOST_PREFIX}{}", &hex[..HOST_HASH_DIGITS])
}

/// A locally administered unicast MAC for `container`'s interface `ifname`.
pub fn derived_mac(container: &str, ifname: &str) -> [u8; 6] {
    let b = hash(&[b"mac", container.as_bytes(), ifname.as_bytes()]).to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// The MAC of host-side veth `host` made by the daemon `owner` (see
/// [`super::orphans::owner`]): set when the pair is created, so that after
/// a crash the daemon knows its own veths from other daemons' at once.
pub fn host_mac(owner: &str, host: &str) -> [u8; 6] {
    let b = hash(&[b"owner", owner.as_bytes(), host.as_bytes()]).to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_stable_short_and_distinct() {
        let a = host_ifname("web", "eth1");
        assert_eq!(a, host_ifname("web", "eth1"));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with(HOST_PREFIX));
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, host_ifname("web", "eth2"));
        assert_ne!(a, host_ifname("web2", "eth1"));
        assert_ne!(host_ifname("ab", "c"), host_ifname("a", "bc"));
        // Fixed by FNV-1a's definition: must never change, or detach
        // would miss attachments made by an older vswitchd.
        assert_eq!(host_ifname("web", "eth1"), "vswe7a40c8557dd");
    }

    #[test]
    fn macs_are_local_unicast_and_stable() {
        let m = derived_mac("web", "eth1");
        assert_eq!(m, derived_mac("web", "eth1"));
        assert_eq!(m[0] & 0x01, 0, "multicast bit set");
        assert_eq!(m[0] & 0x02, 0x02, "not locally administered");
        assert_ne!(m, derived_mac("web", "eth2"));
    }
}
