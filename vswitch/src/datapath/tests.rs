//! The forwarding step with memory ports: where frames go, and that no
//! input makes it panic.

use super::forward::Forwarder;
use super::stats::PortStats;
use super::{DpBridge, DpPort, PortRef, Snapshot};
use pipeline::vlan::{VlanMode, VlanPort};
use pipeline::{Batch, MacTable, PortNo, MAX_FRAME};
use ports::memory::{FrameQueue, MemoryTx};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

struct Rig {
    snap: Snapshot,
    outputs: Vec<FrameQueue>,
    fwd: Forwarder,
}

fn rig(vlans: Vec<VlanPort>) -> Rig {
    let macs = Arc::new(Mutex::new(MacTable::new(64, 300)));
    let mut snap = Snapshot {
        ports: vec![None],
        bridges: vec![DpBridge {
            name: "b".into(),
            ports: (1..=vlans.len() as PortNo).collect(),
            macs,
            mirrors: Vec::new(),
        }],
        router: None,
    };
    let macs = snap.bridges[0].macs.clone();
    let mut outputs = Vec::new();
    for (i, v) in vlans.into_iter().enumerate() {
        let q: FrameQueue = Default::default();
        outputs.push(q.clone());
        snap.ports.push(Some(PortRef::in_bridge(
            Arc::new(DpPort {
                name: format!("p{}", i + 1),
                port_no: i as PortNo + 1,
                max_frame: 1522,
                timed_flush: false,
                tx: Mutex::new(Box::new(MemoryTx {
                    output: q,
                    limit: 1 << 20,
                })),
                stats: Arc::new(PortStats::default()),
                // Storm control off: the benchmark floods on purpose.
                flood_limit: super::storm::FloodLimit::new(0),
            }),
            0,
            Arc::new(v),
            &macs,
        )));
    }
    Rig {
        snap,
        outputs,
        fwd: Forwarder::new(),
    }
}

impl Rig {
    fn send(&mut self, port: PortNo, frames: &[Vec<u8>]) {
        let mut b = Batch::new();
        for f in frames {
            b.push_copy(f);
        }
        self.fwd.process(&self.snap, port, &mut b, 0);
    }

    fn take(&self, port: PortNo) -> Vec<Vec<u8>> {
        let mut q = self.outputs[port as usize - 1].lock().unwrap();
        q.drain(..).collect()
    }
}

fn frame(dst: u8, src: u8) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, dst, 2, 0, 0, 0, 0, src, 0x08, 0x00];
    f.resize(60, 0xab);
    f
}

fn access(tag: u16) -> VlanPort {
    VlanPort::new(Some(VlanMode::Access), Some(tag), &[], &[], false)
}

#[test]
fn learns_then_forwards_to_one_port_only() {
    let mut r = rig(vec![VlanPort::default(); 3]);
    r.send(1, &[frame(2, 1)]);
    assert_eq!(r.take(2).len(), 1, "unknown unicast floods");
    assert_eq!(r.take(3).len(), 1, "unknown unicast floods");
    assert!(r.take(1).is_empty(), "never back out of the ingress port");
    r.send(2, &[frame(1, 2)]);
    assert_eq!(r.take(1), vec![frame(1, 2)]);
    assert!(r.take(3).is_empty(), "known unicast goes to one port");
}

#[test]
fn flood_stays_in_its_vlan_and_trunk_gets_the_tag() {
    let trunk = VlanPort::new(None, None, &[100, 200], &[], false);
    let mut r = rig(vec![access(100), access(100), access(200), trunk]);
    let mut bcast = frame(0xff, 1);
    bcast[..6].copy_from_slice(&[0xff; 6]);
    r.send(1, &[bcast.clone()]);
    assert_eq!(r.take(2), vec![bcast.clone()]);
    assert!(r.take(3).is_empty(), "VLAN 200 must not see VLAN 100");
    let on_trunk = r.take(4);
    assert_eq!(on_trunk.len(), 1);
    assert_eq!(&on_trunk[0][12..16], &[0x81, 0x00, 0x00, 100]);
    assert_eq!(&on_trunk[0][16..], &bcast[12..]);
}

#[test]
fn unicast_and_flood_leave_in_batch_order() {
    let mut r = rig(vec![VlanPort::default(); 2]);
    r.send(2, &[frame(1, 2)]); // learn host 2 on port 2
    r.take(1);
    // Unknown dst 9 (flood), then known dst 2, then unknown again.
    let batch = [frame(9, 1), frame(2, 1), frame(8, 1)];
    r.send(1, &batch);
    assert_eq!(r.take(2), batch.to_vec());
}

#[test]
fn counters_add_up() {
    let mut r = rig(vec![VlanPort::default(); 2]);
    let runt = vec![0u8; 10];
    let mcast_src = {
        let mut f = frame(2, 1);
        f[6] = 1;
        f
    };
    r.send(1, &[frame(2, 1), runt, mcast_src]);
    let s = &r.snap.port(1).unwrap().stats;
    let c = s.snapshot("p1");
    assert_eq!(c.rx_packets, 3);
    assert_eq!(c.drops["runt"], 1);
    assert_eq!(c.drops["multicast-source"], 1);
    let out = &r.snap.port(2).unwrap().stats;
    assert_eq!(out.tx_packets.load(Relaxed), 1);
}

/// Random frames of every length, through ports of every VLAN mode: the
/// forwarder must never panic, and every received frame is accounted for.
#[test]
fn random_frames_never_panic() {
    let modes = vec![
        VlanPort::default(),
        access(10),
        VlanPort::new(None, None, &[10, 20], &[], false),
        VlanPort::new(Some(VlanMode::NativeTagged), Some(10), &[20], &[], false),
        VlanPort::new(Some(VlanMode::NativeUntagged), Some(20), &[10], &[], false),
        VlanPort::new(Some(VlanMode::Dot1qTunnel), Some(10), &[], &[5], true),
    ];
    let mut r = rig(modes);
    let mut x: u64 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let port = (round % 6) as PortNo + 1;
        let mut frames = Vec::new();
        for _ in 0..(next() % 33) {
            let len = match next() % 4 {
                0 => (next() % 24) as usize,
                1 => (next() % 2000) as usize,
                _ => 14 + (next() % 80) as usize,
            }
            .min(MAX_FRAME);
            let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Make tags, IP and small MAC spaces likely.
            if len >= 18 && next() % 2 == 0 {
                f[12..14].copy_from_slice(&[0x81, 0x00]);
                f[14] = 0;
                f[15] = [0, 5, 10, 20][(next() % 4) as usize];
            }
            if len >= 34 && next() % 3 == 0 {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45;
                f[23] = [6, 17][(next() % 2) as usize];
            }
            if len >= 12 {
                f[0] &= 0xfe;
                f[5] %= 4;
                f[6] &= 0xfe;
                f[11] %= 4;
            }
            frames.push(f);
        }
        r.send(port, &frames);
        for p in 1..=6 {
            r.take(p);
        }
    }
    let rx: u64 = (1..=6)
        .map(|p| r.snap.port(p).unwrap().stats.rx_packets.load(Relaxed))
        .sum();
    assert!(rx > 10_000, "only {rx} frames went through");
}
