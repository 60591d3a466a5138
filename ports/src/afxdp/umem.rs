//! The UMEM (packet memory registered with the kernel) and the owner of
//! every memory mapping this backend makes.
//!
//! A socket's UMEM is either its own memory, split into two disjoint frame
//! areas:
//!
//! ```text
//!   frame 0 .. rx_frames              RX area: fill ring -> kernel -> RX ring -> back
//!   rx_frames .. rx_frames+tx_frames  TX area: free list -> TX ring -> completion ring
//! ```
//!
//! so the receive and transmit halves of a port never share a byte, or a
//! region of a [`super::UmemPool`] that every socket of the pool registers
//! whole. Then each socket starts with frames of its own, but frames move
//! between sockets: a received frame is sent from another port's TX ring
//! without a copy, and that port gives the receiving queue one of its free
//! frames in exchange, so each ring keeps its number of frames. Both areas
//! of such a socket are the whole region.

use pipeline::{Buf, Lender};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::Arc;

/// Size of one UMEM frame (chunk). Aligned mode needs a power of two in
/// 2048..=PAGE_SIZE; 4096 holds any frame a veth with native XDP can carry.
pub(super) const FRAME_SIZE: u32 = 4096;

// A frame is lent to a packet as a whole packet buffer.
const _: () = assert!(FRAME_SIZE as usize == std::mem::size_of::<Buf>());

/// An owned memory mapping, unmapped on drop.
pub(super) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Mmap` only owns an address range; it has no thread affinity and
// its methods only hand out the raw pointer. Whoever dereferences that
// pointer justifies the access at that place.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` gives nothing but the pointer and the length.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Private anonymous memory, pre-faulted, for a UMEM (or a test ring).
    pub(super) fn anonymous(len: usize) -> io::Result<Mmap> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        Self::map(len, flags, -1, 0)
    }

    /// A shared mapping of `fd` at page offset `pgoff` (an AF_XDP ring).
    pub(super) fn shared(fd: BorrowedFd<'_>, len: usize, pgoff: u64) -> io::Result<Mmap> {
        let off =
            libc::off_t::try_from(pgoff).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        Self::map(len, flags, fd.as_raw_fd(), off)
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int, off: libc::off_t) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses cannot
        // alias any existing Rust object; `fd` is valid or -1 (anonymous).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    pub(super) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and
        // owns; nothing borrows it any more (borrows are tied to `&self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// How many frames each area of one UMEM has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UmemLayout {
    pub rx_frames: u32,
    pub tx_frames: u32,
}

impl UmemLayout {
    pub(super) fn len(&self) -> usize {
        (self.rx_frames as usize + self.tx_frames as usize) * FRAME_SIZE as usize
    }

    pub(super) fn frames(&self) -> u32 {
        self.rx_frames + self.tx_frames
    }

    /// UMEM offsets of the RX frames, when the socket's frames start at
    /// offset `first`.
    pub(super) fn rx_addrs(&self, first: u64) -> impl Iterator<Item = u64> {
        (0..u64::from(self.rx_frames)).map(move |i| first + i * u64::from(FRAME_SIZE))
    }

    /// UMEM offsets of the TX frames (after the RX frames).
    pub(super) fn tx_addrs(&self, first: u64) -> impl Iterator<Item = u64> {
        let from = u64::from(self.rx_frames);
        (from..from + u64::from(self.tx_frames)).map(move |i| first + i * u64::from(FRAME_SIZE))
    }
}

/// The start of the frame that contains UMEM offset `addr`.
#[inline]
pub(super) fn frame_base(addr: u64) -> u64 {
    addr & !(u64::from(FRAME_SIZE) - 1)
}

/// The UMEM of one socket and its two frame areas.
pub(super) struct Umem {
    pub rx: FrameArea,
    pub tx: FrameArea,
    map: Arc<Mmap>,
}

