//! The model suite against the engine, `aidb::DB`, under several option
//! presets: defaults on the real file system, and tiny sizes (so that every
//! case flushes and compacts many times) with each compression and with
//! bloom filters off, on the in-memory file system.

mod model;

use aidb::fs::FaultInjectionFs;
use aidb::{Compression, Options, StorageBackend, DB};
use model::{cases, ops_strategy, run_ops, Harness};
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

struct DbHarness {
    db: Option<DB>,
    opts: Options,
    _dir: Option<tempfile::TempDir>,
}

impl DbHarness {
    fn new(opts: Options, dir: Option<tempfile::TempDir>) -> DbHarness {
        let db = DB::open_with(opts.clone()).expect("open");
        DbHarness {
            db: Some(db),
            opts,
            _dir: dir,
        }
    }

    fn db(&self) -> &DB {
        self.db.as_ref().expect("open")
    }
}

impl Harness for DbHarness {
    fn backend(&self) -> &dyn StorageBackend {
        self.db()
    }
    fn flush(&mut self) -> aidb::Result<()> {
        self.db().flush()
    }
    fn compact(&mut self) -> aidb::Result<()> {
        self.db().compact_range(..)
    }
    fn reopen(&mut self) -> aidb::Result<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        self.db = Some(DB::open_with(self.opts.clone())?);
        Ok(())
    }
}

/// Tiny sizes: 4 KiB write buffer, 8 KiB tables, 32 KiB level base.
fn tiny(compression: Compression, bloom_bits_per_key: u32) -> Options {
    Options {
        fs: Arc::new(FaultInjectionFs::new()),
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        block_restart_interval: 4,
        compression,
        bloom_bits_per_key,
        ..Options::new(Path::new("/db"))
    }
}

fn run(
    opts: Options,
    dir: Option<tempfile::TempDir>,
    ops: &[model::Op],
) -> Result<(), TestCaseError> {
    let mut h = DbHarness::new(opts, dir);
    let result = run_ops(&mut h, ops);
    if let Some(db) = h.db.take() {
        db.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    result.map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn db_with_defaults_on_disk(ops in ops_strategy(200)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::new(dir.path().join("db"));
        run(opts, Some(dir), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn db_tiny_lz4(ops in ops_strategy(200)) {
        run(tiny(Compression::Lz4, 10), None, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn db_tiny_snappy_no_bloom(ops in ops_strategy(200)) {
        run(tiny(Compression::Snappy, 0), None, &ops)?;
    }

    #[test]
    fn db_tiny_uncompressed(ops in ops_strategy(200)) {
        run(tiny(Compression::None, 10), None, &ops)?;
    }
}
