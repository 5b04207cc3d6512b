//! The native engine: [`DB`].
//!
//! The code is split by path: `open` (recovery), `write` (group commit and
//! the log), `read` (point lookups, iterators, snapshots), `flush` and
//! `compaction` (run by `background` threads), `stats`.

mod background;
mod cf_api;
mod checkpoint;
mod compaction;
mod conflict;
mod db_iter;
mod events;
mod family;
mod filenames;
mod flush;
mod health;
mod ingest;
mod instrument;
mod level_iter;
mod open;
mod output_cut;
mod properties;
mod read;
mod read_only;
mod repair;
mod replay;
mod resolve;
mod rewrite;
mod shape;
mod stats;
mod table_cache;
mod verify;
mod write;

pub(crate) use cf_api::{
    compact_range_cf, flush_cf, get_cf, property_cf, raw_iterator_cf, stats_cf, write_batch,
};
pub(crate) use checkpoint::write_manifest_and_identity;
pub(crate) use conflict::{get_latest, ConflictCheck};
pub(crate) use events::table_file;
pub(crate) use family::Family;
pub(crate) use filenames::{log_path, table_path};
pub(crate) use ingest::ingest as ingest_cf;
pub use ingest::IngestOptions;
pub use properties::PROPERTIES;
pub use read::DbSnapshot;
pub(crate) use read::FailedIterator;
pub(crate) use repair::repair as repair_with;
pub use repair::RepairReport;
pub use stats::{DbStats, LevelStats};
pub(crate) use write::write_checked;

use crate::backend::{Snapshot, StorageBackend};
use crate::batch::WriteBatch;
use crate::cf_options::ColumnFamilyOptions;
use crate::column_family::ColumnFamily;
use crate::error::{Error, Result};
use crate::fs::{FileLock, FileSystem};
use crate::iterator::{DbIterator, KeyRange, RawIterator};
use crate::memtable::MemTable;
use crate::options::{Options, WriteOptions};
use crate::types::SeqNo;
use crate::version::{FamilyEdit, VersionEdit, VersionSet};
use background::Background;
use family::{Families, ReadView};
use parking_lot::{Mutex, RwLock};
use stats::Stats;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use table_cache::TableCache;

/// State shared by the [`DB`] handle, its snapshots and iterators.
pub(crate) struct DbInner {
    pub(crate) opts: Options,
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    lock: Mutex<Option<Box<dyn FileLock>>>,
    /// The open column families. Lock order: `versions` before `families`,
    /// the log (`wal`) before `families`, `families` before a family's
    /// `view`.
    pub(crate) families: RwLock<Families>,
    /// The default family (also in `families`), for the common path.
    pub(crate) default: Arc<Family>,
    /// Highest sequence number whose write is fully applied. Readers load it
    /// while holding their family's `view` read lock (see
    /// [`Family::current_view`]).
    pub(crate) visible_seq: AtomicU64,
    /// Writers waiting to commit; the front one leads the next group.
    writers: Mutex<VecDeque<Arc<write::Writer>>>,
    /// The log and sequence counter, used only by the group leader.
    wal: Mutex<write::WalState>,
    /// Number of the log writes go to (changed under `wal`), so that
    /// flushes can tell which logs are still needed without taking it.
    pub(crate) current_log: AtomicU64,
    pub(crate) next_file_number: AtomicU64,
    /// The MANIFEST; one version change at a time.
    pub(crate) versions: Mutex<VersionSet>,
    pub(crate) table_cache: Arc<TableCache>,
    pub(crate) bg: Background,
    /// Held while a compaction runs: one at a time, background or manual.
    pub(crate) compaction_lock: Mutex<()>,
    pub(crate) stats: Stats,
    /// Logging, listeners and the statistics of background work.
    pub(crate) events: Arc<events::Events>,
    /// Sequence numbers of live snapshots, with their counts.
    pub(crate) snapshots: Mutex<BTreeMap<SeqNo, usize>>,
    /// The failure that stopped writes, if any (see `health`).
    stopped: Mutex<Option<health::Stopped>>,
    /// The key locks of pessimistic transactions.
    pub(crate) txn_locks: crate::txn::LockManager,
    closed: AtomicBool,
    /// Whether some family has a TTL (then writes stamp their values).
    pub(crate) ttl_in_use: AtomicBool,
    /// Set for read-only and secondary handles, which never write.
    pub(crate) follower: Option<read_only::Follower>,
}

