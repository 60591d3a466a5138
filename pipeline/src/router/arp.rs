//! ARP for the router's own addresses: answering requests in place,
//! reading replies, and writing requests.
//!
//! An answer reuses the request's buffer (VPP's and OVS's responders do
//! the same): the frame is turned around and leaves by the port it came
//! in on, so answering costs no allocation and no extra packet.

use crate::wire::{be16, eth, put_be16};

/// Ethernet + ARP for IPv4 over Ethernet.
pub const FRAME_LEN: usize = eth::HEADER_LEN + 28;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;
// Offsets inside the ARP header (after the Ethernet header).
const HTYPE: usize = 0;
const PTYPE: usize = 2;
const HLEN: usize = 4;
const PLEN: usize = 5;
const OPER: usize = 6;
const SHA: usize = 8;
const SPA: usize = 14;
const THA: usize = 18;
const TPA: usize = 24;

/// An IPv4-over-Ethernet ARP message, read from an untagged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub request: bool,
    pub sender_mac: [u8; 6],
    pub sender_ip: u32,
    pub target_ip: u32,
}

/// Reads the ARP message of `frame`, or `None` when it is not a well-formed
/// IPv4-over-Ethernet request or reply.
pub fn parse(frame: &[u8]) -> Option<Arp> {
    if frame.len() < FRAME_LEN || be16(frame, eth::ETHERTYPE.start) != eth::TYPE_ARP {
        return None;
    }
    let a = &frame[eth::HEADER_LEN..];
    if be16(a, HTYPE) != 1 || be16(a, PTYPE) != eth::TYPE_IPV4 || a[HLEN] != 6 || a[PLEN] != 4 {
        return None;
    }
    let request = match be16(a, OPER) {
        OP_REQUEST => true,
        OP_REPLY => false,
        _ => return None,
    };
    Some(Arp {
        request,
        sender_mac: eth::mac(a, SHA..SHA + 6),
        sender_ip: ip_at(a, SPA),
        target_ip: ip_at(a, TPA),
    })
}

fn ip_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Turns the request in `frame` (checked by [`parse`]) into the answer
/// "`ip` is at `mac`", addressed to the asker.
pub fn answer_in_place(frame: &mut [u8], req: &Arp, mac: [u8; 6], ip: u32) {
    frame[eth::DST].copy_from_slice(&req.sender_mac);
    frame[eth::SRC].copy_from_slice(&mac);
    let a = &mut frame[eth::HEADER_LEN..];
    put_be16(a, OPER, OP_REPLY);
    a[SHA..SHA + 6].copy_from_slice(&mac);
    a[SPA..SPA + 4].copy_from_slice(&ip.to_be_bytes());
    a[THA..THA + 6].copy_from_slice(&req.sender_mac);
    a[TPA..TPA + 4].copy_from_slice(&req.sender_ip.to_be_bytes());
}

/// A broadcast request "who has `target`? tell `ip` at `mac`".
pub fn request(mac: [u8; 6], ip: u32, target: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[eth::DST].copy_from_slice(&eth::BROADCAST);
    f[eth::SRC].copy_from_slice(&mac);
    put_be16(&mut f, eth::ETHERTYPE.start, eth::TYPE_ARP);
    let a = &mut f[eth::HEADER_LEN..];
    put_be16(a, HTYPE, 1);
    put_be16(a, PTYPE, eth::TYPE_IPV4);
    a[HLEN] = 6;
    a[PLEN] = 4;
    put_be16(a, OPER, OP_REQUEST);
    a[SHA..SHA + 6].copy_from_slice(&mac);
    a[SPA..SPA + 4].copy_from_slice(&ip.to_be_bytes());
    a[TPA..TPA + 4].copy_from_slice(&target.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_R: [u8; 6] = [2, 0, 0, 0, 0, 0x1];

    #[test]
    fn request_round_trips_and_is_answered_in_place() {
        let mut f = request(MAC_A, 0x0a000002, 0x0a000001);
        let req = parse(&f).unwrap();
        assert!(req.request);
        assert_eq!(
            (req.sender_mac, req.sender_ip, req.target_ip),
            (MAC_A, 0x0a000002, 0x0a000001)
        );
        answer_in_place(&mut f, &req, MAC_R, 0x0a000001);
        let rep = parse(&f).unwrap();
        assert!(!rep.request);
        assert_eq!(
            (rep.sender_mac, rep.sender_ip, rep.target_ip),
            (MAC_R, 0x0a000001, 0x0a000002)
        );
        assert_eq!(&f[eth::DST], &MAC_A);
        assert_eq!(&f[eth::SRC], &MAC_R);
    }

    #[test]
    fn other_arp_and_short_frames_are_not_read() {
        let f = request(MAC_A, 1, 2);
        assert!(parse(&f[..FRAME_LEN - 1]).is_none());
        let mut g = f;
        g[eth::HEADER_LEN + PLEN] = 16; // not IPv4
        assert!(parse(&g).is_none());
        let mut g = f;
        g[eth::HEADER_LEN + OPER + 1] = 3; // RARP
        assert!(parse(&g).is_none());
    }
}
