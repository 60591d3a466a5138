//! The running datapath: opened ports, bridges' MAC tables and the poll
//! threads, kept in step with the configuration.
//!
//! `apply` diffs the new configuration against what runs: ports that went
//! away or changed how they are opened are closed, new ones are opened, and a
//! new snapshot goes to the poll threads. Ports it does not touch keep their
//! queues and traffic.

mod cluster;
mod lab;
mod nat;
mod rstp;
pub use rstp::{PortRstpView, RstpView};
mod tunnels;

pub use lab::PATCH_KIND;
pub use nat::ConnView;
pub use tunnels::{EndpointView, RemoteView, TunnelView};

use crate::capture::{PortTaps, Tap};
use crate::config::Mirror;
use crate::config::{BridgeSettings, Config};
use crate::datapath::mirror::{MirrorCounters, MirrorOutputIngress};
use crate::datapath::pmd::{Clock, Command, IdlePolicy, Pmd, PmdReport};
use crate::datapath::stats::{PortCounters, PortStats};
use crate::datapath::storm::{FloodLimit, DEFAULT_PPS as FLOOD_DEFAULT};
use crate::datapath::{DpBridge, DpPort, Hooks, PortRef, Snapshot};
use crate::tunnel::{self, VxlanSpec};
use pipeline::arp_responder::{ArpResponder, ArpTable};
use pipeline::mac_table::{Dest, FdbEntry};
use pipeline::stage::Chain;
use pipeline::vlan::{VlanMode, VlanPort};
use pipeline::{MacTable, PortNo};
use ports::afxdp::UmemPool;
use ports::impair::{ImpairHandle, ImpairedTx};
use ports::{OpenPort, PortError, PortStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tunnels::TunnelRt;

/// Extra bytes allowed over the MTU: Ethernet header plus two VLAN tags.
const L2_OVERHEAD: usize = 14 + 8;

struct BridgeRt {
    macs: Arc<Mutex<MacTable>>,
    settings: BridgeSettings,
    /// The ports' own MAC limits (`other_config:mac-limit`) last given to
    /// `macs`.
    port_limits: Vec<(PortNo, usize)>,
    /// Port mirrors as configured, and the counters of each (kept across
    /// snapshots).
    mirrors: BTreeMap<String, (Mirror, Arc<MirrorCounters>)>,
    /// For a bridge in an overlay network: the ARP responder's answers.
    arp: Option<Arc<ArpTable>>,
    /// For a bridge with `rstp_enable=true`.
    rstp: Option<rstp::RstpRt>,
}

/// How a port is opened; a change in any of these reopens it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenSpec {
    bridge: String,
    kind: String,
    xdp_mode: String,
    /// For the uplink: the router's MAC and address. Its AF_XDP program
    /// then takes only the frames for that MAC and the ARP for that
    /// address, and the host keeps the rest (a NIC the host also uses).
    own_frames: Option<([u8; 6], u32)>,
    /// For an attached TAP port: the namespace file and the name of its
    /// device inside.
    tap_in: Option<(String, String)>,
    /// For a patch port: its peer's name.
    peer: Option<String>,
    /// `mtu_request`: the device's MTU is set to this before it opens.
    mtu: Option<u32>,
}

enum PortState {
    Open {
        dp: Arc<DpPort>,
        status: PortStatus,
        /// Poll thread of each receive queue.
        assigned: Vec<usize>,
    },
    Failed {
        error: String,
        /// Another switch serves the device.
        busy: bool,
    },
}

struct PortRt {
    port_no: PortNo,
    spec: OpenSpec,
    vlan: Arc<VlanPort>,
    /// A VXLAN port's settings and remotes.
    tunnel: Option<TunnelRt>,
    state: PortState,
    stats: Arc<PortStats>,
    /// Egress impairment (`options:delay=...`): the settings its
    /// transmit wrapper reads. `None` until a port is first impaired; the
    /// wrapper then stays, passing frames straight through when the
    /// options are removed.
    impair: Option<Arc<ImpairHandle>>,
    /// Storm control (`other_config:flood-limit`, frames per second).
    flood_pps: u64,
}

