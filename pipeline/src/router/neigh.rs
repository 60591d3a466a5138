//! The router's neighbours: IPv4 address to MAC and port, per interface
//! (the uplink, or a bridge's gateway), learned from ARP and from what
//! hosts send, with the first packets to an unresolved address held
//! instead of dropped.
//!
//! OVS drops a packet whose next hop is not resolved yet, so the first SYN
//! of a connection is lost and its sender waits a second to retry. Here a
//! short queue per address (`HOLD_PER_ADDR`, `HOLD_TOTAL` in all) keeps
//! them, and they leave as soon as the answer arrives.

use crate::conntrack::FxBuildHasher;
use crate::packet::PortNo;
use std::collections::HashMap;

/// How long an entry is used before it is asked again (it stays usable
/// while the new question is out: a stale MAC is usually still right).
pub const REACHABLE_MS: u64 = 60_000;
/// How often an unanswered question is repeated, and how many times.
pub const RETRY_MS: u64 = 1_000;
pub const MAX_TRIES: u8 = 3;
const HOLD_PER_ADDR: usize = 16;
const HOLD_TOTAL: usize = 1024;
/// Entries (known and pending) per table; past it, new ones are refused.
const MAX_ENTRIES: usize = 16_384;

/// Which interface of the router an address is on: the uplink, or the
/// gateway of one bridge (by its zone).
pub type Iface = u16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub mac: [u8; 6],
    pub port: PortNo,
}

#[derive(Clone)]
enum Entry {
    Known {
        at: Known,
        /// When it was last confirmed.
        seen_ms: u64,
        /// When it was last asked again (0 = not since `seen_ms`).
        asked_ms: u64,
    },
    Pending {
        held: Vec<Vec<u8>>,
        asked_ms: u64,
        tries: u8,
    },
}

/// What [`Neighbors::lookup`] found.
pub enum Lookup {
    Found { at: Known, ask_again: bool },
    Missing,
}

#[derive(Clone, Default)]
pub struct Neighbors {
    /// Fx-hashed: looked up for every routed packet whose next hop is not
    /// the one before it (SipHash cost 100 instructions a lookup).
    map: HashMap<(Iface, u32), Entry, FxBuildHasher>,
    held: usize,
    /// Packets dropped because the queue was full or nobody answered.
    pub dropped: u64,
}

impl Neighbors {
    pub fn lookup(&mut self, iface: Iface, ip: u32, now_ms: u64) -> Lookup {
        match self.map.get_mut(&(iface, ip)) {
            Some(Entry::Known {
                at,
                seen_ms,
                asked_ms,
            }) => {
                let stale = now_ms.saturating_sub(*seen_ms) > REACHABLE_MS;
                let ask_again = stale && now_ms.saturating_sub(*asked_ms) > RETRY_MS;
                if ask_again {
                    *asked_ms = now_ms;
                }
                Lookup::Found { at: *at, ask_again }
            }
            _ => Lookup::Missing,
        }
    }

