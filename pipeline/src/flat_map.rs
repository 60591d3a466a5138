//! An open-addressing hash map from u64 keys to small `Copy` values, for
//! the MAC table's fast path.
//!
//! Linear probing in a power-of-two array kept at most half full, so a
//! lookup is a multiply, a mask and on average under two slot compares.
//! Deletion shifts later entries of the probe run back (no tombstones), so
//! lookups never slow down as entries come and go.

/// Marks a used slot; keys must not use the top bit.
const USED: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Slot<V> {
    /// `key | USED`, or 0 for an empty slot.
    tag: u64,
    value: V,
}

#[derive(Clone)]
pub struct FlatMap<V: Copy + Default> {
    slots: Vec<Slot<V>>,
    mask: usize,
    len: usize,
}

#[inline]
fn hash(key: u64) -> usize {
    // Fibonacci hashing: the multiply spreads the key's bits upwards; the
    // top bits are the best mixed, so fold them down.
    let h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 32)) as usize
}

impl<V: Copy + Default> FlatMap<V> {
    /// A map for up to `capacity` entries without growing.
    pub fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(4) * 2).next_power_of_two();
        FlatMap {
            slots: vec![
                Slot {
                    tag: 0,
                    value: V::default()
                };
                slots
            ],
            mask: slots - 1,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of `key`'s slot, or of the empty slot where it would go.
    #[inline]
    fn find(&self, key: u64) -> (usize, bool) {
        debug_assert!(key & USED == 0, "key uses the top bit");
        let tag = key | USED;
        let mut i = hash(key) & self.mask;
        loop {
            let t = self.slots[i].tag;
            if t == tag {
                return (i, true);
            }
            if t == 0 {
                return (i, false);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        match self.find(key) {
            (i, true) => Some(&self.slots[i].value),
            _ => None,
        }
    }

    #[inline]
    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        match self.find(key) {
            (i, true) => Some(&mut self.slots[i].value),
            _ => None,
        }
    }

    /// Inserts or replaces. Grows when more than half full.
    pub fn insert(&mut self, key: u64, value: V) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (i, found) = self.find(key);
        if !found {
            self.len += 1;
        }
        self.slots[i] = Slot {
            tag: key | USED,
            value,
        };
    }

    pub fn remove(&mut self, key: u64) -> Option<V> {
        let (mut hole, found) = self.find(key);
        if !found {
            return None;
        }
        let value = self.slots[hole].value;
        self.slots[hole].tag = 0;
        self.len -= 1;
        // Shift back every later entry of the run that may sit past the
        // hole, so no lookup stops early at it.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let t = self.slots[j].tag;
            if t == 0 {
                break;
            }
            let home = hash(t & !USED) & self.mask;
            // Entry j may move to the hole unless its home lies cyclically
            // in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j];
                self.slots[j].tag = 0;
                hole = j;
            }
        }
        Some(value)
    }

    pub fn clear(&mut self) {
        for s in &mut self.slots {
            s.tag = 0;
        }
        self.len = 0;
    }

    /// Keeps the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &V) -> bool) {
        let doomed: Vec<u64> = self
            .iter()
            .filter(|(k, v)| !keep(*k, v))
            .map(|(k, _)| k)
            .collect();
        for k in doomed {
            self.remove(k);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.slots
            .iter()
            .filter(|s| s.tag != 0)
            .map(|s| (s.tag & !USED, &s.value))
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let n = old.len() * 2;
        self.slots = vec![
            Slot {
                tag: 0,
                value: V::default()
            };
            n
        ];
        self.mask = n - 1;
        self.len = 0;
        for s in old.into_iter().filter(|s| s.tag != 0) {
            self.insert(s.tag & !USED, s.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hashmap_under_random_operations() {
        let mut m: FlatMap<u32> = FlatMap::with_capacity(8);
        let mut reference: HashMap<u64, u32> = HashMap::new();
        let mut x: u64 = 12345;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A small key space so inserts, hits and removals all happen,
            // with clustered keys to make long probe runs.
            let key = (x % 512) * 1024;
            match x % 3 {
                0 => {
                    m.insert(key, i);
                    reference.insert(key, i);
                }
                1 => assert_eq!(m.remove(key), reference.remove(&key)),
                _ => assert_eq!(m.get(key).copied(), reference.get(&key).copied()),
            }
            assert_eq!(m.len(), reference.len());
        }
        for (k, v) in &reference {
            assert_eq!(m.get(*k), Some(v));
        }
        assert_eq!(m.iter().count(), reference.len());
    }

    #[test]
    fn retain_and_clear() {
        let mut m: FlatMap<u8> = FlatMap::with_capacity(4);
        for k in 0..100u64 {
            m.insert(k, (k % 2) as u8);
        }
        m.retain(|_, v| *v == 0);
        assert_eq!(m.len(), 50);
        assert!(m.get(3).is_none() && m.get(4).is_some());
        m.clear();
        assert!(m.is_empty() && m.get(4).is_none());
    }
}
