//! TAP attachments across a crash: a small journal of the TAP devices a
//! transaction is about to create or delete, so that a `kill -9` between
//! the kernel change and the stored configuration leaves nothing behind.
//!
//! A veth's host end lives in the daemon's namespace, where
//! [`super::orphans`] finds it at start. A TAP attachment's device lives
//! inside the container's namespace, which the daemon cannot list; so an
//! attach writes the device's namespace file and name to
//! `RUNDIR/tap-intents` (appended, fsynced) before it creates the device,
//! and a detach before it stores the removal; the entry goes once the
//! transaction is stored or undone. At start, [`sweep`] deletes each
//! journalled device that no port of the stored configuration has, then
//! empties the journal.

use crate::config::Config;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The journal's name inside the run directory.
pub const FILE_NAME: &str = "tap-intents";

/// One line: the namespace file and the device name, tab-separated. A
/// namespace path with a tab or newline cannot be journalled.
fn line(netns: &Path, ifname: &str) -> Option<String> {
    let ns = netns.to_str()?;
    let clean = |s: &str| !s.contains(['\t', '\n']);
    (clean(ns) && clean(ifname)).then(|| format!("{ns}\t{ifname}\n"))
}

/// Journals a TAP device about to be created or deleted; fsynced before it
/// returns.
pub fn record(journal: &Path, netns: &Path, ifname: &str) -> std::io::Result<()> {
    let Some(l) = line(netns, ifname) else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(journal)?;
    f.write_all(l.as_bytes())?;
    f.sync_data()
}

/// Drops the entry of a device whose transaction was stored or undone.
pub fn forget(journal: &Path, netns: &Path, ifname: &str) {
    let Some(l) = line(netns, ifname) else { return };
    let Ok(text) = std::fs::read_to_string(journal) else {
        return;
    };
    let mut kept = String::new();
    let mut dropped = false;
    for entry in text.split_inclusive('\n') {
        if !dropped && entry == l {
            dropped = true;
        } else {
            kept.push_str(entry);
        }
    }
    if let Err(e) = rewrite(journal, &kept) {
        log::warn!("attach: cannot update {}: {e}", journal.display());
    }
}

/// Replaces the journal's content (a new file renamed over it).
fn rewrite(journal: &Path, text: &str) -> std::io::Result<()> {
    let tmp = journal.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    std::fs::rename(&tmp, journal)
}

/// The journalled devices that no port of `cfg` has: (namespace, name).
fn orphans(text: &str, cfg: &Config) -> Vec<(PathBuf, String)> {
    let has = |ns: &str, ifname: &str| {
        cfg.bridges
            .values()
            .flat_map(|b| b.ports.values())
            .any(|p| {
                p.options.get(super::ops::TAP_NETNS).map(String::as_str) == Some(ns)
                    && p.options.get(super::ops::TAP_IFNAME).map(String::as_str) == Some(ifname)
            })
    };
    let mut v: Vec<(PathBuf, String)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(ns, ifname)| !has(ns, ifname))
        .map(|(ns, ifname)| (PathBuf::from(ns), ifname.to_string()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// At start, before ports open: deletes each journalled TAP device that the
/// stored configuration does not have (left by a crash mid-attach or
/// mid-detach), then empties the journal. Returns what it deleted.
pub fn sweep(journal: &Path, cfg: &Config) -> Vec<(PathBuf, String)> {
    let Ok(text) = std::fs::read_to_string(journal) else {
        return Vec::new();
    };
    let gone = orphans(&text, cfg);
    for (ns, ifname) in &gone {
        log::warn!(
            "attach: TAP {ifname} in {} is not in the configuration (left by a crash during attach or detach); deleting it",
            ns.display()
        );
        super::delete_tap(ns, ifname);
    }
    if let Err(e) = std::fs::remove_file(journal) {
        log::warn!("attach: cannot remove {}: {e}", journal.display());
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_and_go_and_only_unknown_devices_are_orphans() {
        let dir = std::env::temp_dir().join(format!("vswitch-intents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let j = dir.join(FILE_NAME);
        let _ = std::fs::remove_file(&j);
        let (a, b) = (Path::new("/run/netns/a"), Path::new("/proc/7/ns/net"));
        record(&j, a, "eth1").unwrap();
        record(&j, b, "eth2").unwrap();
        record(&j, a, "eth1").unwrap();
        forget(&j, a, "eth1");
        let text = std::fs::read_to_string(&j).unwrap();
        assert_eq!(text, "/proc/7/ns/net\teth2\n/run/netns/a\teth1\n");
        // A port of the configuration keeps its device.
        let cfg: Config = serde_json::from_str(
            r#"{"bridges":{"br0":{"ports":{"vswx":{"type":"tap",
                "options":{"netns":"/run/netns/a","ifname":"eth1"}}}}}}"#,
        )
        .unwrap();
        assert_eq!(orphans(&text, &cfg), vec![(b.to_path_buf(), "eth2".into())]);
        // Unjournalable names are skipped, not written half.
        record(&j, Path::new("/run/netns/x\ty"), "eth1").unwrap();
        assert_eq!(std::fs::read_to_string(&j).unwrap(), text);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