    /// Records that `ip` on `iface` is at `at` (an ARP message or a packet
    /// from it). Returns the packets that were waiting for it: the caller
    /// writes the destination MAC and sends them.
    pub fn learn(&mut self, iface: Iface, ip: u32, at: Known, now_ms: u64) -> Vec<Vec<u8>> {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&(iface, ip)) {
            return Vec::new();
        }
        let new = Entry::Known {
            at,
            seen_ms: now_ms,
            asked_ms: 0,
        };
        match self.map.insert((iface, ip), new) {
            Some(Entry::Pending { held, .. }) => {
                self.held -= held.len();
                held
            }
            _ => Vec::new(),
        }
    }

    /// Keeps a copy of `frame` until `ip` is resolved. Returns true when a
    /// question should go out now (the first packet for the address).
    pub fn hold(&mut self, iface: Iface, ip: u32, frame: &[u8], now_ms: u64) -> bool {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&(iface, ip)) {
            self.dropped += 1;
            return false;
        }
        let e = self.map.entry((iface, ip)).or_insert(Entry::Pending {
            held: Vec::new(),
            asked_ms: 0,
            tries: 0,
        });
        let Entry::Pending {
            held,
            asked_ms,
            tries,
        } = e
        else {
            return false;
        };
        if held.len() < HOLD_PER_ADDR && self.held < HOLD_TOTAL {
            held.push(frame.to_vec());
            self.held += 1;
        } else {
            self.dropped += 1;
        }
        if *tries == 0 {
            *tries = 1;
            *asked_ms = now_ms;
            return true;
        }
        false
    }

    /// Questions to repeat now, once a second and `MAX_TRIES` times in
    /// all; an address that never answers loses its held packets (counted
    /// in `dropped`).
    pub fn retries(&mut self, now_ms: u64) -> Vec<(Iface, u32)> {
        let mut again = Vec::new();
        let mut freed = 0;
        let mut dropped = 0;
        self.map.retain(|&(iface, ip), e| match e {
            Entry::Pending {
                held,
                asked_ms,
                tries,
            } => {
                if now_ms.saturating_sub(*asked_ms) < RETRY_MS {
                    return true;
                }
                if *tries >= MAX_TRIES {
                    freed += held.len();
                    dropped += held.len() as u64;
                    return false;
                }
                *tries += 1;
                *asked_ms = now_ms;
                again.push((iface, ip));
                true
            }
            // Forget what has not been confirmed for a long time.
            Entry::Known { seen_ms, .. } => now_ms.saturating_sub(*seen_ms) < 10 * REACHABLE_MS,
        });
        self.held -= freed;
        self.dropped += dropped;
        again
    }

    /// Forgets every entry of `iface` (its interface changed).
    pub fn forget(&mut self, iface: Iface) {
        let mut freed = 0;
        self.map.retain(|&(i, _), e| {
            if i != iface {
                return true;
            }
            if let Entry::Pending { held, .. } = e {
                freed += held.len();
            }
            false
        });
        self.held -= freed;
    }

    /// Known entries, for `show`: interface, address, MAC, port.
    pub fn known(&self) -> Vec<(Iface, u32, Known)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .filter_map(|(&(i, ip), e)| match e {
                Entry::Known { at, .. } => Some((i, ip, *at)),
                _ => None,
            })
            .collect();
        v.sort_by_key(|&(i, ip, _)| (i, ip));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Known = Known {
        mac: [2, 0, 0, 0, 0, 9],
        port: 3,
    };

    #[test]
    fn held_packets_leave_when_the_answer_comes() {
        let mut n = Neighbors::default();
        assert!(matches!(n.lookup(0, 7, 0), Lookup::Missing));
        assert!(n.hold(0, 7, b"one", 0));
        assert!(!n.hold(0, 7, b"two", 1), "asked once");
        let out = n.learn(0, 7, AT, 5);
        assert_eq!(out, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(matches!(n.lookup(0, 7, 6), Lookup::Found { at, ask_again: false } if at == AT));
        assert_eq!(n.held, 0);
    }

    #[test]
    fn questions_repeat_then_give_up_and_count() {
        let mut n = Neighbors::default();
        n.hold(1, 7, b"x", 0);
        assert!(n.retries(500).is_empty());
        assert_eq!(n.retries(1_001), vec![(1, 7)]);
        assert_eq!(n.retries(2_002), vec![(1, 7)]);
        assert!(n.retries(3_003).is_empty());
        assert_eq!(n.dropped, 1);
        assert_eq!(n.held, 0);
        assert!(matches!(n.lookup(1, 7, 3_004), Lookup::Missing));
    }

    #[test]
    fn stale_entries_stay_usable_and_are_asked_again_once() {
        let mut n = Neighbors::default();
        n.learn(0, 7, AT, 0);
        let t = REACHABLE_MS + 1;
        assert!(matches!(
            n.lookup(0, 7, t),
            Lookup::Found {
                ask_again: true,
                ..
            }
        ));
        assert!(matches!(
            n.lookup(0, 7, t + 1),
            Lookup::Found {
                ask_again: false,
                ..
            }
        ));
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut n = Neighbors::default();
        for i in 0..HOLD_PER_ADDR + 5 {
            n.hold(0, 7, &[i as u8], 0);
        }
        assert_eq!(n.dropped, 5);
        assert_eq!(n.learn(0, 7, AT, 1).len(), HOLD_PER_ADDR);
    }
}