/// What `show` reports about a port at run time.
#[derive(Debug, Clone, Default)]
pub struct PortView {
    pub port_no: PortNo,
    pub status: Option<PortStatus>,
    pub error: Option<String>,
    /// The open failed because another switch serves the device.
    pub busy: bool,
}

pub struct Runtime {
    pmds: Vec<Pmd>,
    clock: Clock,
    bridges: BTreeMap<String, BridgeRt>,
    ports: BTreeMap<String, PortRt>,
    /// Receive queues assigned to each poll thread (for balancing).
    pmd_load: Vec<usize>,
    /// Packet memory of the AF_XDP ports: frames move between ports of a
    /// region without a copy.
    umem_pool: UmemPool,
    /// What marks the kernel objects this daemon makes as its own (it is
    /// hashed into attachment veths' MACs): "vswitch RUNDIR".
    owner: String,
    /// Routing and NAT: the connection table and neighbours.
    nat: nat::NatRt,
    /// The snapshot the poll threads run (for the control thread's own
    /// sends: repeated ARP questions).
    last_snap: Option<Arc<Snapshot>>,
    /// Running captures (`vswctl capture`).
    captures: Vec<Arc<Tap>>,
    /// The current snapshot, for threads other than the control thread
    /// (`trace --live`).
    shared_snap: SharedSnapshot,
    next_capture: u64,
    /// This host's membership of an etcd cluster (`cluster/join`).
    pub cluster: crate::cluster::Cluster,
    /// The cluster state generation last applied.
    cluster_seen: u64,
    /// The static FDB entries the overlay installed, by bridge.
    cluster_fdb: BTreeMap<String, cluster::Installed>,
    /// A MAC table was flushed: the overlay's entries must be installed
    /// again.
    overlay_flushed: std::sync::atomic::AtomicBool,
    /// The TAP attachment journal (see `set_tap_journal`).
    tap_journal: Option<std::path::PathBuf>,
}

impl Runtime {
    pub fn new(cores: &[Option<usize>], idle: IdlePolicy) -> std::io::Result<Runtime> {
        let clock = Clock::default();
        let mut pmds = Vec::new();
        for (i, c) in cores.iter().enumerate() {
            pmds.push(Pmd::spawn(i, *c, idle, clock)?);
        }
        Ok(Runtime {
            pmd_load: vec![0; pmds.len()],
            pmds,
            clock,
            bridges: BTreeMap::new(),
            ports: BTreeMap::new(),
            umem_pool: UmemPool::new(),
            owner: String::from("vswitch"),
            nat: nat::NatRt::new(),
            last_snap: None,
            captures: Vec::new(),
            shared_snap: SharedSnapshot::default(),
            next_capture: 1,
            cluster: crate::cluster::Cluster::default(),
            cluster_seen: 0,
            cluster_fdb: BTreeMap::new(),
            overlay_flushed: std::sync::atomic::AtomicBool::new(false),
            tap_journal: None,
        })
    }

    /// Where attach journals TAP devices across a crash
    /// (`crate::attach::intents`); none in tests without a run directory.
    pub fn set_tap_journal(&mut self, path: std::path::PathBuf) {
        self.tap_journal = Some(path);
    }

    pub fn tap_journal(&self) -> Option<&std::path::Path> {
        self.tap_journal.as_deref()
    }

