//! One bounds-checked walk over an IPv4 packet, giving what conntrack and
//! NAT need: the tuple, TCP flags and sequence space, fragment fields, and
//! for an ICMP error the tuple of the packet it quotes. Every offset the
//! rewriting functions touch later is checked here, once.

use super::tuple::Tuple;
use crate::wire::{be16, ip_proto, ipv4};

/// ICMP types conntrack knows.
pub(crate) mod icmp_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// ICMP header length (type, code, checksum, 4 bytes of rest-of-header).
pub(crate) const ICMP_HEADER_LEN: usize = 8;
/// Bytes of the quoted packet's L4 header an error must carry (RFC 792:
/// "the first 64 bits of the original datagram's data"): the ports.
const QUOTED_L4_MIN: usize = 8;

const TCP_OPT_END: u8 = 0;
const TCP_OPT_NOP: u8 = 1;
const TCP_OPT_WSCALE: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Bad version or IHL, lengths inconsistent with the frame, L4 header
    /// cut short.
    Malformed,
    /// An ICMP error whose quoted packet is unusable (short, bad IHL, a
    /// protocol without ports, a later fragment).
    BadEmbedded,
}

/// What conntrack needs of a TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    /// Payload bytes in this packet (a first fragment counts only its own).
    pub payload_len: u32,
    /// The window scale option, parsed on SYN segments only (the only
    /// ones where it means something).
    pub wscale: Option<u8>,
}

/// The packet quoted by an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    /// The quoted packet's tuple, as carried (it went the opposite way to
    /// the error).
    pub tuple: Tuple,
    pub icmp_type: u8,
    pub code: u8,
    /// The quoted IP header's length in bytes.
    pub ihl: u8,
    /// Bytes of the quoted L4 header present in the error (at least 8).
    pub quoted: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Info {
    Tcp(TcpInfo),
    Udp {
        /// A zero checksum means "none" and must stay zero.
        zero_checksum: bool,
    },
    IcmpEcho {
        reply: bool,
    },
    IcmpError(Embedded),
    /// Another protocol, another ICMP type, or a non-first fragment (no
    /// L4 header): the tuple's ports are 0.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PktInfo {
    pub l4: L4Info,
    /// IP header length in bytes.
    pub ihl: u8,
    /// IP total length minus the header.
    pub l4_len: u16,
    pub ttl: u8,
    pub ip_id: u16,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    pub more_frags: bool,
}

