//! Leveled compaction: choosing what to compact (a pure function of the
//! version and options) and doing it.
//!
//! Level 0 compacts into level 1 when it holds
//! `level0_file_num_compaction_trigger` files; level `n >= 1` compacts into
//! `n + 1` when it outgrows its target (`max_bytes_for_level_base` times
//! `max_bytes_for_level_multiplier^(n-1)`). The level with the highest
//! score (files or bytes over target) goes first. From level `n >= 1` one
//! file is taken, round-robin through the key space; every file of the next
//! level it overlaps joins it. A file that overlaps nothing below moves down
//! without being rewritten.
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
use super::flush::{build_options, failure_of};
use super::stats::level_targets;
use super::DbInner;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{IoContext, Result};
use crate::internal_iter::InternalIterator;
use crate::iterator::KeyRange;
use crate::merge::MergingIterator;
use crate::table::TableBuilder;
use crate::types::{encode_internal_key, parse_internal_key, SeqNo, ValueKind};
use crate::version::{FamilyEdit, FileMeta, LiveFile, Version};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A compaction output is also cut when it would overlap more than this
/// many target file sizes of the level below the output, so that the
/// compaction that later pushes it down stays small.
const MAX_GRANDPARENT_OVERLAP_FILES: u64 = 10;

/// What one compaction reads and where it writes.
pub(crate) struct Compaction {
    pub(crate) level: usize,
    pub(crate) inputs: Vec<Arc<LiveFile>>,
    /// Overlapping files of `out_level` (none when it is `level`).
    pub(crate) next: Vec<Arc<LiveFile>>,
    /// `level + 1`, or `level` for a rewrite in place of last-level files.
    pub(crate) out_level: usize,
}

/// The level most in need of compaction and its score, if any level's
/// score is at least 1.
pub(crate) fn most_urgent(opts: &ColumnFamilyOptions, version: &Version) -> Option<(usize, f64)> {
    let targets = level_targets(opts);
    let mut best: Option<(usize, f64)> = None;
    for (level, files) in version.levels.iter().enumerate().take(opts.num_levels - 1) {
        let score = if level == 0 {
            files.len() as f64 / opts.level0_file_num_compaction_trigger as f64
        } else {
            let bytes: u64 = files.iter().map(|f| f.meta.size).sum();
            bytes as f64 / targets[level].unwrap_or(u64::MAX) as f64
        };
        if score >= 1.0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((level, score));
        }
    }
    best
}

/// Last-level files that may hold entries no reader can see any more:
/// written with sequence numbers kept for a snapshot (so not all zero), all
/// of which are now older than the oldest snapshot.
pub(crate) fn bottom_garbage(
    opts: &ColumnFamilyOptions,
    version: &Version,
    oldest_visible: SeqNo,
) -> Option<Arc<LiveFile>> {
    version.levels[opts.num_levels - 1]
        .iter()
        .find(|f| f.meta.largest_seq > 0 && f.meta.largest_seq <= oldest_visible)
        .cloned()
}

/// Chooses the next compaction. `cursor` is where the previous compaction
/// of each level stopped (round-robin through the key space).
pub(crate) fn pick(
    opts: &ColumnFamilyOptions,
    version: &Version,
    cursors: &[Vec<u8>],
    oldest_visible: SeqNo,
) -> Option<Compaction> {
    let Some((level, _)) = most_urgent(opts, version) else {
        let file = bottom_garbage(opts, version, oldest_visible)?;
        return Some(in_place(opts.num_levels - 1, vec![file]));
    };
    let files = &version.levels[level];
    let inputs: Vec<Arc<LiveFile>> = if level == 0 {
        // Level-0 files overlap one another: all of them go, so that no
        // older version of a key stays above a newer one.
        files.clone()
    } else {
        let cursor = cursors.get(level).map(Vec::as_slice).unwrap_or(&[]);
        let f = files
            .iter()
            .find(|f| f.smallest_user_key() > cursor)
            .or_else(|| files.first())?;
        vec![f.clone()]
    };
    Some(with_next_level(version, level, inputs))
}