impl DbInner {
    pub(crate) fn new_file_number(&self) -> u64 {
        self.next_file_number.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// The open families, in id order.
    pub(crate) fn family_list(&self) -> Vec<Arc<Family>> {
        self.families.read().values().cloned().collect()
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

    /// The oldest log some family still needs (for data not yet in a
    /// table), leaving out `flushing`, the memtable of `family` whose
    /// table is being installed.
    fn oldest_live_log(&self, flushing: Option<(&Family, &Arc<MemTable>)>) -> u64 {
        // The current log is read first: a write that lands after the
        // families are looked at goes to it or to a newer one.
        let current = self.current_log.load(Ordering::Acquire);
        self.families
            .read()
            .values()
            .filter_map(|f| {
                let skip = flushing.filter(|(ff, _)| ff.id == f.id).map(|(_, m)| m);
                f.oldest_unflushed_log(skip)
            })
            .fold(current, u64::min)
    }

    /// Records `edit` (a change to `family`) in the MANIFEST, then
    /// publishes a read view with the resulting version (and without
    /// `flushed`, the frozen memtable whose table the edit adds), in one
    /// step for readers. Returns false, changing nothing, when the family
    /// was dropped meanwhile. A failure stops writes for good: the MANIFEST
    /// may end in part of a record.
    pub(crate) fn install(
        &self,
        family: &Family,
        edit: FamilyEdit,
        flushed: Option<&Arc<MemTable>>,
    ) -> Result<bool> {
        self.install_at(family, edit, flushed, None)
            .map_err(|e| self.stop_writes(e, health::Failure::Fatal))
    }

    /// As [`install`](Self::install), recording `last_seq` (instead of the
    /// visible sequence number) as the MANIFEST's last sequence number
    /// (an ingest uses a number it publishes only after the edit), and
    /// leaving it to the caller to stop writes on failure (an ingest holds
    /// the snapshot list's lock, which stopping must not wait under).
    pub(crate) fn install_at(
        &self,
        family: &Family,
        edit: FamilyEdit,
        flushed: Option<&Arc<MemTable>>,
        last_seq: Option<SeqNo>,
    ) -> Result<bool> {
        let mut versions = self.versions.lock();
        if family.is_dropped() {
            return Ok(false);
        }
        let edit = VersionEdit {
            log_number: Some(self.oldest_live_log(flushed.map(|m| (family, m)))),
            ..VersionEdit::for_family(edit)
        };
        let changed = versions.log_and_apply(
            edit,
            self.next_file_number.load(Ordering::Relaxed),
            last_seq.unwrap_or_else(|| self.visible_seq.load(Ordering::Acquire)),
            || self.new_file_number(),
        )?;
        if let Some((_, version)) = changed.into_iter().find(|(id, _)| *id == family.id) {
            let mut view = family.view.write();
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
        }
        Ok(true)
    }

    /// Whether some family's level is over its size or file-count target,
    /// its last level holds garbage no snapshot needs any more, or a file
    /// holds only data past the family's TTL.
    pub(crate) fn compaction_wanted(&self) -> bool {
        let oldest = compaction::oldest_visible(self);
        let now = crate::ttl::now();
        self.family_list().iter().any(|f| {
            let version = f.view.read().version.clone();
            compaction::wanted(f, &version, oldest, now)
        })
    }

    /// When the next table of a family with a TTL will have outlived it
    /// (seconds since the Unix epoch), so that an idle background wakes to
    /// compact it.
    pub(crate) fn next_ttl_expiry(&self) -> Option<u64> {
        if !self.ttl_in_use.load(Ordering::Relaxed) {
            return None;
        }
        self.family_list()
            .iter()
            .filter_map(|f| compaction::next_ttl_expiry(&f.opts, &f.view.read().version))
            .min()
    }

    /// Whether some family's last level holds garbage no snapshot needs
    /// any more (the part of `compaction_wanted` a snapshot's release can
    /// change).
    pub(crate) fn bottom_garbage_wanted(&self) -> bool {
        let oldest = compaction::oldest_visible(self);
        self.family_list().iter().any(|f| {
            let version = f.view.read().version.clone();
            compaction::bottom_garbage(f, &version, oldest).is_some()
        })
    }

    /// Whether some family has a frozen memtable waiting for flush.
    pub(crate) fn flush_wanted(&self) -> bool {
        self.family_list()
            .iter()
            .any(|f| !f.view.read().imms.is_empty())
    }

    /// Closes the handle: stops the background threads, then writes every
    /// memtable to a table, so that a clean shutdown leaves no data in the
    /// logs, and marks the MANIFEST as cleanly closed. When writes are
    /// stopped after a failure, tries once to recover (see `health`) and
    /// otherwise returns the failure. The directory lock stays held until
    /// the last snapshot and iterator of this handle is gone (`Drop`).
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) || self.follower.is_some() {
            return Ok(()); // a follower has nothing to flush
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
        write::freeze_all(self, wal)?;
        for family in self.family_list() {
            while flush::flush_oldest(self, &family)? {}
        }
        self.versions
            .lock()
            .mark_clean_close()
            .map_err(|e| self.stop_writes(e, health::Failure::Fatal))?;
        // A cleanly closed database's last log ends with its last record,
        // as every older one does: no room left reserved.
        wal.trim()
            .map_err(|e| self.stop_writes(e, health::Failure::Log))?;
        instrument::sync_wal(self, wal).map_err(|e| self.log_sync_failed(e))
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
        let (key, value) = (key.as_ref(), value.as_ref());
        let mut batch = WriteBatch::with_capacity_bytes(key.len() + value.len() + 11);
        batch.put(key, value);
        self.write(batch)
    }

    /// Removes `key`; removing an absent key is not an error.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        let mut batch = WriteBatch::with_capacity_bytes(key.len() + 6);
        batch.delete(key);
        self.write(batch)
    }

