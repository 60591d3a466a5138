//! The gratuitous ARP a newly attached container sends, so that the switch
//! and its neighbours learn where it is at once.
//!
//! It is an ARP request for the container's own address (sender and target
//! protocol address equal, target hardware address zero), broadcast, as
//! `arping -U` sends it. It is sent from a packet socket opened inside the
//! container's namespace, after the switch port is open, so it goes through
//! the switch.

use pipeline::wire::eth;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Offsets of an ARP packet for IPv4 over Ethernet, after the Ethernet header.
mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

const HTYPE_ETHERNET: u16 = 1;
const OPER_REQUEST: u16 = 1;
/// Ethernet's minimum frame length without the FCS; shorter frames are padded.
const MIN_FRAME: usize = 60;

/// Builds the gratuitous ARP frame of `mac` announcing `ip`.
pub fn frame(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; MIN_FRAME];
    f[eth::DST].copy_from_slice(&eth::BROADCAST);
    f[eth::SRC].copy_from_slice(&mac);
    f[eth::ETHERTYPE].copy_from_slice(&eth::TYPE_ARP.to_be_bytes());
    let arp = &mut f[eth::HEADER_LEN..];
    arp[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    arp[field::PTYPE].copy_from_slice(&eth::TYPE_IPV4.to_be_bytes());
    arp[field::HLEN] = eth::ADDR_LEN as u8;
    arp[field::PLEN] = 4;
    arp[field::OPER].copy_from_slice(&OPER_REQUEST.to_be_bytes());
    arp[field::SHA].copy_from_slice(&mac);
    arp[field::SPA].copy_from_slice(&ip.octets());
    arp[field::THA].fill(0);
    arp[field::TPA].copy_from_slice(&ip.octets());
    f
}

/// Sends `frame` out of interface `ifindex` of the calling thread's
/// namespace.
pub fn send(ifindex: u32, frame: &[u8]) -> io::Result<()> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: plain socket() call; the result is checked before use.
    // Protocol 0: this socket receives nothing.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
    addr.sll_ifindex = ifindex;
    addr.sll_halen = eth::ADDR_LEN as u8;
    addr.sll_addr[..6].copy_from_slice(&eth::BROADCAST);
    // SAFETY: `frame` and `addr` are valid for the lengths passed and
    // outlive the call; `sock` is an open packet socket.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `arping -U -I eth1 10.0.0.2` from 02:00:00:00:00:01, padded.
    static GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // arp header, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 2, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
    ];

    #[test]
    fn frame_bytes() {
        let f = frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(f.len(), MIN_FRAME);
        assert_eq!(&f[..GARP.len()], &GARP[..]);
        assert!(f[GARP.len()..].iter().all(|&b| b == 0));
    }
}
