//! What the connection table hands out: entries, their handles, errors
//! and counters.

use super::tcp::{TcpState, TcpTrack};
use super::tuple::Tuple;
use super::Dir;

/// Handle of an entry: its slot and the slot's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(super) slot: u32,
    pub(super) gen: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// `max_entries` reached.
    Full,
    /// One of the tuples belongs to a live entry.
    Clash,
}

/// The packet is one conntrack marks INVALID: the caller drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub entries: usize,
    pub max: usize,
    pub created: u64,
    pub dropped_full: u64,
    pub port_exhausted: u64,
    pub invalid: u64,
    pub expired: u64,
}

/// One connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub orig: Tuple,
    pub reply: Tuple,
    pub zone: u16,
    /// A packet was seen in the reply direction.
    pub replied: bool,
    pub expires_ms: u64,
    /// Per direction, indexed by [`Dir::index`].
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub(crate) tcp: TcpTrack,
}

impl Conn {
    /// The TCP state; `None` for other protocols (and for a TCP entry
    /// that has seen no packet yet).
    pub fn state(&self) -> Option<TcpState> {
        self.tcp.state
    }

    /// The tuple a packet seen in `dir` must carry once translated: the
    /// other direction's tuple, reversed. Equal to the packet's own tuple
    /// when there is no NAT.
    #[inline]
    pub fn target(&self, dir: Dir) -> Tuple {
        match dir {
            Dir::Orig => self.reply.reversed(),
            Dir::Reply => self.orig.reversed(),
        }
    }

    /// The entry translates addresses or ports.
    pub fn is_nat(&self) -> bool {
        self.reply != self.orig.reversed()
    }
}
