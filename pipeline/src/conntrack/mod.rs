//! Connection tracking and NAT for IPv4, on Linux's model: every entry has
//! an *original* tuple (the first packet as it arrived, before any NAT) and
//! a *reply* tuple (what a reply carries on the wire, after NAT). Without
//! NAT the reply tuple is the original one reversed; SNAT changes its
//! destination, DNAT its source, hairpin both. Both tuples are keys of one
//! hash map, so a packet of either direction is found with one lookup, and
//! the translation to apply is read from the *other* tuple: that is why
//! SNAT, DNAT and both are a single [`rewrite`].
//!
//! The pieces, in the order a packet meets them:
//! - [`parse`]: bounds-checked header walk giving the [`Tuple`] and the
//!   [`PktInfo`] (TCP flags and sequence numbers, fragment fields, the
//!   packet embedded in an ICMP error).
//! - [`ConnTable`]: lookup, insert, NAT port choice, TCP state and window
//!   tracking, expiry. Not synchronised: the caller locks it once per batch.
//! - [`rewrite`], [`dec_ttl`]: header rewriting with incremental checksum
//!   updates (RFC 1624) only.
//! - [`rewrite_icmp_error`], [`time_exceeded`]: ICMP errors about tracked
//!   connections, and the one error a router has to generate.
//! - [`FragTable`]: the translation of a fragmented datagram, remembered
//!   from its first fragment (the only one with ports) for the others.
//!
//! Simpler than Linux, on purpose: the zone labels an entry (for flush and
//! show) but is not part of the key, so zones cannot reuse the same
//! tuples; ICMP echo is keyed by identifier only (not type/code); no
//! reassembly, no helpers (FTP, SIP), no SACK, no simultaneous open.

mod conn;
mod frag;
mod icmp;
mod parse;
mod table;
mod tcp;
mod translate;
mod tuple;

#[cfg(test)]
mod tests;

pub use conn::{Conn, ConnId, InsertError, Invalid, Stats};
pub use frag::{FragTable, DEFAULT_FRAG_ENTRIES, FRAG_TIMEOUT_MS};
pub use icmp::{rewrite_icmp_error, time_exceeded, IcmpErrorError, IcmpNat, TIME_EXCEEDED_MAX};
pub use parse::{parse, Embedded, L4Info, ParseError, Parsed, PktInfo, TcpInfo};
pub use table::{ConnTable, PORT_TRIES};
pub use tcp::{flags as tcp_flags, TcpState};
pub use translate::{dec_ttl, rewrite};
pub use tuple::{FxBuildHasher, FxHasher, Tuple};

/// Direction of a packet relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Same direction as the packet that created the entry.
    Orig,
    /// The opposite direction.
    Reply,
}

impl Dir {
    /// 0 for `Orig`, 1 for `Reply`: index of the per-direction counters.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Dir::Orig => 0,
            Dir::Reply => 1,
        }
    }

    #[inline]
    pub fn opposite(self) -> Dir {
        match self {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        }
    }
}

/// Idle timeouts, in seconds. The defaults are Linux's
/// (`nf_conntrack_*_timeout*` sysctls), with one value for all the TCP
/// states that are neither established nor gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_established_s: u32,
    /// SYN_SENT, SYN_RECV, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE.
    pub tcp_transitory_s: u32,
    pub udp_unreplied_s: u32,
    pub udp_replied_s: u32,
    pub icmp_s: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established_s: 432_000,
            tcp_transitory_s: 120,
            udp_unreplied_s: 30,
            udp_replied_s: 120,
            icmp_s: 30,
        }
    }
}

pub const DEFAULT_MAX_ENTRIES: usize = 262_144;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub timeouts: Timeouts,
    /// New entries are refused beyond this many; lowering it drops none.
    pub max_entries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeouts: Timeouts::default(),
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}