    /// Sets what marks this daemon's kernel objects (see `owner`).
    pub fn set_owner(&mut self, owner: String) {
        self.owner = owner;
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Brings the running datapath in line with `cfg`, the configuration
    /// with the cluster's overlay added (see [`Runtime::apply`]).
    fn apply_effective(&mut self, cfg: &Config) {
        let wanted = desired_ports(cfg);
        self.configure_nat(cfg);

        // Close ports that are gone or must be reopened.
        let stale: Vec<String> = self
            .ports
            .iter()
            .filter(|(name, p)| wanted.get(*name) != Some(&p.spec))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            self.close_port(name);
        }
        self.bridges.retain(|b, _| cfg.bridges.contains_key(b));
        for (name, br) in &cfg.bridges {
            let settings = br.settings();
            let rt = self
                .bridges
                .entry(name.clone())
                .or_insert_with(|| BridgeRt {
                    macs: Arc::new(Mutex::new(MacTable::new(
                        settings.mac_table_size,
                        settings.mac_aging_secs,
                    ))),
                    settings,
                    port_limits: Vec::new(),
                    mirrors: BTreeMap::new(),
                    arp: None,
                    rstp: None,
                });
            rt.mirrors.retain(|m, _| br.mirrors.contains_key(m));
            for (m, cfg_m) in &br.mirrors {
                let e = rt
                    .mirrors
                    .entry(m.clone())
                    .or_insert_with(|| (cfg_m.clone(), Arc::default()));
                e.0 = cfg_m.clone();
            }
            if rt.settings != settings {
                lock(&rt.macs).set_limits(settings.mac_table_size, settings.mac_aging_secs);
                rt.settings = settings;
            }
        }
        if !stale.is_empty() {
            // Make sure the poll threads dropped the old queues before the
            // same devices are opened again.
            self.publish();
        }
        let mut specs = tunnel::vxlan_ports(cfg);
        for (name, spec) in wanted {
            let vlan = Arc::new(vlan_port(cfg, &name));
            let vxlan: Option<VxlanSpec> = specs.remove(&name).and_then(Result::ok);
            if let Some(p) = self.ports.get_mut(&name) {
                p.vlan = vlan;
                p.tunnel = vxlan.map(|s| TunnelRt::new(s, p.tunnel.take()));
            } else {
                let port_no = match cfg.ofport(&name) {
                    Some(n) if !self.ports.values().any(|p| p.port_no == n) => n,
                    _ => self.free_port_no(cfg),
                };
                let stats = Arc::new(PortStats::default());
                let state = PortState::Failed {
                    error: String::new(),
                    busy: false,
                };
                self.ports.insert(
                    name.clone(),
                    PortRt {
                        port_no,
                        spec,
                        vlan,
                        tunnel: vxlan.map(|s| TunnelRt::new(s, None)),
                        state,
                        stats,
                        impair: None,
                        flood_pps: FLOOD_DEFAULT,
                    },
                );
                self.try_open(&name);
            }
        }
        self.apply_port_mac_limits(cfg);
        self.apply_impairments(cfg);
        self.apply_flood_limits(cfg);
        self.configure_rstp(cfg);
        self.publish();
    }

    /// Gives each bridge's table its ports' own MAC limits, when they
    /// changed. The ports stay open.
    fn apply_port_mac_limits(&mut self, cfg: &Config) {
        for (name, br) in &cfg.bridges {
            let Some(rt) = self.bridges.get_mut(name) else {
                continue;
            };
            let limits: Vec<(PortNo, usize)> = br
                .ports
                .iter()
                .filter_map(|(p, port)| Some((self.ports.get(p)?.port_no, port.mac_limit())))
                .filter(|&(_, limit)| limit != 0)
                .collect();
            if rt.port_limits != limits {
                lock(&rt.macs).set_port_limits(&limits);
                rt.port_limits = limits;
            }
        }
    }

