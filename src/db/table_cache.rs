//! Open table files, shared by all readers, bounded by `max_open_files`.

use super::filenames::table_path;
use crate::block_cache::BlockCache;
use crate::error::{IoContext, Result};
use crate::fs::FileSystem;
use crate::table::{BloomStats, Table};
use crate::version::FileMeta;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A table and the tick it was last used at.
type OpenTable = (u64, Arc<Table>);

pub(crate) struct TableCache {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    block_cache: Option<Arc<BlockCache>>,
    capacity: usize,
    bloom_stats: Arc<BloomStats>,
    /// Open tables with the tick of their last use, for eviction.
    open: Mutex<(u64, HashMap<u64, OpenTable>)>,
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
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// The open table for `meta`, opening it if needed. A table evicted
    /// here stays usable by whoever still holds it.
    pub(crate) fn get(&self, meta: &FileMeta) -> Result<Arc<Table>> {
        {
            let mut guard = self.open.lock();
            let (tick, map) = &mut *guard;
            *tick += 1;
            if let Some((used, t)) = map.get_mut(&meta.number) {
                *used = *tick;
                return Ok(t.clone());
            }
        }
        let path = table_path(&self.dir, meta.number);
        let file = self.fs.open(&path).ctx(&path)?;
        let table = Table::open(
            file,
            path,
            meta.number,
            self.block_cache.clone(),
            self.bloom_stats.clone(),
        )?;
        let mut guard = self.open.lock();
        let (tick, map) = &mut *guard;
        if map.len() >= self.capacity {
            if let Some(&victim) = map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(n, _)| n)
            {
                map.remove(&victim);
            }
        }
        map.insert(meta.number, (*tick, table.clone()));
        Ok(table)
    }

    /// Forgets a deleted file.
    pub(crate) fn evict(&self, number: u64) {
        self.open.lock().1.remove(&number);
    }

    pub(crate) fn block_cache(&self) -> Option<&Arc<BlockCache>> {
        self.block_cache.as_ref()
    }

    /// (bloom filter checks, checks that ruled a table out).
    pub(crate) fn bloom_totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.bloom_stats.checks.load(Relaxed),
            self.bloom_stats.useful.load(Relaxed),
        )
    }
}
