//! The fields of `vswctl trace` (OVS's `ofproto/trace` names): a frame
//! built from them, and a test of whether a real frame matches them (for
//! `trace --live`).

use std::net::Ipv4Addr;

/// The fields given; `None` = not given (any value, for a match; a
/// default, for a built frame).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub dl_src: Option<[u8; 6]>,
    pub dl_dst: Option<[u8; 6]>,
    pub dl_vlan: Option<u16>,
    pub dl_type: Option<u16>,
    pub nw_src: Option<Ipv4Addr>,
    pub nw_dst: Option<Ipv4Addr>,
    pub nw_proto: Option<u8>,
    pub tp_src: Option<u16>,
    pub tp_dst: Option<u16>,
}

pub const NAMES: &[&str] = &[
    "dl_src", "dl_dst", "dl_vlan", "dl_type", "nw_src", "nw_dst", "nw_proto", "tp_src", "tp_dst",
];

/// A field given is one the frame has.
fn eq<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
    want.is_none() || want == have
}

impl Fields {
    /// Sets one `name=value` word; Err says what is wrong.
    pub fn set(&mut self, word: &str) -> Result<(), String> {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("\"{word}\" is not FIELD=VALUE"))?;
        let bad = |what: &str| format!("{k}: \"{v}\" is not {what}");
        match k {
            "dl_src" | "dl_dst" => {
                let mac = parse_mac(v).ok_or_else(|| bad("a MAC address"))?;
                if k == "dl_src" {
                    self.dl_src = Some(mac);
                } else {
                    self.dl_dst = Some(mac);
                }
            }
            "dl_vlan" => {
                self.dl_vlan = Some(
                    v.parse()
                        .ok()
                        .filter(|x| *x <= 4095)
                        .ok_or_else(|| bad("a VLAN id (0 to 4095)"))?,
                )
            }
            "dl_type" => self.dl_type = Some(parse_u16(v).ok_or_else(|| bad("an EtherType"))?),
            "nw_src" => self.nw_src = Some(v.parse().map_err(|_| bad("an IPv4 address"))?),
            "nw_dst" => self.nw_dst = Some(v.parse().map_err(|_| bad("an IPv4 address"))?),
            "nw_proto" => self.nw_proto = Some(v.parse().map_err(|_| bad("a protocol number"))?),
            "tp_src" => self.tp_src = Some(v.parse().map_err(|_| bad("a port number"))?),
            "tp_dst" => self.tp_dst = Some(v.parse().map_err(|_| bad("a port number"))?),
            _ => {
                return Err(format!(
                    "unknown field \"{k}\" (known: {})",
                    NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// The frame these fields describe: Ethernet (with an 802.1Q tag for
    /// `dl_vlan`), and for IPv4 (the default) an IP header with a TCP, UDP
    /// or ICMP echo header after it, padded to 60 bytes.
    pub fn frame(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(80);
        f.extend_from_slice(&self.dl_dst.unwrap_or([0xff; 6]));
        f.extend_from_slice(&self.dl_src.unwrap_or([0x02, 0, 0, 0, 0, 1]));
        if let Some(vid) = self.dl_vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        let ty = self.dl_type.unwrap_or(0x0800);
        f.extend_from_slice(&ty.to_be_bytes());
        if ty == 0x0800 {
            let proto = self.nw_proto.unwrap_or(0);
            let l4: Vec<u8> = match proto {
                6 => {
                    let mut t = vec![0u8; 20];
                    t[0..2].copy_from_slice(&self.tp_src.unwrap_or(0).to_be_bytes());
                    t[2..4].copy_from_slice(&self.tp_dst.unwrap_or(0).to_be_bytes());
                    t[12] = 5 << 4;
                    t[13] = 0x02; // SYN
                    t
                }
                17 => {
                    let mut u = vec![0u8; 8];
                    u[0..2].copy_from_slice(&self.tp_src.unwrap_or(0).to_be_bytes());
                    u[2..4].copy_from_slice(&self.tp_dst.unwrap_or(0).to_be_bytes());
                    u[4..6].copy_from_slice(&8u16.to_be_bytes());
                    u
                }
                1 => vec![8, 0, 0, 0, 0, 1, 0, 1],
                _ => Vec::new(),
            };
            let total = 20 + l4.len() as u16;
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[8] = 64;
            ip[9] = proto;
            ip[12..16].copy_from_slice(&self.nw_src.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
            ip[16..20].copy_from_slice(&self.nw_dst.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
            let sum = pipeline::checksum::fold(pipeline::checksum::sum(&ip, 0));
            ip[10..12].copy_from_slice(&(!sum).to_be_bytes());
            let l3 = f.len();
            f.extend_from_slice(&ip);
            let l4_at = f.len();
            f.extend_from_slice(&l4);
            let l4_len = l4.len();
            if l4_len > 0 {
                let sum_at = match proto {
                    6 => 16,
                    17 => 6,
                    _ => 2,
                };
                let mut s = pipeline::checksum::sum(&f[l4_at..], 0);
                if proto != 1 {
                    s = pipeline::checksum::sum(&f[l3 + 12..l3 + 20], s);
                    s += u64::from(proto) + l4_len as u64;
                }
                let c = !pipeline::checksum::fold(s);
                f[l4_at + sum_at..l4_at + sum_at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        if f.len() < 60 {
            f.resize(60, 0);
        }
        f
    }

    /// Whether `frame` has every field given.
    pub fn matches(&self, frame: &[u8]) -> bool {
        let Some(got) = Fields::of(frame) else {
            return false;
        };
        eq(self.dl_src, got.dl_src)
            && eq(self.dl_dst, got.dl_dst)
            && eq(self.dl_vlan, got.dl_vlan)
            && eq(self.dl_type, got.dl_type)
            && eq(self.nw_src, got.nw_src)
            && eq(self.nw_dst, got.nw_dst)
            && eq(self.nw_proto, got.nw_proto)
            && eq(self.tp_src, got.tp_src)
            && eq(self.tp_dst, got.tp_dst)
    }

    /// The fields of a frame (`None` if shorter than an Ethernet header).
    pub fn of(frame: &[u8]) -> Option<Fields> {
        let be16 = |at: usize| Some(u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?));
        let mut f = Fields {
            dl_dst: Some(frame.get(0..6)?.try_into().ok()?),
            dl_src: Some(frame.get(6..12)?.try_into().ok()?),
            ..Fields::default()
        };
        let mut at = 12;
        let mut ty = be16(at)?;
        if ty == 0x8100 || ty == 0x88a8 {
            f.dl_vlan = Some(be16(14)? & 0xfff);
            at = 16;
            ty = be16(at)?;
        }
        f.dl_type = Some(ty);
        let ip = at + 2;
        if ty == 0x0800 && frame.len() >= ip + 20 && frame[ip] >> 4 == 4 {
            let ihl = usize::from(frame[ip] & 0xf) * 4;
            f.nw_proto = Some(frame[ip + 9]);
            f.nw_src = Some(Ipv4Addr::from(
                <[u8; 4]>::try_from(&frame[ip + 12..ip + 16]).ok()?,
            ));
            f.nw_dst = Some(Ipv4Addr::from(
                <[u8; 4]>::try_from(&frame[ip + 16..ip + 20]).ok()?,
            ));
            if matches!(frame[ip + 9], 6 | 17) {
                f.tp_src = be16(ip + ihl);
                f.tp_dst = be16(ip + ihl + 2);
            }
        }
        Some(f)
    }
}

fn parse_u16(v: &str) -> Option<u16> {
    match v.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

pub fn parse_mac(v: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = v
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

/// A frame given as hex (`--frame HEX`; spaces and colons allowed).
pub fn parse_hex(v: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = v.bytes().filter(|b| !b" :\n\t".contains(b)).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("--frame: an odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| "--frame: not hex".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_frame_reads_back_as_its_fields_and_matches_them() {
        let mut f = Fields::default();
        for w in [
            "dl_src=02:00:00:00:00:0a",
            "dl_dst=02:00:00:00:00:0b",
            "dl_vlan=100",
            "nw_src=10.0.0.1",
            "nw_dst=10.0.0.2",
            "nw_proto=17",
            "tp_src=1000",
            "tp_dst=53",
        ] {
            f.set(w).unwrap();
        }
        let frame = f.frame();
        let got = Fields::of(&frame).unwrap();
        assert_eq!(got.dl_vlan, Some(100));
        assert_eq!(got.tp_dst, Some(53));
        assert!(f.matches(&frame));
        let mut other = f.clone();
        other.tp_dst = Some(54);
        assert!(!other.matches(&frame));
        assert!(Fields::default().matches(&frame));
        // The checksums verify.
        let ip = &frame[18..38];
        assert_eq!(
            pipeline::checksum::fold(pipeline::checksum::sum(ip, 0)),
            0xffff
        );
    }

    #[test]
    fn bad_fields_say_what_is_wrong() {
        let mut f = Fields::default();
        assert!(f.set("dl_vlan=5000").unwrap_err().contains("VLAN id"));
        assert!(f.set("nw_src=1.2.3").unwrap_err().contains("IPv4"));
        assert!(f.set("colour=red").unwrap_err().contains("unknown field"));
        assert!(f.set("dl_src").unwrap_err().contains("FIELD=VALUE"));
        assert_eq!(parse_hex("0a:0B ff").unwrap(), vec![10, 11, 255]);
        assert!(parse_hex("abc").is_err());
    }
}
