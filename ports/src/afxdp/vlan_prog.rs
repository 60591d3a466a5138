//! The redirect program that also puts back a VLAN tag the driver took out
//! of the frame.
//!
//! A veth whose peer has tx-vlan offload on (the default) carries the tag of
//! a frame from a bridge or VLAN device in skb metadata, not in the bytes,
//! so XDP sees the frame untagged. Since Linux 6.8 veth answers the XDP
//! metadata kfunc `bpf_xdp_metadata_rx_vlan_tag`; this program asks it, and
//! for frames going to an AF_XDP socket writes the tag back in front of the
//! EtherType. Frames passed to the kernel stack are left alone: the stack
//! still has the tag in the skb and would otherwise see it twice.
//!
//! Metadata kfuncs need a device-bound program (`BPF_F_XDP_DEV_BOUND_ONLY`),
//! which attaches only in native mode and only to that device. Where the
//! kernel lacks the kfunc or refuses the load, [`load_native`] returns the
//! plain redirect program instead; a driver without the callback gets the
//! kernel's stub, which reports no tag.

use super::bpf::{
    Insn, LoadError, Program, XskMap, BPF_ALU64, BPF_CALL, BPF_DW, BPF_EXIT, BPF_FUNC_REDIRECT_MAP,
    BPF_JMP, BPF_K, BPF_LDX, BPF_MEM, BPF_MOV, BPF_W, XDP_MD_RX_QUEUE_INDEX, XDP_PASS,
};
use super::btf;
use std::os::fd::RawFd;

/// The kfunc, looked up by name in the kernel's BTF.
pub(super) const KFUNC: &str = "bpf_xdp_metadata_rx_vlan_tag";
/// The program's name, as `ip -d link` and `bpftool prog` show it (the
/// plain one is `bpf::PROG_NAME`).
pub(super) const VLAN_NAME: &str = "vswitch_xskvlan";

// Encoding not needed by the plain program (include/uapi/linux/bpf*.h).
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP32: u8 = 0x06;
const BPF_H: u8 = 0x08;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_JGT: u8 = 0x20;
const BPF_JNE: u8 = 0x50;
const BPF_END: u8 = 0xd0;
const BPF_TO_BE: u8 = 0x08;
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
const BPF_FUNC_XDP_ADJUST_HEAD: i32 = 44;
const XDP_ABORTED: i32 = 0;
const XDP_REDIRECT: i32 = 4;
/// Offsets of `data` and `data_end` in `struct xdp_md`.
const XDP_MD_DATA: i16 = 0;
const XDP_MD_DATA_END: i16 = 4;
/// Stack slots of the kfunc's two out-parameters.
const PROTO_SLOT: i16 = -8;
const TCI_SLOT: i16 = -4;
/// Bytes the tag adds, and the Ethernet addresses moved to make room.
const TAG_LEN: i32 = 4;
const MACS_LEN: i16 = 12;

/// Registers: r0 return value, r1-r5 arguments (clobbered by calls),
/// r6 callee-saved (holds ctx), r10 frame pointer.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R6: u8 = 6;
const R10: u8 = 10;

/// Instruction indices the jumps go to.
const EXIT: usize = 34;
const RETURN_REDIRECT: usize = 33;
const RETURN_ABORTED: usize = 35;
pub(super) const LEN: usize = 37;

/// Appends instructions; jumps name their target index.
struct Asm(Vec<Insn>);

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Self {
        self.0.push(Insn::new(code, dst, src, off, imm));
        self
    }

    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, target: usize) -> &mut Self {
        let off = target as i64 - (self.0.len() as i64 + 1);
        let off = i16::try_from(off).expect("jump within the program");
        self.op(code, dst, src, off, imm)
    }
}

