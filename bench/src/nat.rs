//! The in-memory set-up for routing and NAT: 8 container ports on a
//! bridge with a gateway, and the uplink. Containers send UDP to servers
//! beyond the next hop through the gateway's MAC: VLAN classification,
//! the gateway stage (parse, connection lookup, translation, TTL, next
//! hop), output to the uplink's discarding transmit half.
//!
//! - Established: 100,000 connections are in the table (made by sending
//!   their first packets before the measurement); frames belong to them.
//! - New: every frame starts a connection (a fresh source port and
//!   address): lookup miss, port choice, insert. The table is emptied
//!   when the supply of tuples wraps around, every 1,048,576 packets.

use pipeline::conntrack::{self, ConnTable};
use pipeline::router::{neigh::Known, Gateway, Router, RouterConfig, RouterState, Subnet, Uplink};
use pipeline::vlan::VlanPort;
use pipeline::{Batch, MacTable, PortNo, BATCH_SIZE};
use ports::memory::SinkTx;
use std::sync::{Arc, Mutex};
use vswitch::datapath::forward::Forwarder;
use vswitch::datapath::stats::PortStats;
use vswitch::datapath::{DpBridge, DpPort, PortRef, Snapshot};

const PORTS: PortNo = 8;
const UPLINK: PortNo = 9;
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const UP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const HOP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];
const GW: u32 = 0x0a00_0001; // 10.0.0.1/16
const UP: u32 = 0xc000_0202; // 192.0.2.2/24
const HOP: u32 = 0xc000_0201;
const SERVER: u32 = 0xc633_6400; // 198.51.100.0 + n
/// Containers: 10.0.1.0 + n.
const CONTAINERS: u32 = 250;
/// Tuples the "new" mode cycles through before it empties the table.
const NEW_TUPLES: u32 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Established,
    New,
}

pub struct NatSetup {
    snap: Snapshot,
    fwd: Forwarder,
    batch: Batch,
    router: Arc<Router>,
    mode: Mode,
    /// Established: batches of frames per ingress port. New: one batch
    /// per port, whose source ports are rewritten before each run.
    frames: Vec<(PortNo, Vec<Vec<u8>>)>,
    next: usize,
    counter: u32,
}

fn container(n: u32) -> u32 {
    0x0a00_0100 + n
}

fn cmac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

/// A 64-byte UDP frame (checksum 0: none) from container `c` to the
/// gateway's MAC.
fn frame(c: u32, sport: u16, server: u32, dport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&cmac(c));
    f.extend_from_slice(&[0x08, 0x00]);
    let total: u16 = 64 - 14;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&container(c).to_be_bytes());
    ip.extend_from_slice(&server.to_be_bytes());
    let s = pipeline::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&s.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(64, 0);
    f
}

fn dp(port_no: PortNo) -> Arc<DpPort> {
    Arc::new(DpPort {
        name: format!("m{port_no}"),
        port_no,
        max_frame: 1522,
        tx: Mutex::new(Box::new(SinkTx::default())),
        timed_flush: false,
        takes_gso: false,
        stats: Arc::new(PortStats::default()),
        // Storm control off: the benchmark floods on purpose.
        flood_limit: vswitch::datapath::storm::FloodLimit::new(0),
    })
}

