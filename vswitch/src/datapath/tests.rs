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
                takes_gso: false,
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
fn ports_that_share_a_group_slot_each_get_their_own_frames() {
    // Ports 2 and 66 share a slot of the forwarder's group hints (64).
    let mut r = rig(vec![VlanPort::default(); 66]);
    r.send(2, &[frame(1, 2)]);
    r.send(66, &[frame(1, 66)]);
    for p in 1..=66 {
        r.take(p);
    }
    let to = |dst: u8, n: u8| frame(dst, 1).into_iter().chain([n]).collect::<Vec<u8>>();
    for round in 0..3u8 {
        // Alternating, then the other port first: stale hints from the
        // last batch must not send a frame to the wrong port.
        let (a, b) = if round % 2 == 0 { (2, 66) } else { (66, 2) };
        let batch: Vec<Vec<u8>> = (0..8)
            .map(|i| to(if i % 2 == 0 { a } else { b }, i))
            .collect();
        r.send(1, &batch);
        let want = |d: u8| {
            batch
                .iter()
                .filter(|f| f[5] == d)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(r.take(2), want(2), "round {round}");
        assert_eq!(r.take(66), want(66), "round {round}");
    }
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
    let mut b = Batch::new();
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
        if round % 7 == 0 {
            frames.push(super_frame((next() % 4) as u8, (next() % 20_000) as usize));
        }
        // Some claim to be super-frames held whole, with any MSS: a
        // container's raw socket can hand its TAP such a header.
        b.clear();
        for f in &frames {
            b.push_copy(f);
        }
        for p in b.packets_mut() {
            if next() % 4 == 0 {
                p.set_gso((48 + next() % 3000) as u16);
            }
        }
        r.fwd.process(&r.snap, port, &mut b, 0);
        for p in 1..=6 {
            r.take(p);
        }
    }
    let rx: u64 = (1..=6)
        .map(|p| r.snap.port(p).unwrap().stats.rx_packets.load(Relaxed))
        .sum();
    assert!(rx > 10_000, "only {rx} frames went through");
}

/// A TAP-like output that takes super-frames whole; records (frame, MSS),
/// MSS 0 for ordinary frames.
struct WholeTx(Arc<Mutex<Sent>>);

/// Frames with their MSS, as [`WholeTx`] got them.
type Sent = Vec<(Vec<u8>, u16)>;

impl ports::TxQueue for WholeTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        self.0.lock().unwrap().push((frame.to_vec(), 0));
        true
    }
    fn takes_gso(&self) -> bool {
        true
    }
    fn send_gso(&mut self, frame: &[u8], mss: u16) -> bool {
        self.0.lock().unwrap().push((frame.to_vec(), mss));
        true
    }
    fn flush(&mut self) {}
}

/// An IPv4 TCP super-frame from MAC 1 to MAC `dst` with `n` payload bytes
/// and a partial checksum (the pseudo-header sum), as a TSO sender gives.
fn super_frame(dst: u8, n: usize) -> Vec<u8> {
    use pipeline::checksum::{fold, sum};
    let mut f = frame(dst, 1);
    f.truncate(14);
    let t = ((40 + n) as u16).to_be_bytes();
    f.extend_from_slice(&[
        0x45, 0, t[0], t[1], 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let c = pipeline::checksum::checksum(&f[14..34]).to_be_bytes();
    f[24..26].copy_from_slice(&c);
    f.extend_from_slice(&[
        0, 80, 0, 81, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f.extend((0..n).map(|i| (i % 251) as u8));
    let partial = fold(sum(&f[26..34], 6 + 20 + n as u64));
    f[50..52].copy_from_slice(&partial.to_be_bytes());
    f
}

#[test]
fn a_super_frame_goes_whole_to_a_port_that_takes_it_and_cut_to_others() {
    let mut r = rig(vec![VlanPort::default(); 3]);
    let whole = Arc::new(Mutex::new(Vec::new()));
    let mut p3 = r.snap.ports[3].clone().unwrap();
    p3.dp = Arc::new(DpPort {
        name: "p3".into(),
        port_no: 3,
        max_frame: 1522,
        timed_flush: false,
        takes_gso: true,
        tx: Mutex::new(Box::new(WholeTx(whole.clone()))),
        stats: Arc::new(PortStats::default()),
        flood_limit: super::storm::FloodLimit::new(0),
    });
    assert!(
        p3.keeps_gso(),
        "a plain bridge port's chain keeps super-frames"
    );
    r.snap.ports[3] = Some(p3);
    r.send(2, &[frame(1, 2)]);
    r.send(3, &[frame(1, 3)]);
    r.take(1);
    r.take(2);
    whole.lock().unwrap().clear();
    let f = super_frame(3, 5000);
    let send = |r: &mut Rig, f: &[u8]| {
        let mut b = Batch::new();
        b.push_copy(f);
        b.packets_mut()[0].set_gso(1000);
        r.fwd.process(&r.snap, 1, &mut b, 0);
    };
    // Known unicast to the TAP-like port: whole, partial checksum kept.
    send(&mut r, &f);
    {
        let w = whole.lock().unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].0 == f && w[0].1 == 1000, "changed on the way");
    }
    assert!(r.take(2).is_empty());
    // Known unicast to an ordinary port: five segments with checksums.
    let f2 = super_frame(2, 5000);
    send(&mut r, &f2);
    let segs = r.take(2);
    assert_eq!(segs.len(), 5);
    let mut payload = Vec::new();
    for s in &segs {
        assert_eq!(s.len(), 54 + 1000);
        assert_eq!(pipeline::checksum::l4_checksum_ok(s), Some(true));
        payload.extend_from_slice(&s[54..]);
    }
    assert!(payload == f2[54..], "the payload, in order");
    // A flood: whole to one, cut to the other.
    whole.lock().unwrap().clear();
    send(&mut r, &super_frame(9, 2500));
    assert_eq!(r.take(2).len(), 3);
    assert_eq!(whole.lock().unwrap().len(), 1);
    let tx = r.snap.ports[2].as_ref().unwrap().stats.snapshot("p2");
    assert_eq!(tx.tx_dropped, 0, "{tx:?}");
}
