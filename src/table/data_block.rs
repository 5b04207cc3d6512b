//! Data blocks as they are stored (after decompression), read in place.
//!
//! A data block is kept in the block cache exactly as its bytes are (the
//! layout is in `block.rs`): nothing is decoded when it is loaded. A
//! [`BlockCursor`] finds an entry by a binary search over the restart
//! points (whose keys are stored whole) and a short forward scan from
//! there, rebuilding only the keys it passes, as LevelDB and RocksDB do.
//! Decoding every key of a block on each cache miss cost a block read
//! more than its decompression, and held each key twice in the cache.
//!
//! The bytes passed a CRC check bound to the block's file and offset
//! before they got here, so a malformed entry means a bug or a forged
//! file: the cursor checks every length against the block's bounds and
//! reports a bad entry as an error, never a panic. `Block::decode` (used
//! by `verify`) still checks everything, key order included.

use crate::types::compare_internal_keys;
use std::cmp::Ordering;
use std::sync::Arc;

/// A data block's bytes with its restart array located.
pub(crate) struct DataBlock {
    /// A plain vector: the block cache hands an evicted block's memory to
    /// the next block read (see `block_cache`), which `Bytes` would copy.
    data: Vec<u8>,
    /// Where the restart array starts: entries lie before it.
    restarts_at: usize,
    restarts: usize,
}

/// A value inside a data block, keeping the block alive.
pub(crate) struct BlockValue {
    block: Arc<DataBlock>,
    start: usize,
    end: usize,
}

impl std::ops::Deref for BlockValue {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.block.data[self.start..self.end]
    }
}

impl DataBlock {
    /// Checks that the restart array fits and points, in order, inside the
    /// entries.
    pub(crate) fn new(data: Vec<u8>) -> Result<DataBlock, String> {
        let (restarts_at, restarts) = super::block::locate_restarts(&data)?;
        let block = DataBlock {
            data,
            restarts_at,
            restarts,
        };
        let mut prev = None;
        for i in 0..restarts {
            let r = block.restart(i);
            let in_bounds = r < restarts_at || (r == 0 && restarts_at == 0);
            if !in_bounds || prev.is_some_and(|p| r <= p) {
                return Err(format!("bad restart point {i} ({r})"));
            }
            prev = Some(r);
        }
        Ok(block)
    }

    fn restart(&self, i: usize) -> usize {
        let at = self.restarts_at + 4 * i;
        u32::from_le_bytes([
            self.data[at],
            self.data[at + 1],
            self.data[at + 2],
            self.data[at + 3],
        ]) as usize
    }

    /// Restart point `i`, or the end of the entries when there is none.
    fn restart_or_end(&self, i: usize) -> usize {
        if i < self.restarts {
            self.restart(i)
        } else {
            self.restarts_at
        }
    }

    /// The block's memory, for reuse.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.data
    }

    /// Memory the cached block holds (its buffer's capacity: a reused
    /// buffer can be larger than the block).
    pub(crate) fn charge(&self) -> usize {
        self.data.capacity() + 64
    }

    /// The entry header at `at`: (shared, unshared, value length, where
    /// the key bytes start), each checked against the entries' end.
    fn header(&self, at: usize) -> Result<(usize, usize, usize, usize), String> {
        super::block::entry_header(&self.data[..self.restarts_at], at)
    }

    /// The whole key stored at restart point `i`.
    fn restart_key(&self, i: usize) -> Result<&[u8], String> {
        let at = self.restart(i);
        let (shared, unshared, _, key_at) = self.header(at)?;
        if shared != 0 {
            return Err(format!(
                "restart entry at block offset {at} shares a prefix"
            ));
        }
        Ok(&self.data[key_at..key_at + unshared])
    }
}

