//! The native engine: [`DB`].
//!
//! The code is split by path: `open` (recovery), `write` (group commit and
//! the log), `read` (point lookups, iterators, snapshots), `flush` and
//! `compaction` (run by `background` threads), `stats`.

mod background;
mod compaction;
mod filenames;
mod flush;
mod health;
mod level_iter;
mod open;
mod read;
mod replay;
mod stats;
mod table_cache;
mod verify;
mod write;

pub use read::DbSnapshot;
pub use stats::{DbStats, LevelStats};

use crate::backend::{Snapshot, StorageBackend};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::fs::{FileLock, FileSystem};
use crate::iterator::{DbIterator, KeyRange, RawIterator};
use crate::memtable::MemTable;
use crate::options::{Options, WriteOptions};
use crate::types::SeqNo;
use crate::version::{Version, VersionEdit, VersionSet};
use background::Background;
use parking_lot::{Mutex, RwLock};
use stats::Stats;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use table_cache::TableCache;

/// What a reader needs to see the database: the memtables, newest first,
/// and the table files. Immutable once published; the write path, flushes
/// and compactions publish a new one (under the `view` write lock, reading
/// the current one there) to change it.
pub(crate) struct ReadView {
    /// The memtable taking writes.
    pub(crate) mem: Arc<MemTable>,
    /// Frozen memtables waiting for flush, newest first.
    pub(crate) imms: Vec<Arc<MemTable>>,
    /// The live table files.
    pub(crate) version: Arc<Version>,
}

/// State shared by the [`DB`] handle, its snapshots and iterators.
pub(crate) struct DbInner {
    pub(crate) opts: Options,
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    lock: Mutex<Option<Box<dyn FileLock>>>,
    /// The current read view, replaced (never mutated) by the write path.
    pub(crate) view: RwLock<Arc<ReadView>>,
    /// Highest sequence number whose write is fully applied. Readers load it
    /// while holding the `view` read lock (see [`DbInner::current_view`]).
    pub(crate) visible_seq: AtomicU64,
    /// Writers waiting to commit; the front one leads the next group.
    writers: Mutex<VecDeque<Arc<write::Writer>>>,
    /// The log and sequence counter, used only by the group leader.
    wal: Mutex<write::WalState>,
    pub(crate) next_file_number: AtomicU64,
    /// The MANIFEST; one version change at a time.
    pub(crate) versions: Mutex<VersionSet>,
    pub(crate) table_cache: Arc<TableCache>,
    pub(crate) bg: Background,
    /// Held while a compaction runs: one at a time, background or manual.
    pub(crate) compaction_lock: Mutex<()>,
    /// Per level, the largest key of the last file compacted from it.
    pub(crate) compaction_cursors: Mutex<Vec<Vec<u8>>>,
    pub(crate) stats: Stats,
    /// Sequence numbers of live snapshots, with their counts.
    pub(crate) snapshots: Mutex<BTreeMap<SeqNo, usize>>,
    /// The failure that stopped writes, if any (see `health`).
    stopped: Mutex<Option<health::Stopped>>,
    closed: AtomicBool,
}

impl DbInner {
    pub(crate) fn new_file_number(&self) -> u64 {
        self.next_file_number.fetch_add(1, Ordering::Relaxed)
    }

