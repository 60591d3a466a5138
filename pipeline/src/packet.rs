//! One packet: a fixed buffer with headroom and a cursor.
//!
//! Headers are pushed and popped by moving `start` inside the buffer, never by
//! copying the frame. `HEADROOM` leaves room for a VXLAN encapsulation (50 bytes)
//! plus two VLAN tags with slack; the tail room allows jumbo-ish frames up to
//! `MAX_FRAME`.
//!
//! Packets are not `Clone`: a packet lives in a [`crate::Batch`] slot and is
//! reused for the lifetime of the thread that owns the batch.

/// Bytes reserved in front of a received frame for pushed headers.
pub const HEADROOM: usize = 192;
/// Total buffer size of one packet.
pub const BUF_SIZE: usize = 4096;
/// Largest frame a packet can hold once received (without pushed headers).
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM;
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
}

pub struct Packet {
    buf: Box<[u8; BUF_SIZE]>,
    start: usize,
    len: usize,
    pub meta: Meta,
}

impl Default for Packet {
    fn default() -> Self {
        Self::new()
    }
}

impl Packet {
    pub fn new() -> Self {
        Packet {
            buf: Box::new([0u8; BUF_SIZE]),
            start: HEADROOM,
            len: 0,
            meta: Meta::default(),
        }
    }

    /// Resets the cursor and metadata for a new frame.
    #[inline]
    pub fn reset(&mut self) {
        self.start = HEADROOM;
        self.len = 0;
        self.meta = Meta::default();
    }

    /// Copies `frame` into the packet after the headroom. Returns false (and
    /// leaves the packet empty) when the frame does not fit.
    #[inline]
    pub fn fill(&mut self, frame: &[u8]) -> bool {
        self.reset();
        if frame.len() > MAX_FRAME {
            return false;
        }
        self.buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.len = frame.len();
        true
    }

    /// The writable area after the headroom, for a `read()` into the packet.
    /// Follow with [`Packet::set_len`].
    #[inline]
    pub fn rx_area(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.buf[HEADROOM..]
    }

    /// Sets the frame length after a read into [`Packet::rx_area`].
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(BUF_SIZE - self.start);
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
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
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
        Some(&mut self.buf[self.start..self.start + n])
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
        move_head(&mut self.buf[..], old, old - n, offset);
        self.start -= n;
        self.len += n;
        let gap = self.start + offset;
        Some(&mut self.buf[gap..gap + n])
    }

    /// Removes `n` bytes at `offset` by moving the first `offset` bytes
    /// forward (used to strip a VLAN tag). Returns false when out of range.
    pub fn remove_at(&mut self, offset: usize, n: usize) -> bool {
        if offset + n > self.len {
            return false;
        }
        let old = self.start;
        move_head(&mut self.buf[..], old, old + n, offset);
        self.start += n;
        self.len -= n;
        true
    }
}

/// Moves the `len` bytes at `from` to `to` (overlap allowed). The 12 bytes
/// of MAC addresses, the case of every VLAN push and pop, are moved with a
/// fixed-size copy the compiler inlines instead of a call to memmove.
#[inline]
fn move_head(buf: &mut [u8], from: usize, to: usize, len: usize) {
    const MACS: usize = 12;
    if len == MACS {
        let mut tmp = [0u8; MACS];
        tmp.copy_from_slice(&buf[from..from + MACS]);
        buf[to..to + MACS].copy_from_slice(&tmp);
    } else {
        buf.copy_within(from..from + len, to);
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.len)
            .field("headroom", &self.start)
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
    }
}
