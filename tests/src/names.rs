//! Names and addresses that no other test (in this process or another) uses.
//!
//! A name is `vt` + the process id in base 36 + `-` + a per-process counter
//! in decimal + a short role suffix that starts with a letter, for example
//! `vt3k2a-17p`. It fits the 15-byte limit of interface names. Everything
//! the harness creates starts with `vt`, so leftovers are easy to spot with
//! `ip -br link` and `ip netns list`.

use std::sync::atomic::{AtomicU32, Ordering};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// Prefix of every name the harness makes.
pub const PREFIX: &str = "vt";

static COUNTER: AtomicU32 = AtomicU32::new(1);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A fresh name with the given role suffix (1 to 3 lowercase letters or
/// digits, first one a letter). Panics if the result would not fit an
/// interface name, which only happens after ~10^5 names in one process.
pub fn unique(role: &str) -> String {
    assert!(
        !role.is_empty() && role.len() <= 3 && role.starts_with(|c: char| c.is_ascii_lowercase()),
        "role suffix {role:?} must be 1-3 characters starting with a lowercase letter"
    );
    let name = format!("{PREFIX}{}-{}{role}", base36(std::process::id()), next());
    assert!(
        name.len() <= MAX_IFNAME,
        "generated name {name} is longer than {MAX_IFNAME} bytes"
    );
    name
}

/// A locally administered unicast MAC address unique within this process
/// (02:PP:PP:PP:CC:CC from the pid and the counter).
pub fn unique_mac() -> [u8; 6] {
    let pid = std::process::id().to_be_bytes();
    let n = next().to_be_bytes();
    [0x02, pid[1], pid[2], pid[3], n[2], n[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short() {
        let a = unique("h");
        let b = unique("h");
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert!(unique("abc").len() <= MAX_IFNAME);
    }

    #[test]
    fn macs_are_local_unicast() {
        let m = unique_mac();
        assert_eq!(m[0] & 0x01, 0, "multicast bit set");
        assert_eq!(m[0] & 0x02, 0x02, "not locally administered");
        assert_ne!(m, unique_mac());
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
