//! Leveled compaction: choosing what to compact (a pure function of the
//! version and options) and doing it.
//!
//! Level 0 compacts into the base level (level 1, or with dynamic level
//! sizing the highest level that needs data; see [`super::shape`]) when it
//! holds `level0_file_num_compaction_trigger` files; level `n >= 1`
//! compacts into `n + 1` when it outgrows its target. The level with the
//! highest score (files or bytes over target) goes first. From level
//! `n >= 1` one file is taken, the one that overlaps the fewest bytes of
//! the next level for its size; every file of the next level it overlaps
//! joins it. Files that overlap nothing
//! in the output level (nor, from level 0, one another) move down without
//! being rewritten.
//!
//! In the last level, an entry no reader can see an older version of has
//! its sequence number set to 0 when it is written, so a last-level file
//! whose largest sequence number is 0 holds no garbage. One with non-zero
//! sequence numbers all below the oldest snapshot may hold versions and
//! tombstones kept for a snapshot that is gone: when no level needs
//! compacting, such files are rewritten in place (as RocksDB's bottommost
//! compaction does), and `compact_range` rewrites every last-level file in
//! its range that is not all zeros.

use super::family::Family;
use super::filenames::table_path;
use super::flush::failure_of;
use super::rewrite::{self, Rules};
use super::shape::level_shape;
use super::DbInner;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{IoContext, Result};
use crate::iterator::KeyRange;
use crate::ttl;
use crate::types::SeqNo;
use crate::version::{FamilyEdit, LiveFile, Version};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one compaction reads and where it writes.
pub(crate) struct Compaction {
    pub(crate) level: usize,
    pub(crate) inputs: Vec<Arc<LiveFile>>,
    /// Overlapping files of `out_level` (none when it is `level`).
    pub(crate) next: Vec<Arc<LiveFile>>,
    /// `level + 1` (the base level from level 0), or `level` for a
    /// rewrite in place of last-level files.
    pub(crate) out_level: usize,
}

impl Compaction {
    /// Whether the inputs can move to `out_level` as they are: nothing
    /// there overlaps them and they do not overlap one another (level-0
    /// files may), so no key has two versions to merge.
    pub(crate) fn is_move(&self, allow_move: bool) -> bool {
        if !allow_move || !self.next.is_empty() || self.out_level <= self.level {
            return false;
        }
        let mut spans: Vec<_> = self
            .inputs
            .iter()
            .map(|f| (f.smallest_user_key(), f.largest_user_key()))
            .collect();
        spans.sort_unstable();
        spans.windows(2).all(|w| w[0].1 < w[1].0)
    }
}

/// The level most in need of compaction and its score, if any level's
/// score is at least 1.
pub(crate) fn most_urgent(opts: &ColumnFamilyOptions, version: &Version) -> Option<(usize, f64)> {
    let targets = level_shape(opts, version).targets;
    let mut best: Option<(usize, f64)> = None;
    for (level, files) in version.levels.iter().enumerate().take(opts.num_levels - 1) {
        let score = if level == 0 {
            files.len() as f64 / opts.level0_file_num_compaction_trigger as f64
        } else {
            let Some(target) = targets[level] else {
                continue; // an empty level above the base level
            };
            let bytes: u64 = files.iter().map(|f| f.meta.size).sum();
            bytes as f64 / target as f64
        };
        if score >= 1.0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((level, score));
        }
    }
    best
}

/// Last-level files that may hold entries no reader can see any more:
/// written with sequence numbers kept for a snapshot (so not all zero), all
/// of which are now older than the oldest snapshot. `settled` lists files
/// a rewrite in place could not clear (merge operands no operator folds):
/// rewriting them again would change nothing.
pub(crate) fn bottom_garbage(
    family: &Family,
    version: &Version,
    oldest_visible: SeqNo,
) -> Option<Arc<LiveFile>> {
    let settled = family.settled_bottom.lock();
    version.levels[family.opts.num_levels - 1]
        .iter()
        .find(|f| {
            f.meta.largest_seq > 0
                && f.meta.largest_seq <= oldest_visible
                && !settled.contains(&f.meta.number)
        })
        .cloned()
}