    /// The sequence number and view a new read uses, taken at one point.
    ///
    /// Both come from under the `view` read lock. A compaction drops the
    /// versions hidden at the sequence number it read when it started, and
    /// installs its output under the write lock: a reader that took its
    /// number before that start but its view after the install would find
    /// the versions it needs gone. Under the lock, a reader gets either the
    /// view before the install (which still holds every version) or the
    /// view after it with a number at least the compaction's. Writers
    /// publish a number only after its entries are in the memtable of the
    /// current view, so the view holds everything up to the number.
    pub(crate) fn current_view(&self) -> (SeqNo, Arc<ReadView>) {
        let view = self.view.read();
        let seq = self.visible_seq.load(Ordering::Acquire);
        #[cfg(feature = "internals")]
        crate::internals::read_view_pause();
        (seq, Arc::clone(&view))
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Blocks until `done` holds, re-checking whenever background work
    /// finishes. Fails when writes have stopped after an error (the state
    /// may then never be reached) or the database closes.
    pub(crate) fn wait_for(
        &self,
        mut done: impl FnMut(&DbInner, &background::BgState) -> bool,
    ) -> Result<()> {
        let mut st = self.bg.lock();
        loop {
            if done(self, &st) {
                return Ok(());
            }
            self.check_writable()?;
            if st.shutdown {
                return Err(Error::Closed);
            }
            self.bg.cv.wait(&mut st);
        }
    }

    /// Records `edit` in the MANIFEST, then publishes a read view with the
    /// resulting version (and without `flushed`, the frozen memtable whose
    /// table the edit adds), in one step for readers. A failure stops
    /// writes for good: the MANIFEST may end in part of a record.
    pub(crate) fn install(&self, edit: VersionEdit, flushed: Option<&Arc<MemTable>>) -> Result<()> {
        let mut versions = self.versions.lock();
        let version = versions
            .log_and_apply(
                edit,
                self.next_file_number.load(Ordering::Relaxed),
                self.visible_seq.load(Ordering::Acquire),
                || self.new_file_number(),
            )
            .map_err(|e| self.stop_writes(e, health::Failure::Fatal))?;
        let mut view = self.view.write();
        let imms = view
            .imms
            .iter()
            .filter(|m| flushed.is_none_or(|f| !Arc::ptr_eq(m, f)))
            .cloned()
            .collect();
        *view = Arc::new(ReadView {
            mem: view.mem.clone(),
            imms,
            version,
        });
        Ok(())
    }

    /// Whether some level is over its size or file-count target, or the
    /// last level holds garbage no snapshot needs any more.
    pub(crate) fn compaction_wanted(&self) -> bool {
        let version = self.view.read().version.clone();
        compaction::most_urgent(&self.opts, &version).is_some()
            || compaction::bottom_garbage(&self.opts, &version, compaction::oldest_visible(self))
                .is_some()
    }

    /// Closes the handle: stops the background threads, then writes every
    /// memtable to a table, so that a clean shutdown leaves no data in the
    /// logs, and marks the MANIFEST as cleanly closed. When writes are
    /// stopped after a failure, tries once to recover (see `health`) and
    /// otherwise returns the failure. The directory lock stays held until
    /// the last snapshot and iterator of this handle is gone (`Drop`).
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.bg.stop();
        if self.stopped_for().is_some() {
            // The background threads are gone: no flush runs meanwhile.
            self.recover().map_err(|_| self.stopped_error())?;
        }
        // Wait for the group in flight (new ones see `closed`), then flush.
        let _queue = self.writers.lock();
        let mut wal = self.wal.lock();
        self.flush_all_for_close(&mut wal)
    }

    /// The error writes are refused with (`Closed` once cleared).
    fn stopped_error(&self) -> Error {
        match &*self.stopped.lock() {
            Some(s) => Error::ReadOnly {
                cause: s.cause.clone(),
            },
            None => Error::Closed,
        }
    }

    fn flush_all_for_close(&self, wal: &mut write::WalState) -> Result<()> {
        write::rotate(self, wal)?;
        while flush::flush_oldest(self)? {}
        self.versions
            .lock()
            .mark_clean_close()
            .map_err(|e| self.stop_writes(e, health::Failure::Fatal))?;
        wal.sync()
            .map_err(|e| self.stop_writes(e, health::Failure::Fatal))
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        // Every handle, snapshot and iterator is gone: only now may another
        // handle open the directory and delete files they might still read.
        self.lock.get_mut().take();
    }
}

