//! AiDb: an embeddable LSM-tree key-value storage engine in pure Rust.
//!
//! Writes go to a write-ahead log and a skiplist memtable; full memtables
//! are flushed to sorted table files that background compaction keeps in
//! levels. Everything is reachable through [`DB`] and the [`StorageBackend`]
//! trait, which [`MemoryBackend`] also implements.

#![warn(missing_docs)]

mod backend;
mod batch;
mod block_cache;
mod cf_options;
mod coding;
mod column_family;
mod counter;
mod db;
mod error;
pub mod fs;
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
mod statistics;
mod table;
pub mod tools;
mod ttl;
mod txn;
mod types;
mod version;
mod wal;

pub use backend::{KvIter, MemoryBackend, Snapshot, StorageBackend};
pub use batch::{BatchIter, BatchOp, WriteBatch};
pub use cf_options::ColumnFamilyOptions;
pub use column_family::ColumnFamily;
pub use db::{DbSnapshot, DbStats, LevelStats, DB};
pub use error::{Error, Result};
pub use iterator::{DbIterator, KeyRange, RawIterator};
pub use operators::{CompactionFilter, FilterDecision, MergeOperator};
pub use listener::{
    BackgroundErrorInfo, CompactionJobInfo, CompactionReason, ErrorRecovery, EventListener,
    FlushJobInfo, RecoveryInfo, TableFile, TableFileCreationInfo, TableFileDeletionInfo,
    TableFileReason, WriteStallCondition, WriteStallInfo,
};
pub use options::{
    Compression, Options, WalRecoveryMode, WriteOptions, DEFAULT_COLUMN_FAMILY, MAX_BATCH_SIZE,
    MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
pub use txn::{Transaction, TransactionOptions};
pub use statistics::{CacheCounts, Histogram, Statistics};
