//! [`ColumnFamily`]: a handle to one named keyspace of a database.
//!
//! A handle is an id, a name and a weak link to its backend (a [`DB`] or a
//! [`MemoryBackend`](crate::MemoryBackend)): cheap to clone, safe to keep.
//! It does not keep the database open: once the database is closed, calls
//! through it fail with [`Error::Closed`]; once the family is dropped, with
//! [`Error::InvalidArgument`] naming it. Ids are never reused, so a stale
//! handle can never reach another family's data.
//!
//! [`DB`]: crate::DB

use crate::backend::memory::MemoryShared;
use crate::batch::WriteBatch;
use crate::db::DbStats;
use crate::db::{DbInner, Family};
use crate::error::{Error, Result};
use crate::iterator::{DbIterator, KeyRange};
use crate::options::WriteOptions;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// A handle to a column family: a named keyspace with its own memtables,
/// table files and options, sharing the database's log, so that one
/// [`WriteBatch`] is atomic across families. Get one from
/// [`DB::create_column_family`](crate::DB::create_column_family) or
/// [`DB::column_family`](crate::DB::column_family).
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path())?;
/// let users = db.create_column_family("users", Default::default())?;
/// users.put("alice", "1")?;
/// assert_eq!(users.get("alice")?, Some(b"1".to_vec()));
/// assert_eq!(db.get("alice")?, None); // the default family is separate
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ColumnFamily {
    id: u32,
    uid: u64,
    name: Arc<str>,
    pub(crate) target: Target,
}

/// What a handle leads to.
#[derive(Clone)]
pub(crate) enum Target {
    Db {
        db: Weak<DbInner>,
        family: Arc<Family>,
    },
    Memory(Weak<MemoryShared>),
}

impl std::fmt::Debug for ColumnFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnFamily")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish()
    }
}

/// A number unique in this process, naming one family of one open
/// database (or memory backend), so that a handle from another database is
/// told apart from one with the same id.
pub(crate) fn new_uid() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl ColumnFamily {
    pub(crate) fn new(id: u32, uid: u64, name: Arc<str>, target: Target) -> ColumnFamily {
        ColumnFamily {
            id,
            uid,
            name,
            target,
        }
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family's id in its database (0 for the default family). Ids are
    /// never reused, not even after a drop.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// The error for a handle whose family is gone.
    pub(crate) fn dropped_error(&self) -> Error {
        Error::InvalidArgument(format!(
            "column family {:?} was dropped (or belongs to another database)",
            self.name
        ))
    }

    /// The open database and family this handle leads to.
    pub(crate) fn db(&self) -> Result<Option<(Arc<DbInner>, &Arc<Family>)>> {
        match &self.target {
            Target::Db { db, family } => {
                let db = db.upgrade().ok_or(Error::Closed)?;
                Ok(Some((db, family)))
            }
            Target::Memory(_) => Ok(None),
        }
    }

    pub(crate) fn memory(&self) -> Result<Arc<MemoryShared>> {
        match &self.target {
            Target::Memory(m) => m.upgrade().ok_or(Error::Closed),
            Target::Db { .. } => Err(self.dropped_error()),
        }
    }

    /// Ingests table files into this family; see
    /// [`DB::ingest`](crate::DB::ingest).
    ///
    /// # Errors
    /// As `DB::ingest`; [`Error::InvalidArgument`] for a family of the
    /// memory backend, which has no table files.
    pub fn ingest<P: AsRef<std::path::Path>>(
        &self,
        paths: &[P],
        options: crate::IngestOptions,
    ) -> Result<()> {
        let Some((db, family)) = self.db()? else {
            return Err(Error::InvalidArgument(
                "ingest needs a DB; the memory backend has no table files".into(),
            ));
        };
        let paths: Vec<_> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        crate::db::ingest_cf(&db, family, &paths, options)
    }

    /// Sets `key` to `value` in this family.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_cf(self, key, value);
        self.write(batch)
    }

    /// Removes `key` from this family.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_cf(self, key);
        self.write(batch)
    }

    /// Merges `operand` into `key` in this family (see
    /// [`DB::merge`](crate::DB::merge)).
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.merge_cf(self, key, operand);
        self.write(batch)
    }

    /// Removes every key of this family in `range` (see
    /// [`DB::delete_range`](crate::DB::delete_range)).
    pub fn delete_range(&self, range: impl Into<KeyRange>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_range_cf(self, range);
        self.write(batch)
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        match self.db()? {
            Some((db, _)) => crate::db::write_batch(&db, batch, &WriteOptions::default()),
            None => self.memory()?.write(batch),
        }
    }

    /// The value of `key` in this family, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        match self.db()? {
            Some((db, family)) => crate::db::get_cf(&db, family, key.as_ref()),
            None => self.memory()?.get(self, key.as_ref()),
        }
    }

    /// Every pair of this family in ascending key order, as of this call;
    /// `.rev()` for descending.
    pub fn iter(&self) -> DbIterator {
        self.range(..)
    }

    /// The pairs of this family inside `range`, as of this call.
    pub fn range(&self, range: impl Into<KeyRange>) -> DbIterator {
        let raw = match self.db() {
            Ok(Some((db, family))) => crate::db::raw_iterator_cf(&db, family),
            Ok(None) => match self.memory() {
                Ok(m) => m.raw_iterator(self),
                Err(e) => Box::new(crate::db::FailedIterator(e)),
            },
            Err(e) => Box::new(crate::db::FailedIterator(e)),
        };
        DbIterator::new(raw, range.into())
    }

    /// The pairs of this family whose key starts with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIterator {
        self.range(KeyRange::prefix(prefix))
    }

    /// Writes this family's memtables to table files and waits (see
    /// [`DB::flush`](crate::DB::flush)). A no-op for a memory backend.
    pub fn flush(&self) -> Result<()> {
        match self.db()? {
            Some((db, family)) => crate::db::flush_cf(&db, family),
            None => self.memory()?.check(self).map(|_| ()),
        }
    }

    /// Compacts the keys of this family in `range` (see
    /// [`DB::compact_range`](crate::DB::compact_range)).
    pub fn compact_range(&self, range: impl Into<KeyRange>) -> Result<()> {
        let range = range.into();
        match self.db()? {
            Some((db, family)) => crate::db::compact_range_cf(&db, family, &range),
            None => self.memory()?.check(self).map(|_| ()),
        }
    }

    /// The value of property `name` for this family (see
    /// [`DB::property`](crate::DB::property)); `None` for an unknown name,
    /// a memory backend or a dropped family.
    pub fn property(&self, name: &str) -> Option<String> {
        match self.db() {
            Ok(Some((db, family))) => crate::db::property_cf(&db, family, name),
            _ => None,
        }
    }

    /// This family's figures: its levels, memtables, flushes and
    /// compactions, with the database-wide counters (see
    /// [`DB::stats`](crate::DB::stats)). Empty for a memory backend or a
    /// dropped family.
    pub fn stats(&self) -> DbStats {
        match self.db() {
            Ok(Some((db, family))) => crate::db::stats_cf(&db, family),
            _ => DbStats::default(),
        }
    }
}
