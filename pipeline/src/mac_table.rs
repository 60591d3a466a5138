//! The MAC learning table of one bridge: (VLAN, MAC) -> port (and, behind a
//! tunnel port, the remote VTEP), with aging and a size limit that evicts
//! the least recently used entry. Static entries (`fdb/add`) never age, are
//! never evicted and are not moved by learning.
//!
//! Eviction and aging use a queue of (key, stamp) records in the order
//! entries were (re)queued, with lazy deletion: a record whose stamp no longer
//! matches its entry is stale and skipped, and an entry that was used after it
//! was queued gets a second chance at the back. Both are O(1) amortised, so a
//! flood of random source MACs costs no scans.

use crate::flat_map::FlatMap;
use crate::packet::PortNo;
use std::collections::VecDeque;

pub const DEFAULT_AGING_SECS: u32 = 300;
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

/// Table key: the MAC in the low 48 bits, the VLAN above it.
#[inline]
pub fn key(vlan: u16, mac: &[u8; 6]) -> u64 {
    let mut k = [0u8; 8];
    k[2..].copy_from_slice(mac);
    k[0..2].copy_from_slice(&vlan.to_be_bytes());
    u64::from_be_bytes(k)
}

#[inline]
pub fn split_key(k: u64) -> (u16, [u8; 6]) {
    let b = k.to_be_bytes();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&b[2..]);
    (u16::from_be_bytes([b[0], b[1]]), mac)
}

type Map = FlatMap<Entry>;

/// Where a MAC lives: a port and, for a tunnel port, the remote VTEP's
/// IPv4 address (host byte order; 0 for other ports), packed in one word
/// so that the fast path compares them in one instruction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dest(u64);

impl Dest {
    #[inline]
    pub fn new(port: PortNo, remote: u32) -> Dest {
        Dest(((port as u64) << 32) | remote as u64)
    }

    /// A port that is not a tunnel.
    #[inline]
    pub fn port_only(port: PortNo) -> Dest {
        Dest::new(port, 0)
    }

    #[inline]
    pub fn port(self) -> PortNo {
        (self.0 >> 32) as PortNo
    }

    #[inline]
    pub fn remote(self) -> u32 {
        self.0 as u32
    }
}

/// `queued` of a static entry: matches no queue record, so aging and
/// eviction skip it.
const STATIC: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    dest: Dest,
    /// Last time (ms) the MAC was seen as a source.
    used: u64,
    /// Stamp of this entry's live record in the queue.
    queued: u64,
}

/// One row of `fdb/show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub port: PortNo,
    pub vlan: u16,
    pub mac: [u8; 6],
    pub age_secs: u64,
    /// Remote VTEP (host byte order), 0 when not behind a tunnel.
    pub remote: u32,
    pub is_static: bool,
}

pub struct MacTable {
    map: Map,
    queue: VecDeque<(u64, u64)>,
    max_entries: usize,
    aging_ms: u64,
    /// Entries removed to make room (counter for `fdb/stats-show`).
    pub evicted: u64,
    /// Entries removed by aging.
    pub expired: u64,
    /// Entries whose port changed.
    pub moved: u64,
}

impl Default for MacTable {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES, DEFAULT_AGING_SECS)
    }
}

impl MacTable {
    pub fn new(max_entries: usize, aging_secs: u32) -> Self {
        let max_entries = max_entries.max(1);
        MacTable {
            map: Map::with_capacity(max_entries.min(1 << 16)),
            queue: VecDeque::with_capacity(max_entries.min(1 << 16)),
            max_entries,
            aging_ms: aging_secs as u64 * 1000,
            evicted: 0,
            expired: 0,
            moved: 0,
        }
    }

