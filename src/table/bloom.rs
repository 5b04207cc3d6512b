//! A bloom filter over the user keys of one table.
//!
//! ```text
//! filter := bit array (m bytes) | probes k: u8
//! ```
//!
//! A key's 64-bit hash `h` gives `h1 = h as u32` and `delta = (h >> 32)`
//! (made odd); probe `i` sets bit `(h1 + i * delta) mod (8m)` (double
//! hashing). With 10 bits per key and k = 7 the false-positive rate is
//! about 1%.

/// Hash of a user key for the filter: FNV-1a, then a 64-bit finaliser so
/// that both halves are well mixed. Part of the format: never change.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Builds a filter from key hashes.
pub(crate) fn build(hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
    let k = ((bits_per_key as f64 * 0.69).round() as u32).clamp(1, 30);
    let bits = (hashes.len() as u64 * u64::from(bits_per_key)).max(64);
    let bytes = bits.div_ceil(8) as usize;
    let bits = bytes as u64 * 8;
    let mut out = vec![0u8; bytes + 1];
    for &h in hashes {
        let mut pos = h as u32 as u64;
        let delta = (h >> 32) | 1;
        for _ in 0..k {
            let bit = pos % bits;
            out[(bit / 8) as usize] |= 1 << (bit % 8);
            pos = pos.wrapping_add(delta);
        }
    }
    out[bytes] = k as u8;
    out
}

/// Whether the filter may contain the key with hash `h`. A malformed
/// filter answers "maybe" so that it can never hide a key.
pub(crate) fn may_contain(filter: &[u8], h: u64) -> bool {
    let Some((&k, array)) = filter.split_last() else {
        return true;
    };
    if array.is_empty() || k == 0 || k > 30 {
        return true;
    }
    let bits = array.len() as u64 * 8;
    let mut pos = h as u32 as u64;
    let delta = (h >> 32) | 1;
    for _ in 0..k {
        let bit = pos % bits;
        if array[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return false;
        }
        pos = pos.wrapping_add(delta);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_low_false_positive_rate() {
        let n = 100_000u32;
        let hashes: Vec<u64> = (0..n)
            .map(|i| key_hash(format!("key{i}").as_bytes()))
            .collect();
        let filter = build(&hashes, 10);
        assert!(hashes.iter().all(|&h| may_contain(&filter, h)));
        let fp = (0..n)
            .filter(|i| may_contain(&filter, key_hash(format!("absent{i}").as_bytes())))
            .count();
        let rate = fp as f64 / n as f64;
        println!(
            "bloom false-positive rate at 10 bits/key: {:.3}%",
            rate * 100.0
        );
        assert!(rate <= 0.02, "false-positive rate {rate}");
    }

    #[test]
    fn tiny_and_empty_filters() {
        let f = build(&[], 10);
        assert!(!may_contain(&f, key_hash(b"x")));
        let f = build(&[key_hash(b"only")], 10);
        assert!(may_contain(&f, key_hash(b"only")));
        assert!(may_contain(&[], 1));
    }
}
