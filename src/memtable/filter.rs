//! A bloom filter over a memtable's user keys, so that a point lookup of a
//! key the memtable does not hold skips the skiplist search. That search
//! is about twenty dependent cache misses in a full 64 MiB memtable; under
//! a random-write load it was a quarter of a reader's time, for keys that
//! were almost never there. RocksDB has the same filter behind an option
//! (`memtable_whole_key_filtering`); here it is always on, sized from the
//! write buffer (see [`filter_bytes`]).
//!
//! Cache-local, as the table filters (one 64-byte line per key, the same
//! hash and probes: a lookup hashes its key once for both), in memory
//! only. Bits are only ever set, by the one writer, before the entry that
//! sets them is published in the skiplist; a reader asks only for entries
//! at or below a sequence number published after their insert, so it sees
//! their bits.

use crate::table::bloom::local_probe;
use std::sync::atomic::{AtomicU64, Ordering};

/// Probes per key: what the table filters use at 10 bits per key.
const PROBES: u32 = 6;

/// Filter bytes for a memtable of `write_buffer_size` bytes (not counted
/// in the memtable's size, which is that of its entries): 1/64 of it,
/// about 12 bits per key for entries of a 100-byte value (fewer, and more
/// false positives, for smaller entries; a false positive costs only the
/// search the filter would have saved).
pub(crate) fn filter_bytes(write_buffer_size: usize) -> usize {
    write_buffer_size / 64
}

#[repr(C, align(64))]
struct Line([AtomicU64; 8]);

pub(super) struct KeyFilter {
    lines: Box<[Line]>,
}

impl KeyFilter {
    /// A filter of about `bytes` bytes (at least one line).
    pub(super) fn new(bytes: usize) -> KeyFilter {
        let lines = bytes.div_ceil(64).max(1);
        KeyFilter {
            lines: (0..lines)
                .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Records the key with filter hash `h`. Called only under the
    /// skiplist's writer lock (from its insert, before publishing), so each
    /// word is read and written back rather than or-ed atomically.
    pub(super) fn insert(&self, h: u64) {
        let (line, bits) = local_probe(h, self.lines.len(), PROBES);
        let line = &self.lines[line].0;
        for bit in bits {
            let word = &line[bit / 64];
            let v = word.load(Ordering::Relaxed);
            word.store(v | 1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// Starts loading the line of filter hash `h` into the cache, so that
    /// [`insert`](Self::insert) after the skiplist's search finds it there
    /// (waiting for it cost the writer about 5% of a random put).
    pub(super) fn prefetch(&self, h: u64) {
        let (line, _) = local_probe(h, self.lines.len(), 0);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it reads nothing into the program
        // and never faults; the address is inside `lines` anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.lines[line].0.as_ptr() as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = line;
    }

    /// Whether the key with filter hash `h` may have been inserted.
    pub(super) fn may_contain(&self, h: u64) -> bool {
        let (line, mut bits) = local_probe(h, self.lines.len(), PROBES);
        let line = &self.lines[line].0;
        bits.all(|bit| line[bit / 64].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::bloom_hash;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let n = 50_000u32;
        // 12 bits per key, as a 64 MiB memtable of 100-byte values.
        let f = KeyFilter::new(n as usize * 12 / 8);
        for i in 0..n {
            f.insert(bloom_hash(format!("key{i}").as_bytes()));
        }
        for i in 0..n {
            assert!(f.may_contain(bloom_hash(format!("key{i}").as_bytes())));
        }
        let fp = (0..n)
            .filter(|i| f.may_contain(bloom_hash(format!("absent{i}").as_bytes())))
            .count();
        assert!(fp < n as usize / 50, "{fp} false positives of {n}");
        // An empty filter holds nothing.
        let empty = KeyFilter::new(0);
        assert!(!empty.may_contain(bloom_hash(b"key")));
    }
}
