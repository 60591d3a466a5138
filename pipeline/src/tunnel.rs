//! VXLAN tunnel ports in the pipeline: the decapsulation stage of an
//! underlay endpoint, and what the output step needs to encapsulate.
//!
//! A VXLAN endpoint (one UDP port of the host, e.g. 4789) is a receive-only
//! port outside every bridge. Its ingress chain is one stage,
//! [`VxlanDecap`], which reads each datagram's VXLAN header, finds the
//! tunnel port configured for its VNI and sender (`meta.tun_remote`),
//! strips the header and sends the inner frame back into the pipeline as
//! received on that tunnel port ([`Verdict::Reenter`]). The tunnel port's
//! own chain (VLAN classification, L2) then runs as for any port.
//!
//! Output to a tunnel port is the forwarder's: [`Encap`] holds the outer
//! headers of each remote, written in front of the frame as it is copied
//! to the underlay socket.
//!
//! Ownership: both are built by the control thread from the configuration
//! and shared read-only by the poll threads through the datapath snapshot.
//! The per-remote counters are atomics, added to once per run of packets
//! from or to one remote.

use crate::flat_map::FlatMap;
use crate::packet::{Packet, PortNo, MIN_FRAME};
use crate::stage::{Ctx, Stage};
use crate::verdict::{DropReason, Verdict};
use crate::vxlan::{self, DecapError, OuterTemplate, OuterV4};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Traffic with one remote VTEP of one tunnel port.
#[derive(Debug, Default)]
pub struct RemoteCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
}

impl RemoteCounters {
    #[inline]
    pub fn add_rx(&self, packets: u64, bytes: u64) {
        if packets > 0 {
            self.rx_packets.fetch_add(packets, Relaxed);
            self.rx_bytes.fetch_add(bytes, Relaxed);
        }
    }

    #[inline]
    pub fn add_tx(&self, packets: u64, bytes: u64) {
        if packets > 0 {
            self.tx_packets.fetch_add(packets, Relaxed);
            self.tx_bytes.fetch_add(bytes, Relaxed);
        }
    }
}

#[inline]
fn decap_key(vni: u32, remote: u32) -> u64 {
    ((vni as u64) << 32) | remote as u64
}

/// The decapsulation stage of one underlay endpoint.
pub struct VxlanDecap {
    /// (VNI, remote) -> index into `targets`, plus one.
    map: FlatMap<u32>,
    targets: Vec<(PortNo, Arc<RemoteCounters>)>,
}

impl Default for VxlanDecap {
    fn default() -> Self {
        Self::new()
    }
}

impl VxlanDecap {
    pub fn new() -> Self {
        VxlanDecap {
            map: FlatMap::with_capacity(16),
            targets: Vec::new(),
        }
    }

    /// Frames with `vni` from `remote` (host byte order) come in on `port`.
    pub fn add(&mut self, vni: u32, remote: u32, port: PortNo, counters: Arc<RemoteCounters>) {
        self.targets.push((port, counters));
        if self.map.len() * 2 >= self.targets.capacity().max(8) {
            let mut bigger = FlatMap::with_capacity(self.targets.len() * 2);
            for (k, v) in self.map.iter() {
                bigger.insert(k, *v);
            }
            self.map = bigger;
        }
        self.map
            .insert(decap_key(vni, remote), self.targets.len() as u32);
    }

    /// The port and counters for `vni` from `remote`.
    #[inline]
    pub fn lookup(&self, vni: u32, remote: u32) -> Option<&(PortNo, Arc<RemoteCounters>)> {
        let i = *self.map.get(decap_key(vni, remote))?;
        self.targets.get(i as usize - 1)
    }
}

impl Stage for VxlanDecap {
    fn name(&self) -> &'static str {
        "vxlan-decap"
    }

    fn process(&self, _cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        // Counters are added once per run of packets from one remote.
        let mut run: Option<&Arc<RemoteCounters>> = None;
        let (mut packets, mut bytes) = (0u64, 0u64);
        for (pkt, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            if *v != Verdict::Continue {
                continue;
            }
            let vni = match vxlan::parse(pkt.data()) {
                Ok(vni) => vni,
                Err(DecapError::Short) => {
                    *v = Verdict::Drop(DropReason::TunnelShort);
                    continue;
                }
                Err(DecapError::BadFlags) => {
                    *v = Verdict::Drop(DropReason::TunnelBadFlags);
                    continue;
                }
            };
            let Some((port, counters)) = self.lookup(vni, pkt.meta.tun_remote) else {
                *v = Verdict::Drop(DropReason::TunnelUnknownVni);
                continue;
            };
            if pkt.len() < vxlan::HEADER_LEN + MIN_FRAME || !pkt.pull_front(vxlan::HEADER_LEN) {
                *v = Verdict::Drop(DropReason::TunnelInnerInvalid);
                continue;
            }
            if !run.is_some_and(|r| Arc::ptr_eq(r, counters)) {
                if let Some(r) = run {
                    r.add_rx(packets, bytes);
                }
                (run, packets, bytes) = (Some(counters), 0, 0);
            }
            packets += 1;
            bytes += pkt.len() as u64;
            pkt.meta.in_port = *port;
            *v = Verdict::Reenter(*port);
        }
        if let Some(r) = run {
            r.add_rx(packets, bytes);
        }
    }
}

