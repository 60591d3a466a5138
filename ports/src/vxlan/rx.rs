//! The receive half: a UDP socket whose datagrams are read, one
//! `recvmmsg` per batch, into buffers this queue owns and lends to the
//! batch (as AF_XDP lends UMEM frames), so nothing is copied.
//!
//! Buffer protocol: [`Frames`] holds [`RX_FRAMES`] packet buffers. A
//! buffer on the free list is the queue's; `recv` reads datagrams into free
//! buffers, takes the ones it lends off the list, and `release` puts them
//! back once the batch has been forwarded. Each datagram lands after
//! [`HEADROOM`] bytes, as in a packet's own buffer, so the pipeline can
//! push headers in front. The batch holds an `Arc` of the buffers while it
//! holds any of them, so they outlive a queue dropped first.

use super::device_name;
use super::sys::{self, Datagram, RecvMsgs, RECV_MAX};
use crate::{PortError, RxQueue};
use pipeline::gso::Segmenter;
use pipeline::{vxlan, Batch, Buf, Lender, BATCH_SIZE, BUF_SIZE, HEADROOM};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

/// Buffers per queue: one batch's worth, which is all a queue can have lent
/// at once when `release` follows every forwarded batch.
const RX_FRAMES: usize = BATCH_SIZE;
/// Receive buffer asked of the kernel.
const RCVBUF: libc::c_int = 4 << 20;
/// Bytes of a datagram that fit a packet buffer.
const AREA: usize = BUF_SIZE - HEADROOM;
/// Per message: room to make a datagram contiguous (its first [`AREA`]
/// bytes copied in front) and where the kernel writes what does not fit
/// the packet buffer, up to a 64 KB GSO datagram.
const SPILL: usize = AREA + 65_536;
/// The IP packet size segments of a TCP super-frame get when nothing else
/// is known: a 1500-byte underlay less the VXLAN encapsulation.
pub const DEFAULT_SEGMENT_MTU: usize = 1500 - vxlan::OVERHEAD;

/// A datagram received but not yet in a batch, kept in its spill slot.
#[derive(Clone, Copy)]
struct Pending {
    slot: usize,
    len: usize,
    from: u32,
    /// A TCP super-frame still being cut into segments; `None` for a
    /// datagram that goes into the batch whole.
    seg: Option<Segmenter>,
}

/// Binds a non-blocking UDP socket to `local` (None = 0.0.0.0) and `port`
/// (0 = any, for tests) with a 4 MiB receive buffer (SO_RCVBUFFORCE, or
/// SO_RCVBUF up to `net.core.rmem_max` without CAP_NET_ADMIN). Errors name
/// the device `vxlan_sys_<port>` and say what to do about a port in use or
/// a local address this host does not have.
pub fn open_rx(local: Option<Ipv4Addr>, port: u16) -> Result<UnderlayRx, PortError> {
    let dev = device_name(port);
    let addr = SocketAddrV4::new(local.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    // std binds without SO_REUSEADDR/SO_REUSEPORT, so a port someone else
    // has is refused rather than shared.
    let sock = UdpSocket::bind(addr).map_err(|e| {
        let what = match e.raw_os_error() {
            Some(libc::EADDRINUSE) => format!(
                "UDP port {port} is already in use (a kernel vxlan device or another program has it; \
                 `ss -ulpn 'sport = :{port}'` shows which)"
            ),
            Some(libc::EADDRNOTAVAIL) => format!(
                "{} is not an address of this host (set the tunnel's local address to one of its \
                 interfaces' addresses, or leave it unset)",
                addr.ip()
            ),
            _ => format!("binding the UDP socket to {addr}"),
        };
        PortError::new(&dev, what, e)
    })?;
    sock.set_nonblocking(true)
        .map_err(|e| PortError::new(&dev, "making the UDP socket non-blocking", e))?;
    let bound = sock
        .local_addr()
        .map_err(|e| PortError::new(&dev, "reading the bound UDP port", e))?;
    let fd = OwnedFd::from(sock);
    if sys::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF).is_err() {
        sys::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF)
            .map_err(|e| PortError::new(&dev, "setting the receive buffer size (SO_RCVBUF)", e))?;
    }
    // Optional: without it only truncated datagrams count as drops.
    let _ = sys::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1);

    let frames = Arc::new(Frames::new(RX_FRAMES));
    let lender: Lender = frames.clone();
    let mut free = [0u8; RX_FRAMES];
    for (i, f) in free.iter_mut().enumerate() {
        *f = i as u8; // RX_FRAMES <= 256
    }
    Ok(UnderlayRx {
        fd,
        port: bound.port(),
        frames,
        lender,
        free,
        nfree: RX_FRAMES,
        msgs: RecvMsgs::new(),
        truncated: 0,
        spill: vec![0u8; SPILL * RECV_MAX].into_boxed_slice(),
        pending: [None; RECV_MAX],
        npending: 0,
        first_pending: 0,
        segment_mtu: DEFAULT_SEGMENT_MTU,
    })
}

