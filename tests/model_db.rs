//! The model suite against the engine, `aidb::DB`, under several option
//! presets: defaults on the real file system, and tiny sizes (so that every
//! case flushes and compacts many times) with each compression and with
//! bloom filters off, and with only two levels, on the in-memory file
//! system.

mod model;

use aidb::{Compression, Options};
use model::{cases, ops_strategy, run_ops, tiny, DbHarness};
use proptest::prelude::*;

fn run(opts: Options, ops: &[model::Op]) -> Result<(), TestCaseError> {
    let mut h = DbHarness::open(opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let result = run_ops(&mut h, ops);
    h.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    result.map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn db_with_defaults_on_disk(ops in ops_strategy(200)) {
        let dir = tempfile::tempdir().unwrap();
        run(Options::new(dir.path().join("db")), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn db_tiny_lz4(ops in ops_strategy(200)) {
        run(tiny(Compression::Lz4, 10), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn db_tiny_snappy_no_bloom(ops in ops_strategy(200)) {
        run(tiny(Compression::Snappy, 0), &ops)?;
    }

    #[test]
    fn db_tiny_uncompressed(ops in ops_strategy(200)) {
        run(tiny(Compression::None, 10), &ops)?;
    }

    /// Two levels: every compaction writes the last level, where entries
    /// lose their sequence numbers once no snapshot needs them and files
    /// are rewritten in place when a snapshot that held garbage goes.
    #[test]
    fn db_tiny_two_levels(ops in ops_strategy(200)) {
        run(Options { num_levels: 2, ..tiny(Compression::Lz4, 10) }, &ops)?;
    }
}
