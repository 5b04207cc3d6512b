//! `DB::property` and `ColumnFamily::property`: named figures as text, as
//! RocksDB's `GetProperty`. The names and what they mean are listed in
//! docs/operations.md (and in `PROPERTIES`, which `aidb properties`
//! prints); every value is read off the current state when asked.

use super::compaction::most_urgent;
use super::family::Family;
use super::shape::level_shape;
use super::DbInner;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Every property name, with what it is. `aidb.num-files-at-level<N>`
/// stands for one per level.
pub const PROPERTIES: &[(&str, &str)] = &[
    ("aidb.num-files-at-level<N>", "table files in level N"),
    ("aidb.levelstats", "files and bytes of every level, as a table"),
    ("aidb.total-sst-files-size", "bytes of all live table files"),
    (
        "aidb.estimate-live-data-size",
        "bytes of live data: the last non-empty level's size plus what the levels above hold beyond it (an estimate)",
    ),
    (
        "aidb.estimate-pending-compaction-bytes",
        "bytes compactions must rewrite to bring every level within its target",
    ),
    ("aidb.compaction-pending", "1 if some level is due a compaction, else 0"),
    ("aidb.cur-size-active-mem-table", "bytes in the active memtable"),
    ("aidb.cur-size-all-mem-tables", "bytes in the active and frozen memtables"),
    ("aidb.num-immutable-mem-table", "frozen memtables waiting for a flush"),
    ("aidb.num-entries-active-mem-table", "entries in the active memtable"),
    (
        "aidb.estimate-num-keys",
        "keys: entries in memtables and tables, minus tombstones (overwrites counted as many times as they are stored)",
    ),
    ("aidb.num-snapshots", "live snapshots (database-wide)"),
    (
        "aidb.oldest-snapshot-sequence",
        "sequence number of the oldest live snapshot, 0 when none (database-wide)",
    ),
    ("aidb.last-sequence", "sequence number of the newest write (database-wide)"),
    ("aidb.num-running-flushes", "flushes running now, 0 or 1 (database-wide)"),
    ("aidb.num-running-compactions", "compactions running now, 0 or 1 (database-wide)"),
    (
        "aidb.background-errors",
        "failures that stopped writes since open (database-wide)",
    ),
    (
        "aidb.background-error",
        "the failure writes are stopped by now, or empty (database-wide)",
    ),
    ("aidb.stats", "the database's Statistics as text (database-wide)"),
];

/// The value of property `name` for `family`, or `None` for an unknown
/// name.
pub(crate) fn property(inner: &DbInner, family: &Family, name: &str) -> Option<String> {
    let view = family.view.read().clone();
    let levels = &view.version.levels;
    let level_bytes = |l: &[std::sync::Arc<crate::version::LiveFile>]| -> u64 {
        l.iter().map(|f| f.meta.size).sum()
    };
    if let Some(n) = name.strip_prefix("aidb.num-files-at-level") {
        let level: usize = n.parse().ok()?;
        return levels.get(level).map(|l| l.len().to_string());
    }
    let v = match name {
        "aidb.levelstats" => {
            let mut out = String::from("level files bytes target\n");
            for ((i, l), target) in levels
                .iter()
                .enumerate()
                .zip(level_shape(&family.opts, &view.version).targets)
            {
                let target = target.map_or("-".into(), |t| t.to_string());
                let _ = writeln!(out, "{i} {} {} {target}", l.len(), level_bytes(l));
            }
            out
        }
        "aidb.total-sst-files-size" => levels
            .iter()
            .map(|l| level_bytes(l))
            .sum::<u64>()
            .to_string(),
        "aidb.estimate-live-data-size" => {
            // As RocksDB: the bottom non-empty level holds (about) every
            // live key once; levels above mostly hold newer versions of
            // them, so count only what exceeds the bottom.
            let sizes: Vec<u64> = levels.iter().map(|l| level_bytes(l)).collect();
            let bottom = sizes.iter().rposition(|&s| s > 0);
            let live = match bottom {
                None => 0,
                Some(b) => {
                    let above: u64 = sizes[..b].iter().sum();
                    sizes[b] + above.saturating_sub(sizes[b])
                }
            };
            live.to_string()
        }
        "aidb.estimate-pending-compaction-bytes" => {
            pending_bytes(family, &view.version).to_string()
        }
        "aidb.compaction-pending" => {
            u8::from(most_urgent(&family.opts, &view.version).is_some()).to_string()
        }
        "aidb.cur-size-active-mem-table" => view.mem.approximate_size().to_string(),
        "aidb.cur-size-all-mem-tables" => std::iter::once(&view.mem)
            .chain(view.imms.iter())
            .map(|m| m.approximate_size() as u64)
            .sum::<u64>()
            .to_string(),
        "aidb.num-immutable-mem-table" => view.imms.len().to_string(),
        "aidb.num-entries-active-mem-table" => view.mem.len().to_string(),
        "aidb.estimate-num-keys" => {
            let mut keys: i64 = std::iter::once(&view.mem)
                .chain(view.imms.iter())
                .map(|m| m.len() as i64)
                .sum();
            for f in levels.iter().flatten() {
                // Opening a table reads only its index, filter and
                // properties; one that fails to open counts nothing here
                // (reads and `verify` report it).
                if let Ok(t) = inner.table_cache.get(f) {
                    let p = t.properties();
                    keys += p.entries as i64 - 2 * p.tombstones as i64;
                }
            }
            keys.max(0).to_string()
        }
        "aidb.num-snapshots" => inner.snapshots.lock().values().sum::<usize>().to_string(),
        "aidb.oldest-snapshot-sequence" => {
            let oldest = inner.snapshots.lock().keys().next().copied().unwrap_or(0);
            oldest.to_string()
        }
        "aidb.last-sequence" => inner.visible_seq.load(Ordering::Acquire).to_string(),
        "aidb.num-running-flushes" => u8::from(inner.bg.lock().flushing).to_string(),
        "aidb.num-running-compactions" => u8::from(inner.bg.lock().compacting).to_string(),
        "aidb.background-errors" => inner
            .stats
            .rec
            .background_errors
            .load(Ordering::Relaxed)
            .to_string(),
        "aidb.background-error" => inner
            .stopped
            .lock()
            .as_ref()
            .map_or(String::new(), |s| s.cause.to_string()),
        "aidb.stats" => super::stats::statistics(inner).to_string(),
        _ => return None,
    };
    Some(v)
}

/// Bytes compactions must rewrite to bring every level within its target,
/// as RocksDB estimates it: level 0's bytes once it reaches its trigger,
/// and each level's excess over its target, which is pushed down (and
/// counted again) at every level it passes through.
fn pending_bytes(family: &Family, version: &crate::version::Version) -> u64 {
    let opts = &family.opts;
    let targets = level_shape(opts, version).targets;
    let sizes: Vec<u64> = version
        .levels
        .iter()
        .map(|l| l.iter().map(|f| f.meta.size).sum())
        .collect();
    let last = opts.num_levels - 1;
    let mut pending = 0u64;
    let mut carried = 0u64;
    for level in 0..last {
        let size = sizes[level] + carried;
        if level > 0 && targets[level].is_none() {
            // An empty level above the base level: level 0 compacts past
            // it, so what is carried is not rewritten here.
            carried = size;
            continue;
        }
        let excess = if level == 0 {
            if version.levels[0].len() >= opts.level0_file_num_compaction_trigger {
                size
            } else {
                0
            }
        } else {
            size.saturating_sub(targets[level].unwrap_or(u64::MAX))
        };
        pending += excess;
        carried = excess;
    }
    pending
}
