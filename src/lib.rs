//! AiDb: an embeddable LSM-tree key-value storage engine in pure Rust.
//!
//! Writes go to a write-ahead log and a skiplist memtable; full memtables
//! are flushed to sorted table files that background compaction keeps in
//! levels. Everything is reachable through [`DB`] and the [`StorageBackend`]
//! trait, which [`MemoryBackend`] also implements.

#![warn(missing_docs)]

mod backend;
mod backup;
mod batch;
mod block_cache;
mod cf_options;
mod coding;
mod column_family;
mod counter;
mod db;
mod error;
pub mod fs;
mod int_hash;
mod internal_iter;
#[cfg(feature = "internals")]
pub mod internals;
mod iterator;
mod listener;
mod memtable;
mod merge;
mod operators;
mod options;
mod range_del;
mod sst_writer;
mod statistics;
mod table;
pub mod tools;
mod ttl;
mod txn;
mod types;
mod version;
mod wal;

pub use backend::{KvIter, MemoryBackend, Snapshot, StorageBackend};
pub use backup::{BackupEngine, BackupInfo};
pub use batch::{BatchIter, BatchOp, WriteBatch};
pub use cf_options::ColumnFamilyOptions;
pub use column_family::ColumnFamily;
pub use db::{DbSnapshot, DbStats, IngestOptions, LevelStats, RepairReport, DB, PROPERTIES};
pub use error::{Error, Result};
pub use iterator::{DbIterator, KeyRange, RawIterator};
pub use listener::{
    BackgroundErrorInfo, CompactionJobInfo, CompactionReason, ErrorRecovery, EventListener,
    FlushJobInfo, RecoveryInfo, TableFile, TableFileCreationInfo, TableFileDeletionInfo,
    TableFileReason, WriteStallCondition, WriteStallInfo,
};
pub use operators::{CompactionFilter, FilterDecision, MergeOperator};
pub use options::{
    Compression, Options, WalRecoveryMode, WriteOptions, DEFAULT_COLUMN_FAMILY, MAX_BATCH_SIZE,
    MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
pub use sst_writer::{SstInfo, SstWriter};
pub use statistics::{CacheCounts, Histogram, Statistics};
pub use txn::{Transaction, TransactionOptions};

/// Rebuilds the MANIFEST of the database in `path` from the table files and
/// logs present, when it is lost or damaged, as RocksDB's `RepairDB`; see
/// [`repair_with`] (this uses `Options::new(path)`).
pub fn repair(path: impl AsRef<std::path::Path>) -> Result<RepairReport> {
    repair_with(Options::new(path.as_ref()))
}

/// [`repair`] with options: their file system, and in
/// `column_families` the options of families whose recorded options are
/// lost with the MANIFEST (a merge operator or TTL must be given again).
///
/// Every table file is read whole and checked; one that fails is moved to
/// `lost/` and reported as dropped. Each table goes back to its column
/// family (recorded in the table since format 3; for older tables, taken
/// from what the damaged MANIFEST still says, else the default family).
/// The open that follows replays every log present, then each family is
/// compacted, so every key's newest surviving version is the one read.
/// The database must not be open.
///
/// # Errors
/// [`Error::NotFound`] when `path` holds no database files,
/// [`Error::Locked`] when it is open, [`Error::Io`] on I/O failures.
pub fn repair_with(options: Options) -> Result<RepairReport> {
    db::repair_with(options)
}
