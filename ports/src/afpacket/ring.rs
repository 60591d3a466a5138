//! The TPACKET_V3 receive ring and reading it into batches.
//!
//! The kernel fills one block at a time with frames and hands the whole block
//! to user space (block status `TP_STATUS_USER`) when it is full or when the
//! retire timer fires. We read every frame of the block, then give the block
//! back (`TP_STATUS_KERNEL`). Blocks are used in order, round-robin.
//!
//! Only the block status word is touched by both sides, so it is accessed
//! atomically. While a block is ours the kernel does not write it, so its
//! bytes are read through an ordinary slice, and every header field is
//! range-checked against the block: a malformed block cannot make us read
//! outside it, and it cannot make us panic.

use crate::tap::vnet::{is_gso, plan_cut};
use libc::{tpacket3_hdr, tpacket_block_desc, tpacket_hdr_v1, tpacket_hdr_variant1};
use pipeline::gso::Segmenter;
use pipeline::Batch;
use std::io;
use std::mem::offset_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Ring geometry: 32 blocks of 128 KiB, 4 MiB per port.
pub(super) const BLOCK_SIZE: usize = 128 << 10;
pub(super) const BLOCK_NR: usize = 32;
/// Only checked by the kernel; V3 packs frames of any size into a block.
const FRAME_SIZE: usize = 2048;
/// A partly filled block is handed over after this many milliseconds: the
/// worst-case latency a lone frame sees.
const RETIRE_MS: u32 = 2;

/// The `PACKET_RX_RING` request for the geometry above.
pub(super) fn request() -> libc::tpacket_req3 {
    libc::tpacket_req3 {
        tp_block_size: BLOCK_SIZE as u32,
        tp_block_nr: BLOCK_NR as u32,
        tp_frame_size: FRAME_SIZE as u32,
        tp_frame_nr: (BLOCK_SIZE / FRAME_SIZE * BLOCK_NR) as u32,
        tp_retire_blk_tov: RETIRE_MS,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    }
}

/// The mapped ring: `block_nr` blocks of `block_size` bytes.
pub(super) struct Ring {
    base: NonNull<u8>,
    block_size: usize,
    block_nr: usize,
}

// SAFETY: the mapping is owned by the Ring alone (no other handle to it
// exists in the process), so moving it to another thread is sound.
unsafe impl Send for Ring {}

/// Offset of `block_status` inside a block descriptor.
const STATUS_OFF: usize =
    offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, block_status);

