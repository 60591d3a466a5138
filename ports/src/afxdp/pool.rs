//! Packet memory shared by the AF_XDP ports of one daemon, so frames move
//! between ports without a copy.
//!
//! A pool hands out regions: one anonymous mapping that every socket of the
//! region registers whole as its UMEM (each socket keeps its own fill,
//! completion, RX and TX rings; no `XDP_SHARED_UMEM` binding is needed, and
//! no socket depends on another staying open). Each socket takes fresh
//! frames from the region when it opens; a received frame can then be put
//! on the TX ring of any socket of the same region (the transmitting side
//! gives the receiving queue one of its free frames in exchange, see
//! `queue.rs`). Frames held by a socket when it closes are not reused (the
//! kernel may keep some in caches of its own until then), so a region
//! serves a bounded number of socket openings; after that the pool makes a
//! new region, and the last socket or packet to let go of a region unmaps
//! it. Ports in different regions copy, as ports with private UMEMs do.

use super::umem::{Mmap, FRAME_SIZE};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// Frames per region: 64 MiB, the frames of four single-queue ports.
pub const REGION_FRAMES: u32 = 16384;

/// Regions of packet memory for the AF_XDP ports of one datapath.
pub struct UmemPool {
    region_frames: u32,
    /// The region new sockets take frames from, and its next fresh frame.
    current: Mutex<Option<(Arc<Mmap>, u32)>>,
}

impl Default for UmemPool {
    fn default() -> Self {
        Self::new()
    }
}

impl UmemPool {
    pub fn new() -> UmemPool {
        Self::with_region_frames(REGION_FRAMES)
    }

    /// A pool whose regions hold `frames` frames (at least what one socket
    /// asks for; a larger request gets a region of its own size).
    pub fn with_region_frames(frames: u32) -> UmemPool {
        UmemPool {
            region_frames: frames.max(1),
            current: Mutex::new(None),
        }
    }

    /// `frames` fresh frames for one socket: the region and the UMEM offset
    /// of the first of them (the rest follow it).
    pub(super) fn take(&self, frames: u32) -> io::Result<(Arc<Mmap>, u64)> {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((region, next)) = cur.as_mut() {
            let capacity = (region.len() / FRAME_SIZE as usize) as u32;
            if capacity - *next >= frames {
                let first = u64::from(*next) * u64::from(FRAME_SIZE);
                *next += frames;
                return Ok((region.clone(), first));
            }
        }
        let size = self.region_frames.max(frames);
        let region = Arc::new(Mmap::anonymous(size as usize * FRAME_SIZE as usize)?);
        *cur = Some((region.clone(), frames));
        Ok((region, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_share_a_region_until_it_is_used_up() {
        let pool = UmemPool::with_region_frames(10);
        let (r1, a) = pool.take(4).unwrap();
        let (r2, b) = pool.take(4).unwrap();
        assert!(Arc::ptr_eq(&r1, &r2));
        assert_eq!((a, b), (0, 4 * 4096));
        let (r3, c) = pool.take(4).unwrap();
        assert!(!Arc::ptr_eq(&r1, &r3), "only 2 frames were left");
        assert_eq!(c, 0);
        let (r4, d) = pool.take(25).unwrap();
        assert_eq!(r4.len(), 25 * 4096, "a large request gets its own size");
        assert_eq!(d, 0);
    }
}
