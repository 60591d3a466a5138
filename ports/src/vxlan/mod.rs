//! The VXLAN underlay: how the switch's VXLAN tunnels reach the network,
//! through the host's own IPv4 stack (no physical bridge).
//!
//! - Receive: one UDP socket per VXLAN UDP port ([`open_rx`]), bound to the
//!   local address or 0.0.0.0. The kernel hands over each UDP payload (VXLAN
//!   header + inner frame) with the sender's address, which the queue puts
//!   in `meta.tun_remote` for the decap stage. The [`UnderlayRx`] is owned
//!   by one poll thread; the packets it receives are views of its own
//!   buffers, which it takes back in `release` (see `rx`).
//! - Transmit: one raw IPv4 socket ([`open_tx`]) sending complete datagrams
//!   that the switch built (outer IPv4 + UDP + VXLAN + inner frame). A raw
//!   socket rather than a UDP one so that the switch chooses the UDP source
//!   port per flow (for ECMP/RSS entropy), DF, TTL and TOS, while the
//!   kernel still routes and resolves the neighbour. The [`UnderlayTx`] is
//!   shared by the poll threads under the datapath's per-batch lock; a
//!   datagram is copied into its queue by `send`, so the caller keeps its
//!   packet.
//! - The host's routing also answers the control plane's questions:
//!   [`route_to`] gives the source address, path MTU and interface towards
//!   a remote, [`ifname_of_addr`] the interface holding a local address.
//!
//! Left for later: UDP GRO on receive (`UDP_GRO`, many datagrams in one
//! buffer) and UDP GSO on transmit (`UDP_SEGMENT`, which a raw socket does
//! not have: it would take a UDP socket per source port, or AF_PACKET).
//!
//! Layout: `rx` and `tx` are the two halves, `sys` wraps the system calls.
//! Unsafe code is allowed only in `sys` and in `rx` (its lent buffers).

#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod rx;
#[allow(unsafe_code)]
mod sys;
mod tx;

#[cfg(test)]
mod tests;

pub use rx::{open_rx, UnderlayRx, DEFAULT_SEGMENT_MTU};
pub use tx::{open_tx, UnderlayTx, TX_MAX, TX_QUEUE};

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;

/// What the host's routing says about reaching `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The source address the kernel chose.
    pub local: Ipv4Addr,
    /// The path MTU (`IP_MTU`): the route's MTU, or a smaller one learned
    /// from ICMP "fragmentation needed".
    pub mtu: u32,
    /// The interface holding `local`. Usually the one the packets leave
    /// by, but not always (an address on `lo`, or on another interface
    /// than the route's).
    pub ifname: String,
}

/// Asks the host's routing how it would reach `remote:port`: connects a
/// throwaway UDP socket (no packet is sent), reads the source address the
/// kernel chose, the path MTU, and the interface holding that address.
/// Errors (no route: ENETUNREACH) name the remote.
pub fn route_to(remote: Ipv4Addr, port: u16) -> io::Result<Route> {
    let ctx = |e: io::Error, what: &str| {
        io::Error::new(
            e.kind(),
            format!("VXLAN remote {remote}:{port}: {what}: {e}"),
        )
    };
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| ctx(e, "opening a UDP socket to ask the routing"))?;
    sock.connect(SocketAddrV4::new(remote, port)).map_err(|e| {
        let what = match e.raw_os_error() {
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => {
                "no route to it (`ip route get` shows what the host would do)"
            }
            _ => "asking the routing (connect)",
        };
        ctx(e, what)
    })?;
    let local = match sock
        .local_addr()
        .map_err(|e| ctx(e, "reading the source address"))?
    {
        std::net::SocketAddr::V4(a) => *a.ip(),
        std::net::SocketAddr::V6(a) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("VXLAN remote {remote}:{port}: the kernel chose the IPv6 source {a}"),
            ))
        }
    };
    let mtu = sys::get_int(sock.as_fd(), libc::IPPROTO_IP, libc::IP_MTU)
        .map_err(|e| ctx(e, "reading the path MTU (IP_MTU)"))?;
    let ifname = ifname_of_addr(local).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("VXLAN remote {remote}:{port}: no interface holds the source address {local}"),
        )
    })?;
    Ok(Route {
        local,
        mtu: u32::try_from(mtu).unwrap_or(0),
        ifname,
    })
}

/// The interface that holds IPv4 address `addr` in this network namespace,
/// if any.
pub fn ifname_of_addr(addr: Ipv4Addr) -> Option<String> {
    sys::ipv4_addrs()
        .ok()?
        .into_iter()
        .find(|(_, a)| *a == addr)
        .map(|(name, _)| name)
}

/// The name errors give an endpoint on UDP `port`, after the kernel's
/// own VXLAN sockets.
fn device_name(port: u16) -> String {
    format!("vxlan_sys_{port}")
}
