//! BPDUs on the wire (IEEE 802.1D-2004 clause 9): 802.3 length, LLC
//! 42-42-03, then the BPDU. RST BPDUs (version 2) are sent; RST and
//! configuration BPDUs are read, and a topology change notification is
//! read as a topology change.

use pipeline::stp::BPDU_MAC;

/// Flags of an RST BPDU.
pub const TC: u8 = 0x01;
pub const PROPOSAL: u8 = 0x02;
pub const LEARNING: u8 = 0x10;
pub const FORWARDING: u8 = 0x20;
pub const AGREEMENT: u8 = 0x40;
const ROLE_SHIFT: u8 = 2;

/// The port role a BPDU announces (flags bits 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireRole {
    Unknown = 0,
    AlternateOrBackup = 1,
    Root = 2,
    Designated = 3,
}

/// A spanning-tree priority vector as a BPDU carries it: lower is better,
/// compared field by field in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Vector {
    pub root: u64,
    pub cost: u32,
    pub bridge: u64,
    pub port: u16,
}

/// Timer values a BPDU carries, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub message_age: u16,
    pub max_age: u16,
    pub hello: u16,
    pub forward_delay: u16,
}

/// One BPDU, read or to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bpdu {
    pub vector: Vector,
    pub times: Times,
    pub flags: u8,
    /// A topology change notification (802.1D's 4-byte BPDU): nothing but
    /// the news that the topology changed.
    pub tcn: bool,
}

impl Bpdu {
    pub fn role(&self) -> WireRole {
        match (self.flags >> ROLE_SHIFT) & 3 {
            1 => WireRole::AlternateOrBackup,
            2 => WireRole::Root,
            3 => WireRole::Designated,
            _ => WireRole::Unknown,
        }
    }