/// Receive half of a VXLAN endpoint: owned by one poll thread.
pub struct UnderlayRx {
    fd: OwnedFd,
    port: u16,
    frames: Arc<Frames>,
    /// `frames` again, as the handle batches keep.
    lender: Lender,
    /// Indices of the buffers the queue holds, `free[..nfree]`.
    free: [u8; RX_FRAMES],
    nfree: usize,
    msgs: RecvMsgs,
    /// Datagrams dropped because the kernel cut them short, or too big for
    /// a packet and not a TCP super-frame that can be segmented.
    truncated: u64,
    /// [`RECV_MAX`] areas of [`SPILL`] bytes.
    spill: Box<[u8]>,
    /// Datagrams waiting for room in a batch, in arrival order:
    /// `pending[first_pending..npending]`.
    pending: [Option<Pending>; RECV_MAX],
    npending: usize,
    first_pending: usize,
    /// Largest IP packet a segment of a super-frame may be.
    segment_mtu: usize,
}

impl UnderlayRx {
    /// The UDP port the socket is bound to (the one asked for, or the one
    /// the kernel chose for port 0).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// The longest datagram that goes into a batch as it is: a VXLAN
    /// header and a frame (with one VLAN tag) of at most `segment_mtu`.
    fn whole_max(&self) -> usize {
        vxlan::HEADER_LEN + 18 + self.segment_mtu
    }

    /// Sets the largest IP packet that segments of a TCP super-frame get
    /// (the tunnels' inner MTU).
    pub fn with_segment_mtu(mut self, mtu: usize) -> Self {
        self.segment_mtu = mtu;
        self
    }

    /// Moves waiting datagrams (whole, or a super-frame's segments) into
    /// `batch` while it has room; returns how many packets it added.
    fn drain(&mut self, batch: &mut Batch) -> usize {
        let mut added = 0;
        while self.first_pending < self.npending {
            let Some(p) = self.pending[self.first_pending].as_mut() else {
                self.first_pending += 1;
                continue;
            };
            let data = &self.spill[p.slot * SPILL..p.slot * SPILL + p.len];
            let more = match &mut p.seg {
                None => {
                    if !batch.push_copy(data) {
                        return added;
                    }
                    set_remote(batch, p.from);
                    added += 1;
                    false
                }
                Some(seg) => {
                    let Some(slot) = batch.next_slot() else {
                        return added;
                    };
                    match seg.next_into(data, slot.rx_area()) {
                        Some(n) => {
                            slot.set_len(n);
                            slot.meta.tun_remote = p.from;
                            batch.commit();
                            added += 1;
                            true
                        }
                        None => false,
                    }
                }
            };
            if !more {
                self.pending[self.first_pending] = None;
                self.first_pending += 1;
            }
        }
        self.npending = 0;
        self.first_pending = 0;
        added
    }