/// A handle to an AiDb database on disk.
///
/// `DB` is `Send + Sync`: share it between threads with `Arc<DB>`. Dropping
/// the last handle closes the database (see [`DB::close`]).
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path().join("db"))?;
/// db.put("hello", "world")?;
/// assert_eq!(db.get("hello")?, Some(b"world".to_vec()));
/// db.delete("hello")?;
/// assert_eq!(db.get("hello")?, None);
/// # Ok(())
/// # }
/// ```
pub struct DB {
    inner: Arc<DbInner>,
}

impl std::fmt::Debug for DB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DB").field("path", &self.inner.dir).finish()
    }
}

impl DB {
    /// Opens the database at `path` with default [`Options`], creating it if
    /// needed.
    ///
    /// # Errors
    /// [`Error::Locked`] when another handle has it open,
    /// [`Error::Io`] when `path` is a file or cannot be created,
    /// [`Error::Corruption`] when its files are damaged.
    pub fn open(path: impl AsRef<Path>) -> Result<DB> {
        DB::open_with(Options::new(path.as_ref()))
    }

    /// Opens the database at `options.path` with the given options.
    ///
    /// # Errors
    /// As [`DB::open`], plus [`Error::InvalidArgument`] for invalid options,
    /// [`Error::NotFound`] when the database is missing and
    /// `create_if_missing` is false, [`Error::AlreadyExists`] when it exists
    /// and `error_if_exists` is true.
    pub fn open_with(options: Options) -> Result<DB> {
        Ok(DB {
            inner: open::open(options)?,
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Sets `key` to `value` (not synced; see [`WriteOptions`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the key or value is over
    /// [`MAX_KEY_SIZE`](crate::MAX_KEY_SIZE) /
    /// [`MAX_VALUE_SIZE`](crate::MAX_VALUE_SIZE); [`Error::ReadOnly`] after
    /// an earlier write failure; [`Error::Io`] when the log write fails.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(batch)
    }

    /// Removes `key`; removing an absent key is not an error.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(batch)
    }

    /// Applies `batch` atomically with default [`WriteOptions`].
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.write_opt(batch, &WriteOptions::default())
    }

    /// Applies `batch` atomically. With `options.sync`, the write survives a
    /// power cut once this returns; without it, a process crash.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// let mut batch = aidb::WriteBatch::new();
    /// batch.put("from", "90").put("to", "110");
    /// db.write_opt(batch, &aidb::WriteOptions { sync: true })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_opt(&self, batch: WriteBatch, options: &WriteOptions) -> Result<()> {
        write::write(&self.inner, batch, options.sync)
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.check_open()?;
        let (seq, view) = self.inner.current_view();
        read::get(&self.inner, &view, key.as_ref(), seq)
    }

    /// Every pair in ascending key order, as of this call; `.rev()` for
    /// descending.
    pub fn iter(&self) -> DbIterator {
        self.range(..)
    }

    /// The pairs inside `range` (`"a".."m"`, `b"k"..=b"z"`, `..`), as of
    /// this call; `.rev()` for descending.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "")?;
    /// }
    /// let keys: Vec<_> = db.range("b"..="c").rev().map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"c".to_vec(), b"b".to_vec()]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn range(&self, range: impl Into<KeyRange>) -> DbIterator {
        DbIterator::new(self.raw_iterator_impl(), range.into())
    }

