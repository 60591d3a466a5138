//! The MAC learning table of one bridge: (VLAN, MAC) -> port (and, behind a
//! tunnel port, the remote VTEP), with aging, a size limit and optional
//! per-port limits (`other_config:mac-limit`). Static entries (`fdb/add`)
//! never age, are never evicted, are not moved by learning and count
//! towards no port.
//!
//! Each port keeps a count of its learned entries and a queue of (key,
//! stamp) records in the order its entries were (re)queued, with lazy
//! deletion: a record whose entry is gone, was requeued (stamp differs) or
//! moved to another port is stale and skipped, and an entry that was used
//! after it was queued gets a second chance at the back. Every learned
//! entry has a live record in its port's queue.
//!
//! Room is made as OVS's `mac_learning` does: a port at its own limit
//! evicts its own least recently used entry; a full table evicts from the
//! port with the most learned entries, so a port flooding random source
//! MACs only evicts its own and quiet hosts keep theirs. Finding that port
//! scans the ports that ever learned (a bridge's few ports), never the
//! table; the rest is O(1) amortised, so a flood costs no table scans.
//!
//! The table belongs to one bridge; the poll threads and the control
//! thread reach it through the bridge's mutex, taken once per batch.

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

/// The learned entries of one port: how many, its own limit and its
/// eviction queue.
#[derive(Clone, Debug, Default)]
struct PortLru {
    port: PortNo,
    count: usize,
    /// 0: no limit beyond the table's.
    limit: usize,
    queue: VecDeque<(u64, u64)>,
}

impl PortLru {
    fn at_limit(&self) -> bool {
        self.limit != 0 && self.count >= self.limit
    }
}

/// `slot_of` of a port that has no [`PortLru`] yet.
const NO_SLOT: u32 = u32::MAX;

