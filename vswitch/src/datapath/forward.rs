//! Forwarding one received batch: run the ingress port's chain of stages,
//! send re-entered packets through their new port's chain, group the
//! packets by output port (VPP's `nexts[]`), then hand each group to its
//! port's transmit half, locking each output port once per batch.
//!
//! Per-port encapsulation is written as a frame is copied to its output:
//! a flooded frame gets its VLAN tag or VXLAN headers as parts of the copy
//! (`TxQueue::send_parts`), so the shared packet is never changed. A
//! unicast frame is finished after its one output, so a tag is pushed into
//! its headroom and the buffer itself may be sent (zero-copy AF_XDP).

use super::{cycles, patch, Hooks, PortRef, Snapshot};
use crate::capture::PortTaps;
use pipeline::stage::Ctx;
use pipeline::tunnel::Encap;
use pipeline::vlan::{self, Egress};
use pipeline::wire::vlan::{OFFSET as TAG_OFFSET, TAG_LEN};
use pipeline::{vxlan, Batch, DropReason, Packet, PortNo, Verdict, BATCH_SIZE};
use ports::TxQueue;
use std::ops::Range;
use std::sync::PoisonError;

/// Packet indices of one batch bound for one output port.
#[derive(Clone, Copy)]
struct Group {
    port: PortNo,
    len: u8,
    idx: [u8; BATCH_SIZE],
}

impl Group {
    const EMPTY: Group = Group {
        port: 0,
        len: 0,
        idx: [0; BATCH_SIZE],
    };

    #[inline]
    fn members(&self) -> &[u8] {
        &self.idx[..self.len as usize]
    }

    #[inline]
    fn push(&mut self, i: usize) {
        self.idx[self.len as usize] = i as u8;
        self.len += 1;
    }
}

/// Merges two ascending index lists, marking the second list's entries.
pub(super) fn in_batch_order<'a>(
    a: &'a [u8],
    b: &'a [u8],
) -> impl Iterator<Item = (u8, bool)> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || match (a.get(i), b.get(j)) {
        (Some(&x), Some(&y)) if x < y => {
            i += 1;
            Some((x, false))
        }
        (_, Some(&y)) => {
            j += 1;
            Some((y, true))
        }
        (Some(&x), None) => {
            i += 1;
            Some((x, false))
        }
        (None, None) => None,
    })
}

/// Slots of `Forwarder::slot`.
const SLOTS: usize = 64;

/// Largest ICMP "fragmentation needed" answer: Ethernet plus 576 bytes.
const REPLY_MAX: usize = 14 + 576;

/// An answer the switch sends back to a sender (ICMP fragmentation
/// needed), at most one per batch.
struct Reply {
    /// The port the answered frame came in on, and its VLAN there.
    port: Option<PortNo>,
    vlan: u16,
    pcp: u8,
    tpid: u16,
    len: usize,
    buf: [u8; REPLY_MAX],
}

/// Per-thread forwarding state, reused for every batch.
pub struct Forwarder {
    verdicts: [Verdict; BATCH_SIZE],
    /// Unicast groups of the current run (`ngroups` in use).
    groups: [Group; BATCH_SIZE],
    ngroups: usize,
    /// The group of an output port, by the port number's low bits: a
    /// hint, trusted only when it is below `ngroups` and that group's port
    /// matches (so it is never cleared). Two ports on one slot fall back
    /// to a search.
    slot: [u8; SLOTS],
    /// Packets of the current run to flood.
    flood: Group,
    /// Output ports with frames still waiting for the kernel.
    pending: Vec<PortNo>,
    /// Cycles spent handing frames to the kernel (`TxQueue::flush`: the
    /// AF_XDP TX kick and what the kernel does inside it), since the last
    /// `take_tx_cycles`.
    tx_cycles: u64,
    /// A tagged inner frame for a tunnel, made contiguous.
    scratch: Box<[u8; ports::GATHER_MAX]>,
    reply: Box<Reply>,
    /// Frames that left by patch ports, to enter their peers.
    patch: patch::PatchQueue,
    /// Cuts super-frames for ports that do not take them whole.
    cut: super::gso::Cutter,
    /// The datapath clock of the batch being forwarded.
    now_ms: u64,
}