/// The first file (from the top) whose data has all outlived the family's
/// TTL: it was written more than the TTL before `now`. Compacting it drops
/// that data, even in ranges no write reaches any more.
pub(crate) fn ttl_expired(
    opts: &ColumnFamilyOptions,
    version: &Version,
    now: u64,
) -> Option<(usize, Arc<LiveFile>)> {
    let ttl = opts.ttl?.as_secs();
    version
        .levels
        .iter()
        .enumerate()
        .find_map(|(level, files)| {
            files
                .iter()
                .find(|f| f.meta.creation_time > 0 && ttl::expired(f.meta.creation_time, ttl, now))
                .map(|f| (level, f.clone()))
        })
}

/// When the next file of the family will have outlived its TTL, in seconds
/// since the Unix epoch, if it has a TTL and files.
pub(crate) fn next_ttl_expiry(opts: &ColumnFamilyOptions, version: &Version) -> Option<u64> {
    let ttl = opts.ttl?.as_secs();
    version
        .levels
        .iter()
        .flatten()
        .filter(|f| f.meta.creation_time > 0)
        .map(|f| f.meta.creation_time.saturating_add(ttl).saturating_add(1))
        .min()
}

/// Adds to the family's settled files the last-level files
/// [`bottom_garbage`] would offer that hold nothing a rewrite in place
/// could drop: no tombstone of either kind, and not written by a compaction
/// that kept versions for a snapshot (such output also holds entries whose
/// sequence numbers it set to 0). Files moved down whole (sequential
/// writes, ingested files) have sequence numbers but usually no garbage,
/// and would otherwise all be rewritten once they reached the last level.
/// Versions a flush kept for a snapshot in a file that later moved down
/// whole are not detected (RocksDB counts only deletions too): the next
/// compaction over them, or `compact_range`, drops them.
///
/// Looks at each file's properties once per open, in the background: the
/// foreground check ([`bottom_garbage`]) stays free of I/O.
fn settle_clean_bottom_files(inner: &DbInner, family: &Family, version: &Version, oldest: SeqNo) {
    let last = &version.levels[family.opts.num_levels - 1];
    while let Some(f) = bottom_garbage(family, version, oldest) {
        let droppable = f.meta.smallest_seq == 0
            || f.meta.range_deletions > 0
            // Unreadable: let the rewrite meet the error and report it.
            || inner
                .table_cache
                .get(&f)
                .map_or(true, |t| t.properties().tombstones > 0);
        if droppable {
            return;
        }
        let mut settled = family.settled_bottom.lock();
        settled.insert(f.meta.number);
        if settled.len() > 2 * last.len() + 16 {
            settled.retain(|n| last.iter().any(|f| f.meta.number == *n));
        }
    }
}

/// Whether the family needs a compaction.
pub(crate) fn wanted(family: &Family, version: &Version, oldest_visible: SeqNo, now: u64) -> bool {
    most_urgent(&family.opts, version).is_some()
        || bottom_garbage(family, version, oldest_visible).is_some()
        || ttl_expired(&family.opts, version, now).is_some()
}

/// Chooses the next compaction of `family`, and whether its input may move
/// down without being rewritten.
pub(crate) fn pick(
    family: &Family,
    version: &Version,
    oldest_visible: SeqNo,
    now: u64,
) -> Option<(Compaction, bool)> {
    let opts = &family.opts;
    let last = opts.num_levels - 1;
    let Some((level, _)) = most_urgent(opts, version) else {
        if let Some(file) = bottom_garbage(family, version, oldest_visible) {
            return Some((in_place(last, vec![file]), false));
        }
        // Expired data must be rewritten (dropped), not moved.
        let (level, file) = ttl_expired(opts, version, now)?;
        let c = match level {
            0 => from_level0(opts, version),
            l if l == last => in_place(last, vec![file]),
            l => with_next_level(version, l, l + 1, vec![file]),
        };
        return Some((c, false));
    };
    if level == 0 {
        return Some((from_level0(opts, version), true));
    }
    let f = least_overlapping(&version.levels[level], &version.levels[level + 1])?;
    Some((with_next_level(version, level, level + 1, vec![f]), true))
}

