//! The read path: point lookups, the user-facing iterator, snapshots.

pub(crate) use super::db_iter::DbRawIterator;
use super::family::{Family, ReadView};
use super::resolve::{Fold, KeyFold, Resolver};
use super::DbInner;
use crate::backend::Snapshot;
use crate::column_family::ColumnFamily;
use crate::error::{Error, Result};
use crate::internal_iter::InternalIterator;
use crate::iterator::{DbIterator, KeyRange, RawIterator};
use crate::types::{encode_internal_key, parse_internal_key, LookupKey, SeqNo, ValueKind};
use std::sync::Arc;

/// The value of `key` visible at `seq`: memtables newest first, then
/// level-0 files newest first, then one file per deeper level. The first
/// decisive entry decides (a value, a tombstone, or one older than a range
/// tombstone seen so far); merge operands found before it are folded in.
pub(crate) fn get(
    inner: &DbInner,
    family: &Family,
    view: &ReadView,
    key: &[u8],
    seq: SeqNo,
) -> Result<Option<Vec<u8>>> {
    let r = Resolver::new(&family.opts, &family.name);
    let lookup = LookupKey::new(key, seq);
    let mut fold = KeyFold::default();
    for mem in std::iter::once(&view.mem).chain(view.imms.iter()) {
        fold.covered_below = fold.covered_below.max(mem.max_covering(key, seq));
        if let Some((eseq, kind, value)) = mem.lookup(&lookup) {
            if let Some(v) = feed_source(&r, &mut fold, key, (eseq, kind, value), || {
                Box::new(mem.iter())
            })? {
                return Ok(v);
            }
        }
    }
    let version = &view.version;
    for level in 0..version.levels.len() {
        for file in version.files_for_key(level, key) {
            let table = inner.table_cache.get_ref(file)?;
            fold.covered_below = fold.covered_below.max(table.max_covering(key, seq));
            if let Some((eseq, kind, value)) = table.lookup(&lookup)? {
                if let Some(v) = feed_source(&r, &mut fold, key, (eseq, kind, &value), || {
                    Box::new(table.iter())
                })? {
                    return Ok(v);
                }
            }
        }
    }
    decide(&r, key, fold.end(None), &fold)
}

/// Feeds one source's entries of `key`, starting with `first` (the newest
/// visible, from a point lookup) and going on through `iter` while they
/// are merge operands. `Some` once the key is decided.
fn feed_source(
    r: &Resolver,
    fold: &mut KeyFold,
    key: &[u8],
    first: (SeqNo, ValueKind, &[u8]),
    iter: impl FnOnce() -> Box<dyn InternalIterator>,
) -> Result<Option<Option<Vec<u8>>>> {
    let (seq, kind, value) = first;
    match fold.feed(r, seq, kind, value) {
        Fold::More => {}
        done => return decide(r, key, done, fold).map(Some),
    }
    // Older entries of the key in this source, past the one just fed.
    let mut it = iter();
    let mut probe = Vec::new();
    encode_internal_key(&mut probe, key, seq, kind);
    it.seek(&probe);
    if it.valid() && it.key() == probe.as_slice() {
        it.next();
    }
    while it.valid() {
        let Some(p) = parse_internal_key(it.key()) else {
            return Err(Error::Internal(
                "malformed internal key in a read source".into(),
            ));
        };
        if p.user_key != key {
            break;
        }
        match fold.feed(r, p.seq, p.kind, it.value()) {
            Fold::More => it.next(),
            done => return decide(r, key, done, fold).map(Some),
        }
    }
    it.status()?;
    Ok(None)
}

/// The value a finished fold gives.
fn decide(r: &Resolver, key: &[u8], f: Fold<'_>, fold: &KeyFold) -> Result<Option<Vec<u8>>> {
    match f {
        Fold::Plain(v) => Ok(v.map(<[u8]>::to_vec)),
        Fold::Merge(base) => r.merge(key, base, &fold.operands).map(Some),
        Fold::More => Ok(None),
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
        super::instrument::get(&self.inner, || {
            get(
                &self.inner,
                &self.inner.default,
                &view,
                key.as_ref(),
                self.seq,
            )
        })
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
        super::instrument::get(&self.inner, || {
            get(&self.inner, &family, &view, key.as_ref(), self.seq)
        })
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
        let iter = DbRawIterator::new(&self.inner, family, view, self.seq);
        if !self.inner.stats.per_op {
            return Box::new(iter);
        }
        Box::new(super::instrument::StatsIterator::new(
            iter,
            self.inner.clone(),
        ))
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
        // Versions kept for this snapshot may be garbage now: let the
        // background look (see `compaction::bottom_garbage`), but only if
        // there is some. Waking it for nothing on every short-lived
        // snapshot (a transaction's) cost a one-key transaction a third
        // of its time. A compaction writing such garbage right now needs
        // no wake-up: the background looks again after every job.
        if released && self.inner.bottom_garbage_wanted() {
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