/// A two-way cursor over one data block.
pub(crate) struct BlockCursor {
    block: Arc<DataBlock>,
    /// Offset of the current entry; `restarts_at` when not on one.
    current: usize,
    /// Offset of the entry after the current one.
    next: usize,
    /// The restart point at or before `current`.
    restart_index: usize,
    /// Where the restart point after it is (`restarts_at` past the last).
    next_restart: usize,
    key: Vec<u8>,
    value: (usize, usize),
    error: Option<String>,
    /// Entries of the current restart interval before the current one,
    /// recorded while scanning forward to step back: each further `prev`
    /// in the interval pops one instead of scanning it again (the scan is
    /// the only way back, since keys are prefix-compressed forwards).
    behind: Vec<Behind>,
    /// Their keys, one after another.
    behind_keys: Vec<u8>,
    /// The restart interval they are all in.
    behind_restart: usize,
}

/// An entry recorded by [`BlockCursor::prev`]'s forward scan.
struct Behind {
    current: usize,
    next: usize,
    key_start: usize,
    value: (usize, usize),
}

impl BlockCursor {
    /// An unpositioned cursor, rebuilding keys in `key_buf` (so a caller
    /// that moves between blocks can keep one allocation).
    pub(crate) fn new(block: Arc<DataBlock>, mut key_buf: Vec<u8>) -> BlockCursor {
        key_buf.clear();
        let end = block.restarts_at;
        BlockCursor {
            block,
            current: end,
            next: end,
            restart_index: 0,
            next_restart: end,
            key: key_buf,
            value: (0, 0),
            error: None,
            behind: Vec::new(),
            behind_keys: Vec::new(),
            behind_restart: 0,
        }
    }

    /// The key buffer, for the next cursor.
    pub(crate) fn into_key_buf(self) -> Vec<u8> {
        self.key
    }

    pub(crate) fn valid(&self) -> bool {
        self.current < self.block.restarts_at
    }

