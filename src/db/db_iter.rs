//! The user-facing cursor over one family: merges every source of a read
//! view and shows, for each user key, what its entries visible at the
//! cursor's sequence number add up to (see `resolve`): the newest value,
//! unless a tombstone, a range tombstone or the TTL hides it, with merge
//! operands folded in.
//!
//! Moving forward, the merged iterator normally sits on the entry shown
//! (a plain value: no copy). When the shown value had to be computed
//! (merge operands, a TTL), it is kept in `saved_key`/`saved_value` and the
//! merged iterator sits somewhere among or just after the key's entries.
//! Moving in reverse, it sits just before every entry of the shown key,
//! whose value is kept in `saved_key`/`saved_value`.

use super::family::{Family, ReadView};
use super::level_iter::LevelIterator;
use super::resolve::{Fold, KeyFold, Resolver};
use super::DbInner;
use crate::error::{Error, Result};
use crate::internal_iter::InternalIterator;
use crate::iterator::RawIterator;
use crate::merge::MergingIterator;
use crate::range_del::Fragments;
use crate::types::{encode_internal_key, parse_internal_key, user_key, SeqNo, ValueKind};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// A finished fold, with its value copied out of the source.
enum Decided {
    Plain(Option<Vec<u8>>),
    Merge(Option<Vec<u8>>),
}

impl From<Fold<'_>> for Decided {
    fn from(f: Fold<'_>) -> Decided {
        match f {
            Fold::Plain(v) => Decided::Plain(v.map(<[u8]>::to_vec)),
            Fold::Merge(base) => Decided::Merge(base.map(<[u8]>::to_vec)),
            Fold::More => Decided::Plain(None),
        }
    }
}

pub(crate) struct DbRawIterator {
    /// A table that could not be opened, or a merge that failed: the
    /// cursor is unusable.
    error: Option<Error>,
    /// Keeps the memtables and files of the view alive.
    _view: Arc<ReadView>,
    /// Keeps the directory locked while the cursor may read its files.
    _inner: Arc<DbInner>,
    iter: MergingIterator,
    seq: SeqNo,
    resolver: Resolver,
    /// Every range tombstone of the view, fragmented (empty: none).
    tombstones: Fragments,
    direction: Direction,
    valid: bool,
    /// Forward: the shown key and value are in `saved_key`/`saved_value`
    /// (not under the merged iterator).
    saved: bool,
    saved_key: Vec<u8>,
    saved_value: Vec<u8>,
    fold: KeyFold,
    /// Reverse: the visible entries of the key being looked at, oldest
    /// first (sequence number, kind, value).
    versions: Vec<(SeqNo, ValueKind, Vec<u8>)>,
    probe: Vec<u8>,
    /// Set when an entry could not be parsed.
    corrupt: bool,
}

