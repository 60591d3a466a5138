//! The running side of routing and NAT: the connection table and the
//! neighbours, which live as long as the daemon, and the router each
//! snapshot gets from the configuration.
//!
//! Across a reconfiguration the table and the neighbours stay; across a
//! restart they start empty (see the README: live translated connections
//! do not survive a restart of the daemon).

use super::{lock, PortState, Runtime};
use crate::datapath::outbox;
use crate::nat::Plan;
use pipeline::conntrack::{self, ConnTable, Stats};
use pipeline::router::{Router, RouterState};
use std::sync::Arc;

/// How many table slots one sweep looks at (about once a second).
const SWEEP_BUDGET: usize = 65_536;

pub(super) struct NatRt {
    pub state: Arc<RouterState>,
    pub plan: Plan,
    ct_cfg: conntrack::Config,
}

/// One connection as `conntrack/show` reports it.
pub struct ConnView {
    pub conn: conntrack::Conn,
    pub expires_in_ms: u64,
    pub bridge: String,
}

impl NatRt {
    pub fn new() -> NatRt {
        let ct_cfg = conntrack::Config::default();
        NatRt {
            state: Arc::new(RouterState::new(ConnTable::new(ct_cfg))),
            plan: Plan::new(&crate::config::Config::default()),
            ct_cfg,
        }
    }
}

impl Runtime {
    /// Takes the routing part of `cfg`.
    pub(super) fn configure_nat(&mut self, cfg: &crate::config::Config) {
        self.nat.plan = Plan::new(cfg);
        let ct_cfg = crate::nat::ct_config(cfg);
        if ct_cfg != self.nat.ct_cfg {
            lock(&self.nat.state.conntrack).set_config(ct_cfg);
            self.nat.ct_cfg = ct_cfg;
        }
    }

    /// The router for a snapshot whose bridges are `names` (in snapshot
    /// order), or None when no bridge has a gateway and there is no uplink.
    pub(super) fn build_router(&self, names: &[&String]) -> Option<Arc<Router>> {
        if self.nat.plan.is_empty() {
            return None;
        }
        let zone = |b: &str| {
            let z = self.zone_of(b)?;
            Some((z, names.iter().position(|n| n.as_str() == b)?))
        };
        let uplink_port = self.nat.plan.uplink.as_ref().and_then(|(name, _, _)| {
            let p = self.ports.get(name)?;
            matches!(p.state, PortState::Open { .. }).then_some(p.port_no)
        });
        Some(Arc::new(Router {
            cfg: self.nat.plan.router_config(zone, uplink_port),
            state: self.nat.state.clone(),
        }))
    }

    /// True when `name` is the uplink's device.
    pub(super) fn is_uplink(&self, name: &str) -> bool {
        self.nat
            .plan
            .uplink
            .as_ref()
            .is_some_and(|(u, _, _)| u == name)
    }

    /// A bridge's conntrack zone and neighbour interface: its internal
    /// port's number.
    pub fn zone_of(&self, bridge: &str) -> Option<u16> {
        self.ports.get(bridge).map(|p| p.port_no)
    }

    /// Once a second: expires connections, repeats unanswered ARP
    /// questions and sends them.
    pub(super) fn nat_tick(&self) {
        let now = self.clock.now_ms();
        lock(&self.nat.state.conntrack).sweep(now, SWEEP_BUDGET);
        let Some(snap) = &self.last_snap else { return };
        if let Some(r) = &snap.router {
            r.retry_questions(now);
            if r.state.has_outbox() {
                outbox::drain(snap, r);
            }
        }
    }

    /// The tracked connections (of one zone).
    pub fn conntrack(&self, zone: Option<u16>) -> Vec<ConnView> {
        let now = self.clock.now_ms();
        let bridge_of = |z: u16| {
            self.bridges
                .keys()
                .find(|b| self.zone_of(b) == Some(z))
                .cloned()
                .unwrap_or_default()
        };
        let ct = lock(&self.nat.state.conntrack);
        let mut v: Vec<ConnView> = ct
            .iter()
            .filter(|c| c.expires_ms > now && zone.is_none_or(|z| z == c.zone))
            .map(|c| ConnView {
                conn: *c,
                expires_in_ms: c.expires_ms - now,
                bridge: bridge_of(c.zone),
            })
            .collect();
        v.sort_by_key(|c| (c.conn.orig.proto, c.conn.orig.src, c.conn.orig.sport));
        v
    }

    pub fn ct_flush(&self, zone: Option<u16>) {
        lock(&self.nat.state.conntrack).flush(zone);
    }

    /// The table's counters, the routing drops summed over every port,
    /// and the packets dropped while waiting for ARP.
    pub fn ct_stats(&self) -> (Stats, Vec<(&'static str, u64)>, u64) {
        let s = lock(&self.nat.state.conntrack).stats();
        let drops: Vec<(&'static str, u64)> = crate::nat::NAT_DROPS
            .iter()
            .map(|r| {
                let n = self.ports.values().map(|p| p.stats.drops(*r)).sum();
                (r.name(), n)
            })
            .collect();
        let arp = lock(&self.nat.state.neighbors).dropped;
        (s, drops, arp)
    }
}
