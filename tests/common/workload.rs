//! The workload of the power-cut, I/O-error and bit-flip suites: synced
//! and unsynced batches of puts and deletes with flushes and compactions,
//! on tiny sizes so that it flushes and compacts often.

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{Options, WriteBatch, WriteOptions, DB};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

pub fn options(fs: &FaultInjectionFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Options::new("/db")
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>, bool),
    Flush,
    Compact,
}

/// A deterministic workload: synced and unsynced batches of puts and
/// deletes, with flushes and compactions in between.
pub fn workload(n: usize, seed: u64) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| match rng.gen_range(0..20) {
            0 => Op::Flush,
            1 => Op::Compact,
            _ => {
                let items = (0..rng.gen_range(1..5))
                    .map(|j| {
                        let k = format!("k{:03}", rng.gen_range(0..120)).into_bytes();
                        let v = (rng.gen_range(0..5) > 0).then(|| {
                            format!("v{i}.{j}-")
                                .repeat(rng.gen_range(1..30))
                                .into_bytes()
                        });
                        (k, v)
                    })
                    .collect();
                Op::Batch(items, rng.gen_range(0..4) == 0)
            }
        })
        .collect()
}

pub fn apply(state: &mut State, op: &Op) {
    if let Op::Batch(items, _) = op {
        for (k, v) in items {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
}

pub fn run(db: &DB, op: &Op) -> aidb::Result<()> {
    match op {
        Op::Batch(items, sync) => {
            let mut b = WriteBatch::new();
            for (k, v) in items {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                };
            }
            db.write_opt(b, &WriteOptions { sync: *sync })
        }
        Op::Flush => db.flush(),
        Op::Compact => db.compact_range(..),
    }
}

pub fn contents(db: &DB) -> aidb::Result<State> {
    db.iter().collect()
}

/// Files of the database, for checking that no orphans remain.
pub fn check_no_orphans(fs: &FaultInjectionFs, db: &DB, what: &str) {
    db.wait_for_idle().unwrap();
    let names = fs.list(Path::new("/db")).unwrap();
    let count = |suffix: &str| names.iter().filter(|n| n.ends_with(suffix)).count();
    // Every family's tables (only the default family's where no other
    // exists).
    let listed: usize = db
        .column_family_names()
        .iter()
        .map(|name| {
            let cf = db.column_family(name).expect("listed family");
            cf.stats().levels.iter().map(|l| l.files).sum::<usize>()
        })
        .sum();
    assert_eq!(count(".sst"), listed, "{what}: orphan tables in {names:?}");
    assert_eq!(count(".log"), 1, "{what}: {names:?}");
    assert_eq!(count(".tmp"), 0, "{what}: {names:?}");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("MANIFEST-")).count(),
        1,
        "{what}: {names:?}"
    );
}

/// Reopens a file system a power cut left and checks that the database
/// equals the effect of `ops[..m]` for some `m` in `durable..=issued`.
pub fn check_prefix(fs: &FaultInjectionFs, ops: &[Op], durable: usize, issued: usize, what: &str) {
    let db = DB::open_with(options(fs)).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    let got = contents(&db).unwrap_or_else(|e| panic!("{what}: read failed: {e}"));
    // The state after `ops[..m]`, for m = 0, 1, … up to `issued`.
    let mut state = State::new();
    let mut matched = durable == 0 && state == got;
    for (i, op) in ops.iter().enumerate().take(issued) {
        if matched {
            break;
        }
        apply(&mut state, op);
        matched = i + 1 >= durable && state == got;
    }
    assert!(
        matched,
        "{what}: recovered state is no prefix of the {issued} issued ops (at least {durable} durable)"
    );
    db.close()
        .unwrap_or_else(|e| panic!("{what}: close failed: {e}"));
}
