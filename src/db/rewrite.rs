//! Writing a compaction's output: which entries of the inputs survive, what
//! they become, and how they are cut into table files.
//!
//! `oldest` is the oldest sequence number a reader may still ask for (the
//! oldest live snapshot, or the newest write). For each user key, entries
//! come newest first:
//! - an entry older than a value or tombstone that every reader sees is
//!   dropped (no one can read it);
//! - an entry older than a range tombstone every reader sees is dropped;
//! - a point tombstone every reader sees is dropped when no deeper level
//!   may hold the key;
//! - merge operands every reader sees are folded with the value below them
//!   (or with nothing, when no deeper level may hold the key) by the merge
//!   operator, and otherwise shrunk with its partial merge; operands a
//!   snapshot may still see apart are kept;
//! - with a TTL, expired values become tombstones and expired operands go;
//! - the compaction filter sees the newest value of a key when it is newer
//!   than every snapshot;
//! - in the last level, a value every reader sees gets sequence number 0.
//!
//! Range tombstones of the inputs are kept (cut to each output's key range)
//! unless every reader sees them and no deeper level overlaps them.

use super::compaction::Compaction;
use super::family::Family;
use super::filenames::table_path;
use super::flush::build_options;
use super::output_cut::OutputCutter;
use super::DbInner;
use crate::error::{IoContext, Result};
use crate::internal_iter::InternalIterator;
use crate::merge::MergingIterator;
use crate::operators::FilterDecision;
use crate::range_del::{Fragments, RangeTombstone};
use crate::table::TableBuilder;
use crate::ttl;
use crate::types::{encode_internal_key, parse_internal_key, SeqNo, ValueKind};
use crate::version::{FileMeta, LiveFile, Version};
use std::sync::Arc;

/// What a compaction reads its rules from.
pub(crate) struct Rules {
    /// The oldest sequence number a reader may ask for.
    pub(crate) oldest: SeqNo,
    /// The newest live snapshot, if any: the filter leaves older values.
    pub(crate) newest_snapshot: Option<SeqNo>,
    /// TTL in seconds and the time it is measured at.
    pub(crate) ttl: Option<(u64, u64)>,
    /// The smallest sequence number of an entry the compaction filter
    /// removed or changed, if any: a snapshot taken after the rules were
    /// fixed can see it (see `compaction::install_filtered`).
    pub(crate) filtered: std::cell::Cell<Option<SeqNo>>,
}

/// Merges the inputs of `c` into new files for its output level. The number
/// of every output file started is pushed to `created`, so the caller can
/// remove them when the compaction fails.
pub(crate) fn merge_files(
    inner: &DbInner,
    family: &Family,
    version: &Version,
    c: &Compaction,
    rules: &Rules,
    created: &mut Vec<u64>,
) -> Result<Vec<FileMeta>> {
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    let mut tombstones: Vec<RangeTombstone> = Vec::new();
    for f in c.inputs.iter().chain(&c.next) {
        let table = inner.table_cache.get(f)?;
        tombstones.extend(table.range_deletions().tombstones());
        children.push(Box::new(table.iter()));
    }
    let input_tombs = Fragments::build(tombstones);
    let out_level = c.out_level;
    // Range tombstones every reader sees, over a range no deeper level
    // holds, have deleted all they can: they go.
    let kept_tombs = if input_tombs.is_empty() {
        Fragments::default()
    } else {
        Fragments::build(input_tombs.tombstones().filter(|t| {
            t.seq > rules.oldest || deeper_levels_overlap(version, out_level, &t.start, &t.end)
        }))
    };
    let mut w = Writer {
        inner,
        family,
        out_level,
        zero_seqs: out_level == family.opts.num_levels - 1,
        oldest: rules.oldest,
        outputs: Vec::new(),
        out: None,
        lo: None,
        tombs: kept_tombs,
        created,
        scratch: Vec::new(),
    };
    let mut iter = MergingIterator::new(children);
    iter.seek_to_first();

    let grandparents: &[Arc<LiveFile>] = version
        .levels
        .get(out_level + 1)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut cutter = OutputCutter::new(grandparents, family.opts.target_file_size);
    let mut key = KeyState::default();
    while iter.valid() {
        let Some(p) = parse_internal_key(iter.key()) else {
            return Err(crate::Error::corruption(
                &inner.dir,
                0,
                "compaction input holds a malformed internal key",
            ));
        };
        if !key.started || p.user_key != key.user_key.as_slice() {
            if key.started {
                key.finish(&mut w, version, rules)?;
            }
            // Only between user keys, so that files of one level never
            // share a user key.
            let size = w.out.as_ref().map(|o| o.builder.estimated_size());
            if cutter.cut_before(p.user_key, size) {
                w.cut(p.user_key)?;
            }
            key.start(
                p.user_key,
                input_tombs.max_covering(p.user_key, rules.oldest),
            );
        }
        key.entry(&mut w, version, rules, p.seq, p.kind, iter.value())?;
        iter.next();
    }
    iter.status()?;
    if key.started {
        key.finish(&mut w, version, rules)?;
    }
    w.close()
}