fn with_next_level(version: &Version, level: usize, inputs: Vec<Arc<LiveFile>>) -> Compaction {
    let (lo, hi) = key_span(&inputs);
    let next = overlapping(&version.levels[level + 1], &lo, &hi);
    Compaction {
        level,
        inputs,
        next,
        out_level: level + 1,
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
/// last-level garbage. Returns whether it did anything.
pub(crate) fn run_one(inner: &DbInner) -> Result<bool> {
    let _running = inner.compaction_lock.lock();
    let oldest = oldest_visible(inner);
    let families = inner.family_list();
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
            bottom_garbage(&f.opts, &version, oldest).is_some()
        })
    });
    let Some(family) = family else {
        return Ok(false);
    };
    let version = family.view.read().version.clone();
    let cursors = family.compaction_cursors.lock().clone();
    let Some(c) = pick(&family.opts, &version, &cursors, oldest) else {
        return Ok(false);
    };
    if c.level > 0 && c.out_level > c.level {
        if let Some(f) = c.inputs.last() {
            let mut cursors = family.compaction_cursors.lock();
            cursors.resize(family.opts.num_levels, Vec::new());
            cursors[c.level] = f.largest_user_key().to_vec();
        }
    }
    execute(inner, family, &version, c, true)?;
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
        let inputs: Vec<Arc<LiveFile>> = if level == 0 {
            // Level-0 files overlap: all go, or an older version of a key
            // could end up above a newer one.
            if files.iter().any(|f| overlaps_range(f, range)) {
                files.clone()
            } else {
                Vec::new()
            }
        } else {
            files
                .iter()
                .filter(|f| overlaps_range(f, range))
                .cloned()
                .collect()
        };
        if inputs.is_empty() {
            continue;
        }
        let c = with_next_level(&version, level, inputs);
        execute(inner, family, &version, c, false)?;
    }
    if bottom == levels - 1 {
        let version = family.view.read().version.clone();
        let inputs: Vec<Arc<LiveFile>> = version.levels[bottom]
            .iter()
            .filter(|f| f.meta.largest_seq > 0 && overlaps_range(f, range))
            .cloned()
            .collect();
        if !inputs.is_empty() {
            execute(inner, family, &version, in_place(bottom, inputs), false)?;
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

/// The oldest sequence number any reader may still ask for.
pub(crate) fn oldest_visible(inner: &DbInner) -> SeqNo {
    let snaps = inner.snapshots.lock();
    let visible = inner.visible_seq.load(Ordering::Acquire);
    snaps.keys().next().copied().unwrap_or(visible).min(visible)
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
    let mut edit = FamilyEdit::new(family.id);
    for f in &c.inputs {
        edit.deleted_files.push((c.level as u32, f.meta.number));
    }
    for f in &c.next {
        edit.deleted_files.push((out_level as u32, f.meta.number));
    }

    let trivial = allow_move && c.inputs.len() == 1 && c.next.is_empty() && out_level > c.level;
    if trivial {
        edit.new_files
            .push((out_level as u32, c.inputs[0].meta.clone()));
        family.stats.trivial_moves.fetch_add(1, Ordering::Relaxed);
    } else {
        let mut created = Vec::new();
        let oldest = oldest_visible(inner);
        let merged =
            merge_files(inner, family, version, &c, oldest, &mut created).and_then(|outputs| {
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
        edit.new_files
            .extend(outputs.into_iter().map(|m| (out_level as u32, m)));
        if !inner.install(family, edit, None)? {
            // The family was dropped meanwhile: nothing refers to these.
            for &number in &created {
                let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
            }
            return Ok(());
        }
        family.stats.compactions.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    if inner.install(family, edit, None)? {
        family.stats.compactions.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Whether some level below `out_level` may hold an older entry for `key`
/// (then a tombstone for it must be kept).
fn deeper_levels_may_hold(version: &Version, out_level: usize, key: &[u8]) -> bool {
    (out_level + 1..version.levels.len()).any(|l| version.files_for_key(l, key).next().is_some())
}

/// Merges the inputs into new files for the output level, dropping entries
/// no reader can see.
/// The number of every output file started is pushed to `created`, so the
/// caller can remove them when the compaction fails.
fn merge_files(
    inner: &DbInner,
    family: &Family,
    version: &Version,
    c: &Compaction,
    oldest_visible: SeqNo,
    created: &mut Vec<u64>,
) -> Result<Vec<FileMeta>> {
    let out_level = c.out_level;
    // In the last level, an entry every reader sees (no older version of
    // it survives) needs no sequence number: 0 marks it garbage-free.
    let zero_seqs = out_level == family.opts.num_levels - 1;
    let mut zeroed = Vec::new();
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    for f in c.inputs.iter().chain(&c.next) {
        children.push(Box::new(inner.table_cache.get(&f.meta)?.iter()));
    }
    let mut iter = MergingIterator::new(children);
    iter.seek_to_first();

    let grandparents: &[Arc<LiveFile>] = version
        .levels
        .get(out_level + 1)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let max_overlap = MAX_GRANDPARENT_OVERLAP_FILES * family.opts.target_file_size;

    let mut outputs = Vec::new();
    let mut out: Option<Output> = None;
    let mut current_key: Vec<u8> = Vec::new();
    let mut has_current = false;
    let mut newer_seq: SeqNo = SeqNo::MAX;
    let mut grandparent_idx = 0;
    let mut overlapped: u64 = 0;
    while iter.valid() {
        let key = iter.key();
        let Some(p) = parse_internal_key(key) else {
            return Err(crate::Error::corruption(
                &inner.dir,
                0,
                "compaction input holds a malformed internal key",
            ));
        };
        let new_user_key = !has_current || p.user_key != current_key.as_slice();
        if new_user_key {
            // Cut the output here if it is big enough or overlaps too much
            // of the level below; only between user keys, so that files of
            // one level never share a user key.
            while grandparent_idx < grandparents.len()
                && grandparents[grandparent_idx].largest_user_key() < p.user_key
            {
                if out.is_some() {
                    overlapped += grandparents[grandparent_idx].meta.size;
                }
                grandparent_idx += 1;
            }
            if let Some(o) = &out {
                if o.builder.estimated_size() >= family.opts.target_file_size
                    || overlapped > max_overlap
                {
                    if let Some(o) = out.take() {
                        outputs.push(o.finish()?);
                    }
                    overlapped = 0;
                }
            }
            current_key.clear();
            current_key.extend_from_slice(p.user_key);
            has_current = true;
            newer_seq = SeqNo::MAX;
        }
        let hidden = newer_seq <= oldest_visible;
        let dead_tombstone = p.kind == ValueKind::Delete
            && p.seq <= oldest_visible
            && !deeper_levels_may_hold(version, out_level, p.user_key);
        newer_seq = p.seq;
        if !hidden && !dead_tombstone {
            if out.is_none() {
                let number = inner.new_file_number();
                created.push(number);
                out = Some(Output::start(inner, family, out_level, number)?);
            }
            if let Some(o) = out.as_mut() {
                if zero_seqs && p.seq <= oldest_visible && p.seq > 0 {
                    zeroed.clear();
                    encode_internal_key(&mut zeroed, p.user_key, 0, p.kind);
                    o.add(&zeroed, iter.value())?;
                } else {
                    o.add(key, iter.value())?;
                }
            }
        }
        iter.next();
    }
    iter.status()?;
    if let Some(o) = out {
        outputs.push(o.finish()?);
    }
    Ok(outputs)
}

/// One output table being written.
struct Output {
    builder: TableBuilder,
    meta: FileMeta,
}

impl Output {
    fn start(inner: &DbInner, family: &Family, level: usize, number: u64) -> Result<Output> {
        let path = table_path(&inner.dir, number);
        let file = inner.fs.create(&path).ctx(&path)?;
        Ok(Output {
            builder: TableBuilder::new(file, path, build_options(&family.opts, level)),
            meta: FileMeta {
                number,
                size: 0,
                smallest: Vec::new(),
                largest: Vec::new(),
                smallest_seq: SeqNo::MAX,
                largest_seq: 0,
                unique_id: 0,
                file_crc: 0,
            },
        })
    }

    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.meta.smallest.is_empty() {
            self.meta.smallest = key.to_vec();
        }
        if let Some(p) = parse_internal_key(key) {
            self.meta.smallest_seq = self.meta.smallest_seq.min(p.seq);
            self.meta.largest_seq = self.meta.largest_seq.max(p.seq);
        }
        self.meta.largest.clear();
        self.meta.largest.extend_from_slice(key);
        self.builder.add(key, value)
    }

    fn finish(self) -> Result<FileMeta> {
        let props = self.builder.finish()?;
        let mut meta = self.meta;
        meta.size = props.file_size;
        meta.unique_id = props.unique_id;
        meta.file_crc = props.file_crc;
        Ok(meta)
    }
}