impl Umem {
    /// Memory of the socket's own, split into disjoint RX and TX areas.
    pub(super) fn allocate(layout: UmemLayout) -> io::Result<Umem> {
        let map = Arc::new(Mmap::anonymous(layout.len())?);
        let split = u64::from(layout.rx_frames) * u64::from(FRAME_SIZE);
        let end = layout.len() as u64;
        Ok(Umem {
            rx: FrameArea {
                map: map.clone(),
                start: 0,
                end: split,
            },
            tx: FrameArea {
                map: map.clone(),
                start: split,
                end,
            },
            map,
        })
    }

    /// A pool region shared with other sockets. Frames move between the
    /// sockets of the region, so both areas are the whole region.
    pub(super) fn shared(region: &Arc<Mmap>) -> Umem {
        let whole = || FrameArea {
            map: region.clone(),
            start: 0,
            end: region.len() as u64,
        };
        Umem {
            rx: whole(),
            tx: whole(),
            map: region.clone(),
        }
    }

    /// Start address and length, for `XDP_UMEM_REG`.
    pub(super) fn region(&self) -> (u64, u64) {
        (self.map.as_ptr() as u64, self.map.len() as u64)
    }
}

/// One area of a UMEM: a range of whole frames. Areas of the same UMEM never
/// overlap, and each is owned by one queue half; `Umem::allocate` is the only
/// way to make one.
pub(super) struct FrameArea {
    map: Arc<Mmap>,
    start: u64,
    end: u64,
}

impl FrameArea {
    /// True when `base` is the start of a frame of this area.
    #[inline]
    pub(super) fn owns_frame(&self, base: u64) -> bool {
        base >= self.start && base < self.end && base == frame_base(base)
    }

    /// The frame starting at UMEM offset `base`, as a packet buffer, or
    /// `None` when `base` is not the start of a frame of this area.
    #[inline]
    pub(super) fn frame_ptr(&self, base: u64) -> Option<NonNull<Buf>> {
        if !self.owns_frame(base) {
            return None;
        }
        // SAFETY: `base` is a frame start inside the mapping (checked
        // above), so the pointer is in bounds and not null. Creating it
        // touches no memory; whoever uses it answers for the access.
        let p = unsafe { self.map.as_ptr().add(base as usize) };
        NonNull::new(p.cast::<Buf>())
    }

    /// The UMEM offset of a frame handed out by [`FrameArea::frame_ptr`],
    /// or `None` when `frame` is not one of this area's frames.
    #[inline]
    pub(super) fn frame_base_of(&self, frame: NonNull<Buf>) -> Option<u64> {
        let off = (frame.as_ptr() as usize).checked_sub(self.map.as_ptr() as usize)? as u64;
        self.owns_frame(off).then_some(off)
    }

    /// Size of the whole UMEM the area is part of.
    pub(super) fn umem_len(&self) -> usize {
        self.map.len()
    }

    /// A handle that keeps this area's memory mapped, for packets that are
    /// views of its frames.
    pub(super) fn lender(&self) -> Lender {
        self.map.clone()
    }

    /// Checks that `addr..addr+len` lies inside one frame of this area.
    #[inline]
    fn check(&self, addr: u64, len: usize) -> bool {
        let base = frame_base(addr);
        self.owns_frame(base) && addr - base + len as u64 <= u64::from(FRAME_SIZE)
    }

    /// The `len` bytes at UMEM offset `addr`, or `None` when they do not lie
    /// inside one frame of this area.
    ///
    /// # Safety
    /// The frame must be owned by user space for as long as the slice lives:
    /// taken from the RX ring and not yet given back to the fill ring. The
    /// kernel may write any frame it owns at any time.
    #[inline]
    pub(super) unsafe fn read(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let len = len as usize;
        if !self.check(addr, len) {
            return None;
        }
        // No Rust reference to the frame can exist mutably: user space
        // writes only frames it owns (`write`, or a packet the frame is lent
        // to), and the caller owns this one.
        // SAFETY: the range was checked to lie inside the mapping; the
        // caller guarantees the kernel does not write this frame meanwhile.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(addr as usize), len) })
    }

