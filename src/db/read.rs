//! The read path: point lookups, the user-facing iterator, snapshots.

use super::family::{Family, ReadView};
use super::level_iter::LevelIterator;
use super::DbInner;
use crate::backend::Snapshot;
use crate::column_family::ColumnFamily;
use crate::error::{Error, Result};
use crate::internal_iter::InternalIterator;
use crate::iterator::{DbIterator, KeyRange, RawIterator};
use crate::memtable::Lookup;
use crate::merge::MergingIterator;
use crate::types::{
    encode_internal_key, parse_internal_key, user_key, LookupKey, SeqNo, ValueKind,
};
use std::sync::Arc;

/// The newest value of `key` visible at `seq`: memtables newest first, then
/// level-0 files newest first, then one file per deeper level; the first
/// entry found decides.
pub(crate) fn get(
    inner: &DbInner,
    view: &ReadView,
    key: &[u8],
    seq: SeqNo,
) -> Result<Option<Vec<u8>>> {
    let lookup = LookupKey::new(key, seq);
    for mem in std::iter::once(&view.mem).chain(view.imms.iter()) {
        match mem.lookup(&lookup) {
            Lookup::Found(v) => return Ok(Some(v.to_vec())),
            Lookup::Deleted => return Ok(None),
            Lookup::Absent => {}
        }
    }
    let version = &view.version;
    for level in 0..version.levels.len() {
        for file in version.files_for_key(level, key) {
            let table = inner.table_cache.get(&file.meta)?;
            if let Some((_, kind, value)) = table.lookup(&lookup)? {
                return Ok(match kind {
                    ValueKind::Put => Some(value.to_vec()),
                    ValueKind::Delete => None,
                });
            }
        }
    }
    Ok(None)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// The user-facing cursor: merges every source of the read view and shows,
/// for each user key, the newest entry visible at the snapshot's sequence
/// number, hiding deleted keys.
///
/// Moving forward, the merged iterator sits on the entry being shown.
/// Moving in reverse, it sits just before every entry of the shown key,
/// whose value is then kept in `saved_key`/`saved_value`.
pub(crate) struct DbRawIterator {
    /// A table that could not be opened: the cursor is unusable.
    open_error: Option<Error>,
    /// Keeps the memtables and files of the view alive.
    _view: Arc<ReadView>,
    /// Keeps the directory locked while the cursor may read its files.
    _inner: Arc<DbInner>,
    iter: MergingIterator,
    seq: SeqNo,
    direction: Direction,
    valid: bool,
    saved_key: Vec<u8>,
    saved_value: Vec<u8>,
    probe: Vec<u8>,
    /// Set when an entry could not be parsed.
    corrupt: bool,
}

impl DbRawIterator {
    /// A cursor over `view` at `seq`. Opening a table file can fail; the
    /// error is then reported by `status()`.
    pub(crate) fn new(inner: &Arc<DbInner>, view: Arc<ReadView>, seq: SeqNo) -> DbRawIterator {
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        children.push(Box::new(view.mem.iter()));
        for imm in &view.imms {
            children.push(Box::new(imm.iter()));
        }
        let mut open_error = None;
        // Level 0's files overlap: each is its own child. Deeper levels are
        // sorted and disjoint: one concatenating child per level, which
        // opens a file only when the cursor reaches it.
        for file in &view.version.levels[0] {
            match inner.table_cache.get(&file.meta) {
                Ok(table) => children.push(Box::new(table.iter())),
                Err(e) => {
                    open_error = Some(e);
                    break;
                }
            }
        }
        for files in view.version.levels.iter().skip(1).filter(|f| !f.is_empty()) {
            children.push(Box::new(LevelIterator::new(
                files.clone(),
                inner.table_cache.clone(),
            )));
        }
        DbRawIterator {
            open_error,
            _view: view,
            _inner: inner.clone(),
            iter: MergingIterator::new(children),
            seq,
            direction: Direction::Forward,
            valid: false,
            saved_key: Vec::new(),
            saved_value: Vec::new(),
            probe: Vec::new(),
            corrupt: false,
        }
    }

    /// From the merged iterator's position on, finds the first visible,
    /// live entry, skipping every entry of `skip` (a user key already shown
    /// or deleted).
    fn find_next_user_entry(&mut self, mut skipping: bool) {
        while self.iter.valid() {
            if let Some(p) = parse_internal_key(self.iter.key()) {
                if p.seq <= self.seq {
                    let hidden = skipping && p.user_key <= self.saved_key.as_slice();
                    if !hidden {
                        match p.kind {
                            ValueKind::Delete => {
                                self.saved_key.clear();
                                self.saved_key.extend_from_slice(p.user_key);
                                skipping = true;
                            }
                            ValueKind::Put => {
                                self.valid = true;
                                return;
                            }
                        }
                    }
                }
            } else {
                self.fail_corrupt();
                return;
            }
            self.iter.next();
        }
        self.saved_key.clear();
        self.valid = false;
    }

    /// Moving backwards from the merged iterator's position, finds the
    /// previous user key whose newest visible entry is a value.
    fn find_prev_user_entry(&mut self) {
        let mut kind = ValueKind::Delete;
        while self.iter.valid() {
            let Some(p) = parse_internal_key(self.iter.key()) else {
                self.fail_corrupt();
                return;
            };
            if p.seq <= self.seq {
                if kind != ValueKind::Delete && p.user_key < self.saved_key.as_slice() {
                    // Passed every entry of the key in `saved_key`.
                    break;
                }
                kind = p.kind;
                if kind == ValueKind::Delete {
                    self.saved_key.clear();
                    self.saved_value.clear();
                } else {
                    self.saved_key.clear();
                    self.saved_key.extend_from_slice(p.user_key);
                    self.saved_value.clear();
                    self.saved_value.extend_from_slice(self.iter.value());
                }
            }
            self.iter.prev();
        }
        if kind == ValueKind::Delete {
            self.valid = false;
            self.saved_key.clear();
            self.saved_value.clear();
            self.direction = Direction::Forward;
        } else {
            self.valid = true;
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
        if self.open_error.is_some() {
            return;
        }
        self.direction = Direction::Forward;
        self.iter.seek_to_first();
        self.find_next_user_entry(false);
    }

    fn seek_to_last(&mut self) {
        if self.open_error.is_some() {
            return;
        }
        self.direction = Direction::Reverse;
        self.iter.seek_to_last();
        self.find_prev_user_entry();
    }

    fn seek(&mut self, key: &[u8]) {
        if self.open_error.is_some() {
            return;
        }
        self.direction = Direction::Forward;
        self.probe.clear();
        encode_internal_key(&mut self.probe, key, self.seq, ValueKind::SEEK);
        self.iter.seek(&self.probe);
        self.find_next_user_entry(false);
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        if self.open_error.is_some() {
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
        } else {
            self.saved_key.clear();
            self.saved_key.extend_from_slice(user_key(self.iter.key()));
            self.iter.next();
        }
        self.find_next_user_entry(true);
    }

    fn prev(&mut self) {
        if !self.valid {
            return;
        }
        if self.direction == Direction::Forward {
            // Step back past every entry of the shown key.
            self.saved_key.clear();
            self.saved_key.extend_from_slice(user_key(self.iter.key()));
            loop {
                self.iter.prev();
                if !self.iter.valid() || user_key(self.iter.key()) < self.saved_key.as_slice() {
                    break;
                }
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
            Direction::Forward => user_key(self.iter.key()),
            Direction::Reverse => &self.saved_key,
        }
    }

    fn value(&self) -> &[u8] {
        match self.direction {
            Direction::Forward => self.iter.value(),
            Direction::Reverse => &self.saved_value,
        }
    }

    fn status(&self) -> Result<()> {
        if let Some(e) = &self.open_error {
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

/// A cursor that only reports an error (for iterators made on a closed
/// database).
pub(crate) struct FailedIterator(pub(crate) Error);

impl RawIterator for FailedIterator {
    fn seek_to_first(&mut self) {}
    fn seek_to_last(&mut self) {}
    fn seek(&mut self, _key: &[u8]) {}
    fn seek_for_prev(&mut self, _key: &[u8]) {}
    fn next(&mut self) {}
    fn prev(&mut self) {}
    fn valid(&self) -> bool {
        false
    }
    fn key(&self) -> &[u8] {
        &[]
    }
    fn value(&self) -> &[u8] {
        &[]
    }
    fn status(&self) -> Result<()> {
        Err(self.0.duplicate())
    }
}

/// A consistent, read-only view of a [`DB`](crate::DB) as of the moment it
/// was taken. Writes made afterwards are invisible through it. While it
/// lives, the engine keeps every entry it can see.
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path())?;
/// db.put("k", "old")?;
/// let snap = db.snapshot();
/// db.put("k", "new")?;
/// assert_eq!(snap.get("k")?, Some(b"old".to_vec()));
/// assert_eq!(db.get("k")?, Some(b"new".to_vec()));
/// # Ok(())
/// # }
/// ```
pub struct DbSnapshot {
    inner: Arc<DbInner>,
    seq: SeqNo,
}

impl DbSnapshot {
    pub(crate) fn new(inner: Arc<DbInner>) -> DbSnapshot {
        // Register under the lock before reading the sequence number, so a
        // concurrent compaction (which reads the list) never misses us.
        let mut snaps = inner.snapshots.lock();
        let seq = inner.visible_seq.load(std::sync::atomic::Ordering::Acquire);
        *snaps.entry(seq).or_default() += 1;
        drop(snaps);
        DbSnapshot { inner, seq }
    }

    /// The sequence number the snapshot reads at.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let view = self.inner.default.view.read().clone();
        get(&self.inner, &view, key.as_ref(), self.seq)
    }

    /// Every pair of the snapshot in ascending key order.
    pub fn iter(&self) -> DbIterator {
        self.range(..)
    }

    /// The snapshot's pairs inside `range`.
    pub fn range(&self, range: impl Into<KeyRange>) -> DbIterator {
        DbIterator::new(self.raw(&self.inner.default), range.into())
    }

    /// The snapshot's pairs whose key starts with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIterator {
        self.range(KeyRange::prefix(prefix))
    }

    /// The family `cf` names in this snapshot's database, if it is live.
    fn family(&self, cf: &ColumnFamily) -> Result<Arc<Family>> {
        self.inner
            .families
            .read()
            .get(&cf.id())
            .filter(|f| f.uid == cf.uid())
            .cloned()
            .ok_or_else(|| cf.dropped_error())
    }

    /// The value of `key` in column family `cf` as of the snapshot (one
    /// snapshot is consistent across all families).
    pub fn get_cf(&self, cf: &ColumnFamily, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let family = self.family(cf)?;
        let view = family.view.read().clone();
        get(&self.inner, &view, key.as_ref(), self.seq)
    }

    /// Every pair of column family `cf` as of the snapshot.
    pub fn iter_cf(&self, cf: &ColumnFamily) -> DbIterator {
        self.range_cf(cf, ..)
    }

    /// The pairs of column family `cf` inside `range` as of the snapshot.
    pub fn range_cf(&self, cf: &ColumnFamily, range: impl Into<KeyRange>) -> DbIterator {
        DbIterator::new(self.raw_cf(cf), range.into())
    }

    fn raw_cf(&self, cf: &ColumnFamily) -> Box<dyn RawIterator> {
        match self.family(cf) {
            Ok(family) => self.raw(&family),
            Err(e) => Box::new(FailedIterator(e)),
        }
    }

    fn raw(&self, family: &Family) -> Box<dyn RawIterator> {
        let view = family.view.read().clone();
        Box::new(DbRawIterator::new(&self.inner, view, self.seq))
    }
}

impl Drop for DbSnapshot {
    fn drop(&mut self) {
        let mut snaps = self.inner.snapshots.lock();
        let oldest = snaps.keys().next() == Some(&self.seq);
        if let Some(n) = snaps.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                snaps.remove(&self.seq);
            }
        }
        let released = oldest && snaps.keys().next() != Some(&self.seq);
        drop(snaps);
        if released {
            // Versions kept for this snapshot may be garbage now: let the
            // background look (see `compaction::bottom_garbage`).
            self.inner.bg.notify();
        }
    }
}

impl Snapshot for DbSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        DbSnapshot::get(self, key)
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        self.raw(&self.inner.default)
    }

    fn get_cf(&self, cf: &ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        DbSnapshot::get_cf(self, cf, key)
    }

    fn raw_iterator_cf(&self, cf: &ColumnFamily) -> Box<dyn RawIterator> {
        self.raw_cf(cf)
    }
}
