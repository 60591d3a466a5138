//! Packet capture (`vswctl capture`): copies of the frames a port receives
//! and sends, as they are on that port's wire, streamed to the client as
//! pcapng.
//!
//! The poll threads never wait on a capture. A port that a capture watches
//! carries a [`PortTaps`] in the datapath snapshot (no capture: `None`, one
//! branch per batch and output). A tapped frame is copied, cut to the
//! snaplen, and offered to the capture's bounded queue; when the queue is
//! full the frame is counted as the capture's drop and forwarding goes on.
//! A capture thread per session turns the queue into pcapng blocks
//! ([`pcapng`]) and writes them to the client's connection, which it took
//! over from the control thread ([`session`]). The client writes each block
//! with one `write`, so a capture killed at any moment leaves a readable
//! file.

pub mod pcapng;
pub mod session;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use pipeline::DropReason;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Frames a capture queues before it drops (about 2 s of a busy ping
/// flood; a slow reader loses frames, never the switch).
pub const QUEUE_LEN: usize = 8192;
/// Default bytes kept of each frame.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Which way a tapped frame went through its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
}

/// What a capture watches, from the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub rx: bool,
    pub tx: bool,
    /// Also frames the pipeline dropped, with the reason.
    pub drops: bool,
    pub snaplen: u32,
    /// Stop after this many frames (0: no limit).
    pub count: u64,
    /// Only frames with these fields (`trace --live`).
    pub fields: Option<crate::trace::flow::Fields>,
}

/// One copied frame on its way to the capture thread.
pub struct Record {
    /// Index of the port in the capture's interface list.
    pub iface: u32,
    pub dir: Option<Dir>,
    pub ts_ns: u64,
    pub orig_len: u32,
    pub reason: Option<DropReason>,
    pub data: Vec<u8>,
}

/// Counters of one captured port: frames offered, and those the queue
/// could not take.
#[derive(Default)]
pub struct IfaceCounters {
    pub offered: AtomicU64,
    pub dropped: AtomicU64,
}

/// One capture session, shared by the poll threads (producers) and its
/// capture thread (consumer).
pub struct Tap {
    pub id: u64,
    /// Port names, in interface order.
    pub ports: Vec<String>,
    pub filter: Filter,
    queue: Sender<Record>,
    /// False once the session ends: the taps stop copying at once, and the
    /// control thread takes them out of the next snapshot.
    active: AtomicBool,
    /// Frames still to take under `--count` (negative: no limit).
    remaining: AtomicI64,
    pub counters: Vec<IfaceCounters>,
}

