//! RSTP (IEEE 802.1D-2004 clause 17) for one bridge, as the control thread
//! runs it: BPDUs in ([`Rstp::receive`]), time passing ([`Rstp::tick`]),
//! BPDUs out and port states to apply.
//!
//! What is implemented, in the standard's terms:
//! - port role selection from priority vectors: root, designated,
//!   alternate, backup (a port that hears this bridge's own BPDUs, as one
//!   veth joining two ports of the bridge does);
//! - rapid transitions: a root port forwards at once, alternate and backup
//!   ports discard at once, a designated port forwards at once when its peer
//!   agrees to its proposal (the sync of the far bridge), when it is an edge
//!   port (`rstp-port-admin-edge`, or no BPDU heard for 3 s with
//!   `rstp-port-auto-edge`), and otherwise after twice the forward delay,
//!   learning from halfway;
//! - proposals received on the root port sync the other designated ports
//!   (they discard and propose downstream) and are agreed to;
//! - topology changes: a non-edge port that starts forwarding, or a BPDU
//!   with the TC flag, flushes the bridge's MAC table and sets TC in the
//!   BPDUs of the other ports for two hello times;
//! - received information ages out after three hello times; at most
//!   [`TX_HOLD`] BPDUs a second per port.
//!
//! Not implemented: STP (802.1D-1998) compatibility mode (configuration
//! BPDUs and TCNs are read, RST BPDUs always sent), point-to-point
//! detection (every link is taken as point-to-point), and a port's learning
//! state learning MACs (it discards like a discarding port).

pub mod bpdu;
pub mod show;

use bpdu::{Bpdu, Times, Vector, WireRole};
use pipeline::PortNo;
use std::collections::BTreeMap;

/// How long a designated port waits for a BPDU before it counts as an
/// edge port (802.1D's migrate time), in milliseconds.
pub const EDGE_DELAY_MS: u64 = 3_000;
/// BPDUs one port sends in one second at most (802.1D's TxHoldCount).
pub const TX_HOLD: u32 = 6;

/// Port roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Root,
    Designated,
    Alternate,
    Backup,
    /// `other_config:rstp-enable=false`: not part of the tree, forwards.
    Disabled,
}

/// Port states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Discarding,
    Learning,
    Forwarding,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Designated => "designated",
            Role::Alternate => "alternate",
            Role::Backup => "backup",
            Role::Disabled => "disabled",
        }
    }
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Discarding => "discarding",
            State::Learning => "learning",
            State::Forwarding => "forwarding",
        }
    }
}

/// A bridge's RSTP settings (`other_config:rstp-*` of the bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeCfg {
    pub priority: u16,
    pub mac: [u8; 6],
    pub hello: u16,
    pub max_age: u16,
    pub forward_delay: u16,
}

/// A port's RSTP settings (`other_config:rstp-*` of the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortCfg {
    pub enabled: bool,
    pub priority: u8,
    pub cost: u32,
    pub admin_edge: bool,
    pub auto_edge: bool,
}

impl Default for PortCfg {
    fn default() -> Self {
        PortCfg {
            enabled: true,
            priority: 128,
            cost: 20_000,
            admin_edge: false,
            auto_edge: true,
        }
    }
}

/// Information a port received from the designated port of its link.
#[derive(Debug, Clone, Copy)]
struct Received {
    vector: Vector,
    times: Times,
    expires_ms: u64,
}

/// One port's RSTP state.
#[derive(Debug, Clone)]
pub struct Port {
    pub cfg: PortCfg,
    pub id: u16,
    pub role: Role,
    pub state: State,
    pub oper_edge: bool,
    rcvd: Option<Received>,
    /// No BPDU heard since then: an auto-edge port becomes an edge port.
    edge_at_ms: u64,
    /// A designated port on its way to forwarding: when it learns, when
    /// it forwards (unless its proposal is agreed to first).
    learn_at_ms: Option<u64>,
    forward_at_ms: Option<u64>,
    agreed: bool,
    proposal_rcvd: bool,
    send_agreement: bool,
    /// A BPDU must go out now (role change, proposal, inferior info heard).
    send_now: bool,
    /// TC is set in this port's BPDUs until then.
    tc_until_ms: u64,
    tx_window_ms: u64,
    tx_in_window: u32,
    pub rx_bpdus: u64,
    pub tx_bpdus: u64,
}

/// What a tick asks of the datapath.
#[derive(Debug, Default)]
pub struct Actions {
    /// BPDUs to send, by port.
    pub send: Vec<(PortNo, Bpdu)>,
    /// Some port's state changed: the datapath must be rebuilt.
    pub states_changed: bool,
    /// The topology changed: flush the bridge's MAC table.
    pub flush: bool,
}

