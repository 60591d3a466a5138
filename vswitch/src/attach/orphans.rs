//! Host-side veths that no configuration owns, left by a crash.
//!
//! An attach creates its veth pair before the transaction is stored, and a
//! detach deletes its pair after; a `kill -9` between the two leaves a pair
//! the stored configuration does not know (with the container's interface
//! and address still inside the container). At start, before any port is
//! opened, every veth named like an attachment's host end (`vsw` and 12
//! hex digits, see [`super::naming`]) whose MAC says this daemon made it
//! ([`super::naming::host_mac`] of its run directory, set when the pair is
//! created: daemons side by side never touch each other's) and
//! that is not a port of the stored configuration is deleted, which takes
//! the container end with it. The opposite case, a port whose veth is
//! gone, is [`super::vanished`]'s.

use super::naming::{host_mac, HOST_HASH_DIGITS, HOST_PREFIX};
use crate::config::Config;
use pipeline::wire::eth::fmt_mac;
use std::path::Path;

/// True for a name of the shape [`super::naming::host_ifname`] makes.
fn is_host_name(name: &str) -> bool {
    name.strip_prefix(HOST_PREFIX).is_some_and(|hex| {
        hex.len() == HOST_HASH_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// True when `name` in `sys` (`/sys/class/net`) is one end of a pair: a
/// veth's `iflink` names its peer, not itself.
fn is_pair_end(sys: &Path, name: &str) -> bool {
    let read = |f: &str| std::fs::read_to_string(sys.join(name).join(f)).ok();
    match (read("ifindex"), read("iflink")) {
        (Some(i), Some(l)) => i.trim() != l.trim(),
        _ => false,
    }
}

/// The orphaned host veths of `owner` among the interfaces in `sys`.
fn find(sys: &Path, cfg: &Config, owner: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(sys) else {
        return Vec::new();
    };
    let owned = |n: &str| cfg.bridges.values().any(|b| b.ports.contains_key(n));
    let ours = |n: &str| {
        let mac = fmt_mac(&host_mac(owner, n));
        std::fs::read_to_string(sys.join(n).join("address")).is_ok_and(|a| a.trim_end() == mac)
    };
    let mut v: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_host_name(n) && !owned(n) && is_pair_end(sys, n) && ours(n))
        .collect();
    v.sort();
    v
}

/// What names the daemon with run directory `rundir` in its veths' MACs.
pub fn owner(rundir: &Path) -> String {
    let dir = rundir
        .canonicalize()
        .unwrap_or_else(|_| rundir.to_path_buf());
    format!("vswitch {}", dir.display())
}

/// Deletes the orphaned host veths of `owner` (see [`owner`]); returns
/// their names.
pub fn remove(cfg: &Config, owner: &str) -> Vec<String> {
    let orphans = find(Path::new("/sys/class/net"), cfg, owner);
    for name in &orphans {
        log::warn!(
            "attach: veth {name} is not in the configuration (left by a crash during attach or detach); deleting it and its container end"
        );
        super::delete_host_link(name);
    }
    orphans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(sys: &Path, name: &str, ifindex: u32, iflink: u32) {
        let d = sys.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ifindex"), format!("{ifindex}\n")).unwrap();
        std::fs::write(d.join("iflink"), format!("{iflink}\n")).unwrap();
        let mac = fmt_mac(&host_mac("vswitch /run/a", name));
        std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
    }

    #[test]
    fn only_unowned_veths_named_like_attachments_are_orphans() {
        let sys = std::env::temp_dir().join(format!("vswitch-orphans-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&sys);
        iface(&sys, "vsw0123456789ab", 10, 11); // orphan
        iface(&sys, "vswaaaaaaaaaaaa", 12, 13); // a port of the configuration
        iface(&sys, "vsw0123", 14, 15); // not our shape
        iface(&sys, "vswbbbbbbbbbbbb", 16, 16); // not a pair end
        iface(&sys, "eth0", 2, 2);
        iface(&sys, "vswcccccccccccc", 17, 18); // another daemon's
        let theirs = fmt_mac(&host_mac("vswitch /run/b", "vswcccccccccccc"));
        std::fs::write(sys.join("vswcccccccccccc/address"), theirs).unwrap();
        let cfg: Config =
            serde_json::from_str(r#"{"bridges":{"br0":{"ports":{"vswaaaaaaaaaaaa":{}}}}}"#)
                .unwrap();
        assert_eq!(
            find(&sys, &cfg, "vswitch /run/a"),
            vec!["vsw0123456789ab".to_string()]
        );
        std::fs::remove_dir_all(&sys).unwrap();
    }
}
