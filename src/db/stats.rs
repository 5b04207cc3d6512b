//! Engine statistics: cheap atomic counters plus figures read off the
//! current version when asked.

use super::family::Family;
use super::DbInner;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Database-wide counters (each family has its own `FamilyStats`).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) stall_micros: AtomicU64,
    pub(crate) log_damage_skipped: AtomicU64,
    /// Counters and histograms of [`crate::Statistics`].
    pub(crate) rec: crate::statistics::Recorder,
    /// `Options::statistics`: record the per-operation figures.
    pub(crate) per_op: bool,
}

impl Stats {
    pub(crate) fn add_stall(&self, d: Duration) {
        self.stall_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Figures for one level of the tree.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LevelStats {
    /// Number of table files.
    pub files: usize,
    /// Total size of the level's table files, in bytes.
    pub bytes: u64,
    /// Size the level is compacted down to, in bytes (`None` for level 0,
    /// which is governed by its file count, and for the last level).
    pub target_bytes: Option<u64>,
}

/// A snapshot of the engine's statistics, from [`DB::stats`](crate::DB::stats).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DbStats {
    /// Bytes of keys and values written by users to this column family.
    pub user_bytes_written: u64,
    /// Bytes of table files written by flushes.
    pub bytes_flushed: u64,
    /// Bytes of table files read by compactions.
    pub compaction_bytes_read: u64,
    /// Bytes of table files written by compactions.
    pub compaction_bytes_written: u64,
    /// (flushed + compacted bytes) / user bytes: how many bytes reach table
    /// files per byte written. The write-ahead log adds about 1 more.
    pub write_amplification: f64,
    /// Memtable flushes completed.
    pub flushes: u64,
    /// Compactions completed (including trivial moves).
    pub compactions: u64,
    /// Compactions that moved files down without rewriting them.
    pub trivial_moves: u64,
    /// Total time writers were stalled or slowed down waiting for
    /// background work.
    pub stall_time: Duration,
    /// Per-level figures, level 0 first.
    pub levels: Vec<LevelStats>,
    /// Bytes held by the active and frozen memtables.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for flush.
    pub immutable_memtables: usize,
    /// Block cache lookups that found the block.
    pub block_cache_hits: u64,
    /// Block cache lookups that had to read the file.
    pub block_cache_misses: u64,
    /// Bytes held by the block cache.
    pub block_cache_bytes: u64,
    /// Point lookups that consulted a table's bloom filter.
    pub bloom_checks: u64,
    /// Bloom filter checks that ruled a table out, saving a block read.
    pub bloom_useful: u64,
    /// Sequence number of the newest write.
    pub last_sequence: u64,
    /// Damaged places in the logs that the last open skipped
    /// ([`WalRecoveryMode::SkipAnyCorruptedRecords`](crate::WalRecoveryMode))
    /// or stopped replaying at (`PointInTimeRecovery`); writes there were
    /// lost. 0 when every log was intact.
    pub log_damage_skipped: u64,
}

/// The figures of `family`, with the database-wide ones.
pub(crate) fn collect(inner: &DbInner, family: &Family) -> DbStats {
    let s = &inner.stats;
    let fs = &family.stats;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let view = family.view.read().clone();
    let targets = super::shape::level_shape(&family.opts, &view.version).targets;
    let levels = view
        .version
        .levels
        .iter()
        .zip(targets)
        .map(|(files, target_bytes)| LevelStats {
            files: files.len(),
            bytes: files.iter().map(|f| f.meta.size).sum(),
            target_bytes,
        })
        .collect();
    let user = load(&fs.bytes_written);
    let flushed = load(&fs.bytes_flushed);
    let compacted = load(&fs.compaction_bytes_written);
    let (hits, misses, cached) = inner
        .table_cache
        .block_cache()
        .map(|c| c.hit_miss_bytes())
        .unwrap_or_default();
    let (bloom_checks, bloom_useful) = inner.table_cache.bloom_totals();
    DbStats {
        user_bytes_written: user,
        bytes_flushed: flushed,
        compaction_bytes_read: load(&fs.compaction_bytes_read),
        compaction_bytes_written: compacted,
        write_amplification: if user == 0 {
            0.0
        } else {
            (flushed + compacted) as f64 / user as f64
        },
        flushes: load(&fs.flushes),
        compactions: load(&fs.compactions),
        trivial_moves: load(&fs.trivial_moves),
        stall_time: Duration::from_micros(load(&s.stall_micros)),
        levels,
        memtable_bytes: std::iter::once(&view.mem)
            .chain(view.imms.iter())
            .map(|m| m.approximate_size() as u64)
            .sum(),
        immutable_memtables: view.imms.len(),
        block_cache_hits: hits,
        block_cache_misses: misses,
        block_cache_bytes: cached,
        bloom_checks,
        bloom_useful,
        last_sequence: inner.visible_seq.load(Ordering::Acquire),
        log_damage_skipped: load(&s.log_damage_skipped),
    }
}

/// The database-wide [`Statistics`](crate::Statistics): the recorder's
/// counters and histograms with what the caches, filters and stall
/// accounting keep.
pub(crate) fn statistics(inner: &DbInner) -> crate::Statistics {
    let mut s = inner.stats.rec.snapshot();
    let (hits, misses, _) = inner
        .table_cache
        .block_cache()
        .map(|c| c.hit_miss_bytes())
        .unwrap_or_default();
    s.data_block_cache.hits = hits;
    s.data_block_cache.misses = misses;
    let (hits, misses) = inner.table_cache.hits_misses();
    s.index_and_filter_blocks.hits = hits;
    s.index_and_filter_blocks.misses = misses;
    (s.bloom_checks, s.bloom_useful) = inner.table_cache.bloom_totals();
    s.stall_time = Duration::from_micros(inner.stats.stall_micros.load(Ordering::Relaxed));
    s.listener_panics = inner.events.listener_panics();
    s
}
