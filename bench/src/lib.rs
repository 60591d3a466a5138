//! Shared set-up for the in-memory pipeline benchmarks: a bridge of memory
//! ports whose transmit halves count and discard, a MAC table pre-learned
//! with N hosts, and pre-built 64-byte frames between those hosts.

/// The end-to-end benchmark against the Linux bridge (`src/bin/e2e.rs`).
pub mod e2e;
/// The in-memory routing and NAT set-up.
pub mod nat;
/// The in-memory VXLAN set-up (encapsulation and decapsulation).
pub mod tunnel;

use pipeline::vlan::VlanPort;
use pipeline::{Batch, MacTable, PortNo, BATCH_SIZE};
use ports::memory::SinkTx;
use std::sync::{Arc, Mutex};
use vswitch::datapath::forward::Forwarder;
use vswitch::datapath::stats::PortStats;
use vswitch::datapath::{DpBridge, DpPort, PortRef, Snapshot};

/// The VLAN every host is in when the VLAN variant is measured.
pub const BENCH_VLAN: u16 = 10;

pub struct Setup {
    pub snap: Snapshot,
    fwd: Forwarder,
    batch: Batch,
    /// Per ingress port, batches of frames to receive in turn.
    frames: Vec<Vec<Vec<Vec<u8>>>>,
    next: usize,
}

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

/// A 64-byte UDP-like frame (optionally with an 802.1Q tag).
fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(64, 0);
    f
}

/// Small deterministic generator (xorshift), so runs are comparable.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Setup {
    /// `ports` memory ports on one bridge, `macs` hosts spread over them,
    /// frames between random pairs of hosts on different ports. With `vlan`,
    /// every port is a trunk and frames carry a tag: popped on ingress and
    /// pushed on egress.
    pub fn new(ports: usize, macs: usize, vlan: bool) -> Setup {
        let mut table = MacTable::new(macs.max(1), 300);
        let host_port = |h: usize| (h % ports) as PortNo + 1;
        for h in 0..macs {
            table.learn(
                if vlan { BENCH_VLAN } else { 0 },
                &mac(h as u32),
                host_port(h),
                0,
            );
        }
        let macs_arc = Arc::new(Mutex::new(table));
        let vport = Arc::new(if vlan {
            VlanPort::new(None, None, &[BENCH_VLAN], &[], false)
        } else {
            VlanPort::default()
        });
        let mut snap = Snapshot {
            ports: vec![None],
            bridges: vec![DpBridge {
                name: "bench".into(),
                ports: (1..=ports as PortNo).collect(),
                macs: macs_arc.clone(),
                mirrors: Vec::new(),
            }],
            router: None,
        };
        for p in 1..=ports as PortNo {
            snap.ports.push(Some(PortRef::in_bridge(
                Arc::new(DpPort {
                    name: format!("m{p}"),
                    port_no: p,
                    max_frame: 1522,
                    tx: Mutex::new(Box::new(SinkTx::default())),
                    timed_flush: false,
                    takes_gso: false,
                    stats: Arc::new(PortStats::default()),
                    // Storm control off: the benchmark floods on purpose.
                    flood_limit: vswitch::datapath::storm::FloodLimit::new(0),
                }),
                0,
                vport.clone(),
                &macs_arc,
            )));
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let tag = vlan.then_some(BENCH_VLAN);
        let mut frames = vec![Vec::new(); ports];
        for (pi, per_port) in frames.iter_mut().enumerate() {
            // Hosts that live on this port, and a pool of destinations.
            let local: Vec<usize> = (0..macs).filter(|h| h % ports == pi).collect();
            for _ in 0..16 {
                let mut b = Vec::with_capacity(BATCH_SIZE);
                for _ in 0..BATCH_SIZE {
                    let src = if local.is_empty() {
                        pi
                    } else {
                        local[rng.next() as usize % local.len()]
                    };
                    let mut dst = rng.next() as usize % macs.max(1);
                    if ports > 1 && dst % ports == pi {
                        dst = (dst + 1) % macs.max(1);
                    }
                    b.push(frame(mac(dst as u32), mac(src as u32), tag));
                }
                per_port.push(b);
            }
        }
        Setup {
            snap,
            fwd: Forwarder::new(),
            batch: Batch::new(),
            frames,
            next: 0,
        }
    }

    /// Receives one batch of 32 frames on the next port (round robin) and
    /// forwards it. Returns the number of packets processed.
    #[inline]
    pub fn run_batch(&mut self, now_ms: u64) -> usize {
        let ports = self.frames.len();
        let port = self.next % ports;
        let set = &self.frames[port];
        let frames = &set[(self.next / ports) % set.len()];
        self.next = self.next.wrapping_add(1);
        self.batch.clear();
        for f in frames {
            self.batch.push_copy(f);
        }
        let n = self.batch.len();
        self.fwd
            .process(&self.snap, port as PortNo + 1, &mut self.batch, now_ms);
        n
    }

    /// Frames the output ports have transmitted so far.
    pub fn transmitted(&self) -> u64 {
        transmitted(&self.snap)
    }
}

/// Frames the output ports of `snap` have transmitted so far.
pub(crate) fn transmitted(snap: &Snapshot) -> u64 {
    snap.ports
        .iter()
        .flatten()
        .map(|p| {
            p.stats
                .tx_packets
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum()
}
