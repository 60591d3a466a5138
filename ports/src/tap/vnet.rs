//! TAP queues with the virtio-net header (`IFF_VNET_HDR`), for container
//! ports: the container's stack hands over TCP super-frames of up to 64 KB
//! with a partial checksum, and one `read` moves all of it.
//!
//! Receive: each read is a 10-byte `virtio_net_hdr` and a frame. The
//! header goes to a small array and the frame straight into the next
//! packet buffer; a frame longer than that (a GSO super-frame) runs on into
//! a 64 KB spill area, is made contiguous there, and is cut into
//! MTU-sized segments with complete checksums (`pipeline::gso`), emitted
//! across batches if need be. Partial checksums of frames that need no
//! cutting are finished later by the pipeline (`checksum::complete_partial`),
//! as for veths.
//!
//! Transmit: consecutive segments of one TCP flow in a batch are joined
//! back into a super-frame and written with a GSO header
//! (`coalesce.rs`); every other frame is written with an all-zero header
//! (no GSO, no checksum work asked of the kernel: the switch's frames are
//! complete).

use super::coalesce::Coalescer;
use crate::{RxQueue, TxQueue};
use pipeline::gso::Segmenter;
use pipeline::Batch;
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
const GSO_ECN: u8 = 0x80;

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
}

impl VnetRx {
    pub fn new(fd: Arc<OwnedFd>, mtu: usize) -> VnetRx {
        VnetRx {
            fd,
            spill: vec![0u8; SPILL].into_boxed_slice(),
            pending: None,
            mtu,
            drops: 0,
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

impl RxQueue for VnetRx {
    fn recv(&mut self, batch: &mut Batch) -> usize {
        let mut added = self.drain(batch);
        while self.pending.is_none() {
            let Some(p) = batch.next_slot() else { break };
            let mut hdr = [0u8; HDR_LEN];
            let area = p.rx_area();
            let room = area.len().min(SPILL);
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_mut_ptr().cast(),
                    iov_len: HDR_LEN,
                },
                libc::iovec {
                    iov_base: area.as_mut_ptr().cast(),
                    iov_len: room,
                },
                libc::iovec {
                    iov_base: self.spill[room..].as_mut_ptr().cast(),
                    iov_len: SPILL - room,
                },
            ];
            // SAFETY: the three buffers are valid for writes of their
            // lengths for the duration of the call (`hdr` on the stack, the
            // packet's receive area, the spill area past `room`), and the
            // fd is kept open by `self.fd`.
            let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 3) };
            let Ok(n) = usize::try_from(n) else {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                break;
            };
            let Some(len) = n.checked_sub(HDR_LEN).filter(|&l| l > 0) else {
                break;
            };
            let gso = matches!(hdr[1] & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6);
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
            // than the MTU): made contiguous in the spill area and cut.
            let head: &[u8] = p.rx_area();
            let in_slot = len.min(room);
            self.spill[..in_slot].copy_from_slice(&head[..in_slot]);
            match Segmenter::new(&self.spill[..len], 0, self.mtu) {
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

impl TxQueue for VnetTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        if self.joined.push(frame) {
            return true;
        }
        // Not a continuation: what was joined goes first, in order.
        self.write_joined();
        if self.joined.push(frame) {
            return true;
        }
        write_frame(&self.fd, &[0; HDR_LEN], frame)
    }

    fn flush(&mut self) {
        self.write_joined();
    }
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
