//! Network namespaces made with `ip netns add` (so `/var/run/netns/NAME`
//! exists and `ip netns exec` works), and running code inside one on a
//! thread of its own.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::thread;

use crate::cmd::{ip, ip_ok};
use crate::names;

/// A network namespace owned by the test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with a fresh name, loopback up and IPv6 off (so
    /// the kernel sends no router solicitations or MLD reports that would
    /// refresh a MAC table or show up in captures).
    pub fn create() -> Netns {
        let name = names::unique("n");
        ip_ok(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.sysctl("net/ipv6/conf/all/disable_ipv6", "1");
        ns.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
        ip_ok(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes a sysctl of this namespace (`key` as a path below
    /// /proc/sys, e.g. `net/ipv4/ip_forward`). Panics on failure.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = PathBuf::from("/proc/sys").join(key);
        let value = value.to_string();
        let res = run_in_netns(&self.name, move || std::fs::write(&path, value));
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => panic!("sysctl {key} in namespace {}: {e}", self.name),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = ip(&["netns", "del", &self.name]);
        if !out.success() {
            eprintln!("harness cleanup: could not delete namespace:\n{out}");
        }
    }
}

/// True if `/var/run/netns/NAME` exists.
pub fn exists(name: &str) -> bool {
    ns_path(name).exists()
}

fn ns_path(name: &str) -> PathBuf {
    PathBuf::from("/var/run/netns").join(name)
}

/// Moves the calling thread into namespace `name`. Only the network
/// namespace of this one thread changes.
fn enter(name: &str) -> io::Result<()> {
    let file = File::open(ns_path(name))
        .map_err(|e| io::Error::new(e.kind(), format!("open namespace {name}: {e}")))?;
    // SAFETY: `file` is an open descriptor of a namespace file that lives
    // across the call; setns only changes this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("setns into namespace {name}: {e}"),
        ));
    }
    Ok(())
}

/// Starts `f` on a new thread inside namespace `name`. Sockets the closure
/// opens belong to that namespace. The handle yields `Err` when the thread
/// could not enter the namespace or `f` panicked.
pub fn spawn_in_netns<T, F>(name: &str, f: F) -> thread::JoinHandle<io::Result<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let name = name.to_string();
    thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            enter(&name)?;
            Ok(f())
        })
        .unwrap_or_else(|e| panic!("could not spawn a thread: {e}"))
}

/// Joins a thread started by [`spawn_in_netns`], turning a panic into an error.
pub fn join<T>(h: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    match h.join() {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(io::Error::other(format!(
                "thread inside namespace panicked: {msg}"
            )))
        }
    }
}

/// Runs `f` inside namespace `name` and waits for it.
pub fn run_in_netns<T, F>(name: &str, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    join(spawn_in_netns(name, f))
}