impl PktInfo {
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.frag_offset != 0 || self.more_frags
    }

    /// A fragment other than the first: no L4 header, no ports.
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        self.frag_offset != 0
    }

    /// Whether this packet may create an entry: not an ICMP error, an echo
    /// reply or a later fragment; for TCP, a SYN, or an ACK of a connection
    /// picked up mid-stream (as with `nf_conntrack_tcp_loose=1`).
    pub fn may_create(&self) -> bool {
        use super::tcp::flags::{ACK, FIN, RST, SYN};
        match self.l4 {
            L4Info::Tcp(t) => {
                let f = t.flags & (SYN | ACK | FIN | RST);
                f == SYN || f == ACK
            }
            L4Info::Udp { .. } => true,
            L4Info::IcmpEcho { reply } => !reply,
            L4Info::IcmpError(_) => false,
            L4Info::Other => !self.is_later_fragment(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub tuple: Tuple,
    pub info: PktInfo,
}

impl Parsed {
    /// An ICMP error quoting a usable packet: for
    /// [`rewrite_icmp_error`](super::rewrite_icmp_error).
    #[inline]
    pub fn is_icmp_error(&self) -> bool {
        matches!(self.info.l4, L4Info::IcmpError(_))
    }

    /// A fragment other than the first: see [`FragTable`](super::FragTable).
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        self.info.is_later_fragment()
    }

    #[inline]
    pub fn is_echo_request(&self) -> bool {
        matches!(self.info.l4, L4Info::IcmpEcho { reply: false })
    }
}

#[inline]
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Checks an IPv4 header at the start of `ip`; returns (IHL in bytes,
/// total length). `quoted` allows the total length to exceed what is
/// present (an ICMP error quotes only the start of a packet).
#[inline]
fn ip_header(ip: &[u8], quoted: bool) -> Result<(usize, usize), ()> {
    if ip.len() < ipv4::MIN_HEADER_LEN || ip[0] >> 4 != 4 {
        return Err(());
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = be16(ip, ipv4::TOTAL_LEN) as usize;
    if ihl < ipv4::MIN_HEADER_LEN || ihl > ip.len() || total < ihl {
        return Err(());
    }
    if !quoted && total > ip.len() {
        return Err(());
    }
    Ok((ihl, total))
}

/// Parses the IPv4 packet starting at `l3` in `frame`.
pub fn parse(frame: &[u8], l3: usize) -> Result<Parsed, ParseError> {
    let ip = frame.get(l3..).ok_or(ParseError::Malformed)?;
    let (ihl, total) = ip_header(ip, false).map_err(|_| ParseError::Malformed)?;
    let ff = be16(ip, ipv4::FLAGS_FRAG);
    let mut tuple = Tuple {
        proto: ip[ipv4::PROTO],
        src: be32(ip, ipv4::SRC),
        dst: be32(ip, ipv4::DST),
        sport: 0,
        dport: 0,
    };
    let mut info = PktInfo {
        l4: L4Info::Other,
        ihl: ihl as u8,
        l4_len: (total - ihl) as u16,
        ttl: ip[8],
        ip_id: be16(ip, 4),
        frag_offset: ff & 0x1fff,
        more_frags: ff & 0x2000 != 0,
    };
    if info.is_later_fragment() {
        return Ok(Parsed { tuple, info });
    }
    let l4 = &ip[ihl..total];
    info.l4 = match tuple.proto {
        ip_proto::TCP => {
            let t = parse_tcp(l4)?;
            (tuple.sport, tuple.dport) = (be16(l4, 0), be16(l4, 2));
            L4Info::Tcp(t)
        }
        ip_proto::UDP => {
            if l4.len() < 8 {
                return Err(ParseError::Malformed);
            }
            (tuple.sport, tuple.dport) = (be16(l4, 0), be16(l4, 2));
            L4Info::Udp {
                zero_checksum: be16(l4, 6) == 0,
            }
        }
        ip_proto::ICMP => {
            if l4.len() < ICMP_HEADER_LEN {
                return Err(ParseError::Malformed);
            }
            match l4[0] {
                icmp_type::ECHO_REQUEST | icmp_type::ECHO_REPLY => {
                    let id = be16(l4, 4);
                    (tuple.sport, tuple.dport) = (id, id);
                    L4Info::IcmpEcho {
                        reply: l4[0] == icmp_type::ECHO_REPLY,
                    }
                }
                icmp_type::DEST_UNREACH | icmp_type::TIME_EXCEEDED | icmp_type::PARAM_PROBLEM => {
                    L4Info::IcmpError(parse_embedded(l4)?)
                }
                _ => L4Info::Other,
            }
        }
        _ => L4Info::Other,
    };
    Ok(Parsed { tuple, info })
}

fn parse_tcp(l4: &[u8]) -> Result<TcpInfo, ParseError> {
    if l4.len() < 20 {
        return Err(ParseError::Malformed);
    }
    let doff = (l4[12] >> 4) as usize * 4;
    if doff < 20 || doff > l4.len() {
        return Err(ParseError::Malformed);
    }
    let flags = l4[13];
    let wscale = if flags & super::tcp::flags::SYN != 0 {
        window_scale(&l4[20..doff])
    } else {
        None
    };
    Ok(TcpInfo {
        flags,
        seq: be32(l4, 4),
        ack: be32(l4, 8),
        window: be16(l4, 14),
        payload_len: (l4.len() - doff) as u32,
        wscale,
    })
}

/// The window scale option among TCP options; a malformed option list
/// ends the walk (what is found before it counts).
fn window_scale(opts: &[u8]) -> Option<u8> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            TCP_OPT_END => break,
            TCP_OPT_NOP => i += 1,
            kind => {
                let len = *opts.get(i + 1)? as usize;
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                if kind == TCP_OPT_WSCALE && len == 3 {
                    return Some(opts[i + 2]);
                }
                i += len;
            }
        }
    }
    None
}

/// The packet quoted by an ICMP error message `icmp` (header included).
fn parse_embedded(icmp: &[u8]) -> Result<Embedded, ParseError> {
    let inner = &icmp[ICMP_HEADER_LEN..];
    let (ihl, _) = ip_header(inner, true).map_err(|_| ParseError::BadEmbedded)?;
    if be16(inner, ipv4::FLAGS_FRAG) & 0x1fff != 0 {
        return Err(ParseError::BadEmbedded);
    }
    let l4 = &inner[ihl..];
    if l4.len() < QUOTED_L4_MIN {
        return Err(ParseError::BadEmbedded);
    }
    let proto = inner[ipv4::PROTO];
    let (sport, dport) = match proto {
        ip_proto::TCP | ip_proto::UDP => (be16(l4, 0), be16(l4, 2)),
        ip_proto::ICMP if l4[0] == icmp_type::ECHO_REQUEST || l4[0] == icmp_type::ECHO_REPLY => {
            (be16(l4, 4), be16(l4, 4))
        }
        _ => return Err(ParseError::BadEmbedded),
    };
    Ok(Embedded {
        tuple: Tuple {
            proto,
            src: be32(inner, ipv4::SRC),
            dst: be32(inner, ipv4::DST),
            sport,
            dport,
        },
        icmp_type: icmp[0],
        code: icmp[1],
        ihl: ihl as u8,
        quoted: l4.len().min(u16::MAX as usize) as u16,
    })
}
