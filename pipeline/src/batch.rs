//! A batch of up to [`BATCH_SIZE`] packets, allocated once and reused.
//!
//! Receive paths fill slots with [`Batch::next_slot`] + [`Batch::commit`];
//! stages walk [`Batch::packets_mut`]; the batch is [`Batch::clear`]ed before
//! the next receive. No allocation happens after [`Batch::new`].

use crate::packet::Packet;

pub const BATCH_SIZE: usize = 32;

pub struct Batch {
    pkts: Vec<Packet>,
    len: usize,
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
}
