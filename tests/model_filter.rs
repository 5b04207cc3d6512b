//! Model suite for the compaction filter: random sequences of puts,
//! deletes, merges, range deletes, flushes, compactions, snapshots and
//! reopens, with a filter that removes every value ending in byte 0.
//!
//! When a compaction runs is up to the engine, so the model gives each read
//! the set of answers the documented rules allow and checks the engine's
//! answer is one of them:
//! - a key's merge chain (base value, then operands) may have been folded
//!   and filtered at any point where the value so far ends in 0 (values
//!   and operands are single bytes, so that depends only on one byte);
//!   every such point removes everything up to it;
//! - once a read has seen the chain cut at some point, it stays cut;
//! - a snapshot never changes its answer for a key: the filter is never
//!   applied to what a live snapshot can see.
//!
//! `AIDB_MODEL_CASES` sets the number of cases (default 64).

mod common;

use aidb::{CompactionFilter, DbSnapshot, FilterDecision, Options, DB};
use common::{join, Join};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Removes every value whose last byte is 0.
struct DropZero;

impl CompactionFilter for DropZero {
    fn filter(&self, _level: usize, _key: &[u8], value: &[u8]) -> FilterDecision {
        if value.last() == Some(&0) {
            FilterDecision::Remove
        } else {
            FilterDecision::Keep
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Merge(u8, u8),
    DeleteRange(u8, u8),
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

/// Values are 0..4, so a quarter end in 0.
fn op_strategy() -> impl Strategy<Value = Op> {
    let k = 0u8..12;
    prop_oneof![
        6 => (k.clone(), 0u8..4).prop_map(|(k, v)| Op::Put(k, v)),
        2 => k.clone().prop_map(Op::Delete),
        6 => (k.clone(), 0u8..4).prop_map(|(k, v)| Op::Merge(k, v)),
        1 => (k.clone(), k.clone()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        3 => k.clone().prop_map(Op::Get),
        1 => any::<bool>().prop_map(Op::Scan),
        1 => Just(Op::Snapshot),
        2 => k.prop_map(Op::SnapshotGet),
        1 => any::<bool>().prop_map(Op::SnapshotScan),
        1 => Just(Op::DropSnapshot),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k:02}").into_bytes()
}

/// A key's chain: the base value (if the newest put is still in it) and
/// the operands merged since, one byte each.
#[derive(Clone, Default, Debug)]
struct Chain {
    base: Option<u8>,
    ops: Vec<u8>,
}

impl Chain {
    /// Every answer a read may give, each with the operands it keeps: the
    /// whole chain, and the chain cut after each point whose value ends in
    /// 0 (the base, or an operand).
    fn answers(&self) -> Vec<(Option<Vec<u8>>, usize)> {
        let whole = match (self.base, self.ops.is_empty()) {
            (None, true) => None,
            _ => {
                let base = self.base.map(|b| vec![b]);
                let ops: Vec<Vec<u8>> = self.ops.iter().map(|&o| vec![o]).collect();
                Some(join(base.as_deref(), ops.iter().map(Vec::as_slice)))
            }
        };
        let mut out = vec![(whole, 0)];
        if self.base == Some(0) {
            out.push((self.suffix(0), 0));
        }
        for (i, &o) in self.ops.iter().enumerate() {
            if o == 0 {
                out.push((self.suffix(i + 1), i + 1));
            }
        }
        out
    }

    fn suffix(&self, from: usize) -> Option<Vec<u8>> {
        let ops: Vec<Vec<u8>> = self.ops[from..].iter().map(|&o| vec![o]).collect();
        (!ops.is_empty()).then(|| join(None, ops.iter().map(Vec::as_slice)))
    }

    /// Checks `got` is allowed; a cut it shows is permanent from now on.
    fn observe(&mut self, got: &Option<Vec<u8>>) -> Result<(), String> {
        let answers = self.answers();
        let Some(&(_, cut)) = answers.iter().find(|(a, _)| a == got) else {
            return Err(format!("got {got:?}, allowed {answers:?}"));
        };
        if answers[0].0 != *got {
            *self = Chain {
                base: None,
                ops: self.ops[cut..].to_vec(),
            };
        }
        Ok(())
    }
}

type Model = BTreeMap<Vec<u8>, Chain>;

/// A snapshot: the model as it was, and every answer it has given.
struct Snap {
    db: DbSnapshot,
    model: Model,
    seen: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Snap {
    fn check(&mut self, k: &[u8], got: Option<Vec<u8>>) -> Result<(), String> {
        if let Some(before) = self.seen.get(k) {
            if *before != got {
                return Err(format!("snapshot answered {before:?}, now {got:?}"));
            }
            return Ok(());
        }
        let chain = self.model.entry(k.to_vec()).or_default();
        chain.observe(&got)?;
        self.seen.insert(k.to_vec(), got);
        Ok(())
    }
}

/// Checks a whole scan against the model, key by key (keys the engine
/// leaves out must be allowed to be absent).
fn check_scan(
    items: aidb::Result<Vec<(Vec<u8>, Vec<u8>)>>,
    keys: &[Vec<u8>],
    mut check: impl FnMut(&[u8], Option<Vec<u8>>) -> Result<(), String>,
) -> Result<(), String> {
    let items = items.map_err(|e| e.to_string())?;
    if !items.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err("scan out of order".into());
    }
    let mut got: BTreeMap<Vec<u8>, Vec<u8>> = items.into_iter().collect();
    for k in keys {
        check(k, got.remove(k))?;
    }
    match got.keys().next() {
        Some(extra) => Err(format!("scan returned unknown key {extra:?}")),
        None => Ok(()),
    }
}

fn scan(iter: aidb::DbIterator, reverse: bool) -> aidb::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if reverse {
        let mut v: Vec<_> = iter.rev().collect::<aidb::Result<_>>()?;
        v.reverse();
        Ok(v)
    } else {
        iter.collect()
    }
}

fn options(dir: &Path) -> Options {
    Options {
        write_buffer_size: 4 << 10,
        target_file_size: 4 << 10,
        max_bytes_for_level_base: 8 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        num_levels: 3,
        merge_operator: Some(Arc::new(Join)),
        compaction_filter: Some(Arc::new(DropZero)),
        ..Options::new(dir)
    }
}

fn run(ops: &[Op]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Some(DB::open_with(options(dir.path())).unwrap());
    let mut model = Model::new();
    let mut snap: Option<Snap> = None;
    let all_keys: Vec<Vec<u8>> = (0..12).map(key).collect();
    for (i, op) in ops.iter().enumerate() {
        let d = db.as_ref().unwrap();
        let at = |e: String| format!("op {i} {op:?}: {e}");
        match op {
            Op::Put(k, v) => {
                d.put(key(*k), [*v]).unwrap();
                model.insert(
                    key(*k),
                    Chain {
                        base: Some(*v),
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
                model.entry(key(*k)).or_default().ops.push(*v);
            }
            Op::DeleteRange(a, b) => {
                let (a, b) = (key(*a), key(*b));
                d.delete_range(a.clone()..b.clone()).unwrap();
                if a < b {
                    model.retain(|k, _| *k < a || *k >= b);
                }
            }
            Op::Flush => d.flush().unwrap(),
            Op::Compact => d.compact_range(..).unwrap(),
            Op::Get(k) => {
                let got = d.get(key(*k)).map_err(|e| at(e.to_string()))?;
                model
                    .entry(key(*k))
                    .or_default()
                    .observe(&got)
                    .map_err(at)?;
            }
            Op::Scan(reverse) => {
                check_scan(scan(d.iter(), *reverse), &all_keys, |k, got| {
                    model.entry(k.to_vec()).or_default().observe(&got)
                })
                .map_err(at)?;
            }
            Op::Snapshot => {
                snap = Some(Snap {
                    db: d.snapshot(),
                    model: model.clone(),
                    seen: BTreeMap::new(),
                })
            }
            Op::SnapshotGet(k) => {
                if let Some(s) = &mut snap {
                    let got = s.db.get(key(*k)).map_err(|e| at(e.to_string()))?;
                    s.check(&key(*k), got).map_err(at)?;
                }
            }
            Op::SnapshotScan(reverse) => {
                if let Some(s) = &mut snap {
                    let items = scan(s.db.iter(), *reverse);
                    check_scan(items, &all_keys, |k, got| s.check(k, got)).map_err(at)?;
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
    check_scan(scan(d.iter(), false), &all_keys, |k, got| {
        model.entry(k.to_vec()).or_default().observe(&got)
    })
    .map_err(|e| format!("after a full compaction: {e}"))
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
    fn compaction_filter_matches_the_model(ops in prop::collection::vec(op_strategy(), 1..300)) {
        run(&ops).map_err(TestCaseError::fail)?;
    }
}
