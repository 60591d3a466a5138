//! Deterministic pseudo-random data that both ends of a transfer can
//! compute independently: byte `i` of stream `seed` is the same whichever
//! chunk sizes the sender and receiver use.

/// SplitMix64: a strong 64-bit mixer (Steele, Lea, Flood 2014).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 8 bytes of stream `seed` that start at offset `word * 8`.
fn word(seed: u64, word: u64) -> [u8; 8] {
    splitmix64(seed ^ splitmix64(word)).to_le_bytes()
}

/// Fills `buf` with stream `seed` from byte offset `offset` on.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let w = word(seed, pos / 8);
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// Index (within `buf`) of the first byte that differs from stream `seed`
/// at `offset`, or None when all match.
pub fn first_mismatch(seed: u64, offset: u64, buf: &[u8]) -> Option<usize> {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let w = word(seed, pos / 8);
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        if buf[i..i + n] != w[start..start + n] {
            let k = (0..n).find(|&k| buf[i + k] != w[start + k]).unwrap_or(0);
            return Some(i + k);
        }
        i += n;
        pos += n as u64;
    }
    None
}

/// A small seeded generator for test decisions (random MACs, operation
/// choices). Same seed, same sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_matter() {
        let mut whole = vec![0u8; 1000];
        fill(7, 3, &mut whole);
        let mut parts = vec![0u8; 1000];
        let (a, b) = parts.split_at_mut(13);
        fill(7, 3, a);
        fill(7, 16, b);
        assert_eq!(whole, parts);
        assert_eq!(first_mismatch(7, 3, &whole), None);
        assert_eq!(first_mismatch(7, 100, &whole[97..]), None);
    }

    #[test]
    fn every_flipped_byte_is_found() {
        let mut buf = vec![0u8; 64];
        fill(42, 5, &mut buf);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            assert_eq!(first_mismatch(42, 5, &bad), Some(i));
        }
        assert!(first_mismatch(43, 5, &buf).is_some(), "other seed matched");
        assert!(
            first_mismatch(42, 6, &buf).is_some(),
            "shifted stream matched"
        );
    }
}
