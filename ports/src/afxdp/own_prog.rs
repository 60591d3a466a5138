//! The redirect program for a port that shares its interface with the host.
//!
//! The NAT uplink may sit on the host's own NIC. The plain program would
//! then take every frame away from the host's stack, and the host would lose
//! its network. This one takes only the switch's own frames, as a macvlan
//! device would, and passes everything else to the stack:
//!
//! - frames whose destination MAC is the switch's (unicast to it, which
//!   includes ARP replies to its requests), and
//! - untagged ARP frames whose target protocol address is the switch's IPv4
//!   address (the broadcast requests for it; the host's stack would not
//!   answer them, as the address is not configured there).
//!
//! Broadcast and multicast frames other than those ARP requests go to the
//! host only; the switch does not see them. The program is not device-bound,
//! so it runs on any device in either mode (and takes no VLAN tag back: a
//! frame for the uplink is untagged).

use super::bpf::{
    Insn, LoadError, Program, XskMap, BPF_ALU64, BPF_CALL, BPF_EXIT, BPF_FUNC_REDIRECT_MAP,
    BPF_JMP, BPF_K, BPF_LDX, BPF_MEM, BPF_MOV, BPF_W, XDP_MD_RX_QUEUE_INDEX, XDP_PASS,
};
use std::net::Ipv4Addr;
use std::os::fd::RawFd;

/// The program's name, as `ip -d link` and `bpftool prog` show it.
pub(super) const OWN_NAME: &str = "vswitch_xskown";

/// Which frames belong to the switch on a shared interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnFrames {
    /// The switch's MAC: frames sent to it go to the switch.
    pub mac: [u8; 6],
    /// The switch's IPv4 address, as `u32::from_be_bytes` of its bytes:
    /// ARP frames asking for it go to the switch.
    pub ip: u32,
}

impl OwnFrames {
    pub fn new(mac: [u8; 6], ip: Ipv4Addr) -> OwnFrames {
        OwnFrames {
            mac,
            ip: u32::from(ip),
        }
    }
}

// Encoding not needed by the plain program (include/uapi/linux/bpf*.h).
const BPF_JMP32: u8 = 0x06;
const BPF_H: u8 = 0x08;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_JEQ: u8 = 0x10;
const BPF_JGT: u8 = 0x20;
const BPF_JNE: u8 = 0x50;
/// Offsets of `data` and `data_end` in `struct xdp_md`.
const XDP_MD_DATA: i16 = 0;
const XDP_MD_DATA_END: i16 = 4;
/// Frame offsets: EtherType, the end of the Ethernet header, the ARP target
/// protocol address (24 bytes into the ARP header) and the end of it.
const ETHERTYPE_AT: i16 = 12;
const ETH_LEN: i32 = 14;
const ARP_TPA_AT: i16 = 14 + 24;
const ARP_END: i32 = 14 + 28;
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

/// Registers: r1 ctx (kept until the call), r2 data, r3 data_end, r4 scratch.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;

/// Instruction indices the jumps go to.
const ARP: usize = 9;
const REDIRECT: usize = 16;
const PASS: usize = 22;
pub(super) const LEN: usize = 24;

/// A jump at index `at` to index `to`: conditional on `dst` against `imm`
/// (`BPF_K`) or against register `src` (`BPF_X`).
const fn jump(code: u8, dst: u8, src: u8, imm: i32, at: usize, to: usize) -> Insn {
    Insn::new(code, dst, src, (to as i16) - (at as i16) - 1, imm)
}

/// A value as a load of its bytes from the packet gives it: loads are in
/// host byte order, so the constants are too.
fn loaded_u32(bytes: [u8; 4]) -> i32 {
    i32::from_ne_bytes(bytes)
}

fn loaded_u16(bytes: [u8; 2]) -> i32 {
    i32::from(u16::from_ne_bytes(bytes))
}

