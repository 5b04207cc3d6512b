//! Differential tests: the model suite's random operation sequences run
//! against AiDb and RocksDB side by side; every read (gets, scans both
//! ways with bounds and prefixes, seeks, mixed-direction iteration,
//! snapshot reads) must agree, including across flush, compact_range and
//! reopen. Then the same with column families (the model suite's
//! `CfOp` sequences): creating, dropping and re-creating families, reads
//! and writes through each (and through a dropped family's handle, an
//! error on both sides), batches and snapshots across families, flushes
//! and compactions of one family, reopening. Several AiDb option presets;
//! `AIDB_DIFF_CASES` scales the number of sequences per preset. A failing case is shrunk by proptest, printed
//! as the operation list that reproduces it, and saved to
//! `compare/tests/differential.proptest-regressions`, from which every later
//! run replays it first (commit that file to keep the case).

#[path = "../../tests/model/mod.rs"]
mod model;
mod oracle;

use aidb::fs::FaultInjectionFs;
use aidb::{Compression, DbIterator, KeyRange, Options, Snapshot, StorageBackend};
use model::{
    cf_ops_strategy, ops_strategy, run_cf_pair, run_pair, tiny, BatchOp, CfHarness, CfOp,
    DbHarness, Harness, Op,
};
use oracle::{OracleCf, OracleSnapshot, RocksDbOracle, Write};
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

impl CfHarness for RocksDbOracle {
    type Cf = OracleCf;
    type Snap = OracleSnapshot;
    fn default_cf(&self) -> OracleCf {
        RocksDbOracle::default_cf(self)
    }
    fn create_cf(&mut self, name: &str) -> aidb::Result<OracleCf> {
        RocksDbOracle::create_cf(self, name)
    }
    fn drop_cf(&mut self, name: &str) -> aidb::Result<()> {
        RocksDbOracle::drop_cf(self, name)
    }
    fn cf(&self, name: &str) -> Option<OracleCf> {
        RocksDbOracle::cf(self, name)
    }
    fn cf_names(&self) -> Vec<String> {
        RocksDbOracle::cf_names(self)
    }
    fn put_cf(&self, cf: &OracleCf, key: &[u8], value: &[u8]) -> aidb::Result<()> {
        RocksDbOracle::put_cf(self, cf, key, value)
    }
    fn delete_cf(&self, cf: &OracleCf, key: &[u8]) -> aidb::Result<()> {
        RocksDbOracle::delete_cf(self, cf, key)
    }
    fn get_cf(&self, cf: &OracleCf, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        RocksDbOracle::get_cf(self, cf, key)
    }
    fn scan_cf(&self, cf: &OracleCf, range: KeyRange) -> DbIterator {
        RocksDbOracle::scan_cf(self, cf, range)
    }
    fn flush_cf(&self, cf: &OracleCf) -> aidb::Result<()> {
        RocksDbOracle::flush_cf(self, cf)
    }
    fn compact_cf(&self, cf: &OracleCf, _range: KeyRange) -> aidb::Result<()> {
        RocksDbOracle::compact_cf(self, cf)
    }
    fn write_cf(&self, ops: &[(Option<&OracleCf>, &BatchOp)]) -> aidb::Result<()> {
        let ops: Vec<_> = ops
            .iter()
            .map(|(cf, op)| {
                let w = match op {
                    BatchOp::Put(k, v) => Write::Put(&k.0, &v.0),
                    BatchOp::Delete(k) => Write::Delete(&k.0),
                    BatchOp::Merge(k, v) => Write::Merge(&k.0, &v.0),
                    BatchOp::DeleteRange(a, z) => Write::DeleteRange(&a.0, &z.0),
                };
                (*cf, w)
            })
            .collect();
        RocksDbOracle::write_cf(self, &ops)
    }
    fn snapshot_cf(&self) -> aidb::Result<OracleSnapshot> {
        Ok(RocksDbOracle::snapshot_cf(self))
    }
    fn snapshot_base(snap: &OracleSnapshot) -> &dyn Snapshot {
        snap
    }
    fn snapshot_get_cf(
        snap: &OracleSnapshot,
        cf: &OracleCf,
        key: &[u8],
    ) -> aidb::Result<Option<Vec<u8>>> {
        snap.get_in(cf, key)
    }
    fn snapshot_scan_cf(snap: &OracleSnapshot, cf: &OracleCf, range: KeyRange) -> DbIterator {
        snap.scan_in(cf, range)
    }
    fn reopen_with_families(&mut self, names: &[&str]) -> aidb::Result<()> {
        RocksDbOracle::reopen_with(self, names)
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

/// Runs column-family sequences `ops` on AiDb and RocksDB side by side,
/// every read compared (snapshot reads through handles of families created
/// or dropped since the snapshot included). With
/// `crash`, AiDb runs on the in-memory file system and `CrashReopen` is a
/// simulated crash of its process (RocksDB is reopened cleanly).
fn differential_cf(
    opts: impl FnOnce(&Path) -> Options,
    crash: bool,
    ops: &[CfOp],
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut rocks = RocksDbOracle::open(&dir.path().join("rocksdb")).expect("open rocksdb");
    let opts = opts(&dir.path().join("aidb"));
    let mut ai = if crash {
        DbHarness::open_crashable(opts, FaultInjectionFs::new())
    } else {
        DbHarness::open(opts)
    }
    .expect("open aidb");
    let result = run_cf_pair(&mut ai, &mut rocks, ops);
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

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(128),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn families_defaults_on_disk(ops in cf_ops_strategy(200)) {
        differential_cf(|path| Options::new(path), false, &ops)?;
    }

    #[test]
    fn families_tiny_sizes_lz4(ops in cf_ops_strategy(200)) {
        differential_cf(|_| tiny(Compression::Lz4, 10), true, &ops)?;
    }

    #[test]
    fn families_tiny_sizes_two_levels(ops in cf_ops_strategy(200)) {
        differential_cf(|_| Options { num_levels: 2, ..tiny(Compression::Snappy, 0) }, true, &ops)?;
    }
}
