//! Database options.

use crate::cf_options::ColumnFamilyOptions;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, OsFileSystem};
use crate::listener::EventListener;
use crate::operators::{CompactionFilter, MergeOperator};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Largest key AiDb accepts, in bytes. Larger keys are rejected with
/// [`Error::InvalidArgument`].
pub const MAX_KEY_SIZE: usize = 64 * 1024;

/// Largest value AiDb accepts, in bytes. Larger values are rejected with
/// [`Error::InvalidArgument`].
pub const MAX_VALUE_SIZE: usize = 256 * 1024 * 1024;

/// Largest encoded size of one write batch, in bytes.
pub const MAX_BATCH_SIZE: usize = 1024 * 1024 * 1024;

/// Largest `write_buffer_size` and `target_file_size`, in bytes: a table
/// file's index and filter blocks grow with it, and every block must stay
/// readable (see `docs/format.md`).
pub(crate) const MAX_TABLE_INPUT_SIZE: u64 = 1 << 30;

/// Block compression algorithm for table files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Store blocks as they are.
    None,
    /// LZ4 (fast, moderate ratio). The default.
    #[default]
    Lz4,
    /// Snappy (fast, moderate ratio).
    Snappy,
}

/// How recovery treats a damaged write-ahead log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalRecoveryMode {
    /// Ignore an incomplete or damaged *final* record of a log (a write torn
    /// by a crash, which was never acknowledged as synced); fail with
    /// [`Error::Corruption`] on damage anywhere else. The default.
    #[default]
    TolerateCorruptedTailRecords,
    /// Fail with [`Error::Corruption`] on any damage, even a torn tail.
    AbsoluteConsistency,
    /// Stop replaying at the first damaged record and keep everything before
    /// it (writes after the damage are dropped, but the database opens).
    PointInTimeRecovery,
    /// Skip damaged records and keep replaying. Can lose writes and break
    /// batch ordering guarantees; a last resort for salvaging data.
    SkipAnyCorruptedRecords,
}

