//! The router: a bridge's gateway and the uplink, with NAT and connection
//! tracking between them (Docker's bridge network, done in the pipeline).
//!
//! Two stages share one [`Router`]: [`GatewayStage`] sits in the chain of
//! every port of a bridge that has a gateway, between VLAN classification
//! and L2, and takes the ARP for the gateway's address and the IPv4 frames
//! sent to its MAC; [`UplinkStage`] is the whole chain of the uplink port.
//! Both answer ARP in place, route, translate (masquerade going out,
//! published ports coming in, both for hairpin) and write the next hop's
//! MAC, so a routed packet leaves with an `Output` verdict like a switched
//! one.
//!
//! What a stage cannot send in place (an ARP question, the packets that
//! waited for its answer, an ICMP error) goes into the router's outbox,
//! which the forwarder empties after the batch.
//!
//! Shared state ([`RouterState`]: the connection table, the neighbours,
//! the outbox) outlives snapshots; each is locked at most once per call of
//! a stage, never per packet.

pub mod arp;
pub mod neigh;
mod route;

use crate::conntrack::ConnTable;
use crate::packet::{Packet, PortNo};
use crate::stage::{Ctx, Stage};
use crate::verdict::Verdict;
use neigh::{Iface, Neighbors};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The interface number of the uplink in the neighbour table (bridges use
/// their zone, which is never 0).
pub const UPLINK_IFACE: Iface = 0;

/// An IPv4 prefix (addresses as `u32::from_be_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: u32,
    pub len: u8,
}

impl Subnet {
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len.min(32))
        }
    }

    #[inline]
    pub fn contains(&self, ip: u32) -> bool {
        (ip ^ self.addr) & self.mask() == 0
    }

    pub fn broadcast(&self) -> u32 {
        self.addr | !self.mask()
    }
}

/// A bridge's gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Stable number of the bridge (its internal port's number): the
    /// neighbour interface and the conntrack zone of its containers.
    pub zone: u16,
    /// Index of the bridge in the snapshot (to flood ARP questions).
    pub bridge: usize,
    pub ip: u32,
    pub subnet: Subnet,
    pub mac: [u8; 6],
    /// Masquerade connections to beyond the bridge's subnet.
    pub masquerade: bool,
}

/// The routed port toward the outside.
#[derive(Debug, Clone)]
pub struct Uplink {
    pub port: PortNo,
    pub ip: u32,
    pub subnet: Subnet,
    pub mac: [u8; 6],
    pub nexthop: u32,
}

/// A published port range: connections to the uplink's address (or `ip`,
/// when given) and a port in `ports` go to `to` and `to_port` plus the same
/// offset.
#[derive(Debug, Clone)]
pub struct Publish {
    pub proto: u8,
    pub ip: Option<u32>,
    pub first: u16,
    pub last: u16,
    pub to: u32,
    pub to_port: u16,
    /// Zone of the bridge the container is on.
    pub zone: u16,
}

impl Publish {
    /// The container port for host port `port`, when this rule covers it.
    #[inline]
    pub fn target(&self, proto: u8, dst: u32, port: u16) -> Option<(u32, u16)> {
        let hit = proto == self.proto
            && self.ip.is_none_or(|ip| ip == dst)
            && (self.first..=self.last).contains(&port);
        hit.then(|| (self.to, self.to_port.wrapping_add(port - self.first)))
    }
}

/// The router's configuration in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct RouterConfig {
    pub gateways: Vec<Gateway>,
    pub uplink: Option<Uplink>,
    pub publish: Vec<Publish>,
}

/// Where a frame of the outbox goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Port(PortNo),
    /// Every port of the bridge with this index in the snapshot.
    Bridge(usize),
}

/// State that outlives snapshots.
pub struct RouterState {
    /// Connections, and which one the later fragments of a datagram
    /// belong to.
    pub conntrack: Mutex<ConnTable>,
    pub neighbors: Mutex<Neighbors>,
    outbox: Mutex<Vec<(Target, Vec<u8>)>>,
    /// Cheap test for the forwarder: something is in the outbox.
    outbox_full: AtomicBool,
}

