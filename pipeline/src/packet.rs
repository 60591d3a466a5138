//! One packet: a fixed buffer with headroom and a cursor.
//!
//! Headers are pushed and popped by moving `start` inside the buffer, never by
//! copying the frame. `HEADROOM` leaves room for a VXLAN encapsulation (50 bytes)
//! plus two VLAN tags with slack; the tail room holds frames up to
//! `MAX_FRAME`: jumbo frames, and the 64 KB TCP super-frames a TAP's TSO
//! sender hands over, held whole (`Packet::gso`).
//!
//! Packets are not `Clone`: a packet lives in a [`crate::Batch`] slot and is
//! reused for the lifetime of the thread that owns the batch.
//!
//! A packet has a buffer of its own, but a receive path may instead *lend*
//! it a buffer holding a received frame (an AF_XDP UMEM frame), so the frame
//! is switched where the kernel put it instead of being copied out. The
//! lender takes the buffer back once the batch has been forwarded
//! ([`crate::Batch::reclaim`]). This is the only unsafe code in the crate:
//! the buffer in use is reached through a pointer, because it may be memory
//! the packet does not own.

use std::ptr::NonNull;

/// Bytes reserved in front of a received frame for pushed headers.
pub const HEADROOM: usize = 192;
/// Size of a buffer a receive path lends (one AF_XDP UMEM frame).
pub const BUF_SIZE: usize = 4096;
/// Size of a packet's own buffer: big enough for jumbo frames, which a
/// receive path gathers into it from several of its buffers (AF_XDP
/// multi-buffer) or reads into it whole (TAP, AF_PACKET), and for a TCP
/// super-frame of a full 64 KB IP packet held whole. A poll thread has one
/// batch of these, about 2 MB.
pub const OWN_SIZE: usize = 65_536 + 1024;
/// Largest frame a packet can hold once received (without pushed headers).
pub const MAX_FRAME: usize = OWN_SIZE - HEADROOM;
/// Smallest Ethernet frame accepted (without FCS); shorter frames are runts.
pub const MIN_FRAME: usize = 14;

/// Index of a port inside one datapath configuration.
pub type PortNo = u16;

/// Per-packet metadata filled in by the stages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Port the packet arrived on.
    pub in_port: PortNo,
    /// VLAN the packet belongs to inside the bridge (0 = none / untagged bridge).
    pub vlan: u16,
    /// 802.1p priority carried with the packet (from its tag, if any).
    pub pcp: u8,
    /// TPID of the outer tag the packet arrived with or was given
    /// (0 = none, egress uses 0x8100).
    pub tpid: u16,
    /// IPv4 address (host byte order) of the VTEP at the far end of a
    /// tunnel: on receive, the one the frame came from (set by the underlay
    /// receive queue); once the L2 stage has decided, the one a unicast
    /// frame to a tunnel port goes to. 0 = none.
    pub tun_remote: u32,
    /// Offsets of the L3 and L4 headers and the IP protocol, for an IPv4
    /// or IPv6 frame that is not a fragment, filled by the first stage that
    /// parses the frame ([`crate::parse`]); 0 = not parsed or not IP.
    pub l3: u16,
    pub l4: u16,
    pub proto: u8,
}

/// A buffer a receive path lends to a packet.
pub type Buf = [u8; BUF_SIZE];
/// A packet's own buffer.
type OwnBuf = [u8; OWN_SIZE];

pub struct Packet {
    /// The buffer in use: `own`, or one lent by a receive path, and its
    /// size (`OWN_SIZE` or `BUF_SIZE`).
    buf: NonNull<u8>,
    cap: usize,
    /// The packet's own buffer, from `Box::into_raw`; freed on drop.
    own: NonNull<OwnBuf>,
    start: usize,
    len: usize,
    /// See [`Packet::gso`]. Kept out of [`Meta`], which stays 16 bytes.
    gso: u16,
    pub meta: Meta,
}

// SAFETY: a packet owns `own` outright, and a lent buffer is, by the
// contract of `Packet::lend`, reachable through this packet alone until the
// lender takes it back; neither pointer is tied to a thread. Shared
// references only ever read.
unsafe impl Send for Packet {}
// SAFETY: as above: `&Packet` gives read access only.
unsafe impl Sync for Packet {}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: `own` came from `Box::into_raw` in `new` and is freed only
        // here. A lent buffer is not the packet's and is left alone.
        drop(unsafe { Box::from_raw(self.own.as_ptr()) });
    }
}

impl Default for Packet {
    fn default() -> Self {
        Self::new()
    }
}

