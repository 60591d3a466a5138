//! The 5-tuple that identifies one direction of a connection, and the hash
//! the connection table uses for it.

use std::hash::{BuildHasher, Hash, Hasher};

/// One direction of a connection. Addresses are IPv4 addresses as
/// `u32::from_be_bytes`, ports in host order. For ICMP echo both ports hold
/// the echo identifier (request and reply carry the same one), so that the
/// reply's tuple is the request's reversed, as for TCP and UDP. Protocols
/// without ports have both set to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tuple {
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    /// The tuple of a packet going the other way.
    #[inline]
    pub fn reversed(&self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

impl Hash for Tuple {
    /// Two words instead of five writes: the derived impl would feed each
    /// field separately, costing a multiply each.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(((self.src as u64) << 32) | self.dst as u64);
        state.write_u64(
            ((self.sport as u64) << 32) | ((self.dport as u64) << 16) | self.proto as u64,
        );
    }
}

impl std::fmt::Display for Tuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "proto={} src={} dst={} sport={} dport={}",
            self.proto,
            std::net::Ipv4Addr::from(self.src),
            std::net::Ipv4Addr::from(self.dst),
            self.sport,
            self.dport
        )
    }
}

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// An FxHash-style hasher (rotate, xor, multiply per word), as in rustc.
///
/// Why not the std default: SipHash costs tens of nanoseconds per tuple,
/// comparable to the rest of the per-packet work, and its DoS resistance
/// buys little here since [`ConnTable`](super::ConnTable) is bounded by
/// `max_entries`. The one weakness of a plain multiply, that the low bits of
/// the product only depend on the low bits of the input (tuples differing
/// only in a port would share a bucket), is fixed in `finish` by folding
/// the well-mixed high half onto the low one.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash ^ (self.hash >> 32)
    }
}

/// Builds [`FxHasher`]s, seeded per table so that the bucket layout of one
/// switch does not tell anything about another's.
#[derive(Default, Clone, Copy)]
pub struct FxBuildHasher {
    seed: u64,
}

impl FxBuildHasher {
    pub fn with_seed(seed: u64) -> Self {
        FxBuildHasher { seed }
    }
}

impl BuildHasher for FxBuildHasher {
    type Hasher = FxHasher;

    #[inline]
    fn build_hasher(&self) -> FxHasher {
        FxHasher { hash: self.seed }
    }
}

/// A random 64-bit value from std's per-process hash keys (no dependency
/// needed): seeds the hasher and the NAT port probe sequence.
pub(crate) fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
