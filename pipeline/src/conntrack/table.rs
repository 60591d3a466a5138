//! The connection table: a slab of entries and one hash map from each
//! entry's two tuples to (slot, direction).
//!
//! Why a slab: an entry is found by two keys, so it cannot live in the map
//! itself; a `Vec` with a free list gives stable small ids ([`ConnId`]),
//! no allocation per connection once warm, and a cheap incremental sweep
//! (a cursor walking the slots). Slots carry a generation so that an id
//! kept across a removal (e.g. by the [`FragTable`](super::FragTable))
//! cannot reach the connection that reused the slot.
//!
//! Expiry is lazy: `lookup` treats an expired entry as a miss, `insert`
//! reclaims one that holds a wanted tuple, and `sweep` frees the rest a
//! bounded number of slots at a time, so no call ever walks the table.

use super::conn::{Conn, ConnId, InsertError, Invalid, Stats};
use super::frag::FragTable;
use super::parse::{L4Info, Parsed, PktInfo};
use super::tcp::{Outcome, TcpState, TcpTrack};
use super::tuple::{random_seed, FxBuildHasher, Tuple};
use super::{Config, Dir};
use crate::wire::ip_proto;
use std::collections::HashMap;
use std::ops::RangeInclusive;

/// Random ports tried by [`ConnTable::alloc_port`] after the original one.
/// Bounded so that an almost full range costs a fixed time, not a scan.
pub const PORT_TRIES: usize = 128;
/// Slots [`ConnTable::insert`] sweeps to make room when the table is full.
const SWEEP_ON_FULL: usize = 32;

#[derive(Clone)]
struct Slot {
    conn: Conn,
    gen: u32,
    live: bool,
}

#[derive(Clone)]
pub struct ConnTable {
    cfg: Config,
    map: HashMap<Tuple, (u32, Dir), FxBuildHasher>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    /// Next slot `sweep` looks at.
    cursor: usize,
    /// xorshift state for NAT port probing (never 0).
    rng: u64,
    stats: Stats,
    frags: FragTable,
}

impl ConnTable {
    pub fn new(cfg: Config) -> Self {
        let seed = random_seed();
        ConnTable {
            cfg,
            map: HashMap::with_hasher(FxBuildHasher::with_seed(seed)),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            cursor: 0,
            rng: seed.rotate_left(17) | 1,
            stats: Stats::default(),
            frags: FragTable::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// New limits and timeouts. Entries beyond a lowered `max_entries` stay
    /// until they expire; existing expiry times are not recomputed.
    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The live entry with `t` as one of its tuples, and which one.
    // Always: alloc_port probes it up to PORT_TRIES times, and whether
    // LLVM inlined it there moved with unrelated code (2,066 or 2,266
    // instructions per new connection).
    #[inline(always)]
    pub fn lookup(&self, t: &Tuple, now_ms: u64) -> Option<(ConnId, Dir)> {
        let &(slot, dir) = self.map.get(t)?;
        let s = &self.slots[slot as usize];
        (s.conn.expires_ms > now_ms).then_some((ConnId { slot, gen: s.gen }, dir))
    }

    /// The entry `id` names. `id` must come from this table and the entry
    /// must not have been removed since (checked in debug builds; use
    /// [`try_get`](Self::try_get) when unsure).
    #[inline]
    pub fn get(&self, id: ConnId) -> &Conn {
        let s = &self.slots[id.slot as usize];
        debug_assert!(s.live && s.gen == id.gen, "stale ConnId");
        &s.conn
    }

    /// The entry `id` names, if it still exists.
    #[inline]
    pub fn try_get(&self, id: ConnId) -> Option<&Conn> {
        self.live_slot(id).map(|i| &self.slots[i].conn)
    }

    #[inline]
    fn live_slot(&self, id: ConnId) -> Option<usize> {
        let i = id.slot as usize;
        let s = self.slots.get(i)?;
        (s.live && s.gen == id.gen).then_some(i)
    }

    /// Adds an entry. An expired entry holding either tuple is reclaimed;
    /// a live one makes this a `Clash`. When full, a few slots are swept
    /// first, so that a table full of dead entries still accepts.
    pub fn insert(
        &mut self,
        orig: Tuple,
        reply: Tuple,
        zone: u16,
        now_ms: u64,
    ) -> Result<ConnId, InsertError> {
        for t in [orig, reply] {
            if let Some(&(slot, _)) = self.map.get(&t) {
                if self.slots[slot as usize].conn.expires_ms > now_ms {
                    return Err(InsertError::Clash);
                }
                self.remove_slot(slot as usize);
                self.stats.expired += 1;
            }
        }
        if self.len >= self.cfg.max_entries {
            self.sweep(now_ms, SWEEP_ON_FULL);
            if self.len >= self.cfg.max_entries {
                self.stats.dropped_full += 1;
                return Err(InsertError::Full);
            }
        }
        let timeouts = &self.cfg.timeouts;
        let initial_s = match orig.proto {
            ip_proto::TCP => timeouts.tcp_transitory_s,
            ip_proto::ICMP => timeouts.icmp_s,
            _ => timeouts.udp_unreplied_s,
        };
        let conn = Conn {
            orig,
            reply,
            zone,
            replied: false,
            expires_ms: expiry(now_ms, initial_s),
            packets: [0; 2],
            bytes: [0; 2],
            tcp: TcpTrack::default(),
        };
        let (slot, gen) = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.conn = conn;
                s.live = true;
                (i, s.gen)
            }
            None => {
                let i = self.slots.len() as u32;
                self.slots.push(Slot {
                    conn,
                    gen: 0,
                    live: true,
                });
                (i, 0)
            }
        };
        self.map.insert(orig, (slot, Dir::Orig));
        if reply != orig {
            self.map.insert(reply, (slot, Dir::Reply));
        }
        self.len += 1;
        self.stats.created += 1;
        Ok(ConnId { slot, gen })
    }

