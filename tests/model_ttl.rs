//! Model suite for TTL: random sequences of puts, deletes, merges, range
//! deletes, clock steps, flushes, compactions, snapshots and reopens
//! against a model of the documented expiry rules (`src/ttl.rs`): a value
//! older than the TTL reads as deleted, an operand as never written, each
//! by its own write time; snapshots see expiry too. The clock is fixed
//! through `aidb::internals::set_clock`, so expiry is exact; it only moves
//! forward (a clock moving back is documented as not exact).
//!
//! The clock is process-wide, so this binary holds this one test.
//! `AIDB_MODEL_CASES` sets the number of cases (default 64).

mod common;

use aidb::{DbSnapshot, Options, DB};
use common::{join, Join};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const TTL: u64 = 5;
const START: u64 = 1_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Merge(u8, u8),
    DeleteRange(u8, u8),
    /// Moves the clock forward by this many seconds.
    Tick(u8),
    Flush,
    Compact,
    Get(u8),
    Scan(bool),
    Snapshot,
    SnapshotGet(u8),
    SnapshotScan(bool),
    DropSnapshot,
    Reopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let k = 0u8..16;
    prop_oneof![
        6 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => k.clone().prop_map(Op::Delete),
        6 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Merge(k, v)),
        1 => (k.clone(), k.clone()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        3 => (0u8..4).prop_map(Op::Tick),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        3 => k.clone().prop_map(Op::Get),
        1 => any::<bool>().prop_map(Op::Scan),
        1 => Just(Op::Snapshot),
        1 => k.prop_map(Op::SnapshotGet),
        1 => any::<bool>().prop_map(Op::SnapshotScan),
        1 => Just(Op::DropSnapshot),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k:02}").into_bytes()
}

/// A key's history as far as reads can tell: the newest put (with its
/// write time) and the operands merged since, each with its own.
#[derive(Clone, Default, Debug)]
struct Entry {
    base: Option<(Vec<u8>, u64)>,
    ops: Vec<(Vec<u8>, u64)>,
}

type Model = BTreeMap<Vec<u8>, Entry>;

fn alive(time: u64, now: u64) -> bool {
    now.saturating_sub(time) <= TTL
}

fn read(e: &Entry, now: u64) -> Option<Vec<u8>> {
    let base = e.base.as_ref().filter(|(_, t)| alive(*t, now));
    let ops: Vec<&[u8]> = e
        .ops
        .iter()
        .filter(|(_, t)| alive(*t, now))
        .map(|(o, _)| o.as_slice())
        .collect();
    if ops.is_empty() {
        return base.map(|(v, _)| v.clone());
    }
    Some(join(base.map(|(v, _)| v.as_slice()), ops.into_iter()))
}

fn scan(m: &Model, now: u64, reverse: bool) -> Pairs {
    let mut out: Vec<_> = m
        .iter()
        .filter_map(|(k, e)| read(e, now).map(|v| (k.clone(), v)))
        .collect();
    if reverse {
        out.reverse();
    }
    out
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn db_scan(iter: aidb::DbIterator, reverse: bool) -> Result<Pairs, String> {
    let items: Result<Vec<_>, _> = if reverse {
        iter.rev().collect()
    } else {
        iter.collect()
    };
    items.map_err(|e| e.to_string())
}

fn options(dir: &Path) -> Options {
    Options {
        write_buffer_size: 4 << 10,
        target_file_size: 4 << 10,
        max_bytes_for_level_base: 8 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        num_levels: 3,
        ttl: Some(Duration::from_secs(TTL)),
        merge_operator: Some(Arc::new(Join)),
        ..Options::new(dir)
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut now = START;
    aidb::internals::set_clock(Some(now));
    let mut db = Some(DB::open_with(options(dir.path())).unwrap());
    let mut model = Model::new();
    let mut snap: Option<(DbSnapshot, Model)> = None;
    for (i, op) in ops.iter().enumerate() {
        let d = db.as_ref().unwrap();
        let at = format!("op {i} {op:?} at clock +{}", now - START);
        match op {
            Op::Put(k, v) => {
                d.put(key(*k), [*v]).unwrap();
                model.insert(
                    key(*k),
                    Entry {
                        base: Some((vec![*v], now)),
                        ops: Vec::new(),
                    },
                );
            }
            Op::Delete(k) => {
                d.delete(key(*k)).unwrap();
                model.remove(&key(*k));
            }
            Op::Merge(k, v) => {
                d.merge(key(*k), [*v]).unwrap();
                model.entry(key(*k)).or_default().ops.push((vec![*v], now));
            }
            Op::DeleteRange(a, b) => {
                let (a, b) = (key(*a), key(*b));
                d.delete_range(a.clone()..b.clone()).unwrap();
                if a < b {
                    let doomed: Vec<_> = model.range(a..b).map(|(k, _)| k.clone()).collect();
                    for k in doomed {
                        model.remove(&k);
                    }
                }
            }
            Op::Tick(s) => {
                now += u64::from(*s);
                aidb::internals::set_clock(Some(now));
            }
            Op::Flush => d.flush().unwrap(),
            Op::Compact => d.compact_range(..).unwrap(),
            Op::Get(k) => {
                let got = d.get(key(*k)).map_err(|e| e.to_string());
                let want = model.get(&key(*k)).and_then(|e| read(e, now));
                prop_assert_eq!(got, Ok(want), "{}", at);
            }
            Op::Scan(reverse) => {
                let got = db_scan(d.iter(), *reverse);
                prop_assert_eq!(got, Ok(scan(&model, now, *reverse)), "{}", at);
            }
            Op::Snapshot => snap = Some((d.snapshot(), model.clone())),
            Op::SnapshotGet(k) => {
                if let Some((s, m)) = &snap {
                    let got = s.get(key(*k)).map_err(|e| e.to_string());
                    let want = m.get(&key(*k)).and_then(|e| read(e, now));
                    prop_assert_eq!(got, Ok(want), "{}", at);
                }
            }
            Op::SnapshotScan(reverse) => {
                if let Some((s, m)) = &snap {
                    let got = db_scan(s.iter(), *reverse);
                    prop_assert_eq!(got, Ok(scan(m, now, *reverse)), "{}", at);
                }
            }
            Op::DropSnapshot => snap = None,
            Op::Reopen => {
                snap = None;
                db.take().unwrap().close().unwrap();
                db = Some(DB::open_with(options(dir.path())).unwrap());
            }
        }
    }
    let d = db.as_ref().unwrap();
    d.compact_range(..).unwrap();
    prop_assert_eq!(db_scan(d.iter(), false), Ok(scan(&model, now, false)));
    Ok(())
}

fn cases() -> u32 {
    std::env::var("AIDB_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn ttl_matches_the_model(ops in prop::collection::vec(op_strategy(), 1..300)) {
        run(&ops)?;
    }
}
