//! The four AF_XDP rings (fill, RX, TX, completion), mapped from the socket.
//!
//! Each ring is a single-producer single-consumer queue shared with the
//! kernel: a producer index, a consumer index, a flags word and a power-of-two
//! array of entries. The protocol (the kernel's `xsk_queue.h`):
//!
//! - the producer writes entries, then publishes its index with a release
//!   store; the consumer reads the producer index with an acquire load before
//!   it reads those entries;
//! - the consumer publishes its index with a release store once it is done
//!   with the entries; the producer reads it with an acquire load before it
//!   overwrites them.
//!
//! Indices are free-running `u32`s (wrapping); `index & mask` is the slot.
//! Each side caches the other side's index and re-reads it only when the
//! cached value says there is not enough room or data.

use super::umem::Mmap;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// Where the parts of one ring lie inside its mapping (bytes), as
/// `XDP_MMAP_OFFSETS` reports them.
#[derive(Clone, Copy, Debug)]
pub(super) struct RingOffsets {
    pub producer: u64,
    pub consumer: u64,
    pub flags: u64,
    pub desc: u64,
}

impl From<libc::xdp_ring_offset> for RingOffsets {
    fn from(o: libc::xdp_ring_offset) -> Self {
        RingOffsets {
            producer: o.producer,
            consumer: o.consumer,
            flags: o.flags,
            desc: o.desc,
        }
    }
}

impl RingOffsets {
    /// Bytes to map for a ring of `size` entries of `T`.
    pub(super) fn map_len<T>(&self, size: u32) -> usize {
        self.desc as usize + size as usize * std::mem::size_of::<T>()
    }
}

/// The mapped ring memory with validated pointers into it.
struct Raw<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    size: u32,
    mask: u32,
    // Owns the memory the pointers above point into.
    _map: Mmap,
}

// SAFETY: the ring is used by exactly one thread at a time (its owner needs
// `&mut self` to move an index); the memory is a mapping owned by `map`, not
// tied to the creating thread.
unsafe impl<T: Send> Send for Raw<T> {}

impl<T: Copy> Raw<T> {
    fn new(map: Mmap, off: RingOffsets, size: u32) -> io::Result<Self> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("AF_XDP ring layout from the kernel is unusable: {what}"),
            )
        };
        if size == 0 || !size.is_power_of_two() {
            return Err(bad("size is not a power of two"));
        }
        let len = map.len() as u64;
        let word = |o: u64| -> io::Result<NonNull<AtomicU32>> {
            if o & 3 != 0 || o + 4 > len {
                return Err(bad("index word out of the mapping"));
            }
            // SAFETY: `o + 4 <= len`, so the word lies inside the mapping.
            let p = unsafe { map.as_ptr().add(o as usize) };
            NonNull::new(p.cast::<AtomicU32>()).ok_or_else(|| bad("null"))
        };
        let producer = word(off.producer)?;
        let consumer = word(off.consumer)?;
        let flags = word(off.flags)?;
        let need = off.desc + u64::from(size) * std::mem::size_of::<T>() as u64;
        let align = std::mem::align_of::<T>() as u64;
        if off.desc & (align - 1) != 0 || need > len {
            return Err(bad("entries out of the mapping"));
        }
        // SAFETY: `off.desc + size * size_of::<T>() <= len`: inside the mapping.
        let d = unsafe { map.as_ptr().add(off.desc as usize) };
        let descs = NonNull::new(d.cast::<T>()).ok_or_else(|| bad("null"))?;
        Ok(Raw {
            producer,
            consumer,
            flags,
            descs,
            size,
            mask: size - 1,
            _map: map,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: checked in `new` to be an aligned word inside `self._map`,
        // which lives as long as `self`; the kernel only accesses it with
        // atomic loads and stores (READ_ONCE / smp_store_release).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: `index & mask < size`, and `new` checked that `size`
        // entries of `T` fit in the mapping after `descs`.
        unsafe { self.descs.as_ptr().add((index & self.mask) as usize) }
    }
}

/// A ring user space produces into: fill and TX.
pub(super) struct ProdRing<T> {
    raw: Raw<T>,
    /// Next slot to write (may be ahead of `published`).
    prod: u32,
    /// Producer index last made visible to the kernel.
    published: u32,
    /// Last consumer index read from the kernel.
    cached_cons: u32,
}

