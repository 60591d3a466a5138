//! Overlay labs: "hosts" that are namespaces on one underlay L2 segment
//! (a Linux bridge inside a fabric namespace), each running its own
//! `vswitchd` or the kernel's vxlan device and bridge, with "containers"
//! (namespaces) attached to each host's bridge.
//!
//! Underlay addresses are 10.99.0.N/24, container addresses whatever the
//! test gives; all of them live only inside the test's namespaces. Every
//! namespace, veth and daemon is removed on drop, also when a test panics.

use std::net::Ipv4Addr;

use crate::cmd::{ip, ip_ok, run, Output, ADMIN_TIMEOUT};
use crate::container::Container;
use crate::daemon::{Daemon, DaemonOptions};
use crate::names;
use crate::netns::Netns;

/// The underlay segment: a Linux bridge in a namespace of its own.
pub struct Fabric {
    ns: Netns,
}

pub const FABRIC_BRIDGE: &str = "fab0";
/// Name of a host's underlay interface inside its namespace.
pub const UNDERLAY_IF: &str = "ul0";

impl Fabric {
    pub fn new() -> Fabric {
        let ns = Netns::create();
        ip_ok(&[
            "-n",
            ns.name(),
            "link",
            "add",
            FABRIC_BRIDGE,
            "type",
            "bridge",
        ]);
        ip_ok(&["-n", ns.name(), "link", "set", FABRIC_BRIDGE, "up"]);
        Fabric { ns }
    }

    pub fn ns(&self) -> &str {
        self.ns.name()
    }
}

impl Default for Fabric {
    fn default() -> Self {
        Self::new()
    }
}

/// What forwards a host's containers onto the overlay.
pub enum Switch {
    /// vswitchd (with bridge `br0`) running inside the host namespace.
    Vswitch(Box<Daemon>),
    /// The kernel: a Linux bridge `br0` (and the test's vxlan devices).
    Kernel,
}

/// A host namespace on the fabric with underlay address 10.99.0.`index`.
pub struct OverlayHost {
    // Drop order: the switch, then the containers, then the namespace.
    pub switch: Switch,
    containers: Vec<Container>,
    ns: Netns,
    pub index: u8,
}

impl OverlayHost {
    /// A namespace on the fabric with underlay address 10.99.0.`index`
    /// on [`UNDERLAY_IF`].
    pub fn on_fabric(fabric: &Fabric, index: u8) -> Netns {
        let ns = Netns::create();
        let outer = names::unique("u");
        ip_ok(&[
            "-n",
            fabric.ns(),
            "link",
            "add",
            &outer,
            "type",
            "veth",
            "peer",
            "name",
            UNDERLAY_IF,
            "netns",
            ns.name(),
        ]);
        ip_ok(&[
            "-n",
            fabric.ns(),
            "link",
            "set",
            &outer,
            "master",
            FABRIC_BRIDGE,
        ]);
        ip_ok(&["-n", fabric.ns(), "link", "set", &outer, "up"]);
        let addr = format!("10.99.0.{index}/24");
        ip_ok(&["-n", ns.name(), "addr", "add", &addr, "dev", UNDERLAY_IF]);
        ip_ok(&["-n", ns.name(), "link", "set", UNDERLAY_IF, "up"]);
        ns
    }

    /// A host whose containers are switched by its own vswitchd, with
    /// bridge `br0` made.
    pub fn vswitch(fabric: &Fabric, index: u8) -> OverlayHost {
        let ns = Self::on_fabric(fabric, index);
        let daemon = Daemon::start_with(DaemonOptions {
            netns: Some(ns.name().to_string()),
            ..Default::default()
        });
        daemon.vsctl_ok(&["add-br", "br0"]);
        OverlayHost {
            switch: Switch::Vswitch(Box::new(daemon)),
            containers: Vec::new(),
            ns,
            index,
        }
    }

