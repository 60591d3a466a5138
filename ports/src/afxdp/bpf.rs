//! The XDP redirect program, its XSKMAP and its attachment, through the raw
//! `bpf()` syscall (no libbpf, no clang).
//!
//! The program sends every frame of receive queue `i` to the AF_XDP socket at
//! index `i` of the map, and passes it to the kernel stack when that slot is
//! empty. It is attached through a BPF link: closing the link fd (or the
//! process dying) detaches it, so a crash never leaves it behind.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// bpf(2) commands, map, program and attach types (include/uapi/linux/bpf.h).
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;

/// XDP attach flags (include/uapi/linux/if_link.h).
pub(super) const XDP_FLAGS_SKB_MODE: u32 = 2;
pub(super) const XDP_FLAGS_DRV_MODE: u32 = 4;

// Instruction encoding (include/uapi/linux/bpf_common.h, bpf.h); the
// VLAN-restoring program in `vlan_prog` uses these too.
pub(super) const BPF_LD: u8 = 0x00;
pub(super) const BPF_LDX: u8 = 0x01;
pub(super) const BPF_JMP: u8 = 0x05;
pub(super) const BPF_ALU64: u8 = 0x07;
pub(super) const BPF_W: u8 = 0x00;
pub(super) const BPF_DW: u8 = 0x18;
pub(super) const BPF_IMM: u8 = 0x00;
pub(super) const BPF_MEM: u8 = 0x60;
pub(super) const BPF_MOV: u8 = 0xb0;
pub(super) const BPF_K: u8 = 0x00;
pub(super) const BPF_CALL: u8 = 0x80;
pub(super) const BPF_EXIT: u8 = 0x90;
const BPF_PSEUDO_MAP_FD: u8 = 1;
pub(super) const BPF_FUNC_REDIRECT_MAP: i32 = 51;
pub(super) const XDP_PASS: i32 = 2;
/// Offset of `rx_queue_index` in `struct xdp_md`.
pub(super) const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
/// The plain program's name, as `ip -d link` and `bpftool prog` show it.
pub(super) const PROG_NAME: &str = "vswitch_xsk";
/// `prog_flags` bit: the program may run only on `prog_ifindex`, and may
/// call that driver's XDP metadata kfuncs.
const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;
/// `prog_flags` bit: the program takes multi-buffer frames (Linux 5.18+),
/// so a device with an MTU larger than a page keeps native XDP, and jumbo
/// frames reach an `XDP_USE_SG` socket whole.
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    pub(super) const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    /// The instruction as the kernel reads it.
    #[cfg(test)]
    pub(super) fn to_bytes(self) -> [u8; 8] {
        let [o0, o1] = self.off.to_le_bytes();
        let [i0, i1, i2, i3] = self.imm.to_le_bytes();
        [self.code, self.regs, o0, o1, i0, i1, i2, i3]
    }

    /// `dst = map`: a 64-bit immediate load of a map fd, which takes two
    /// slots (the second holds the high half).
    pub(super) const fn load_map_fd(dst: u8, map_fd: RawFd) -> [Insn; 2] {
        [
            Insn::new(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd),
            Insn::new(0, 0, 0, 0, 0),
        ]
    }
}

/// `r2 = ctx->rx_queue_index; r1 = map; r3 = XDP_PASS;
///  return bpf_redirect_map(r1, r2, r3);`
pub(super) fn redirect_program(map_fd: RawFd) -> [Insn; 6] {
    let [map_lo, map_hi] = Insn::load_map_fd(1, map_fd);
    [
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        map_lo,
        map_hi,
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, XDP_PASS),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

/// The `BPF_MAP_CREATE` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// The `BPF_MAP_*_ELEM` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_LINK_CREATE` part of `union bpf_attr` (no extra fields for XDP).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Calls bpf(2); returns the non-negative result.
///
/// # Safety
/// `attr` must be the attribute layout `cmd` expects, and every pointer
/// stored in it must point to memory valid for the access `cmd` makes.
unsafe fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: `attr` is a live, initialised #[repr(C)] value of `size`
    // bytes; the caller vouches for the pointers inside it.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Calls bpf(2) for a command that returns a new fd, and owns it at once.
///
/// # Safety
/// As for `sys_bpf`.
unsafe fn sys_bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: forwarded contract.
    let rc = unsafe { sys_bpf(cmd, attr)? };
    let fd = RawFd::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the command returned a new descriptor (close-on-exec, as all
    // bpf fds are) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

/// An XSKMAP: queue index -> AF_XDP socket.
pub(super) struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    pub(super) fn create(entries: u32) -> io::Result<XskMap> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries.max(1),
            map_name: name16("vswitch_xsks"),
            ..Default::default()
        };
        // SAFETY: MAP_CREATE attribute layout; it holds no pointers.
        let fd = unsafe { sys_bpf_fd(BPF_MAP_CREATE, &mut attr)? };
        Ok(XskMap { fd })
    }

    /// Points slot `queue` at the AF_XDP socket `xsk_fd`.
    pub(super) fn insert(&self, queue: u32, xsk_fd: RawFd) -> io::Result<()> {
        let key = queue;
        let value = u32::try_from(xsk_fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        let mut attr = MapElemAttr {
            map_fd: self.raw_u32(),
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            ..Default::default()
        };
        // SAFETY: MAP_UPDATE_ELEM layout; `key` and `value` are 4-byte
        // locals (the map's key and value size) that outlive the call.
        unsafe { sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr)? };
        Ok(())
    }

    /// The map's fd, for a program's map load (`Insn::load_map_fd`).
    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn raw_u32(&self) -> u32 {
        self.fd.as_raw_fd() as u32
    }
}