impl<T: Copy> ProdRing<T> {
    pub(super) fn new(map: Mmap, off: RingOffsets, size: u32) -> io::Result<Self> {
        let raw = Raw::new(map, off, size)?;
        let prod = raw.producer().load(Ordering::Relaxed);
        let cached_cons = raw.consumer().load(Ordering::Acquire);
        Ok(ProdRing {
            raw,
            prod,
            published: prod,
            cached_cons,
        })
    }

    /// Free slots, at least `want` if the kernel has consumed enough (the
    /// consumer index is only re-read when the cached one shows too few).
    pub(super) fn free(&mut self, want: u32) -> u32 {
        let free = ring_free(self.raw.size, self.prod, self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.raw.consumer().load(Ordering::Acquire);
        ring_free(self.raw.size, self.prod, self.cached_cons)
    }

    /// Writes one entry; it becomes visible to the kernel at `submit`.
    /// Returns false when the ring is full.
    pub(super) fn push(&mut self, entry: T) -> bool {
        if self.free(1) == 0 {
            return false;
        }
        // SAFETY: the slot is free: the kernel consumed it (acquire load of
        // the consumer index in `free`) and will not read it before we
        // publish a producer index past it.
        unsafe { self.slot_write(entry) };
        self.prod = self.prod.wrapping_add(1);
        true
    }

    /// # Safety
    /// The slot at `self.prod` must be free (see `push`).
    unsafe fn slot_write(&mut self, entry: T) {
        // SAFETY: `slot` is in bounds and aligned; the caller guarantees the
        // kernel is not accessing it.
        unsafe { self.raw.slot(self.prod).write(entry) }
    }

    /// Makes the entries written so far visible to the kernel.
    pub(super) fn submit(&mut self) {
        if self.prod != self.published {
            self.raw.producer().store(self.prod, Ordering::Release);
            self.published = self.prod;
        }
    }

    /// Entries written (submitted or not) that the kernel has not consumed.
    pub(super) fn unconsumed(&self) -> u32 {
        self.prod
            .wrapping_sub(self.raw.consumer().load(Ordering::Acquire))
    }

    /// True when the kernel asks for a syscall to process this ring
    /// (`XDP_USE_NEED_WAKEUP`). Call after `submit`.
    pub(super) fn needs_wakeup(&self) -> bool {
        // The kernel sets the flag and then re-checks the ring; our store of
        // the producer index must be ordered before this load, or both sides
        // could miss each other (store-load needs a full fence).
        fence(Ordering::SeqCst);
        self.raw.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

/// A ring user space consumes from: RX and completion.
pub(super) struct ConsRing<T> {
    raw: Raw<T>,
    /// Next entry to read.
    cons: u32,
    /// Last producer index read from the kernel.
    cached_prod: u32,
}

impl<T: Copy> ConsRing<T> {
    pub(super) fn new(map: Mmap, off: RingOffsets, size: u32) -> io::Result<Self> {
        let raw = Raw::new(map, off, size)?;
        let cons = raw.consumer().load(Ordering::Relaxed);
        let cached_prod = raw.producer().load(Ordering::Acquire);
        Ok(ConsRing {
            raw,
            cons,
            cached_prod,
        })
    }

    /// Entries ready to read, at most `max` (the producer index is only
    /// re-read when the cached one shows fewer than `max`).
    pub(super) fn available(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cons);
        if n < max {
            self.cached_prod = self.raw.producer().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.cons);
        }
        n.min(max).min(self.raw.size)
    }

    /// Entry `i` after the consumer index, if `available` showed it.
    pub(super) fn get(&self, i: u32) -> Option<T> {
        if i >= self.cached_prod.wrapping_sub(self.cons).min(self.raw.size) {
            return None;
        }
        // SAFETY: the kernel published this entry (acquire load of the
        // producer index in `available`) and will not overwrite it before we
        // release it; the slot is in bounds and aligned.
        Some(unsafe { self.raw.slot(self.cons.wrapping_add(i)).read() })
    }

    /// Gives `n` entries back to the kernel (at most what `available` showed).
    pub(super) fn release(&mut self, n: u32) {
        let n = n.min(self.cached_prod.wrapping_sub(self.cons));
        if n == 0 {
            return;
        }
        self.cons = self.cons.wrapping_add(n);
        self.raw.consumer().store(self.cons, Ordering::Release);
    }
}

/// Free slots in a ring of `size` entries with these indices (wrapping).
#[inline]
fn ring_free(size: u32, prod: u32, cons: u32) -> u32 {
    size.saturating_sub(prod.wrapping_sub(cons))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: RingOffsets = RingOffsets {
        producer: 0,
        consumer: 64,
        flags: 128,
        desc: 192,
    };

    /// The "kernel" side of a test ring: raw access to its index words.
    struct Peer(*mut u8);

    impl Peer {
        fn word(&self, off: u64) -> &AtomicU32 {
            // SAFETY: test mapping of one page; offsets are in OFF.
            unsafe { &*(self.0.add(off as usize) as *const AtomicU32) }
        }
        fn entry(&self, size: u32, index: u32) -> u64 {
            let slot = (index & (size - 1)) as usize;
            // SAFETY: slot < size entries of u64 after OFF.desc, in the page.
            unsafe {
                (self.0.add(OFF.desc as usize) as *const u64)
                    .add(slot)
                    .read()
            }
        }
        fn put(&self, size: u32, index: u32, v: u64) {
            let slot = (index & (size - 1)) as usize;
            // SAFETY: as in `entry`.
            unsafe {
                (self.0.add(OFF.desc as usize) as *mut u64)
                    .add(slot)
                    .write(v)
            }
        }
    }

    /// A page of memory laid out as a ring whose indices start at `start`.
    fn page(start: u32) -> (Mmap, Peer) {
        let m = Mmap::anonymous(4096).unwrap();
        let peer = Peer(m.as_ptr());
        peer.word(OFF.producer).store(start, Ordering::Relaxed);
        peer.word(OFF.consumer).store(start, Ordering::Relaxed);
        (m, peer)
    }

    #[test]
    fn free_space_wraps() {
        assert_eq!(ring_free(8, 0, 0), 8);
        assert_eq!(ring_free(8, 5, 1), 4);
        assert_eq!(ring_free(8, 3, u32::MAX - 2), 2);
        assert_eq!(ring_free(8, 8, 0), 0);
    }

    #[test]
    fn producer_fills_and_refills_across_index_wrap() {
        let (m, peer) = page(u32::MAX - 3);
        let mut r = ProdRing::<u64>::new(m, OFF, 8).unwrap();
        for v in 0..8 {
            assert!(r.push(v));
        }
        assert!(!r.push(99), "full");
        assert_eq!(r.unconsumed(), 8);
        // Nothing visible before submit.
        assert_eq!(
            peer.word(OFF.producer).load(Ordering::Acquire),
            u32::MAX - 3
        );
        r.submit();
        assert_eq!(peer.word(OFF.producer).load(Ordering::Acquire), 4);
        // The kernel consumes 3 entries.
        let c = u32::MAX - 3;
        assert_eq!(peer.entry(8, c), 0);
        assert_eq!(peer.entry(8, c.wrapping_add(7)), 7);
        peer.word(OFF.consumer)
            .store(c.wrapping_add(3), Ordering::Release);
        assert_eq!(r.free(1), 3);
        assert!(r.push(8));
        r.submit();
        assert_eq!(peer.entry(8, 4), 8);
        assert_eq!(r.unconsumed(), 6);
    }

    #[test]
    fn consumer_reads_only_published_entries() {
        let (m, peer) = page(u32::MAX - 1);
        let mut r = ConsRing::<u64>::new(m, OFF, 8).unwrap();
        assert_eq!(r.available(32), 0);
        assert_eq!(r.get(0), None);
        let p = u32::MAX - 1;
        for i in 0..5u32 {
            peer.put(8, p.wrapping_add(i), 100 + u64::from(i));
        }
        peer.word(OFF.producer)
            .store(p.wrapping_add(5), Ordering::Release);
        assert_eq!(r.available(2), 2);
        assert_eq!(r.available(32), 5);
        assert_eq!(r.get(4), Some(104));
        assert_eq!(r.get(5), None);
        r.release(3);
        assert_eq!(peer.word(OFF.consumer).load(Ordering::Acquire), 1);
        assert_eq!(r.available(32), 2);
        assert_eq!(r.get(0), Some(103));
        r.release(10); // clamped to what was available
        assert_eq!(peer.word(OFF.consumer).load(Ordering::Acquire), 3);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let m = Mmap::anonymous(4096).unwrap();
        assert!(
            ProdRing::<u64>::new(m, OFF, 6).is_err(),
            "not a power of two"
        );
        let m = Mmap::anonymous(4096).unwrap();
        assert!(
            ConsRing::<u64>::new(m, OFF, 1024).is_err(),
            "entries past the end"
        );
        let m = Mmap::anonymous(4096).unwrap();
        let off = RingOffsets {
            consumer: 4094,
            ..OFF
        };
        assert!(
            ConsRing::<u64>::new(m, off, 8).is_err(),
            "index word past the end"
        );
    }
}
