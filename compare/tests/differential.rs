//! Differential tests: the model suite's random operation sequences run
//! against AiDb and RocksDB side by side; every read (gets, scans both
//! ways with bounds and prefixes, seeks, mixed-direction iteration,
//! snapshot reads) must agree, including across flush, compact_range and
//! reopen. Several AiDb option presets; `AIDB_DIFF_CASES` scales the number
//! of sequences per preset. A failing case is shrunk by proptest, printed
//! as the operation list that reproduces it, and saved to
//! `compare/tests/differential.proptest-regressions`, from which every later
//! run replays it first (commit that file to keep the case).

#[path = "../../tests/model/mod.rs"]
mod model;
mod oracle;

use aidb::{Compression, Options, StorageBackend};
use model::{ops_strategy, run_pair, tiny, DbHarness, Harness, Op};
use oracle::RocksDbOracle;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::path::Path;

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

/// Runs `ops` on AiDb (options from `opts`, given a scratch directory) and
/// RocksDB side by side.
fn differential(opts: impl FnOnce(&Path) -> Options, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut rocks = RocksDbOracle::open(&dir.path().join("rocksdb")).expect("open rocksdb");
    let opts = opts(&dir.path().join("aidb"));
    let mut ai = DbHarness::open(opts).expect("open aidb");
    let result = run_pair(&mut ai, &mut rocks, ops);
    ai.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    result.map_err(TestCaseError::fail)
}

/// Failing cases are saved here (relative to compare/) and replayed first
/// on the next run.
const REGRESSIONS: &str = "tests/differential.proptest-regressions";

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(128),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

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
