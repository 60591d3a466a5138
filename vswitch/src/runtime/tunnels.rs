//! The running side of VXLAN tunnels: each tunnel port's remotes with the
//! route the host's routing table gives them, and what the datapath
//! snapshot gets from them (each endpoint's decapsulation stage, each
//! tunnel port's outer headers).
//!
//! Routes are asked of the kernel (a connected UDP socket: source address,
//! path MTU, interface) when the configuration changes and once a second
//! after, so a tunnel follows the host's routing as its addresses and
//! routes change; the snapshot is rebuilt only when an answer changed.

use super::{PortRt, PortState, Runtime};
use crate::tunnel::{self, VxlanSpec};
use pipeline::tunnel::{Encap, EncapRemote, RemoteCounters, VxlanDecap};
use pipeline::vxlan;
use pipeline::PortNo;
use ports::vxlan::Route;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A tunnel port's settings and remotes, kept across reconfigurations.
pub(super) struct TunnelRt {
    pub spec: VxlanSpec,
    pub remotes: Vec<RemoteRt>,
}

pub(super) struct RemoteRt {
    pub ip: Ipv4Addr,
    /// What the host's routing says about reaching it, or why it cannot.
    pub route: Result<Route, String>,
    pub counters: Arc<RemoteCounters>,
}

impl TunnelRt {
    /// The runtime state for `spec`, keeping the counters of remotes that
    /// `old` already had.
    pub fn new(spec: VxlanSpec, old: Option<TunnelRt>) -> TunnelRt {
        // The same settings: kept as they are (the timer refreshes routes).
        let old = match old {
            Some(o) if o.spec == spec => return o,
            other => other,
        };
        let mut old: BTreeMap<Ipv4Addr, RemoteRt> = old
            .map(|t| t.remotes.into_iter().map(|r| (r.ip, r)).collect())
            .unwrap_or_default();
        let remotes = spec
            .remotes
            .iter()
            .map(|&ip| {
                old.remove(&ip).unwrap_or_else(|| RemoteRt {
                    ip,
                    route: Err("not resolved yet".into()),
                    counters: Arc::default(),
                })
            })
            .collect();
        let mut t = TunnelRt { spec, remotes };
        t.refresh_routes();
        t
    }

    /// Asks the kernel again how each remote is reached. True when an
    /// answer changed.
    pub fn refresh_routes(&mut self) -> bool {
        let mut changed = false;
        // A cluster overlay may have hundreds of remotes: one line each
        // only at debug level then.
        let level = if self.remotes.len() > 16 {
            log::Level::Debug
        } else {
            log::Level::Info
        };
        for r in &mut self.remotes {
            let route = resolve(&self.spec, r.ip);
            if route != r.route {
                match &route {
                    Ok(rt) => log::log!(
                        level,
                        "vxlan remote {}: via {} from {}, underlay MTU {}",
                        r.ip,
                        rt.ifname,
                        rt.local,
                        rt.mtu
                    ),
                    Err(e) => log::warn!("vxlan remote {}: {e}", r.ip),
                }
                r.route = route;
                changed = true;
            }
        }
        changed
    }

    /// The outer headers of every remote that has a route.
    pub fn encap(&self) -> Encap {
        let mut e = Encap {
            remotes: Vec::new(),
            max_inner: usize::MAX,
        };
        for r in &self.remotes {
            let Ok(route) = &r.route else { continue };
            e.remotes.push(EncapRemote::new(
                self.spec.outer(route.local, r.ip),
                r.counters.clone(),
            ));
            e.max_inner = e
                .max_inner
                .min((route.mtu as usize).saturating_sub(vxlan::OUTER_LEN));
        }
        e
    }

    /// The MTU a container behind this tunnel should use: the smallest
    /// underlay MTU less the encapsulation.
    pub fn inner_mtu(&self) -> Option<u32> {
        self.remotes
            .iter()
            .filter_map(|r| r.route.as_ref().ok())
            .map(|r| r.mtu.saturating_sub(vxlan::OVERHEAD as u32))
            .min()
    }
}

/// The route toward `remote`, from `local_ip` if the port names one (it
/// must be one of the host's addresses).
fn resolve(spec: &VxlanSpec, remote: Ipv4Addr) -> Result<Route, String> {
    let mut route = ports::vxlan::route_to(remote, spec.dst_port).map_err(|e| e.to_string())?;
    if let Some(local) = spec.local_ip {
        if ports::vxlan::ifname_of_addr(local).is_none() {
            return Err(format!("local_ip {local} is not an address of this host"));
        }
        route.local = local;
    }
    Ok(route)
}

