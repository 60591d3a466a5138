//! Just enough of a BTF reader to find a kernel function's type id, which a
//! BPF program needs to call a kfunc (include/uapi/linux/btf.h,
//! Documentation/bpf/btf.rst).
//!
//! The blob is read into memory and walked with checked slices: a truncated
//! or malformed blob gives an error, never a panic.

use std::fmt;

/// Where the running kernel publishes its own BTF.
pub(super) const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
/// `struct btf_header` up to `str_len`; later kernels may append fields.
const HEADER_LEN: usize = 24;
/// `struct btf_type`: name_off, info, size/type.
const TYPE_LEN: usize = 12;
const KIND_FUNC: u32 = 12;

/// Why a BTF blob could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum BtfError {
    /// Not BTF, or BTF of the other byte order.
    BadMagic,
    /// A section or record runs past the end of the blob.
    Truncated,
    /// A type kind this reader does not know the size of.
    UnknownKind { id: u32, kind: u32 },
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfError::BadMagic => f.write_str("not BTF in this machine's byte order"),
            BtfError::Truncated => f.write_str("BTF data is truncated"),
            BtfError::UnknownKind { id, kind } => {
                write!(f, "BTF type {id} has unknown kind {kind}")
            }
        }
    }
}

impl std::error::Error for BtfError {}

fn u16_at(b: &[u8], at: usize) -> Result<u16, BtfError> {
    let s = b.get(at..at + 2).ok_or(BtfError::Truncated)?;
    Ok(u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    let s = b.get(at..at + 4).ok_or(BtfError::Truncated)?;
    Ok(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// `len` bytes of `b` from `off`, checked.
fn section(b: &[u8], off: usize, len: usize) -> Result<&[u8], BtfError> {
    let end = off.checked_add(len).ok_or(BtfError::Truncated)?;
    b.get(off..end).ok_or(BtfError::Truncated)
}

/// Bytes of kind-specific data after a `struct btf_type` of `kind`.
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        1 => 4,             // INT: encoding
        3 => 12,            // ARRAY: struct btf_array
        4 | 5 => 12 * vlen, // STRUCT, UNION: struct btf_member
        6 => 8 * vlen,      // ENUM: struct btf_enum
        13 => 8 * vlen,     // FUNC_PROTO: struct btf_param
        14 => 4,            // VAR: struct btf_var
        15 => 12 * vlen,    // DATASEC: struct btf_var_secinfo
        17 => 4,            // DECL_TAG: struct btf_decl_tag
        19 => 12 * vlen,    // ENUM64: struct btf_enum64
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT,
        // TYPE_TAG: nothing.
        2 | 7..=12 | 16 | 18 => 0,
        _ => return None,
    })
}