/// The file of `files` that overlaps the fewest bytes of `next` (the level
/// below, sorted by key, files disjoint) for its own size: the cheapest
/// rewrite per byte pushed down (RocksDB's default `kMinOverlappingRatio`).
/// Taking files round-robin instead wrote 8% more table bytes under random
/// overwrites at 10M keys. The first such file in key order on a tie.
fn least_overlapping(files: &[Arc<LiveFile>], next: &[Arc<LiveFile>]) -> Option<Arc<LiveFile>> {
    // `files` is sorted by key and disjoint too: one pass over both.
    let mut first = 0;
    let mut best: Option<(u128, &Arc<LiveFile>)> = None;
    for f in files {
        let (lo, hi) = (f.smallest_user_key(), f.largest_user_key());
        while first < next.len() && next[first].largest_user_key() < lo {
            first += 1;
        }
        let overlap: u64 = next[first..]
            .iter()
            .take_while(|n| n.smallest_user_key() <= hi)
            .map(|n| n.meta.size)
            .sum();
        let ratio = (overlap as u128) * 1024 / u128::from(f.meta.size.max(1));
        if best.is_none_or(|(r, _)| ratio < r) {
            best = Some((ratio, f));
        }
    }
    best.map(|(_, f)| f.clone())
}

/// Every level-0 file into the base level. Level-0 files overlap one
/// another: all of them go, so that no older version of a key stays above
/// a newer one.
fn from_level0(opts: &ColumnFamilyOptions, version: &Version) -> Compaction {
    let base = level_shape(opts, version).base;
    with_next_level(version, 0, base, version.levels[0].clone())
}

fn with_next_level(
    version: &Version,
    level: usize,
    out_level: usize,
    inputs: Vec<Arc<LiveFile>>,
) -> Compaction {
    let (lo, hi) = key_span(&inputs);
    let next = overlapping(&version.levels[out_level], &lo, &hi);
    Compaction {
        level,
        inputs,
        next,
        out_level,
    }
}

/// Rewrites files of the last level into that level.
fn in_place(level: usize, inputs: Vec<Arc<LiveFile>>) -> Compaction {
    Compaction {
        level,
        inputs,
        next: Vec::new(),
        out_level: level,
    }
}

/// The smallest and largest user key of `files`.
fn key_span(files: &[Arc<LiveFile>]) -> (Vec<u8>, Vec<u8>) {
    let lo = files
        .iter()
        .map(|f| f.smallest_user_key())
        .min()
        .unwrap_or(&[]);
    let hi = files
        .iter()
        .map(|f| f.largest_user_key())
        .max()
        .unwrap_or(&[]);
    (lo.to_vec(), hi.to_vec())
}

fn overlapping(files: &[Arc<LiveFile>], lo: &[u8], hi: &[u8]) -> Vec<Arc<LiveFile>> {
    files
        .iter()
        .filter(|f| f.largest_user_key() >= lo && f.smallest_user_key() <= hi)
        .cloned()
        .collect()
}

