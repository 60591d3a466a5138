//! Packet memory shared by the AF_XDP ports of one daemon, so frames move
//! between ports without a copy.
//!
//! A pool hands out regions: one anonymous mapping that every socket of the
//! region registers whole as its UMEM (each socket keeps its own fill,
//! completion, RX and TX rings; no `XDP_SHARED_UMEM` binding is needed, and
//! no socket depends on another staying open). Each socket takes frames
//! from the region when it opens; a received frame can then be put on the TX
//! ring of any socket of the same region (the transmitting side gives the
//! receiving queue one of its free frames in exchange, see `queue.rs`).
//!
//! Every frame is held by one socket half at a time or lent to a packet for
//! the length of one batch. When a socket closes, frames go back to the
//! region for other sockets: those its receive halves held (tracked in a
//! [`Held`] set: the fill ring, the kernel, the RX ring), since in copy mode
//! the kernel writes received frames only while the socket is bound and
//! `close()` unbinds it and waits for the driver to let go; and its
//! transmit half's free frames. Frames between the TX ring and the
//! completion ring are not given back: a device that sends skbs pointing
//! into the UMEM (virtio-net) may still read them after `close()`. The pool
//! keeps regions only weakly: the last socket or packet to let go of a
//! region unmaps it.

use super::umem::{frame_base, Mmap, FRAME_SIZE};
use std::io;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Frames per region: 64 MiB, the frames of four single-queue ports.
pub const REGION_FRAMES: u32 = 16384;

/// Regions of packet memory for the AF_XDP ports of one datapath.
pub struct UmemPool {
    region_frames: u32,
    regions: Mutex<Vec<Weak<Region>>>,
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

    /// A pool whose regions hold `frames` frames (a larger request gets a
    /// region of its own size).
    pub fn with_region_frames(frames: u32) -> UmemPool {
        UmemPool {
            region_frames: frames.max(1),
            regions: Mutex::new(Vec::new()),
        }
    }

    /// `frames` frames for one socket, from a live region that has them or
    /// from a new one: the region and the frames' UMEM offsets.
    pub(super) fn take(&self, frames: u32) -> io::Result<(Arc<Region>, Vec<u64>)> {
        let mut regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        regions.retain(|r| r.strong_count() > 0);
        for region in regions.iter().filter_map(Weak::upgrade) {
            if let Some(addrs) = region.take(frames) {
                return Ok((region, addrs));
            }
        }
        let region = Region::new(self.region_frames.max(frames))?;
        let addrs = region
            .take(frames)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        regions.push(Arc::downgrade(&region));
        Ok((region, addrs))
    }

    /// Live regions (for tests).
    #[cfg(test)]
    pub(super) fn regions(&self) -> usize {
        let regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        regions.iter().filter(|r| r.strong_count() > 0).count()
    }
}

/// One region: its memory and the frames no socket holds.
pub(super) struct Region {
    map: Arc<Mmap>,
    free: Mutex<Free>,
}

struct Free {
    /// Index of the first frame never handed out.
    fresh: u32,
    /// Frames given back by closed sockets.
    returned: Vec<u64>,
}

impl Region {
    fn new(frames: u32) -> io::Result<Arc<Region>> {
        Ok(Arc::new(Region {
            map: Arc::new(Mmap::anonymous(frames as usize * FRAME_SIZE as usize)?),
            free: Mutex::new(Free {
                fresh: 0,
                returned: Vec::new(),
            }),
        }))
    }

    pub(super) fn map(&self) -> &Arc<Mmap> {
        &self.map
    }

    fn capacity(&self) -> u32 {
        (self.map.len() / FRAME_SIZE as usize) as u32
    }

    /// `n` frames nobody holds, given-back ones first, or `None` when the
    /// region has fewer.
    fn take(&self, n: u32) -> Option<Vec<u64>> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh_left = self.capacity() - free.fresh;
        if free.returned.len() as u64 + u64::from(fresh_left) < u64::from(n) {
            return None;
        }
        let from_returned = (n as usize).min(free.returned.len());
        let keep = free.returned.len() - from_returned;
        let mut addrs = free.returned.split_off(keep);
        while addrs.len() < n as usize {
            addrs.push(u64::from(free.fresh) * u64::from(FRAME_SIZE));
            free.fresh += 1;
        }
        Some(addrs)
    }

    /// Frames a closed socket held: nobody holds them now.
    pub(super) fn give_back(&self, frames: impl IntoIterator<Item = u64>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.returned.extend(frames);
    }
}

/// The frames a receive half holds, by UMEM offset.
pub(super) struct Held {
    words: Vec<u64>,
}

impl Held {
    /// An empty set for a UMEM of `len` bytes.
    pub(super) fn new(len: usize) -> Held {
        let frames = len / FRAME_SIZE as usize;
        Held {
            words: vec![0; frames.div_ceil(64)],
        }
    }

    #[inline]
    fn slot(addr: u64) -> (usize, u64) {
        let i = (frame_base(addr) / u64::from(FRAME_SIZE)) as usize;
        (i / 64, 1 << (i % 64))
    }

    #[inline]
    pub(super) fn insert(&mut self, addr: u64) {
        let (w, bit) = Self::slot(addr);
        if let Some(word) = self.words.get_mut(w) {
            *word |= bit;
        }
    }

    #[inline]
    pub(super) fn remove(&mut self, addr: u64) {
        let (w, bit) = Self::slot(addr);
        if let Some(word) = self.words.get_mut(w) {
            *word &= !bit;
        }
    }

    /// The frames in the set, emptying it.
    pub(super) fn drain(&mut self) -> Vec<u64> {
        let mut out = Vec::new();
        for (w, word) in self.words.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let b = bits.trailing_zeros() as u64;
                out.push((w as u64 * 64 + b) * u64::from(FRAME_SIZE));
                bits &= bits - 1;
            }
        }
        out
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
        assert_eq!(a, [0, 4096, 8192, 12288]);
        assert_eq!(b[0], 4 * 4096);
        let (r3, c) = pool.take(4).unwrap();
        assert!(!Arc::ptr_eq(&r1, &r3), "only 2 frames were left");
        assert_eq!(c[0], 0);
        let (r4, d) = pool.take(25).unwrap();
        assert_eq!(
            r4.map().len(),
            25 * 4096,
            "a large request gets its own size"
        );
        assert_eq!(d.len(), 25);
        assert_eq!(pool.regions(), 3);
        drop((r3, r4));
        assert_eq!(pool.regions(), 1, "regions nobody holds are gone");
    }

    #[test]
    fn frames_given_back_are_handed_out_again() {
        let pool = UmemPool::with_region_frames(8);
        let (r, a) = pool.take(4).unwrap();
        let (_, b) = pool.take(4).unwrap();
        r.give_back(a.iter().copied());
        let (r2, c) = pool.take(4).unwrap();
        assert!(Arc::ptr_eq(&r, &r2), "no new region: the frames came back");
        let mut c_sorted = c.clone();
        c_sorted.sort_unstable();
        assert_eq!(c_sorted, a);
        assert!(c.iter().all(|f| !b.contains(f)));
        assert_eq!(pool.regions(), 1);
    }

    #[test]
    fn held_sets_track_frames_by_offset() {
        let mut h = Held::new(130 * 4096);
        for f in [0u64, 4096 * 63, 4096 * 64, 4096 * 129] {
            h.insert(f + 256); // a descriptor address inside the frame
        }
        h.remove(4096 * 63);
        h.insert(!4095); // outside the UMEM: ignored
        assert_eq!(h.drain(), [0, 4096 * 64, 4096 * 129]);
        assert!(h.drain().is_empty());
    }
}
