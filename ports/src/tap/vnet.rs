//! TAP queues with the virtio-net header (`IFF_VNET_HDR`), for container
//! ports: the container's stack hands over TCP super-frames of up to 64 KB
//! with a partial checksum, and one `read` moves all of it.
//!
//! Receive: one `read` per frame, of a 10-byte `virtio_net_hdr` and the
//! frame. The header lands in the packet's headroom and the frame where it
//! belongs (a packet's own buffer holds 64 KB; a smaller, lent one runs on
//! into a 64 KB spill area). A super-frame that is not held whole (below)
//! is made contiguous in the spill area and cut (`pipeline::gso`), emitted
//! across batches if need be: TCP into MTU-sized segments with complete
//! checksums, UDP from a `UDP_SEGMENT` sender (USO) into the datagrams it
//! asked for. Partial checksums of frames that need no cutting are
//! finished later by the pipeline (`checksum::complete_partial`), as for
//! veths.
//!
//! Whole: while the port's chain keeps super-frames whole
//! ([`RxQueue::set_whole_gso`]), a super-frame is not cut: it goes through
//! the pipeline as one packet (a packet buffer holds 64 KB) with its MSS in
//! `Packet::gso` and its checksum partial. A TAP output writes it on whole
//! ([`TxQueue::send_gso`]); any other output cuts it.
//!
//! Transmit: consecutive segments of one TCP flow in a batch are joined
//! back into a super-frame and written with a GSO header
//! (`coalesce.rs`); every other frame is written with an all-zero header
//! (no GSO, no checksum work asked of the kernel: the switch's frames are
//! complete).

