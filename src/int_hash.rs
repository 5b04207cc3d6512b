//! A hasher for maps keyed by file numbers and block offsets.
//!
//! The standard map's SipHash resists keys chosen to collide, which costs
//! about as much as the rest of a block-cache hit; these keys come from
//! the engine's own MANIFEST and table indexes, not from users. Each word
//! is mixed in with a multiply, and `finish` runs a full avalanche so that
//! offsets (multiples of about a block size, low bits all zero) still
//! spread over the low bits that pick a bucket.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map with integer (or integer tuple) keys.
pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        // The MurmurHash3 64-bit finaliser.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn block_offsets_spread_over_low_bits() {
        // 4096 keys of one file at 4 KiB steps must fill most of 4096
        // buckets picked by the low 12 bits.
        let build = BuildHasherDefault::<IntHasher>::default();
        let mut used = std::collections::HashSet::new();
        for i in 0..4096u64 {
            used.insert(build.hash_one((7u64, i * 4096)) & 0xfff);
        }
        assert!(used.len() > 2400, "{} buckets of 4096", used.len());
    }

    #[test]
    fn map_works() {
        let mut m: IntMap<(u64, u64), u32> = IntMap::default();
        for i in 0..1000u64 {
            m.insert((i % 7, i * 4096), i as u32);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(3, 10 * 4096)), Some(&10));
    }
}