impl Packet {
    pub fn new() -> Self {
        let own = NonNull::from(Box::leak(Box::new([0u8; OWN_SIZE])));
        Packet {
            buf: own.cast(),
            cap: OWN_SIZE,
            own,
            start: HEADROOM,
            len: 0,
            gso: 0,
            meta: Meta::default(),
        }
    }

    #[inline]
    fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: `buf` is `own` (allocated in `new` with `cap` bytes, alive
        // until drop) or a lent buffer of `cap` bytes that `lend`'s caller
        // keeps valid and untouched by anyone else while the packet holds
        // it. `&mut self` makes the borrow exclusive, and no other reference
        // to the buffer exists outside the packet.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr(), self.cap) }
    }

    /// Makes the packet a view of `frame`, a buffer lent by a receive path,
    /// whose received frame is the `len` bytes at offset `start`. Returns
    /// false (nothing lent) when those bytes do not lie inside the buffer or
    /// the packet already holds a lent buffer.
    ///
    /// # Safety
    /// `frame` must stay valid for reads and writes, and nothing but this
    /// packet may read or write it, until the lender takes it back with
    /// [`Packet::take_lent`]. The packet never frees it; if the packet is
    /// dropped first, the buffer is simply never returned.
    #[inline]
    pub(crate) unsafe fn lend(&mut self, frame: NonNull<Buf>, start: usize, len: usize) -> bool {
        if self.is_lent() || start > BUF_SIZE || len > BUF_SIZE - start {
            return false;
        }
        self.buf = frame.cast();
        self.cap = BUF_SIZE;
        self.start = start;
        self.len = len;
        self.gso = 0;
        self.meta = Meta::default();
        true
    }

    /// Replaces the lent buffer with `frame`, another buffer of the same
    /// lender, and leaves the packet empty. For a transmit path that takes
    /// the packet's buffer (zero-copy send) and gives the lender another in
    /// exchange. Returns the buffer taken, or `None` (nothing changed) when
    /// nothing was lent.
    ///
    /// # Safety
    /// As for [`Packet::lend`], for `frame`; it must lie in the same memory
    /// as the buffer it replaces, so that what keeps that memory alive (the
    /// batch's lender handle) keeps `frame` alive too.
    #[inline]
    pub unsafe fn swap_lent(&mut self, frame: NonNull<Buf>) -> Option<NonNull<Buf>> {
        let taken = self.lent()?;
        self.buf = frame.cast();
        self.start = HEADROOM;
        self.len = 0;
        self.gso = 0;
        self.meta = Meta::default();
        Some(taken)
    }

    /// True while the packet works in a lent buffer.
    #[inline]
    pub fn is_lent(&self) -> bool {
        self.buf != self.own.cast()
    }

    /// The lent buffer, if any, without giving it back.
    #[inline]
    pub fn lent(&self) -> Option<NonNull<Buf>> {
        self.is_lent().then_some(self.buf.cast())
    }

    /// Gives the lent buffer back (the packet returns to its own buffer,
    /// empty). Returns `None` when nothing was lent.
    #[inline]
    pub(crate) fn take_lent(&mut self) -> Option<NonNull<Buf>> {
        let lent = self.lent()?;
        self.buf = self.own.cast();
        self.cap = OWN_SIZE;
        self.reset();
        Some(lent)
    }

    /// Resets the cursor and metadata for a new frame.
    #[inline]
    pub fn reset(&mut self) {
        self.start = HEADROOM;
        self.len = 0;
        self.gso = 0;
        self.meta = Meta::default();
    }