impl Ring {
    /// Maps the ring set up on `fd` with [`request`]'s geometry.
    pub(super) fn map(fd: BorrowedFd<'_>) -> io::Result<Ring> {
        let len = BLOCK_SIZE * BLOCK_NR;
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel
        // checks `len` against the ring it set up. The result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Ring {
            base,
            block_size: BLOCK_SIZE,
            block_nr: BLOCK_NR,
        })
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        debug_assert!(block < self.block_nr);
        // The kernel writes the status word concurrently, which is why it is
        // only ever accessed atomically.
        // SAFETY: `block < block_nr`, so the word lies inside the mapping,
        // which lives as long as `self`; blocks start page-aligned, so the
        // word is 4-byte aligned.
        unsafe {
            AtomicU32::from_ptr(
                self.base
                    .as_ptr()
                    .add(block * self.block_size + STATUS_OFF)
                    .cast(),
            )
        }
    }

    /// The bytes of `block` if the kernel has handed it to us.
    fn user_block(&self, block: usize) -> Option<&[u8]> {
        if block >= self.block_nr
            || self.status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0
        {
            return None;
        }
        // The acquire load above saw TP_STATUS_USER, so the kernel has
        // finished writing the block and will not touch it until `release`
        // (which takes `&mut self`, so this slice is gone by then) stores
        // TP_STATUS_KERNEL.
        // SAFETY: the block lies inside the mapping, which outlives the
        // borrow of `self`, and the kernel leaves it alone (above).
        Some(unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add(block * self.block_size),
                self.block_size,
            )
        })
    }

    /// Hands `block` back to the kernel.
    fn release(&mut self, block: usize) {
        if block < self.block_nr {
            self.status(block)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base` and the length are those returned by / passed to
        // mmap, and no slice into the mapping outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.block_size * self.block_nr) };
    }
}

/// Reads the ring in order, remembering where it stopped inside a block.
pub(super) struct Reader {
    ring: Ring,
    /// The block to read next (or being read).
    block: usize,
    /// Frames left and offset of the next one, once the block is ours.
    cursor: Option<Cursor>,
    /// Frames that could not be delivered: truncated by the kernel, or
    /// larger than a packet buffer and not a TCP super-frame.
    dropped: u64,
    /// Each frame comes behind a virtio-net header (`PACKET_VNET_HDR`).
    vnet: bool,
    /// Largest IP packet a segment of a super-frame may be (the MTU).
    mtu: usize,
    /// The super-frame at the cursor, partly cut into segments.
    pending: Option<Segmenter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    left: u32,
    offset: usize,
}

impl Reader {
    /// `vnet`: the socket has `PACKET_VNET_HDR`, and TCP super-frames
    /// (GSO) are cut into segments of at most `mtu` bytes of IP.
    pub(super) fn new(ring: Ring, vnet: bool, mtu: usize) -> Self {
        Reader {
            ring,
            block: 0,
            cursor: None,
            dropped: 0,
            vnet,
            mtu,
            pending: None,
        }
    }

    /// Frames dropped so far (see `dropped`).
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Copies frames into `batch` until it is full or the ring is empty.
    /// Returns how many were added.
    pub(super) fn read_into(&mut self, batch: &mut Batch) -> usize {
        let mut added = 0;
        while batch.room() > 0 {
            let Some(block) = self.ring.user_block(self.block) else {
                break;
            };
            let cur = *self.cursor.get_or_insert_with(|| first_frame(block));
            if cur.left == 0 {
                self.next_block();
                continue;
            }
            let next = match frame_at(block, cur.offset, self.vnet) {
                Some(f) => {
                    if let Some((gso_type, size)) = f.gso {
                        let seg = self.pending.take();
                        let mtu = self.mtu;
                        match seg.or_else(|| plan_cut(f.data, gso_type, size, mtu)) {
                            Some(mut seg) => {
                                let (n, done) = segments(batch, &mut seg, &f);
                                added += n;
                                if !done {
                                    // The batch is full: the rest next time.
                                    self.pending = Some(seg);
                                    break;
                                }
                            }
                            None => self.dropped += 1,
                        }
                    } else if deliver(batch, &f) {
                        added += 1;
                    } else {
                        self.dropped += 1;
                    }
                    Cursor {
                        // A zero step before the last frame is malformed: skip the rest.
                        left: if f.next == 0 { 0 } else { cur.left - 1 },
                        offset: cur.offset + f.next,
                    }
                }
                None => Cursor { left: 0, offset: 0 },
            };
            self.cursor = Some(next);
        }
        // Give back a block whose last frame we just took, without waiting
        // for the next call.
        if matches!(self.cursor, Some(Cursor { left: 0, .. })) {
            self.next_block();
        }
        added
    }

    fn next_block(&mut self) {
        self.ring.release(self.block);
        self.block = (self.block + 1) % self.ring.block_nr;
        self.cursor = None;
    }
}

/// Cuts the super-frame `f` into segments in `batch`, a VLAN tag the
/// kernel took out put back on each. Returns how many were added and
/// whether the last one was.
fn segments(batch: &mut Batch, seg: &mut Segmenter, f: &Frame<'_>) -> (usize, bool) {
    let mut added = 0;
    while let Some(p) = batch.next_slot() {
        let Some(n) = seg.next_into(f.data, p.rx_area()) else {
            return (added, true);
        };
        p.set_len(n);
        if let Some(tag) = f.vlan {
            match p.insert_at(ETH_ADDRS_LEN, 4) {
                Some(gap) => gap.copy_from_slice(&tag),
                None => continue,
            }
        }
        batch.commit();
        added += 1;
    }
    (added, false)
}

/// Copies one frame into the batch, putting back a VLAN tag the kernel took
/// out. Returns false when the frame is dropped: truncated by the kernel, or
/// larger than a packet buffer (a TSO/GRO super-frame).
fn deliver(batch: &mut Batch, f: &Frame<'_>) -> bool {
    if f.truncated {
        return false;
    }
    let Some(p) = batch.next_slot() else {
        return false;
    };
    if !p.fill(f.data) {
        return false;
    }
    if let Some(tag) = f.vlan {
        let Some(gap) = p.insert_at(ETH_ADDRS_LEN, 4) else {
            return false;
        };
        gap.copy_from_slice(&tag);
    }
    batch.commit();
    true
}

/// Bytes of the two MAC addresses, after which a VLAN tag goes.
const ETH_ADDRS_LEN: usize = 12;

/// One frame inside a block.
#[derive(Debug)]
struct Frame<'a> {
    /// The captured bytes (without a VLAN tag the kernel took out).
    data: &'a [u8],
    /// The tag the kernel took out, as it goes on the wire (TPID, TCI).
    vlan: Option<[u8; 4]>,
    /// The capture is shorter than the frame.
    truncated: bool,
    /// A super-frame (its virtio-net header asks for TSO or USO): the
    /// header's `gso_type` and `gso_size`.
    gso: Option<(u8, u16)>,
    /// Offset from this frame's header to the next one's (0 = last).
    next: usize,
}

// Field offsets inside a block descriptor and a frame header.
const NUM_PKTS: usize = offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, num_pkts);
const FIRST_PKT: usize =
    offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
const NEXT: usize = offset_of!(tpacket3_hdr, tp_next_offset);
const SNAPLEN: usize = offset_of!(tpacket3_hdr, tp_snaplen);
const LEN: usize = offset_of!(tpacket3_hdr, tp_len);
const STATUS: usize = offset_of!(tpacket3_hdr, tp_status);
const MAC: usize = offset_of!(tpacket3_hdr, tp_mac);
const VLAN_TCI: usize =
    offset_of!(tpacket3_hdr, hv1) + offset_of!(tpacket_hdr_variant1, tp_vlan_tci);
const VLAN_TPID: usize =
    offset_of!(tpacket3_hdr, hv1) + offset_of!(tpacket_hdr_variant1, tp_vlan_tpid);
const HDR_LEN: usize = std::mem::size_of::<tpacket3_hdr>();
/// `struct virtio_net_hdr`, in front of the frame with `PACKET_VNET_HDR`:
/// its second byte is the GSO type.
const VNET_HDR_LEN: usize = super::VNET_HDR_LEN;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let bytes = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes([bytes[0], bytes[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Where the frames of a block we own start.
fn first_frame(block: &[u8]) -> Cursor {
    match (u32_at(block, NUM_PKTS), u32_at(block, FIRST_PKT)) {
        (Some(left), Some(offset)) => Cursor {
            left,
            offset: offset as usize,
        },
        _ => Cursor { left: 0, offset: 0 },
    }
}

/// Parses the frame whose header starts at `off`, behind a virtio-net
/// header if `vnet`. `None` when a header or the data would lie outside
/// the block.
fn frame_at(block: &[u8], off: usize, vnet: bool) -> Option<Frame<'_>> {
    let hdr = block.get(off..off.checked_add(HDR_LEN)?)?;
    let snaplen = u32_at(hdr, SNAPLEN)? as usize;
    let len = u32_at(hdr, LEN)? as usize;
    let status = u32_at(hdr, STATUS)?;
    let mac = off + u16_at(hdr, MAC)? as usize;
    let data = block.get(mac..mac.checked_add(snaplen)?)?;
    let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
        let tpid = match u16_at(hdr, VLAN_TPID) {
            Some(t) if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && t != 0 => t,
            _ => 0x8100,
        };
        // The TCI field is 32 bits wide but holds a 16-bit TCI.
        let tci = u32_at(hdr, VLAN_TCI).unwrap_or(0) as u16;
        let [a, b] = tpid.to_be_bytes();
        let [c, d] = tci.to_be_bytes();
        [a, b, c, d]
    });
    let gso = if vnet {
        let h = block.get(mac.checked_sub(VNET_HDR_LEN)?..mac)?;
        is_gso(h[1]).then(|| (h[1], u16::from_le_bytes([h[4], h[5]])))
    } else {
        None
    };
    Some(Frame {
        data,
        vlan,
        truncated: snaplen < len,
        gso,
        next: u32_at(hdr, NEXT)? as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a block holding `frames` as the kernel lays them out:
    /// (bytes, status, vlan tci, vlan tpid).
    fn block(frames: &[(&[u8], u32, u16, u16)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let first = 48usize;
        b[NUM_PKTS..NUM_PKTS + 4].copy_from_slice(&(frames.len() as u32).to_ne_bytes());
        b[FIRST_PKT..FIRST_PKT + 4].copy_from_slice(&(first as u32).to_ne_bytes());
        let mut off = first;
        for (i, (data, status, tci, tpid)) in frames.iter().enumerate() {
            let mac = 80usize;
            let step = (mac + data.len()).next_multiple_of(16);
            let next = if i + 1 == frames.len() { 0 } else { step };
            let h = &mut b[off..];
            h[NEXT..NEXT + 4].copy_from_slice(&(next as u32).to_ne_bytes());
            h[SNAPLEN..SNAPLEN + 4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            h[LEN..LEN + 4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            h[STATUS..STATUS + 4].copy_from_slice(&status.to_ne_bytes());
            h[MAC..MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            h[VLAN_TCI..VLAN_TCI + 4].copy_from_slice(&u32::from(*tci).to_ne_bytes());
            h[VLAN_TPID..VLAN_TPID + 2].copy_from_slice(&tpid.to_ne_bytes());
            h[mac..mac + data.len()].copy_from_slice(data);
            off += step;
        }
        b
    }

    fn walk(b: &[u8]) -> Vec<Frame<'_>> {
        let mut cur = first_frame(b);
        let mut out = Vec::new();
        while cur.left > 0 {
            let Some(f) = frame_at(b, cur.offset, false) else {
                break;
            };
            cur = Cursor {
                left: cur.left - 1,
                offset: cur.offset + f.next,
            };
            out.push(f);
        }
        out
    }

    const FRAME: [u8; 20] = [
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5, 1, 2, 3, 4, 5, 6,
    ];

    #[test]
    fn walks_every_frame() {
        let b = block(&[(&FRAME, 1, 0, 0), (&FRAME[..16], 1, 0, 0)]);
        let frames = walk(&b);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data, &FRAME);
        assert_eq!(frames[1].data, &FRAME[..16]);
        assert!(frames.iter().all(|f| f.vlan.is_none() && !f.truncated));
    }

    #[test]
    fn stripped_tags_come_back() {
        let valid = libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        let b = block(&[
            (&FRAME, 1 | valid, 0x6064, 0x88a8),
            (&FRAME, 1 | libc::TP_STATUS_VLAN_VALID, 5, 0),
        ]);
        let frames = walk(&b);
        assert_eq!(frames[0].vlan, Some([0x88, 0xa8, 0x60, 0x64]));
        assert_eq!(frames[1].vlan, Some([0x81, 0x00, 0x00, 0x05]));

        let mut batch = Batch::new();
        assert!(deliver(&mut batch, &frames[0]));
        let got = batch.packets()[0].data();
        assert_eq!(&got[..12], &FRAME[..12]);
        assert_eq!(&got[12..16], &[0x88, 0xa8, 0x60, 0x64]);
        assert_eq!(&got[16..], &FRAME[12..]);
    }

    #[test]
    fn truncated_frames_are_dropped() {
        let mut b = block(&[(&FRAME, 1, 0, 0)]);
        b[48 + LEN..48 + LEN + 4].copy_from_slice(&9000u32.to_ne_bytes());
        let frames = walk(&b);
        assert!(frames[0].truncated);
        let mut batch = Batch::new();
        assert!(!deliver(&mut batch, &frames[0]));
        assert!(batch.is_empty());
    }

    #[test]
    fn offsets_outside_the_block_are_refused() {
        let mut b = block(&[(&FRAME, 1, 0, 0)]);
        b[48 + SNAPLEN..48 + SNAPLEN + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(frame_at(&b, 48, false).is_none());
        assert!(frame_at(&b, 4090, false).is_none());
        assert!(frame_at(&b, usize::MAX - 3, false).is_none());
        assert_eq!(first_frame(&b[..8]), Cursor { left: 0, offset: 0 });
    }

    /// Ethernet, IPv4 and TCP headers in front of `payload` bytes: what a
    /// TSO sender hands over as one frame.
    fn tcp_super_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[..12].copy_from_slice(&FRAME[..12]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + payload) as u16;
        f[14..34].copy_from_slice(&[
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        // Ports, sequence number, data offset 5 words, ACK.
        f[34..38].copy_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        f[38..42].copy_from_slice(&1000u32.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x10;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    #[test]
    fn a_super_frame_behind_a_gso_header_is_cut_across_batches() {
        let frame = tcp_super_frame(3000);
        let mut b = block(&[(&frame, 1, 0, 0)]);
        // The virtio-net header sits right in front of the frame (mac 80).
        b[48 + 80 - VNET_HDR_LEN + 1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
        assert!(frame_at(&b, 48, false).is_none_or(|f| f.gso.is_none()));
        let f = frame_at(&b, 48, true).expect("frame");
        assert_eq!(f.gso.map(|g| g.0), Some(1));

        // MTU 1040: 1,000-byte segments, three of them. A batch with room
        // for two takes two; the rest comes in the next.
        let mut seg = Segmenter::new(f.data, 0, 1040).expect("a TCP super-frame");
        let mut first = Batch::new();
        while first.room() > 2 {
            assert!(first.push_copy(&FRAME));
        }
        assert_eq!(segments(&mut first, &mut seg, &f), (2, false));
        let mut second = Batch::new();
        assert_eq!(segments(&mut second, &mut seg, &f), (1, true));
        let cut: Vec<&[u8]> = first.packets()[first.len() - 2..]
            .iter()
            .chain(second.packets())
            .map(|p| p.data())
            .collect();
        let mut payload = Vec::new();
        for (i, s) in cut.iter().enumerate() {
            assert_eq!(s.len(), 54 + 1000, "segment {i}");
            assert_eq!(pipeline::checksum::l4_checksum_ok(s), Some(true));
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 1000 + 1000 * i as u32);
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, frame[54..]);
    }

    #[test]
    fn a_udp_super_frame_becomes_the_datagrams_its_sender_asked_for() {
        // The TCP test's frame made UDP: header 14 + 20 + 8, 2,500 bytes.
        let mut frame = tcp_super_frame(2500 - 12);
        frame[23] = 17;
        frame[38..40].copy_from_slice(&(8 + 2500u16).to_be_bytes());
        let mut b = block(&[(&frame, 1, 0, 0)]);
        let h = 48 + 80 - VNET_HDR_LEN;
        b[h + 1] = 5; // VIRTIO_NET_HDR_GSO_UDP_L4
        b[h + 4..h + 6].copy_from_slice(&1000u16.to_le_bytes());
        let f = frame_at(&b, 48, true).expect("frame");
        assert_eq!(f.gso, Some((5, 1000)));
        let mut seg = plan_cut(f.data, 5, 1000, 1500).expect("a UDP super-frame");
        let mut batch = Batch::new();
        assert_eq!(segments(&mut batch, &mut seg, &f), (3, true));
        let sizes: Vec<usize> = batch.packets().iter().map(|p| p.len() - 42).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        for p in batch.packets() {
            assert_eq!(pipeline::checksum::l4_checksum_ok(p.data()), Some(true));
        }
    }
}
