//! Differential tests: the model suite's random operation sequences run
//! against AiDb and RocksDB side by side; every read (gets, scans both
//! ways with bounds and prefixes, seeks, mixed-direction iteration,
//! snapshot reads) must agree, including across flush, compact_range and
//! reopen. Several AiDb option presets; `AIDB_DIFF_CASES` scales the number
//! of sequences per preset. A failing case is shrunk by proptest and
//! printed as the operation list that reproduces it.

#[path = "../../tests/model/mod.rs"]
mod model;
mod oracle;

use aidb::fs::FaultInjectionFs;
use aidb::{Compression, Options, StorageBackend, DB};
use model::{ops_strategy, run_pair, Harness, Op};
use oracle::RocksDbOracle;
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

struct AiDb {
    db: Option<DB>,
    opts: Options,
}

impl Harness for AiDb {
    fn backend(&self) -> &dyn StorageBackend {
        self.db.as_ref().expect("open")
    }
    fn flush(&mut self) -> aidb::Result<()> {
        self.db.as_ref().expect("open").flush()
    }
    fn compact(&mut self) -> aidb::Result<()> {
        self.db.as_ref().expect("open").compact_range(..)
    }
    fn reopen(&mut self) -> aidb::Result<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        self.db = Some(DB::open_with(self.opts.clone())?);
        Ok(())
    }
}

impl Harness for RocksDbOracle {
    fn backend(&self) -> &dyn StorageBackend {
        self
    }
    fn flush(&mut self) -> aidb::Result<()> {
        RocksDbOracle::flush(self)
    }
    fn compact(&mut self) -> aidb::Result<()> {
        RocksDbOracle::compact(self)
    }
    fn reopen(&mut self) -> aidb::Result<()> {
        RocksDbOracle::reopen(self)
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("AIDB_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Tiny sizes on the in-memory file system, so that every sequence flushes
/// and compacts many times.
fn tiny(compression: Compression, bloom_bits_per_key: u32) -> Options {
    Options {
        fs: Arc::new(FaultInjectionFs::new()),
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        compression,
        bloom_bits_per_key,
        ..Options::new("/db")
    }
}

/// Runs `ops` on AiDb (options from `opts`, given a scratch directory) and
/// RocksDB side by side.
fn differential(opts: impl FnOnce(&Path) -> Options, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut rocks = RocksDbOracle::open(&dir.path().join("rocksdb")).expect("open rocksdb");
    let opts = opts(&dir.path().join("aidb"));
    let mut ai = AiDb {
        db: Some(DB::open_with(opts.clone()).expect("open aidb")),
        opts,
    };
    let result = run_pair(&mut ai, &mut rocks, ops);
    if let Some(db) = ai.db.take() {
        db.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    result.map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn defaults_on_disk(ops in ops_strategy(200)) {
        differential(|path| Options::new(path), &ops)?;
    }

    #[test]
    fn tiny_sizes_lz4(ops in ops_strategy(200)) {
        differential(|_| tiny(Compression::Lz4, 10), &ops)?;
    }

    #[test]
    fn tiny_sizes_snappy_without_bloom(ops in ops_strategy(200)) {
        differential(|_| tiny(Compression::Snappy, 0), &ops)?;
    }

    #[test]
    fn tiny_sizes_uncompressed(ops in ops_strategy(200)) {
        differential(|_| tiny(Compression::None, 10), &ops)?;
    }
}
