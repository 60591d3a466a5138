//! The data path: the receive and transmit halves of an AF_XDP port.
//!
//! Design (why the halves may run on different threads): the TX half uses
//! the queue-0 socket's TX and completion rings, the queue-0 RX half the
//! same socket's fill and RX rings. Every ring has exactly one user-space
//! user, every frame one owner at a time (below), and the only thing the
//! halves share is the socket fd, on which concurrent
//! `sendto`/`recvfrom`/`poll` are fine. Frames change hands only inside
//! `send_packet`, under the TX half's lock, between that half and the batch
//! of the poll thread holding the lock.
//!
//! Frame ownership: every frame has one owner at a time. An RX frame is on
//! the fill ring, in the kernel, on the RX ring, or lent to a packet of the
//! poll thread's batch: `recv` makes each received frame a packet (no copy;
//! the switch works on the frame where the kernel wrote it), and `release`,
//! called once the batch has been forwarded, puts the frames back on the
//! fill ring. A TX frame is on the free list, on the TX ring, in the kernel,
//! or on the completion ring; `send`/`flush` move it back to the free list.
//!
//! Zero-copy transmit (sockets of one pool region, whose RX and TX areas
//! are the whole region): `send_packet` puts the packet's lent frame itself
//! on the TX ring and lends the packet a frame from the free list in
//! exchange, which the receiving queue then puts on its fill ring. Each
//! queue keeps its number of frames; the frames themselves travel.

use super::bpf::XdpAttachment;
use super::pool::Held;
use super::ring::{ConsRing, ProdRing};
use super::socket::{XskSocket, TX_FRAMES};
use super::umem::{frame_base, FrameArea, FRAME_SIZE};
use crate::{RxQueue, TxQueue};
use pipeline::{Batch, Lender, Packet, HEADROOM};
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

/// Kicks one `flush` may make while the kernel keeps consuming; each moves
/// up to the socket's TX budget (128, or 32 before Linux 6.17).
const MAX_KICKS_PER_FLUSH: u32 = 8;
/// Descriptors of one multi-buffer frame at most (the kernel's limit is
/// MAX_SKB_FRAGS + 1; a 9,000-byte frame takes 3).
const MAX_FRAGS: usize = 18;

/// Receive half of one queue.
pub(super) struct AfXdpRx {
    // Rings first: their mappings must go before the socket is closed.
    fill: ProdRing<u64>,
    rx: ConsRing<libc::xdp_desc>,
    frames: FrameArea,
    /// Keeps `frames` mapped while packets are views of them.
    lender: Lender,
    /// Frames on the fill ring, in the kernel or on the RX ring (not those
    /// lent to packets).
    held: Held,
    need_wakeup: bool,
    /// Multi-buffer frames that could not be taken (longer than a packet,
    /// or a chain the ring never completed), counted with the kernel's drops.
    bad_chains: u64,
    sock: Arc<XskSocket>,
    _attachment: Arc<XdpAttachment>,
}

impl AfXdpRx {
    /// `on_fill`: the frames the socket put on the fill ring.
    pub(super) fn new(
        fill: ProdRing<u64>,
        rx: ConsRing<libc::xdp_desc>,
        frames: FrameArea,
        on_fill: &[u64],
        need_wakeup: bool,
        sock: Arc<XskSocket>,
        attachment: Arc<XdpAttachment>,
    ) -> AfXdpRx {
        let mut held = Held::new(frames.umem_len());
        on_fill.iter().for_each(|&a| held.insert(a));
        AfXdpRx {
            fill,
            rx,
            lender: frames.lender(),
            frames,
            held,
            need_wakeup,
            bad_chains: 0,
            sock,
            _attachment: attachment,
        }
    }
}

impl AfXdpRx {
    /// The end (one past the last descriptor) of the multi-buffer frame
    /// starting at RX ring entry `first`, if its last descriptor is among
    /// the `n` available.
    fn chain_end(&self, first: u32, n: u32) -> Option<u32> {
        (first..n)
            .find(|&j| {
                self.rx
                    .get(j)
                    .is_some_and(|d| d.options & libc::XDP_PKT_CONTD == 0)
            })
            .map(|j| j + 1)
    }