    /// Copies `data` to UMEM offset `addr`. Returns false (nothing written)
    /// when it does not fit inside one frame of this area.
    ///
    /// # Safety
    /// The frame must be owned by the caller: never handed to the kernel, or
    /// returned through the completion ring, not yet put on the TX ring, and
    /// not lent to a packet.
    #[inline]
    pub(super) unsafe fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        if !self.check(addr, data.len()) {
            return false;
        }
        // `data` may itself lie in a UMEM frame (a lent packet), but every
        // frame has one owner at a time, so it is not the frame the caller
        // owns and writes here.
        // SAFETY: the destination was checked to lie inside one frame of the
        // mapping; the caller guarantees the kernel is not using it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_ptr().add(addr as usize),
                data.len(),
            );
        }
        true
    }

    /// Copies `parts`, one after the other, to UMEM offset `addr`. Returns
    /// false (nothing written) when together they do not fit one frame.
    ///
    /// # Safety
    /// As for [`Self::write`].
    #[inline]
    pub(super) unsafe fn write_parts(&mut self, addr: u64, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if !self.check(addr, total) {
            return false;
        }
        let mut at = addr;
        for p in parts {
            // SAFETY: each part lands inside the range checked above (the
            // parts add up to `total`); the caller's guarantee covers it.
            unsafe { self.write(at, p) };
            at += p.len() as u64;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_splits_the_frames() {
        let l = UmemLayout {
            rx_frames: 4,
            tx_frames: 2,
        };
        assert_eq!(l.len(), 6 * 4096);
        assert_eq!(l.rx_addrs(0).collect::<Vec<_>>(), [0, 4096, 8192, 12288]);
        assert_eq!(l.tx_addrs(0).collect::<Vec<_>>(), [16384, 20480]);
        assert_eq!(l.tx_addrs(8192).collect::<Vec<_>>(), [24576, 28672]);
        assert_eq!(frame_base(4096 + 256), 4096);
    }

    #[test]
    fn areas_are_range_checked() {
        let mut u = Umem::allocate(UmemLayout {
            rx_frames: 2,
            tx_frames: 2,
        })
        .unwrap();
        assert!(u.rx.owns_frame(4096));
        assert!(!u.rx.owns_frame(8192));
        assert!(!u.rx.owns_frame(100));
        assert!(u.tx.owns_frame(8192));
        // SAFETY: no kernel is involved in this test; the memory is ours.
        unsafe {
            assert!(u.tx.write(8192 + 10, &[7; 100]));
            assert!(!u.tx.write(8192 + 4000, &[7; 100]), "crosses a frame");
            assert!(!u.tx.write(0, &[7; 10]), "belongs to the RX area");
            assert!(u.rx.read(8192, 10).is_none());
            assert!(u.rx.read(4096 + 4000, 96).is_some());
            assert!(u.rx.read(4096 + 4000, 97).is_none());
        }
    }

    #[test]
    fn frame_pointers_map_back_to_their_offsets() {
        let u = Umem::allocate(UmemLayout {
            rx_frames: 2,
            tx_frames: 2,
        })
        .unwrap();
        let f = u.rx.frame_ptr(4096).unwrap();
        assert_eq!(u.rx.frame_base_of(f), Some(4096));
        assert!(u.rx.frame_ptr(8192).is_none(), "a TX frame");
        assert!(u.rx.frame_ptr(100).is_none(), "not a frame start");
        let tx = u.tx.frame_ptr(8192).unwrap();
        assert_eq!(u.rx.frame_base_of(tx), None);
        let other = Umem::allocate(UmemLayout {
            rx_frames: 2,
            tx_frames: 0,
        })
        .unwrap();
        let foreign = other.rx.frame_ptr(0).unwrap();
        assert_eq!(u.rx.frame_base_of(foreign), None);
    }
}