/// RSTP of one bridge.
pub struct Rstp {
    cfg: BridgeCfg,
    id: u64,
    pub ports: BTreeMap<PortNo, Port>,
    root: Vector,
    root_port: Option<PortNo>,
    root_times: Times,
    next_hello_ms: u64,
    flush: bool,
}

/// A bridge identifier: priority, then MAC.
pub fn bridge_id(priority: u16, mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&priority.to_be_bytes());
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b)
}

/// `priority.system-id` text of a bridge identifier, as `rstp/show` prints.
pub fn id_text(id: u64) -> String {
    let b = id.to_be_bytes();
    format!(
        "{}.{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u16::from_be_bytes([b[0], b[1]]),
        b[2],
        b[3],
        b[4],
        b[5],
        b[6],
        b[7]
    )
}

impl Rstp {
    pub fn new(cfg: BridgeCfg) -> Rstp {
        let id = bridge_id(cfg.priority, cfg.mac);
        Rstp {
            cfg,
            id,
            ports: BTreeMap::new(),
            root: Vector {
                root: id,
                cost: 0,
                bridge: id,
                port: 0,
            },
            root_port: None,
            root_times: own_times(&cfg),
            next_hello_ms: 0,
            flush: false,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn cfg(&self) -> &BridgeCfg {
        &self.cfg
    }

    /// The root bridge, the cost to it and the root port (`None` when this
    /// bridge is the root).
    pub fn root(&self) -> (u64, u32, Option<PortNo>) {
        (self.root.root, self.root.cost, self.root_port)
    }

    pub fn root_times(&self) -> Times {
        self.root_times
    }

    /// New bridge settings; a new identifier starts the election over.
    pub fn set_cfg(&mut self, cfg: BridgeCfg) {
        if cfg != self.cfg {
            self.cfg = cfg;
            self.id = bridge_id(cfg.priority, cfg.mac);
            for p in self.ports.values_mut() {
                p.send_now = true;
            }
        }
    }

    /// The bridge's ports are now `ports`: new ones start discarding as
    /// designated ports, gone ones are forgotten, settings are updated.
    pub fn set_ports(&mut self, ports: &[(PortNo, PortCfg)], now_ms: u64) {
        self.ports
            .retain(|no, _| ports.iter().any(|(n, _)| n == no));
        for &(no, cfg) in ports {
            let id = (u16::from(cfg.priority >> 4) << 12) | (no & 0x0fff);
            match self.ports.get_mut(&no) {
                Some(p) if p.cfg == cfg => {}
                Some(p) => {
                    if cfg.admin_edge != p.cfg.admin_edge {
                        p.oper_edge = cfg.admin_edge;
                    }
                    p.cfg = cfg;
                    p.id = id;
                    p.send_now = true;
                }
                None => {
                    self.ports.insert(no, Port::new(cfg, id, now_ms));
                }
            }
        }
    }

    /// A BPDU received on port `no`.
    pub fn receive(&mut self, no: PortNo, b: &Bpdu, now_ms: u64) {
        let hello = u64::from(self.cfg.hello);
        let Some(p) = self.ports.get_mut(&no) else {
            return;
        };
        if p.role == Role::Disabled {
            return;
        }
        p.rx_bpdus += 1;
        if !p.cfg.admin_edge {
            p.oper_edge = false;
        }
        p.edge_at_ms = now_ms + EDGE_DELAY_MS;
        if b.has(bpdu::TC) {
            self.topology_change(Some(no), now_ms, hello);
        }
        if b.tcn {
            return;
        }
        let Some(p) = self.ports.get_mut(&no) else {
            return;
        };
        match b.role() {
            WireRole::Designated => {
                let life = 3 * u64::from(b.times.hello.max(1)) * 1000;
                p.rcvd = Some(Received {
                    vector: b.vector,
                    times: b.times,
                    expires_ms: now_ms + life,
                });
                if b.has(bpdu::PROPOSAL) {
                    p.proposal_rcvd = true;
                }
                let mine = designated_vector(&self.root, self.id, p.id);
                if b.vector > mine {
                    // The far end thinks it is designated: tell it better.
                    p.send_now = true;
                }
            }
            WireRole::Root | WireRole::AlternateOrBackup => {
                if b.has(bpdu::AGREEMENT) && p.role == Role::Designated {
                    p.agreed = true;
                }
            }
            WireRole::Unknown => {}
        }
    }

    /// Ages information, chooses roles, moves states and says what to
    /// send. Call after the BPDUs received, and at least every 250 ms.
    pub fn tick(&mut self, now_ms: u64) -> Actions {
        let before: Vec<State> = self.ports.values().map(|p| p.state).collect();
        for p in self.ports.values_mut() {
            if p.rcvd.is_some_and(|r| r.expires_ms <= now_ms) {
                p.rcvd = None;
            }
        }
        self.select_roles(now_ms);
        self.sync_on_proposal();
        let fd = u64::from(self.root_times.forward_delay.max(1)) * 1000;
        let hello = u64::from(self.cfg.hello);
        let mut new_forwarding = Vec::new();
        for (&no, p) in self.ports.iter_mut() {
            if p.step(now_ms, fd) {
                new_forwarding.push(no);
            }
        }
        for no in new_forwarding {
            self.topology_change(Some(no), now_ms, hello);
        }
        let mut a = Actions {
            send: self.bpdus(now_ms),
            states_changed: self.ports.values().map(|p| p.state).ne(before),
            flush: std::mem::take(&mut self.flush),
        };
        a.send.sort_by_key(|(no, _)| *no);
        a
    }

    /// Port role selection (802.1D 17.21.25, updtRolesTree).
    fn select_roles(&mut self, now_ms: u64) {
        let id = self.id;
        let mut root = Vector {
            root: id,
            cost: 0,
            bridge: id,
            port: 0,
        };
        let mut best: Option<(Vector, u16, PortNo, Times)> = None;
        for (&no, p) in &self.ports {
            let Some(r) = p
                .rcvd
                .filter(|r| r.vector.bridge != id && p.role != Role::Disabled)
            else {
                continue;
            };
            let cand = Vector {
                cost: r.vector.cost.saturating_add(p.cfg.cost),
                ..r.vector
            };
            if cand < root && best.is_none_or(|(v, pid, _, _)| (cand, p.id) < (v, pid)) {
                best = Some((cand, p.id, no, r.times));
            }
        }
        self.root_port = best.map(|(_, _, no, _)| no);
        self.root_times = match best {
            Some((v, _, _, t)) => {
                root = v;
                Times {
                    message_age: t.message_age + 1,
                    ..t
                }
            }
            None => own_times(&self.cfg),
        };
        self.root = root;
        let root_port = self.root_port;
        for (&no, p) in self.ports.iter_mut() {
            let role = if !p.cfg.enabled {
                Role::Disabled
            } else if Some(no) == root_port {
                Role::Root
            } else {
                match p.rcvd {
                    Some(r) if r.vector < designated_vector(&root, id, p.id) => {
                        if r.vector.bridge == id {
                            Role::Backup
                        } else {
                            Role::Alternate
                        }
                    }
                    _ => Role::Designated,
                }
            };
            if role != p.role {
                p.set_role(role, now_ms);
            }
        }
    }

    /// A proposal on the root port: every other designated port that is
    /// not an edge discards until its own peer agrees (the sync), and the
    /// root port agrees. Alternate and backup ports agree at once.
    fn sync_on_proposal(&mut self) {
        let Some(rp) = self.root_port else {
            for p in self.ports.values_mut() {
                if p.proposal_rcvd && matches!(p.role, Role::Alternate | Role::Backup) {
                    p.send_agreement = true;
                }
                p.proposal_rcvd = false;
            }
            return;
        };
        let synced = self.ports.get(&rp).is_some_and(|p| p.proposal_rcvd);
        for (&no, p) in self.ports.iter_mut() {
            if synced && no != rp && p.role == Role::Designated && !p.oper_edge && !p.agreed {
                p.state = State::Discarding;
                p.learn_at_ms = None;
                p.forward_at_ms = None;
            }
            if p.proposal_rcvd && (no == rp || matches!(p.role, Role::Alternate | Role::Backup)) {
                p.send_agreement = true;
            }
            p.proposal_rcvd = false;
        }
    }

    /// The topology changed at port `from`: flush, and set TC toward the
    /// rest of the tree.
    fn topology_change(&mut self, from: Option<PortNo>, now_ms: u64, hello_s: u64) {
        self.flush = true;
        for (&no, p) in self.ports.iter_mut() {
            let active = matches!(p.role, Role::Root | Role::Designated) && !p.oper_edge;
            if Some(no) != from && active && p.tc_until_ms <= now_ms {
                p.tc_until_ms = now_ms + 2 * hello_s * 1000;
                p.send_now = true;
            }
        }
    }

    /// The BPDUs due now: every designated port each hello time, and any
    /// port with something to say at once.
    fn bpdus(&mut self, now_ms: u64) -> Vec<(PortNo, Bpdu)> {
        let hello_due = now_ms >= self.next_hello_ms;
        if hello_due {
            self.next_hello_ms = now_ms + u64::from(self.cfg.hello.max(1)) * 1000;
        }
        let (root, id, times) = (self.root, self.id, self.root_times);
        let mut out = Vec::new();
        for (&no, p) in self.ports.iter_mut() {
            if p.role == Role::Disabled {
                continue;
            }
            let due = p.send_now || p.send_agreement || (hello_due && p.role == Role::Designated);
            if !due || !p.may_send(now_ms) {
                continue;
            }
            let mut flags = 0;
            if p.role == Role::Designated && p.state != State::Forwarding && !p.oper_edge {
                flags |= bpdu::PROPOSAL;
            }
            if std::mem::take(&mut p.send_agreement) {
                flags |= bpdu::AGREEMENT;
            }
            if p.state != State::Discarding {
                flags |= bpdu::LEARNING;
            }
            if p.state == State::Forwarding {
                flags |= bpdu::FORWARDING;
            }
            if now_ms < p.tc_until_ms {
                flags |= bpdu::TC;
            }
            let role = match p.role {
                Role::Root => WireRole::Root,
                Role::Designated => WireRole::Designated,
                _ => WireRole::AlternateOrBackup,
            };
            p.send_now = false;
            p.tx_bpdus += 1;
            let b = Bpdu {
                vector: designated_vector(&root, id, p.id),
                times,
                flags,
                tcn: false,
            };
            out.push((no, b.with_role(role)));
        }
        out
    }
}

impl Port {
    fn new(cfg: PortCfg, id: u16, now_ms: u64) -> Port {
        Port {
            cfg,
            id,
            role: Role::Designated,
            state: State::Discarding,
            oper_edge: cfg.admin_edge,
            rcvd: None,
            edge_at_ms: now_ms + EDGE_DELAY_MS,
            learn_at_ms: None,
            forward_at_ms: None,
            agreed: false,
            proposal_rcvd: false,
            send_agreement: false,
            send_now: true,
            tc_until_ms: 0,
            tx_window_ms: 0,
            tx_in_window: 0,
            rx_bpdus: 0,
            tx_bpdus: 0,
        }
    }

    fn set_role(&mut self, role: Role, now_ms: u64) {
        self.role = role;
        self.agreed = false;
        self.learn_at_ms = None;
        self.forward_at_ms = None;
        self.send_now = true;
        match role {
            Role::Alternate | Role::Backup => self.state = State::Discarding,
            Role::Root | Role::Disabled => {}
            Role::Designated => self.edge_at_ms = self.edge_at_ms.max(now_ms),
        }
    }

    /// Moves the port's state on; true when it began forwarding as a
    /// non-edge port (a topology change).
    fn step(&mut self, now_ms: u64, fd_ms: u64) -> bool {
        let was = self.state;
        match self.role {
            Role::Disabled | Role::Root => self.state = State::Forwarding,
            Role::Alternate | Role::Backup => self.state = State::Discarding,
            Role::Designated => {
                if !self.oper_edge
                    && self.cfg.auto_edge
                    && self.rcvd.is_none()
                    && now_ms >= self.edge_at_ms
                {
                    self.oper_edge = true;
                }
                if self.oper_edge || self.agreed {
                    self.state = State::Forwarding;
                } else if self.state != State::Forwarding {
                    let learn = *self.learn_at_ms.get_or_insert(now_ms + fd_ms);
                    let forward = *self.forward_at_ms.get_or_insert(now_ms + 2 * fd_ms);
                    if now_ms >= forward {
                        self.state = State::Forwarding;
                    } else if now_ms >= learn {
                        self.state = State::Learning;
                    }
                }
            }
        }
        self.state == State::Forwarding
            && was != State::Forwarding
            && !self.oper_edge
            && self.role != Role::Disabled
    }

    /// The transmit hold: at most [`TX_HOLD`] BPDUs a second.
    fn may_send(&mut self, now_ms: u64) -> bool {
        if now_ms >= self.tx_window_ms + 1000 {
            self.tx_window_ms = now_ms;
            self.tx_in_window = 0;
        }
        self.tx_in_window += 1;
        self.tx_in_window <= TX_HOLD
    }
}

fn own_times(cfg: &BridgeCfg) -> Times {
    Times {
        message_age: 0,
        max_age: cfg.max_age,
        hello: cfg.hello,
        forward_delay: cfg.forward_delay,
    }
}

/// The vector port `port_id` of bridge `id` announces when designated.
fn designated_vector(root: &Vector, id: u64, port_id: u16) -> Vector {
    Vector {
        root: root.root,
        cost: root.cost,
        bridge: id,
        port: port_id,
    }
}

#[cfg(test)]
mod tests;