impl Default for Forwarder {
    fn default() -> Self {
        Self::new()
    }
}

impl Forwarder {
    pub fn new() -> Self {
        Forwarder {
            verdicts: [Verdict::Continue; BATCH_SIZE],
            groups: [Group::EMPTY; BATCH_SIZE],
            ngroups: 0,
            slot: [0; SLOTS],
            flood: Group::EMPTY,
            pending: Vec::with_capacity(64),
            tx_cycles: 0,
            scratch: Box::new([0; ports::GATHER_MAX]),
            reply: Box::new(Reply {
                port: None,
                vlan: 0,
                pcp: 0,
                tpid: 0,
                len: 0,
                buf: [0; REPLY_MAX],
            }),
            patch: patch::PatchQueue::default(),
            cut: super::gso::Cutter::default(),
            now_ms: 0,
        }
    }

    /// Forwards `batch`, received on `in_port`. The batch keeps its packets
    /// (frames are copied into the output rings, or their buffers swapped);
    /// the caller clears it.
    pub fn process(&mut self, snap: &Snapshot, in_port: PortNo, batch: &mut Batch, now_ms: u64) {
        let n = batch.len().min(BATCH_SIZE);
        if n == 0 {
            return;
        }
        let Some(port) = snap.port(in_port) else {
            return;
        };
        self.now_ms = now_ms;
        self.run_batch(snap, port, batch, n, now_ms);
        if self.patch.has_work() {
            self.cross_patches(snap, now_ms);
        }
        if self.reply.port.is_some() {
            self.send_reply(snap);
        }
        if let Some(r) = snap.router.as_deref().filter(|r| r.state.has_outbox()) {
            super::outbox::drain(snap, r);
        }
    }

    /// Runs the first `n` packets of `batch`, received on `port`, through
    /// its chain and on to their outputs.
    #[inline]
    fn run_batch(
        &mut self,
        snap: &Snapshot,
        port: &PortRef,
        batch: &mut Batch,
        n: usize,
        now_ms: u64,
    ) {
        let mut bytes = 0;
        for p in batch.packets_mut() {
            p.meta.in_port = port.port_no;
            bytes += p.len();
        }
        port.stats.add_rx(n as u64, bytes as u64);
        if let Some(t) = port.hooks.as_deref().and_then(Hooks::taps) {
            for p in &batch.packets()[..n] {
                t.rx(p.data());
            }
        }
        let cx = Ctx { now_ms };
        self.verdicts[..n].fill(Verdict::Continue);
        port.ingress
            .run(&cx, &mut batch.packets_mut()[..n], &mut self.verdicts[..n]);
        if port.bridge.is_some() || port.routed {
            self.finish(snap, port, batch, 0..n);
        } else {
            self.reenter(snap, port, batch, &cx);
        }
    }

    /// Forwards the frames that left by patch ports as received on their
    /// peers, hop after hop, until none is left or a loop of patch ports
    /// has gone [`patch::MAX_HOPS`] deep.
    fn cross_patches(&mut self, snap: &Snapshot, now_ms: u64) {
        while let Some((peer, mut b, hops)) = self.patch.pop() {
            let n = b.len();
            match snap.port(peer) {
                Some(p) if hops <= patch::MAX_HOPS => {
                    self.patch.hops = hops;
                    self.run_batch(snap, p, &mut b, n, now_ms);
                }
                Some(p) => p.stats.add_drop(DropReason::PatchLoop, n as u64),
                None => {}
            }
            self.patch.recycle(b);
        }
        self.patch.hops = 0;
    }