    /// Copies the frame of RX ring entries `from..to` (a multi-buffer frame)
    /// into the next slot of `batch` and puts its frames back on the fill
    /// ring. Returns whether the slot was committed.
    fn gather(&mut self, from: u32, to: u32, batch: &mut Batch) -> bool {
        let (rx, frames) = (&self.rx, &self.frames);
        let copied = batch.next_slot().and_then(|p| {
            let area = p.rx_area();
            let mut at = 0;
            for i in from..to {
                let d = rx.get(i)?;
                // SAFETY: the descriptor came off the RX ring, so the kernel
                // has handed the frame to user space; it goes back on the
                // fill ring only after this copy.
                let bytes = unsafe { frames.read(d.addr, d.len) }?;
                area.get_mut(at..at + bytes.len())?.copy_from_slice(bytes);
                at += bytes.len();
            }
            p.set_len(at);
            Some(())
        });
        self.recycle(from, to);
        if copied.is_none() {
            self.bad_chains += 1;
            return false;
        }
        batch.commit();
        true
    }

    /// Puts the frames of RX ring entries `from..to` back on the fill ring
    /// (they stay in `held`: the kernel's again).
    fn recycle(&mut self, from: u32, to: u32) {
        for i in from..to {
            let Some(d) = self.rx.get(i) else { continue };
            let base = frame_base(d.addr);
            if self.frames.owns_frame(base) {
                self.fill.push(base);
            }
        }
    }

    /// Submits frames pushed on the fill ring, waking the kernel if asked.
    fn submit_fill(&mut self) {
        self.fill.submit();
        if self.need_wakeup && self.fill.needs_wakeup() {
            // Copy mode never asks; a zero-copy driver would. Errors here
            // only delay refilling until the next call.
            let _ = self.sock.kick_rx();
        }
    }
}

impl RxQueue for AfXdpRx {
    fn recv(&mut self, batch: &mut Batch) -> usize {
        let room = u32::try_from(batch.room()).unwrap_or(u32::MAX);
        if room == 0 {
            return 0;
        }
        // A frame may take several descriptors: look that far past the room.
        let want = room.saturating_add(MAX_FRAGS as u32);
        let n = self.rx.available(want);
        if n == 0 {
            return 0;
        }
        let mut got: u32 = 0;
        let mut refill = false;
        let mut i = 0;
        while i < n && got < room {
            let Some(d) = self.rx.get(i) else { break };
            if d.options & libc::XDP_PKT_CONTD != 0 {
                match self.chain_end(i, n) {
                    Some(end) => {
                        got += u32::from(self.gather(i, end, batch));
                        i = end;
                    }
                    // The rest of the frame is not published yet: next time.
                    None if i > 0 || n < want => break,
                    // Longer than any frame the kernel sends: drop it.
                    None => {
                        self.recycle(i, n);
                        self.bad_chains += 1;
                        i = n;
                    }
                }
                refill = true;
                continue;
            }
            i += 1;
            let base = frame_base(d.addr);
            let Some(frame) = self.frames.frame_ptr(base) else {
                continue; // not one of ours: the kernel would not do that
            };
            self.held.remove(base);
            let start = (d.addr - base) as usize;
            // The kernel leaves XDP_PACKET_HEADROOM (256) in front of the
            // frame, room for the headers the pipeline may push.
            let lent = start >= HEADROOM && {
                // SAFETY: the descriptor came off the RX ring, so the kernel
                // has handed this frame to user space and will not touch it
                // until it is back on the fill ring, which only `release`
                // (or the fallback below) does. `self.lender` keeps the
                // mapping alive while the batch holds the frame.
                unsafe { batch.push_lent(frame, start, d.len as usize, &self.lender) }
            };
            if lent {
                got += 1;
                continue;
            }
            // Fallback: copy it out and give the frame straight back.
            // SAFETY: as above; the frame goes back to the fill ring only
            // after the copy.
            if let Some(bytes) = unsafe { self.frames.read(d.addr, d.len) } {
                if batch.push_copy(bytes) {
                    got += 1;
                }
            }
            self.fill.push(base);
            self.held.insert(base);
            refill = true;
        }
        self.rx.release(i);
        if refill {
            self.submit_fill();
        }
        got as usize
    }

