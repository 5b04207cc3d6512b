//! A bloom filter over the user keys of one table, in one of two layouts
//! told apart by the filter's last byte.
//!
//! ```text
//! legacy (formats 1-3):  bit array (m bytes)   | probes k: u8 (1..=30)
//! cache-local (format 4): lines (64 * L bytes) | probes k: u8 (1..=16) | 0xFF
//! ```
//!
//! Both start from the 64-bit hash of the user key ([`key_hash`]).
//!
//! Legacy: `h1 = h as u32`, `delta = (h >> 32) | 1`; probe `i` tests bit
//! `(h1 + i * delta) mod (8m)` (double hashing). Each probe lands on its own
//! cache line: a key absent from a table that is not in the CPU cache costs
//! up to k memory reads, and a 64-bit division each.
//!
//! Cache-local: the key's probes all fall in one 64-byte line (512 bits),
//! line `((h >> 32) * L) >> 32`. Probe `i` tests bit `x_i >> 23` of that
//! line, where `x_0 = h as u32` and `x_(i+1) = x_i * 0x9E37_79B9` (mod
//! 2^32): the top 9 bits of successive multiplications by the golden
//! ratio. One memory read per table and no division; the false-positive
//! rate at 10 bits per key is about 1% with k = 6 (measured in the tests
//! below), a little above the legacy layout's for the same bits.
//!
//! A filter this code cannot read (empty, a legacy k outside 1..=30, a
//! cache-local filter whose size is not whole lines or whose k is outside
//! 1..=16) answers "maybe": damage can cost time, never hide a key. Code
//! older than format 4 reads a cache-local filter's last byte as k = 255
//! and answers "maybe" too.

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

/// Last byte of a cache-local filter.
const LOCAL_MARKER: u8 = 0xFF;
const LINE_BYTES: usize = 64;
const LINE_BITS: u64 = 512;
/// Successive probe positions within a line.
const PROBE_MUL: u32 = 0x9E37_79B9;

/// Probes for `bits_per_key` in the cache-local layout: fewer than the
/// legacy layout's 0.69 * bits, since probes that share a line collide
/// more; 6 at 10 bits per key.
fn local_probes(bits_per_key: u32) -> u32 {
    ((bits_per_key as f64 * 0.6).round() as u32).clamp(1, 16)
}

/// The line of hash `h` among `lines` (multiply-shift instead of a
/// division).
fn line_of(h: u64, lines: usize) -> usize {
    (((h >> 32) * lines as u64) >> 32) as usize
}

/// Where the key with hash `h` sets its bits in a cache-local filter of
/// `lines` lines with `k` probes: its line, and the bits in that line
/// (0..512). Part of the format: never change.
pub(crate) fn local_probe(h: u64, lines: usize, k: u32) -> (usize, impl Iterator<Item = usize>) {
    let mut x = h as u32;
    let bits = (0..k).map(move |_| {
        let bit = (x >> 23) as usize;
        x = x.wrapping_mul(PROBE_MUL);
        bit
    });
    (line_of(h, lines), bits)
}

/// Builds a cache-local filter from key hashes.
pub(crate) fn build(hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
    let k = local_probes(bits_per_key);
    let bits = (hashes.len() as u64 * u64::from(bits_per_key)).max(LINE_BITS);
    let lines = bits.div_ceil(LINE_BITS) as usize;
    let mut out = vec![0u8; lines * LINE_BYTES + 2];
    for &h in hashes {
        let (line, bits) = local_probe(h, lines, k);
        let line = &mut out[line * LINE_BYTES..][..LINE_BYTES];
        for bit in bits {
            line[bit / 8] |= 1 << (bit % 8);
        }
    }
    out[lines * LINE_BYTES] = k as u8;
    out[lines * LINE_BYTES + 1] = LOCAL_MARKER;
    out
}

