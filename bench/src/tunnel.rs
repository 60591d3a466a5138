//! The in-memory set-up for VXLAN: 8 local memory ports and a tunnel port
//! with one remote on one bridge, and the underlay endpoint whose
//! datagrams re-enter on the tunnel port. Half the hosts live on the local
//! ports, half behind the tunnel.
//!
//! - Encap: frames from local hosts to remote hosts: VLAN classification,
//!   L2, then the outer headers written as each frame is copied to the
//!   tunnel's (discarding) transmit half.
//! - Decap: VXLAN datagrams from the remote to local hosts, received on the
//!   endpoint: decapsulation, re-entry on the tunnel port, VLAN, L2, output
//!   to the local ports.

use pipeline::mac_table::Dest;
use pipeline::tunnel::{Encap, EncapRemote, RemoteCounters, VxlanDecap};
use pipeline::vlan::VlanPort;
use pipeline::vxlan::OuterV4;
use pipeline::{Batch, MacTable, PortNo, BATCH_SIZE};
use ports::memory::SinkTx;
use std::sync::{Arc, Mutex};
use vswitch::datapath::forward::Forwarder;
use vswitch::datapath::stats::PortStats;
use vswitch::datapath::{DpBridge, DpPort, PortRef, Snapshot};

const LOCAL_PORTS: PortNo = 8;
const TUNNEL: PortNo = 9;
const ENDPOINT: PortNo = 10;
const REMOTE: u32 = 0x0a63_0002;
const VNI: u32 = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Encap,
    Decap,
}

pub struct TunnelSetup {
    snap: Snapshot,
    fwd: Forwarder,
    batch: Batch,
    /// Batches of frames, with the port they are received on.
    frames: Vec<(PortNo, Vec<Vec<u8>>)>,
    next: usize,
}

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
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

impl TunnelSetup {
    /// `macs` hosts: even ones on the local ports, odd ones behind the
    /// tunnel.
    pub fn new(macs: usize, dir: Direction) -> TunnelSetup {
        let mut table = MacTable::new(macs.max(2), 300);
        // Host 2k lives on local port k % 8 + 1.
        let local = |h: usize| (h / 2) as PortNo % LOCAL_PORTS + 1;
        for h in 0..macs {
            let dest = if h % 2 == 0 {
                Dest::port_only(local(h))
            } else {
                Dest::new(TUNNEL, REMOTE)
            };
            table.learn_key(pipeline::mac_table::key(0, &mac(h as u32)), dest, 0);
        }
        let macs_arc = Arc::new(Mutex::new(table));
        let vlan = Arc::new(VlanPort::default());
        let mut snap = Snapshot {
            ports: vec![None],
            bridges: vec![DpBridge {
                name: "bench".into(),
                ports: (1..=TUNNEL).collect(),
                macs: macs_arc.clone(),
                mirrors: Vec::new(),
            }],
            router: None,
        };
        for p in 1..=TUNNEL {
            snap.ports
                .push(Some(PortRef::in_bridge(dp(p), 0, vlan.clone(), &macs_arc)));
        }
        let counters = Arc::new(RemoteCounters::default());
        if let Some(Some(t)) = snap.ports.get_mut(TUNNEL as usize) {
            t.encap = Some(Arc::new(Encap {
                remotes: vec![EncapRemote::new(
                    OuterV4 {
                        src: 0x0a63_0001,
                        dst: REMOTE,
                        dst_port: 4789,
                        vni: VNI,
                        ttl: 64,
                        tos: None,
                        df: true,
                        csum: false,
                    },
                    counters.clone(),
                )],
                max_inner: 1464,
            }));
        }
        let mut decap = VxlanDecap::new();
        decap.add(VNI, REMOTE, TUNNEL, counters);
        snap.ports
            .push(Some(PortRef::endpoint(dp(ENDPOINT), vlan, Arc::new(decap))));

        let mut rng = crate::Rng(0x9e37_79b9_7f4a_7c15);
        let pick = |rng: &mut crate::Rng, odd: bool| {
            let h = (rng.next() as usize % (macs / 2).max(1)) * 2;
            if odd {
                h + 1
            } else {
                h
            }
        };
        let mut frames = Vec::new();
        for i in 0..64 {
            // Encap: every source lives on the port the batch comes in on.
            let port = match dir {
                Direction::Encap => (i % LOCAL_PORTS as usize) as PortNo + 1,
                Direction::Decap => ENDPOINT,
            };
            let mut b = Vec::with_capacity(BATCH_SIZE);
            for _ in 0..BATCH_SIZE {
                let f = match dir {
                    Direction::Encap => {
                        let k = rng.next() as usize % (macs / 16).max(1);
                        let src = 2 * (LOCAL_PORTS as usize * k + port as usize - 1);
                        let dst = pick(&mut rng, true);
                        frame(mac(dst as u32), mac(src as u32))
                    }
                    Direction::Decap => {
                        let (s, d) = (pick(&mut rng, true), pick(&mut rng, false));
                        let v = VNI.to_be_bytes();
                        let mut dg = vec![0x08, 0, 0, 0, v[1], v[2], v[3], 0];
                        dg.extend_from_slice(&frame(mac(d as u32), mac(s as u32)));
                        dg
                    }
                };
                b.push(f);
            }
            frames.push((port, b));
        }
        TunnelSetup {
            snap,
            fwd: Forwarder::new(),
            batch: Batch::new(),
            frames,
            next: 0,
        }
    }

    /// Receives and forwards the next batch; returns its packet count.
    #[inline]
    pub fn run_batch(&mut self, now_ms: u64) -> usize {
        let (port, frames) = &self.frames[self.next % self.frames.len()];
        self.next = self.next.wrapping_add(1);
        self.batch.clear();
        for f in frames {
            self.batch.push_copy(f);
        }
        for p in self.batch.packets_mut() {
            p.meta.tun_remote = REMOTE;
        }
        let n = self.batch.len();
        self.fwd.process(&self.snap, *port, &mut self.batch, now_ms);
        n
    }

    /// Frames the output ports have transmitted so far.
    pub fn transmitted(&self) -> u64 {
        crate::transmitted(&self.snap)
    }
}