    pub fn with_role(mut self, r: WireRole) -> Bpdu {
        self.flags = (self.flags & !(3 << ROLE_SHIFT)) | ((r as u8) << ROLE_SHIFT);
        self
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

const LLC: [u8; 3] = [0x42, 0x42, 0x03];
/// Ethernet header, then LLC.
const BODY: usize = 14 + 3;
const RST_LEN: usize = 36;
const CONFIG_LEN: usize = 35;

/// Reads a BPDU frame; `None` for anything that is not a BPDU this switch
/// understands (too short, not LLC 42-42-03, unknown version or type, a
/// message age at or beyond its maximum age).
pub fn parse(frame: &[u8]) -> Option<Bpdu> {
    if frame.len() < BODY + 4 || frame[..6] != BPDU_MAC || frame[14..17] != LLC {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([frame[12], frame[13]]));
    if !(3 + 4..=1500).contains(&len) {
        return None;
    }
    let b = &frame[BODY..frame.len().min(14 + len)];
    if b[0..2] != [0, 0] {
        return None;
    }
    let (version, kind) = (b[2], b[3]);
    let need = match (version, kind) {
        (_, 0x80) => {
            return Some(Bpdu {
                vector: Vector::default(),
                times: Times {
                    message_age: 0,
                    max_age: 0,
                    hello: 0,
                    forward_delay: 0,
                },
                flags: TC,
                tcn: true,
            })
        }
        (0, 0x00) => CONFIG_LEN,
        (v, 0x02) if v >= 2 => RST_LEN,
        _ => return None,
    };
    if b.len() < need {
        return None;
    }
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let secs = |i: usize| u16_at(i) / 256;
    let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let mut flags = b[4];
    if kind == 0x00 {
        // A configuration BPDU: TC and TCA only; the sender is designated.
        flags = (flags & (TC | 0x80)) | ((WireRole::Designated as u8) << ROLE_SHIFT) | FORWARDING;
    }
    let times = Times {
        message_age: secs(27),
        max_age: secs(29),
        hello: secs(31),
        forward_delay: secs(33),
    };
    if times.message_age >= times.max_age {
        return None;
    }
    Some(Bpdu {
        vector: Vector {
            root: u64_at(5),
            cost: u32::from_be_bytes([b[13], b[14], b[15], b[16]]),
            bridge: u64_at(17),
            port: u16_at(25),
        },
        times,
        flags,
        tcn: false,
    })
}

/// An RST BPDU frame from `src` (padded to the Ethernet minimum).
pub fn build(src: [u8; 6], bpdu: &Bpdu) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&BPDU_MAC);
    f.extend_from_slice(&src);
    f.extend_from_slice(&((3 + RST_LEN) as u16).to_be_bytes());
    f.extend_from_slice(&LLC);
    f.extend_from_slice(&[0, 0, 2, 2, bpdu.flags]);
    f.extend_from_slice(&bpdu.vector.root.to_be_bytes());
    f.extend_from_slice(&bpdu.vector.cost.to_be_bytes());
    f.extend_from_slice(&bpdu.vector.bridge.to_be_bytes());
    f.extend_from_slice(&bpdu.vector.port.to_be_bytes());
    let t = &bpdu.times;
    for s in [t.message_age, t.max_age, t.hello, t.forward_delay] {
        f.extend_from_slice(&(s.saturating_mul(256)).to_be_bytes());
    }
    f.push(0); // version 1 length
    f.resize(60, 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bpdu {
        Bpdu {
            vector: Vector {
                root: 0x8000_0200_0000_0001,
                cost: 20_000,
                bridge: 0x8000_0200_0000_0002,
                port: 0x8003,
            },
            times: Times {
                message_age: 1,
                max_age: 20,
                hello: 2,
                forward_delay: 15,
            },
            flags: PROPOSAL | TC,
            tcn: false,
        }
        .with_role(WireRole::Designated)
    }

    #[test]
    fn build_then_parse_is_the_same_bpdu() {
        let b = sample();
        let f = build([2, 0, 0, 0, 0, 9], &b);
        assert_eq!(f.len(), 60);
        assert_eq!(parse(&f), Some(b));
        assert_eq!(parse(&f).unwrap().role(), WireRole::Designated);
    }

    #[test]
    fn the_wire_layout_is_802_1d() {
        // Fixed offsets of an RST BPDU, as a packet dissector reads them.
        let f = build([2, 0, 0, 0, 0, 9], &sample());
        assert_eq!(&f[12..14], &[0, 39]);
        assert_eq!(&f[14..21], &[0x42, 0x42, 0x03, 0, 0, 2, 2]);
        assert_eq!(f[21], PROPOSAL | TC | (3 << 2));
        assert_eq!(&f[22..24], &[0x80, 0x00]);
        assert_eq!(&f[30..34], &20_000u32.to_be_bytes());
        assert_eq!(&f[42..44], &[0x80, 0x03]);
        assert_eq!(&f[44..46], &[1, 0]); // message age 1 s
        assert_eq!(&f[50..52], &[15, 0]); // forward delay 15 s
    }

    #[test]
    fn configuration_bpdus_and_tcns_are_read() {
        let mut f = build([2, 0, 0, 0, 0, 9], &sample());
        f[19] = 0; // version 0
        f[20] = 0; // configuration BPDU
        f[21] = TC | PROPOSAL;
        let b = parse(&f).unwrap();
        assert_eq!(b.role(), WireRole::Designated);
        assert!(b.has(TC) && !b.has(PROPOSAL));
        let mut tcn = f[..21].to_vec();
        tcn[20] = 0x80;
        tcn[12..14].copy_from_slice(&7u16.to_be_bytes());
        assert!(parse(&tcn).unwrap().tcn);
    }

    #[test]
    fn garbage_is_not_a_bpdu() {
        let good = build([2, 0, 0, 0, 0, 9], &sample());
        for cut in 0..40 {
            assert_eq!(parse(&good[..cut]), None, "cut at {cut}");
        }
        let mut llc = good.clone();
        llc[16] = 0x13;
        assert_eq!(parse(&llc), None);
        let mut old = good.clone();
        old[44] = 20; // message age 20 s = max age
        assert_eq!(parse(&old), None);
        let mut kind = good;
        kind[20] = 0x7;
        assert_eq!(parse(&kind), None);
    }
}
