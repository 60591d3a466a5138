//! AF_PACKET ports: a packet socket bound to one interface, receiving through
//! a memory-mapped TPACKET_V3 ring and sending with plain `send()`.
//!
//! The fallback when AF_XDP cannot be used. One socket serves both halves:
//! the [`RxQueue`] owns the ring, the [`TxQueue`] sends on the same socket
//! from whichever poll thread holds it (the fd is shared through an `Arc`).
//!
//! - The kernel never hands a packet socket the frames it sent itself, and
//!   `PACKET_IGNORE_OUTGOING` drops every other frame leaving through the
//!   interface too (the host stack's, a second socket's during a reopen):
//!   only frames arriving on the wire are received, never the switch's own.
//! - The interface is put in promiscuous mode for as long as the socket is
//!   open (a packet-socket membership, dropped by the kernel on close).
//! - The kernel takes 802.1Q/802.1ad tags out of received frames; the reader
//!   puts them back so the switch sees frames as they were on the wire.
//! - TX uses plain `send()` rather than a TX ring: one copy either way, far
//!   less code, and `PACKET_QDISC_BYPASS` (when available) skips the qdisc.
//!   Bypassed frames also skip the packet taps: `tcpdump -i <port>` does not
//!   show what the switch sends; capture on the peer instead.
//! - Frames are received as the kernel holds them. A veth peer with TSO on
//!   (the default) hands over TCP super-frames of up to 64 KiB: with
//!   `PACKET_VNET_HDR` each frame comes behind a virtio-net header saying
//!   so, and the reader cuts it into MTU-sized segments (`pipeline::gso`),
//!   as the TAP ports do. Frames sent then need the header too: an all-zero
//!   one, since the switch's frames are complete. A kernel without the
//!   option drops super-frames, counted as kernel drops.

mod ring;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use crate::{netdev, OpenPort, PortError, PortStatus, RxQueue, TxQueue};
use pipeline::Batch;
use ring::{Reader, Ring};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

const VNET_HDR_LEN: usize = crate::tap::vnet::HDR_LEN;

/// Opens `ifname` as an AF_PACKET port. `fallback_reason` says why AF_XDP
/// was not used, if that is why this backend was chosen; it is reported in
/// the port status. A missing device gives an error whose
/// [`PortError::is_missing_device`] is true.
pub fn open(ifname: &str, fallback_reason: Option<String>) -> Result<OpenPort, PortError> {
    let fail = |what: &'static str| move |e: io::Error| PortError::new(ifname, what, e);
    netdev::check_port_ifname(ifname)?;
    let ifindex = netdev::ifindex(ifname).map_err(fail("looking up the interface"))?;
    netdev::set_up(ifname, true).map_err(fail("bringing the interface up"))?;

    let fd = packet_socket().map_err(fail("creating the AF_PACKET socket"))?;
    let v3 = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    setsockopt(fd.as_fd(), libc::PACKET_VERSION, &v3)
        .map_err(fail("setting PACKET_VERSION to TPACKET_V3"))?;
    setsockopt(fd.as_fd(), libc::PACKET_IGNORE_OUTGOING, &1)
        .map_err(fail("setting PACKET_IGNORE_OUTGOING"))?;
    // Before the ring, or the kernel refuses it.
    let vnet = setsockopt(fd.as_fd(), libc::PACKET_VNET_HDR, &1).is_ok();
    let mtu = netdev::mtu(ifname).map_err(fail("reading the MTU"))?;
    // Optional: without it frames go through the interface's qdisc.
    let _ = setsockopt(fd.as_fd(), libc::PACKET_QDISC_BYPASS, &1);
    setsockopt(fd.as_fd(), libc::PACKET_RX_RING, &ring::request())
        .map_err(fail("setting up the receive ring (PACKET_RX_RING)"))?;
    let ring = Ring::map(fd.as_fd()).map_err(fail("mapping the receive ring"))?;
    bind(fd.as_fd(), ifindex).map_err(fail("binding the socket to the interface"))?;
    let promisc = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(fd.as_fd(), libc::PACKET_ADD_MEMBERSHIP, &promisc)
        .map_err(fail("enabling promiscuous mode (PACKET_ADD_MEMBERSHIP)"))?;

    let status = PortStatus {
        backend: "afpacket".into(),
        mode: "tpacket-v3".into(),
        fallback_reason,
        ifindex,
        mtu,
        mac: netdev::mac(ifname).map_err(fail("reading the MAC address"))?,
        mtu_limit: None,
    };
    let fd = Arc::new(fd);
    Ok(OpenPort {
        rxqs: vec![Box::new(AfPacketRx {
            reader: Reader::new(ring, vnet, mtu as usize),
            fd: fd.clone(),
        })],
        tx: Box::new(AfPacketTx { fd, vnet }),
        status,
    })
}

/// The receive half: owns the ring.
pub struct AfPacketRx {
    // Declared first so the ring is unmapped before the socket may close.
    reader: Reader,
    fd: Arc<OwnedFd>,
}

impl RxQueue for AfPacketRx {
    fn recv(&mut self, batch: &mut Batch) -> usize {
        self.reader.read_into(batch)
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn kernel_drops(&self) -> u64 {
        self.reader.dropped()
    }
}

/// The transmit half: `send()` on the shared socket.
pub struct AfPacketTx {
    fd: Arc<OwnedFd>,
    /// Frames go behind an all-zero virtio-net header (`PACKET_VNET_HDR`).
    vnet: bool,
}

impl TxQueue for AfPacketTx {
    fn send(&mut self, frame: &[u8]) -> bool {
        if self.vnet {
            // EAGAIN, ENOBUFS, EMSGSIZE, ENETDOWN...: all a dropped frame.
            return crate::tap::vnet::write_frame(&self.fd, &[0; VNET_HDR_LEN], frame);
        }
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes for the
        // duration of the call, and the socket is kept open by `self.fd`.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        // EAGAIN, ENOBUFS, EMSGSIZE, ENETDOWN...: all a dropped frame.
        usize::try_from(n).is_ok_and(|n| n == frame.len())
    }

    fn flush(&mut self) {}
}

/// A non-blocking packet socket that receives nothing until it is bound
/// (protocol 0), so the ring only ever sees frames of our interface.
fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket() call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds to `ifindex`, receiving every protocol.
fn bind(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets a `SOL_PACKET` option whose value is the plain-data `value`.
fn setsockopt<T>(fd: BorrowedFd<'_>, opt: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed; the kernel
    // only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