    /// Removes entry `id` (no-op when already gone).
    pub fn remove(&mut self, id: ConnId) {
        if let Some(i) = self.live_slot(id) {
            self.remove_slot(i);
        }
    }

    fn remove_slot(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.live = false;
        s.gen = s.gen.wrapping_add(1);
        let (orig, reply) = (s.conn.orig, s.conn.reply);
        for t in [orig, reply] {
            if self
                .map
                .get(&t)
                .is_some_and(|&(slot, _)| slot as usize == i)
            {
                self.map.remove(&t);
            }
        }
        self.free.push(i as u32);
        self.len -= 1;
    }

    /// A port in `range` for which `reply`, with the port in `dport` (the
    /// field SNAT rewrites; for ICMP both ports, the echo identifier), is
    /// free: the original port when possible (ports survive NAT as often
    /// as they can, as with Linux), else the first free one among
    /// [`PORT_TRIES`] random picks. The choice is endpoint-dependent: the
    /// same port may serve other (server address, port) pairs.
    pub fn alloc_port(
        &mut self,
        reply: &Tuple,
        range: RangeInclusive<u16>,
        now_ms: u64,
    ) -> Option<u16> {
        let (lo, hi) = (*range.start(), *range.end());
        if lo <= hi {
            let mut t = *reply;
            if range.contains(&reply.dport) && self.is_free(&with_port(&mut t, reply.dport), now_ms)
            {
                return Some(reply.dport);
            }
            let span = (hi - lo) as u64 + 1;
            for _ in 0..PORT_TRIES {
                let p = lo + (self.next_rand() % span) as u16;
                if self.is_free(&with_port(&mut t, p), now_ms) {
                    return Some(p);
                }
            }
        }
        self.stats.port_exhausted += 1;
        None
    }

    /// Counts a NAT port search that failed outside
    /// [`alloc_port`](Self::alloc_port).
    pub fn count_port_exhausted(&mut self) {
        self.stats.port_exhausted += 1;
    }

    #[inline]
    fn is_free(&self, t: &Tuple, now_ms: u64) -> bool {
        self.lookup(t, now_ms).is_none()
    }