    /// Why the cursor stopped, when it stopped on a malformed entry.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn value(&self) -> &[u8] {
        &self.block.data[self.value.0..self.value.1]
    }

    /// The value, sharing the block's memory.
    pub(crate) fn value_ref(&self) -> BlockValue {
        BlockValue {
            block: self.block.clone(),
            start: self.value.0,
            end: self.value.1,
        }
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_at;
        self.next = self.block.restarts_at;
        self.restart_index = self.block.restarts;
        self.next_restart = usize::MAX;
    }

    fn corrupt(&mut self, why: String) {
        self.error = Some(why);
        self.invalidate();
    }

    fn go_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.restart_index = i;
        self.next_restart = self.block.restart_or_end(i + 1);
        self.next = self.block.restart(i);
        self.current = self.next;
    }

    /// Reads the entry at `self.next`; false past the end or on error.
    fn parse_next(&mut self) -> bool {
        self.current = self.next;
        if self.current >= self.block.restarts_at {
            self.invalidate();
            return false;
        }
        let (shared, unshared, value_len, key_at) = match self.block.header(self.current) {
            Ok(h) => h,
            Err(e) => {
                self.corrupt(e);
                return false;
            }
        };
        if shared > self.key.len() {
            let at = self.current;
            self.corrupt(format!("bad shared key length at block offset {at}"));
            return false;
        }
        self.key.truncate(shared);
        let value_at = key_at + unshared;
        self.key
            .extend_from_slice(&self.block.data[key_at..value_at]);
        self.value = (value_at, value_at + value_len);
        self.next = value_at + value_len;
        while self.current >= self.next_restart {
            self.restart_index += 1;
            self.next_restart = self.block.restart_or_end(self.restart_index + 1);
        }
        true
    }

    pub(crate) fn seek_to_first(&mut self) {
        self.error = None;
        self.go_to_restart(0);
        self.parse_next();
    }

    pub(crate) fn seek_to_last(&mut self) {
        self.error = None;
        self.scan_interval_to(self.block.restarts - 1, self.block.restarts_at);
    }

    /// Scans restart interval `restart` up to the entry that ends at
    /// `end` (at most the next restart point), and stays there, recording
    /// the entries before it.
    fn scan_interval_to(&mut self, restart: usize, end: usize) {
        self.behind.clear();
        self.behind_keys.clear();
        self.behind_restart = restart;
        self.go_to_restart(restart);
        while self.parse_next() && self.next < end {
            self.behind.push(Behind {
                current: self.current,
                next: self.next,
                key_start: self.behind_keys.len(),
                value: self.value,
            });
            self.behind_keys.extend_from_slice(&self.key);
        }
    }

    pub(crate) fn next(&mut self) {
        if self.valid() {
            self.parse_next();
        }
    }

    pub(crate) fn prev(&mut self) {
        if !self.valid() {
            return;
        }
        let original = self.current;
        // Entries are contiguous: a recorded entry that ends where the
        // current one starts is the one before it, whatever moved the
        // cursor in between.
        if self.behind.last().is_some_and(|b| b.next == original) {
            let b = self.behind.pop().expect("checked");
            self.key.clear();
            self.key.extend_from_slice(&self.behind_keys[b.key_start..]);
            self.behind_keys.truncate(b.key_start);
            self.current = b.current;
            self.next = b.next;
            self.value = b.value;
            self.restart_index = self.behind_restart;
            self.next_restart = self.block.restart_or_end(self.behind_restart + 1);
            return;
        }
        // Back to the last restart point before the current entry, then
        // forward to the entry just before it.
        let mut restart = self.restart_index;
        while self.block.restart(restart) >= original {
            if restart == 0 {
                self.invalidate();
                return;
            }
            restart -= 1;
        }
        self.scan_interval_to(restart, original);
    }

    /// Moves to the first entry whose internal key is `>= target`.
    pub(crate) fn seek(&mut self, target: &[u8]) {
        let cmp = compare_internal_keys;
        self.error = None;
        // The last restart point whose key is < target: the entry sought
        // is at or after it (or at restart 0).
        let (mut lo, mut hi) = (0, self.block.restarts - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            match self.block.restart_key(mid) {
                Ok(k) if cmp(k, target) == Ordering::Less => lo = mid,
                Ok(_) => hi = mid - 1,
                Err(e) => return self.corrupt(e),
            }
        }
        self.go_to_restart(lo);
        while self.parse_next() {
            if cmp(&self.key, target) != Ordering::Less {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::block::{Block, BlockBuilder};
    use crate::types::{encode_internal_key, ValueKind};
    use bytes::Bytes;

    fn ik(k: &str, seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_internal_key(&mut v, k.as_bytes(), seq, ValueKind::Put);
        v
    }

    fn build(n: usize, interval: usize) -> (Vec<Vec<u8>>, Bytes) {
        let mut b = BlockBuilder::new(interval);
        let keys: Vec<Vec<u8>> = (0..n).map(|i| ik(&format!("key{:03}", i * 2), 5)).collect();
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        (keys, Bytes::from(b.finish_with(<[u8]>::to_vec)))
    }

    fn cursor(data: &Bytes) -> BlockCursor {
        BlockCursor::new(Arc::new(DataBlock::new(data.to_vec()).unwrap()), Vec::new())
    }

    #[test]
    fn walks_both_ways_and_seeks_like_the_decoded_block() {
        for interval in [1, 2, 3, 16] {
            for n in [1, 2, 5, 16, 17, 40] {
                let (keys, data) = build(n, interval);
                let mut c = cursor(&data);
                c.seek_to_first();
                for (i, k) in keys.iter().enumerate() {
                    assert!(c.valid(), "interval {interval} n {n} entry {i}");
                    assert_eq!(c.key(), k.as_slice());
                    assert_eq!(c.value(), format!("v{i}").as_bytes());
                    c.next();
                }
                assert!(!c.valid() && c.error().is_none());
                c.seek_to_last();
                for (i, k) in keys.iter().enumerate().rev() {
                    assert_eq!(c.key(), k.as_slice(), "interval {interval} n {n} back {i}");
                    c.prev();
                }
                assert!(!c.valid() && c.error().is_none());
                let decoded = Block::decode(data.clone()).unwrap();
                for i in 0..=2 * n {
                    // Every key, and every point between two keys.
                    let target = ik(&format!("key{i:03}"), 5);
                    let want = decoded.seek(&target, crate::types::compare_internal_keys);
                    c.seek(&target);
                    if want == n {
                        assert!(!c.valid());
                    } else {
                        assert_eq!(c.key(), decoded.key(want), "seek {i}");
                        assert_eq!(&c.value_ref()[..], decoded.value(want));
                    }
                }
            }
        }
    }

    /// Random walks mixing next, prev and seeks: stepping back through
    /// recorded entries must land where a fresh scan would, whatever moved
    /// the cursor since they were recorded.
    #[test]
    fn random_walks_agree_with_the_entry_list() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for interval in [1, 3, 16] {
            let n = 40;
            let (keys, data) = build(n, interval);
            let mut c = cursor(&data);
            let mut at: Option<usize> = None;
            for step in 0..4000 {
                match rng.gen_range(0..10) {
                    0 => {
                        c.seek_to_last();
                        at = Some(n - 1);
                    }
                    1 => {
                        let i = rng.gen_range(0..n);
                        c.seek(&keys[i]);
                        at = Some(i);
                    }
                    2..=4 => {
                        if at.is_none() {
                            continue;
                        }
                        c.next();
                        at = at.and_then(|i| (i + 1 < n).then_some(i + 1));
                    }
                    _ => {
                        if at.is_none() {
                            continue;
                        }
                        c.prev();
                        at = at.and_then(|i| i.checked_sub(1));
                    }
                }
                match at {
                    Some(i) => {
                        assert!(c.valid(), "interval {interval} step {step}");
                        assert_eq!(
                            c.key(),
                            keys[i].as_slice(),
                            "interval {interval} step {step}"
                        );
                        assert_eq!(c.value(), format!("v{i}").as_bytes());
                    }
                    None => assert!(!c.valid(), "interval {interval} step {step}"),
                }
            }
        }
    }

    #[test]
    fn malformed_blocks_give_errors_not_panics() {
        let (_, data) = build(20, 3);
        for cut in 0..data.len() {
            if let Ok(b) = DataBlock::new(data[..cut].to_vec()) {
                walk(b);
            }
        }
        let mut errors = 0;
        for i in 0..data.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = data.to_vec();
                bad[i] ^= flip;
                if let Ok(b) = DataBlock::new(bad.clone()) {
                    errors += walk(b);
                }
            }
        }
        assert!(errors > 0, "some flips must be reported");
    }

    /// Every movement on a possibly malformed block; returns how many
    /// errors the cursor reported.
    fn walk(block: DataBlock) -> usize {
        let mut c = BlockCursor::new(Arc::new(block), Vec::new());
        let mut errors = 0;
        c.seek_to_first();
        for _ in 0..100 {
            c.next();
        }
        errors += usize::from(c.error().is_some());
        c.seek_to_last();
        for _ in 0..100 {
            c.prev();
        }
        errors += usize::from(c.error().is_some());
        c.seek(&ik("key013", 5));
        errors + usize::from(c.error().is_some())
    }

    #[test]
    fn a_block_whose_first_entry_is_not_a_restart_is_refused_by_both_readers() {
        // Two entries, interval 1, then the restart array rewritten to
        // list only the second entry: the decoder used to accept it (the
        // first entry has shared = 0 anyway) while a cursor, starting at
        // restart 0, would skip the first entry.
        let (_, data) = build(2, 1);
        let mut bad = data.to_vec();
        let n = bad.len();
        let second = u32::from_le_bytes(bad[n - 8..n - 4].try_into().unwrap());
        bad.truncate(n - 12);
        bad.extend_from_slice(&second.to_le_bytes());
        bad.extend_from_slice(&1u32.to_le_bytes());
        let bad = Bytes::from(bad);
        assert!(Block::decode(bad.clone()).is_err());
        assert!(DataBlock::new(bad.to_vec()).is_err());
    }
}