/// Whether some level below `out_level` may hold user key `key`.
fn deeper_levels_may_hold(version: &Version, out_level: usize, key: &[u8]) -> bool {
    (out_level + 1..version.levels.len()).any(|l| version.files_for_key(l, key).next().is_some())
}

/// Whether some level below `out_level` holds a file overlapping
/// `[start, end)`.
fn deeper_levels_overlap(version: &Version, out_level: usize, start: &[u8], end: &[u8]) -> bool {
    version.levels.iter().skip(out_level + 1).any(|files| {
        files
            .iter()
            .any(|f| f.smallest_user_key() < end && !f.ends_before(start))
    })
}

/// The entries of the user key being rewritten.
#[derive(Default)]
struct KeyState {
    started: bool,
    user_key: Vec<u8>,
    /// Entries older than this are deleted by a range tombstone every
    /// reader sees.
    covered_below: SeqNo,
    /// Whether an entry has been seen (the filter looks at the first).
    seen_any: bool,
    /// The newest value or tombstone kept (or folded into), if any: older
    /// entries are only needed while a reader may not see it.
    decisive: Option<SeqNo>,
    /// Operands every reader sees, newest first, waiting to be folded:
    /// (sequence number, stored bytes).
    ops: Vec<(SeqNo, Vec<u8>)>,
}

impl KeyState {
    fn start(&mut self, user_key: &[u8], covered_below: SeqNo) {
        self.started = true;
        self.user_key.clear();
        self.user_key.extend_from_slice(user_key);
        self.covered_below = covered_below;
        self.seen_any = false;
        self.decisive = None;
        self.ops.clear();
    }