/// Builds a filter in the legacy layout (what format 3 and earlier wrote;
/// kept to test that such filters still read).
#[cfg(test)]
pub(crate) fn build_legacy(hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
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

/// One cache line of a cache-local filter, aligned so that a probe reads
/// exactly one line of memory.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; LINE_BYTES]);

/// A table's filter, parsed once when the table opens.
pub(crate) enum Filter {
    Legacy(Vec<u8>),
    Local {
        lines: Box<[Line]>,
        k: u32,
    },
    /// Unreadable: every key "may" be present.
    Malformed,
}

impl Filter {
    /// Parses the filter block's contents (kept as they are for the
    /// legacy layout).
    pub(crate) fn parse(raw: Vec<u8>) -> Filter {
        match raw.split_last() {
            Some((&LOCAL_MARKER, rest)) => {
                let Some((&k, array)) = rest.split_last() else {
                    return Filter::Malformed;
                };
                if array.is_empty() || array.len() % LINE_BYTES != 0 || !(1..=16).contains(&k) {
                    return Filter::Malformed;
                }
                let lines = array
                    .chunks_exact(LINE_BYTES)
                    .map(|c| Line(c.try_into().expect("whole lines")))
                    .collect();
                Filter::Local {
                    lines,
                    k: u32::from(k),
                }
            }
            Some((&k, array)) if !array.is_empty() && (1..=30).contains(&k) => Filter::Legacy(raw),
            _ => Filter::Malformed,
        }
    }

    /// Whether the key with hash `h` may be in the table.
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        match self {
            Filter::Local { lines, k } => {
                let (line, mut bits) = local_probe(h, lines.len(), *k);
                let line = &lines[line].0;
                bits.all(|bit| line[bit / 8] & (1 << (bit % 8)) != 0)
            }
            Filter::Legacy(raw) => legacy_may_contain(raw, h),
            Filter::Malformed => true,
        }
    }
}

/// [`Filter::may_contain`] for a legacy filter (its last byte is k).
fn legacy_may_contain(filter: &[u8], h: u64) -> bool {
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

/// Whether raw filter bytes may contain the key with hash `h`.
#[cfg(test)]
pub(crate) fn may_contain(filter: &[u8], h: u64) -> bool {
    Filter::parse(filter.to_vec()).may_contain(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn false_positive_rate(filter: &[u8], n: u32) -> f64 {
        let f = Filter::parse(filter.to_vec());
        let fp = (0..n)
            .filter(|i| f.may_contain(key_hash(format!("absent{i}").as_bytes())))
            .count();
        fp as f64 / n as f64
    }

    #[test]
    fn no_false_negatives_and_low_false_positive_rate() {
        let n = 100_000u32;
        let hashes: Vec<u64> = (0..n)
            .map(|i| key_hash(format!("key{i}").as_bytes()))
            .collect();
        for (layout, filter) in [
            ("cache-local", build(&hashes, 10)),
            ("legacy", build_legacy(&hashes, 10)),
        ] {
            let f = Filter::parse(filter.clone());
            assert!(hashes.iter().all(|&h| f.may_contain(h)), "{layout}");
            let rate = false_positive_rate(&filter, n);
            println!(
                "{layout} bloom false-positive rate at 10 bits/key: {:.3}%",
                rate * 100.0
            );
            assert!(rate <= 0.015, "{layout}: false-positive rate {rate}");
        }
        // Fewer bits, more false positives, still no false negatives.
        let filter = build(&hashes, 4);
        assert!(hashes.iter().all(|&h| may_contain(&filter, h)));
        assert!(false_positive_rate(&filter, n) < 0.25);
    }

    #[test]
    fn tiny_and_empty_filters() {
        for f in [build(&[], 10), build_legacy(&[], 10)] {
            assert!(!may_contain(&f, key_hash(b"x")));
        }
        for f in [
            build(&[key_hash(b"only")], 10),
            build_legacy(&[key_hash(b"only")], 10),
        ] {
            assert!(may_contain(&f, key_hash(b"only")));
        }
        assert!(may_contain(&[], 1));
    }

    #[test]
    fn malformed_filters_answer_maybe() {
        let hashes: Vec<u64> = (0..1000u32).map(|i| key_hash(&i.to_le_bytes())).collect();
        let good = build(&hashes, 10);
        let absent = (0..10_000u64)
            .map(|i| key_hash(&(i + 1_000_000).to_le_bytes()))
            .find(|&h| !may_contain(&good, h))
            .expect("some key is filtered out");
        let lines = good.len() - 2;
        let mut damaged = Vec::new();
        // Not whole lines.
        damaged.push([&good[..lines - 1], &good[lines..]].concat());
        // k out of range.
        for k in [0u8, 17, 200] {
            let mut f = good.clone();
            f[lines] = k;
            damaged.push(f);
        }
        // Only the trailer.
        damaged.push(good[lines..].to_vec());
        damaged.push(vec![LOCAL_MARKER]);
        for f in damaged {
            assert!(
                may_contain(&f, absent),
                "{:?}",
                &f[f.len().saturating_sub(3)..]
            );
        }
        // A legacy reader sees k = 255 and answers maybe.
        assert!(legacy_may_contain(&good, absent));
    }
}