use super::coalesce::Coalescer;
use crate::{RxQueue, TxQueue};
use pipeline::gso::Segmenter;
use pipeline::{Batch, Packet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// `sizeof(struct virtio_net_hdr)`, the default header size of a tun fd.
pub const HDR_LEN: usize = 10;
/// Largest frame a TSO sender hands over (64 KB of IP plus Ethernet and a
/// tag).
const SPILL: usize = 65_536 + 18;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: datagrams of a `UDP_SEGMENT` sender (USO).
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` is partial.
const NEEDS_CSUM: u8 = 1;
/// The smallest MSS a super-frame is held whole with: a sender asking for
/// less (Linux's own floor is 48) has its frames cut on receipt, to the
/// port's MTU.
const MIN_WHOLE_MSS: u16 = 48;

/// True for a virtio-net `gso_type` of TCP segmentation (IPv4 or IPv6,
/// with or without ECN).
pub(crate) fn is_tcp_gso(gso_type: u8) -> bool {
    matches!(gso_type & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6)
}

/// True for a `gso_type` that the switch cuts: TCP or UDP segmentation.
pub(crate) fn is_gso(gso_type: u8) -> bool {
    is_tcp_gso(gso_type) || gso_type == GSO_UDP_L4
}

/// Plans cutting `frame`, a super-frame whose virtio-net header says
/// `gso_type` and `gso_size`: TCP into segments that fit `mtu`, UDP into
/// the datagrams of `gso_size` bytes its sender asked for (their
/// boundaries are the sender's). `None` when it cannot be cut.
pub(crate) fn plan_cut(frame: &[u8], gso_type: u8, gso_size: u16, mtu: usize) -> Option<Segmenter> {
    if gso_type == GSO_UDP_L4 {
        Segmenter::udp(frame, 0, usize::from(gso_size), mtu)
    } else {
        Segmenter::new(frame, 0, mtu)
    }
}

/// The receive half of a TAP port with the virtio-net header.
pub struct VnetRx {
    fd: Arc<OwnedFd>,
    /// Where a frame too long for a packet buffer lands, made contiguous.
    spill: Box<[u8]>,
    /// A super-frame in `spill` still being cut, and its length.
    pending: Option<(Segmenter, usize)>,
    /// Largest IP packet a segment may be (the device's MTU).
    mtu: usize,
    /// Frames that could not be received whole (cumulative).
    drops: u64,
    /// Hand super-frames that fit a packet over whole.
    whole: bool,
}

impl VnetRx {
    pub fn new(fd: Arc<OwnedFd>, mtu: usize) -> VnetRx {
        VnetRx {
            fd,
            spill: vec![0u8; SPILL].into_boxed_slice(),
            pending: None,
            mtu,
            drops: 0,
            whole: false,
        }
    }

    /// Moves the pending super-frame's next segments into `batch`.
    fn drain(&mut self, batch: &mut Batch) -> usize {
        let mut added = 0;
        while let Some((seg, len)) = &mut self.pending {
            let Some(p) = batch.next_slot() else { break };
            match seg.next_into(&self.spill[..*len], p.rx_area()) {
                Some(n) => {
                    p.set_len(n);
                    batch.commit();
                    added += 1;
                }
                None => self.pending = None,
            }
        }
        added
    }
}

/// Reads one virtio-net header and frame into `area` (the header in its
/// first [`HDR_LEN`] bytes, the frame after it). With one system call and
/// one buffer when `area` holds the largest frame, as a packet's own
/// buffer does; else the rest runs on into `spill` past the frame's room.
/// Returns the bytes read, the header and the frame's room in `area`, or
/// `None` when nothing is left to read (or `area` cannot hold a header).
fn read_one(
    fd: &OwnedFd,
    area: &mut [u8],
    spill: &mut [u8],
) -> Option<(usize, [u8; HDR_LEN], usize)> {
    let room = area.len().checked_sub(HDR_LEN)?.min(SPILL);
    loop {
        let n = if room == SPILL {
            // SAFETY: `area` is valid for writes of `HDR_LEN + SPILL` bytes
            // (`room == SPILL` and `area` is at least `HDR_LEN + room`) for
            // the duration of the call; the fd is open while borrowed.
            unsafe { libc::read(fd.as_raw_fd(), area.as_mut_ptr().cast(), HDR_LEN + SPILL) }
        } else {
            let iov = [
                libc::iovec {
                    iov_base: area.as_mut_ptr().cast(),
                    iov_len: HDR_LEN + room,
                },
                libc::iovec {
                    iov_base: spill[room..].as_mut_ptr().cast(),
                    iov_len: SPILL - room,
                },
            ];
            // SAFETY: both buffers are valid for writes of their lengths for
            // the duration of the call (`area` holds `HDR_LEN + room` bytes,
            // `spill` is `SPILL` long); the fd is open while borrowed.
            unsafe { libc::readv(fd.as_raw_fd(), iov.as_ptr(), 2) }
        };
        match usize::try_from(n) {
            Ok(n) => {
                let mut hdr = [0u8; HDR_LEN];
                let got = n.min(HDR_LEN);
                hdr[..got].copy_from_slice(&area[..got]);
                return Some((n, hdr, room));
            }
            Err(_) if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => return None,
        }
    }
}

impl RxQueue for VnetRx {
    fn recv(&mut self, batch: &mut Batch) -> usize {
        let mut added = self.drain(batch);
        while self.pending.is_none() {
            let Some(p) = batch.next_slot() else { break };
            let Some((n, hdr, room)) =
                read_one(&self.fd, p.rx_area_with_head(HDR_LEN), &mut self.spill)
            else {
                break;
            };
            let Some(len) = n.checked_sub(HDR_LEN).filter(|&l| l > 0) else {
                break;
            };
            let gso = is_gso(hdr[1]);
            let mss = u16::from_le_bytes([hdr[4], hdr[5]]);
            if is_tcp_gso(hdr[1])
                && self.whole
                && len <= room
                && hdr[0] & NEEDS_CSUM != 0
                && mss >= MIN_WHOLE_MSS
            {
                p.set_len(len);
                p.set_gso(mss);
                batch.commit();
                added += 1;
                continue;
            }
            if !gso && len <= room {
                p.set_len(len);
                batch.commit();
                added += 1;
                continue;
            }
            if !gso {
                // Longer than a packet buffer, and not to be cut.
                self.drops += 1;
                continue;
            }
            // A super-frame (even a short one, of two segments, is more
            // than the MTU; UDP ones are never held whole): made contiguous
            // in the spill area and cut.
            let head: &[u8] = p.rx_area();
            let in_slot = len.min(room);
            self.spill[..in_slot].copy_from_slice(&head[..in_slot]);
            match plan_cut(&self.spill[..len], hdr[1], mss, self.mtu) {
                Some(s) => {
                    self.pending = Some((s, len));
                    added += self.drain(batch);
                }
                None => self.drops += 1,
            }
        }
        added
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn recv_is_syscall(&self) -> bool {
        true
    }

    fn kernel_drops(&self) -> u64 {
        self.drops
    }

    fn set_whole_gso(&mut self, on: bool) {
        self.whole = on;
    }
}

/// The transmit half: consecutive TCP segments of one flow are joined into
/// a super-frame ([`Coalescer`]) until `flush`; everything else is written
/// at once behind an all-zero virtio-net header.
pub struct VnetTx {
    fd: Arc<OwnedFd>,
    joined: Coalescer,
}

impl VnetTx {
    pub fn new(fd: Arc<OwnedFd>) -> VnetTx {
        VnetTx {
            fd,
            joined: Coalescer::default(),
        }
    }

    /// Writes what was joined so far.
    fn write_joined(&mut self) -> bool {
        if self.joined.is_empty() {
            return true;
        }
        let out = self.joined.frame();
        write_frame(&self.fd, &out.hdr, out.frame)
    }
}

impl VnetTx {
    /// Joins `frame` to the super-frame being built, or starts a new one
    /// after writing what was joined (in order). False for a frame that
    /// joins nothing (not a TCP segment), to be written on its own.
    fn join(&mut self, frame: &[u8]) -> bool {
        if self.joined.push(frame) {
            return true;
        }
        self.write_joined();
        self.joined.push(frame)
    }
}

impl TxQueue for VnetTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        self.join(frame) || write_frame(&self.fd, &[0; HDR_LEN], frame)
    }

    /// As `send`, with one buffer for the `write`: the all-zero header
    /// goes into the headroom in front of the frame.
    fn send_packet(&mut self, pkt: &mut Packet) -> bool {
        if self.join(pkt.data()) {
            return true;
        }
        let Some(head) = pkt.push_front(HDR_LEN) else {
            return write_frame(&self.fd, &[0; HDR_LEN], pkt.data());
        };
        head.fill(0);
        let f = pkt.data();
        // SAFETY: `f` is valid for reads of its length for the duration of
        // the call; the fd is kept open by `self.fd`.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), f.as_ptr().cast(), f.len()) };
        let ok = usize::try_from(n).is_ok_and(|n| n == f.len());
        pkt.pull_front(HDR_LEN);
        ok
    }

    fn takes_gso(&self) -> bool {
        true
    }

    fn send_gso(&mut self, frame: &[u8], mss: u16) -> bool {
        let Some(hdr) = gso_header(frame, mss) else {
            return false;
        };
        // In order: what was joined so far goes first.
        self.write_joined();
        write_frame(&self.fd, &hdr, frame)
    }

    fn flush(&mut self) {
        self.write_joined();
    }
}

/// The virtio-net header that hands `frame`, a TCP super-frame with a
/// partial checksum, to the kernel to cut into segments of `mss` bytes.
/// `None` when it is not TCP over IPv4 or IPv6.
pub(super) fn gso_header(frame: &[u8], mss: u16) -> Option<[u8; HDR_LEN]> {
    let l4 = pipeline::parse::locate_l4(frame)?;
    if l4.proto != pipeline::wire::ip_proto::TCP || l4.len < 20 {
        return None;
    }
    let thl = usize::from(frame[l4.off + 12] >> 4) * 4;
    if thl < 20 || thl > l4.len {
        return None;
    }
    let mut gso_type = match pipeline::parse::l3_offset(frame)?.1 {
        pipeline::wire::eth::TYPE_IPV4 => GSO_TCPV4,
        _ => GSO_TCPV6,
    };
    // CWR: the sender's stack asked for ECN segmentation (only the first
    // segment keeps the flag).
    if frame[l4.off + 13] & 0x80 != 0 {
        gso_type |= GSO_ECN;
    }
    let hdr_len = u16::try_from(l4.off + thl).ok()?;
    let csum_start = u16::try_from(l4.off).ok()?;
    let mut h = [0u8; HDR_LEN];
    h[0] = NEEDS_CSUM;
    h[1] = gso_type;
    h[2..4].copy_from_slice(&hdr_len.to_le_bytes());
    h[4..6].copy_from_slice(&mss.to_le_bytes());
    h[6..8].copy_from_slice(&csum_start.to_le_bytes());
    h[8..10].copy_from_slice(&16u16.to_le_bytes());
    Some(h)
}

/// Writes one frame behind its virtio-net header (a TAP device, or a
/// packet socket with `PACKET_VNET_HDR`).
pub(crate) fn write_frame(fd: &OwnedFd, hdr: &[u8; HDR_LEN], frame: &[u8]) -> bool {
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: HDR_LEN,
        },
        libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        },
    ];
    // SAFETY: both buffers are valid for reads of their lengths for the
    // duration of the call (writev does not write through them); the fd is
    // open for as long as `fd` is borrowed.
    let n = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) };
    usize::try_from(n).is_ok_and(|n| n == HDR_LEN + frame.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// Ethernet + IPv4 + TCP (with `flags`) + `n` bytes of payload.
    fn tcp4(flags: u8, n: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + n];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + n) as u16).to_be_bytes());
        f[23] = 6;
        f[14 + 20 + 12] = 0x50;
        f[14 + 20 + 13] = flags;
        f
    }

    #[test]
    fn a_read_lands_in_one_buffer_or_runs_on_into_the_spill_area() {
        let message: Vec<u8> = (0..HDR_LEN + 100).map(|i| i as u8).collect();
        let mut spill = vec![0u8; SPILL];
        for area_len in [HDR_LEN + SPILL, HDR_LEN + 40] {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe() writes.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: pipe() just made both fds, and nothing else owns them.
            let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            // SAFETY: `message` is valid for reads of its length.
            let n = unsafe { libc::write(w.as_raw_fd(), message.as_ptr().cast(), message.len()) };
            assert_eq!(n, message.len() as isize);
            let mut area = vec![0u8; area_len];
            let (n, hdr, room) = read_one(&r, &mut area, &mut spill).expect("a read");
            assert_eq!((n, &hdr[..]), (message.len(), &message[..HDR_LEN]));
            assert_eq!(room, (area_len - HDR_LEN).min(SPILL));
            let in_area = 100.min(room);
            assert_eq!(
                &area[HDR_LEN..HDR_LEN + in_area],
                &message[HDR_LEN..HDR_LEN + in_area]
            );
            assert_eq!(&spill[room..100.max(room)], &message[HDR_LEN + in_area..]);
        }
    }

    #[test]
    fn a_super_frame_gets_the_header_that_asks_the_kernel_to_cut_it() {
        let h = gso_header(&tcp4(0x10, 60_000), 1448).expect("TCP over IPv4");
        assert_eq!(h[0], NEEDS_CSUM);
        assert_eq!(h[1], GSO_TCPV4);
        assert_eq!(u16::from_le_bytes([h[2], h[3]]), 54, "headers end");
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1448, "MSS");
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 34, "checksum start");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]), 16, "checksum offset");
        let ecn = gso_header(&tcp4(0x90, 3000), 1448).expect("TCP");
        assert_eq!(ecn[1], GSO_TCPV4 | GSO_ECN, "CWR asks for ECN");
        let mut udp = tcp4(0x10, 3000);
        udp[23] = 17;
        assert!(gso_header(&udp, 1448).is_none());
        let mut long = tcp4(0x10, 0);
        long[14 + 20 + 12] = 0xf0;
        assert!(
            gso_header(&long, 1448).is_none(),
            "a TCP header past the end"
        );
    }
}
