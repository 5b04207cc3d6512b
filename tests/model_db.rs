//! The model suite against the engine, `aidb::DB`, under several option
//! presets: defaults on the real file system, and tiny sizes (so that every
//! case flushes and compacts many times) with each compression and with
//! bloom filters off, and with only two levels, on the in-memory file
//! system.

mod model;

use aidb::fs::FaultInjectionFs;
use aidb::{Compression, Options};
use model::{cases, cf_ops_strategy, ops_strategy, run_cf_ops, run_ops, tiny, CfOp, DbHarness};
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

    /// A TTL far longer than any case: every value and operand carries
    /// its write time through logs, tables and compactions, and reads
    /// must strip it.
    #[test]
    fn db_tiny_with_ttl(ops in ops_strategy(200)) {
        let ttl = Some(std::time::Duration::from_secs(365 * 24 * 3600));
        run(Options { ttl, ..tiny(Compression::Lz4, 10) }, &ops)?;
    }

    /// Two levels: every compaction writes the last level, where entries
    /// lose their sequence numbers once no snapshot needs them and files
    /// are rewritten in place when a snapshot that held garbage goes.
    #[test]
    fn db_tiny_two_levels(ops in ops_strategy(200)) {
        run(Options { num_levels: 2, ..tiny(Compression::Lz4, 10) }, &ops)?;
    }

    /// Dynamic level sizing: level 0 compacts straight into the deepest
    /// level that needs data, past empty levels, and the base level moves
    /// up as the data grows.
    #[test]
    fn db_tiny_dynamic_levels(ops in ops_strategy(200)) {
        run(
            Options {
                level_compaction_dynamic_level_bytes: true,
                ..tiny(Compression::Lz4, 10)
            },
            &ops,
        )?;
    }
}

/// Column families: the plain operations mixed with creating, dropping
/// and re-creating "a" and "b", reads and writes through each family (and
/// through a dropped family's handle), batches and snapshots across
/// families, flushes and compactions of one family, and reopening (some
/// naming families in `Options::column_families`, some after a simulated
/// crash).
fn run_cf(opts: Options, ops: &[CfOp]) -> Result<(), TestCaseError> {
    let h = DbHarness::open(opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
    cf_case(h, ops)
}

/// As `run_cf`, on the in-memory file system, where `CrashReopen` is a
/// simulated crash of the process.
fn run_cf_crashable(opts: Options, ops: &[CfOp]) -> Result<(), TestCaseError> {
    let h = DbHarness::open_crashable(opts, FaultInjectionFs::new())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    cf_case(h, ops)
}

fn cf_case(mut h: DbHarness, ops: &[CfOp]) -> Result<(), TestCaseError> {
    let result = run_cf_ops(&mut h, ops);
    h.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    result.map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn families_with_defaults_on_disk(ops in cf_ops_strategy(200)) {
        let dir = tempfile::tempdir().unwrap();
        run_cf(Options::new(dir.path().join("db")), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn families_tiny_lz4(ops in cf_ops_strategy(200)) {
        run_cf_crashable(tiny(Compression::Lz4, 10), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn families_tiny_two_levels(ops in cf_ops_strategy(200)) {
        run_cf_crashable(Options { num_levels: 2, ..tiny(Compression::Lz4, 10) }, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// Long sequences, so that every family flushes and compacts many
    /// times between reopens and crashes.
    #[test]
    fn families_tiny_snappy_no_bloom_long(ops in cf_ops_strategy(1000)) {
        run_cf_crashable(tiny(Compression::Snappy, 0), &ops)?;
    }
}

/// The snapshot reads the model suite leaves out against `MemoryBackend`
/// (which answers them differently: see `model_reference.rs`), pinned for
/// `DB`: through a snapshot, a family created after it is empty, and a
/// family dropped after it is an error, never its old data.
#[test]
fn snapshot_reads_across_a_family_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let db = aidb::DB::open(dir.path()).unwrap();
    let snap = db.snapshot();
    let b = db.create_column_family("b", Default::default()).unwrap();
    b.put("k", "v").unwrap();
    assert_eq!(snap.get_cf(&b, "k").unwrap(), None);
    assert_eq!(snap.iter_cf(&b).count(), 0);

    let a = db.create_column_family("a", Default::default()).unwrap();
    a.put("k", "v").unwrap();
    let snap = db.snapshot();
    db.drop_column_family("a").unwrap();
    assert!(matches!(
        snap.get_cf(&a, "k"),
        Err(aidb::Error::InvalidArgument(_))
    ));
    assert!(snap.iter_cf(&a).next().unwrap().is_err());
    // A family of the same name created since is empty in the snapshot.
    let a2 = db.create_column_family("a", Default::default()).unwrap();
    assert_eq!(snap.get_cf(&a2, "k").unwrap(), None);
    db.close().unwrap();
}

/// `CrashReopen` in the suite is a real crash: what was only in memtables
/// (of every family) comes back from the log.
#[test]
fn a_crash_reopen_replays_every_family_from_the_log() {
    use model::CfHarness;
    let mut h = DbHarness::open_crashable(Options::new("/db"), FaultInjectionFs::new()).unwrap();
    let a = h.create_cf("a").unwrap();
    a.put("k", "in a").unwrap();
    h.put_cf(&h.default_cf(), b"k", b"in default").unwrap();
    h.crash_reopen().unwrap();
    let a = h.cf("a").expect("family a after the crash");
    assert_eq!(a.get("k").unwrap(), Some(b"in a".to_vec()));
    assert_eq!(
        h.default_cf().get("k").unwrap(),
        Some(b"in default".to_vec())
    );
    assert_eq!(a.stats().flushes, 0);
    h.close().unwrap();
}

/// Transactions (`model/txn.rs`): several open at once, optimistic and
/// pessimistic, over two families, mixed with plain writes to their keys,
/// flushes, compactions, reopens and crashes, against the model of the
/// documented isolation.
fn run_txn(opts: Options, ops: &[model::TxnOp]) -> Result<(), TestCaseError> {
    let mut h = DbHarness::open_crashable(opts, FaultInjectionFs::new())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let result = model::run_txn_ops(&mut h, ops);
    h.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    result.map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn transactions_tiny_lz4(ops in model::txn_ops_strategy(200)) {
        run_txn(tiny(Compression::Lz4, 10), &ops)?;
    }

    #[test]
    fn transactions_tiny_two_levels_no_bloom(ops in model::txn_ops_strategy(200)) {
        run_txn(Options { num_levels: 2, ..tiny(Compression::Snappy, 0) }, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn transactions_with_defaults(ops in model::txn_ops_strategy(300)) {
        run_txn(Options::new("/db"), &ops)?;
    }
}
