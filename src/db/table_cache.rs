//! Open table files, shared by all readers, bounded by `max_open_files`.

use super::filenames::table_path;
use crate::block_cache::BlockCache;
use crate::counter::StripedCounter;
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::int_hash::IntMap;
use crate::table::{BloomStats, Table};
use crate::version::FileMeta;
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An open table and the tick it was last used at (for eviction).
struct OpenTable {
    table: Arc<Table>,
    last_used: AtomicU64,
}

pub(crate) struct TableCache {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    block_cache: Option<Arc<BlockCache>>,
    capacity: usize,
    bloom_stats: Arc<BloomStats>,
    /// Open tables. Lookups take the read lock only, so readers of open
    /// tables never serialise; opening and evicting take the write lock.
    open: RwLock<IntMap<u64, OpenTable>>,
    tick: AtomicU64,
    /// Lookups that found their table open, and ones that opened it
    /// (reading its index and filter blocks): see `Statistics`.
    hits: StripedCounter,
    misses: StripedCounter,
}

impl TableCache {
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        block_cache: Option<Arc<BlockCache>>,
        capacity: usize,
    ) -> TableCache {
        TableCache {
            fs,
            dir: dir.to_path_buf(),
            block_cache,
            capacity,
            bloom_stats: Arc::default(),
            open: RwLock::new(IntMap::default()),
            tick: AtomicU64::new(0),
            hits: StripedCounter::default(),
            misses: StripedCounter::default(),
        }
    }

    /// The open table for `meta`, opening it if needed. A table evicted
    /// here stays usable by whoever still holds it.
    pub(crate) fn get(&self, meta: &FileMeta) -> Result<Arc<Table>> {
        // A coarse clock: it advances when tables are opened, which is all
        // eviction order needs, and costs a hit no shared write.
        let now = self.tick.load(Ordering::Relaxed);
        if let Some(t) = self.open.read().get(&meta.number) {
            t.last_used.store(now, Ordering::Relaxed);
            self.hits.add(1);
            return Ok(t.table.clone());
        }
        self.misses.add(1);
        let path = table_path(&self.dir, meta.number);
        let file = self.fs.open(&path).ctx(&path)?;
        // A file of the wrong size, or another valid table in this one's
        // place (a stale copy, a misdirected rename), is not read as it.
        if file.len() != meta.size {
            return Err(Error::corruption(
                &path,
                0,
                format!(
                    "file is {} bytes, the MANIFEST says {} (truncated or replaced)",
                    file.len(),
                    meta.size
                ),
            ));
        }
        let table = Table::open(
            file,
            path,
            meta.number,
            self.block_cache.clone(),
            self.bloom_stats.clone(),
        )?;
        if meta.unique_id != 0 && table.unique_id() != meta.unique_id {
            return Err(Error::corruption(
                table_path(&self.dir, meta.number),
                0,
                format!(
                    "table has unique id {:#x}, the MANIFEST names {:#x}: another table is in this file's place",
                    table.unique_id(),
                    meta.unique_id
                ),
            ));
        }
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.open.write();
        if map.len() >= self.capacity {
            let victim = map
                .iter()
                .min_by_key(|(_, t)| t.last_used.load(Ordering::Relaxed))
                .map(|(n, _)| *n);
            if let Some(victim) = victim {
                map.remove(&victim);
            }
        }
        let entry = map.entry(meta.number).or_insert(OpenTable {
            table,
            last_used: AtomicU64::new(now),
        });
        Ok(entry.table.clone())
    }

    /// Forgets a deleted file.
    pub(crate) fn evict(&self, number: u64) {
        self.open.write().remove(&number);
    }

    pub(crate) fn block_cache(&self) -> Option<&Arc<BlockCache>> {
        self.block_cache.as_ref()
    }

    /// (lookups that found the table open, lookups that opened it).
    pub(crate) fn hits_misses(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }

    /// (bloom filter checks, checks that ruled a table out).
    pub(crate) fn bloom_totals(&self) -> (u64, u64) {
        (self.bloom_stats.checks.get(), self.bloom_stats.useful.get())
    }
}
