//! The block cache: data blocks (decompressed, read in place) shared by
//! every table of a database, bounded in bytes.
//!
//! The cache is split into shards. Each shard evicts with CLOCK (second
//! chance): a hit only sets the entry's reference bit under a *read* lock,
//! so concurrent readers of cached blocks never serialise; an insert takes
//! the write lock and sweeps the clock hand past referenced entries
//! (clearing their bit) to the first unreferenced one to evict. A block's
//! charge is its size plus a fixed overhead.

use crate::counter::StripedCounter;
use crate::int_hash::IntMap;
use crate::table::DataBlock;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SHARDS: usize = 16;

type Key = (u64, u64);

struct Entry {
    block: Arc<DataBlock>,
    charge: usize,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Shard {
    map: IntMap<Key, Entry>,
    /// The clock: keys in insertion order; `hand` is the next candidate.
    ring: Vec<Key>,
    hand: usize,
    usage: usize,
}

impl Shard {
    /// Evicts until `extra` more bytes fit in `capacity`.
    fn make_room(&mut self, extra: usize, capacity: usize) {
        while self.usage + extra > capacity && !self.ring.is_empty() {
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            let key = self.ring[self.hand];
            let second_chance = self
                .map
                .get(&key)
                .is_some_and(|e| e.referenced.swap(false, Ordering::Relaxed));
            if second_chance {
                self.hand += 1;
                continue;
            }
            self.ring.swap_remove(self.hand);
            if let Some(e) = self.map.remove(&key) {
                self.usage -= e.charge;
            }
        }
    }
}

/// A sharded CLOCK cache of data blocks, keyed by (file number, offset).
pub(crate) struct BlockCache {
    shards: Vec<RwLock<Shard>>,
    shard_capacity: usize,
    hits: StripedCounter,
    misses: StripedCounter,
}

impl BlockCache {
    /// A cache holding up to `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            shard_capacity: capacity.div_ceil(SHARDS),
            hits: StripedCounter::default(),
            misses: StripedCounter::default(),
        }
    }

    fn shard(&self, key: Key) -> &RwLock<Shard> {
        let h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1.rotate_left(17);
        let h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    pub(crate) fn get(&self, file: u64, offset: u64) -> Option<Arc<DataBlock>> {
        let key = (file, offset);
        let shard = self.shard(key).read();
        match shard.map.get(&key) {
            Some(e) => {
                if !e.referenced.load(Ordering::Relaxed) {
                    e.referenced.store(true, Ordering::Relaxed);
                }
                self.hits.add(1);
                Some(e.block.clone())
            }
            None => {
                self.misses.add(1);
                None
            }
        }
    }

    pub(crate) fn insert(&self, file: u64, offset: u64, block: Arc<DataBlock>) {
        let key = (file, offset);
        let charge = block.charge();
        if charge > self.shard_capacity {
            return;
        }
        let mut s = self.shard(key).write();
        if let Some(old) = s.map.remove(&key) {
            // Another reader inserted it first; keep one copy.
            s.usage -= old.charge;
            if let Some(pos) = s.ring.iter().position(|k| *k == key) {
                s.ring.swap_remove(pos);
            }
        }
        s.make_room(charge, self.shard_capacity);
        s.map.insert(
            key,
            Entry {
                block,
                charge,
                referenced: AtomicBool::new(false),
            },
        );
        s.ring.push(key);
        s.usage += charge;
    }

    /// (hits, misses, bytes held).
    pub(crate) fn hit_miss_bytes(&self) -> (u64, u64, u64) {
        let bytes = self.shards.iter().map(|s| s.read().usage as u64).sum();
        (self.hits.get(), self.misses.get(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> Arc<DataBlock> {
        let mut b = crate::table::BlockBuilder::new(16);
        let mut k = Vec::new();
        crate::types::encode_internal_key(&mut k, b"k", 1, crate::types::ValueKind::Put);
        b.add(&k, &vec![0u8; n]);
        Arc::new(DataBlock::new(bytes::Bytes::from(b.finish_with(<[u8]>::to_vec))).unwrap())
    }

    #[test]
    fn stays_within_capacity_and_counts() {
        let cache = BlockCache::new(64 << 10);
        for i in 0..1000 {
            cache.insert(1, i * 100, block(500));
        }
        let (_, _, bytes) = cache.hit_miss_bytes();
        assert!(bytes <= 64 << 10, "{bytes}");
        assert!(cache.get(1, 999 * 100).is_some());
        assert!(cache.get(1, 0).is_none());
        let (hits, misses, _) = cache.hit_miss_bytes();
        assert_eq!((hits, misses), (1, 1));
    }

    #[test]
    fn recently_used_blocks_survive() {
        let cache = BlockCache::new(16 * 4096);
        cache.insert(7, 0, block(1000));
        for i in 1..2000u64 {
            cache.insert(7, i, block(1000));
            assert!(cache.get(7, 0).is_some(), "hot block evicted at {i}");
        }
    }

    #[test]
    fn reinserting_a_key_keeps_one_copy() {
        let cache = BlockCache::new(1 << 20);
        cache.insert(1, 1, block(100));
        cache.insert(1, 1, block(100));
        let (_, _, bytes) = cache.hit_miss_bytes();
        assert_eq!(bytes as usize, block(100).charge());
    }

    #[test]
    fn concurrent_use() {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..2000u64 {
                        cache.insert(t, i, block(100));
                        cache.get(t, i / 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (hits, misses, _) = cache.hit_miss_bytes();
        assert_eq!(hits + misses, 8000);
    }
}