    /// The pairs whose key starts with `prefix`, as of this call.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIterator {
        self.range(KeyRange::prefix(prefix))
    }

    /// A consistent read-only view as of this call. It stays valid, and its
    /// answers never change, until it is dropped.
    pub fn snapshot(&self) -> DbSnapshot {
        DbSnapshot::new(self.inner.clone())
    }

    /// Writes every memtable to table files and waits until that is done,
    /// so that the log files holding their data can be removed. Afterwards
    /// every write made before the call is durable. Writes made while it
    /// waits are not waited for.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_writable()?;
        let Some(newest) = write::freeze_memtable(&self.inner)? else {
            return Ok(());
        };
        // Memtables are flushed oldest first; ones frozen after this call
        // (by later writes) have larger log numbers.
        self.inner.wait_for(|inner, _| {
            inner
                .view
                .read()
                .imms
                .last()
                .is_none_or(|oldest| oldest.log_number() > newest)
        })
    }

    /// Gets writes going again after a failure stopped them (see
    /// [`Error::ReadOnly`]), once its cause is fixed (for example, disk
    /// space freed). Flushes the memtables and, after a failed log write,
    /// starts a new log; returns `Ok` when the database takes writes again
    /// (also when it never stopped). Nothing acknowledged is lost and
    /// nothing is applied twice. Failed flushes and compactions are also
    /// retried in the background with back-off (the first retry after
    /// about a second), so writes can come back without this call.
    ///
    /// # Errors
    /// The failure again if it persists (writes stay stopped);
    /// [`Error::ReopenRequired`] for failures that only a reopen can
    /// recover from: a failed fsync of the log, a failed MANIFEST write,
    /// a panic inside the engine.
    pub fn resume(&self) -> Result<()> {
        self.inner.check_open()?;
        let _slot = self.inner.bg.claim_flush();
        self.inner.recover()
    }

    /// Compacts the keys in `range` (`..` for everything): flushes the
    /// memtables, then merges every table file overlapping the range down
    /// level by level, dropping overwritten values and deleted keys that no
    /// snapshot can see any more.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// db.put("k", "v")?;
    /// db.compact_range(..)?;
    /// db.compact_range("a".."m")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn compact_range(&self, range: impl Into<KeyRange>) -> Result<()> {
        self.flush()?;
        compaction::compact_range(&self.inner, &range.into())
    }

    /// Blocks until no flush or compaction is running or needed. Useful in
    /// tests and benchmarks that want a settled database.
    pub fn wait_for_idle(&self) -> Result<()> {
        self.inner.check_open()?;
        self.inner.wait_for(|inner, st| {
            !st.flushing
                && !st.compacting
                && inner.view.read().imms.is_empty()
                && !inner.compaction_wanted()
        })
    }

    /// Checks the database's files: reads every block of every live table
    /// file, the MANIFEST and the live log, verifying every checksum.
    /// Returns every failure found; an empty list means all is well.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// db.put("k", "v")?;
    /// db.flush()?;
    /// assert!(db.verify().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify(&self) -> Vec<Error> {
        verify::verify(&self.inner)
    }

    /// Counters and per-level figures kept by the engine.
    pub fn stats(&self) -> DbStats {
        stats::collect(&self.inner)
    }

    /// Closes the database and reports any error doing so: stops the
    /// background threads (after the job in progress), writes every memtable
    /// to a table file, and records a clean shutdown in the MANIFEST, so
    /// that the next open has no log to replay. Dropping the handle does the
    /// same but ignores errors. Snapshots and iterators still alive keep
    /// working on the data they already see, and keep the directory locked
    /// (another `DB::open` of it fails with [`Error::Locked`]) until the
    /// last of them is dropped.
    ///
    /// # Errors
    /// When writes were stopped by a failure that [`DB::resume`] cannot
    /// clear now, [`Error::ReadOnly`] with that failure: memtables could
    /// not be flushed, and the next open recovers them from the log.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    fn raw_iterator_impl(&self) -> Box<dyn RawIterator> {
        let (seq, view) = self.inner.current_view();
        if let Err(e) = self.inner.check_open() {
            return Box::new(read::FailedIterator(e));
        }
        Box::new(read::DbRawIterator::new(&self.inner, view, seq))
    }
}

impl Drop for DB {
    fn drop(&mut self) {
        let _ = self.inner.close();
    }
}

impl StorageBackend for DB {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        DB::put(self, key, value)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        DB::get(self, key)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        DB::delete(self, key)
    }

    fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        self.write(batch)
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        self.inner.check_open()?;
        Ok(Box::new(DB::snapshot(self)))
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        self.raw_iterator_impl()
    }
}