    /// Runs each run of packets that re-enter on one port through that
    /// port's chain and on to its outputs; counts the rest of the batch's
    /// drops against the port it came in on.
    fn reenter(&mut self, snap: &Snapshot, port: &PortRef, batch: &mut Batch, cx: &Ctx) {
        let n = batch.len().min(BATCH_SIZE);
        let mut i = 0;
        while i < n {
            let Verdict::Reenter(to) = self.verdicts[i] else {
                if let Verdict::Drop(r) = self.verdicts[i] {
                    port.stats.add_drop(r, 1);
                }
                i += 1;
                continue;
            };
            let end = (i..n)
                .find(|&j| self.verdicts[j] != Verdict::Reenter(to))
                .unwrap_or(n);
            let run = i..end;
            i = end;
            let Some(target) = snap.port(to).filter(|t| t.bridge.is_some()) else {
                port.stats.add_drop(DropReason::NoBridge, run.len() as u64);
                continue;
            };
            let pkts = &mut batch.packets_mut()[run.clone()];
            let bytes: usize = pkts.iter().map(|p| p.len()).sum();
            target.stats.add_rx(run.len() as u64, bytes as u64);
            if let Some(t) = target.hooks.as_deref().and_then(Hooks::taps) {
                for p in pkts.iter() {
                    t.rx(p.data());
                }
            }
            self.verdicts[run.clone()].fill(Verdict::Continue);
            target
                .ingress
                .run(cx, pkts, &mut self.verdicts[run.clone()]);
            self.finish(snap, target, batch, run);
        }
    }

    /// Sends the packets of `run`, all received on `port`, where their
    /// verdicts say.
    fn finish(&mut self, snap: &Snapshot, port: &PortRef, batch: &mut Batch, run: Range<usize>) {
        self.group(port, run.clone());
        if let Some(t) = port.hooks.as_deref().and_then(Hooks::taps) {
            tap_drops(t, batch, &self.verdicts[run.clone()], run.start);
        }
        let bridge = port.bridge.and_then(|b| snap.bridges.get(b));
        if let Some(b) = bridge.filter(|b| !b.mirrors.is_empty()) {
            super::mirror::copy_selected(
                snap,
                &b.mirrors,
                &b.ports,
                port,
                &batch.packets()[run.clone()],
                &self.verdicts[run],
            );
        }
        let in_port = port.port_no;
        if self.flood.len > 0 && bridge.is_some() {
            let n = u64::from(self.flood.len);
            let allowed = port.flood_limit.admit(n, self.now_ms);
            if allowed < n {
                // Storm control: the run's last floods are dropped.
                self.flood.len = allowed as u8;
                port.stats.add_drop(DropReason::FloodLimit, n - allowed);
            }
        }
        let flooding = self.flood.len > 0 && bridge.is_some();
        if self.flood.len > 0 && bridge.is_none() {
            // A routed port has no bridge to flood into.
            port.stats
                .add_drop(DropReason::NoBridge, self.flood.len as u64);
        }
        if let (true, Some(bridge)) = (flooding, bridge) {
            // Every other port of the bridge gets the flood, plus its own
            // unicast packets under the same lock. Split horizon: what came
            // from a tunnel is never flooded into a tunnel.
            let flood = self.flood;
            let from_tunnel = port.is_tunnel();
            for &t in &bridge.ports {
                if t == in_port {
                    continue;
                }
                let Some(out) = snap.port(t) else { continue };
                let uni = self.find_group(t).map_or(Group::EMPTY, |g| self.groups[g]);
                let flood = if from_tunnel && out.is_tunnel() {
                    &[][..]
                } else {
                    flood.members()
                };
                if !uni.members().is_empty() || !flood.is_empty() {
                    self.output(out, batch, uni.members(), flood);
                }
            }
        }
        // Unicast to ports the flood did not cover (all of them when
        // nothing floods; routed packets to another bridge or the uplink).
        for g in 0..self.ngroups {
            let group = self.groups[g];
            // (The flood skips the ingress port: an answer back to it, such
            // as the router's ARP reply, goes here.)
            if flooding
                && group.port != in_port
                && bridge.is_some_and(|b| b.ports.contains(&group.port))
            {
                continue;
            }
            if let Some(out) = snap.port(group.port) {
                self.output(out, batch, group.members(), &[]);
            }
        }
    }