/// The program, given the XSKMAP fd and the frames to take:
///
/// ```text
///  0  r2 = ctx->data; r3 = ctx->data_end
///  2  if r2 + 14 > r3 goto 22          (via r4) no Ethernet header: pass
///  5  if *(u32 *)(r2 + 0) != mac[0..4] goto 9
///  7  if *(u16 *)(r2 + 4) == mac[4..6] goto 16
///  9  if *(u16 *)(r2 + 12) != ARP goto 22
/// 11  if r2 + 42 > r3 goto 22          (via r4) short ARP frame: pass
/// 14  if *(u32 *)(r2 + 38) != ip goto 22
/// 16  r2 = ctx->rx_queue_index
/// 17  r1 = map (two slots)
/// 19  r3 = XDP_PASS
/// 20  return bpf_redirect_map(r1, r2, r3)
/// 22  return XDP_PASS
/// ```
///
/// Packet loads go through `r4`; the comparisons are 32-bit (`BPF_JMP32`).
pub(super) fn own_frames_program(map_fd: RawFd, own: OwnFrames) -> [Insn; LEN] {
    let [m0, m1, m2, m3, m4, m5] = own.mac;
    let mac_head = loaded_u32([m0, m1, m2, m3]);
    let mac_tail = loaded_u16([m4, m5]);
    let arp = loaded_u16(ETHERTYPE_ARP);
    let ip = loaded_u32(own.ip.to_be_bytes());
    let [map_lo, map_hi] = Insn::load_map_fd(R1, map_fd);
    let mov_x = BPF_ALU64 | BPF_MOV | BPF_X;
    let add_k = BPF_ALU64 | BPF_ADD | BPF_K;
    let gt_x = BPF_JMP | BPF_JGT | BPF_X;
    let ne_k = BPF_JMP32 | BPF_JNE | BPF_K;
    let eq_k = BPF_JMP32 | BPF_JEQ | BPF_K;
    let ld_w = BPF_LDX | BPF_MEM | BPF_W;
    let ld_h = BPF_LDX | BPF_MEM | BPF_H;
    [
        Insn::new(ld_w, R2, R1, XDP_MD_DATA, 0),
        Insn::new(ld_w, R3, R1, XDP_MD_DATA_END, 0),
        // The Ethernet header is there.
        Insn::new(mov_x, R4, R2, 0, 0),
        Insn::new(add_k, R4, 0, 0, ETH_LEN),
        jump(gt_x, R4, R3, 0, 4, PASS),
        // Sent to our MAC.
        Insn::new(ld_w, R4, R2, 0, 0),
        jump(ne_k, R4, 0, mac_head, 6, ARP),
        Insn::new(ld_h, R4, R2, 4, 0),
        jump(eq_k, R4, 0, mac_tail, 8, REDIRECT),
        // ARP, long enough, and asking for our address.
        Insn::new(ld_h, R4, R2, ETHERTYPE_AT, 0),
        jump(ne_k, R4, 0, arp, 10, PASS),
        Insn::new(mov_x, R4, R2, 0, 0),
        Insn::new(add_k, R4, 0, 0, ARP_END),
        jump(gt_x, R4, R3, 0, 13, PASS),
        Insn::new(ld_w, R4, R2, ARP_TPA_AT, 0),
        jump(ne_k, R4, 0, ip, 15, PASS),
        // Ours: to the queue's socket (passed if it has none).
        Insn::new(ld_w, R2, R1, XDP_MD_RX_QUEUE_INDEX, 0),
        map_lo,
        map_hi,
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, R3, 0, 0, XDP_PASS),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        // Not ours: the host's.
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, XDP_PASS),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