    /// Keeps datagram `k` (`len` bytes, the first of them in `area`, the
    /// rest in its spill slot) to go into a batch later, in order.
    fn keep(&mut self, k: usize, area: &[u8], d: &Datagram) {
        let at = k * SPILL;
        let head = d.len.min(AREA);
        let whole_max = self.whole_max();
        let slot = &mut self.spill[at..at + SPILL];
        // The kernel wrote bytes past the packet buffer at AREA onwards:
        // putting the first AREA bytes in front makes the datagram whole.
        if d.len > AREA {
            slot[..AREA].copy_from_slice(&area[..AREA]);
        } else {
            slot[..head].copy_from_slice(&area[..head]);
        }
        let seg = if d.len > whole_max {
            match Segmenter::new(&slot[..d.len], vxlan::HEADER_LEN, self.segment_mtu) {
                Some(s) if !s.fits() => Some(s),
                // Not TCP: whole if a packet holds it (a port it does not
                // fit counts it), else dropped here.
                _ if d.len <= pipeline::MAX_FRAME => None,
                _ => {
                    self.truncated += 1;
                    return;
                }
            }
        } else {
            None
        };
        self.pending[self.npending] = Some(Pending {
            slot: k,
            len: d.len,
            from: d.from,
            seg,
        });
        self.npending += 1;
    }
}

fn set_remote(batch: &mut Batch, from: u32) {
    if let Some(p) = batch.packets_mut().last_mut() {
        p.meta.tun_remote = from;
    }
}

impl RxQueue for UnderlayRx {
    /// Receives up to `batch.room()` datagrams with one `recvmmsg`. Each
    /// packet is a UDP payload (VXLAN header + inner frame) with the
    /// sender's address in `meta.tun_remote`. The packets' buffers are the
    /// queue's: call `release` after forwarding the batch, or the queue
    /// runs out of buffers and receives nothing.
    fn recv(&mut self, batch: &mut Batch) -> usize {
        // What an earlier call could not fit goes first, and nothing new is
        // read until it has all gone (its spill slots are in use).
        let drained = self.drain(batch);
        if self.npending > 0 {
            return drained;
        }
        let want = batch.room().min(self.nfree).min(RECV_MAX);
        if want == 0 {
            return drained;
        }
        // The top `want` free buffers, receive area after the headroom.
        let first = self.nfree - want;
        let mut areas: [&mut [u8]; RECV_MAX] = Default::default();
        for (area, &i) in areas.iter_mut().zip(&self.free[first..self.nfree]) {
            let Some(f) = self.frames.get(usize::from(i)) else {
                return 0; // free holds only indices below RX_FRAMES
            };
            // SAFETY: buffer `i` is on the free list, so no packet holds it
            // and no other slice of it exists; `self.frames` keeps it
            // allocated. The slice lies inside the buffer and is used only
            // until this call lends the buffer or puts it back.
            *area = unsafe {
                std::slice::from_raw_parts_mut(
                    f.as_ptr().cast::<u8>().add(HEADROOM),
                    BUF_SIZE - HEADROOM,
                )
            };
        }
        let mut spill: [&mut [u8]; RECV_MAX] = Default::default();
        for (s, chunk) in spill.iter_mut().zip(self.spill.chunks_exact_mut(SPILL)) {
            *s = &mut chunk[AREA..];
        }
        let mut got = [Datagram::default(); RECV_MAX];
        // EAGAIN (nothing waiting) or anything else: nothing this time.
        let n = self
            .msgs
            .recv(
                self.fd.as_fd(),
                &mut areas[..want],
                &mut spill[..want],
                &mut got,
            )
            .unwrap_or(0);
        if n == 0 {
            return drained;
        }

        let mut added = drained;
        let mut keep = first;
        for (k, area) in areas.iter().enumerate().take(want) {
            let i = self.free[first + k];
            let mut lent = false;
            if let (Some(d), Some(f)) = (got[..n].get(k), self.frames.get(usize::from(i))) {
                if d.truncated {
                    self.truncated += 1;
                } else if d.len > self.whole_max() || self.npending > 0 {
                    // Bigger than a segment may be (a GSO super-frame, which
                    // may or may not fit a packet buffer), or behind one:
                    // kept, in order, for the batch.
                    self.keep(k, area, d);
                } else {
                    // SAFETY: the kernel has finished writing the buffer,
                    // which leaves the free list here when lent (it is not
                    // put back below), so the batch's packet is its only
                    // user until `release` takes it back; `self.lender`
                    // keeps it allocated meanwhile.
                    lent = unsafe { batch.push_lent(f, HEADROOM, d.len, &self.lender) };
                    // The slot still holds a buffer nobody took back: copy.
                    let delivered = lent || batch.push_copy(&area[..d.len]);
                    if delivered {
                        if let Some(p) = batch.packets_mut().last_mut() {
                            p.meta.tun_remote = d.from;
                        }
                        added += 1;
                    }
                }
            }
            if !lent {
                self.free[keep] = i;
                keep += 1;
            }
        }
        self.nfree = keep;
        added + self.drain(batch)
    }

