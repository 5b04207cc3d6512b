//! [`Transaction`]: reads, writes, savepoints, commit.

use super::iter::TxnIterator;
use super::write_set::WriteSet;
use super::TransactionOptions;
use crate::backend::Snapshot;
use crate::column_family::ColumnFamily;
use crate::db::{self, DbInner, DbSnapshot, FailedIterator, Family};
use crate::error::{Error, Result};
use crate::iterator::{DbIterator, KeyRange, RawIterator};
use crate::options::{WriteOptions, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A group of reads and writes that commits atomically, or not at all.
///
/// Start one with [`DB::transaction`](crate::DB::transaction) (optimistic)
/// or [`DB::transaction_with`](crate::DB::transaction_with) (optimistic or
/// pessimistic). Its reads see a snapshot taken when it started plus its
/// own writes, which stay invisible to everyone else until
/// [`commit`](Transaction::commit) writes them all as one batch (one log
/// record, atomic across column families, durable as a
/// [`WriteBatch`](crate::WriteBatch) written with the same
/// [`WriteOptions`]). Dropping a transaction without committing it rolls
/// it back.
///
/// **Isolation.** Snapshot isolation: plain reads ([`get`](Self::get),
/// iterators) see the start snapshot, never cause a conflict, and do not
/// protect what they read. The commit fails with [`Error::Conflict`],
/// writing nothing, if another commit after the transaction started
/// changed a key the transaction wrote or read with
/// [`get_for_update`](Self::get_for_update) (first committer wins; a
/// delete counts as a change). So two transactions cannot both update the
/// same key from the same old value, and a transaction that reads every
/// key its writes depend on with `get_for_update` is serializable.
///
/// **Pessimistic** transactions lock each key they write or read with
/// `get_for_update`, until commit or rollback; a lock not obtained in
/// `lock_timeout` is [`Error::Busy`], a wait that would deadlock is
/// [`Error::Deadlock`]. Their `get_for_update` returns the newest
/// committed value (plain `get` still reads the snapshot), and a key's
/// conflict check starts when it is locked, so pessimistic transactions
/// never conflict with one another. Plain writes and optimistic
/// transactions take no locks: if one changes a key a pessimistic
/// transaction has locked, that transaction's commit fails with
/// `Conflict`.
///
/// On `Conflict`, `Busy` or `Deadlock` ([`Error::is_retryable`]), drop the
/// transaction and run it again from the start.
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path())?;
/// let mut txn = db.transaction();
/// txn.put("a", "1")?;
/// assert_eq!(txn.get("a")?, Some(b"1".to_vec())); // its own write
/// assert_eq!(db.get("a")?, None); // not visible outside yet
/// txn.set_savepoint();
/// txn.put("b", "2")?;
/// txn.rollback_to_savepoint()?; // "b" is gone again
/// assert_eq!(txn.iter().count(), 1);
/// txn.commit()?;
/// assert_eq!(db.get("a")?, Some(b"1".to_vec()));
/// # Ok(())
/// # }
/// ```
pub struct Transaction {
    inner: Arc<DbInner>,
    snapshot: DbSnapshot,
    id: u64,
    options: TransactionOptions,
    writes: WriteSet,
    /// Handles of the families (other than the default one) it used.
    handles: Vec<ColumnFamily>,
    /// The keys it locked (pessimistic), in the order it locked them.
    locks: Vec<(u32, Vec<u8>)>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .field("snapshot", &self.snapshot.sequence())
            .field("pessimistic", &self.options.pessimistic)
            .field("locks", &self.locks.len())
            .finish()
    }
}

fn check_sizes(key: &[u8], value: Option<&[u8]>) -> Result<()> {
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes exceeds the maximum key size of {MAX_KEY_SIZE} bytes",
            key.len()
        )));
    }
    match value {
        Some(v) if v.len() > MAX_VALUE_SIZE => Err(Error::InvalidArgument(format!(
            "value of {} bytes exceeds the maximum value size of {MAX_VALUE_SIZE} bytes",
            v.len()
        ))),
        _ => Ok(()),
    }
}

impl Transaction {
    pub(crate) fn new(inner: Arc<DbInner>, options: TransactionOptions) -> Transaction {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Transaction {
            snapshot: DbSnapshot::new(inner.clone()),
            inner,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            options,
            writes: WriteSet::default(),
            handles: Vec::new(),
            locks: Vec::new(),
        }
    }

