//! Port backends.
//!
//! A port is opened into receive queues and one transmit half:
//!
//! - An [`RxQueue`] is owned by exactly one poll thread. `recv` puts frames
//!   into the caller's batch: copied into its packets, or (AF_XDP) lent as
//!   the packets' buffers, which the queue takes back in `release` once the
//!   batch has been forwarded.
//! - A [`TxQueue`] may be used by any poll thread, one at a time (the datapath
//!   wraps it in a lock taken once per batch, not per packet). `send` copies
//!   the frame; the caller keeps its packet. `flush` hands queued frames to the
//!   kernel and must be called after each batch of sends and again while
//!   `pending` is true (the AF_XDP copy-mode kick).
//!
//! Every backend implements the same traits, including [`memory`] ports for
//! unit tests and benchmarks.

pub mod afpacket;
pub mod afxdp;
pub mod impair;
pub mod memory;
pub mod netdev;
pub mod netns;
pub mod tap;
pub mod vxlan;

use pipeline::{Batch, Packet};
use std::os::fd::RawFd;

pub trait RxQueue: Send {
    /// Receives up to `batch.room()` frames into `batch`. Returns how many
    /// were added. Never blocks.
    fn recv(&mut self, batch: &mut Batch) -> usize;

    /// Takes back the buffers `recv` lent to `batch` (zero-copy receive).
    /// Call it when the batch has been forwarded, before clearing it or
    /// receiving into it again; until then the queue is short of those
    /// buffers. A no-op for queues that copy.
    fn release(&mut self, batch: &mut Batch) {
        let _ = batch;
    }

    /// A file descriptor that becomes readable when frames arrive, for the
    /// poll thread's idle sleep. `None` means the queue must be polled.
    fn wake_fd(&self) -> Option<RawFd>;

    /// True when `recv` costs a system call even if nothing is waiting
    /// (TAP). The poll loop then checks the queue only every few
    /// iterations, and always right after a wake-up.
    fn recv_is_syscall(&self) -> bool {
        false
    }

    /// Frames lost before the switch could receive them (cumulative): the
    /// AF_XDP receive ring was full, or an AF_PACKET frame was truncated or
    /// too large for a packet buffer. Read a few times a second, off the
    /// fast path.
    fn kernel_drops(&self) -> u64 {
        0
    }

    /// Whether TCP super-frames the kernel hands over (a TAP's TSO sender)
    /// may go into the batch whole, one packet with `Packet::gso` set (a
    /// packet buffer holds any of them); otherwise they are cut into
    /// MTU-sized segments as they are received. The poll thread says so
    /// whenever the port's chain changes ([`pipeline::Chain::keeps_gso`]).
    /// A no-op for queues that never see super-frames.
    fn set_whole_gso(&mut self, on: bool) {
        let _ = on;
    }
}

pub trait TxQueue: Send {
    /// Queues one frame. Returns false when it could not be queued (ring full
    /// or frame too large); the caller counts it as a tx drop.
    fn send(&mut self, frame: &[u8]) -> bool;

    /// Queues one frame made of `parts` in order (an encapsulation header
    /// written as the frame is copied, a VLAN tag inserted after the MAC
    /// addresses). Returns false as `send` does. The default gathers the
    /// parts on the stack and calls `send`; backends that copy anyway write
    /// the parts straight into their buffers.
    fn send_parts(&mut self, parts: &[&[u8]]) -> bool {
        gather(parts, |frame| self.send(frame))
    }

    /// Queues `pkt`, which the caller is done with: a backend may take the
    /// packet's buffer instead of copying it (AF_XDP ports of one
    /// `UmemPool` region), leaving the packet empty. Returns false as
    /// `send` does.
    fn send_packet(&mut self, pkt: &mut Packet) -> bool {
        self.send(pkt.data())
    }

    /// True when the port takes TCP super-frames whole ([`TxQueue::send_gso`]).
    /// Asked once, when the port opens.
    fn takes_gso(&self) -> bool {
        false
    }