/// One remote VTEP of a tunnel port: its outer headers and counters.
#[derive(Debug, Clone)]
pub struct EncapRemote {
    pub outer: OuterV4,
    /// `outer` prepared for the fast path.
    pub template: OuterTemplate,
    pub counters: Arc<RemoteCounters>,
}

impl EncapRemote {
    pub fn new(outer: OuterV4, counters: Arc<RemoteCounters>) -> EncapRemote {
        EncapRemote {
            outer,
            template: outer.template(),
            counters,
        }
    }
}

/// How frames leave by a tunnel port.
#[derive(Debug, Clone, Default)]
pub struct Encap {
    pub remotes: Vec<EncapRemote>,
    /// Largest inner frame (with its Ethernet header) that fits the
    /// underlay MTU once encapsulated.
    pub max_inner: usize,
}

impl Encap {
    /// The remotes a frame goes to: the one L2 learned it behind
    /// (`remote`, host byte order), or every remote (head-end replication)
    /// for a flood or a MAC whose remote is not known.
    #[inline]
    pub fn targets(&self, remote: u32, flood: bool) -> &[EncapRemote] {
        if !flood && remote != 0 {
            if let Some(i) = self.remotes.iter().position(|r| r.outer.dst == remote) {
                return &self.remotes[i..i + 1];
            }
        }
        &self.remotes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;

    /// A VXLAN header for VNI 100 and a 60-byte inner frame.
    fn datagram(flags: u8, vni: u32) -> Vec<u8> {
        let v = vni.to_be_bytes();
        let mut d = vec![flags, 0, 0, 0, v[1], v[2], v[3], 0];
        let mut inner = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        inner.resize(60, 0xab);
        d.extend_from_slice(&inner);
        d
    }

    fn decap() -> (VxlanDecap, Arc<RemoteCounters>) {
        let c = Arc::new(RemoteCounters::default());
        let mut d = VxlanDecap::new();
        d.add(100, 0x0a00_0002, 7, c.clone());
        d.add(200, 0x0a00_0002, 8, Arc::new(RemoteCounters::default()));
        (d, c)
    }

    fn run(d: &VxlanDecap, frames: &[(Vec<u8>, u32)]) -> (Batch, Vec<Verdict>) {
        let mut b = Batch::new();
        for (f, remote) in frames {
            b.push_copy(f);
            let n = b.len();
            b.packets_mut()[n - 1].meta.tun_remote = *remote;
        }
        let mut v = vec![Verdict::Continue; b.len()];
        d.process(&Ctx::default(), b.packets_mut(), &mut v);
        (b, v)
    }

    #[test]
    fn a_known_vni_and_remote_reenter_on_their_port_without_the_header() {
        let (d, c) = decap();
        let (b, v) = run(
            &d,
            &[
                (datagram(0x08, 100), 0x0a00_0002),
                (datagram(0x08, 200), 0x0a00_0002),
            ],
        );
        assert_eq!(v, [Verdict::Reenter(7), Verdict::Reenter(8)]);
        assert_eq!(b.packets()[0].meta.in_port, 7);
        assert_eq!(b.packets()[0].len(), 60);
        assert_eq!(&b.packets()[0].data()[..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(c.rx_packets.load(Relaxed), 1);
        assert_eq!(c.rx_bytes.load(Relaxed), 60);
    }

    #[test]
    fn hostile_datagrams_are_dropped_with_reasons() {
        let (d, _) = decap();
        let mut runt = datagram(0x08, 100);
        runt.truncate(8 + 10);
        let (_, v) = run(
            &d,
            &[
                (vec![0x08, 0, 0], 0x0a00_0002),
                (datagram(0x00, 100), 0x0a00_0002),
                (datagram(0x08, 300), 0x0a00_0002),
                (datagram(0x08, 100), 0x0a00_0009),
                (runt, 0x0a00_0002),
            ],
        );
        assert_eq!(
            v,
            [
                Verdict::Drop(DropReason::TunnelShort),
                Verdict::Drop(DropReason::TunnelBadFlags),
                Verdict::Drop(DropReason::TunnelUnknownVni),
                Verdict::Drop(DropReason::TunnelUnknownVni),
                Verdict::Drop(DropReason::TunnelInnerInvalid),
            ]
        );
    }

    #[test]
    fn many_remotes_fit() {
        let mut d = VxlanDecap::new();
        for r in 0..1000u32 {
            d.add(
                5,
                r + 1,
                (r % 7) as PortNo,
                Arc::new(RemoteCounters::default()),
            );
        }
        for r in 0..1000u32 {
            assert_eq!(d.lookup(5, r + 1).map(|t| t.0), Some((r % 7) as PortNo));
        }
        assert!(d.lookup(6, 1).is_none());
    }

    #[test]
    fn unicast_goes_to_its_remote_and_floods_to_all() {
        let outer = |dst| OuterV4 {
            src: 0,
            dst,
            dst_port: 4789,
            vni: 1,
            ttl: 64,
            tos: Some(0),
            df: true,
            csum: false,
        };
        let e = Encap {
            remotes: [1, 2, 3]
                .map(|d| EncapRemote::new(outer(d), Arc::default()))
                .to_vec(),
            max_inner: 1514,
        };
        assert_eq!(e.targets(2, false).len(), 1);
        assert_eq!(e.targets(2, false)[0].outer.dst, 2);
        assert_eq!(e.targets(2, true).len(), 3);
        assert_eq!(e.targets(0, false).len(), 3);
        assert_eq!(e.targets(9, false).len(), 3);
    }
}