#[derive(Clone)]
pub struct MacTable {
    map: Map,
    /// One per port that ever learned or had a limit, in no order.
    ports: Vec<PortLru>,
    /// Index into `ports` by port number (grown on demand).
    slot_of: Vec<u32>,
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
            ports: Vec::new(),
            slot_of: Vec::new(),
            max_entries,
            aging_ms: aging_secs as u64 * 1000,
            evicted: 0,
            expired: 0,
            moved: 0,
        }
    }

    /// Changes the limits; shrinking evicts at once, from the largest ports.
    pub fn set_limits(&mut self, max_entries: usize, aging_secs: u32) {
        self.max_entries = max_entries.max(1);
        self.aging_ms = aging_secs as u64 * 1000;
        while self.map.len() > self.max_entries {
            if !self.evict_from_largest() {
                break;
            }
        }
    }

    /// Sets every port's own limit on learned entries (`mac-limit`); ports
    /// not listed, or listed with 0, have none. A port over its new limit
    /// loses its least recently used entries at once.
    pub fn set_port_limits(&mut self, limits: &[(PortNo, usize)]) {
        for p in &mut self.ports {
            p.limit = 0;
        }
        for &(port, limit) in limits {
            let s = self.slot(port);
            self.ports[s].limit = limit;
            while self.ports[s].limit != 0 && self.ports[s].count > self.ports[s].limit {
                if !self.evict_from(s) {
                    break;
                }
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

    /// Learned (not static) entries on `port`.
    pub fn port_len(&self, port: PortNo) -> usize {
        self.slot_of
            .get(port as usize)
            .and_then(|&s| self.ports.get(s as usize))
            .map_or(0, |p| p.count)
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
        match self.map.get(k).copied() {
            Some(old) => self.forget(&old),
            None => {
                while self.map.len() >= self.max_entries {
                    if !self.evict_from_largest() {
                        return false;
                    }
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
        match self.map.remove(key(vlan, mac)) {
            Some(old) => {
                self.forget(&old);
                true
            }
            None => false,
        }
    }

    /// [`MacTable::learn`] for a key made with [`key`], with the remote a
    /// tunnelled frame came from. A static entry is left as it is. When no
    /// room can be made (the table is full of static entries), nothing is
    /// learned.
    #[inline]
    pub fn learn_key(&mut self, k: u64, dest: Dest, now_ms: u64) -> bool {
        if let Some(e) = self.map.get_mut(k) {
            // The common case first: seen again where it was. (Refreshing
            // a static entry's `used` is harmless: nothing ages it.)
            if e.dest == dest {
                e.used = now_ms;
                return false;
            }
            return self.move_key(k, dest, now_ms);
        }
        self.learn_new(k, dest, now_ms)
    }

    /// Learns `k`, which is not in the table. Out of line, so that where
    /// [`MacTable::learn_key`] is inlined only the refresh above is.
    #[cold]
    fn learn_new(&mut self, k: u64, dest: Dest, now_ms: u64) -> bool {
        let s = self.slot(dest.port());
        if !self.make_room(s) {
            return false;
        }
        self.map.insert(
            k,
            Entry {
                dest,
                used: now_ms,
                queued: now_ms,
            },
        );
        self.ports[s].count += 1;
        self.push(s, k, now_ms);
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
        for s in 0..self.ports.len() {
            let port = self.ports[s].port;
            while let Some(&(k, stamp)) = self.ports[s].queue.front() {
                let e = match self.map.get(k) {
                    Some(e) if e.queued == stamp && e.dest.port() == port => *e,
                    _ => {
                        self.ports[s].queue.pop_front();
                        continue;
                    }
                };
                if e.used + self.aging_ms <= now_ms {
                    self.ports[s].queue.pop_front();
                    self.map.remove(k);
                    self.ports[s].count -= 1;
                    self.expired += 1;
                } else if e.used > stamp {
                    self.ports[s].queue.pop_front();
                    self.requeue(s, k, e.used);
                } else {
                    // Records behind this one were queued later: none has
                    // expired.
                    break;
                }
            }
        }
    }

    /// Removes every entry.
    pub fn flush(&mut self) {
        self.map.clear();
        for p in &mut self.ports {
            p.count = 0;
            p.queue.clear();
        }
    }

    /// Removes the entries learned on `port` (port deleted or moved VLAN).
    pub fn flush_port(&mut self, port: PortNo) {
        self.map.retain(|_, e| e.dest.port() != port);
        if let Some(&s) = self.slot_of.get(port as usize) {
            if let Some(p) = self.ports.get_mut(s as usize) {
                p.count = 0;
                p.queue.clear();
            }
        }
    }

    /// Removes the entries of `port` in `vlan`.
    pub fn flush_port_vlan(&mut self, port: PortNo, vlan: u16) {
        let mut learned = 0;
        self.map.retain(|k, e| {
            let doomed = e.dest.port() == port && split_key(k).0 == vlan;
            learned += usize::from(doomed && e.queued != STATIC);
            !doomed
        });
        if learned > 0 {
            let s = self.slot(port);
            self.ports[s].count -= learned;
        }
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

    /// The index in `ports` of `port`, made on first use.
    fn slot(&mut self, port: PortNo) -> usize {
        let p = port as usize;
        if p >= self.slot_of.len() {
            self.slot_of.resize(p + 1, NO_SLOT);
        }
        if self.slot_of[p] == NO_SLOT {
            self.slot_of[p] = self.ports.len() as u32;
            self.ports.push(PortLru {
                port,
                ..PortLru::default()
            });
        }
        self.slot_of[p] as usize
    }

    /// Moves learned entry `k` to `dest` (a static entry stays). To another
    /// port: out of the old port's count
    /// (its record there goes stale) and into the new one's, evicting the
    /// new port's oldest entry first when it is at its limit.
    #[cold]
    fn move_key(&mut self, k: u64, dest: Dest, now_ms: u64) -> bool {
        let Some(e) = self.map.get_mut(k) else {
            return false;
        };
        if e.queued == STATIC {
            return false;
        }
        if e.dest.port() == dest.port() {
            // Same port, another remote VTEP: no count or queue changes.
            (e.dest, e.used) = (dest, now_ms);
            self.moved += 1;
            return true;
        }
        let s = self.slot(dest.port());
        if self.ports[s].at_limit() && !self.evict_from(s) {
            return false;
        }
        let Some(e) = self.map.get_mut(k) else {
            return false;
        };
        let old = e.dest.port();
        (e.dest, e.used, e.queued) = (dest, now_ms, now_ms);
        let o = self.slot(old);
        self.ports[o].count -= 1;
        self.ports[s].count += 1;
        self.push(s, k, now_ms);
        self.moved += 1;
        true
    }

    /// Makes room for one more learned entry on port slot `s`: from the port
    /// itself when it is at its limit, then from the largest port while the
    /// table is full. False when nothing can be evicted.
    fn make_room(&mut self, s: usize) -> bool {
        if self.ports[s].at_limit() && !self.evict_from(s) {
            return false;
        }
        while self.map.len() >= self.max_entries {
            if !self.evict_from_largest() {
                return false;
            }
        }
        true
    }

    /// Takes a removed or replaced entry out of its port's count.
    fn forget(&mut self, e: &Entry) {
        if e.queued != STATIC {
            let s = self.slot(e.dest.port());
            self.ports[s].count -= 1;
        }
    }

    fn push(&mut self, s: usize, k: u64, stamp: u64) {
        let p = &mut self.ports[s];
        p.queue.push_back((k, stamp));
        if p.queue.len() > 4 * p.count + 64 {
            self.compact(s);
        }
    }

    fn requeue(&mut self, s: usize, k: u64, stamp: u64) {
        if let Some(e) = self.map.get_mut(k) {
            e.queued = stamp;
            self.push(s, k, stamp);
        }
    }

    /// Evicts from the port with the most learned entries. False when no
    /// port has any.
    fn evict_from_largest(&mut self) -> bool {
        let largest = (0..self.ports.len()).max_by_key(|&s| self.ports[s].count);
        match largest {
            Some(s) if self.ports[s].count > 0 => self.evict_from(s),
            _ => false,
        }
    }

    /// Evicts the least recently used learned entry of port slot `s`. False
    /// when it has none.
    fn evict_from(&mut self, s: usize) -> bool {
        let port = self.ports[s].port;
        while let Some((k, stamp)) = self.ports[s].queue.pop_front() {
            let e = match self.map.get(k) {
                Some(e) if e.queued == stamp && e.dest.port() == port => *e,
                _ => continue,
            };
            if e.used > stamp {
                self.requeue(s, k, e.used);
                continue;
            }
            self.map.remove(k);
            self.ports[s].count -= 1;
            self.evicted += 1;
            return true;
        }
        false
    }

    /// Drops the stale records of port slot `s`'s queue.
    fn compact(&mut self, s: usize) {
        let map = &self.map;
        let p = &mut self.ports[s];
        let port = p.port;
        p.queue.retain(|&(k, stamp)| {
            map.get(k)
                .is_some_and(|e| e.queued == stamp && e.dest.port() == port)
        });
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
        assert!(t.ports.iter().all(|p| p.queue.len() <= 4 * p.count + 64));
    }

    #[test]
    fn a_flood_from_one_port_evicts_only_its_own_entries() {
        let mut t = MacTable::new(64, 300);
        t.learn(0, &mac(1), 2, 0); // quiet hosts, never seen again
        t.learn(0, &mac(2), 3, 0);
        for i in 0..640u32 {
            t.learn(
                0,
                &mac(1000 + i.wrapping_mul(2_654_435_761)),
                1,
                1 + i as u64,
            );
        }
        assert_eq!(t.len(), 64);
        assert_eq!(t.lookup(0, &mac(1)), Some(2));
        assert_eq!(t.lookup(0, &mac(2)), Some(3));
        assert_eq!(t.port_len(1), 62);
        assert_eq!(t.evicted, 640 - 62);
    }

    #[test]
    fn the_largest_port_gives_way_when_the_table_is_full() {
        let mut t = MacTable::new(4, 300);
        t.learn(0, &mac(1), 1, 0);
        t.learn(0, &mac(2), 2, 1);
        t.learn(0, &mac(3), 2, 2);
        t.learn(0, &mac(4), 2, 3);
        t.learn(0, &mac(5), 1, 4); // port 2 holds the most: its oldest goes
        assert_eq!(t.lookup(0, &mac(2)), None);
        assert_eq!(t.lookup(0, &mac(1)), Some(1));
        assert_eq!((t.port_len(1), t.port_len(2)), (2, 2));
    }

    #[test]
    fn a_port_at_its_limit_evicts_its_own_oldest() {
        let mut t = MacTable::new(100, 300);
        t.set_port_limits(&[(1, 3)]);
        t.learn(0, &mac(99), 2, 0);
        for i in 0..10 {
            t.learn(0, &mac(i), 1, i as u64);
        }
        assert_eq!(t.port_len(1), 3);
        assert_eq!(t.len(), 4);
        assert_eq!(t.lookup(0, &mac(9)), Some(1));
        assert_eq!(t.lookup(0, &mac(6)), None);
        assert_eq!(t.lookup(0, &mac(99)), Some(2));
        // A MAC moving onto a port at its limit makes room there too.
        t.learn(0, &mac(99), 1, 20);
        assert_eq!((t.port_len(1), t.port_len(2)), (3, 0));
        // Lowering the limit evicts at once; removing it lifts the cap.
        t.set_port_limits(&[(1, 1)]);
        assert_eq!(t.port_len(1), 1);
        assert_eq!(t.lookup(0, &mac(99)), Some(1));
        t.set_port_limits(&[]);
        for i in 20..30 {
            t.learn(0, &mac(i), 1, 30);
        }
        assert_eq!(t.port_len(1), 11);
    }

    #[test]
    fn statics_survive_a_flood_and_count_towards_no_port() {
        let mut t = MacTable::new(8, 300);
        t.set_port_limits(&[(1, 2)]);
        assert!(t.add_static(0, &mac(1), Dest::port_only(1)));
        assert!(t.add_static(0, &mac(2), Dest::port_only(2)));
        for i in 0..1000u32 {
            t.learn(0, &mac(100 + i), 1, i as u64);
            t.learn(0, &mac(5000 + i), 2, i as u64);
        }
        assert_eq!(t.len(), 8);
        assert_eq!(t.port_len(1), 2);
        assert_eq!(t.port_len(2), 4);
        assert_eq!(t.lookup(0, &mac(1)), Some(1));
        assert_eq!(t.lookup(0, &mac(2)), Some(2));
        assert!(t.remove(0, &mac(1100 - 1)));
        assert_eq!(t.port_len(1), 1);
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