    /// The unicast group of output port `p` in the current run: the slot
    /// hint, else a search (which puts the hint right).
    #[inline]
    fn find_group(&mut self, p: PortNo) -> Option<usize> {
        let slot = p as usize % SLOTS;
        let g = self.slot[slot] as usize;
        if g < self.ngroups && self.groups[g].port == p {
            return Some(g);
        }
        let g = self.groups[..self.ngroups]
            .iter()
            .position(|g| g.port == p)?;
        self.slot[slot] = g as u8;
        Some(g)
    }

    /// Sorts the verdicts of `run` into unicast groups and the flood group,
    /// and counts drops against the ingress port.
    fn group(&mut self, port: &PortRef, run: Range<usize>) {
        self.ngroups = 0;
        self.flood.len = 0;
        for i in run {
            let v = self.verdicts[i];
            // Unicast first: by far the most common verdict.
            if let Verdict::Output(p) = v {
                let g = match self.find_group(p) {
                    Some(g) => g,
                    None => {
                        let g = self.ngroups;
                        (self.groups[g].port, self.groups[g].len) = (p, 0);
                        self.ngroups += 1;
                        self.slot[p as usize % SLOTS] = g as u8;
                        g
                    }
                };
                self.groups[g].push(i);
                continue;
            }
            match v {
                Verdict::Flood => self.flood.push(i),
                Verdict::Drop(r) => port.stats.add_drop(r, 1),
                Verdict::Consumed => {}
                // A stage that left a packet undecided, or sent it into a
                // second re-entry: nothing takes it further.
                _ => port.stats.add_drop(DropReason::NoBridge, 1),
            }
        }
    }