    fn release(&mut self, batch: &mut Batch) {
        if !batch.has_lent() {
            return;
        }
        let (frames, fill, held) = (&self.frames, &mut self.fill, &mut self.held);
        let mut any = false;
        batch.reclaim(|frame| match frames.frame_base_of(frame) {
            // The fill ring has a slot for every RX frame, so there is
            // always room for the frames this queue lent.
            Some(base) => {
                fill.push(base);
                held.insert(base);
                any = true;
                true
            }
            None => false,
        });
        if any {
            self.submit_fill();
        }
    }

    fn kernel_drops(&self) -> u64 {
        self.sock.rx_drops() + self.bad_chains
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.sock.raw_fd())
    }
}

/// Transmit half of a port (the queue-0 socket).
pub(super) struct AfXdpTx {
    tx: ProdRing<libc::xdp_desc>,
    comp: ConsRing<u64>,
    frames: FrameArea,
    /// TX frames user space owns; never grows past its initial capacity.
    free: Vec<u64>,
    /// The last kick failed for good (device down, socket unbound) or made
    /// no progress: report nothing pending until the next `send`, so a poll
    /// loop does not spin on a ring the kernel will not drain.
    stalled: bool,
    /// The socket takes a frame as several descriptors (`XDP_USE_SG`).
    multi_buffer: bool,
    sock: Arc<XskSocket>,
    _attachment: Arc<XdpAttachment>,
}

impl AfXdpTx {
    pub(super) fn new(
        tx: ProdRing<libc::xdp_desc>,
        comp: ConsRing<u64>,
        frames: FrameArea,
        addrs: impl Iterator<Item = u64>,
        multi_buffer: bool,
        sock: Arc<XskSocket>,
        attachment: Arc<XdpAttachment>,
    ) -> AfXdpTx {
        let mut free = Vec::with_capacity(TX_FRAMES as usize);
        free.extend(addrs.take(TX_FRAMES as usize));
        AfXdpTx {
            tx,
            comp,
            frames,
            free,
            stalled: false,
            multi_buffer,
            sock,
            _attachment: attachment,
        }
    }

    /// Moves completed frames back to the free list.
    fn reap(&mut self) {
        let n = self.comp.available(TX_FRAMES);
        for i in 0..n {
            let Some(addr) = self.comp.get(i) else { break };
            let base = frame_base(addr);
            if self.frames.owns_frame(base) && self.free.len() < self.free.capacity() {
                self.free.push(base);
            }
        }
        self.comp.release(n);
    }
}

/// Kick errors that mean "try again", not "this socket cannot send".
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENOMEM | libc::EINTR)
    )
}

impl AfXdpTx {
    /// A free TX frame with a slot for it on the TX ring, reaping
    /// completions if the free list is empty.
    fn take_free(&mut self) -> Option<u64> {
        if self.free.is_empty() {
            self.reap();
        }
        if self.tx.free(1) == 0 {
            return None;
        }
        self.free.pop()
    }

    /// Queues a frame larger than one UMEM frame as a chain of
    /// descriptors, every one but the last marked `XDP_PKT_CONTD`.
    fn send_multi(&mut self, frame: &[u8]) -> bool {
        let chunk = FRAME_SIZE as usize;
        let k = frame.len().div_ceil(chunk);
        if !self.multi_buffer || k > MAX_FRAGS {
            return false;
        }
        if self.free.len() < k {
            self.reap();
        }
        if self.free.len() < k || (self.tx.free(k as u32) as usize) < k {
            return false;
        }
        for (i, piece) in frame.chunks(chunk).enumerate() {
            let Some(addr) = self.free.pop() else {
                return false; // checked above: cannot happen
            };
            // SAFETY: as in `send`: a frame off the free list is user
            // space's until it is pushed on the TX ring just below.
            let written = unsafe { self.frames.write(addr, piece) };
            let options = if i + 1 < k { libc::XDP_PKT_CONTD } else { 0 };
            // Both succeed: the piece fits a frame and the ring has room for
            // all k; a failure could only leave a broken chain, so stop hard.
            if !written || !self.push_desc(addr, piece.len(), options) {
                self.free.push(addr);
                return false;
            }
        }
        true
    }