impl RouterState {
    pub fn new(ct: ConnTable) -> RouterState {
        RouterState {
            conntrack: Mutex::new(ct),
            neighbors: Mutex::new(Neighbors::default()),
            outbox: Mutex::new(Vec::new()),
            outbox_full: AtomicBool::new(false),
        }
    }

    pub fn push_out(&self, to: Target, frame: Vec<u8>) {
        lock(&self.outbox).push((to, frame));
        self.outbox_full.store(true, Ordering::Release);
    }

    #[inline]
    pub fn has_outbox(&self) -> bool {
        self.outbox_full.load(Ordering::Acquire)
    }

    /// Takes what waits in the outbox.
    pub fn take_outbox(&self) -> Vec<(Target, Vec<u8>)> {
        let mut o = lock(&self.outbox);
        self.outbox_full.store(false, Ordering::Release);
        std::mem::take(&mut *o)
    }
}

/// A snapshot's router: its configuration and the lasting state.
pub struct Router {
    pub cfg: RouterConfig,
    pub state: Arc<RouterState>,
}

impl Router {
    /// Asks again the questions nobody answered yet (about once a second;
    /// the caller empties the outbox after).
    pub fn retry_questions(&self, now_ms: u64) {
        let again = lock(&self.state.neighbors).retries(now_ms);
        for (iface, ip) in again {
            self.ask(iface, ip);
        }
    }

    /// Puts an ARP question for `ip` on interface `iface` in the outbox.
    fn ask(&self, iface: Iface, ip: u32) {
        if iface == UPLINK_IFACE {
            if let Some(u) = &self.cfg.uplink {
                let q = arp::request(u.mac, u.ip, ip);
                self.state.push_out(Target::Port(u.port), q.to_vec());
            }
        } else if let Some(g) = self.cfg.gateways.iter().find(|g| g.zone == iface) {
            let q = arp::request(g.mac, g.ip, ip);
            self.state.push_out(Target::Bridge(g.bridge), q.to_vec());
        }
    }

    /// True when `ip` is one of the router's own addresses.
    #[inline]
    fn is_own(&self, ip: u32) -> bool {
        self.cfg.uplink.as_ref().is_some_and(|u| u.ip == ip)
            || self.cfg.gateways.iter().any(|g| g.ip == ip)
    }
}

/// The router's part in the chain of a bridge port.
pub struct GatewayStage {
    pub router: Arc<Router>,
    /// Index of the bridge's gateway in `router.cfg.gateways`.
    pub gateway: usize,
}

/// The chain of the uplink port.
pub struct UplinkStage {
    pub router: Arc<Router>,
}

impl Router {
    /// A router with copies of this one's connections and neighbours, for
    /// a trace whose changes must not stay.
    fn for_trace(&self) -> Arc<Router> {
        let state = RouterState {
            conntrack: Mutex::new(lock(&self.state.conntrack).clone()),
            neighbors: Mutex::new(lock(&self.state.neighbors).clone()),
            outbox: Mutex::new(Vec::new()),
            outbox_full: AtomicBool::new(false),
        };
        Arc::new(Router {
            cfg: self.cfg.clone(),
            state: Arc::new(state),
        })
    }
}

impl Stage for GatewayStage {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn process(&self, cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        let Some(gw) = self.router.cfg.gateways.get(self.gateway) else {
            return;
        };
        let mut locks = route::Locks::new(&self.router);
        for (pkt, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            if *v == Verdict::Continue && pkt.meta.vlan == 0 {
                *v = route::from_bridge(&mut locks, gw, pkt, cx.now_ms);
            }
        }
    }

    fn for_trace(&self) -> Option<Arc<dyn Stage>> {
        Some(Arc::new(GatewayStage {
            router: self.router.for_trace(),
            gateway: self.gateway,
        }))
    }
}

impl Stage for UplinkStage {
    fn name(&self) -> &'static str {
        "uplink"
    }

    fn process(&self, cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        let Some(up) = &self.router.cfg.uplink else {
            return;
        };
        let mut locks = route::Locks::new(&self.router);
        for (pkt, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            if *v == Verdict::Continue {
                *v = route::from_uplink(&mut locks, up, pkt, cx.now_ms);
            }
        }
    }

    fn for_trace(&self) -> Option<Arc<dyn Stage>> {
        Some(Arc::new(UplinkStage {
            router: self.router.for_trace(),
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