    /// Copies `frame` into the packet after the headroom. Returns false (and
    /// leaves the packet empty) when the frame does not fit.
    #[inline]
    pub fn fill(&mut self, frame: &[u8]) -> bool {
        self.reset();
        if frame.len() > self.cap - HEADROOM {
            return false;
        }
        self.buf_mut()[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.len = frame.len();
        true
    }

    /// The writable area after the headroom, for a `read()` into the packet.
    /// Follow with [`Packet::set_len`].
    #[inline]
    pub fn rx_area(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.buf_mut()[HEADROOM..]
    }

    /// [`Packet::rx_area`] with the last `head` bytes of the headroom in
    /// front of it, for one `read()` of a header and a frame: the header
    /// lands in the headroom and the frame where it belongs. `head` is at
    /// most [`HEADROOM`].
    #[inline]
    pub fn rx_area_with_head(&mut self, head: usize) -> &mut [u8] {
        self.reset();
        &mut self.buf_mut()[HEADROOM - head.min(HEADROOM)..]
    }

    /// For a TCP super-frame held whole (a TSO sender's, taken from a TAP
    /// with its virtio-net header): the payload bytes per segment (MSS).
    /// Its TCP checksum is partial (the pseudo-header sum), to be finished
    /// per segment by whoever cuts it. 0 = an ordinary frame; every new
    /// frame starts at 0.
    #[inline]
    pub fn gso(&self) -> u16 {
        self.gso
    }

    /// Marks the frame a TCP super-frame held whole, cut at `mss` bytes of
    /// payload a segment ([`Packet::gso`]).
    #[inline]
    pub fn set_gso(&mut self, mss: u16) {
        self.gso = mss;
    }

    /// The frame to write, with its [`Packet::gso`] beside it, for a stage
    /// that asks about the MSS only now and then (read through the
    /// reference, it costs nothing when not asked).
    #[inline]
    pub fn data_mut_and_gso(&mut self) -> (&mut [u8], &u16) {
        debug_assert!(self.start + self.len <= self.cap);
        let at = self.buf.as_ptr().wrapping_add(self.start);
        // SAFETY: as in `data`; `&mut self` makes the borrow exclusive, and
        // the frame lives in the buffer, never in the packet's fields, so it
        // does not overlap the borrow of `gso`.
        let frame = unsafe { std::slice::from_raw_parts_mut(at, self.len) };
        (frame, &self.gso)
    }

    /// Sets the frame length after a read into [`Packet::rx_area`].
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.cap - self.start);
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    // `data` and `data_mut` are on every stage's path, so they skip the
    // bounds check: every method that moves the cursor keeps
    // `start + len <= cap` (`lend` and `fill` check it, `set_len` clamps to
    // it, and pushes and pulls move bytes between the headroom and the
    // frame), which `debug_assert` confirms in tests.
    #[inline]
    pub fn data(&self) -> &[u8] {
        debug_assert!(self.start + self.len <= self.cap);
        // SAFETY: the buffer is valid for `cap` bytes (see `buf_mut`), and
        // `start + len <= cap` always holds (above).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(self.start), self.len) }
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.data_mut_and_gso().0
    }