/// Options for opening a database. Build with struct-update syntax:
///
/// ```
/// let opts = aidb::Options {
///     write_buffer_size: 8 << 20,
///     ..aidb::Options::new("/tmp/aidb-options-doc")
/// };
/// assert!(opts.create_if_missing);
/// ```
#[derive(Clone)]
pub struct Options {
    /// Directory that holds the database. Default: empty (must be set;
    /// [`DB::open`](crate::DB::open) sets it from its argument).
    pub path: PathBuf,
    /// Create the database when `path` holds none. Default: `true`.
    pub create_if_missing: bool,
    /// Fail with [`Error::AlreadyExists`] when the database exists.
    /// Default: `false`.
    pub error_if_exists: bool,
    /// Capacity of the block cache shared by all table files, in bytes;
    /// 0 disables it. Default: 64 MiB.
    pub cache_size: usize,
    /// Size a memtable may reach before it is frozen and a new one (with a
    /// new log file) takes writes. Between 4 KiB and 1 GiB. Default: 64 MiB.
    /// Each memtable also keeps a bloom filter of its keys of 1/64 of this
    /// size (not counted in the memtable's size), so that a point lookup
    /// skips a memtable that cannot hold the key.
    pub write_buffer_size: usize,
    /// Most memtables (active plus frozen ones waiting for flush) held at
    /// once; writes stall beyond it. At least 2. Default: 4.
    pub max_write_buffer_number: usize,
    /// Compression of table blocks. Default: [`Compression::Lz4`].
    pub compression: Compression,
    /// Per-level override of `compression`: entry `i` applies to level `i`,
    /// levels past the end use `compression`. Default: empty.
    pub compression_per_level: Vec<Compression>,
    /// Target uncompressed size of a table data block. Between 256 bytes and
    /// 4 MiB. Default: 4096.
    pub block_size: usize,
    /// Keys between restart points in a block. At least 1. Default: 16.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key; 0 disables filters. At most 64.
    /// Default: 10 (about 1% false positives).
    pub bloom_bits_per_key: u32,
    /// Number of levels in the LSM tree. Between 2 and 16. Default: 7.
    pub num_levels: usize,
    /// Level-0 file count that starts a compaction into level 1. Default: 4.
    pub level0_file_num_compaction_trigger: usize,
    /// Level-0 file count at which writes are slowed. Default: 20.
    pub level0_slowdown_writes_trigger: usize,
    /// Level-0 file count at which writes stop until compaction catches up.
    /// Default: 36.
    pub level0_stop_writes_trigger: usize,
    /// Target size of level 1 in bytes. Default: 256 MiB.
    pub max_bytes_for_level_base: u64,
    /// Each level's target is this many times the previous one's. Greater
    /// than 1. Default: 10.
    pub max_bytes_for_level_multiplier: f64,
    /// Size levels from the bottom up, as RocksDB's option of this name
    /// does: level 0 compacts straight into the highest level that needs
    /// data (the last level while the family is small), and each level's
    /// target is the one below divided by the multiplier, so that most
    /// data is rewritten fewer times. Levels above that one stay empty.
    /// Off: level 0 compacts into level 1, whose target is
    /// `max_bytes_for_level_base`. Default: `false`.
    pub level_compaction_dynamic_level_bytes: bool,
    /// Size at which compaction output is split into a new table file.
    /// Between 1 KiB and 1 GiB. Default: 64 MiB.
    pub target_file_size: u64,
    /// Threads for background flushes and compactions. At least 1.
    /// Default: 2.
    pub max_background_jobs: usize,
    /// Most table files kept open at once. At least 16. Default: 1000.
    pub max_open_files: usize,
    /// Verify checksums on every read and fail open on any inconsistency
    /// instead of trying to go on. Default: `true`.
    pub paranoid_checks: bool,
    /// How damaged log records are treated at open. Default:
    /// [`WalRecoveryMode::TolerateCorruptedTailRecords`].
    pub wal_recovery_mode: WalRecoveryMode,
    /// The file system all I/O goes through. Default: the operating
    /// system's ([`OsFileSystem`]). Tests pass a
    /// [`FaultInjectionFs`](crate::fs::FaultInjectionFs).
    pub fs: Arc<dyn FileSystem>,
    /// Folds the default family's merge operands (see
    /// [`MergeOperator`](crate::MergeOperator)); the name is recorded and a
    /// differently named one is refused at a later open. Default: none.
    pub merge_operator: Option<Arc<dyn MergeOperator>>,
    /// Consulted by the default family's compactions (see
    /// [`CompactionFilter`](crate::CompactionFilter)). Default: none.
    pub compaction_filter: Option<Arc<dyn CompactionFilter>>,
    /// The default family's time to live (see
    /// [`ColumnFamilyOptions::ttl`](crate::ColumnFamilyOptions::ttl)):
    /// fixed when the database is created. Default: none.
    pub ttl: Option<Duration>,
    /// Options of column families, by name, for this open: a listed family
    /// that does not exist yet is created with them; one that exists uses
    /// them from now on (and they are recorded, so later opens without
    /// them keep them). A family not listed uses the options recorded for
    /// it. The default family always takes the fields above. Default:
    /// empty.
    pub column_families: HashMap<String, ColumnFamilyOptions>,
    /// Total size of the live log files above which the family holding the
    /// oldest one is flushed, so that a rarely written family cannot keep
    /// logs alive for ever. 0 means four times the sum, over all families,
    /// of `write_buffer_size × max_write_buffer_number`. Default: 0.
    pub max_total_wal_size: u64,
    /// Callbacks for flushes, compactions, table files, write stalls and
    /// failures (see [`EventListener`]). They run on a thread of their
    /// own, never under an engine lock. Default: none.
    pub listeners: Vec<Arc<dyn EventListener>>,
    /// Record the per-operation [`Statistics`](crate::Statistics) (counts,
    /// bytes and latencies of gets, writes and iterators). Background work,
    /// caches and filters are counted either way. Off saves two clock
    /// reads per operation (see docs/operations.md for the measured cost).
    /// Default: `true`.
    pub statistics: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            path: PathBuf::new(),
            create_if_missing: true,
            error_if_exists: false,
            cache_size: 64 << 20,
            write_buffer_size: 64 << 20,
            max_write_buffer_number: 4,
            compression: Compression::Lz4,
            compression_per_level: Vec::new(),
            block_size: 4096,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            num_levels: 7,
            level0_file_num_compaction_trigger: 4,
            level0_slowdown_writes_trigger: 20,
            level0_stop_writes_trigger: 36,
            max_bytes_for_level_base: 256 << 20,
            max_bytes_for_level_multiplier: 10.0,
            level_compaction_dynamic_level_bytes: false,
            target_file_size: 64 << 20,
            max_background_jobs: 2,
            max_open_files: 1000,
            paranoid_checks: true,
            wal_recovery_mode: WalRecoveryMode::default(),
            fs: OsFileSystem::shared(),
            merge_operator: None,
            compaction_filter: None,
            ttl: None,
            column_families: HashMap::new(),
            max_total_wal_size: 0,
            listeners: Vec::new(),
            statistics: true,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("path", &self.path)
            .field("create_if_missing", &self.create_if_missing)
            .field("error_if_exists", &self.error_if_exists)
            .field("cache_size", &self.cache_size)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_write_buffer_number", &self.max_write_buffer_number)
            .field("compression", &self.compression)
            .field("compression_per_level", &self.compression_per_level)
            .field("block_size", &self.block_size)
            .field("block_restart_interval", &self.block_restart_interval)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("num_levels", &self.num_levels)
            .field(
                "level0_file_num_compaction_trigger",
                &self.level0_file_num_compaction_trigger,
            )
            .field(
                "level0_slowdown_writes_trigger",
                &self.level0_slowdown_writes_trigger,
            )
            .field(
                "level0_stop_writes_trigger",
                &self.level0_stop_writes_trigger,
            )
            .field("max_bytes_for_level_base", &self.max_bytes_for_level_base)
            .field(
                "max_bytes_for_level_multiplier",
                &self.max_bytes_for_level_multiplier,
            )
            .field(
                "level_compaction_dynamic_level_bytes",
                &self.level_compaction_dynamic_level_bytes,
            )
            .field("target_file_size", &self.target_file_size)
            .field("max_background_jobs", &self.max_background_jobs)
            .field("max_open_files", &self.max_open_files)
            .field("paranoid_checks", &self.paranoid_checks)
            .field("wal_recovery_mode", &self.wal_recovery_mode)
            .field("fs", &self.fs)
            .field(
                "merge_operator",
                &self.merge_operator.as_ref().map(|m| m.name().to_string()),
            )
            .field("compaction_filter", &self.compaction_filter.is_some())
            .field("ttl", &self.ttl)
            .field("column_families", &self.column_families)
            .field("max_total_wal_size", &self.max_total_wal_size)
            .field("listeners", &self.listeners.len())
            .field("statistics", &self.statistics)
            .finish()
    }
}

