//! The data-path side of RSTP: a stage first in the chain of every port of
//! a bridge with `rstp_enable=true`.
//!
//! It hands BPDUs (frames to 01:80:c2:00:00:00) to the control thread's
//! [`BpduInbox`], in every port state, and drops everything else a port
//! that is not forwarding receives (`rstp-discarding`). The port's state
//! is fixed in the stage: the control thread builds a new snapshot when a
//! port changes state, and leaves ports that do not forward out of the
//! bridge's flood list, so frames neither enter nor leave by a blocked port.
//! Bridges without RSTP have no such stage and pay nothing.

use crate::stage::{Ctx, Stage};
use crate::{DropReason, Packet, PortNo, Verdict};
use std::sync::{Mutex, PoisonError};

/// The destination of spanning-tree BPDUs (IEEE 802.1D bridge group).
pub const BPDU_MAC: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00];

/// BPDUs kept for the control thread at most; more are dropped (a flood of
/// BPDUs must not grow memory).
pub const INBOX_MAX: usize = 1024;

/// Largest BPDU frame kept (an RST BPDU is 53 bytes, padded to 60).
const BPDU_KEEP: usize = 128;

/// BPDUs received by the poll threads, waiting for the control thread.
#[derive(Default)]
pub struct BpduInbox {
    q: Mutex<Vec<(PortNo, Vec<u8>)>>,
}

impl BpduInbox {
    /// Keeps a copy of `frame`, received on `port`; false when full.
    pub fn push(&self, port: PortNo, frame: &[u8]) -> bool {
        let mut q = self.q.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= INBOX_MAX {
            return false;
        }
        q.push((port, frame[..frame.len().min(BPDU_KEEP)].to_vec()));
        true
    }

    /// Everything received since the last call, in order.
    pub fn take(&self) -> Vec<(PortNo, Vec<u8>)> {
        std::mem::take(&mut *self.q.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The stage. `forwarding` is the port's RSTP state when the snapshot was
/// built.
pub struct StpGate {
    pub inbox: std::sync::Arc<BpduInbox>,
    pub forwarding: bool,
}

impl Stage for StpGate {
    fn name(&self) -> &'static str {
        "rstp"
    }

    fn keeps_gso(&self) -> bool {
        true
    }

    fn process(&self, _cx: &Ctx, pkts: &mut [Packet], verdicts: &mut [Verdict]) {
        for (pkt, v) in pkts.iter().zip(verdicts.iter_mut()) {
            if *v != Verdict::Continue {
                continue;
            }
            let frame = pkt.data();
            if frame.len() >= 14 && frame[..6] == BPDU_MAC {
                *v = if self.inbox.push(pkt.meta.in_port, frame) {
                    Verdict::Consumed
                } else {
                    Verdict::Drop(DropReason::BpduOverflow)
                };
            } else if !self.forwarding {
                *v = Verdict::Drop(DropReason::StpDiscarding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run(gate: &StpGate, frames: &[&[u8]]) -> Vec<Verdict> {
        let mut pkts: Vec<Packet> = frames
            .iter()
            .map(|f| {
                let mut p = Packet::new();
                assert!(p.fill(f));
                p.meta.in_port = 3;
                p
            })
            .collect();
        let mut v = vec![Verdict::Continue; pkts.len()];
        gate.process(&Ctx::default(), &mut pkts, &mut v);
        v
    }

    fn frame(dst: [u8; 6]) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f
    }

    #[test]
    fn bpdus_go_to_the_inbox_in_every_state() {
        for forwarding in [false, true] {
            let gate = StpGate {
                inbox: Arc::new(BpduInbox::default()),
                forwarding,
            };
            let data = frame([0xff; 6]);
            let v = run(&gate, &[&frame(BPDU_MAC), &data]);
            assert_eq!(v[0], Verdict::Consumed);
            let expect = if forwarding {
                Verdict::Continue
            } else {
                Verdict::Drop(DropReason::StpDiscarding)
            };
            assert_eq!(v[1], expect);
            let got = gate.inbox.take();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, 3);
            assert!(gate.inbox.take().is_empty());
        }
    }

    #[test]
    fn the_inbox_is_bounded() {
        let gate = StpGate {
            inbox: Arc::new(BpduInbox::default()),
            forwarding: true,
        };
        let bpdu = frame(BPDU_MAC);
        for _ in 0..INBOX_MAX {
            assert!(gate.inbox.push(1, &bpdu));
        }
        let v = run(&gate, &[&bpdu]);
        assert_eq!(v[0], Verdict::Drop(DropReason::BpduOverflow));
        assert_eq!(gate.inbox.take().len(), INBOX_MAX);
    }
}