    /// Free bytes in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Grows the frame at the front by `n` bytes and returns the new front.
    /// Returns `None` (packet unchanged) when the headroom is too small.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        self.len += n;
        let s = self.start;
        Some(&mut self.buf_mut()[s..s + n])
    }

    /// Removes `n` bytes from the front. Returns false (packet unchanged)
    /// when the frame is shorter than `n`.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Inserts `n` bytes at `offset` by moving the first `offset` bytes into
    /// the headroom (used to insert a VLAN tag after the MAC addresses).
    /// Returns the inserted gap, or `None` when it does not fit.
    pub fn insert_at(&mut self, offset: usize, n: usize) -> Option<&mut [u8]> {
        if n > self.start || offset > self.len {
            return None;
        }
        let old = self.start;
        // Inside the buffer: `old - n >= 0`, and `old + offset <= start +
        // len <= cap`.
        self.move_head(old, old - n, offset);
        self.start -= n;
        self.len += n;
        let gap = self.start + offset;
        // SAFETY: `gap + n == old + offset <= cap` (above); `&mut self`
        // makes the borrow exclusive.
        Some(unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr().add(gap), n) })
    }

    /// Removes `n` bytes at `offset` by moving the first `offset` bytes
    /// forward (used to strip a VLAN tag). Returns false when out of range.
    pub fn remove_at(&mut self, offset: usize, n: usize) -> bool {
        if offset.checked_add(n).is_none_or(|end| end > self.len) {
            return false;
        }
        let old = self.start;
        // Inside the buffer: `old + n + offset <= start + len <= cap`.
        self.move_head(old, old + n, offset);
        self.start += n;
        self.len -= n;
        true
    }

    /// Moves the `len` bytes at `from` to `to` (overlap allowed), both
    /// ranges inside the buffer, as the callers check. The 12 bytes of MAC
    /// addresses, the case of every VLAN push and pop, are a fixed-size copy
    /// the compiler inlines instead of a call to memmove.
    #[inline]
    fn move_head(&mut self, from: usize, to: usize, len: usize) {
        const MACS: usize = 12;
        debug_assert!(
            from.max(to) + len <= self.cap,
            "move_head out of the buffer"
        );
        let base = self.buf.as_ptr();
        // SAFETY: both ranges lie inside the buffer of `cap` bytes (the
        // callers' checks, above), which only the packet writes (see
        // `buf_mut`); `ptr::copy` allows them to overlap.
        unsafe {
            if len == MACS {
                std::ptr::copy(base.add(from), base.add(to), MACS);
            } else {
                std::ptr::copy(base.add(from), base.add(to), len);
            }
        }
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.len)
            .field("headroom", &self.start)
            .field("lent", &self.is_lent())
            .field("meta", &self.meta)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_read_back() {
        let mut p = Packet::new();
        assert!(p.fill(&[1, 2, 3]));
        assert_eq!(p.data(), &[1, 2, 3]);
        assert_eq!(p.headroom(), HEADROOM);
    }

    #[test]
    fn oversize_fill_is_refused() {
        let mut p = Packet::new();
        assert!(!p.fill(&vec![0u8; MAX_FRAME + 1]));
        assert!(p.is_empty());
    }

    #[test]
    fn push_and_pull_move_the_cursor() {
        let mut p = Packet::new();
        p.fill(&[9; 20]);
        p.push_front(50).unwrap().fill(7);
        assert_eq!(p.len(), 70);
        assert_eq!(p.data()[0], 7);
        assert!(p.pull_front(50));
        assert_eq!(p.data(), &[9; 20]);
        assert!(p.push_front(HEADROOM + 1).is_none());
        assert!(!p.pull_front(21));
    }

    #[test]
    fn insert_and_remove_tag() {
        let mut p = Packet::new();
        let frame: Vec<u8> = (0..20).collect();
        p.fill(&frame);
        p.insert_at(12, 4)
            .unwrap()
            .copy_from_slice(&[0x81, 0, 0, 100]);
        assert_eq!(&p.data()[..12], &frame[..12]);
        assert_eq!(&p.data()[12..16], &[0x81, 0, 0, 100]);
        assert_eq!(&p.data()[16..], &frame[12..]);
        assert!(p.remove_at(12, 4));
        assert_eq!(p.data(), &frame[..]);
        assert!(!p.remove_at(18, 4));
        assert!(!p.remove_at(usize::MAX, 4));
        assert!(p.insert_at(usize::MAX, 4).is_none());
    }

    #[test]
    fn a_lent_buffer_is_worked_in_and_given_back() {
        let mut frame: Box<Buf> = Box::new([0u8; BUF_SIZE]);
        frame[256..260].copy_from_slice(&[1, 2, 3, 4]);
        let ptr = NonNull::from(&mut *frame);
        let mut p = Packet::new();
        p.fill(&[9; 8]);
        // SAFETY: `frame` outlives the loan and is not touched until
        // `take_lent` below.
        assert!(unsafe { p.lend(ptr, 256, 4) });
        // SAFETY: as above; a second loan is refused.
        assert!(!unsafe { p.lend(ptr, 256, 4) });
        assert!(p.is_lent());
        assert_eq!(p.data(), &[1, 2, 3, 4]);
        assert_eq!(p.headroom(), 256);
        p.push_front(2).unwrap().copy_from_slice(&[7, 8]);
        assert_eq!(p.take_lent(), Some(ptr));
        assert!(!p.is_lent() && p.is_empty());
        assert_eq!(p.take_lent(), None);
        assert_eq!(&frame[254..260], &[7, 8, 1, 2, 3, 4]);
        assert!(p.fill(&[5; 3]));
        assert_eq!(p.data(), &[5; 3]);
    }

    #[test]
    fn a_sent_buffer_is_swapped_for_another() {
        let mut frames: Box<[Buf; 2]> = Box::new([[0u8; BUF_SIZE]; 2]);
        let [a, b] = frames.each_mut().map(NonNull::from);
        let mut p = Packet::new();
        // SAFETY: nothing is lent, so nothing is swapped.
        assert_eq!(unsafe { p.swap_lent(b) }, None);
        assert!(!p.is_lent());
        // SAFETY: both buffers live in `frames`, which outlives `p`'s use of
        // them and is not touched meanwhile.
        unsafe {
            assert!(p.lend(a, 256, 60));
            assert_eq!(p.swap_lent(b), Some(a));
        }
        assert!(p.is_lent() && p.is_empty());
        assert_eq!(p.take_lent(), Some(b));
    }

    #[test]
    fn a_loan_out_of_range_is_refused() {
        let mut frame: Box<Buf> = Box::new([0u8; BUF_SIZE]);
        let ptr = NonNull::from(&mut *frame);
        let mut p = Packet::new();
        // SAFETY: nothing is lent when these fail; `frame` outlives `p`.
        unsafe {
            assert!(!p.lend(ptr, BUF_SIZE - 10, 11));
            assert!(!p.lend(ptr, BUF_SIZE + 1, 0));
        }
        assert!(!p.is_lent());
    }
}