    /// Changes the limits; shrinking evicts the oldest entries at once.
    pub fn set_limits(&mut self, max_entries: usize, aging_secs: u32) {
        self.max_entries = max_entries.max(1);
        self.aging_ms = aging_secs as u64 * 1000;
        while self.map.len() > self.max_entries {
            if !self.evict_one() {
                break;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Learns or refreshes `mac` in `vlan` on `port` at time `now_ms`. A MAC
    /// seen on another port moves there at once. Returns true when the
    /// table's answer for this MAC changed (new entry or moved).
    #[inline]
    pub fn learn(&mut self, vlan: u16, mac: &[u8; 6], port: PortNo, now_ms: u64) -> bool {
        self.learn_key(key(vlan, mac), Dest::port_only(port), now_ms)
    }

    /// Adds or replaces a static entry (`fdb/add`). False when the table is
    /// full of static entries.
    pub fn add_static(&mut self, vlan: u16, mac: &[u8; 6], dest: Dest) -> bool {
        let k = key(vlan, mac);
        if self.map.get(k).is_none() {
            while self.map.len() >= self.max_entries {
                if !self.evict_one() {
                    return false;
                }
            }
        }
        self.map.insert(
            k,
            Entry {
                dest,
                used: 0,
                queued: STATIC,
            },
        );
        true
    }

    /// Removes the entry for `mac` in `vlan`, static or learned. True when
    /// there was one.
    pub fn remove(&mut self, vlan: u16, mac: &[u8; 6]) -> bool {
        self.map.remove(key(vlan, mac)).is_some()
    }

    /// [`MacTable::learn`] for a key made with [`key`], with the remote a
    /// tunnelled frame came from. A static entry is left as it is. When the
    /// table is full of static entries, nothing is learned.
    #[inline]
    pub fn learn_key(&mut self, k: u64, dest: Dest, now_ms: u64) -> bool {
        if let Some(e) = self.map.get_mut(k) {
            // The common case first: seen again where it was. (Refreshing
            // a static entry's `used` is harmless: nothing ages it.)
            if e.dest == dest {
                e.used = now_ms;
                return false;
            }
            if e.queued == STATIC {
                return false;
            }
            e.dest = dest;
            e.used = now_ms;
            self.moved += 1;
            return true;
        }
        while self.map.len() >= self.max_entries {
            if !self.evict_one() {
                return false;
            }
        }
        self.map.insert(
            k,
            Entry {
                dest,
                used: now_ms,
                queued: now_ms,
            },
        );
        self.queue.push_back((k, now_ms));
        if self.queue.len() > 4 * self.max_entries + 64 {
            self.compact();
        }
        true
    }

    /// The port `mac` was learned on in `vlan`, if any.
    #[inline]
    pub fn lookup(&self, vlan: u16, mac: &[u8; 6]) -> Option<PortNo> {
        self.lookup_key(key(vlan, mac)).map(|d| d.port())
    }

    /// Where the MAC of key `k` (made with [`key`]) lives.
    #[inline]
    pub fn lookup_key(&self, k: u64) -> Option<Dest> {
        self.map.get(k).map(|e| e.dest)
    }

    /// Removes entries not seen for the aging time. Call about once a second.
    pub fn age(&mut self, now_ms: u64) {
        while let Some(&(k, stamp)) = self.queue.front() {
            let Some(e) = self.map.get(k).copied() else {
                self.queue.pop_front();
                continue;
            };
            if e.queued != stamp {
                self.queue.pop_front();
                continue;
            }
            if e.used + self.aging_ms <= now_ms {
                self.queue.pop_front();
                self.map.remove(k);
                self.expired += 1;
            } else if e.used > stamp {
                self.queue.pop_front();
                self.requeue(k, e.used);
            } else {
                // Records behind this one were queued later: none has expired.
                break;
            }
        }
    }

    /// Removes every entry.
    pub fn flush(&mut self) {
        self.map.clear();
        self.queue.clear();
    }

    /// Removes the entries learned on `port` (port deleted or moved VLAN).
    pub fn flush_port(&mut self, port: PortNo) {
        self.map.retain(|_, e| e.dest.port() != port);
    }

    /// Removes the entries of `port` in `vlan`.
    pub fn flush_port_vlan(&mut self, port: PortNo, vlan: u16) {
        self.map
            .retain(|k, e| !(e.dest.port() == port && split_key(k).0 == vlan));
    }

    /// A snapshot of the table sorted by port, VLAN, MAC.
    pub fn entries(&self, now_ms: u64) -> Vec<FdbEntry> {
        let mut v: Vec<FdbEntry> = self
            .map
            .iter()
            .map(|(k, e)| {
                let (vlan, mac) = split_key(k);
                let is_static = e.queued == STATIC;
                FdbEntry {
                    port: e.dest.port(),
                    vlan,
                    mac,
                    age_secs: if is_static {
                        0
                    } else {
                        now_ms.saturating_sub(e.used) / 1000
                    },
                    remote: e.dest.remote(),
                    is_static,
                }
            })
            .collect();
        v.sort_by_key(|e| (e.port, e.vlan, e.mac));
        v
    }

    fn requeue(&mut self, k: u64, stamp: u64) {
        if let Some(e) = self.map.get_mut(k) {
            e.queued = stamp;
            self.queue.push_back((k, stamp));
        }
    }

    /// Evicts the least recently used entry. False when the table is empty.
    fn evict_one(&mut self) -> bool {
        while let Some((k, stamp)) = self.queue.pop_front() {
            let Some(e) = self.map.get(k).copied() else {
                continue;
            };
            if e.queued != stamp {
                continue;
            }
            if e.used > stamp {
                self.requeue(k, e.used);
                continue;
            }
            self.map.remove(k);
            self.evicted += 1;
            return true;
        }
        false
    }

    /// Rebuilds the queue from the live entries (drops stale records).
    fn compact(&mut self) {
        let mut live: Vec<(u64, u64)> = self
            .map
            .iter()
            .filter(|(_, e)| e.queued != STATIC)
            .map(|(k, e)| (k, e.used))
            .collect();
        live.sort_by_key(|&(_, used)| used);
        self.queue.clear();
        for (k, used) in live {
            self.requeue(k, used);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u32) -> [u8; 6] {
        let b = i.to_be_bytes();
        [0x02, 0, b[0], b[1], b[2], b[3]]
    }

    #[test]
    fn learn_and_lookup_per_vlan() {
        let mut t = MacTable::default();
        t.learn(10, &mac(1), 3, 0);
        t.learn(20, &mac(1), 4, 0);
        assert_eq!(t.lookup(10, &mac(1)), Some(3));
        assert_eq!(t.lookup(20, &mac(1)), Some(4));
        assert_eq!(t.lookup(30, &mac(1)), None);
        assert_eq!(split_key(key(10, &mac(1))), (10, mac(1)));
    }

    #[test]
    fn moved_mac_is_relearned() {
        let mut t = MacTable::default();
        t.learn(0, &mac(1), 1, 0);
        t.learn(0, &mac(1), 2, 5);
        assert_eq!(t.lookup(0, &mac(1)), Some(2));
        assert_eq!(t.moved, 1);
    }

    #[test]
    fn aging_removes_idle_entries_only() {
        let mut t = MacTable::new(100, 2);
        t.learn(0, &mac(1), 1, 0);
        t.learn(0, &mac(2), 1, 0);
        t.learn(0, &mac(2), 1, 1500); // refreshed
        t.age(2000);
        assert_eq!(t.lookup(0, &mac(1)), None);
        assert_eq!(t.lookup(0, &mac(2)), Some(1));
        t.age(3499);
        assert_eq!(t.lookup(0, &mac(2)), Some(1));
        t.age(3500);
        assert!(t.is_empty());
        assert_eq!(t.expired, 2);
    }

    #[test]
    fn limit_evicts_least_recently_used() {
        let mut t = MacTable::new(3, 300);
        t.learn(0, &mac(1), 1, 0);
        t.learn(0, &mac(2), 1, 1);
        t.learn(0, &mac(3), 1, 2);
        t.learn(0, &mac(1), 1, 3); // 1 is now the most recent
        t.learn(0, &mac(4), 1, 4); // evicts 2
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(0, &mac(2)), None);
        assert_eq!(t.lookup(0, &mac(1)), Some(1));
    }

    #[test]
    fn random_flood_holds_the_limit_and_queue_stays_bounded() {
        let mut t = MacTable::new(64, 300);
        for i in 0..100_000u32 {
            t.learn(0, &mac(i.wrapping_mul(2_654_435_761)), 1, i as u64);
            t.learn(0, &mac(7), 2, i as u64); // a busy known host
        }
        assert_eq!(t.len(), 64);
        assert_eq!(t.lookup(0, &mac(7)), Some(2));
        assert!(t.queue.len() <= 4 * 64 + 64);
    }

    #[test]
    fn shrinking_limit_evicts() {
        let mut t = MacTable::new(10, 300);
        for i in 0..10 {
            t.learn(0, &mac(i), 1, i as u64);
        }
        t.set_limits(4, 300);
        assert_eq!(t.len(), 4);
        assert_eq!(t.lookup(0, &mac(9)), Some(1));
    }

    #[test]
    fn remotes_are_learned_and_a_new_remote_is_a_move() {
        let mut t = MacTable::default();
        let k = key(0, &mac(1));
        let a = Dest::new(5, 0x0a00_0001);
        let b = Dest::new(5, 0x0a00_0002);
        assert!(t.learn_key(k, a, 0));
        assert!(!t.learn_key(k, a, 1));
        assert!(t.learn_key(k, b, 2));
        assert_eq!(t.lookup_key(k), Some(b));
        assert_eq!(t.moved, 1);
        assert_eq!(t.entries(2)[0].remote, 0x0a00_0002);
    }

    #[test]
    fn static_entries_never_age_move_or_get_evicted() {
        let mut t = MacTable::new(2, 1);
        let home = Dest::new(7, 0x0a00_0003);
        assert!(t.add_static(0, &mac(1), home));
        t.learn(0, &mac(1), 2, 0); // learning does not move it
        assert_eq!(t.lookup_key(key(0, &mac(1))), Some(home));
        t.learn(0, &mac(2), 1, 0);
        t.learn(0, &mac(3), 1, 10); // evicts 2, never the static one
        assert_eq!(t.lookup(0, &mac(2)), None);
        t.age(100_000);
        assert_eq!(t.lookup(0, &mac(1)), Some(7));
        assert!(t.entries(100_000)[0].is_static);
        assert!(t.remove(0, &mac(1)));
        assert!(!t.remove(0, &mac(1)));
    }

    #[test]
    fn a_table_full_of_static_entries_learns_nothing() {
        let mut t = MacTable::new(1, 300);
        assert!(t.add_static(0, &mac(1), Dest::port_only(1)));
        assert!(!t.learn(0, &mac(2), 1, 0));
        assert!(!t.add_static(0, &mac(3), Dest::port_only(1)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn flush_port() {
        let mut t = MacTable::default();
        t.learn(0, &mac(1), 1, 0);
        t.learn(0, &mac(2), 2, 0);
        t.flush_port(1);
        assert_eq!(t.entries(0).len(), 1);
        t.flush();
        assert!(t.is_empty());
    }
}