    /// A host switched by the kernel: Linux bridge `br0` and a vxlan
    /// device `vx0` with `vni` on UDP port 4789 (given explicitly: the
    /// kernel's default is 8472), flooding to `remotes`.
    pub fn kernel(fabric: &Fabric, index: u8, vni: u32, remotes: &[u8]) -> OverlayHost {
        let ns = Self::on_fabric(fabric, index);
        let n = ns.name();
        ip_ok(&["-n", n, "link", "add", "br0", "type", "bridge"]);
        let local = format!("10.99.0.{index}");
        ip_ok(&[
            "-n",
            n,
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            &vni.to_string(),
            "dstport",
            "4789",
            "local",
            &local,
            "dev",
            UNDERLAY_IF,
        ]);
        for r in remotes {
            let dst = format!("10.99.0.{r}");
            run_ok(&[
                "-n",
                n,
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vx0",
                "dst",
                &dst,
            ]);
        }
        ip_ok(&["-n", n, "link", "set", "vx0", "master", "br0"]);
        ip_ok(&["-n", n, "link", "set", "vx0", "up"]);
        ip_ok(&["-n", n, "link", "set", "br0", "up"]);
        OverlayHost {
            switch: Switch::Kernel,
            containers: Vec::new(),
            ns,
            index,
        }
    }

    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    pub fn underlay_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 99, 0, self.index)
    }

    /// The host's vswitchd; panics for a kernel host.
    pub fn daemon(&self) -> &Daemon {
        match &self.switch {
            Switch::Vswitch(d) => d,
            Switch::Kernel => panic!("host {} is switched by the kernel", self.index),
        }
    }

    pub fn daemon_mut(&mut self) -> &mut Daemon {
        match &mut self.switch {
            Switch::Vswitch(d) => d,
            Switch::Kernel => panic!("host {} is switched by the kernel", self.index),
        }
    }

    /// `vswctl` on this host; panics on failure.
    pub fn vsctl(&self, args: &[&str]) -> String {
        self.daemon().vsctl_ok(args)
    }

    /// A container with `addr` (CIDR) and `mtu` on bridge `bridge` of this
    /// host (through a veth), switched by vswitchd or the kernel bridge.
    /// Returns its index in [`OverlayHost::container`].
    pub fn add_container(&mut self, bridge: &str, addr: &str, mtu: u32, tag: Option<u16>) -> usize {
        let c = Container::named();
        let port = names::unique("c");
        ip_ok(&[
            "-n",
            self.ns.name(),
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth1",
            "netns",
            &c.name(),
        ]);
        let mtu = mtu.to_string();
        ip_ok(&["-n", self.ns.name(), "link", "set", &port, "up"]);
        c.ip_ok(&["link", "set", "eth1", "mtu", &mtu]);
        c.ip_ok(&["addr", "add", addr, "dev", "eth1"]);
        c.ip_ok(&["link", "set", "eth1", "up"]);
        match &self.switch {
            Switch::Vswitch(d) => {
                let mut args = vec!["add-port", bridge, &port];
                let tag = tag.map(|t| format!("tag={t}"));
                if let Some(t) = &tag {
                    args.push(t);
                }
                d.vsctl_ok(&args);
            }
            Switch::Kernel => {
                ip_ok(&["-n", self.ns.name(), "link", "set", &port, "master", bridge]);
            }
        }
        self.containers.push(c);
        self.containers.len() - 1
    }

    pub fn container(&self, i: usize) -> &Container {
        &self.containers[i]
    }

    /// Runs `ip ARGS` inside the host namespace.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut v = vec!["-n", self.ns.name()];
        v.extend_from_slice(args);
        ip(&v)
    }
}

/// `bridge ARGS`, panicking on failure.
fn run_ok(args: &[&str]) {
    let mut c = std::process::Command::new("bridge");
    c.args(args);
    let out = run(c, ADMIN_TIMEOUT);
    assert!(out.success(), "bridge {}: {out}", args.join(" "));
}

/// `vxlan` port settings for a port toward `remotes` (host indices).
pub fn vxlan_args(remotes: &[u8], vni: u32) -> Vec<String> {
    let list: Vec<String> = remotes.iter().map(|r| format!("10.99.0.{r}")).collect();
    vec![
        "type=vxlan".into(),
        format!("options:remote_ip={}", list.join(",")),
        format!("options:key={vni}"),
    ]
}