    /// Retries ports that failed to open (a device that appeared later).
    pub fn retry_failed(&mut self) {
        let failed: Vec<String> = self
            .ports
            .iter()
            .filter(|(_, p)| matches!(p.state, PortState::Failed { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        let mut opened = false;
        for name in failed {
            opened |= self.try_open(&name);
        }
        if opened {
            self.publish();
        }
    }

    /// Notices open ports whose kernel device went away (or was replaced by
    /// a new one of the same name): their queues are closed, the port shows
    /// the error, and `retry_failed` opens it again when the device is back.
    /// A port whose device's MTU changed (`ip link set ... mtu`) is opened
    /// again at once, so the frames it takes follow the new MTU.
    pub fn check_devices(&mut self) {
        if self.refresh_tunnel_routes() {
            self.publish();
        }
        let changed: Vec<(String, Option<(u32, u32)>)> = self
            .ports
            .iter()
            .filter_map(|(name, p)| match &p.state {
                PortState::Open { status, .. }
                    if status.backend == "afxdp" || status.backend == "afpacket" =>
                {
                    if ports::netdev::ifindex(name).ok() != Some(status.ifindex) {
                        return Some((name.clone(), None));
                    }
                    let mtu = ports::netdev::mtu(name).ok()?;
                    (mtu != status.mtu).then(|| (name.clone(), Some((status.mtu, mtu))))
                }
                _ => None,
            })
            .collect();
        if changed.is_empty() {
            return;
        }
        for (name, mtu) in &changed {
            match mtu {
                None => log::warn!("port {name}: network device disappeared; closing its queues"),
                Some((was, now)) => {
                    log::info!("port {name}: device MTU changed from {was} to {now}; reopening")
                }
            }
            self.unplug(name);
        }
        self.publish();
        for (name, _) in &changed {
            self.try_open(name);
        }
        self.publish();
    }

    /// Takes a port's queues away from the poll threads, forgets what it
    /// learned, and leaves it configured in the failed state. Returns true
    /// if it was open.
    fn unplug(&mut self, name: &str) -> bool {
        let Some(p) = self.ports.get_mut(name) else {
            return false;
        };
        for pmd in &self.pmds {
            pmd.send(Command::RemovePort(p.port_no));
        }
        let was_open = matches!(p.state, PortState::Open { .. });
        if let PortState::Open { assigned, .. } = &p.state {
            for &pmd in assigned {
                self.pmd_load[pmd] = self.pmd_load[pmd].saturating_sub(1);
            }
        }
        p.state = PortState::Failed {
            error: format!("could not open network device {name} (No such device)"),
            busy: false,
        };
        if let Some(b) = self.bridges.get(&p.spec.bridge) {
            lock(&b.macs).flush_port(p.port_no);
        }
        was_open
    }

    /// Ages every bridge's MAC table. Called about once a second.
    pub fn age(&self) {
        let now = self.clock.now_ms();
        for b in self.bridges.values() {
            lock(&b.macs).age(now);
        }
        self.nat_tick();
    }

    /// The snapshot the poll threads run now.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.last_snap.clone()
    }

    /// A handle on the current snapshot, kept up to date.
    pub fn shared_snapshot(&self) -> (SharedSnapshot, Clock) {
        (self.shared_snap.clone(), self.clock)
    }

    /// The datapath number of an open port.
    pub fn port_no(&self, name: &str) -> Option<PortNo> {
        let p = self.ports.get(name)?;
        matches!(p.state, PortState::Open { .. }).then_some(p.port_no)
    }

    /// The datapath clock (milliseconds).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// True for a port the configuration has (open or not).
    pub fn has_port(&self, name: &str) -> bool {
        self.ports.contains_key(name)
    }

    pub fn port_view(&self, name: &str) -> PortView {
        match self.ports.get(name) {
            None => PortView::default(),
            Some(p) => match &p.state {
                PortState::Open { status, .. } => PortView {
                    port_no: p.port_no,
                    status: Some(status.clone()),
                    error: None,
                    busy: false,
                },
                PortState::Failed { error, busy } => PortView {
                    port_no: p.port_no,
                    status: None,
                    error: Some(error.clone()),
                    busy: *busy,
                },
            },
        }
    }

    /// MAC table of `bridge`, with port names.
    pub fn fdb(&self, bridge: &str) -> Vec<(String, FdbEntry)> {
        let Some(b) = self.bridges.get(bridge) else {
            return Vec::new();
        };
        let names: BTreeMap<PortNo, &str> = self
            .ports
            .iter()
            .map(|(n, p)| (p.port_no, n.as_str()))
            .collect();
        lock(&b.macs)
            .entries(self.clock.now_ms())
            .into_iter()
            .map(|e| (names.get(&e.port).unwrap_or(&"?").to_string(), e))
            .collect()
    }

    /// Adds a static entry: `mac` in `vlan` lives behind `port` (and, for
    /// a tunnel port, `remote`).
    pub fn fdb_add(
        &self,
        bridge: &str,
        vlan: u16,
        mac: &[u8; 6],
        port: &str,
        remote: Option<std::net::Ipv4Addr>,
    ) -> Result<(), String> {
        let b = self
            .bridges
            .get(bridge)
            .ok_or_else(|| format!("no bridge named {bridge}"))?;
        let p = self
            .ports
            .get(port)
            .filter(|p| p.spec.bridge == bridge)
            .ok_or_else(|| format!("bridge {bridge} has no port named {port}"))?;
        let dest = Dest::new(p.port_no, remote.map_or(0, u32::from));
        if lock(&b.macs).add_static(vlan, mac, dest) {
            Ok(())
        } else {
            Err(format!(
                "the MAC table of {bridge} is full of static entries"
            ))
        }
    }

    /// Removes the entry of `mac` in `vlan`; false when there was none.
    pub fn fdb_del(&self, bridge: &str, vlan: u16, mac: &[u8; 6]) -> bool {
        self.bridges
            .get(bridge)
            .is_some_and(|b| lock(&b.macs).remove(vlan, mac))
    }

    pub fn fdb_flush(&self, bridge: Option<&str>) {
        for (name, b) in &self.bridges {
            if bridge.is_none_or(|x| x == name) {
                lock(&b.macs).flush();
            }
        }
        // The overlay's static entries went too: installed again at the
        // next cluster tick.
        self.overlay_flushed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Flushes what `port` learned (its VLAN configuration changed).
    pub fn fdb_flush_port(&self, port: &str) {
        if let Some(p) = self.ports.get(port) {
            if let Some(b) = self.bridges.get(&p.spec.bridge) {
                lock(&b.macs).flush_port(p.port_no);
            }
        }
    }

    pub fn counters(&self, port: &str) -> Option<PortCounters> {
        self.ports.get(port).map(|p| p.stats.snapshot(port))
    }

    pub fn pmd_reports(&self) -> Vec<PmdReport> {
        self.pmds.iter().map(|p| p.report()).collect()
    }

    /// An error naming the first poll thread that has died. A switch whose
    /// poll thread is gone forwards nothing on its queues, so the daemon
    /// stops rather than pretend (a supervisor restarts it).
    pub fn check_pmds(&self) -> Result<(), String> {
        match self.pmds.iter().find(|p| !p.is_alive()) {
            Some(p) => Err(format!(
                "poll thread {} (core {:?}) has died; stopping",
                p.id, p.core
            )),
            None => Ok(()),
        }
    }

    pub fn pmd_clear(&self) {
        for p in &self.pmds {
            p.clear_stats();
        }
    }

    /// Closes every port (clean shutdown): detaches XDP programs, deletes TAPs.
    pub fn shutdown(&mut self) {
        let names: Vec<String> = self.ports.keys().cloned().collect();
        for n in names {
            self.close_port(&n);
        }
        self.publish();
        self.pmds.clear();
    }

    /// The lowest port number neither open nor given to a port in `cfg`.
    fn free_port_no(&self, cfg: &Config) -> PortNo {
        let mut used: std::collections::BTreeSet<PortNo> =
            self.ports.values().map(|p| p.port_no).collect();
        for b in cfg.bridges.values() {
            used.extend(b.ofport);
            used.extend(b.ports.values().filter_map(|p| p.ofport));
        }
        used.extend(cfg.uplink.as_ref().and_then(|u| u.ofport));
        (1..PortNo::MAX).find(|n| !used.contains(n)).unwrap_or(0)
    }

    fn close_port(&mut self, name: &str) {
        if self.unplug(name) {
            log::info!("port {name}: closed");
        }
        self.ports.remove(name);
    }

    /// Opens port `name`; returns true when it is now open.
    fn try_open(&mut self, name: &str) -> bool {
        let Some(p) = self.ports.get(name) else {
            return false;
        };
        let (port_no, spec, stats) = (p.port_no, p.spec.clone(), p.stats.clone());
        // A VXLAN endpoint cuts TCP super-frames to the tunnels' inner MTU
        // (looked up for endpoints only: one pass over the ports each).
        let segment_mtu = if spec.kind == tunnel::ENDPOINT_KIND {
            self.ports
                .values()
                .filter_map(|p| p.tunnel.as_ref()?.inner_mtu())
                .min()
                .map_or(ports::vxlan::DEFAULT_SEGMENT_MTU, |m| m as usize)
        } else {
            ports::vxlan::DEFAULT_SEGMENT_MTU
        };
        let result = set_requested_mtu(name, &spec)
            .and_then(|()| open_port(name, &spec, &self.umem_pool, segment_mtu));
        let Some(p) = self.ports.get_mut(name) else {
            return false;
        };
        match result {
            Ok(open) => {
                let OpenPort {
                    rxqs,
                    mut tx,
                    status,
                } = open;
                if let Some(h) = &p.impair {
                    tx = Box::new(ImpairedTx::new(tx, h.clone()));
                }
                let dp = Arc::new(DpPort {
                    name: name.to_string(),
                    port_no,
                    max_frame: status.mtu as usize + L2_OVERHEAD,
                    timed_flush: tx.flush_is_syscall(),
                    takes_gso: tx.takes_gso(),
                    tx: Mutex::new(tx),
                    stats,
                    flood_limit: FloodLimit::new(p.flood_pps),
                });
                log::info!(
                    "port {name}: opened as {} {} (port {port_no}, {} rx queue(s))",
                    status.backend,
                    status.mode,
                    rxqs.len()
                );
                if let Some(r) = &status.fallback_reason {
                    log::warn!("port {name}: using {} because {r}", status.backend);
                }
                let mut assigned = Vec::new();
                for (queue, rxq) in rxqs.into_iter().enumerate() {
                    let pmd = least_loaded(&self.pmd_load);
                    self.pmd_load[pmd] += 1;
                    assigned.push(pmd);
                    self.pmds[pmd].send(Command::AddRxq {
                        port_no,
                        name: name.to_string(),
                        queue,
                        rxq,
                    });
                }
                p.state = PortState::Open {
                    dp,
                    status,
                    assigned,
                };
                true
            }
            Err(e) => {
                let error = if e.is_missing_device() {
                    format!("could not open network device {name} (No such device)")
                } else {
                    e.to_string()
                };
                if !matches!(&p.state, PortState::Failed { error: old, .. } if *old == error) {
                    log::warn!("port {name}: {error}");
                }
                p.state = PortState::Failed {
                    error,
                    busy: e.is_busy(),
                };
                false
            }
        }
    }

    /// Builds a snapshot from the open ports and hands it to every poll
    /// thread, then waits until all of them use it.
    fn publish(&mut self) {
        self.sync_rstp_ports();
        let names: Vec<&String> = self.bridges.keys().collect();
        let router = self.build_router(&names);
        let mut snap = Snapshot {
            ports: Vec::new(),
            bridges: names
                .iter()
                .map(|n| DpBridge {
                    name: n.to_string(),
                    ports: Vec::new(),
                    macs: self.bridges[*n].macs.clone(),
                    mirrors: self.mirrors_of(n),
                })
                .collect(),
            router: router.clone(),
        };
        for (name, p) in &self.ports {
            let PortState::Open { dp, .. } = &p.state else {
                continue;
            };
            let port = if p.spec.kind == tunnel::ENDPOINT_KIND {
                let udp_port = tunnel::endpoint_port(name).unwrap_or(0);
                PortRef::endpoint(
                    dp.clone(),
                    p.vlan.clone(),
                    Arc::new(tunnels::decap_for(&self.ports, udp_port)),
                )
            } else if let Some(r) = router.as_ref().filter(|_| self.is_uplink(name)) {
                PortRef::uplink(dp.clone(), r)
            } else {
                let Some(bridge) = names.iter().position(|b| **b == p.spec.bridge) else {
                    continue;
                };
                if self.is_mirror_output(&p.spec.bridge, name) {
                    // Copies only: out of floods and learning.
                    let mut port = PortRef::in_bridge(
                        dp.clone(),
                        bridge,
                        p.vlan.clone(),
                        &self.bridges[&p.spec.bridge].macs,
                    );
                    port.ingress = Chain::new(vec![Arc::new(MirrorOutputIngress)]);
                    port
                } else {
                    let gate = self.rstp_gate(&p.spec.bridge, p.port_no);
                    if gate.as_ref().is_none_or(|(_, forwarding)| *forwarding) {
                        snap.bridges[bridge].ports.push(p.port_no);
                    }
                    let macs = &self.bridges[&p.spec.bridge].macs;
                    let gateway = router.as_ref().and_then(|r| {
                        Some((r, r.cfg.gateways.iter().position(|g| g.bridge == bridge)?))
                    });
                    let mut port = match gateway {
                        Some((r, g)) => PortRef::in_routed_bridge(
                            dp.clone(),
                            bridge,
                            p.vlan.clone(),
                            macs,
                            r,
                            g,
                        ),
                        None => PortRef::in_bridge(dp.clone(), bridge, p.vlan.clone(), macs),
                    };
                    port.encap = p.tunnel.as_ref().map(|t| Arc::new(t.encap()));
                    if let Some(t) = self.bridges[&p.spec.bridge].arp.as_ref() {
                        if p.tunnel.is_none() {
                            // After VLAN classification, before L2.
                            port.ingress = port
                                .ingress
                                .with_inserted(1, Arc::new(ArpResponder(t.clone())));
                        }
                    }
                    if let Some((g, _)) = gate {
                        // First: BPDUs are untagged, and a blocked port
                        // lets nothing in.
                        port.ingress = port.ingress.with_inserted(0, g);
                    }
                    port
                }
            };
            let port = PortRef {
                hooks: Hooks::new(
                    PortTaps::for_port(name, &self.captures),
                    self.patch_peer_of(p),
                ),
                ..port
            };
            let idx = p.port_no as usize;
            if snap.ports.len() <= idx {
                snap.ports.resize(idx + 1, None);
            }
            snap.ports[idx] = Some(port);
        }
        let snap = Arc::new(snap);
        for pmd in &self.pmds {
            pmd.send(Command::Snapshot(snap.clone()));
        }
        for pmd in &self.pmds {
            pmd.sync();
        }
        *lock(&self.shared_snap) = Some(snap.clone());
        self.last_snap = Some(snap);
    }
}

/// Gives the device the MTU `mtu_request` asks for, before it opens (an
/// attached TAP device lives in its container and keeps its own).
fn set_requested_mtu(name: &str, spec: &OpenSpec) -> Result<(), PortError> {
    let Some(m) = spec.mtu.filter(|_| spec.tap_in.is_none()) else {
        return Ok(());
    };
    if !ports::netdev::exists(name) || ports::netdev::mtu(name).ok() == Some(m) {
        return Ok(());
    }
    ports::netdev::set_mtu(name, m)
        .map_err(|e| PortError::new(name, format!("setting MTU {m} (mtu_request)"), e))
}

/// The snapshot in use, for threads other than the control thread.
pub type SharedSnapshot = Arc<Mutex<Option<Arc<Snapshot>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|(_, l)| **l)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// Every port the configuration asks for, including each bridge's internal
/// port, with how to open it.
fn desired_ports(cfg: &Config) -> BTreeMap<String, OpenSpec> {
    let mut out = BTreeMap::new();
    for (bname, br) in &cfg.bridges {
        out.insert(
            bname.clone(),
            OpenSpec {
                bridge: bname.clone(),
                kind: "internal".into(),
                xdp_mode: String::new(),
                own_frames: None,
                tap_in: None,
                peer: None,
                mtu: None,
            },
        );
        for (pname, p) in &br.ports {
            out.insert(
                pname.clone(),
                OpenSpec {
                    bridge: bname.clone(),
                    kind: p.kind.clone(),
                    xdp_mode: p.options.get("xdp-mode").cloned().unwrap_or_default(),
                    own_frames: None,
                    tap_in: p
                        .options
                        .get("netns")
                        .zip(p.options.get("ifname"))
                        .filter(|_| p.kind == "tap")
                        .map(|(n, i)| (n.clone(), i.clone())),
                    peer: p
                        .options
                        .get("peer")
                        .filter(|_| p.kind == PATCH_KIND)
                        .cloned(),
                    mtu: p.mtu_request,
                },
            );
        }
    }
    if let Some(u) = &cfg.uplink {
        let ip = crate::nat::uplink_addrs(u)
            .ok()
            .map(|(a, _)| u32::from(a.ip));
        out.insert(
            u.port.clone(),
            OpenSpec {
                bridge: String::new(),
                kind: u.kind.clone(),
                xdp_mode: String::new(),
                own_frames: ip.map(|ip| (crate::nat::uplink_mac(&u.port), ip)),
                tap_in: None,
                peer: None,
                mtu: None,
            },
        );
    }
    for udp_port in tunnel::dst_ports(cfg) {
        out.insert(
            tunnel::endpoint_name(udp_port),
            OpenSpec {
                bridge: String::new(),
                kind: tunnel::ENDPOINT_KIND.into(),
                xdp_mode: String::new(),
                own_frames: None,
                tap_in: None,
                peer: None,
                mtu: None,
            },
        );
    }
    out
}

fn open_port(
    name: &str,
    spec: &OpenSpec,
    pool: &UmemPool,
    segment_mtu: usize,
) -> Result<OpenPort, PortError> {
    use ports::afxdp::{self, XdpMode};
    let mode = || -> XdpMode { spec.xdp_mode.parse().unwrap_or(XdpMode::BestEffort) };
    let own = spec
        .own_frames
        .map(|(mac, ip)| afxdp::OwnFrames { mac, ip });
    match spec.kind.as_str() {
        "internal" => {
            // A stable MAC, so the host's neighbours and `show` do not
            // change across restarts.
            let mut port = ports::tap::create(name, true)?;
            let mac = ports::netdev::stable_mac(name);
            match ports::netdev::set_mac(name, mac) {
                Ok(()) => port.status.mac = mac,
                Err(e) => log::warn!("port {name}: cannot set MAC: {e}"),
            }
            Ok(port)
        }
        "tap" => match &spec.tap_in {
            Some((netns, ifname)) => {
                ports::tap::open_vnet(ifname, Some(std::path::Path::new(netns)))
            }
            None => ports::tap::create(name, false),
        },
        // Frames leave a patch port into its peer's chain (the
        // forwarder), never through this transmit half.
        PATCH_KIND => Ok(OpenPort {
            rxqs: Vec::new(),
            tx: Box::new(ports::memory::SinkTx::default()),
            status: PortStatus {
                backend: "patch".into(),
                mtu: ports::MAX_MTU,
                ..PortStatus::default()
            },
        }),
        tunnel::KIND => Ok(OpenPort {
            rxqs: Vec::new(),
            tx: Box::new(ports::vxlan::open_tx()?),
            status: PortStatus {
                backend: "vxlan".into(),
                // The underlay MTU limits what leaves (`Encap::max_inner`).
                mtu: ports::MAX_MTU,
                ..PortStatus::default()
            },
        }),
        tunnel::ENDPOINT_KIND => {
            let udp_port = tunnel::endpoint_port(name).unwrap_or(0);
            Ok(OpenPort {
                rxqs: vec![Box::new(
                    ports::vxlan::open_rx(None, udp_port)?.with_segment_mtu(segment_mtu),
                )],
                tx: Box::new(ports::memory::SinkTx::default()),
                status: PortStatus {
                    backend: "vxlan-endpoint".into(),
                    mtu: ports::MAX_MTU,
                    ..PortStatus::default()
                },
            })
        }
        "afpacket" => ports::afpacket::open(name, None),
        "afxdp" => afxdp::open_pooled_filtered(name, mode(), pool, own),
        _ => match afxdp::open_pooled_filtered(name, mode(), pool, own) {
            Ok(p) => Ok(p),
            // Busy: another switch serves it; taking it over through
            // AF_PACKET would make two switches forward its frames.
            Err(e) if e.is_missing_device() || e.is_busy() => Err(e),
            Err(e) => ports::afpacket::open(name, Some(format!("AF_XDP failed: {e}"))),
        },
    }
}

/// The VLAN settings of port `name` (a bridge's internal port has none).
fn vlan_port(cfg: &Config, name: &str) -> VlanPort {
    let Some(p) = cfg.port(name) else {
        return VlanPort::default();
    };
    let mode = p.vlan_mode.as_deref().and_then(|m| match m {
        "access" => Some(VlanMode::Access),
        "trunk" => Some(VlanMode::Trunk),
        "native-tagged" => Some(VlanMode::NativeTagged),
        "native-untagged" => Some(VlanMode::NativeUntagged),
        "dot1q-tunnel" => Some(VlanMode::Dot1qTunnel),
        _ => None,
    });
    let cvlans: Vec<u16> = p
        .other_config
        .get("cvlans")
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_default();
    let qinq_8021q = p.other_config.get("qinq-ethtype").map(String::as_str) == Some("802.1q");
    VlanPort::new(mode, p.tag, &p.trunks, &cvlans, qinq_8021q)
}
