//! A small pcapng reader, independent of the daemon's writer, for the
//! capture tests: interfaces by name, and each packet's interface,
//! direction, timestamp, lengths, bytes and comment.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Packet {
    pub iface: usize,
    pub dir: Dir,
    pub ts_ns: u64,
    pub orig_len: usize,
    pub data: Vec<u8>,
    pub comment: Option<String>,
}

#[derive(Debug, Default)]
pub struct File {
    pub interfaces: Vec<String>,
    /// Per interface, from its statistics block: (received, dropped).
    pub stats: Vec<(usize, u64, u64)>,
    pub packets: Vec<Packet>,
}

impl File {
    /// Packets of interface `name`.
    pub fn on(&self, name: &str) -> Vec<&Packet> {
        let i = self.interfaces.iter().position(|n| n == name);
        self.packets.iter().filter(|p| Some(p.iface) == i).collect()
    }
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Options from `at` to the end of the block body: (code, value).
fn options(b: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while at + 4 <= b.len() {
        let (code, len) = (u16le(b, at), u16le(b, at + 2) as usize);
        if code == 0 || at + 4 + len > b.len() {
            break;
        }
        out.push((code, b[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.div_ceil(4) * 4;
    }
    out
}

/// Parses a little-endian pcapng file; Err says what is wrong. A file
/// that ends inside a block is an error (the capture must never leave
/// one).
pub fn parse(bytes: &[u8]) -> Result<File, String> {
    let mut f = File::default();
    let mut at = 0;
    while at < bytes.len() {
        if at + 12 > bytes.len() {
            return Err(format!("{} stray bytes at the end", bytes.len() - at));
        }
        let (kind, len) = (u32le(bytes, at), u32le(bytes, at + 4) as usize);
        if len < 12 || len % 4 != 0 || at + len > bytes.len() {
            return Err(format!("block at {at} has a bad length {len}"));
        }
        if u32le(bytes, at + len - 4) as usize != len {
            return Err(format!("block at {at}: trailing length differs"));
        }
        let body = &bytes[at + 8..at + len - 4];
        match kind {
            0x0A0D_0D0A if u32le(body, 0) != 0x1A2B_3C4D => {
                return Err("not a little-endian section".into())
            }
            1 => {
                let name = options(body, 8)
                    .into_iter()
                    .find(|(c, _)| *c == 2)
                    .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_default();
                f.interfaces.push(name);
            }
            6 => {
                let iface = u32le(body, 0) as usize;
                let ts_ns = (u64::from(u32le(body, 4)) << 32) | u64::from(u32le(body, 8));
                let cap = u32le(body, 12) as usize;
                let orig_len = u32le(body, 16) as usize;
                let data = body[20..20 + cap].to_vec();
                let opts = options(body, 20 + cap.div_ceil(4) * 4);
                let dir = match opts.iter().find(|(c, _)| *c == 2) {
                    Some((_, v)) if v.len() == 4 => match u32le(v, 0) & 3 {
                        1 => Dir::In,
                        2 => Dir::Out,
                        _ => Dir::Unknown,
                    },
                    _ => Dir::Unknown,
                };
                let comment = opts
                    .iter()
                    .find(|(c, _)| *c == 1)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                f.packets.push(Packet {
                    iface,
                    dir,
                    ts_ns,
                    orig_len,
                    data,
                    comment,
                });
            }
            5 => {
                let iface = u32le(body, 0) as usize;
                let opts = options(body, 12);
                let get = |code| {
                    opts.iter()
                        .find(|(c, v)| *c == code && v.len() == 8)
                        .map_or(0, |(_, v)| u64le(v, 0))
                };
                f.stats.push((iface, get(4), get(5)));
            }
            _ => {}
        }
        at += len;
    }
    Ok(f)
}

pub fn read(path: &Path) -> Result<File, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&bytes)
}