/// Runs the most urgent compaction of any family, if one is needed: the
/// family whose level is furthest over its target, else one with
/// last-level garbage or data past its TTL. Returns whether it did
/// anything.
pub(crate) fn run_one(inner: &DbInner) -> Result<bool> {
    let _running = inner.compaction_lock.lock();
    let oldest = oldest_visible(inner);
    let now = ttl::now();
    let families = inner.family_list();
    for f in &families {
        let version = f.view.read().version.clone();
        settle_clean_bottom_files(inner, f, &version, oldest);
    }
    let scored = families
        .iter()
        .filter_map(|f| {
            let version = f.view.read().version.clone();
            most_urgent(&f.opts, &version).map(|(_, score)| (score, f))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f);
    let family = scored.or_else(|| {
        families.iter().find(|f| {
            let version = f.view.read().version.clone();
            wanted(f, &version, oldest, now)
        })
    });
    let Some(family) = family else {
        return Ok(false);
    };
    let version = family.view.read().version.clone();
    let Some((c, allow_move)) = pick(family, &version, oldest, now) else {
        return Ok(false);
    };
    execute(inner, family, &version, c, allow_move)?;
    Ok(true)
}

/// Compacts every file overlapping `range`, level by level, into the level
/// below the deepest one holding data (or the last level), rewriting every
/// file on the way so that overwritten values and deleted keys that no
/// snapshot can see are dropped. Last-level files in the range are
/// rewritten in place unless they hold no garbage (all sequence numbers 0).
pub(crate) fn compact_range(inner: &DbInner, family: &Family, range: &KeyRange) -> Result<()> {
    let _running = inner.compaction_lock.lock();
    let levels = family.opts.num_levels;
    let deepest = {
        let version = family.view.read().version.clone();
        (0..levels).rev().find(|&l| !version.levels[l].is_empty())
    };
    let Some(deepest) = deepest else {
        return Ok(());
    };
    let bottom = (deepest + 1).min(levels - 1);
    for level in 0..bottom {
        let version = family.view.read().version.clone();
        let files = &version.levels[level];
        let c = if level == 0 {
            // Level-0 files overlap: all go, or an older version of a key
            // could end up above a newer one.
            if !files.iter().any(|f| overlaps_range(f, range)) {
                continue;
            }
            from_level0(&family.opts, &version)
        } else {
            let inputs: Vec<Arc<LiveFile>> = files
                .iter()
                .filter(|f| overlaps_range(f, range))
                .cloned()
                .collect();
            if inputs.is_empty() {
                continue;
            }
            with_next_level(&version, level, level + 1, inputs)
        };
        execute(inner, family, &version, c, false)?;
    }
    if bottom == levels - 1 {
        // Files that are all zeros are left alone. Each run of neighbours
        // to rewrite is its own job: one job's outputs cover the key span
        // of all its inputs, and would overlap a skipped file in between.
        let version = family.view.read().version.clone();
        let mut runs: Vec<Vec<Arc<LiveFile>>> = vec![Vec::new()];
        for f in &version.levels[bottom] {
            if f.meta.largest_seq > 0 && overlaps_range(f, range) {
                runs.last_mut().expect("never empty").push(f.clone());
            } else if !runs.last().expect("never empty").is_empty() {
                runs.push(Vec::new());
            }
        }
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let version = family.view.read().version.clone();
            execute(inner, family, &version, in_place(bottom, run), false)?;
        }
    }
    inner.bg.notify();
    Ok(())
}

fn overlaps_range(f: &LiveFile, range: &KeyRange) -> bool {
    let after_start = match &range.start {
        Bound::Included(s) => f.largest_user_key() >= s.as_slice(),
        Bound::Excluded(s) => f.largest_user_key() > s.as_slice(),
        Bound::Unbounded => true,
    };
    let before_end = match &range.end {
        Bound::Included(e) => f.smallest_user_key() <= e.as_slice(),
        Bound::Excluded(e) => f.smallest_user_key() < e.as_slice(),
        Bound::Unbounded => true,
    };
    after_start && before_end
}

/// Installs a compaction whose filter removed or changed entries from
/// sequence number `filtered` on. The filter only touched entries newer
/// than every snapshot when the compaction started, but a snapshot taken
/// since then can see them, and must not see them change: then the
/// outputs are dropped (false, as for a dropped family) and the next
/// compaction, which knows the snapshot, leaves those entries alone. The
/// check and the install happen under the snapshot list's lock, so no
/// snapshot can appear between them.
fn install_filtered(
    inner: &DbInner,
    family: &Family,
    edit: FamilyEdit,
    filtered: SeqNo,
) -> Result<bool> {
    let snapshots = inner.snapshots.lock();
    if snapshots.keys().next_back().is_some_and(|&s| s >= filtered) {
        return Ok(false);
    }
    let installed = inner.install_at(family, edit, None, None);
    drop(snapshots);
    // Stopping writes takes locks that must not wait under the list's.
    installed.map_err(|e| inner.stop_writes(e, super::health::Failure::Fatal))
}

/// The oldest sequence number any reader may still ask for.
pub(crate) fn oldest_visible(inner: &DbInner) -> SeqNo {
    let snaps = inner.snapshots.lock();
    let visible = inner.visible_seq.load(Ordering::Acquire);
    snaps.keys().next().copied().unwrap_or(visible).min(visible)
}

/// The rules a compaction starting now follows.
fn rules_now(inner: &DbInner, family: &Family) -> Rules {
    let newest_snapshot = inner.snapshots.lock().keys().next_back().copied();
    Rules {
        oldest: oldest_visible(inner),
        newest_snapshot,
        ttl: family.opts.ttl.map(|t| (t.as_secs(), ttl::now())),
        filtered: std::cell::Cell::new(None),
    }
}