/// The type id of the function (kind FUNC) called `name` in `btf`.
pub(super) fn func_id(btf: &[u8], name: &str) -> Result<Option<u32>, BtfError> {
    if u16_at(btf, 0)? != MAGIC {
        return Err(BtfError::BadMagic);
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    if hdr_len < HEADER_LEN {
        return Err(BtfError::Truncated);
    }
    let field = |i: usize| u32_at(btf, 8 + 4 * i).map(|v| v as usize);
    let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
    let types = section(btf, hdr_len.saturating_add(type_off), type_len)?;
    let strings = section(btf, hdr_len.saturating_add(str_off), str_len)?;
    let wanted = name.as_bytes();

    let mut at = 0;
    let mut id = 1u32;
    while at < types.len() {
        let name_off = u32_at(types, at)? as usize;
        let info = u32_at(types, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if kind == KIND_FUNC && name_matches(strings, name_off, wanted) {
            return Ok(Some(id));
        }
        let extra = extra_len(kind, vlen).ok_or(BtfError::UnknownKind { id, kind })?;
        at += TYPE_LEN + extra;
        id += 1;
    }
    if at != types.len() {
        return Err(BtfError::Truncated);
    }
    Ok(None)
}

/// Whether the NUL-terminated string at `off` in `strings` is `wanted`.
fn name_matches(strings: &[u8], off: usize, wanted: &[u8]) -> bool {
    match strings.get(off..) {
        Some(s) => s.len() > wanted.len() && s.starts_with(wanted) && s[wanted.len()] == 0,
        None => false,
    }
}

/// The type id of kernel function `name` in the running kernel's BTF;
/// `None` when there is no BTF, it cannot be read, or has no such function.
pub(super) fn vmlinux_func_id(name: &str) -> Option<u32> {
    let btf = std::fs::read(VMLINUX_BTF).ok()?;
    func_id(&btf, name).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob: header, then `types` (each a `btf_type` plus its
    /// extra data, as u32 words), then the string table.
    fn blob(types: &[&[u32]], strings: &[u8]) -> Vec<u8> {
        let type_bytes: Vec<u8> = types
            .iter()
            .flat_map(|t| t.iter())
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        let mut b = Vec::new();
        b.extend(MAGIC.to_ne_bytes());
        b.extend([1, 0]); // version, flags
        for v in [24, 0, type_bytes.len(), type_bytes.len(), strings.len()] {
            b.extend((v as u32).to_ne_bytes());
        }
        b.extend(type_bytes);
        b.extend(strings);
        b
    }

    fn info(kind: u32, vlen: u32) -> u32 {
        (kind << 24) | vlen
    }

    const STRINGS: &[u8] = b"\0int\0skip_me\0target\0target_x\0";
    const INT: u32 = 1;
    const SKIP_ME: u32 = 5;
    const TARGET: u32 = 13;
    const TARGET_X: u32 = 20;

    /// One type of every sized kind, so a wrong size misplaces the rest.
    fn sample() -> Vec<u8> {
        blob(
            &[
                &[INT, info(1, 0), 4, 0x20],            // 1 INT
                &[0, info(2, 0), 1],                    // 2 PTR
                &[0, info(3, 0), 0, 1, 1, 4],           // 3 ARRAY
                &[0, info(4, 2), 8, 0, 1, 0, 0, 1, 32], // 4 STRUCT, 2 members
                &[0, info(6, 1), 4, INT, 0],            // 5 ENUM
                &[0, info(13, 2), 1, 0, 1, 0, 1],       // 6 FUNC_PROTO
                &[SKIP_ME, info(12, 0), 6],             // 7 FUNC skip_me
                &[INT, info(14, 0), 1, 1],              // 8 VAR
                &[0, info(15, 1), 4, 8, 0, 4],          // 9 DATASEC
                &[INT, info(17, 0), 7, u32::MAX],       // 10 DECL_TAG
                &[0, info(19, 1), 8, INT, 0, 0],        // 11 ENUM64
                &[TARGET_X, info(12, 0), 6],            // 12 FUNC target_x
                &[TARGET, info(16, 0), 4],              // 13 FLOAT "target"
                &[TARGET, info(12, 0), 6],              // 14 FUNC target
                &[0, info(5, 1), 4, 0, 1, 0],           // 15 UNION
            ],
            STRINGS,
        )
    }

    #[test]
    fn finds_funcs_by_exact_name_past_every_kind() {
        let b = sample();
        assert_eq!(func_id(&b, "target"), Ok(Some(14)));
        assert_eq!(func_id(&b, "target_x"), Ok(Some(12)));
        assert_eq!(func_id(&b, "skip_me"), Ok(Some(7)));
        // Only FUNCs count, and names match whole.
        assert_eq!(func_id(&b, "int"), Ok(None));
        assert_eq!(func_id(&b, "targ"), Ok(None));
        assert_eq!(func_id(&b, "absent"), Ok(None));
    }

    #[test]
    fn bad_blobs_are_errors_not_panics() {
        let b = sample();
        for cut in 0..b.len() {
            let r = func_id(&b[..cut], "absent");
            assert!(r.is_err(), "truncated at {cut}: {r:?}");
        }
        let mut wrong = b.clone();
        wrong[0] ^= 0xff;
        assert_eq!(func_id(&wrong, "target"), Err(BtfError::BadMagic));

        let unknown = blob(&[&[0, info(20, 0), 0]], STRINGS);
        assert_eq!(
            func_id(&unknown, "target"),
            Err(BtfError::UnknownKind { id: 1, kind: 20 })
        );
        // A name offset past the string table matches nothing.
        let far = blob(&[&[1000, info(12, 0), 0]], STRINGS);
        assert_eq!(func_id(&far, "target"), Ok(None));
        // A type section that ends inside a record.
        let mut short = blob(&[&[0, info(1, 0), 4, 0]], b"\0");
        short[12..16].copy_from_slice(&14u32.to_ne_bytes()); // type_len
        assert_eq!(func_id(&short, "x"), Err(BtfError::Truncated));
    }

    #[test]
    fn running_kernel_has_the_vlan_kfunc_when_it_has_btf() {
        if std::path::Path::new(VMLINUX_BTF).exists() {
            let t0 = std::time::Instant::now();
            let btf = std::fs::read(VMLINUX_BTF).unwrap();
            let id = func_id(&btf, "bpf_xdp_metadata_rx_vlan_tag").unwrap();
            eprintln!(
                "bpf_xdp_metadata_rx_vlan_tag: BTF id {id:?}, found in {:?}",
                t0.elapsed()
            );
            assert!(func_id(&btf, "bpf_redirect_map_does_not_exist")
                .unwrap()
                .is_none());
        }
    }
}
