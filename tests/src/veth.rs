//! veth pairs: one end in the root namespace (the switch port), the other
//! inside a test namespace (the host's interface). Offloads stay at the
//! kernel's defaults: no ethtool, on purpose (see shared/NOTES.md).

use crate::cmd::{ip, ip_ok};
use crate::frames::mac_to_string;

/// A veth pair owned by the test; deleted on drop (deleting one end
/// deletes both).
#[derive(Debug)]
pub struct Veth {
    port: String,
}

impl Veth {
    /// Creates `port` in the root namespace and its peer `ifname` with
    /// address `mac` directly inside namespace `ns`. Brings both ends up;
    /// turns IPv6 off on the root end so the root namespace sends nothing
    /// into the switch port by itself.
    pub fn create(port: &str, ns: &str, ifname: &str, mac: [u8; 6]) -> Veth {
        let mac = mac_to_string(&mac);
        ip_ok(&[
            "link", "add", port, "type", "veth", "peer", "name", ifname, "address", &mac, "netns",
            ns,
        ]);
        let veth = Veth {
            port: port.to_string(),
        };
        let key = format!("/proc/sys/net/ipv6/conf/{port}/disable_ipv6");
        if let Err(e) = std::fs::write(&key, "1") {
            panic!("could not write {key}: {e}");
        }
        ip_ok(&["link", "set", port, "up"]);
        ip_ok(&["-n", ns, "link", "set", ifname, "up"]);
        veth
    }

    /// Name of the root-namespace end.
    pub fn port(&self) -> &str {
        &self.port
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if link_exists(&self.port) {
            let out = ip(&["link", "del", &self.port]);
            if !out.success() && link_exists(&self.port) {
                eprintln!("harness cleanup: could not delete veth:\n{out}");
            }
        }
    }
}

/// True if an interface called `name` exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).success()
}

/// True if an XDP program is attached to root-namespace interface `name`
/// (in any mode), from `ip -j -d link show`.
pub fn xdp_attached(name: &str) -> bool {
    let out = ip(&["-j", "-d", "link", "show", "dev", name]);
    if !out.success() {
        return false;
    }
    let v: serde_json::Value = match serde_json::from_str(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("ip printed invalid JSON ({e}):\n{out}"),
    };
    v.as_array()
        .and_then(|a| a.first())
        .is_some_and(|l| l.get("xdp").is_some())
}
