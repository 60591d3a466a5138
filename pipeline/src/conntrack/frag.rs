//! Fragments of translated datagrams. Only the first fragment carries the
//! ports, so only it can be looked up in the connection table; the
//! decision made for it is remembered here, keyed by what all fragments of
//! a datagram share (source, destination, protocol, IP id), and applied to
//! the later ones (addresses only: they have no L4 header).
//!
//! We do not reassemble: fragments pass through as they come. A later
//! fragment that arrives before its first one is unknown and dropped by
//! the caller (the sender retransmits the datagram); so is one whose
//! record was evicted.
//!
//! Why a fixed 2-way set-associative array rather than a map: it is
//! bounded without bookkeeping, never allocates after creation, and a
//! flood of fragments can only evict records, never grow memory or cost
//! more than two compares.

use super::conn::ConnId;
use super::parse::Parsed;
use super::tuple::{random_seed, FxHasher};
use super::Dir;
use std::hash::Hasher;

pub const DEFAULT_FRAG_ENTRIES: usize = 1024;
/// How long a datagram's translation is remembered (Linux's
/// `ipfrag_time`).
pub const FRAG_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    src: u32,
    dst: u32,
    id: u16,
    proto: u8,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    key: Key,
    conn: ConnId,
    dir: Dir,
    expires_ms: u64,
}

#[derive(Clone)]
pub struct FragTable {
    slots: Vec<Option<Record>>,
    /// `slots.len() - 1`, a power of two minus one.
    mask: usize,
    seed: u64,
}

impl Default for FragTable {
    fn default() -> Self {
        FragTable::new(DEFAULT_FRAG_ENTRIES)
    }
}

fn key(p: &Parsed) -> Key {
    Key {
        src: p.tuple.src,
        dst: p.tuple.dst,
        id: p.info.ip_id,
        proto: p.tuple.proto,
    }
}

impl FragTable {
    /// A table for about `entries` datagrams in flight.
    pub fn new(entries: usize) -> Self {
        let n = entries.clamp(2, 1 << 20).next_power_of_two();
        FragTable {
            slots: vec![None; n],
            mask: n - 1,
            seed: random_seed(),
        }
    }

    /// Index of the first of the two slots `k` may occupy.
    #[inline]
    fn set(&self, k: &Key) -> usize {
        let mut h = FxHasher::default();
        h.write_u64(self.seed);
        h.write_u64(((k.src as u64) << 32) | k.dst as u64);
        h.write_u64(((k.id as u64) << 8) | k.proto as u64);
        (h.finish() as usize & self.mask) & !1
    }

    /// Records the translation decided for a first fragment (offset 0,
    /// more-fragments set); anything else is ignored.
    pub fn remember(&mut self, first: &Parsed, conn: ConnId, dir: Dir, now_ms: u64) {
        if !first.info.more_frags || first.info.is_later_fragment() {
            return;
        }
        let k = key(first);
        let base = self.set(&k);
        let rec = Record {
            key: k,
            conn,
            dir,
            expires_ms: now_ms.saturating_add(FRAG_TIMEOUT_MS),
        };
        // Same datagram again (a retransmitted first fragment), else a free
        // or expired way, else the way that expires sooner.
        let ways = [base, base + 1];
        let pick = ways
            .iter()
            .copied()
            .find(|&i| self.slots[i].is_some_and(|r| r.key == k))
            .or_else(|| {
                ways.iter()
                    .copied()
                    .find(|&i| self.slots[i].is_none_or(|r| r.expires_ms <= now_ms))
            })
            .unwrap_or_else(|| {
                let e = |i: usize| self.slots[i].map_or(0, |r| r.expires_ms);
                if e(base) <= e(base + 1) {
                    base
                } else {
                    base + 1
                }
            });
        self.slots[pick] = Some(rec);
    }

    /// The connection and direction of a later fragment's datagram, as
    /// recorded from its first fragment; `None` when unknown (not seen,
    /// evicted or expired). The entry may have gone since: check it with
    /// [`ConnTable::try_get`](super::ConnTable::try_get).
    pub fn lookup(&self, later: &Parsed, now_ms: u64) -> Option<(ConnId, Dir)> {
        let k = key(later);
        let base = self.set(&k);
        self.slots[base..base + 2]
            .iter()
            .flatten()
            .find(|r| r.key == k && r.expires_ms > now_ms)
            .map(|r| (r.conn, r.dir))
    }
}