impl Options {
    /// Default options for the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Options {
        Options {
            path: path.into(),
            ..Options::default()
        }
    }

    /// Compression used for tables written to `level`.
    pub fn compression_for_level(&self, level: usize) -> Compression {
        self.compression_per_level
            .get(level)
            .copied()
            .unwrap_or(self.compression)
    }

    /// The default family's settings: the per-family fields of these
    /// options.
    pub fn default_family_options(&self) -> ColumnFamilyOptions {
        ColumnFamilyOptions {
            write_buffer_size: self.write_buffer_size,
            max_write_buffer_number: self.max_write_buffer_number,
            compression: self.compression,
            compression_per_level: self.compression_per_level.clone(),
            block_size: self.block_size,
            block_restart_interval: self.block_restart_interval,
            bloom_bits_per_key: self.bloom_bits_per_key,
            num_levels: self.num_levels,
            level0_file_num_compaction_trigger: self.level0_file_num_compaction_trigger,
            level0_slowdown_writes_trigger: self.level0_slowdown_writes_trigger,
            level0_stop_writes_trigger: self.level0_stop_writes_trigger,
            max_bytes_for_level_base: self.max_bytes_for_level_base,
            max_bytes_for_level_multiplier: self.max_bytes_for_level_multiplier,
            level_compaction_dynamic_level_bytes: self.level_compaction_dynamic_level_bytes,
            target_file_size: self.target_file_size,
            merge_operator: self.merge_operator.clone(),
            compaction_filter: self.compaction_filter.clone(),
            ttl: self.ttl,
        }
    }

    /// Checks every field; the error names the field and says why.
    pub fn validate(&self) -> Result<()> {
        fn bad(field: &str, why: impl std::fmt::Display) -> Result<()> {
            Err(Error::InvalidArgument(format!("Options::{field} {why}")))
        }
        if self.path.as_os_str().is_empty() {
            return bad("path", "is empty");
        }
        self.default_family_options().validate_as("Options")?;
        for (name, cf) in &self.column_families {
            check_family_name(name)?;
            if name == DEFAULT_COLUMN_FAMILY {
                return bad(
                    "column_families",
                    "names \"default\": the default family's options are the fields of Options itself",
                );
            }
            cf.validate_as(&format!("ColumnFamilyOptions (family {name:?})"))?;
        }
        if self.max_background_jobs == 0 {
            return bad("max_background_jobs", "is 0, must be at least 1");
        }
        if self.max_open_files < 16 {
            return bad(
                "max_open_files",
                format!("is {}, must be at least 16", self.max_open_files),
            );
        }
        Ok(())
    }
}

