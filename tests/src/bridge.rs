//! A Linux kernel bridge, used only to prove the harness: hosts on it must
//! reach each other with every traffic helper.

use crate::cmd::{ip, ip_ok};
use crate::names;
use crate::veth::link_exists;

/// A kernel bridge owned by the test; deleted on drop.
#[derive(Debug)]
pub struct LinuxBridge {
    name: String,
}

impl LinuxBridge {
    /// Creates and brings up a bridge with a fresh name, IPv6 off (so it
    /// sends nothing by itself).
    pub fn create() -> LinuxBridge {
        let name = names::unique("kb");
        ip_ok(&["link", "add", &name, "type", "bridge"]);
        let br = LinuxBridge { name };
        let key = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", br.name);
        if let Err(e) = std::fs::write(&key, "1") {
            panic!("could not write {key}: {e}");
        }
        ip_ok(&["link", "set", &br.name, "up"]);
        br
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes `port` (a root-namespace interface) a port of this bridge.
    pub fn enslave(&self, port: &str) {
        ip_ok(&["link", "set", port, "master", &self.name]);
    }
}

impl Drop for LinuxBridge {
    fn drop(&mut self) {
        let out = ip(&["link", "del", &self.name]);
        if !out.success() && link_exists(&self.name) {
            eprintln!("harness cleanup: could not delete bridge:\n{out}");
        }
    }
}
