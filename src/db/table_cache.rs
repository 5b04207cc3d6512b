//! Open table files, shared by all readers, bounded by `max_open_files`.
//!
//! Up to half of that budget is *pinned*: a table opened while the budget
//! allows stays with its live file (`LiveFile::pin`) until the file leaves
//! every version, and lookups reach it without this cache's lock and
//! without touching shared reference counts (with two readers, those
//! cache lines bounced between cores on every table a lookup consulted).
//! The rest are kept in a map and evicted least recently used first; the
//! map shrinks by the number pinned, so no more than `max_open_files`
//! tables are open at once. A secondary instance pins nothing: each
//! catch-up builds new live files for the same tables, which would open
//! them again instead of finding them in the map.

use super::filenames::table_path;
use crate::block_cache::BlockCache;
use crate::counter::StripedCounter;
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::int_hash::IntMap;
use crate::table::{BloomStats, Table, TableIterator};
use crate::version::{FileMeta, LiveFile};
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A table from [`TableCache::get_ref`]: borrowed from its live file when
/// pinned there, else a handle of its own.
pub(crate) enum TableRef<'a> {
    Pinned(&'a Arc<Table>),
    Shared(Arc<Table>),
}

impl TableRef<'_> {
    /// An iterator over the table (which keeps it open).
    pub(crate) fn iter(&self) -> TableIterator {
        match self {
            TableRef::Pinned(t) => t.iter(),
            TableRef::Shared(t) => t.iter(),
        }
    }
}

impl std::ops::Deref for TableRef<'_> {
    type Target = Table;
    fn deref(&self) -> &Table {
        match self {
            TableRef::Pinned(t) => t,
            TableRef::Shared(t) => t,
        }
    }
}

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
    /// Tables pinned to live files (never more than `pin_budget`).
    pinned: Arc<AtomicUsize>,
    pin_budget: usize,
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
            pinned: Arc::default(),
            pin_budget: capacity / 2,
            tick: AtomicU64::new(0),
            hits: StripedCounter::default(),
            misses: StripedCounter::default(),
        }
    }

    /// The open table of `file`, opening it if needed. A table evicted
    /// here stays usable by whoever still holds it.
    pub(crate) fn get(&self, file: &LiveFile) -> Result<Arc<Table>> {
        Ok(match self.get_ref(file)? {
            TableRef::Pinned(t) => t.clone(),
            TableRef::Shared(t) => t,
        })
    }

    /// As [`get`](Self::get), borrowing a pinned table instead of cloning
    /// the handle: for point lookups, which use it only briefly.
    pub(crate) fn get_ref<'a>(&self, file: &'a LiveFile) -> Result<TableRef<'a>> {
        if let Some(t) = file.pinned_table() {
            self.hits.add(1);
            return Ok(TableRef::Pinned(t));
        }
        let table = self.get_shared(&file.meta)?;
        let budget = self.pin_budget;
        let room = self
            .pinned
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < budget).then_some(n + 1)
            })
            .is_ok();
        if room {
            // From now on the file holds the table: the map needs no copy.
            file.pin(table.clone(), self.pinned.clone());
            self.open.write().remove(&file.meta.number);
        }
        Ok(TableRef::Shared(table))
    }

    /// The table for `meta` from the map, opening it if needed.
    fn get_shared(&self, meta: &FileMeta) -> Result<Arc<Table>> {
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
        while !map.is_empty() && map.len() + self.pinned.load(Ordering::Relaxed) >= self.capacity {
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

    /// The same cache, keeping every table in its map (for a secondary).
    pub(crate) fn without_pinning(mut self) -> TableCache {
        self.pin_budget = 0;
        self
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
