//! The column-family workload of the power-cut suite: batches spanning
//! families, creations, drops, a dropped name re-created, flushes and
//! compactions of single families, close and reopen.

use super::workload::{options, State};
use aidb::fs::FaultInjectionFs;
use aidb::{ColumnFamilyOptions, WriteBatch, WriteOptions, DB};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};

/// The families a workload can create (besides `default`); a dropped name
/// comes back later as a new, empty family.
pub const FAMILY_POOL: [&str; 3] = ["x", "y", "z"];
/// The generation of the default family (it is never created or dropped).
pub const DEFAULT_GEN: usize = usize::MAX;

#[derive(Debug, Clone)]
pub enum FamilyOp {
    /// Items are (family, key, value or `None` for a delete).
    Batch(Vec<(String, Vec<u8>, Option<Vec<u8>>)>, bool),
    Create(String),
    Drop(String),
    Flush(String),
    Compact(String),
    /// `close()`; always followed by `Open`.
    Close,
    Open,
}

/// A family and its generation, for messages.
pub fn describe(name: &str, gen: usize) -> String {
    if gen == DEFAULT_GEN {
        name.to_string()
    } else {
        format!("{name} (created by op {gen})")
    }
}

/// What every value written to generation `gen` of family `name` starts
/// with (a generation is the index of the op that created the family).
pub fn value_tag(name: &str, gen: usize) -> String {
    if gen == DEFAULT_GEN {
        format!("{name}@-:")
    } else {
        format!("{name}@{gen}:")
    }
}

/// Each family its own sizes, so that flushes and compactions come at
/// different moments in each.
pub fn pool_options(name: &str) -> ColumnFamilyOptions {
    let tiny = ColumnFamilyOptions {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Default::default()
    };
    match name {
        "x" => tiny,
        "y" => ColumnFamilyOptions {
            write_buffer_size: 8 << 10,
            level0_file_num_compaction_trigger: 3,
            block_size: 1024,
            ..tiny
        },
        _ => ColumnFamilyOptions {
            target_file_size: 4 << 10,
            max_bytes_for_level_base: 16 << 10,
            num_levels: 3,
            block_size: 256,
            ..tiny
        },
    }
}

/// A deterministic workload over the default family and `FAMILY_POOL`.
/// Values name their family and the op that created it, so data shown by
/// the wrong family, or by a re-created one, cannot pass for its own.
pub fn family_workload(n: usize, seed: u64) -> Vec<FamilyOp> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut ops = vec![FamilyOp::Create("x".into()), FamilyOp::Create("y".into())];
    // Live family → index of the op that created it.
    let mut live: BTreeMap<String, usize> = BTreeMap::from([
        ("default".into(), DEFAULT_GEN),
        ("x".into(), 0),
        ("y".into(), 1),
    ]);
    while ops.len() < n {
        let i = ops.len();
        let names: Vec<String> = live.keys().cloned().collect();
        let any = names[rng.gen_range(0..names.len())].clone();
        let op = match rng.gen_range(0..40) {
            0..=1 => {
                let missing: Vec<&str> = FAMILY_POOL
                    .iter()
                    .copied()
                    .filter(|n| !live.contains_key(*n))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let name = missing[rng.gen_range(0..missing.len())].to_string();
                live.insert(name.clone(), i);
                FamilyOp::Create(name)
            }
            2 => {
                if any == "default" {
                    continue;
                }
                live.remove(&any);
                FamilyOp::Drop(any)
            }
            3..=4 => FamilyOp::Flush(any),
            5..=6 => FamilyOp::Compact(any),
            7 => {
                ops.push(FamilyOp::Close);
                FamilyOp::Open
            }
            _ => {
                let items = (0..rng.gen_range(2..7))
                    .map(|j| {
                        let name = names[rng.gen_range(0..names.len())].clone();
                        let k = format!("k{:02}", rng.gen_range(0..60)).into_bytes();
                        let v = (rng.gen_range(0..5) > 0).then(|| {
                            let mut v = value_tag(&name, live[&name]);
                            v += &format!("{i}.{j}-").repeat(rng.gen_range(1..30));
                            v.into_bytes()
                        });
                        (name, k, v)
                    })
                    .collect();
                FamilyOp::Batch(items, rng.gen_range(0..4) == 0)
            }
        };
        ops.push(op);
    }
    ops
}

