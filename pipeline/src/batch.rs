//! A batch of up to [`BATCH_SIZE`] packets, allocated once and reused.
//!
//! Receive paths fill slots with [`Batch::next_slot`] + [`Batch::commit`];
//! stages walk [`Batch::packets_mut`]; the batch is [`Batch::clear`]ed before
//! the next receive. No allocation happens after [`Batch::new`].
//!
//! Zero-copy receive: [`Batch::push_lent`] makes the next slot a view of a
//! buffer the receive path lends (its memory kept alive by a handle the
//! batch holds), and the lender takes its buffers back with
//! [`Batch::reclaim`] after the batch has been forwarded, before the batch
//! is cleared.

use crate::packet::{Buf, Packet};
use std::ptr::NonNull;
use std::sync::Arc;

/// Keeps a lender's memory mapped while a batch holds buffers from it.
pub type Lender = Arc<dyn Send + Sync>;

pub const BATCH_SIZE: usize = 32;

pub struct Batch {
    pkts: Vec<Packet>,
    len: usize,
    /// Slots holding a lent buffer.
    lent: usize,
    /// Memory of the lenders of those buffers (at most one per receive).
    /// Declared after `pkts`, so it is dropped after them.
    lenders: Vec<Lender>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Self {
        Batch {
            pkts: (0..BATCH_SIZE).map(|_| Packet::new()).collect(),
            len: 0,
            lent: 0,
            lenders: Vec::with_capacity(BATCH_SIZE),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BATCH_SIZE
    }

    /// Free slots left.
    #[inline]
    pub fn room(&self) -> usize {
        BATCH_SIZE - self.len
    }

    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The next free slot, reset, or `None` when the batch is full. The slot
    /// only becomes part of the batch after [`Batch::commit`].
    #[inline]
    pub fn next_slot(&mut self) -> Option<&mut Packet> {
        let p = self.pkts.get_mut(self.len)?;
        p.reset();
        Some(p)
    }

    /// Adds the slot returned by the last [`Batch::next_slot`] to the batch.
    #[inline]
    pub fn commit(&mut self) {
        if self.len < BATCH_SIZE {
            self.len += 1;
        }
    }

    /// Copies `frame` into the next slot and commits it. Returns false when
    /// the batch is full or the frame is larger than a packet buffer.
    #[inline]
    pub fn push_copy(&mut self, frame: &[u8]) -> bool {
        let Some(p) = self.next_slot() else {
            return false;
        };
        if !p.fill(frame) {
            return false;
        }
        self.commit();
        true
    }

    /// Makes the next slot a view of `frame`, lent by a receive path, whose
    /// received frame is the `len` bytes at offset `start`, and commits it.
    /// `lender` keeps the memory alive while the batch holds the buffer.
    /// Returns false (nothing lent) when the batch is full or the range does
    /// not fit the buffer.
    ///
    /// # Safety
    /// As for [`Packet::lend`]: while the batch holds the buffer, nothing
    /// else reads or writes it, and it stays valid as long as `lender`
    /// lives. The lender gets it back through [`Batch::reclaim`].
    #[inline]
    pub unsafe fn push_lent(
        &mut self,
        frame: NonNull<Buf>,
        start: usize,
        len: usize,
        lender: &Lender,
    ) -> bool {
        let Some(p) = self.pkts.get_mut(self.len) else {
            return false;
        };
        if p.is_lent() {
            // A buffer nobody reclaimed: keep it where it is (its lender
            // can still take it back) rather than lose it.
            return false;
        }
        // SAFETY: the caller's guarantee, passed on.
        if !unsafe { p.lend(frame, start, len) } {
            return false;
        }
        if !self.lenders.last().is_some_and(|l| Arc::ptr_eq(l, lender)) {
            self.lenders.push(lender.clone());
        }
        self.lent += 1;
        self.len += 1;
        true
    }

    /// True while some slot holds a lent buffer.
    #[inline]
    pub fn has_lent(&self) -> bool {
        self.lent > 0
    }

    /// Gives lent buffers back: `take(buffer)` is called for each slot that
    /// holds one and returns true when it took the buffer (it was the
    /// lender); those slots return to their own buffers. Once nothing is
    /// lent any more, the lenders' memory handles are released.
    pub fn reclaim(&mut self, mut take: impl FnMut(NonNull<Buf>) -> bool) {
        if self.lent == 0 {
            return;
        }
        // Loans fill the slots from the front, so the scan usually ends
        // after the batch's last packet.
        let mut left = self.lent;
        for p in self.pkts.iter_mut() {
            if left == 0 {
                break;
            }
            if let Some(frame) = p.lent() {
                left -= 1;
                if take(frame) {
                    p.take_lent();
                    self.lent -= 1;
                }
            }
        }
        if self.lent == 0 {
            self.lenders.clear();
        }
    }

    #[inline]
    pub fn packets(&self) -> &[Packet] {
        &self.pkts[..self.len]
    }

    #[inline]
    pub fn packets_mut(&mut self) -> &mut [Packet] {
        &mut self.pkts[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_up_to_capacity() {
        let mut b = Batch::new();
        for i in 0..BATCH_SIZE {
            assert!(b.push_copy(&[i as u8; 60]));
        }
        assert!(b.is_full());
        assert!(!b.push_copy(&[0; 60]));
        assert_eq!(b.packets()[5].data()[0], 5);
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn uncommitted_slot_is_not_in_the_batch() {
        let mut b = Batch::new();
        b.next_slot().unwrap().fill(&[1; 60]);
        assert_eq!(b.len(), 0);
        b.commit();
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn lent_buffers_go_back_to_their_lender_only() {
        let mut frames: Vec<Box<Buf>> = (0..3).map(|_| Box::new([0u8; 4096])).collect();
        for (i, f) in frames.iter_mut().enumerate() {
            f[300] = i as u8;
        }
        let ptrs: Vec<NonNull<Buf>> = frames.iter_mut().map(|f| NonNull::from(&mut **f)).collect();
        let lender: Lender = Arc::new(());
        let mut b = Batch::new();
        for &p in &ptrs {
            // SAFETY: `frames` outlives the batch's use of them and is not
            // touched until they are reclaimed below.
            assert!(unsafe { b.push_lent(p, 300, 1, &lender) });
        }
        assert!(b.push_copy(&[42]));
        assert_eq!(b.len(), 4);
        assert_eq!(Arc::strong_count(&lender), 2, "held once, not per packet");
        let seen: Vec<u8> = b.packets().iter().map(|p| p.data()[0]).collect();
        assert_eq!(seen, [0, 1, 2, 42]);
        // A queue that lent only the second frame takes back only that one.
        let mut back = Vec::new();
        b.reclaim(|f| {
            let mine = f == ptrs[1];
            if mine {
                back.push(f);
            }
            mine
        });
        assert_eq!(back, [ptrs[1]]);
        assert!(b.has_lent());
        b.reclaim(|_| true);
        assert!(!b.has_lent());
        assert_eq!(Arc::strong_count(&lender), 1, "released with the last loan");
        b.clear();
        assert!(b.push_copy(&[1, 2]));
        assert_eq!(b.packets()[0].data(), &[1, 2]);
    }
}