/// The program, given the XSKMAP fd and the kfunc's BTF type id:
///
/// ```text
///  0  r6 = r1                          ctx, kept across calls
///  1  r2 = *(u32 *)(r6 + 16)           ctx->rx_queue_index
///  2  r1 = map (two slots)
///  4  r3 = XDP_PASS
///  5  call bpf_redirect_map            only records the target
///  6  if r0 != XDP_REDIRECT goto 34    no socket: pass the frame as it is
///  7  *(u64 *)(r10 - 8) = 0            out-parameters start defined
///  8  r1 = r6; r2 = r10 - 8; r3 = r10 - 4
/// 13  call bpf_xdp_metadata_rx_vlan_tag(ctx, &proto, &tci)
/// 14  if w0 != 0 goto 33               no tag held outside the frame
/// 15  r1 = r6; r2 = -4
/// 17  call bpf_xdp_adjust_head         4 bytes of headroom in front
/// 18  if w0 != 0 goto 35
/// 19  r2 = ctx->data; r3 = ctx->data_end
/// 21  if r2 + 18 > r3 goto 35          (via r1)
/// 24  move the 12 address bytes from data + 4 to data (8 + 4 bytes)
/// 28  *(u16 *)(r2 + 12) = proto        already in network order
/// 30  *(u16 *)(r2 + 14) = be16(tci)
/// 33  r0 = XDP_REDIRECT
/// 34  exit
/// 35  r0 = XDP_ABORTED                 never hand over a frame untagged
/// 36  exit
/// ```
pub(super) fn vlan_restore_program(map_fd: RawFd, kfunc_btf_id: i32) -> Vec<Insn> {
    let mut a = Asm(Vec::with_capacity(LEN));
    a.op(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0).op(
        BPF_LDX | BPF_MEM | BPF_W,
        R2,
        R6,
        XDP_MD_RX_QUEUE_INDEX,
        0,
    );
    a.0.extend(Insn::load_map_fd(R1, map_fd));
    a.op(BPF_ALU64 | BPF_MOV | BPF_K, R3, 0, 0, XDP_PASS)
        .op(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP)
        .jump(BPF_JMP | BPF_JNE | BPF_K, R0, 0, XDP_REDIRECT, EXIT);
    // Ask for the tag.
    a.op(BPF_ST | BPF_MEM | BPF_DW, R10, 0, PROTO_SLOT, 0)
        .op(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0)
        .op(BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0)
        .op(BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, PROTO_SLOT.into())
        .op(BPF_ALU64 | BPF_MOV | BPF_X, R3, R10, 0, 0)
        .op(BPF_ALU64 | BPF_ADD | BPF_K, R3, 0, 0, TCI_SLOT.into())
        .op(
            BPF_JMP | BPF_CALL,
            0,
            BPF_PSEUDO_KFUNC_CALL,
            0,
            kfunc_btf_id,
        )
        .jump(BPF_JMP32 | BPF_JNE | BPF_K, R0, 0, 0, RETURN_REDIRECT);
    // Make room and check the frame is long enough for the verifier.
    a.op(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0)
        .op(BPF_ALU64 | BPF_MOV | BPF_K, R2, 0, 0, -TAG_LEN)
        .op(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_XDP_ADJUST_HEAD)
        .jump(BPF_JMP32 | BPF_JNE | BPF_K, R0, 0, 0, RETURN_ABORTED)
        .op(BPF_LDX | BPF_MEM | BPF_W, R2, R6, XDP_MD_DATA, 0)
        .op(BPF_LDX | BPF_MEM | BPF_W, R3, R6, XDP_MD_DATA_END, 0)
        .op(BPF_ALU64 | BPF_MOV | BPF_X, R1, R2, 0, 0)
        .op(BPF_ALU64 | BPF_ADD | BPF_K, R1, 0, 0, 18)
        .jump(BPF_JMP | BPF_JGT | BPF_X, R1, R3, 0, RETURN_ABORTED);
    // Addresses forward, bytes 4..12 read before 0..8 are written.
    let tag = TAG_LEN as i16;
    a.op(BPF_LDX | BPF_MEM | BPF_DW, R1, R2, tag, 0)
        .op(BPF_STX | BPF_MEM | BPF_DW, R2, R1, 0, 0)
        .op(BPF_LDX | BPF_MEM | BPF_W, R1, R2, tag + 8, 0)
        .op(BPF_STX | BPF_MEM | BPF_W, R2, R1, 8, 0);
    // The tag.
    a.op(BPF_LDX | BPF_MEM | BPF_H, R1, R10, PROTO_SLOT, 0)
        .op(BPF_STX | BPF_MEM | BPF_H, R2, R1, MACS_LEN, 0)
        .op(BPF_LDX | BPF_MEM | BPF_H, R1, R10, TCI_SLOT, 0)
        .op(BPF_ALU | BPF_END | BPF_TO_BE, R1, 0, 0, 16)
        .op(BPF_STX | BPF_MEM | BPF_H, R2, R1, MACS_LEN + 2, 0);
    a.op(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, XDP_REDIRECT)
        .op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
        .op(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, XDP_ABORTED)
        .op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    debug_assert_eq!(a.0.len(), LEN);
    a.0
}

/// Which program a port runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    /// The six-instruction redirect program: any device, either mode.
    Plain,
    /// [`vlan_restore_program`], bound to one device, native mode only.
    RestoresVlan,
    /// `own_prog::own_frames_program`: any device, either mode.
    OwnFrames,
}

