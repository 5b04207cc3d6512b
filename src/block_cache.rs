//! The block cache: decoded table blocks shared by every table of a
//! database, bounded in bytes.
//!
//! The cache is split into shards, each an LRU list under its own mutex, so
//! that readers on different blocks rarely contend. A block's charge is the
//! memory its decoded form holds.

use crate::table::Block;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SHARDS: usize = 16;

type Key = (u64, u64);

#[derive(Default)]
struct Shard {
    map: HashMap<Key, (Arc<Block>, usize, u64)>,
    /// Last-use tick → key, oldest first.
    lru: BTreeMap<u64, Key>,
    usage: usize,
    tick: u64,
}

/// A sharded LRU cache of decoded blocks, keyed by (file number, offset).
pub(crate) struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// A cache holding up to `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity.div_ceil(SHARDS),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        let h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1.rotate_left(17);
        let h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    pub(crate) fn get(&self, file: u64, offset: u64) -> Option<Arc<Block>> {
        let key = (file, offset);
        let mut s = self.shard(key).lock();
        let s = &mut *s;
        s.tick += 1;
        let tick = s.tick;
        match s.map.get_mut(&key) {
            Some((block, _, used)) => {
                s.lru.remove(used);
                *used = tick;
                s.lru.insert(tick, key);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(block.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub(crate) fn insert(&self, file: u64, offset: u64, block: Arc<Block>) {
        let key = (file, offset);
        let charge = block.charge();
        if charge > self.shard_capacity {
            return;
        }
        let mut s = self.shard(key).lock();
        let s = &mut *s;
        s.tick += 1;
        let tick = s.tick;
        if let Some((_, old_charge, used)) = s.map.remove(&key) {
            s.lru.remove(&used);
            s.usage -= old_charge;
        }
        while s.usage + charge > self.shard_capacity {
            let Some((_, victim)) = s.lru.pop_first() else {
                break;
            };
            if let Some((_, c, _)) = s.map.remove(&victim) {
                s.usage -= c;
            }
        }
        s.map.insert(key, (block, charge, tick));
        s.lru.insert(tick, key);
        s.usage += charge;
    }

    /// (hits, misses, bytes held).
    pub(crate) fn hit_miss_bytes(&self) -> (u64, u64, u64) {
        let bytes = self.shards.iter().map(|s| s.lock().usage as u64).sum();
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> Arc<Block> {
        let mut b = crate::table::BlockBuilder::new(16);
        let mut k = Vec::new();
        crate::types::encode_internal_key(&mut k, b"k", 1, crate::types::ValueKind::Put);
        b.add(&k, &vec![0u8; n]);
        Arc::new(Block::decode(bytes::Bytes::from(b.finish())).unwrap())
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
        // Fill one shard's worth repeatedly while touching a hot block.
        cache.insert(7, 0, block(1000));
        for i in 1..2000u64 {
            cache.insert(7, i, block(1000));
            assert!(cache.get(7, 0).is_some(), "hot block evicted at {i}");
        }
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