impl DbRawIterator {
    /// A cursor over `view` of `family` at `seq`. Opening a table file can
    /// fail; the error is then reported by `status()`.
    pub(crate) fn new(
        inner: &Arc<DbInner>,
        family: &Family,
        view: Arc<ReadView>,
        seq: SeqNo,
    ) -> DbRawIterator {
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        let mut tombstones = Vec::new();
        for mem in std::iter::once(&view.mem).chain(view.imms.iter()) {
            children.push(Box::new(mem.iter()));
            tombstones.extend(mem.fragments().tombstones());
        }
        let mut error = None;
        // Level 0's files overlap: each is its own child. Deeper levels are
        // sorted and disjoint: one concatenating child per level, which
        // opens a file only when the cursor reaches it.
        for file in &view.version.levels[0] {
            match inner.table_cache.get(file) {
                Ok(table) => {
                    tombstones.extend(table.range_deletions().tombstones());
                    children.push(Box::new(table.iter()));
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        for (level, files) in view.version.levels.iter().enumerate().skip(1) {
            if files.is_empty() {
                continue;
            }
            // Only files that hold range tombstones are opened up front.
            for file in files.iter().filter(|f| f.meta.range_deletions > 0) {
                match inner.table_cache.get(file) {
                    Ok(table) => tombstones.extend(table.range_deletions().tombstones()),
                    Err(e) => error = error.or(Some(e)),
                }
            }
            children.push(Box::new(LevelIterator::new(
                view.version.clone(),
                level,
                inner.table_cache.clone(),
            )));
        }
        DbRawIterator {
            error,
            _view: view,
            _inner: inner.clone(),
            iter: MergingIterator::new(children),
            seq,
            resolver: Resolver::new(&family.opts, &family.name),
            tombstones: Fragments::build(tombstones),
            direction: Direction::Forward,
            valid: false,
            saved: false,
            saved_key: Vec::new(),
            saved_value: Vec::new(),
            fold: KeyFold::default(),
            versions: Vec::new(),
            probe: Vec::new(),
            corrupt: false,
        }
    }

    /// From the merged iterator's position on, finds the first key with a
    /// value, skipping every entry of a key `<= saved_key` when `skipping`
    /// (a key already shown or found deleted).
    fn find_next_user_entry(&mut self, mut skipping: bool) {
        self.saved = false;
        while self.iter.valid() {
            let Some(p) = parse_internal_key(self.iter.key()) else {
                return self.fail_corrupt();
            };
            if p.seq > self.seq || (skipping && p.user_key <= self.saved_key.as_slice()) {
                self.iter.next();
                continue;
            }
            // The newest visible entry of a new key.
            let covered = self.tombstones.max_covering(p.user_key, self.seq);
            let plain = p.seq >= covered && !self.resolver.has_ttl();
            match p.kind {
                ValueKind::Put if plain => {
                    self.valid = true;
                    return;
                }
                ValueKind::Delete if plain => {
                    self.saved_key.clear();
                    self.saved_key.extend_from_slice(p.user_key);
                    skipping = true;
                    self.iter.next();
                }
                _ => {
                    self.saved_key.clear();
                    self.saved_key.extend_from_slice(p.user_key);
                    match self.fold_forward(covered) {
                        Some(true) => return,
                        Some(false) => skipping = true,
                        None => return,
                    }
                }
            }
        }
        self.valid = false;
    }

    /// Folds the entries of `saved_key` from the merged iterator's position
    /// on. `Some(true)`: a value is shown (saved); `Some(false)`: the key
    /// is absent; `None`: the cursor failed.
    fn fold_forward(&mut self, covered: SeqNo) -> Option<bool> {
        self.fold.start(covered);
        let mut decided = None;
        while self.iter.valid() {
            let Some(p) = parse_internal_key(self.iter.key()) else {
                self.fail_corrupt();
                return None;
            };
            if p.user_key != self.saved_key.as_slice() {
                break;
            }
            match self
                .fold
                .feed(&self.resolver, p.seq, p.kind, self.iter.value())
            {
                Fold::More => self.iter.next(),
                done => {
                    decided = Some(Decided::from(done));
                    break;
                }
            }
        }
        let decided = decided.unwrap_or_else(|| Decided::from(self.fold.end(None)));
        let outcome = self.settle(decided);
        match outcome {
            Ok(shown) => {
                self.saved = shown;
                self.valid = shown;
                Some(shown)
            }
            Err(e) => {
                self.error = Some(e);
                self.valid = false;
                None
            }
        }
    }

    /// Keeps the value a finished fold gives in `saved_value`; whether
    /// there is one.
    fn settle(&mut self, d: Decided) -> Result<bool> {
        let value = match d {
            Decided::Plain(Some(v)) => v,
            Decided::Plain(None) => return Ok(false),
            Decided::Merge(base) => {
                self.resolver
                    .merge(&self.saved_key, base.as_deref(), &self.fold.operands)?
            }
        };
        self.saved_value = value;
        Ok(true)
    }

    /// Moving backwards from the merged iterator's position, finds the
    /// previous key with a value, leaving the merged iterator just before
    /// its entries.
    fn find_prev_user_entry(&mut self) {
        self.versions.clear();
        let mut current: Option<Vec<u8>> = None;
        while self.iter.valid() {
            let (seq, passed) = match parse_internal_key(self.iter.key()) {
                Some(p) => (p.seq, current.as_deref().is_some_and(|k| p.user_key < k)),
                None => return self.fail_corrupt(),
            };
            if seq > self.seq {
                self.iter.prev();
                continue;
            }
            if passed {
                // Passed every entry of the key looked at.
                match self.resolve_versions(current.take().unwrap_or_default()) {
                    Some(true) => return,
                    Some(false) => self.versions.clear(),
                    None => return,
                }
            }
            let Some(p) = parse_internal_key(self.iter.key()) else {
                return self.fail_corrupt();
            };
            if current.is_none() {
                current = Some(p.user_key.to_vec());
            }
            self.versions
                .push((p.seq, p.kind, self.iter.value().to_vec()));
            self.iter.prev();
        }
        if let Some(k) = current {
            if self.resolve_versions(k) != Some(false) {
                return;
            }
        }
        self.valid = false;
        self.saved_key.clear();
        self.saved_value.clear();
        self.direction = Direction::Forward;
    }

    /// Folds the collected `versions` of `key`, newest first.
    fn resolve_versions(&mut self, key: Vec<u8>) -> Option<bool> {
        let covered = self.tombstones.max_covering(&key, self.seq);
        self.saved_key = key;
        self.fold.start(covered);
        let versions = std::mem::take(&mut self.versions);
        let mut decided = None;
        for (seq, kind, value) in versions.iter().rev() {
            match self.fold.feed(&self.resolver, *seq, *kind, value) {
                Fold::More => {}
                done => {
                    decided = Some(Decided::from(done));
                    break;
                }
            }
        }
        let decided = decided.unwrap_or_else(|| Decided::from(self.fold.end(None)));
        let outcome = self.settle(decided);
        self.versions = versions;
        match outcome {
            Ok(shown) => {
                self.valid = shown;
                Some(shown)
            }
            Err(e) => {
                self.error = Some(e);
                self.valid = false;
                None
            }
        }
    }

    fn fail_corrupt(&mut self) {
        // Internal keys come from checksummed sources, so this means a bug
        // or undetected damage; stop rather than guess.
        self.valid = false;
        self.corrupt = true;
    }
}

impl RawIterator for DbRawIterator {
    fn seek_to_first(&mut self) {
        if self.error.is_some() {
            return;
        }
        self.direction = Direction::Forward;
        self.iter.seek_to_first();
        self.find_next_user_entry(false);
    }

    fn seek_to_last(&mut self) {
        if self.error.is_some() {
            return;
        }
        self.direction = Direction::Reverse;
        self.iter.seek_to_last();
        self.find_prev_user_entry();
    }

    fn seek(&mut self, key: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.direction = Direction::Forward;
        self.probe.clear();
        encode_internal_key(&mut self.probe, key, self.seq, ValueKind::SEEK);
        self.iter.seek(&self.probe);
        self.find_next_user_entry(false);
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.direction = Direction::Reverse;
        self.probe.clear();
        // The oldest possible entry of `key` sorts after all its others.
        encode_internal_key(&mut self.probe, key, 0, ValueKind::Delete);
        self.iter.seek_for_prev(&self.probe);
        self.find_prev_user_entry();
    }

    fn next(&mut self) {
        if !self.valid {
            return;
        }
        if self.direction == Direction::Reverse {
            // The merged iterator is before the shown key's entries: step
            // into them, then skip them all.
            self.direction = Direction::Forward;
            if self.iter.valid() {
                self.iter.next();
            } else {
                self.iter.seek_to_first();
            }
        } else if !self.saved {
            self.saved_key.clear();
            self.saved_key.extend_from_slice(user_key(self.iter.key()));
            self.iter.next();
        }
        // (A saved key's remaining entries are skipped below: the merged
        // iterator may already be past them, on the next key.)
        self.find_next_user_entry(true);
    }

    fn prev(&mut self) {
        if !self.valid {
            return;
        }
        if self.direction == Direction::Forward {
            // Step back past every entry of the shown key.
            let key = self.key().to_vec();
            if !self.iter.valid() {
                self.iter.seek_to_last();
            }
            while self.iter.valid() && user_key(self.iter.key()) >= key.as_slice() {
                self.iter.prev();
            }
            self.direction = Direction::Reverse;
        }
        self.find_prev_user_entry();
    }

    fn valid(&self) -> bool {
        self.valid
    }

    fn key(&self) -> &[u8] {
        match self.direction {
            Direction::Forward if !self.saved => user_key(self.iter.key()),
            _ => &self.saved_key,
        }
    }

    fn value(&self) -> &[u8] {
        match self.direction {
            Direction::Forward if !self.saved => self.iter.value(),
            _ => &self.saved_value,
        }
    }

    fn status(&self) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.duplicate());
        }
        if self.corrupt {
            return Err(Error::Corruption {
                file: Default::default(),
                offset: 0,
                reason: "malformed internal key in a read source".into(),
            });
        }
        self.iter.status()
    }
}
