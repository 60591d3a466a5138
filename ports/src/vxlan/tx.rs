//! The transmit half: complete IPv4 datagrams, built by the switch, queued
//! in preallocated slots and handed to a raw IPv4 socket with one
//! `sendmmsg` per flush.

use super::sys::{self, SendMsgs, SEND_MAX};
use crate::{PortError, TxQueue, GATHER_MAX};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};

/// Datagrams queued before a flush is forced.
pub const TX_QUEUE: usize = SEND_MAX;
/// Largest datagram queued: a jumbo inner frame plus encapsulation.
pub const TX_MAX: usize = GATHER_MAX;
/// Shortest datagram queued: an IPv4 header without options.
const IPV4_HEADER_LEN: usize = 20;
/// Where the destination address sits in an IPv4 header.
const IPV4_DST: std::ops::Range<usize> = 16..20;
/// Send buffer asked of the kernel: a full queue of jumbo datagrams.
const SNDBUF: libc::c_int = 4 << 20;
/// The `device` of transmit errors (one socket serves every tunnel).
const DEVICE: &str = "vxlan underlay";

/// Opens the raw IPv4 socket (needs CAP_NET_RAW) with a 4 MiB send buffer
/// where allowed, and allocates the queue (64 slots of [`TX_MAX`] bytes).
pub fn open_tx() -> Result<UnderlayTx, PortError> {
    let fd = sys::raw_ipv4_socket().map_err(|e| {
        let what = match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => {
                "opening the raw IPv4 socket for VXLAN transmit needs CAP_NET_RAW (run as root or \
                 grant the capability)"
            }
            _ => "opening the raw IPv4 socket for VXLAN transmit",
        };
        PortError::new(DEVICE, what, e)
    })?;
    if sys::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SNDBUF).is_err() {
        // Capped by net.core.wmem_max; the default still works, with more
        // EAGAIN drops under load.
        let _ = sys::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, SNDBUF);
    }
    Ok(UnderlayTx {
        fd,
        slots: vec![[0u8; TX_MAX]; TX_QUEUE].into_boxed_slice(),
        lens: [0; TX_QUEUE],
        dests: [Ipv4Addr::UNSPECIFIED; TX_QUEUE],
        queued: 0,
        msgs: SendMsgs::new(),
        errors: 0,
    })
}

/// Transmit half: the raw IPv4 socket plus a queue of up to 64 datagrams,
/// sent with one `sendmmsg` per flush. Shared by the poll threads under the
/// datapath's per-batch lock.
pub struct UnderlayTx {
    fd: OwnedFd,
    slots: Box<[[u8; TX_MAX]]>,
    lens: [usize; TX_QUEUE],
    dests: [Ipv4Addr; TX_QUEUE],
    queued: usize,
    msgs: SendMsgs,
    errors: u64,
}

impl UnderlayTx {
    /// Datagrams the kernel refused (cumulative): EMSGSIZE (longer than the
    /// outgoing device's MTU: a raw socket never fragments), ENETUNREACH,
    /// EAGAIN/ENOBUFS when the send buffer or the device queue is full...
    pub fn errors(&self) -> u64 {
        self.errors
    }
}

impl TxQueue for UnderlayTx {
    /// Queues `frame`, a complete IPv4 datagram (header first; the kernel
    /// fills in the header checksum, the total length, and the ID and
    /// source address when zero). Returns false for one shorter than an
    /// IPv4 header, not IPv4, or longer than [`TX_MAX`].
    fn send(&mut self, frame: &[u8]) -> bool {
        self.send_parts(&[frame])
    }

    /// As `send`, the datagram written from `parts` straight into its slot.
    fn send_parts(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let version = parts.iter().find_map(|p| p.first()).map(|b| b >> 4);
        if version != Some(4) || !(IPV4_HEADER_LEN..=TX_MAX).contains(&total) {
            return false;
        }
        if self.queued == TX_QUEUE {
            self.flush();
        }
        let k = self.queued;
        let Some(slot) = self.slots.get_mut(k) else {
            return false;
        };
        let mut at = 0;
        for p in parts {
            slot[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let mut dst = [0u8; 4];
        dst.copy_from_slice(&slot[IPV4_DST]);
        self.lens[k] = total;
        self.dests[k] = Ipv4Addr::from(dst);
        self.queued += 1;
        true
    }

    /// Sends everything queued. A datagram the kernel refuses is counted in
    /// [`UnderlayTx::errors`] and skipped; when the socket has no room
    /// (EAGAIN), the rest of the queue is counted and dropped.
    fn flush(&mut self) {
        let n = self.queued;
        if n == 0 {
            return;
        }
        let mut msgs: [&[u8]; TX_QUEUE] = [&[]; TX_QUEUE];
        for (m, (slot, &len)) in msgs
            .iter_mut()
            .zip(self.slots.iter().zip(&self.lens))
            .take(n)
        {
            *m = &slot[..len];
        }
        let mut at = 0;
        while at < n {
            match self
                .msgs
                .send(self.fd.as_fd(), &msgs[at..n], &self.dests[at..n])
            {
                Ok(0) => {
                    self.errors += 1;
                    at += 1;
                }
                Ok(sent) => at += sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.errors += (n - at) as u64;
                    break;
                }
                Err(_) => {
                    self.errors += 1;
                    at += 1;
                }
            }
        }
        self.queued = 0;
    }

    fn flush_is_syscall(&self) -> bool {
        true
    }
}