impl Tap {
    pub fn new(id: u64, ports: Vec<String>, filter: Filter) -> (Arc<Tap>, Receiver<Record>) {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_LEN);
        let remaining = if filter.count == 0 {
            -1
        } else {
            filter.count.min(i64::MAX as u64) as i64
        };
        let counters = ports.iter().map(|_| IfaceCounters::default()).collect();
        let tap = Tap {
            id,
            ports,
            filter,
            queue: tx,
            active: AtomicBool::new(true),
            remaining: AtomicI64::new(remaining),
            counters,
        };
        (Arc::new(tap), rx)
    }

    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.active.store(false, Ordering::Relaxed);
    }

    /// True once `--count` frames were taken.
    pub fn count_reached(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) == 0
    }

    /// Copies the frame made of `parts` into the queue.
    fn offer(&self, iface: u32, dir: Option<Dir>, reason: Option<DropReason>, parts: &[&[u8]]) {
        if !self.is_active() {
            return;
        }
        if let Some(f) = &self.filter.fields {
            if parts.len() != 1 || !f.matches(parts[0]) {
                return;
            }
        }
        // Take one from the count, if there is one.
        if self.remaining.load(Ordering::Relaxed) >= 0
            && self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                    (r != 0).then_some(if r < 0 { r } else { r - 1 })
                })
                .is_err()
        {
            return;
        }
        let c = &self.counters[iface as usize];
        c.offered.fetch_add(1, Ordering::Relaxed);
        let orig_len: usize = parts.iter().map(|p| p.len()).sum();
        let keep = orig_len.min(self.filter.snaplen as usize);
        let mut data = Vec::with_capacity(keep);
        for p in parts {
            let room = keep - data.len();
            data.extend_from_slice(&p[..p.len().min(room)]);
        }
        let rec = Record {
            iface,
            dir,
            ts_ns: now_ns(),
            orig_len: orig_len as u32,
            reason,
            data,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.queue.try_send(rec)
        {
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Wall-clock nanoseconds since the Unix epoch (pcapng timestamps).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The captures watching one port, as a snapshot carries them.
#[derive(Default)]
pub struct PortTaps {
    /// Each capture and this port's interface index in it.
    taps: Vec<(Arc<Tap>, u32)>,
}

impl PortTaps {
    /// The taps of port `name` among `captures`; `None` when none watches
    /// it (the datapath then pays one branch).
    pub fn for_port(name: &str, captures: &[Arc<Tap>]) -> Option<PortTaps> {
        let taps: Vec<(Arc<Tap>, u32)> = captures
            .iter()
            .filter(|t| t.is_active())
            .filter_map(|t| {
                let i = t.ports.iter().position(|p| p == name)?;
                Some((t.clone(), i as u32))
            })
            .collect();
        (!taps.is_empty()).then_some(PortTaps { taps })
    }

    /// A frame received on the port, before any stage changed it.
    pub fn rx(&self, frame: &[u8]) {
        for (t, i) in &self.taps {
            if t.filter.rx {
                t.offer(*i, Some(Dir::In), None, &[frame]);
            }
        }
    }

    /// A frame sent by the port, made of `parts` (a VLAN tag or tunnel
    /// headers written as it was copied).
    pub fn tx(&self, parts: &[&[u8]]) {
        for (t, i) in &self.taps {
            if t.filter.tx {
                t.offer(*i, Some(Dir::Out), None, parts);
            }
        }
    }

    /// A frame received on the port that the pipeline dropped.
    pub fn drop(&self, frame: &[u8], reason: DropReason) {
        for (t, i) in &self.taps {
            if t.filter.drops {
                t.offer(*i, Some(Dir::In), Some(reason), &[frame]);
            }
        }
    }

    /// True if some capture here records drops (so the forwarder looks).
    pub fn wants_drops(&self) -> bool {
        self.taps.iter().any(|(t, _)| t.filter.drops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(count: u64) -> Filter {
        Filter {
            rx: true,
            tx: true,
            drops: true,
            snaplen: 8,
            count,
            fields: None,
        }
    }

    #[test]
    fn frames_are_cut_to_the_snaplen_and_keep_their_length() {
        let (tap, rx) = Tap::new(1, vec!["p1".into(), "p2".into()], filter(0));
        let taps = PortTaps::for_port("p2", std::slice::from_ref(&tap)).unwrap();
        taps.tx(&[&[1, 2, 3], &[4, 5, 6, 7, 8, 9, 10]]);
        let r = rx.try_recv().unwrap();
        assert_eq!((r.iface, r.dir, r.orig_len), (1, Some(Dir::Out), 10));
        assert_eq!(r.data, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(PortTaps::for_port("p3", &[tap]).is_none());
    }

    #[test]
    fn the_count_stops_the_capture_and_a_full_queue_counts_drops() {
        let (tap, rx) = Tap::new(1, vec!["p1".into()], filter(3));
        let taps = PortTaps::for_port("p1", std::slice::from_ref(&tap)).unwrap();
        for _ in 0..5 {
            taps.rx(&[0; 20]);
        }
        assert_eq!(rx.try_iter().count(), 3);
        assert!(tap.count_reached());

        let (tap, rx) = Tap::new(2, vec!["p1".into()], filter(0));
        let taps = PortTaps::for_port("p1", std::slice::from_ref(&tap)).unwrap();
        for _ in 0..QUEUE_LEN + 10 {
            taps.drop(&[0; 20], DropReason::VlanNotAllowed);
        }
        assert_eq!(tap.counters[0].dropped.load(Ordering::Relaxed), 10);
        assert_eq!(
            rx.try_recv().unwrap().reason,
            Some(DropReason::VlanNotAllowed)
        );
        tap.stop();
        assert!(PortTaps::for_port("p1", &[tap]).is_none());
    }
}