    /// Queues `frame`, a TCP super-frame with a partial checksum, for the
    /// kernel to cut into segments of `mss` payload bytes. Only called
    /// when [`TxQueue::takes_gso`]; returns false as `send` does.
    fn send_gso(&mut self, frame: &[u8], mss: u16) -> bool {
        let _ = (frame, mss);
        false
    }

    /// Pushes queued frames to the kernel and reclaims completed buffers.
    fn flush(&mut self);

    /// True when `flush` makes a system call (the AF_XDP kick): the poll
    /// threads then count its cycles apart. Asked once, when the port opens.
    fn flush_is_syscall(&self) -> bool {
        false
    }

    /// True while frames handed to `send` have not yet been consumed by the
    /// kernel, so `flush` must be called again soon.
    fn pending(&self) -> bool {
        false
    }
}

/// Largest frame [`gather`] assembles (a jumbo frame plus encapsulation).
pub const GATHER_MAX: usize = 9216 + 64;

/// The largest MTU a port of the switch carries: jumbo frames of 9,000
/// bytes. A packet's own buffer holds them ([`pipeline::OWN_SIZE`]); AF_XDP
/// takes them as several UMEM frames (multi-buffer, `XDP_USE_SG`, Linux
/// 6.6+), TAP and AF_PACKET read them whole; a flooded frame that gets a
/// tag or tunnel headers on the way out is gathered in [`GATHER_MAX`].
/// `attach --mtu` and `mtu_request` refuse more. (Only a TCP super-frame,
/// held whole, is longer than the MTU inside the switch.)
pub const MAX_MTU: u32 = 9000;

/// The largest MTU of an AF_XDP port bound without multi-buffer (a kernel
/// before 6.6, or a driver without it): a frame must fit one 4 KiB UMEM
/// frame after the 256 bytes the kernel keeps in front of it
/// (XDP_PACKET_HEADROOM), with its Ethernet header and one VLAN tag.
pub const SINGLE_BUFFER_MTU: u32 = 4096 - 256 - 14 - 4;

/// Joins `parts` in a stack buffer and passes the frame to `send`; false
/// when the parts add up to more than [`GATHER_MAX`].
pub fn gather(parts: &[&[u8]], send: impl FnOnce(&[u8]) -> bool) -> bool {
    if let [one] = parts {
        return send(one);
    }
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > GATHER_MAX {
        return false;
    }
    let mut buf = [0u8; GATHER_MAX];
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    send(&buf[..total])
}

/// What a backend reports about an opened port (shown by `vswctl show`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStatus {
    /// Backend actually in use: "afxdp", "afpacket", "tap", "internal", "memory".
    pub backend: String,
    /// Backend detail, e.g. "native" / "generic" for AF_XDP.
    pub mode: String,
    /// Why a fallback was chosen, if one was.
    pub fallback_reason: Option<String>,
    pub ifindex: u32,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// The largest MTU the port carries whole, when less than [`MAX_MTU`],
    /// and why.
    pub mtu_limit: Option<(u32, &'static str)>,
}

/// An opened port: its receive queues, its transmit half and its status.
/// Dropping it closes the port and detaches anything it attached.
pub struct OpenPort {
    pub rxqs: Vec<Box<dyn RxQueue>>,
    pub tx: Box<dyn TxQueue>,
    pub status: PortStatus,
}

/// An error opening a port, with the device and the step that failed.
#[derive(Debug)]
pub struct PortError {
    pub device: String,
    pub what: String,
    pub source: std::io::Error,
}

impl PortError {
    pub fn new(device: &str, what: impl Into<String>, source: std::io::Error) -> Self {
        PortError {
            device: device.to_string(),
            what: what.into(),
            source,
        }
    }

    /// The device does not exist (yet).
    pub fn is_missing_device(&self) -> bool {
        self.source.raw_os_error() == Some(libc::ENODEV)
    }

    /// Someone else serves the device (another XDP program, another
    /// AF_XDP socket on its queue): another switch, most likely.
    pub fn is_busy(&self) -> bool {
        self.source.raw_os_error() == Some(libc::EBUSY)
    }
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.device, self.what, self.source)
    }
}

impl std::error::Error for PortError {}