    /// Merges `operand` into `key`: reads fold it into the value before it
    /// with the family's [`MergeOperator`](crate::MergeOperator).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # struct Add;
    /// # impl aidb::MergeOperator for Add {
    /// #     fn name(&self) -> &str { "add" }
    /// #     fn full_merge(&self, _: &[u8], base: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
    /// #         let n = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    /// #         let total = base.map_or(0, n) + ops.iter().map(|o| n(o)).sum::<u64>();
    /// #         Some(total.to_le_bytes().to_vec())
    /// #     }
    /// # }
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let options = aidb::Options {
    ///     merge_operator: Some(Arc::new(Add)),
    ///     ..aidb::Options::new(dir.path())
    /// };
    /// let db = aidb::DB::open_with(options)?;
    /// db.merge("visits", 1u64.to_le_bytes())?;
    /// db.merge("visits", 2u64.to_le_bytes())?;
    /// assert_eq!(db.get("visits")?, Some(3u64.to_le_bytes().to_vec()));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`put`](Self::put). Reading a key whose operands the operator
    /// refuses, or with no operator set, fails with [`Error::Merge`].
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let (key, operand) = (key.as_ref(), operand.as_ref());
        let mut batch = WriteBatch::with_capacity_bytes(key.len() + operand.len() + 11);
        batch.merge(key, operand);
        self.write(batch)
    }

    /// Removes every key in `range` (`"a".."m"`; the end is needed and not
    /// included), with one entry whatever the number of keys. Reads,
    /// iterators and snapshots taken after it no longer see the keys;
    /// compaction reclaims their space.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a range without an end; otherwise as
    /// [`put`](Self::put).
    pub fn delete_range(&self, range: impl Into<KeyRange>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_range(range);
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
        write_batch(&self.inner, batch, options)
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        instrument::get(&self.inner, || {
            self.inner.check_open()?;
            let (seq, view) = self.inner.default.current_view(&self.inner.visible_seq);
            read::get(&self.inner, &self.inner.default, &view, key.as_ref(), seq)
        })
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
        flush_cf(&self.inner, &self.inner.default)
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
        compact_range_cf(&self.inner, &self.inner.default, &range.into())
    }