    fn release(&mut self, batch: &mut Batch) {
        if !batch.has_lent() {
            return;
        }
        let (frames, free, nfree) = (&self.frames, &mut self.free, &mut self.nfree);
        batch.reclaim(|f| match frames.index_of(f) {
            Some(i) if *nfree < RX_FRAMES => {
                free[*nfree] = i as u8; // below RX_FRAMES <= 256
                *nfree += 1;
                true
            }
            _ => false,
        });
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn recv_is_syscall(&self) -> bool {
        true
    }

    /// Truncated datagrams plus the socket's own drops (receive buffer
    /// full), as last reported with a received datagram.
    fn kernel_drops(&self) -> u64 {
        self.truncated + u64::from(self.msgs.socket_drops())
    }
}

/// The packet buffers of one receive queue, allocated once.
struct Frames {
    /// `count` buffers from `Box::into_raw`, freed on drop.
    base: NonNull<Buf>,
    count: usize,
}

// SAFETY: `Frames` owns its allocation outright, and no thread identity is
// tied to it. It is shared (`Sync`) only as the lender handle that keeps
// the memory alive; the bytes are reached through the free-list protocol
// above, never through `&Frames`.
unsafe impl Send for Frames {}
// SAFETY: as above.
unsafe impl Sync for Frames {}

impl Frames {
    fn new(count: usize) -> Self {
        let bufs: Box<[Buf]> = vec![[0u8; BUF_SIZE]; count].into_boxed_slice();
        Frames {
            base: NonNull::from(Box::leak(bufs)).cast::<Buf>(),
            count,
        }
    }

    /// Buffer `i`.
    fn get(&self, i: usize) -> Option<NonNull<Buf>> {
        if i >= self.count {
            return None;
        }
        // SAFETY: `i < count`, so the result lies inside the allocation.
        Some(unsafe { self.base.add(i) })
    }

    /// The index of `f` when it is one of these buffers.
    fn index_of(&self, f: NonNull<Buf>) -> Option<usize> {
        let off = (f.as_ptr() as usize).checked_sub(self.base.as_ptr() as usize)?;
        let i = off / BUF_SIZE;
        (off % BUF_SIZE == 0 && i < self.count).then_some(i)
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        let all = std::ptr::slice_from_raw_parts_mut(self.base.as_ptr(), self.count);
        // SAFETY: `base` and `count` describe the boxed slice leaked in
        // `new`, freed only here; the batches that held buffers held an
        // `Arc` of this, so none is in use any more.
        drop(unsafe { Box::from_raw(all) });
    }
}