    /// Takes the next (older) entry of the key.
    fn entry(
        &mut self,
        w: &mut Writer<'_>,
        version: &Version,
        rules: &Rules,
        seq: SeqNo,
        mut kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        let first = !self.seen_any;
        self.seen_any = true;
        if self.decisive.is_some_and(|d| d <= rules.oldest) {
            return Ok(()); // hidden by a newer entry every reader sees
        }
        let covered = seq < self.covered_below;
        // Expired data is hidden from every read, whatever its snapshot.
        if let Some((ttl_secs, now)) = rules.ttl {
            if matches!(kind, ValueKind::Put | ValueKind::Merge) {
                let expired = ttl::split(value).is_none_or(|(_, t)| ttl::expired(t, ttl_secs, now));
                if expired && kind == ValueKind::Merge {
                    return Ok(());
                }
                if expired {
                    kind = ValueKind::Delete;
                }
            }
        }
        let mut changed: Option<Vec<u8>> = None;
        if first
            && kind == ValueKind::Put
            && !covered
            && rules.newest_snapshot.is_none_or(|s| seq > s)
        {
            if let Some(filter) = &w.family.opts.compaction_filter {
                let user_value = strip(rules, value);
                match filter.filter(w.out_level, &self.user_key, user_value) {
                    FilterDecision::Keep => {}
                    FilterDecision::Remove => kind = ValueKind::Delete,
                    FilterDecision::ChangeValue(v) => changed = Some(restamp(rules, value, v)),
                }
                if kind == ValueKind::Delete || changed.is_some() {
                    let f = rules.filtered.get().map_or(seq, |f| f.min(seq));
                    rules.filtered.set(Some(f));
                }
            }
        }
        let value: &[u8] = changed.as_deref().unwrap_or(value);
        if kind == ValueKind::Merge && !covered {
            if seq <= rules.oldest {
                if self
                    .ops
                    .last()
                    .is_some_and(|(_, v)| !same_time(rules, v, value))
                {
                    // Under a TTL each operand expires on its own: only
                    // operands written in the same second are folded.
                    for (seq, v) in std::mem::take(&mut self.ops) {
                        w.add(&self.user_key, seq, ValueKind::Merge, &v)?;
                    }
                }
                self.ops.push((seq, value.to_vec()));
            } else {
                w.add(&self.user_key, seq, kind, value)?;
            }
            return Ok(());
        }
        // A value, a tombstone, or anything under a range tombstone: the
        // base any waiting operands fold into.
        let base = if covered || kind == ValueKind::Delete {
            None
        } else {
            Some(value)
        };
        if !self.ops.is_empty() && self.fold(w, rules, base)? {
            return Ok(());
        }
        if covered {
            // Deleted for every reader by a range tombstone that stays.
            self.decisive = Some(seq);
            return Ok(());
        }
        self.decisive = Some(seq);
        if kind == ValueKind::Delete
            && seq <= rules.oldest
            && !deeper_levels_may_hold(version, w.out_level, &self.user_key)
        {
            return Ok(()); // a tombstone with nothing left to delete
        }
        w.add(&self.user_key, seq, kind, value)
    }

    /// Folds the waiting operands into `base` and writes the result as a
    /// value at the newest operand's number. When the operator is missing
    /// or refuses, writes the operands as they were and returns false.
    fn fold(&mut self, w: &mut Writer<'_>, rules: &Rules, base: Option<&[u8]>) -> Result<bool> {
        let ops = std::mem::take(&mut self.ops);
        let newest = ops[0].0;
        // A base that expires at another time than the operands stays apart.
        let foldable = base.is_none_or(|b| same_time(rules, b, &ops[0].1));
        let merged = w
            .family
            .opts
            .merge_operator
            .as_ref()
            .filter(|_| foldable)
            .and_then(|op| {
                let operands: Vec<&[u8]> = ops.iter().rev().map(|(_, v)| strip(rules, v)).collect();
                op.full_merge(&self.user_key, base.map(|b| strip(rules, b)), &operands)
            });
        match merged {
            Some(v) => {
                let v = restamp(rules, &ops[0].1, v);
                self.decisive = Some(newest);
                w.add(&self.user_key, newest, ValueKind::Put, &v)?;
                Ok(true)
            }
            None => {
                for (seq, v) in &ops {
                    w.add(&self.user_key, *seq, ValueKind::Merge, v)?;
                }
                Ok(false)
            }
        }
    }

    /// The key's entries are all seen: folds or shrinks waiting operands.
    fn finish(&mut self, w: &mut Writer<'_>, version: &Version, rules: &Rules) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        if !deeper_levels_may_hold(version, w.out_level, &self.user_key) {
            self.fold(w, rules, None)?;
            return Ok(());
        }
        let ops = std::mem::take(&mut self.ops);
        let partial = match (&w.family.opts.merge_operator, ops.len()) {
            (Some(op), n) if n > 1 => {
                let operands: Vec<&[u8]> = ops.iter().rev().map(|(_, v)| strip(rules, v)).collect();
                op.partial_merge(&self.user_key, &operands)
            }
            _ => None,
        };
        match partial {
            Some(v) => {
                let v = restamp(rules, &ops[0].1, v);
                w.add(&self.user_key, ops[0].0, ValueKind::Merge, &v)
            }
            None => {
                for (seq, v) in &ops {
                    w.add(&self.user_key, *seq, ValueKind::Merge, v)?;
                }
                Ok(())
            }
        }
    }
}