/// Loads [`own_frames_program`] for `map`, runnable on any device in either
/// mode. On failure the error carries the verifier log.
pub(super) fn load_own_frames(map: &XskMap, own: OwnFrames) -> Result<Program, LoadError> {
    Program::load_logged(&own_frames_program(map.raw_fd(), own), OWN_NAME, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, dst, src, off, imm) of one instruction.
    fn fields(i: &Insn) -> (u8, u8, u8, i16, i32) {
        let b = i.to_bytes();
        (
            b[0],
            b[1] & 0x0f,
            b[1] >> 4,
            i16::from_le_bytes([b[2], b[3]]),
            i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        )
    }

    const OWN: OwnFrames = OwnFrames {
        mac: [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
        ip: u32::from_be_bytes([10, 211, 0, 2]),
    };

    #[test]
    fn encoding_of_the_own_frames_program() {
        let p = own_frames_program(7, OWN);
        let f: Vec<_> = p.iter().map(fields).collect();
        // data, data_end; bounds check through r4.
        assert_eq!(f[0], (0x61, 2, 1, 0, 0));
        assert_eq!(f[1], (0x61, 3, 1, 4, 0));
        assert_eq!(f[2], (0xbf, 4, 2, 0, 0));
        assert_eq!(f[3], (0x07, 4, 0, 0, 14));
        // The MAC, compared as the loads see the frame's bytes.
        assert_eq!(f[5], (0x61, 4, 2, 0, 0));
        assert_eq!(p[6].to_bytes()[4..], [0x02, 0x11, 0x22, 0x33][..]);
        assert_eq!(f[7], (0x69, 4, 2, 4, 0));
        assert_eq!(p[8].to_bytes()[4..6], [0x44, 0x55][..]);
        // EtherType 0x0806, the ARP end, the target address.
        assert_eq!(f[9], (0x69, 4, 2, 12, 0));
        assert_eq!(p[10].to_bytes()[4..6], [0x08, 0x06][..]);
        assert_eq!(f[12], (0x07, 4, 0, 0, 42));
        assert_eq!(f[14], (0x61, 4, 2, 38, 0));
        assert_eq!(p[15].to_bytes()[4..], [10, 211, 0, 2][..]);
        // The plain program's redirect, and XDP_PASS.
        assert_eq!(f[16], (0x61, 2, 1, 16, 0));
        assert_eq!(f[17], (0x18, 1, 1, 0, 7));
        assert_eq!(f[19], (0xb7, 3, 0, 0, 2));
        assert_eq!(f[20], (0x85, 0, 0, 0, 51));
        assert_eq!(f[22], (0xb7, 0, 0, 0, 2));
        assert_eq!(f[21].0, 0x95);
        assert_eq!(f[23].0, 0x95);
    }

    #[test]
    fn jumps_land_where_the_listing_says() {
        let p = own_frames_program(7, OWN);
        let target = |i: usize| (i as i64 + 1 + i64::from(fields(&p[i]).3)) as usize;
        // (index, code, register pair, target)
        for (at, code, regs, to) in [
            (4, 0x2d, (4, 3), PASS),     // JMP JGT X: no Ethernet header
            (6, 0x56, (4, 0), ARP),      // JMP32 JNE K: MAC head differs
            (8, 0x16, (4, 0), REDIRECT), // JMP32 JEQ K: MAC tail matches
            (10, 0x56, (4, 0), PASS),    // JMP32 JNE K: not ARP
            (13, 0x2d, (4, 3), PASS),    // JMP JGT X: short ARP frame
            (15, 0x56, (4, 0), PASS),    // JMP32 JNE K: another address
        ] {
            let (c, dst, src, ..) = fields(&p[at]);
            assert_eq!((c, (dst, src)), (code, regs), "instruction {at}");
            assert_eq!(target(at), to, "jump at {at}");
        }
        let jumps = p
            .iter()
            .filter(|x| {
                let c = fields(x).0;
                matches!(c & 0x07, 0x05 | 0x06) && c != 0x85 && c != 0x95
            })
            .count();
        assert_eq!(jumps, 6);
        assert_eq!(fields(&p[LEN - 1]).0, 0x95);
    }

    #[test]
    fn address_from_ipv4() {
        let own = OwnFrames::new(OWN.mac, Ipv4Addr::new(10, 211, 0, 2));
        assert_eq!(own, OWN);
    }
}