    /// Blocks until no flush or compaction is running or needed. Useful in
    /// tests and benchmarks that want a settled database.
    pub fn wait_for_idle(&self) -> Result<()> {
        self.inner.check_open()?;
        self.inner.wait_for(|inner, st| {
            !st.flushing && !st.compacting && !inner.flush_wanted() && !inner.compaction_wanted()
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

    /// Adds the table files at `paths`, written by
    /// [`SstWriter`](crate::SstWriter), to the default column family, all
    /// or none, as if their entries had just been written: they get a
    /// sequence number newer than everything in the database, so their
    /// values win over older ones and snapshots taken before do not see
    /// them. The files must not overlap one another. See
    /// `docs/operations.md` for how it works and costs.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let options = aidb::Options::new(dir.path().join("db"));
    /// let mut writer = aidb::SstWriter::create(dir.path().join("1.sst"), &options)?;
    /// writer.put("k", "from the file")?;
    /// writer.finish()?;
    /// let db = aidb::DB::open_with(options)?;
    /// db.put("k", "old")?;
    /// db.ingest(&[dir.path().join("1.sst")], Default::default())?;
    /// assert_eq!(db.get("k")?, Some(b"from the file".to_vec()));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Corruption`] when a file fails its checks (checksums, key
    /// order, not written by `SstWriter`); [`Error::InvalidArgument`] when
    /// files overlap, or the family has a TTL; otherwise as
    /// [`put`](Self::put). Nothing is ingested on error.
    pub fn ingest<P: AsRef<Path>>(&self, paths: &[P], options: IngestOptions) -> Result<()> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        ingest::ingest(&self.inner, &self.inner.default, &paths, options)
    }

    /// Writes a checkpoint to `dir`: a copy of every column family at one
    /// sequence number that opens as a database of its own (with
    /// [`DB::open`]). Table files are hard-linked, so the cost grows with
    /// the number of files, not their size (they are copied where links
    /// are impossible, as across devices); the live logs are copied up to
    /// the moment of the checkpoint. Writes go on meanwhile; they are not
    /// in the checkpoint. See `docs/operations.md`.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path().join("db"))?;
    /// db.put("k", "v")?;
    /// db.checkpoint(dir.path().join("copy"))?;
    /// db.put("k", "later")?;
    /// let copy = aidb::DB::open(dir.path().join("copy"))?;
    /// assert_eq!(copy.get("k")?, Some(b"v".to_vec()));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `dir` exists; [`Error::Io`] when a
    /// file cannot be linked, copied or written (nothing is left at `dir`).
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        checkpoint::checkpoint(&self.inner, dir.as_ref()).map(|_| ())
    }

    /// The state a backup copies, noted at one instant (see `checkpoint`),
    /// with the directory and file system to read it from.
    pub(crate) fn capture(&self) -> Result<(checkpoint::Capture, &Path, &Arc<dyn FileSystem>)> {
        self.inner.check_open()?;
        Ok((
            checkpoint::capture(&self.inner)?,
            &self.inner.dir,
            &self.inner.fs,
        ))
    }

    /// Counters and per-level figures kept by the engine, for the default
    /// column family (see [`ColumnFamily::stats`] for the others), with
    /// the database-wide ones (stalls, caches, sequence number).
    pub fn stats(&self) -> DbStats {
        stats::collect(&self.inner, &self.inner.default)
    }

    /// The database's statistics since it was opened, across every column
    /// family: operation counts and bytes, cache and bloom filter
    /// effectiveness, stalls, background work, and latency histograms.
    /// `Display` prints them as text. Recording them costs no lock on any
    /// path (see docs/operations.md).
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// db.put("k", "value")?;
    /// db.get("k")?;
    /// let s = db.statistics();
    /// assert_eq!((s.keys_written, s.bytes_written, s.keys_found), (1, 6, 1));
    /// println!("{s}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn statistics(&self) -> crate::Statistics {
        stats::statistics(&self.inner)
    }

    /// The value of the property `name` of the default column family (and
    /// the database-wide ones), as text; `None` for an unknown name. As
    /// RocksDB's `GetProperty`: for example
    /// `aidb.num-files-at-level0`, `aidb.estimate-pending-compaction-bytes`,
    /// `aidb.cur-size-all-mem-tables`, `aidb.estimate-num-keys`,
    /// `aidb.num-running-compactions`, `aidb.background-errors`. Every name
    /// is in [`PROPERTIES`](crate::PROPERTIES) and docs/operations.md.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// db.put("k", "v")?;
    /// db.flush()?;
    /// assert_eq!(db.property("aidb.num-files-at-level0").as_deref(), Some("1"));
    /// assert_eq!(db.property("no.such.property"), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn property(&self, name: &str) -> Option<String> {
        properties::property(&self.inner, &self.inner.default, name)
    }

    /// Creates a column family: a keyspace with its own memtables, table
    /// files and `options`, sharing the log (so one [`WriteBatch`] is
    /// atomic across families). The creation is durable when this returns.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the name exists, is empty or is
    /// longer than 255 bytes, or an option is invalid.
    pub fn create_column_family(
        &self,
        name: &str,
        options: ColumnFamilyOptions,
    ) -> Result<ColumnFamily> {
        cf_api::create_family(&self.inner, name, options)
    }

    /// The column family called `name`, if it exists.
    pub fn column_family(&self, name: &str) -> Option<ColumnFamily> {
        cf_api::by_name(&self.inner, name)
    }

    /// The default column family, the one `DB`'s own methods act on.
    pub fn default_column_family(&self) -> ColumnFamily {
        cf_api::handle(&self.inner, &self.inner.default)
    }

    /// Names of every column family, `"default"` included.
    pub fn column_family_names(&self) -> Vec<String> {
        self.inner
            .family_list()
            .iter()
            .map(|f| f.name.to_string())
            .collect()
    }

    /// Drops a column family: its name disappears at once (a family of the
    /// same name can be created again, with new data); its files are
    /// deleted once no iterator reads them; handles to it fail from now on
    /// with [`Error::InvalidArgument`]. The drop is durable when this
    /// returns.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `"default"` or a name that does not
    /// exist.
    pub fn drop_column_family(&self, name: &str) -> Result<()> {
        cf_api::drop_family(&self.inner, name)
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

    /// The shared state, for the transaction module.
    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.inner
    }

    fn raw_iterator_impl(&self) -> Box<dyn RawIterator> {
        raw_iterator_cf(&self.inner, &self.inner.default)
    }
}

impl Drop for DB {
    fn drop(&mut self) {
        let _ = self.inner.close();
        // Listeners hear of everything the close did before it returns.
        self.inner.events.drain();
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