    /// Puts `len` bytes at UMEM offset `addr` on the TX ring (a slot was
    /// checked by `take_free`).
    fn push_desc(&mut self, addr: u64, len: usize, options: u32) -> bool {
        let desc = libc::xdp_desc {
            addr,
            len: len as u32,
            options,
        };
        if !self.tx.push(desc) {
            return false;
        }
        self.stalled = false;
        true
    }
}

impl TxQueue for AfXdpTx {
    fn send_packet(&mut self, pkt: &mut Packet) -> bool {
        // Zero-copy only for a frame of this socket's region.
        let Some(base) = pkt.lent().and_then(|f| self.frames.frame_base_of(f)) else {
            return self.send(pkt.data());
        };
        let (addr, len) = (base + pkt.headroom() as u64, pkt.len());
        if len == 0 || len > FRAME_SIZE as usize {
            return false;
        }
        let Some(spare) = self.take_free() else {
            return false;
        };
        let Some(spare_ptr) = self.frames.frame_ptr(spare) else {
            self.free.push(spare);
            return false;
        };
        // SAFETY: `spare` came off the free list, so user space owns it and
        // nothing else uses it; it lies in this socket's region, the same
        // mapping as the frame it replaces (`frame_base_of` found that one
        // here), which the batch's lender handle keeps alive.
        let Some(taken) = (unsafe { pkt.swap_lent(spare_ptr) }) else {
            self.free.push(spare);
            return false;
        };
        debug_assert_eq!(self.frames.frame_base_of(taken), Some(base));
        if self.push_desc(addr, len, 0) {
            return true;
        }
        // The ring had a slot a moment ago; should it not, the frame that
        // was to be sent becomes a free frame and the packet keeps `spare`.
        self.free.push(base);
        false
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        if frame.len() > FRAME_SIZE as usize {
            return self.send_multi(frame);
        }
        if frame.is_empty() {
            return false;
        }
        let Some(addr) = self.take_free() else {
            return false;
        };
        // SAFETY: frames on the free list belong to user space: the kernel
        // returned them on the completion ring (or never had them), and they
        // are not on the TX ring until the `push` below.
        if !unsafe { self.frames.write(addr, frame) } || !self.push_desc(addr, frame.len(), 0) {
            self.free.push(addr);
            return false;
        }
        true
    }

    fn send_parts(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > FRAME_SIZE as usize {
            return crate::gather(parts, |frame| self.send_multi(frame));
        }
        if len == 0 {
            return false;
        }
        let Some(addr) = self.take_free() else {
            return false;
        };
        // SAFETY: as in `send`: a frame off the free list is user space's.
        if !unsafe { self.frames.write_parts(addr, parts) } || !self.push_desc(addr, len, 0) {
            self.free.push(addr);
            return false;
        }
        true
    }

    fn flush_is_syscall(&self) -> bool {
        true
    }

    fn flush(&mut self) {
        self.tx.submit();
        self.reap();
        for _ in 0..MAX_KICKS_PER_FLUSH {
            let before = self.tx.unconsumed();
            if before == 0 {
                break;
            }
            let kicked = self.sock.kick_tx();
            self.reap();
            match kicked {
                Ok(()) if self.tx.unconsumed() == before => {
                    // Success without progress: the kernel will not send
                    // from this socket now (e.g. queue beyond the device's
                    // TX queues). Do not spin on it.
                    self.stalled = true;
                    break;
                }
                Ok(()) => {}
                Err(e) if is_transient(&e) => {}
                Err(_) => {
                    self.stalled = true;
                    break;
                }
            }
        }
    }

    fn pending(&self) -> bool {
        !self.stalled && self.tx.unconsumed() > 0
    }
}

// A half gives the frames it holds to its socket, which returns them to the
// pool region once it is closed (the last half to go closes it).
impl Drop for AfXdpRx {
    fn drop(&mut self) {
        self.sock.hand_back(self.held.drain());
    }
}

impl Drop for AfXdpTx {
    /// Only the free frames go back. A frame still between the TX ring and
    /// the completion ring may be read by the kernel after the socket is
    /// closed (a device that sends skbs pointing into the UMEM, like
    /// virtio-net, keeps them queued), so it is left to the region's end.
    fn drop(&mut self) {
        self.reap();
        self.sock.hand_back(std::mem::take(&mut self.free));
    }
}