    /// xorshift64*: cheap, and good enough to spread probes.
    #[inline]
    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
    }

    /// Accounts a packet of `len` bytes of entry `id` seen in `dir`:
    /// counters, TCP state and window, `replied`, expiry. `Err(Invalid)`
    /// for a packet conntrack would mark invalid (counted); state and
    /// expiry are then left as they were, except that a TCP entry whose
    /// very first packet is invalid is removed (it would only hold its
    /// tuples for a connection that does not exist).
    pub fn track(
        &mut self,
        id: ConnId,
        dir: Dir,
        info: &PktInfo,
        len: usize,
        now_ms: u64,
    ) -> Result<(), Invalid> {
        let Some(i) = self.live_slot(id) else {
            self.stats.invalid += 1;
            return Err(Invalid);
        };
        let t = self.cfg.timeouts;
        let conn = &mut self.slots[i].conn;
        let mut refresh = true;
        if conn.orig.proto == ip_proto::TCP {
            if let L4Info::Tcp(tcp) = &info.l4 {
                let fresh = conn.tcp.state.is_none();
                match conn.tcp.packet(dir, tcp) {
                    Outcome::Invalid => {
                        self.stats.invalid += 1;
                        if fresh {
                            self.remove_slot(i);
                        }
                        return Err(Invalid);
                    }
                    Outcome::Ignored => refresh = false,
                    Outcome::Reopened => {
                        conn.replied = false;
                        conn.packets = [0; 2];
                        conn.bytes = [0; 2];
                    }
                    Outcome::Accepted => {}
                }
            } else {
                // A later fragment: no header to judge it by.
                refresh = false;
            }
        }
        let d = dir.index();
        conn.packets[d] = conn.packets[d].wrapping_add(1);
        conn.bytes[d] = conn.bytes[d].wrapping_add(len as u64);
        if !refresh {
            return Ok(());
        }
        if dir == Dir::Reply {
            conn.replied = true;
        }
        let timeout_s = match conn.orig.proto {
            ip_proto::TCP if conn.tcp.state == Some(TcpState::Established) => t.tcp_established_s,
            ip_proto::TCP => t.tcp_transitory_s,
            ip_proto::ICMP => t.icmp_s,
            _ if conn.replied => t.udp_replied_s,
            _ => t.udp_unreplied_s,
        };
        conn.expires_ms = expiry(now_ms, timeout_s);
        Ok(())
    }

    /// Remembers the entry and direction of a first fragment for the
    /// later ones (see [`FragTable`]); a no-op for unfragmented packets,
    /// so it can be called for every tracked packet.
    #[inline]
    pub fn remember_fragment(&mut self, p: &Parsed, id: ConnId, dir: Dir, now_ms: u64) {
        if p.info.more_frags && !p.info.is_later_fragment() {
            self.frags.remember(p, id, dir, now_ms);
        }
    }

    /// The live entry and direction of a later fragment, from what was
    /// remembered for its first fragment; `None`: unknown, drop it.
    pub fn fragment(&self, p: &Parsed, now_ms: u64) -> Option<(ConnId, Dir)> {
        let (id, dir) = self.frags.lookup(p, now_ms)?;
        let i = self.live_slot(id)?;
        (self.slots[i].conn.expires_ms > now_ms).then_some((id, dir))
    }

    /// Frees expired entries among the next `budget` slots (wrapping
    /// around); returns how many.
    pub fn sweep(&mut self, now_ms: u64, budget: usize) -> usize {
        let n = self.slots.len();
        let mut removed = 0;
        for _ in 0..budget.min(n) {
            if self.cursor >= n {
                self.cursor = 0;
            }
            let i = self.cursor;
            self.cursor += 1;
            let s = &self.slots[i];
            if s.live && s.conn.expires_ms <= now_ms {
                self.remove_slot(i);
                removed += 1;
            }
        }
        self.stats.expired += removed as u64;
        removed
    }

    /// Removes every entry, or those of one zone.
    pub fn flush(&mut self, zone: Option<u16>) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.live && zone.is_none_or(|z| z == s.conn.zone) {
                self.remove_slot(i);
            }
        }
    }

    /// Every entry not yet removed (expired ones stay until swept).
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().filter(|s| s.live).map(|s| &s.conn)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            entries: self.len,
            max: self.cfg.max_entries,
            ..self.stats
        }
    }
}

#[inline]
fn expiry(now_ms: u64, timeout_s: u32) -> u64 {
    now_ms.saturating_add(timeout_s as u64 * 1000)
}

/// `t` with port `p` in the field SNAT rewrites.
#[inline]
fn with_port(t: &mut Tuple, p: u16) -> Tuple {
    t.dport = p;
    if t.proto == ip_proto::ICMP {
        t.sport = p;
    }
    *t
}