impl NatSetup {
    pub fn new(connections: usize, mode: Mode) -> NatSetup {
        let ct = ConnTable::new(conntrack::Config {
            max_entries: (connections + NEW_TUPLES as usize) * 2,
            ..Default::default()
        });
        let router = Arc::new(Router {
            cfg: RouterConfig {
                gateways: vec![Gateway {
                    zone: 100,
                    bridge: 0,
                    ip: GW,
                    subnet: Subnet {
                        addr: GW & 0xffff_0000,
                        len: 16,
                    },
                    mac: GW_MAC,
                    masquerade: true,
                }],
                uplink: Some(Uplink {
                    port: UPLINK,
                    ip: UP,
                    subnet: Subnet {
                        addr: UP & !0xff,
                        len: 24,
                    },
                    mac: UP_MAC,
                    nexthop: HOP,
                }),
                publish: Vec::new(),
            },
            state: Arc::new(RouterState::new(ct)),
        });
        {
            let mut n = router.state.neighbors.lock().unwrap();
            n.learn(
                0,
                HOP,
                Known {
                    mac: HOP_MAC,
                    port: UPLINK,
                },
                0,
            );
        }
        let macs = Arc::new(Mutex::new(MacTable::new(1024, 300)));
        let mut snap = Snapshot {
            ports: vec![None],
            bridges: vec![DpBridge {
                name: "bench".into(),
                ports: (1..=PORTS).collect(),
                macs: macs.clone(),
                mirrors: Vec::new(),
            }],
            router: Some(router.clone()),
        };
        let vlan = Arc::new(VlanPort::default());
        for p in 1..=PORTS {
            snap.ports.push(Some(PortRef::in_routed_bridge(
                dp(p),
                0,
                vlan.clone(),
                &macs,
                &router,
                0,
            )));
        }
        snap.ports.push(Some(PortRef::uplink(dp(UPLINK), &router)));
        // Connection k: container k % 250 (on port k % 8 + 1), source port
        // 10000 + k / 250, to server k % 64 port 53.
        let port_of = |c: u32| (c % PORTS as u32) as PortNo + 1;
        let conn = |k: u32| {
            (
                k % CONTAINERS,
                10_000 + (k / CONTAINERS) as u16,
                SERVER + k % 64,
                53,
            )
        };
        let mut frames = Vec::new();
        match mode {
            Mode::Established => {
                let mut rng = crate::Rng(0x9e37_79b9_7f4a_7c15);
                let mut per_port: Vec<Vec<Vec<u8>>> = vec![Vec::new(); PORTS as usize];
                // 64 batches per port of frames of random connections.
                while per_port.iter().any(|b| b.len() < 64 * BATCH_SIZE) {
                    let k = (rng.next() % connections as u64) as u32;
                    let (c, sp, s, dpt) = conn(k);
                    let slot = &mut per_port[port_of(c) as usize - 1];
                    if slot.len() < 64 * BATCH_SIZE {
                        slot.push(frame(c, sp, s, dpt));
                    }
                }
                for (i, fs) in per_port.into_iter().enumerate() {
                    for chunk in fs.chunks(BATCH_SIZE) {
                        frames.push((i as PortNo + 1, chunk.to_vec()));
                    }
                }
            }
            Mode::New => {
                for p in 1..=PORTS {
                    let b = (0..BATCH_SIZE as u32)
                        .map(|i| frame(p as u32 - 1 + 8 * i, 1, SERVER, 53))
                        .collect();
                    frames.push((p, b));
                }
            }
        }
        let mut s = NatSetup {
            snap,
            fwd: Forwarder::new(),
            batch: Batch::new(),
            router,
            mode,
            frames: Vec::new(),
            next: 0,
            counter: 0,
        };
        // Make the connections by sending their first packets.
        if mode == Mode::Established {
            for k0 in (0..connections as u32).step_by(BATCH_SIZE) {
                for port in 1..=PORTS {
                    let b: Vec<Vec<u8>> = (k0..(k0 + BATCH_SIZE as u32).min(connections as u32))
                        .filter(|&k| port_of(conn(k).0) == port)
                        .map(|k| {
                            let (c, sp, sv, dpt) = conn(k);
                            frame(c, sp, sv, dpt)
                        })
                        .collect();
                    if !b.is_empty() {
                        s.receive(port, &b);
                    }
                }
            }
            let n = s.router.state.conntrack.lock().unwrap().len();
            assert_eq!(n, connections, "the set-up made {n} connections");
        }
        s.frames = frames;
        s
    }

    fn receive(&mut self, port: PortNo, frames: &[Vec<u8>]) -> usize {
        self.batch.clear();
        for f in frames {
            self.batch.push_copy(f);
        }
        let n = self.batch.len();
        self.fwd.process(&self.snap, port, &mut self.batch, 0);
        n
    }

    /// Forwards the next batch; returns its packets.
    pub fn run_batch(&mut self) -> usize {
        let i = self.next;
        self.next = (self.next + 1) % self.frames.len();
        if self.mode == Mode::New {
            // A fresh tuple per frame: the source port and the low bits of
            // the server address carry a counter.
            if self.counter >= NEW_TUPLES {
                self.counter = 0;
                self.router.state.conntrack.lock().unwrap().flush(None);
            }
            for f in &mut self.frames[i].1 {
                let c = self.counter;
                self.counter += 1;
                f[34..36].copy_from_slice(&((c & 0xffff) as u16).to_be_bytes());
                f[33] = (c >> 16) as u8;
            }
        }
        let (port, frames) = std::mem::take(&mut self.frames[i]);
        let n = self.receive(port, &frames);
        self.frames[i] = (port, frames);
        n
    }

    /// Frames the uplink transmitted.
    pub fn transmitted(&self) -> u64 {
        crate::transmitted(&self.snap)
    }
}