/// The generations the ops of a workload act on: for each op, the
/// generation (index of the creating op) of every family it names.
pub fn generations(ops: &[FamilyOp]) -> Vec<Vec<usize>> {
    let mut live: HashMap<String, usize> = HashMap::from([("default".into(), DEFAULT_GEN)]);
    ops.iter()
        .enumerate()
        .map(|(i, op)| match op {
            FamilyOp::Batch(items, _) => items.iter().map(|(n, _, _)| live[n]).collect(),
            FamilyOp::Create(n) => {
                live.insert(n.clone(), i);
                vec![i]
            }
            FamilyOp::Drop(n) | FamilyOp::Flush(n) | FamilyOp::Compact(n) => {
                let g = live[n];
                if matches!(op, FamilyOp::Drop(_)) {
                    live.remove(n);
                }
                vec![g]
            }
            FamilyOp::Close | FamilyOp::Open => vec![],
        })
        .collect()
}

pub fn family(db: &DB, name: &str) -> aidb::ColumnFamily {
    db.column_family(name)
        .unwrap_or_else(|| panic!("family {name} missing"))
}

pub fn run_family_op(
    db: &mut Option<DB>,
    fs: &FaultInjectionFs,
    op: &FamilyOp,
) -> aidb::Result<()> {
    match op {
        FamilyOp::Close => return db.take().expect("open database").close(),
        FamilyOp::Open => {
            assert!(db.is_none(), "Open without Close");
            *db = Some(DB::open_with(options(fs))?);
            return Ok(());
        }
        _ => {}
    }
    let d = db.as_ref().expect("open database");
    match op {
        FamilyOp::Batch(items, sync) => {
            let mut b = WriteBatch::new();
            for (name, k, v) in items {
                let cf = family(d, name);
                match v {
                    Some(v) => b.put_cf(&cf, k, v),
                    None => b.delete_cf(&cf, k),
                };
            }
            d.write_opt(b, &WriteOptions { sync: *sync })
        }
        FamilyOp::Create(name) => d.create_column_family(name, pool_options(name)).map(|_| ()),
        FamilyOp::Drop(name) => d.drop_column_family(name),
        // The default family through `DB`'s own methods.
        FamilyOp::Flush(name) if name == "default" => d.flush(),
        FamilyOp::Compact(name) if name == "default" => d.compact_range(..),
        FamilyOp::Flush(name) => family(d, name).flush(),
        FamilyOp::Compact(name) => family(d, name).compact_range(..),
        FamilyOp::Close | FamilyOp::Open => unreachable!(),
    }
}

/// The contents of every generation after the batches among `ops[..m]`.
pub fn family_states(ops: &[FamilyOp], gens: &[Vec<usize>], m: usize) -> HashMap<usize, State> {
    let mut states: HashMap<usize, State> = HashMap::new();
    for (op, gens) in ops.iter().zip(gens).take(m) {
        if let FamilyOp::Batch(items, _) = op {
            for ((_, k, v), g) in items.iter().zip(gens) {
                let state = states.entry(*g).or_default();
                match v {
                    Some(v) => state.insert(k.clone(), v.clone()),
                    None => state.remove(k),
                };
            }
        }
    }
    states
}

/// The live families at the end of a workload, with their generations.
pub fn generations_live(ops: &[FamilyOp]) -> BTreeMap<String, usize> {
    let mut live = BTreeMap::from([("default".to_string(), DEFAULT_GEN)]);
    for (i, op) in ops.iter().enumerate() {
        match op {
            FamilyOp::Create(n) => {
                live.insert(n.clone(), i);
            }
            FamilyOp::Drop(n) => {
                live.remove(n);
            }
            _ => {}
        }
    }
    live
}
