//! Event listeners: the [`EventListener`] trait and what its callbacks
//! receive.

use crate::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Callbacks for what the engine does in the background (flushes,
/// compactions, table files coming and going, write stalls, failures and
/// recovery from them), as RocksDB's `EventListener`.
///
/// Register listeners with [`Options::listeners`](crate::Options::listeners).
/// Every callback has a default that does nothing, so a listener
/// implements only what it needs:
///
/// ```
/// use aidb::{EventListener, FlushJobInfo, Options, DB};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Default)]
/// struct FlushedBytes(AtomicU64);
///
/// impl EventListener for FlushedBytes {
///     fn on_flush_completed(&self, info: &FlushJobInfo) {
///         let size = info.output.as_ref().map_or(0, |t| t.size);
///         self.0.fetch_add(size, Ordering::Relaxed);
///     }
/// }
///
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let flushed = Arc::new(FlushedBytes::default());
/// let db = DB::open_with(Options {
///     listeners: vec![flushed.clone()],
///     ..Options::new(dir.path())
/// })?;
/// db.put("k", "v")?;
/// db.flush()?;
/// db.close()?; // delivers every pending event before it returns
/// assert!(flushed.0.load(Ordering::Relaxed) > 0);
/// # Ok(())
/// # }
/// ```
///
/// # When callbacks run
///
/// Callbacks run on one thread per database (named `aidb-events`, started
/// only when there are listeners), one at a time, in the order the events
/// happened, and never while the engine holds a lock. So a callback may call
/// into the database — read, write, even flush — without deadlocking, and a
/// slow callback delays later callbacks, never the engine. The other side
/// of this: a callback runs a little after its event, when the engine may
/// have moved on (a flush may be complete when `on_flush_begin` runs).
/// [`DB::close`](crate::DB::close) (and dropping the handle) delivers every
/// pending event before it returns; table files deleted later (when the last
/// iterator reading them is dropped) are reported on the same thread.
///
/// A callback that panics is caught: the engine goes on, the panic is
/// logged and counted in [`Statistics::listener_panics`](crate::Statistics),
/// and the listener still gets later events.
///
/// A listener that holds the [`DB`](crate::DB) itself keeps the database
/// (and its event thread) alive for as long as the listener lives: hold a
/// `Weak` reference, or close the database explicitly.
pub trait EventListener: Send + Sync {
    /// A flush of a frozen memtable to a level-0 table starts.
    fn on_flush_begin(&self, info: &FlushJobInfo) {
        let _ = info;
    }

    /// A flush finished and its table is part of the database (recorded
    /// in the MANIFEST). A flush that fails is reported through
    /// [`on_background_error`](Self::on_background_error) instead, and one
    /// of a column family dropped meanwhile ends without this call.
    fn on_flush_completed(&self, info: &FlushJobInfo) {
        let _ = info;
    }

    /// A compaction starts (background or [`DB::compact_range`](crate::DB::compact_range)).
    fn on_compaction_begin(&self, info: &CompactionJobInfo) {
        let _ = info;
    }

    /// A compaction finished and its outputs replaced its inputs in the
    /// MANIFEST. Failures are reported as for flushes.
    fn on_compaction_completed(&self, info: &CompactionJobInfo) {
        let _ = info;
    }

    /// A flush or compaction wrote (and synced) a table file. It becomes
    /// part of the database when the job completes.
    fn on_table_file_created(&self, info: &TableFileCreationInfo) {
        let _ = info;
    }

    /// A table file that left the database (compacted away, or its column
    /// family dropped) was deleted, once no reader needed it any more.
    fn on_table_file_deleted(&self, info: &TableFileDeletionInfo) {
        let _ = info;
    }

    /// Writes to a column family started or stopped being slowed down or
    /// stopped while flushes or compactions catch up.
    fn on_stall_conditions_changed(&self, info: &WriteStallInfo) {
        let _ = info;
    }

    /// A failure stopped writes (see [`Error::ReadOnly`]): a failed
    /// flush, compaction, log or MANIFEST write, or a panic in the engine.
    fn on_background_error(&self, info: &BackgroundErrorInfo) {
        let _ = info;
    }

    /// Writes are accepted again after a failure, by
    /// [`DB::resume`](crate::DB::resume) or the background retry.
    fn on_error_recovery_completed(&self, info: &RecoveryInfo) {
        let _ = info;
    }
}

/// A table file, as events and [`tools`](crate::tools) describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableFile {
    /// Its file number (the file is `NNNNNN.sst`).
    pub number: u64,
    /// Its path.
    pub path: PathBuf,
    /// The level it is (or is to be) in.
    pub level: usize,
    /// Its size in bytes.
    pub size: u64,
    /// The smallest user key in it.
    pub smallest_key: Vec<u8>,
    /// The largest user key in it.
    pub largest_key: Vec<u8>,
    /// The smallest sequence number of its entries.
    pub smallest_seq: u64,
    /// The largest sequence number of its entries.
    pub largest_seq: u64,
}

