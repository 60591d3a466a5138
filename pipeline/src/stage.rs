//! The stage interface: how the pipeline is put together.
//!
//! A stage is one step of the pipeline (VLAN classification, MAC learning
//! and lookup, VXLAN decapsulation, later NAT). It runs once per batch, over
//! a run of packets that share an ingress port, and writes a [`Verdict`] for
//! each packet that is still [`Verdict::Continue`]: go on, leave by a port,
//! flood, re-enter as if received on another port, or drop with a reason.
//! Packets an earlier stage decided are left alone. A stage never
//! transmits: the forwarder reads the verdicts after the last stage, groups
//! the packets by output port (VPP's `nexts[]`) and writes each frame to its
//! output with that port's encapsulation (VLAN tag, VXLAN headers) as it
//! copies it.
//!
//! Ownership: a stage is built by the control thread, lives in a port's
//! ingress [`Chain`] inside an immutable datapath snapshot, and is shared by
//! every poll thread, so it takes `&self`. State that changes (a MAC table)
//! sits behind a lock that the stage takes once per call, not per packet.
//! Per-batch caches live on the stack of `process`.

use crate::packet::Packet;
use crate::verdict::Verdict;
use std::sync::Arc;

/// What a stage knows about the moment it runs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx {
    /// The datapath clock (milliseconds), read once per poll iteration.
    pub now_ms: u64,
}

pub trait Stage: Send + Sync {
    /// The stage's name, as counters and traces show it.
    fn name(&self) -> &'static str;

    /// Decides for every packet of `pkts` whose verdict is `Continue`
    /// (`verdicts[i]` belongs to `pkts[i]`; both slices have one length).
    /// Every packet has `meta.in_port` set, and all share it.
    fn process(&self, cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]);

    /// A copy of this stage for `vswctl trace`, which runs a frame through
    /// the live pipeline without changing it: state the stage would change
    /// (a MAC it learns, a connection it creates) lives in the copy and is
    /// thrown away. `None`: the stage changes nothing worth keeping out of
    /// (at most counters) and runs as it is.
    fn for_trace(&self) -> Option<Arc<dyn Stage>> {
        None
    }

    /// True when the stage takes a TCP super-frame held whole
    /// (`Packet::gso` set, longer than any MTU, its TCP checksum partial) as
    /// one packet: it needs no frame within an MTU, and rewrites neither
    /// addresses, ports nor checksums. A port hands super-frames over whole
    /// only when every stage of its chain says so; otherwise they are cut
    /// into segments as they are received.
    fn keeps_gso(&self) -> bool {
        false
    }
}

/// The ordered stages a frame received on one port goes through.
#[derive(Clone, Default)]
pub struct Chain(Vec<Arc<dyn Stage>>);

impl Chain {
    pub fn new(stages: Vec<Arc<dyn Stage>>) -> Chain {
        Chain(stages)
    }

    /// Runs every stage over the run, in order.
    #[inline]
    pub fn run(&self, cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        for s in &self.0 {
            s.process(cx, pkts, verdicts);
        }
    }

    /// The stages, in order.
    /// This chain with `stage` put at position `at` (the end if `at` is
    /// past it).
    pub fn with_inserted(&self, at: usize, stage: Arc<dyn Stage>) -> Chain {
        let mut v = self.0.clone();
        v.insert(at.min(v.len()), stage);
        Chain(v)
    }

    pub fn stages(&self) -> &[Arc<dyn Stage>] {
        &self.0
    }

    /// The stages' names, in order (for `show` and traces).
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.name()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every stage keeps super-frames whole ([`Stage::keeps_gso`]).
    pub fn keeps_gso(&self) -> bool {
        self.0.iter().all(|s| s.keeps_gso())
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