/// Runs compaction `c`. A file that overlaps nothing in the next level is
/// moved rather than rewritten when `allow_move` is set.
fn execute(
    inner: &DbInner,
    family: &Family,
    version: &Version,
    c: Compaction,
    allow_move: bool,
) -> Result<()> {
    let out_level = c.out_level;
    let moving = c.is_move(allow_move);
    let mut job = super::events::CompactionJob::begin(inner, family, &c, !allow_move, moving);
    let mut edit = FamilyEdit::new(family.id);
    for f in &c.inputs {
        edit.deleted_files.push((c.level as u32, f.meta.number));
    }
    for f in &c.next {
        edit.deleted_files.push((out_level as u32, f.meta.number));
    }

    if moving {
        edit.new_files
            .extend(c.inputs.iter().map(|f| (out_level as u32, f.meta.clone())));
        family.stats.trivial_moves.fetch_add(1, Ordering::Relaxed);
    } else {
        let mut created = Vec::new();
        let rules = rules_now(inner, family);
        let merged = rewrite::merge_files(inner, family, version, &c, &rules, &mut created)
            .and_then(|outputs| {
                inner
                    .fs
                    .sync_dir(&inner.dir)
                    .ctx(&inner.dir)
                    .map(|_| outputs)
            });
        let outputs = match merged {
            Ok(outputs) => outputs,
            Err(e) => {
                // Nothing refers to the outputs and the inputs are
                // untouched: remove them and let the compaction run again.
                for &number in &created {
                    let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
                }
                let failure = failure_of(&e);
                return Err(inner.stop_writes(e, failure));
            }
        };
        job.wrote(inner, &outputs);
        let read: u64 = c.inputs.iter().chain(&c.next).map(|f| f.meta.size).sum();
        let written: u64 = outputs.iter().map(|m| m.size).sum();
        family
            .stats
            .compaction_bytes_read
            .fetch_add(read, Ordering::Relaxed);
        family
            .stats
            .compaction_bytes_written
            .fetch_add(written, Ordering::Relaxed);
        created = outputs.iter().map(|m| m.number).collect();
        if out_level == c.level {
            // A rewrite in place keeps sequence numbers only for what it
            // cannot fold; a file all of whose entries every reader sees
            // would come out the same if rewritten again.
            let mut settled = family.settled_bottom.lock();
            settled.extend(
                outputs
                    .iter()
                    .filter(|m| m.largest_seq > 0 && m.largest_seq <= rules.oldest)
                    .map(|m| m.number),
            );
        }
        edit.new_files
            .extend(outputs.into_iter().map(|m| (out_level as u32, m)));
        let installed = match rules.filtered.get() {
            None => inner.install(family, edit, None)?,
            Some(seq) => install_filtered(inner, family, edit, seq)?,
        };
        if !installed {
            // The family was dropped meanwhile: nothing refers to these.
            for &number in &created {
                let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
            }
            return Ok(());
        }
        family.stats.compactions.fetch_add(1, Ordering::Relaxed);
        job.completed(inner);
        return Ok(());
    }
    if inner.install(family, edit, None)? {
        family.stats.compactions.fetch_add(1, Ordering::Relaxed);
        job.completed(inner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_file_overlapping_least_below_for_its_size() {
        let f = LiveFile::for_test;
        let below = [
            f(10, "a", "c", 100),
            f(11, "d", "f", 100),
            f(12, "g", "i", 100),
            f(13, "j", "l", 100),
        ];
        // 200 bytes below for 100: ratio 2. 100 for 100: 1. 100 for 60:
        // 1.67. Nothing below for 10: 0, but that file comes last.
        let files = [
            f(1, "b", "e", 100),
            f(2, "g", "h", 100),
            f(3, "j", "k", 60),
            f(4, "x", "z", 10),
        ];
        let pick = |files: &[Arc<LiveFile>]| least_overlapping(files, &below).unwrap().meta.number;
        assert_eq!(pick(&files), 4);
        assert_eq!(pick(&files[..3]), 2);
        // A tie goes to the first in key order.
        let tie = [f(5, "a", "b", 100), f(6, "d", "e", 100)];
        assert_eq!(pick(&tie), 5);
        assert!(least_overlapping(&[], &below).is_none());
        // With nothing below, the first file.
        assert_eq!(least_overlapping(&files, &[]).unwrap().meta.number, 1);
    }
}