/// A loaded XDP program.
pub(super) struct Program {
    fd: OwnedFd,
}

/// Why the program did not load: the error and the verifier's log.
pub(super) struct LoadError {
    pub source: io::Error,
    pub log: String,
}

impl Program {
    /// Loads the plain redirect program for `map`, runnable on any device
    /// in either mode. On failure the error carries the verifier log.
    pub(super) fn load_redirect(map: &XskMap) -> Result<Program, LoadError> {
        Self::load_logged(&redirect_program(map.fd.as_raw_fd()), PROG_NAME, None)
    }

    /// Loads `insns` as program `name`; bound to device `dev_bound` (only
    /// native mode on that device, but its metadata kfuncs) if given. On
    /// failure it loads again with the verifier log on, so the error says why.
    /// Marked as taking multi-buffer frames where the kernel knows the flag.
    pub(super) fn load_logged(
        insns: &[Insn],
        name: &str,
        dev_bound: Option<u32>,
    ) -> Result<Program, LoadError> {
        if let Ok(p) = Self::load(insns, name, dev_bound, BPF_F_XDP_HAS_FRAGS, None) {
            return Ok(p);
        }
        match Self::load(insns, name, dev_bound, 0, None) {
            Ok(p) => Ok(p),
            Err(first) => {
                let mut log = vec![0u8; 64 * 1024];
                let source = match Self::load(insns, name, dev_bound, 0, Some(&mut log)) {
                    Ok(p) => return Ok(p),
                    Err(e) => e,
                };
                let log = CStr::from_bytes_until_nul(&log)
                    .map(|c| c.to_string_lossy().trim().to_string())
                    .unwrap_or_default();
                let source = if log.is_empty() { first } else { source };
                Err(LoadError { source, log })
            }
        }
    }

    fn load(
        insns: &[Insn],
        name: &str,
        dev_bound: Option<u32>,
        flags: u32,
        log: Option<&mut Vec<u8>>,
    ) -> io::Result<Program> {
        const LICENSE: &CStr = c"GPL";
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            prog_name: name16(name),
            expected_attach_type: BPF_XDP,
            prog_flags: flags,
            ..Default::default()
        };
        if let Some(ifindex) = dev_bound {
            attr.prog_flags |= BPF_F_XDP_DEV_BOUND_ONLY;
            attr.prog_ifindex = ifindex;
        }
        if let Some(buf) = log {
            attr.log_level = 1;
            attr.log_size = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            attr.log_buf = buf.as_mut_ptr() as u64;
        }
        // SAFETY: PROG_LOAD layout; `insns` points to `insn_cnt` instructions,
        // `license` to a NUL-terminated string, `log_buf` (if set) to a
        // writable buffer of `log_size` bytes; all outlive the call.
        let fd = unsafe { sys_bpf_fd(BPF_PROG_LOAD, &mut attr)? };
        Ok(Program { fd })
    }
}

/// An attached program; dropping it detaches the program.
pub(super) struct Link {
    _fd: OwnedFd,
}

impl Link {
    /// Attaches `prog` to interface `ifindex` with `XDP_FLAGS_*` `flags`.
    pub(super) fn attach_xdp(prog: &Program, ifindex: u32, flags: u32) -> io::Result<Link> {
        let mut attr = LinkCreateAttr {
            prog_fd: prog.fd.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags,
        };
        // SAFETY: LINK_CREATE layout; it holds no pointers.
        let fd = unsafe { sys_bpf_fd(BPF_LINK_CREATE, &mut attr)? };
        Ok(Link { _fd: fd })
    }
}

/// Everything a port attached to its interface. The link is dropped first,
/// detaching the program before the program and map fds are closed.
pub(super) struct XdpAttachment {
    _link: Link,
    _prog: Program,
    _map: XskMap,
}

impl XdpAttachment {
    pub(super) fn new(link: Link, prog: Program, map: XskMap) -> XdpAttachment {
        XdpAttachment {
            _link: link,
            _prog: prog,
            _map: map,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(i: &Insn) -> [u8; 8] {
        i.to_bytes()
    }

    #[test]
    fn redirect_program_encoding() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let p = redirect_program(7);
        // code, dst|src<<4, off (le), imm (le), per include/uapi/linux/bpf.h.
        assert_eq!(bytes(&p[0]), [0x61, 0x12, 0x10, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(&p[1]), [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes(&p[2]), [0; 8]);
        assert_eq!(bytes(&p[3]), [0xb7, 0x03, 0, 0, 2, 0, 0, 0]);
        assert_eq!(bytes(&p[4]), [0x85, 0, 0, 0, 51, 0, 0, 0]);
        assert_eq!(bytes(&p[5]), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn attr_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 44);
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::size_of::<LinkCreateAttr>(), 16);
    }

    #[test]
    fn names_are_truncated_and_terminated() {
        assert_eq!(&name16("abc")[..4], b"abc\0");
        let n = name16("a_very_long_program_name");
        assert_eq!(n[15], 0);
        assert_eq!(&n[..15], b"a_very_long_pro");
    }
}