/// A flush: one frozen memtable written to a level-0 table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlushJobInfo {
    /// The column family flushed.
    pub column_family: String,
    /// Unique (per open database) id of the job: begin and completed
    /// events of one job carry the same id, shared with compactions.
    pub job_id: u64,
    /// Bytes held by the memtable.
    pub memtable_bytes: u64,
    /// The table written; `None` at begin, and when the memtable held only
    /// entries that needed no table.
    pub output: Option<TableFile>,
    /// How long the job took (zero at begin).
    pub duration: Duration,
}

/// Why a compaction ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionReason {
    /// Level 0 reached `level0_file_num_compaction_trigger` files.
    Level0FileCount,
    /// A level outgrew its target size.
    LevelSize,
    /// Last-level files held versions kept for a snapshot that is gone.
    BottommostGarbage,
    /// [`DB::compact_range`](crate::DB::compact_range) or
    /// [`ColumnFamily::compact_range`](crate::ColumnFamily::compact_range).
    Manual,
}

/// A compaction: input files merged into output files one level down (or
/// rewritten in place in the last level), or one file moved down.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionJobInfo {
    /// The column family compacted.
    pub column_family: String,
    /// Unique (per open database) id of the job.
    pub job_id: u64,
    /// Why it ran.
    pub reason: CompactionReason,
    /// The level the compaction takes files from.
    pub input_level: usize,
    /// The level it writes to.
    pub output_level: usize,
    /// Every file read: from `input_level`, then the overlapping ones of
    /// `output_level`.
    pub inputs: Vec<TableFile>,
    /// Every file written (empty at begin). For a trivial move, the moved
    /// file at its new level.
    pub outputs: Vec<TableFile>,
    /// The file was moved down a level without being rewritten.
    pub trivial_move: bool,
    /// Bytes of table files read (zero for a trivial move).
    pub bytes_read: u64,
    /// Bytes of table files written (zero at begin and for a trivial move).
    pub bytes_written: u64,
    /// How long the job took (zero at begin).
    pub duration: Duration,
}

/// What wrote a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableFileReason {
    /// A memtable flush.
    Flush,
    /// A compaction.
    Compaction,
}

/// A table file was written.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableFileCreationInfo {
    /// The column family it belongs to.
    pub column_family: String,
    /// The flush or compaction job that wrote it.
    pub job_id: u64,
    /// Flush or compaction.
    pub reason: TableFileReason,
    /// The file.
    pub file: TableFile,
}

/// A table file was deleted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableFileDeletionInfo {
    /// Its file number.
    pub file_number: u64,
    /// Its path.
    pub path: PathBuf,
    /// Why the deletion failed, if it did (the next open removes the file).
    pub error: Option<String>,
}

/// How writes to a column family are held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteStallCondition {
    /// Writes go at full speed.
    Normal,
    /// Level 0 holds `level0_slowdown_writes_trigger` files: each write
    /// group waits 1 ms.
    Delayed,
    /// Level 0 holds `level0_stop_writes_trigger` files, or
    /// `max_write_buffer_number` memtables are full: writes wait for a
    /// flush or compaction.
    Stopped,
}

/// The stall condition of a column family changed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriteStallInfo {
    /// The column family.
    pub column_family: String,
    /// The condition now.
    pub condition: WriteStallCondition,
    /// The condition before.
    pub previous: WriteStallCondition,
}

/// What it takes to get writes going again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorRecovery {
    /// A flush or compaction failed: the background retries it with
    /// back-off, and [`DB::resume`](crate::DB::resume) retries at once.
    Automatic,
    /// A log write failed: [`DB::resume`](crate::DB::resume) (once the
    /// cause is fixed) starts a new log.
    Resume,
    /// Only closing and reopening the database recovers.
    Reopen,
}

/// A failure stopped writes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackgroundErrorInfo {
    /// The failure (the `cause` of the [`Error::ReadOnly`] writes get).
    pub error: Arc<Error>,
    /// How writes can come back.
    pub recovery: ErrorRecovery,
}

/// Writes are accepted again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecoveryInfo {
    /// The failure recovered from.
    pub error: Arc<Error>,
}
