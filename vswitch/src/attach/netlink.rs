//! A small synchronous rtnetlink client: just the link, address and route
//! requests that attaching a container needs.
//!
//! Every request asks for an acknowledgement and waits for it, so each call
//! either did its change or returns the kernel's errno (with its extended
//! error message when the kernel gives one). A socket belongs to the network
//! namespace of the thread that opened it: open one on a thread that has
//! entered a container's namespace to configure that namespace.

use super::ip6::Ip6Config;
use super::spec::IpConfig;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CREATE,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags};
use netlink_packet_route::link::{LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::route::{RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// Receive buffer: replies here are single links, addresses or ACKs.
const RECV_BUF: usize = 32 * 1024;
/// `NLMSGERR_ATTR_MSG`: the extended ACK attribute holding a text message.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Length of a netlink message header, echoed back in an error message.
const NLMSG_HDR_LEN: usize = 16;

/// A failed request: the kernel's errno and, when it said more, its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: i32,
    pub message: Option<String>,
}

impl NlError {
    fn io(e: &io::Error) -> NlError {
        NlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            message: Some(e.to_string()),
        }
    }

    fn protocol(what: String) -> NlError {
        NlError {
            errno: libc::EPROTO,
            message: Some(what),
        }
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = io::Error::from_raw_os_error(self.errno).to_string();
        match &self.message {
            Some(m) if !m.is_empty() && *m != text => write!(f, "{text}: {m}"),
            _ => write!(f, "{text}"),
        }
    }
}

/// The container end of a new veth pair: its name, MAC and MTU there, and
/// the namespace it is created in.
pub struct VethPeer<'a> {
    pub ifname: &'a str,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub netns_fd: RawFd,
}

/// An rtnetlink socket in the namespace of the thread that opened it.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, NlError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| NlError::io(&e))?;
        sock.bind_auto().map_err(|e| NlError::io(&e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| NlError::io(&e))?;
        // Best effort: without them errors are plain errnos.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Index of interface `name`, or None when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NlError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates veth `host` (in this socket's namespace, down) with MTU
    /// `mtu` and MAC `mac`, and its peer as described by `peer`, directly
    /// inside the peer's namespace. Fails with EEXIST if either name is
    /// taken.
    pub fn create_veth(
        &mut self,
        host: &str,
        mtu: u32,
        mac: [u8; 6],
        peer: &VethPeer,
    ) -> Result<(), NlError> {
        let mut p = LinkMessage::default();
        p.attributes = vec![
            LinkAttribute::IfName(peer.ifname.to_string()),
            LinkAttribute::Address(peer.mac.to_vec()),
            LinkAttribute::Mtu(peer.mtu),
            LinkAttribute::NetNsFd(peer.netns_fd),
        ];
        let mut msg = LinkMessage::default();
        msg.attributes = vec![
            LinkAttribute::IfName(host.to_string()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::Address(mac.to_vec()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
            ]),
        ];
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Brings interface `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NlError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Deletes interface `name` (for a veth, both ends). Returns false when
    /// there was no such interface.
    pub fn delete_link(&mut self, name: &str) -> Result<bool, NlError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == libc::ENODEV => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `ip` (address, prefix and, below /31, broadcast) to interface
    /// `index`.
    pub fn add_address(&mut self, index: u32, ip: &IpConfig) -> Result<(), NlError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = ip.prefix;
        msg.header.index = index;
        msg.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(ip.addr)),
            AddressAttribute::Address(IpAddr::V4(ip.addr)),
        ];
        if let Some(b) = ip.broadcast() {
            msg.attributes.push(AddressAttribute::Broadcast(b));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds IPv6 address `ip` to interface `index`, without duplicate
    /// address detection.
    pub fn add_address6(&mut self, index: u32, ip: &Ip6Config) -> Result<(), NlError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.prefix_len = ip.prefix;
        msg.header.index = index;
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes = vec![
            AddressAttribute::Address(IpAddr::V6(ip.addr)),
            AddressAttribute::Flags(AddressFlags::Nodad),
        ];
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds the IPv6 default route via `gateway` through interface `index`.
    pub fn add_default_route6(&mut self, index: u32, gateway: Ipv6Addr) -> Result<(), NlError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = RouteScope::Universe;
        msg.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::Inet6(gateway)),
            RouteAttribute::Oif(index),
        ];
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds an IPv4 route in the main table through interface `index`:
    /// to `dst` (None: the default route), via `gateway` if given. A route
    /// without gateway has link scope (the destination is on the link).
    pub fn add_route(
        &mut self,
        index: u32,
        dst: Option<(Ipv4Addr, u8)>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NlError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if let Some((addr, len)) = dst {
            msg.header.destination_prefix_length = len;
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(addr)));
        }
        if let Some(gw) = gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        msg.attributes.push(RouteAttribute::Oif(index));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Sends one request and collects the replies up to its ACK.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut out = vec![0u8; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0).map_err(|e| NlError::io(&e))?;

        let mut replies = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(|e| NlError::io(&e))?;
            let mut off = 0;
            while off < n {
                let bytes = &self.buf[off..n];
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| NlError::protocol(format!("unreadable netlink reply: {e}")))?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Err(NlError::protocol("netlink reply of length 0".into()));
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                let tlv_flag = m.header.flags & NLM_F_ACK_TLVS != 0;
                match m.payload {
                    NetlinkPayload::Error(err) => match err.code {
                        None => return Ok(replies),
                        Some(code) => {
                            let message = if tlv_flag {
                                extack_message(&err.header)
                            } else {
                                None
                            };
                            return Err(NlError {
                                errno: -code.get(),
                                message,
                            });
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
            }
        }
    }
}

/// The text of an extended ACK: the error payload is the request's header
/// (the request itself is left out, as asked with NETLINK_CAP_ACK) followed
/// by attributes.
fn extack_message(payload: &[u8]) -> Option<String> {
    let mut rest = payload.get(NLMSG_HDR_LEN..)?;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[4..len];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            return Some(String::from_utf8_lossy(&text[..end]).into_owned());
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extack_text_is_found_after_the_echoed_header() {
        let mut p = vec![0u8; NLMSG_HDR_LEN];
        // An unrelated attribute (type 4, u32), then the message.
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&4u16.to_ne_bytes());
        p.extend_from_slice(&7u32.to_ne_bytes());
        let text = b"Nexthop has invalid gateway\0";
        p.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(text);
        assert_eq!(
            extack_message(&p).as_deref(),
            Some("Nexthop has invalid gateway")
        );
        assert_eq!(extack_message(&p[..NLMSG_HDR_LEN]), None);
        assert_eq!(extack_message(&[0; 3]), None);
    }

    #[test]
    fn errors_read_like_the_kernel() {
        let e = NlError {
            errno: libc::EEXIST,
            message: None,
        };
        assert_eq!(e.to_string(), "File exists (os error 17)");
        let e = NlError {
            errno: libc::EINVAL,
            message: Some("bad gateway".into()),
        };
        assert!(e.to_string().ends_with(": bad gateway"), "{e}");
    }

    #[test]
    fn loopback_is_found_and_missing_links_are_none() {
        let Ok(mut nl) = Rtnl::open() else {
            return;
        };
        assert_eq!(nl.link_index("lo"), Ok(Some(1)));
        assert_eq!(nl.link_index("vsw-no-such-0"), Ok(None));
        assert_eq!(nl.delete_link("vsw-no-such-0"), Ok(false));
    }
}