/// The decapsulation stage of the endpoint on UDP port `udp_port`: each
/// open tunnel port on it, for each of its remotes.
pub(super) fn decap_for(ports: &BTreeMap<String, PortRt>, udp_port: u16) -> VxlanDecap {
    let mut d = VxlanDecap::new();
    for p in ports.values() {
        let Some(t) = &p.tunnel else { continue };
        if t.spec.dst_port != udp_port || !matches!(p.state, PortState::Open { .. }) {
            continue;
        }
        for r in &t.remotes {
            d.add(t.spec.vni, u32::from(r.ip), p.port_no, r.counters.clone());
        }
    }
    d
}

/// One remote as `tunnel/show` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteView {
    pub remote_ip: String,
    pub local_ip: Option<String>,
    pub underlay: Option<String>,
    pub underlay_mtu: Option<u32>,
    pub error: Option<String>,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// One tunnel port as `tunnel/show` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelView {
    pub port: String,
    pub port_no: PortNo,
    pub vni: u32,
    pub dst_port: u16,
    pub endpoint: String,
    pub inner_mtu: Option<u32>,
    pub remotes: Vec<RemoteView>,
}

/// An endpoint as `tunnel/show` reports it: its state and the datagrams
/// it could not decapsulate, by reason.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub name: String,
    pub udp_port: u16,
    pub error: Option<String>,
    pub rx_packets: u64,
    pub decap_errors: BTreeMap<String, u64>,
}

impl Runtime {
    /// Every tunnel port, by name.
    pub fn tunnels(&self) -> Vec<TunnelView> {
        self.ports
            .iter()
            .filter_map(|(name, p)| {
                let t = p.tunnel.as_ref()?;
                let remotes = t
                    .remotes
                    .iter()
                    .map(|r| {
                        let c = &r.counters;
                        let route = r.route.as_ref().ok();
                        RemoteView {
                            remote_ip: r.ip.to_string(),
                            local_ip: route.map(|x| x.local.to_string()),
                            underlay: route.map(|x| x.ifname.clone()),
                            underlay_mtu: route.map(|x| x.mtu),
                            error: r.route.as_ref().err().cloned(),
                            rx_packets: c.rx_packets.load(Relaxed),
                            rx_bytes: c.rx_bytes.load(Relaxed),
                            tx_packets: c.tx_packets.load(Relaxed),
                            tx_bytes: c.tx_bytes.load(Relaxed),
                        }
                    })
                    .collect();
                Some(TunnelView {
                    port: name.clone(),
                    port_no: p.port_no,
                    vni: t.spec.vni,
                    dst_port: t.spec.dst_port,
                    endpoint: tunnel::endpoint_name(t.spec.dst_port),
                    inner_mtu: t.inner_mtu(),
                    remotes,
                })
            })
            .collect()
    }

    /// Every VXLAN endpoint.
    pub fn endpoints(&self) -> Vec<EndpointView> {
        self.ports
            .iter()
            .filter(|(_, p)| p.spec.kind == tunnel::ENDPOINT_KIND)
            .map(|(name, p)| {
                let c = p.stats.snapshot(name);
                let decap_errors = c
                    .drops
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("vxlan-") || k == "kernel-rx-ring")
                    .collect();
                EndpointView {
                    name: name.clone(),
                    udp_port: tunnel::endpoint_port(name).unwrap_or(0),
                    error: match &p.state {
                        PortState::Failed { error, .. } => Some(error.clone()),
                        PortState::Open { .. } => None,
                    },
                    rx_packets: c.rx_packets,
                    decap_errors,
                }
            })
            .collect()
    }

    /// Asks the kernel again how every tunnel's remotes are reached; true
    /// when something changed (the caller publishes a new snapshot).
    pub(super) fn refresh_tunnel_routes(&mut self) -> bool {
        let mut changed = false;
        for p in self.ports.values_mut() {
            if let Some(t) = &mut p.tunnel {
                changed |= t.refresh_routes();
            }
        }
        changed
    }

    /// Fails when `new` makes tunnels listen on a UDP port that `old` did
    /// not use and that cannot be bound now (a kernel vxlan device or
    /// another program has it).
    pub fn check_tunnel_ports(
        &self,
        old: &crate::config::Config,
        new: &crate::config::Config,
    ) -> Result<(), String> {
        let before = tunnel::dst_ports(old);
        for port in tunnel::dst_ports(new) {
            if before.contains(&port) {
                continue;
            }
            if let Err(e) = ports::vxlan::open_rx(None, port) {
                return Err(format!("cannot use UDP port {port} for VXLAN: {e}"));
            }
        }
        Ok(())
    }

    /// The MTU for a container attached to `bridge`, when the bridge has a
    /// tunnel port: the smallest underlay MTU less the encapsulation.
    pub fn tunnel_inner_mtu(&self, bridge: &str) -> Option<u32> {
        self.ports
            .values()
            .filter(|p| p.spec.bridge == bridge)
            .filter_map(|p| p.tunnel.as_ref()?.inner_mtu())
            .min()
    }
}