    /// Sends the packets listed in `uni` and `flood` (batch indices, each
    /// list ascending) to `out` in batch order, each written with the
    /// port's encapsulation. Flood packets go to other ports too and are
    /// not changed; unicast packets are finished after this call.
    fn output(&mut self, out: &PortRef, batch: &mut Batch, uni: &[u8], flood: &[u8]) {
        if let Some(h) = &out.hooks {
            if let Some(peer) = h.patch_peer {
                self.patch.take(out, peer, batch, uni, flood);
                return;
            }
            if let Some(t) = h.taps() {
                tap_out(t, out, batch, uni, flood);
            }
        }
        let mut c = TxCount::default();
        let pkts = batch.packets_mut();
        let mut tx = out.tx.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, shared) in in_batch_order(uni, flood) {
            let Some(pkt) = pkts.get_mut(i as usize) else {
                continue;
            };
            let tpid = match out.vlan.egress_packet(pkt) {
                Egress::No => continue,
                Egress::Untagged => None,
                Egress::Tagged(tpid) => Some(tpid),
            };
            if pkt.gso() != 0 {
                self.send_super(&mut **tx, out, pkt, tpid, &mut c);
                continue;
            }
            if let Some(encap) = &out.encap {
                let scratch = &mut self.scratch;
                if encapsulate(&mut **tx, encap, pkt, tpid, shared, scratch, &mut c) {
                    self.reply_frag_needed(pkt, encap.max_inner);
                }
                continue;
            }
            let len = pkt.len() + if tpid.is_some() { TAG_LEN } else { 0 };
            if len > out.max_frame {
                c.too_big += 1;
                continue;
            }
            let ok = match (tpid, shared) {
                (None, true) => tx.send(pkt.data()),
                (Some(tpid), true) => {
                    let tag = vlan::tag_bytes(pkt, tpid);
                    let f = pkt.data();
                    tx.send_parts(&[&f[..TAG_OFFSET], &tag, &f[TAG_OFFSET..]])
                }
                // A unicast packet is finished after this port: push its tag
                // in place, and let the port take its buffer instead of
                // copying it (zero-copy AF_XDP) or put its own header into
                // the headroom (one write to a TAP).
                (tpid, false) => {
                    if let Some(tpid) = tpid {
                        if !vlan::push_tag(pkt, tpid) {
                            // No headroom: never send it untagged into the
                            // wrong VLAN. (Received packets always have room.)
                            c.too_big += 1;
                            continue;
                        }
                    }
                    tx.send_packet(pkt)
                }
            };
            c.count(ok, len);
        }
        if out.timed_flush {
            let t0 = cycles::now();
            tx.flush();
            self.tx_cycles += cycles::now().wrapping_sub(t0);
        } else {
            tx.flush();
        }
        let pending = tx.pending();
        out.stats.add_tx_locked(c.sent, c.bytes);
        drop(tx);
        if pending && !self.pending.contains(&out.port_no) {
            self.pending.push(out.port_no);
        }
        if c.full > 0 {
            out.stats.add_drop(DropReason::TxFull, c.full);
        }
        if c.too_big > 0 {
            out.stats.add_drop(DropReason::TxTooBig, c.too_big);
        }
    }

    /// Sends `pkt`, a TCP super-frame held whole, by `out`: whole where
    /// the port takes it, else as its segments.
    #[cold]
    #[inline(never)]
    fn send_super(
        &mut self,
        tx: &mut dyn TxQueue,
        out: &PortRef,
        pkt: &Packet,
        tpid: Option<u16>,
        c: &mut TxCount,
    ) {
        if out.takes_whole(tpid) {
            let ok = tx.send_gso(pkt.data(), pkt.gso());
            c.count(ok, pkt.len());
        } else if self.cut.send(tx, out, pkt, tpid, &mut self.scratch, c) {
            if let Some(encap) = &out.encap {
                self.reply_frag_needed(pkt, encap.max_inner);
            }
        }
    }

    /// Keeps an ICMP "fragmentation needed" for the sender of `pkt`, a frame
    /// too big for a tunnel, to send after the batch (one per batch).
    fn reply_frag_needed(&mut self, pkt: &Packet, max_inner: usize) {
        if self.reply.port.is_some() {
            return;
        }
        let mtu =
            (max_inner.saturating_sub(pipeline::wire::eth::HEADER_LEN)).min(u16::MAX as usize);
        let r = &mut *self.reply;
        if let Some(len) = vxlan::frag_needed(pkt.data(), mtu as u16, &mut r.buf) {
            r.port = Some(pkt.meta.in_port);
            (r.vlan, r.pcp, r.tpid, r.len) = (pkt.meta.vlan, pkt.meta.pcp, pkt.meta.tpid, len);
        }
    }

    /// Sends the kept reply out of the port the answered frame came from,
    /// tagged as that port wants its VLAN.
    fn send_reply(&mut self, snap: &Snapshot) {
        let r = &mut *self.reply;
        let Some(port) = r.port.take().and_then(|p| snap.port(p)) else {
            return;
        };
        let frame = &r.buf[..r.len];
        let mut tx = port.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let ok = match port.vlan.egress(r.vlan, r.tpid) {
            Egress::No => return,
            Egress::Untagged => tx.send(frame),
            Egress::Tagged(tpid) => {
                let tci = pipeline::wire::vlan::tci(r.pcp, r.vlan);
                let (t, c) = (tpid.to_be_bytes(), tci.to_be_bytes());
                let tag = [t[0], t[1], c[0], c[1]];
                tx.send_parts(&[&frame[..TAG_OFFSET], &tag, &frame[TAG_OFFSET..]])
            }
        };
        tx.flush();
        if ok {
            port.stats.add_tx_locked(1, r.len as u64);
        }
    }

    /// True while some output port still has frames for the kernel.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Kicks the transmit halves that still have frames outstanding.
    pub fn flush_pending(&mut self, snap: &Snapshot) {
        let t0 = cycles::now();
        self.pending.retain(|&p| {
            let Some(port) = snap.port(p) else {
                return false;
            };
            let mut tx = port.tx.lock().unwrap_or_else(PoisonError::into_inner);
            tx.flush();
            tx.pending()
        });
        self.tx_cycles += cycles::now().wrapping_sub(t0);
    }

    /// Cycles spent in `TxQueue::flush` since the last call.
    pub fn take_tx_cycles(&mut self) -> u64 {
        std::mem::take(&mut self.tx_cycles)
    }
}