/// Name of the family every database has, which cannot be dropped.
pub const DEFAULT_COLUMN_FAMILY: &str = "default";

/// Checks a column family name: 1 to 255 bytes.
pub(crate) fn check_family_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::InvalidArgument(format!(
            "column family name {name:?} must be 1 to 255 bytes long"
        )));
    }
    Ok(())
}

/// Options for one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Fsync the write-ahead log before the write returns, so that the write
    /// survives a power cut, not only a process crash. Default: `false`.
    pub sync: bool,
}

impl WriteOptions {
    /// Options for a synced write.
    pub fn synced() -> WriteOptions {
        WriteOptions { sync: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::new("x").validate().unwrap();
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases: Vec<(Options, &str)> = vec![
            (Options::default(), "path"),
            (
                Options {
                    write_buffer_size: 10,
                    ..Options::new("x")
                },
                "write_buffer_size",
            ),
            (
                Options {
                    block_size: 0,
                    ..Options::new("x")
                },
                "block_size",
            ),
            (
                Options {
                    block_restart_interval: 0,
                    ..Options::new("x")
                },
                "block_restart_interval",
            ),
            (
                Options {
                    num_levels: 1,
                    ..Options::new("x")
                },
                "num_levels",
            ),
            (
                Options {
                    level0_stop_writes_trigger: 5,
                    ..Options::new("x")
                },
                "level0_stop_writes_trigger",
            ),
            (
                Options {
                    max_bytes_for_level_multiplier: f64::NAN,
                    ..Options::new("x")
                },
                "max_bytes_for_level_multiplier",
            ),
            (
                Options {
                    max_background_jobs: 0,
                    ..Options::new("x")
                },
                "max_background_jobs",
            ),
        ];
        for (opts, field) in cases {
            match opts.validate() {
                Err(Error::InvalidArgument(msg)) => assert!(msg.contains(field), "{msg}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