    /// The family `cf` leads to, if it is a live family of this database.
    fn family(&self, cf: &ColumnFamily) -> Result<Arc<Family>> {
        match cf.db()? {
            Some((db, family)) if Arc::ptr_eq(&db, &self.inner) => {
                if family.is_dropped() {
                    Err(cf.dropped_error())
                } else {
                    Ok(family.clone())
                }
            }
            _ => Err(Error::InvalidArgument(format!(
                "column family {:?} is not a family of this transaction's database",
                cf.name()
            ))),
        }
    }

    /// As `family`, remembering the handle for the commit's batch.
    fn use_family(&mut self, cf: &ColumnFamily) -> Result<Arc<Family>> {
        let family = self.family(cf)?;
        if family.id != 0 && !self.handles.iter().any(|h| h.id() == family.id) {
            self.handles.push(cf.clone());
        }
        Ok(family)
    }

    /// Its own pending write of `key`, if any (`Some(None)`: a delete).
    fn own_write(&self, id: u32, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.writes.get(id, key).and_then(|st| st.write.clone())
    }

    /// The value of `key`: its own write, else the snapshot's. Never
    /// causes a conflict.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        match self.own_write(0, key) {
            Some(w) => Ok(w),
            None => self.snapshot.get(key),
        }
    }

    /// The value of `key` in column family `cf`, as [`get`](Self::get).
    pub fn get_cf(&self, cf: &ColumnFamily, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        let family = self.family(cf)?;
        match self.own_write(family.id, key) {
            Some(w) => Ok(w),
            None => self.snapshot.get_cf(cf, key),
        }
    }

    /// Reads `key` and makes the commit depend on it: the commit fails
    /// with [`Error::Conflict`] if another commit changes the key after the
    /// transaction started (optimistic) or after this call locked it
    /// (pessimistic, which then returns the newest committed value rather
    /// than the snapshot's, and may fail with [`Error::Busy`] or
    /// [`Error::Deadlock`]). Its own pending write wins, as in `get`.
    pub fn get_for_update(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let family = self.inner.default.clone();
        self.get_for_update_in(&family, None, key.as_ref())
    }

    /// [`get_for_update`](Self::get_for_update) in column family `cf`.
    pub fn get_for_update_cf(
        &mut self,
        cf: &ColumnFamily,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        let family = self.use_family(cf)?;
        self.get_for_update_in(&family, Some(cf), key.as_ref())
    }

    fn get_for_update_in(
        &mut self,
        family: &Family,
        cf: Option<&ColumnFamily>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        check_sizes(key, None)?;
        let id = family.id;
        if self.options.pessimistic {
            self.lock(id, key)?;
            if let Some(w) = self.own_write(id, key) {
                return Ok(w);
            }
            // Locked: no pessimistic transaction can change it before we
            // commit; anyone else doing so after `seq` fails our commit.
            let (seq, value) = db::get_latest(&self.inner, family, key)?;
            self.writes.track(id, key, seq);
            return Ok(value);
        }
        let value = match (self.own_write(id, key), cf) {
            (Some(w), _) => w,
            (None, None) => self.snapshot.get(key)?,
            (None, Some(cf)) => self.snapshot.get_cf(cf, key)?,
        };
        self.writes.track(id, key, self.snapshot.sequence());
        Ok(value)
    }

    /// Sets `key` to `value` when the transaction commits. Pessimistic:
    /// locks the key first ([`Error::Busy`], [`Error::Deadlock`]).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.write_in(0, key.as_ref(), Some(value.as_ref()))
    }

    /// [`put`](Self::put) in column family `cf`.
    pub fn put_cf(
        &mut self,
        cf: &ColumnFamily,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let id = self.use_family(cf)?.id;
        self.write_in(id, key.as_ref(), Some(value.as_ref()))
    }

    /// Removes `key` when the transaction commits (see [`put`](Self::put)).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.write_in(0, key.as_ref(), None)
    }

    /// [`delete`](Self::delete) in column family `cf`.
    pub fn delete_cf(&mut self, cf: &ColumnFamily, key: impl AsRef<[u8]>) -> Result<()> {
        let id = self.use_family(cf)?.id;
        self.write_in(id, key.as_ref(), None)
    }

    fn write_in(&mut self, id: u32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        check_sizes(key, value)?;
        let since = if self.options.pessimistic {
            self.lock(id, key)?;
            self.inner.visible_seq.load(Ordering::Acquire)
        } else {
            self.snapshot.sequence()
        };
        self.writes.write(id, key, value, since);
        Ok(())
    }

    fn lock(&mut self, id: u32, key: &[u8]) -> Result<()> {
        let new = self.inner.txn_locks.lock(
            self.id,
            id,
            key,
            self.options.lock_timeout,
            self.options.deadlock_detect,
        )?;
        if new {
            self.locks.push((id, key.to_vec()));
        }
        Ok(())
    }

    /// Every pair (its writes over its snapshot) in ascending key order;
    /// `.rev()` for descending. The iterator sees the writes made before
    /// it was created.
    pub fn iter(&self) -> DbIterator {
        self.range(..)
    }

    /// The pairs inside `range`, as [`iter`](Self::iter).
    pub fn range(&self, range: impl Into<KeyRange>) -> DbIterator {
        DbIterator::new(self.raw(None), range.into())
    }

    /// The pairs whose key starts with `prefix`, as [`iter`](Self::iter).
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIterator {
        self.range(KeyRange::prefix(prefix))
    }

    /// Every pair of column family `cf`, as [`iter`](Self::iter).
    pub fn iter_cf(&self, cf: &ColumnFamily) -> DbIterator {
        self.range_cf(cf, ..)
    }

    /// The pairs of column family `cf` inside `range`.
    pub fn range_cf(&self, cf: &ColumnFamily, range: impl Into<KeyRange>) -> DbIterator {
        DbIterator::new(self.raw(Some(cf)), range.into())
    }

    /// The pairs of column family `cf` whose key starts with `prefix`.
    pub fn prefix_cf(&self, cf: &ColumnFamily, prefix: impl AsRef<[u8]>) -> DbIterator {
        self.range_cf(cf, KeyRange::prefix(prefix))
    }

    fn raw(&self, cf: Option<&ColumnFamily>) -> Box<dyn RawIterator> {
        let (base, id) = match cf {
            None => (Snapshot::raw_iterator(&self.snapshot), 0),
            Some(cf) => match self.family(cf) {
                Ok(f) => (Snapshot::raw_iterator_cf(&self.snapshot, cf), f.id),
                Err(e) => return Box::new(FailedIterator(e)),
            },
        };
        Box::new(TxnIterator::new(base, self.writes.map(id).cloned()))
    }

    /// Marks the current state, so that
    /// [`rollback_to_savepoint`](Self::rollback_to_savepoint) can return
    /// to it. Savepoints nest.
    pub fn set_savepoint(&mut self) {
        self.writes.set_savepoint(self.locks.len());
    }

    /// Undoes every write and `get_for_update` made since the newest
    /// savepoint (releasing the locks taken since), and removes that
    /// savepoint; the one before it, if any, becomes the newest.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no savepoint is set.
    pub fn rollback_to_savepoint(&mut self) -> Result<()> {
        let locks = self.writes.rollback_to_savepoint().ok_or_else(|| {
            Error::InvalidArgument("rollback_to_savepoint: no savepoint is set".into())
        })?;
        self.release_locks_from(locks);
        Ok(())
    }

    /// Commits with default [`WriteOptions`] (survives a process crash
    /// once this returns; see [`commit_opt`](Self::commit_opt)).
    ///
    /// # Errors
    /// [`Error::Conflict`] when another commit changed a key this
    /// transaction wrote or read with `get_for_update` (see the type's
    /// documentation): nothing was written; retry the whole transaction.
    /// Otherwise as [`DB::write`](crate::DB::write).
    pub fn commit(self) -> Result<()> {
        self.commit_opt(&WriteOptions::default())
    }

    /// Commits: writes every pending write as one batch, atomically, if no
    /// conflict stops it. With `options.sync`, the commit survives a power
    /// cut once this returns.
    pub fn commit_opt(mut self, options: &WriteOptions) -> Result<()> {
        let writes = std::mem::take(&mut self.writes);
        let handles = std::mem::take(&mut self.handles);
        let result = writes
            .into_commit(
                |id| handles.iter().find(|h| h.id() == id).cloned(),
                self.options.pessimistic,
            )
            .and_then(|(batch, check)| {
                if batch.is_empty() && check.keys.is_empty() && !options.sync {
                    return Ok(());
                }
                db::write_checked(&self.inner, batch, options.sync, Some(check))
            });
        // Only once the commit is visible may a waiting transaction lock
        // (and read) the keys.
        self.release_locks_from(0);
        result
    }

    /// Discards every pending write, savepoint and lock. The transaction
    /// stays usable, with the same snapshot.
    pub fn rollback(&mut self) {
        self.writes.clear();
        self.release_locks_from(0);
    }

    fn release_locks_from(&mut self, first: usize) {
        for (family, key) in self.locks.drain(first.min(self.locks.len())..) {
            self.inner.txn_locks.unlock(self.id, family, &key);
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // Its writes go with it; the locks must go too.
        self.release_locks_from(0);
    }
}