/// What one output call sent and dropped.
#[derive(Default)]
pub(super) struct TxCount {
    sent: u64,
    bytes: u64,
    /// The transmit ring was full.
    full: u64,
    pub(super) too_big: u64,
}

impl TxCount {
    #[inline]
    pub(super) fn count(&mut self, ok: bool, len: usize) {
        if ok {
            self.sent += 1;
            self.bytes += len as u64;
        } else {
            self.full += 1;
        }
    }
}

/// Writes `pkt` to a tunnel port's underlay: the outer headers of each
/// remote it goes to, then the frame (with its VLAN tag, if the port wants
/// one). Returns true when the frame is too big for the underlay.
#[inline(always)]
pub(super) fn encapsulate(
    tx: &mut dyn TxQueue,
    encap: &Encap,
    pkt: &Packet,
    tpid: Option<u16>,
    flood: bool,
    scratch: &mut [u8; ports::GATHER_MAX],
    c: &mut TxCount,
) -> bool {
    let inner: &[u8] = match tpid {
        None => pkt.data(),
        Some(tpid) => {
            let f = pkt.data();
            let len = f.len() + TAG_LEN;
            if len > scratch.len() {
                c.too_big += 1;
                return false;
            }
            scratch[..TAG_OFFSET].copy_from_slice(&f[..TAG_OFFSET]);
            scratch[TAG_OFFSET..TAG_OFFSET + TAG_LEN].copy_from_slice(&vlan::tag_bytes(pkt, tpid));
            scratch[TAG_OFFSET + TAG_LEN..len].copy_from_slice(&f[TAG_OFFSET..]);
            &scratch[..len]
        }
    };
    if inner.len() > encap.max_inner {
        c.too_big += 1;
        return true;
    }
    let src_port = vxlan::src_port(inner);
    let mut hdr = [0u8; vxlan::OUTER_LEN];
    for r in encap.targets(pkt.meta.tun_remote, flood) {
        r.template.write(&mut hdr, inner, src_port);
        let ok = tx.send_parts(&[&hdr, inner]);
        if ok {
            r.counters.add_tx(1, inner.len() as u64);
        }
        c.count(ok, inner.len());
    }
    false
}

/// Shows a capture the frames `uni` and `flood` of `batch` as they leave
/// by `out`: with the tag the port gives them (a tunnel port's capture
/// shows the inner frame).
#[inline(never)]
fn tap_out(t: &PortTaps, out: &PortRef, batch: &Batch, uni: &[u8], flood: &[u8]) {
    for (i, _) in in_batch_order(uni, flood) {
        let Some(pkt) = batch.packets().get(i as usize) else {
            continue;
        };
        let f = pkt.data();
        match out.vlan.egress(pkt.meta.vlan, pkt.meta.tpid) {
            Egress::No => {}
            Egress::Untagged => t.tx(&[f]),
            Egress::Tagged(tpid) => {
                let tag = vlan::tag_bytes(pkt, tpid);
                let at = TAG_OFFSET.min(f.len());
                t.tx(&[&f[..at], &tag, &f[at..]]);
            }
        }
    }
}

/// Shows a capture that wants them the frames of a run the pipeline
/// dropped (`verdicts` of the packets from `first` on).
#[inline(never)]
fn tap_drops(t: &PortTaps, batch: &Batch, verdicts: &[Verdict], first: usize) {
    if !t.wants_drops() {
        return;
    }
    for (i, v) in verdicts.iter().enumerate() {
        if let (Verdict::Drop(r), Some(p)) = (v, batch.packets().get(first + i)) {
            t.drop(p.data(), *r);
        }
    }
}
