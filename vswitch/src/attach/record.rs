//! How an attachment is recorded: an ordinary port whose `external_ids`
//! say which container, interface and namespace it belongs to. Nothing
//! else in the configuration knows about containers.

use crate::config::{Config, Port};
use serde_json::{json, Value};

/// `external_ids` keys of an attachment port.
pub mod key {
    /// "true" on every port made by `attach`.
    pub const MARK: &str = "vswitch-attachment";
    /// CONTAINER as given to `attach`.
    pub const CONTAINER: &str = "container";
    /// Interface name inside the container.
    pub const IFNAME: &str = "ifname";
    /// The namespace file it was found at.
    pub const NETNS: &str = "netns";
    /// Inode of the namespace: who it is while it lives.
    pub const NETNS_INODE: &str = "netns-inode";
    /// Host-side veth (the port's own name).
    pub const VETH: &str = "veth";
    pub const IP: &str = "ip";
    pub const GATEWAY: &str = "gateway";
    pub const IP6: &str = "ip6";
    pub const GATEWAY6: &str = "gateway6";
    pub const MAC: &str = "mac";
    pub const MTU: &str = "mtu";
    /// "true" when CONTAINER was found as a Docker container name: the
    /// attachment follows it across `docker stop`/`start`/`restart`.
    pub const DOCKER: &str = "docker";
    // The Docker settings it was found with are kept as `docker_host`,
    // `docker_context` and `docker_config` (see `netns::DockerEnv`).
}

pub fn is_attachment(p: &Port) -> bool {
    p.external_ids.get(key::MARK).map(String::as_str) == Some("true")
}

/// One attachment port as found in the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    pub bridge: &'a str,
    pub port: &'a str,
    pub p: &'a Port,
}

impl<'a> Attachment<'a> {
    pub fn get(&self, k: &str) -> Option<&'a str> {
        self.p.external_ids.get(k).map(String::as_str)
    }

    pub fn container(&self) -> &'a str {
        self.get(key::CONTAINER).unwrap_or_default()
    }

    pub fn ifname(&self) -> &'a str {
        self.get(key::IFNAME).unwrap_or_default()
    }

    /// The device `attach` made: `tap` or `veth` (its `--type`).
    pub fn kind(&self) -> &'static str {
        if self.p.kind == "tap" {
            "tap"
        } else {
            "veth"
        }
    }

    /// The same container interface: same CONTAINER and interface name.
    pub fn is(&self, container: &str, ifname: &str) -> bool {
        self.container() == container && self.ifname() == ifname
    }

    pub fn to_json(&self) -> Value {
        json!({
            "bridge": self.bridge,
            "port": self.port,
            "container": self.container(),
            "ifname": self.ifname(),
            "type": self.kind(),
            "netns": self.get(key::NETNS),
            "ip": self.get(key::IP),
            "gateway": self.get(key::GATEWAY),
            "ip6": self.get(key::IP6),
            "gateway6": self.get(key::GATEWAY6),
            "mac": self.get(key::MAC),
            "mtu": self.get(key::MTU).and_then(|m| m.parse::<u32>().ok()),
            "tag": self.p.tag,
        })
    }
}

/// Every attachment, on `bridge` only if given, in bridge and port order.
pub fn attachments<'a>(cfg: &'a Config, bridge: Option<&str>) -> Vec<Attachment<'a>> {
    cfg.bridges
        .iter()
        .filter(|(b, _)| bridge.is_none_or(|x| x == b.as_str()))
        .flat_map(|(b, br)| {
            br.ports
                .iter()
                .filter(|(_, p)| is_attachment(p))
                .map(move |(n, p)| Attachment {
                    bridge: b,
                    port: n,
                    p,
                })
        })
        .collect()
}
