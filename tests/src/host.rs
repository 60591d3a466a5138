//! A test host: a namespace with one veth whose peer stays in the root
//! namespace as a switch port. The host's interface is `eth1` with address
//! 10.77.0.N/24 (only ever inside the test's own namespace).

use std::net::Ipv4Addr;

use crate::cmd::ip_ok;
use crate::frames::{mac_to_string, Mac};
use crate::names;
use crate::netns::Netns;
use crate::veth::Veth;

/// Name of the host's interface inside its namespace.
pub const HOST_IFNAME: &str = "eth1";

/// A host; its veth and namespace are deleted on drop (veth first).
#[derive(Debug)]
pub struct Host {
    // Field order is drop order: the veth goes before the namespace.
    veth: Option<Veth>,
    ns: Netns,
    port: String,
    ip: Ipv4Addr,
    mac: Mac,
    /// Interface name inside the namespace.
    ifname: String,
}

impl Host {
    /// A host with address 10.77.0.`index`/24, attached and up.
    pub fn new(index: u8) -> Host {
        let mut h = Host::without_link(index);
        h.attach_link();
        h
    }

    /// A host whose namespace exists but whose veth does not yet: the port
    /// name is reserved, so a test can configure the switch first and call
    /// [`Host::attach_link`] later.
    pub fn without_link(index: u8) -> Host {
        assert!(
            (1..=254).contains(&index),
            "host index {index} is not 1..=254"
        );
        Host {
            veth: None,
            ns: Netns::create(),
            port: names::unique("p"),
            ip: Ipv4Addr::new(10, 77, 0, index),
            mac: names::unique_mac(),
            ifname: HOST_IFNAME.to_string(),
        }
    }

    /// A host made of a device the switch created (a TAP or a bridge's
    /// internal port): `dev` moves from the root namespace into a new
    /// namespace under its own (unique, test-made) name, gets address
    /// 10.77.0.`index`/24 and comes up. The switch keeps the device; drop
    /// the host only after the daemon has stopped or deleted the port, so
    /// the device never outlives the daemon in the root namespace.
    pub fn adopt(index: u8, dev: &str) -> Host {
        let mut h = Host::without_link(index);
        h.port = dev.to_string();
        h.ifname = dev.to_string();
        ip_ok(&["link", "set", dev, "netns", h.ns.name()]);
        let mac = mac_to_string(&h.mac);
        let cidr = format!("{}/24", h.ip);
        let ns = h.ns.name().to_string();
        ip_ok(&["-n", &ns, "link", "set", dev, "address", &mac]);
        ip_ok(&["-n", &ns, "addr", "add", &cidr, "dev", dev]);
        ip_ok(&["-n", &ns, "link", "set", dev, "up"]);
        h
    }

    /// Creates the veth (root end = [`Host::port`]), gives the host end its
    /// MAC and address, and brings both up. Panics if already attached.
    pub fn attach_link(&mut self) {
        assert!(
            self.veth.is_none(),
            "host {} is already attached",
            self.ns.name()
        );
        let veth = Veth::create(&self.port, self.ns.name(), HOST_IFNAME, self.mac);
        let cidr = format!("{}/24", self.ip);
        ip_ok(&[
            "-n",
            self.ns.name(),
            "addr",
            "add",
            &cidr,
            "dev",
            HOST_IFNAME,
        ]);
        self.veth = Some(veth);
    }

    /// Deletes the veth (both ends); the namespace stays.
    pub fn detach_link(&mut self) {
        self.veth = None;
    }

    /// Switch-side port name (root namespace).
    pub fn port(&self) -> &str {
        &self.port
    }

    /// Namespace name (usable with `ip netns exec`).
    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    /// Interface name inside the namespace.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// The MAC as "aa:bb:cc:dd:ee:ff".
    pub fn mac_str(&self) -> String {
        mac_to_string(&self.mac)
    }

    /// Short description for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (ns {}, port {}, mac {})",
            self.ip,
            self.ns(),
            self.port,
            self.mac_str()
        )
    }
}
