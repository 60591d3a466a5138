//! Several hosts, one overlay: VXLAN networks whose members are shared
//! through etcd (`cluster/join`, `network/create`, bridges with
//! `other_config:network=NAME`).
//!
//! Each host keeps one lease in etcd and publishes under it its VTEP and,
//! for each network it has a bridge in, its members' MAC and IP addresses
//! ([`view`] lists the keys). Every host watches the whole prefix and keeps
//! a copy ([`view::View`]); the runtime turns that copy into the bridge's
//! tunnel port (its remotes are the hosts with members in the network),
//! static FDB entries toward each remote member's VTEP, and the table of
//! the ARP responder stage, so the tunnel carries known unicast and what is
//! truly unknown, and no ARP for a member.
//!
//! The etcd client ([`etcd`], over etcd's JSON gateway) runs on the
//! agent thread ([`agent`]) and, for commands that must be atomic across
//! hosts (network names and VNIs, addresses), on the control thread inside
//! the transaction; never on a poll thread. When etcd is unreachable the
//! last copy stays in force and `cluster/show` says "disconnected".

mod agent;
pub mod commands;
pub mod etcd;
mod http;
pub mod ipam;
pub mod overlay;
pub mod view;

use crate::config::{ClusterCfg, Config};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use view::View;

/// The bridge setting that puts a bridge in a network.
pub const NETWORK_KEY: &str = "network";
/// Lease TTL when `cluster/join` gives none.
pub const DEFAULT_TTL: u32 = 10;
/// How long one etcd request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command keeps trying while etcd's members are up but cannot
/// serve it, as while they elect a new leader.
pub const COMMAND_RETRY: Duration = Duration::from_secs(10);

/// The agent's state as `cluster/show` reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub connected: bool,
    /// The endpoint that answered last.
    pub endpoint: Option<String>,
    /// Why the last attempt failed, while disconnected.
    pub error: Option<String>,
    pub lease: i64,
    pub vtep: Option<Ipv4Addr>,
}

#[derive(Default)]
struct Inner {
    view: Arc<View>,
    /// Bumped on every change of `view`.
    generation: u64,
    status: Status,
}

/// What the agent thread and the control thread share.
#[derive(Default)]
pub(crate) struct Shared(Mutex<Inner>, Mutex<Option<Arc<mio::Waker>>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_view(&self, v: View) {
        {
            let mut i = self.lock();
            i.view = Arc::new(v);
            i.generation += 1;
        }
        // The control loop applies it now rather than at its next tick.
        if let Some(w) = self
            .1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = w.wake();
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.lock().status)
    }
}

/// The leased keys this host wants in etcd (its members), key to value.
pub type Desired = BTreeMap<String, Vec<u8>>;

/// This host's membership: the agent thread while joined, and the last
/// copy of the cluster's state.
#[derive(Default)]
pub struct Cluster {
    shared: Arc<Shared>,
    agent: Option<agent::Agent>,
    waker: Option<Arc<mio::Waker>>,
}

impl Cluster {
    /// What wakes the control loop when the cluster's state changes.
    pub fn set_waker(&mut self, w: Arc<mio::Waker>) {
        self.waker = Some(w);
        *self.shared.1.lock().unwrap_or_else(PoisonError::into_inner) = self.waker.clone();
    }

    /// Starts, restarts or stops the agent for `cfg`, and hands it the
    /// members this host should publish.
    pub fn configure(&mut self, cfg: Option<&ClusterCfg>, desired: Desired) {
        if self.agent.as_ref().map(|a| &a.cfg) != cfg {
            if let Some(a) = self.agent.take() {
                a.stop();
            }
            // A new membership starts from nothing: entries of another
            // cluster must not linger.
            self.shared = Arc::default();
            *self.shared.1.lock().unwrap_or_else(PoisonError::into_inner) = self.waker.clone();
            if let Some(c) = cfg {
                self.agent = Some(agent::Agent::start(c.clone(), self.shared.clone()));
            }
        }
        if let Some(a) = &self.agent {
            a.publish(desired);
        }
    }

    /// The last copy of the cluster's state.
    pub fn view(&self) -> Arc<View> {
        self.shared.lock().view.clone()
    }

    pub fn generation(&self) -> u64 {
        self.shared.lock().generation
    }

    pub fn status(&self) -> Status {
        self.shared.lock().status.clone()
    }

    pub fn joined(&self) -> bool {
        self.agent.is_some()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(a) = self.agent.take() {
            a.stop();
        }
    }
}

/// The network a bridge is part of, if any.
pub fn bridge_network(b: &crate::config::Bridge) -> Option<&str> {
    b.other_config
        .get(NETWORK_KEY)
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

/// The members this host publishes: every attachment with an address on
/// a bridge that is part of a network.
pub fn desired(cfg: &Config) -> Desired {
    let Some(c) = &cfg.cluster else {
        return Desired::new();
    };
    let mut out = Desired::new();
    for (bname, b) in &cfg.bridges {
        let Some(net) = bridge_network(b) else {
            continue;
        };
        for a in crate::attach::record::attachments(cfg, Some(bname)) {
            let (Some(mac), Some(ip)) = (a.get("mac"), a.get("ip")) else {
                continue;
            };
            let Some(ip) = ip
                .split('/')
                .next()
                .and_then(|i| i.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let rec = view::MemberRec {
                ip,
                container: a.container().to_string(),
            };
            out.insert(
                view::member_key(net, &c.host, mac),
                serde_json::to_vec(&rec).unwrap_or_default(),
            );
        }
    }
    out
}

/// The VTEP of a host joined with `cfg`: the one given, or the source
/// address of the route toward the first endpoint.
pub fn vtep_of(cfg: &ClusterCfg) -> Result<Ipv4Addr, String> {
    if let Some(v) = &cfg.vtep_ip {
        return v
            .parse()
            .map_err(|_| format!("--vtep-ip \"{v}\" is not an IPv4 address"));
    }
    let first = cfg.endpoints.first().ok_or("no etcd endpoint")?;
    let hostport = first.strip_prefix("http://").unwrap_or(first);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("endpoint {first} is not http://IP:PORT"))?;
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        return Err(format!("endpoint {first} is not IPv4; give --vtep-ip"));
    };
    ports::vxlan::route_to(ip, addr.port())
        .map(|r| r.local)
        .map_err(|e| format!("no route toward {first} to take a VTEP address from: {e}"))
}