/// Whether two stored values have the same write time (always, without a
/// TTL).
fn same_time(rules: &Rules, a: &[u8], b: &[u8]) -> bool {
    rules.ttl.is_none() || ttl::split(a).map(|(_, t)| t) == ttl::split(b).map(|(_, t)| t)
}

/// The user's part of a stored value (without its write time, under a TTL).
fn strip<'v>(rules: &Rules, stored: &'v [u8]) -> &'v [u8] {
    match rules.ttl {
        Some(_) => ttl::split(stored).map_or(stored, |(v, _)| v),
        None => stored,
    }
}

/// `value` stored with the write time of `like` (under a TTL).
fn restamp(rules: &Rules, like: &[u8], value: Vec<u8>) -> Vec<u8> {
    match rules.ttl {
        Some(_) => ttl::with_time(&value, ttl::split(like).map_or(0, |(_, t)| t)),
        None => value,
    }
}

/// The output files being written.
struct Writer<'a> {
    inner: &'a DbInner,
    family: &'a Family,
    out_level: usize,
    zero_seqs: bool,
    oldest: SeqNo,
    outputs: Vec<FileMeta>,
    out: Option<Output>,
    /// Where the current (or next) output's share of range tombstones
    /// starts (`None`: from the beginning).
    lo: Option<Vec<u8>>,
    tombs: Fragments,
    created: &'a mut Vec<u64>,
    scratch: Vec<u8>,
}

impl Writer<'_> {
    fn add(
        &mut self,
        user_key: &[u8],
        mut seq: SeqNo,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        if self.out.is_none() {
            self.start()?;
        }
        // In the last level a value every reader sees (nothing older
        // survives) needs no sequence number: 0 marks it garbage-free.
        if self.zero_seqs && kind == ValueKind::Put && self.decisive_for_all(seq) {
            seq = 0;
        }
        self.scratch.clear();
        encode_internal_key(&mut self.scratch, user_key, seq, kind);
        let Some(o) = self.out.as_mut() else {
            return Ok(());
        };
        o.meta.extend(&self.scratch);
        o.builder.add(&self.scratch, value)
    }

    /// Whether a value at `seq` is one every reader sees (the caller only
    /// asks for values that are the newest of their key kept).
    fn decisive_for_all(&self, seq: SeqNo) -> bool {
        seq > 0 && seq <= self.oldest
    }

    fn start(&mut self) -> Result<()> {
        let number = self.inner.new_file_number();
        self.created.push(number);
        self.out = Some(Output::start(
            self.inner,
            self.family,
            self.out_level,
            number,
        )?);
        Ok(())
    }

    /// Finishes the current output before user key `at`.
    fn cut(&mut self, at: &[u8]) -> Result<()> {
        if let Some(o) = self.out.take() {
            let tombs = self.tombs.clip(self.lo.as_deref(), Some(at), |_| true);
            self.outputs.push(o.finish(tombs)?);
            self.lo = Some(at.to_vec());
        }
        Ok(())
    }

    /// Finishes the last output (one for range tombstones alone, if only
    /// they are left).
    fn close(mut self) -> Result<Vec<FileMeta>> {
        let tombs = self.tombs.clip(self.lo.as_deref(), None, |_| true);
        if self.out.is_none() && !tombs.is_empty() {
            self.start()?;
        }
        if let Some(o) = self.out.take() {
            self.outputs.push(o.finish(tombs)?);
        }
        Ok(self.outputs)
    }
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
        let mut builder = TableBuilder::new(file, path, build_options(&family.opts, level));
        builder.set_family(family.id, &family.name);
        Ok(Output {
            builder,
            meta: FileMeta::new(number),
        })
    }

    fn finish(mut self, tombs: Fragments) -> Result<FileMeta> {
        self.meta.add_range_deletions(&tombs);
        self.builder.set_range_deletions(tombs);
        let props = self.builder.finish()?;
        self.meta.finish(&props);
        Ok(self.meta)
    }
}