/// Loads the VLAN-restoring program bound to `ifindex`, or `None` when the
/// running kernel's BTF has no [`KFUNC`].
pub(super) fn load_vlan_restore(map: &XskMap, ifindex: u32) -> Option<Result<Program, LoadError>> {
    let id = btf::vmlinux_func_id(KFUNC)?;
    let id = i32::try_from(id).ok()?;
    let insns = vlan_restore_program(map.raw_fd(), id);
    Some(Program::load_logged(&insns, VLAN_NAME, Some(ifindex)))
}

/// The program for native mode on `ifindex`: the VLAN-restoring one if this
/// kernel takes it, else the plain one. Says which it is; why the first
/// was not used is not reported (older kernels are expected).
pub(super) fn load_native(map: &XskMap, ifindex: u32) -> Result<(Program, Flavor), LoadError> {
    match load_vlan_restore(map, ifindex) {
        Some(Ok(p)) => Ok((p, Flavor::RestoresVlan)),
        _ => Program::load_redirect(map).map(|p| (p, Flavor::Plain)),
    }
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

    #[test]
    fn encoding_of_the_vlan_program() {
        let p = vlan_restore_program(7, 12345);
        assert_eq!(p.len(), LEN);
        let f: Vec<_> = p.iter().map(fields).collect();
        // ctx saved in r6; queue index read from it; map fd; XDP_PASS.
        assert_eq!(f[0], (0xbf, 6, 1, 0, 0));
        assert_eq!(f[1], (0x61, 2, 6, 16, 0));
        assert_eq!(f[2], (0x18, 1, 1, 0, 7));
        assert_eq!(f[3], (0, 0, 0, 0, 0));
        assert_eq!(f[5], (0x85, 0, 0, 0, 51));
        // Kfunc call: src_reg BPF_PSEUDO_KFUNC_CALL, imm the BTF id.
        assert_eq!(f[7], (0x7a, 10, 0, -8, 0));
        assert_eq!(f[10], (0x07, 2, 0, 0, -8));
        assert_eq!(f[12], (0x07, 3, 0, 0, -4));
        assert_eq!(f[13], (0x85, 0, 2, 0, 12345));
        // bpf_xdp_adjust_head(ctx, -4).
        assert_eq!(f[16], (0xb7, 2, 0, 0, -4));
        assert_eq!(f[17], (0x85, 0, 0, 0, 44));
        // Bounds check, then the moves and the tag.
        assert_eq!(f[22], (0x07, 1, 0, 0, 18));
        assert_eq!(f[24], (0x79, 1, 2, 4, 0));
        assert_eq!(f[25], (0x7b, 2, 1, 0, 0));
        assert_eq!(f[26], (0x61, 1, 2, 12, 0));
        assert_eq!(f[27], (0x63, 2, 1, 8, 0));
        assert_eq!(f[28], (0x69, 1, 10, -8, 0));
        assert_eq!(f[29], (0x6b, 2, 1, 12, 0));
        assert_eq!(f[31], (0xdc, 1, 0, 0, 16));
        assert_eq!(f[32], (0x6b, 2, 1, 14, 0));
        assert_eq!(f[33], (0xb7, 0, 0, 0, 4));
        assert_eq!(f[35], (0xb7, 0, 0, 0, 0));
        assert_eq!(f[34].0, 0x95);
        assert_eq!(f[36].0, 0x95);
    }

    #[test]
    fn jumps_land_where_the_listing_says() {
        let p = vlan_restore_program(7, 1);
        let target = |i: usize| (i as i64 + 1 + i64::from(fields(&p[i]).3)) as usize;
        // (index, code, target)
        for (at, code, to) in [
            (6, 0x55, EXIT),             // JMP JNE K: r0 != XDP_REDIRECT
            (14, 0x56, RETURN_REDIRECT), // JMP32 JNE K: no tag
            (18, 0x56, RETURN_ABORTED),  // JMP32 JNE K: no headroom
            (23, 0x2d, RETURN_ABORTED),  // JMP JGT X: frame too short
        ] {
            assert_eq!(fields(&p[at]).0, code, "instruction {at}");
            assert_eq!(target(at), to, "jump at {at}");
        }
        // No other jumps, and nothing falls off the end.
        let jumps = p
            .iter()
            .filter(|x| {
                let c = fields(x).0;
                matches!(c & 0x07, 0x05 | 0x06) && c != 0x85 && c != 0x95
            })
            .count();
        assert_eq!(jumps, 4);
        assert_eq!(fields(&p[LEN - 1]).0, 0x95);
    }
}
