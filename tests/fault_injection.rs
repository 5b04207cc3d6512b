//! Crash safety under the fault-injecting file system: power cuts at every
//! file-system call (also in a workload that creates, drops and re-creates
//! column families), I/O errors during flush, compaction, log rotation and
//! MANIFEST updates, and single bit flips in the files of a closed database.

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{ColumnFamilyOptions, Error, Options, WriteBatch, WriteOptions, DB};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn options(fs: &FaultInjectionFs) -> Options {
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
enum Op {
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>, bool),
    Flush,
    Compact,
}

/// A deterministic workload: synced and unsynced batches of puts and
/// deletes, with flushes and compactions in between.
fn workload(n: usize, seed: u64) -> Vec<Op> {
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

fn apply(state: &mut State, op: &Op) {
    if let Op::Batch(items, _) = op {
        for (k, v) in items {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
}

fn run(db: &DB, op: &Op) -> aidb::Result<()> {
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

fn contents(db: &DB) -> aidb::Result<State> {
    db.iter().collect()
}

/// Runs the workload with the file system dying after `k` calls, cuts the
/// power, reopens, and checks the recovered state.
fn crash_at(ops: &[Op], k: u64) {
    let fs = FaultInjectionFs::new();
    let db = match DB::open_with(options(&fs)) {
        Ok(db) => db,
        Err(e) => panic!("first open failed: {e}"),
    };
    fs.crash_after(k);
    // `durable` counts the ops whose effects must survive: everything up to
    // an acknowledged synced write, flush or compaction.
    let mut issued = 0;
    let mut durable = 0;
    for op in ops {
        issued += 1;
        if run(&db, op).is_err() {
            break;
        }
        let is_sync_point = match op {
            Op::Batch(_, sync) => *sync,
            Op::Flush | Op::Compact => true,
        };
        if is_sync_point {
            durable = issued;
        }
    }
    fs.power_cut();
    drop(db); // the dead machine's handle: all its calls now fail

    let db = DB::open_with(options(&fs))
        .unwrap_or_else(|e| panic!("crash at call {k}: reopen failed: {e}"));
    let got = contents(&db).unwrap_or_else(|e| panic!("crash at call {k}: read failed: {e}"));
    let mut state = State::new();
    let mut matched = None;
    for (i, op) in ops.iter().enumerate().take(issued) {
        if i >= durable && state == got {
            matched = Some(i);
            break;
        }
        apply(&mut state, op);
    }
    if matched.is_none() && state == got {
        matched = Some(issued);
    }
    assert!(
        matched.is_some(),
        "crash at call {k}: recovered state is no prefix of the {issued} issued ops (at least {durable} durable)"
    );
    db.close().unwrap();
}

#[test]
fn power_cut_at_every_file_system_call() {
    let ops = workload(150, 11);
    // How many calls the whole workload makes.
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    let start = fs.call_count();
    for op in &ops {
        run(&db, op).unwrap();
    }
    let total = fs.call_count() - start;
    drop(db);
    let step = std::env::var("AIDB_CRASH_STEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    println!("workload makes {total} file-system calls; cutting power after each {step}");
    for k in (0..=total + 5).step_by(step) {
        crash_at(&ops, k);
    }
}

/// Files of the database, for checking that no orphans remain.
fn check_no_orphans(fs: &FaultInjectionFs, db: &DB, what: &str) {
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

/// Where a fault is injected: the call, the files it hits, and whether the
/// fault should hit a compaction (everything flushed first, then
/// `compact_range`) rather than the ordinary write path.
struct FaultPoint {
    what: &'static str,
    op: FsOp,
    path: Option<&'static str>,
    during_compaction: bool,
}

const FAULT_POINTS: &[FaultPoint] = &[
    FaultPoint {
        what: "flush: table write",
        op: FsOp::Append,
        path: Some(".sst"),
        during_compaction: false,
    },
    FaultPoint {
        what: "flush: table fsync",
        op: FsOp::Sync,
        path: Some(".sst"),
        during_compaction: false,
    },
    FaultPoint {
        what: "flush: table creation",
        op: FsOp::Create,
        path: Some(".sst"),
        during_compaction: false,
    },
    FaultPoint {
        what: "compaction: table write",
        op: FsOp::Append,
        path: Some(".sst"),
        during_compaction: true,
    },
    FaultPoint {
        what: "compaction: table fsync",
        op: FsOp::Sync,
        path: Some(".sst"),
        during_compaction: true,
    },
    FaultPoint {
        what: "compaction: table read",
        op: FsOp::Read,
        path: Some(".sst"),
        during_compaction: true,
    },
    FaultPoint {
        what: "compaction: MANIFEST write",
        op: FsOp::Append,
        path: Some("MANIFEST"),
        during_compaction: true,
    },
    FaultPoint {
        what: "MANIFEST write",
        op: FsOp::Append,
        path: Some("MANIFEST"),
        during_compaction: false,
    },
    FaultPoint {
        what: "MANIFEST fsync",
        op: FsOp::Sync,
        path: Some("MANIFEST"),
        during_compaction: false,
    },
    FaultPoint {
        what: "log write",
        op: FsOp::Append,
        path: Some(".log"),
        during_compaction: false,
    },
    FaultPoint {
        what: "log fsync",
        op: FsOp::Sync,
        path: Some(".log"),
        during_compaction: false,
    },
    FaultPoint {
        what: "log rotation: log creation",
        op: FsOp::Create,
        path: Some(".log"),
        during_compaction: false,
    },
    FaultPoint {
        what: "directory fsync",
        op: FsOp::SyncDir,
        path: None,
        during_compaction: false,
    },
    FaultPoint {
        what: "reads",
        op: FsOp::Read,
        path: Some(".sst"),
        during_compaction: false,
    },
];

#[test]
fn io_errors_stop_writes_keep_reads_and_lose_nothing() {
    for point in FAULT_POINTS {
        for kind in [FaultKind::Eio, FaultKind::Enospc] {
            fault_case(point, kind);
        }
    }
}

fn fault_case(point: &FaultPoint, kind: FaultKind) {
    let what = format!("{} ({kind:?})", point.what);
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    let mut acked = State::new();
    // The write that failed: it may or may not survive (it was never
    // acknowledged, but its log record may have reached the file).
    let mut failed: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut put = |db: &DB, i: usize| -> aidb::Result<()> {
        let (k, v) = (
            format!("key{:04}", i % 700).into_bytes(),
            vec![b'a' + (i % 26) as u8; 60],
        );
        failed = Some((k.clone(), v.clone()));
        db.write_opt(
            {
                let mut b = WriteBatch::new();
                b.put(&k, &v);
                b
            },
            &WriteOptions {
                sync: i.is_multiple_of(5),
            },
        )?;
        acked.insert(k, v);
        failed = None;
        Ok(())
    };
    for i in 0..300 {
        put(&db, i).unwrap();
    }
    db.flush().unwrap();
    let first_error = if point.during_compaction {
        fs.inject(point.op, kind, point.path, 0, None);
        db.compact_range(..).err()
    } else {
        fs.inject(point.op, kind, point.path, 0, None);
        (300..3000).find_map(|i| {
            put(&db, i)
                .and_then(|_| {
                    if point.op == FsOp::Read {
                        db.get(format!("key{:04}", i % 300)).map(|_| ())
                    } else {
                        Ok(())
                    }
                })
                .err()
        })
    };
    let first_error = first_error.unwrap_or_else(|| panic!("{what}: the fault never surfaced"));
    assert!(
        matches!(first_error, Error::Io { .. } | Error::ReadOnly { .. }),
        "{what}: unexpected error {first_error:?}"
    );
    if point.op != FsOp::Read {
        // Writes are refused from now on; reads of what is in memory or in
        // readable tables go on.
        assert!(
            matches!(db.put("more", "x"), Err(Error::ReadOnly { .. })),
            "{what}: writes still accepted"
        );
        for (k, v) in acked.iter().step_by(37) {
            assert_eq!(
                db.get(k).unwrap().as_ref(),
                Some(v),
                "{what}: read after the fault"
            );
        }
    }
    fs.clear_faults();
    drop(db);
    let db = DB::open_with(options(&fs)).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    let got = contents(&db).unwrap();
    let mut with_failed = acked.clone();
    if let Some((k, v)) = failed {
        with_failed.insert(k, v);
    }
    assert!(
        got == acked || got == with_failed,
        "{what}: acknowledged data lost or changed after reopen"
    );
    check_no_orphans(&fs, &db, &what);
    db.put("after", "recovery").unwrap();
}

/// Copies every file of `/db` from one file system into a fresh one.
fn clone_fs(files: &[(PathBuf, Vec<u8>)]) -> FaultInjectionFs {
    let fs = FaultInjectionFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    for (p, data) in files {
        let mut f = fs.create(p).unwrap();
        f.append(data).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new("/db")).unwrap();
    fs
}

#[test]
fn a_flipped_bit_in_any_file_is_detected_never_a_wrong_answer() {
    let fs = FaultInjectionFs::new();
    let mut model = State::new();
    {
        let db = DB::open_with(options(&fs)).unwrap();
        for (i, op) in workload(400, 5).iter().enumerate() {
            run(&db, op).unwrap();
            apply(&mut model, op);
            if i == 380 {
                db.flush().unwrap();
            }
        }
        db.close().unwrap();
    }
    let files: Vec<(PathBuf, Vec<u8>)> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n != "LOCK")
        .map(|n| {
            let p = Path::new("/db").join(n);
            let d = fs.read_all(&p).unwrap();
            (p, d)
        })
        .collect();
    let flips: usize = std::env::var("AIDB_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut detected = 0;
    for _ in 0..flips {
        let (path, data) = &files[rng.gen_range(0..files.len())];
        if data.is_empty() {
            continue;
        }
        let offset = rng.gen_range(0..data.len());
        let bit = 1u8 << rng.gen_range(0..8);
        let mut damaged: Vec<(PathBuf, Vec<u8>)> = files.clone();
        for (p, d) in &mut damaged {
            if p == path {
                d[offset] ^= bit;
            }
        }
        let fs = clone_fs(&damaged);
        let what = format!("bit {bit:#04x} at {}:{offset}", path.display());
        let db = match DB::open_with(options(&fs)) {
            Ok(db) => db,
            Err(Error::Corruption { file, .. }) => {
                // A damaged CURRENT may name a MANIFEST that does not exist;
                // the error then names that missing file.
                let dangling =
                    path.ends_with("CURRENT") && file.to_string_lossy().contains("MANIFEST-");
                assert!(
                    &file == path || dangling,
                    "{what}: corruption blamed on {}",
                    file.display()
                );
                detected += 1;
                continue;
            }
            Err(e) => panic!("{what}: open failed with {e}"),
        };
        let mut saw_corruption = false;
        for (k, v) in &model {
            match db.get(k) {
                Ok(got) => assert_eq!(got.as_ref(), Some(v), "{what}: wrong answer"),
                Err(Error::Corruption { file, .. }) => {
                    assert_eq!(&file, path, "{what}");
                    saw_corruption = true;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        match contents(&db) {
            Ok(got) => assert!(got == model, "{what}: scan returned wrong data"),
            Err(Error::Corruption { .. }) => saw_corruption = true,
            Err(e) => panic!("{what}: {e}"),
        }
        let report = db.verify();
        if saw_corruption {
            assert!(
                !report.is_empty(),
                "{what}: verify() missed damage that reads found"
            );
            detected += 1;
        }
        drop(db);
    }
    println!("{flips} flips, {detected} detected, the rest harmless, 0 wrong answers");
}

// Power cuts with column families: created, dropped, re-created under an
// old name, written by batches that span them, flushed and compacted one by
// one, and the database reopened in between.

/// The families a workload can create (besides `default`); a dropped name
/// comes back later as a new, empty family.
const FAMILY_POOL: [&str; 3] = ["x", "y", "z"];
/// The generation of the default family (it is never created or dropped).
const DEFAULT_GEN: usize = usize::MAX;

#[derive(Debug, Clone)]
enum FamilyOp {
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
fn describe(name: &str, gen: usize) -> String {
    if gen == DEFAULT_GEN {
        name.to_string()
    } else {
        format!("{name} (created by op {gen})")
    }
}

/// What every value written to generation `gen` of family `name` starts
/// with (a generation is the index of the op that created the family).
fn value_tag(name: &str, gen: usize) -> String {
    if gen == DEFAULT_GEN {
        format!("{name}@-:")
    } else {
        format!("{name}@{gen}:")
    }
}

/// Each family its own sizes, so that flushes and compactions come at
/// different moments in each.
fn pool_options(name: &str) -> ColumnFamilyOptions {
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
fn family_workload(n: usize, seed: u64) -> Vec<FamilyOp> {
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
fn generations(ops: &[FamilyOp]) -> Vec<Vec<usize>> {
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

fn family(db: &DB, name: &str) -> aidb::ColumnFamily {
    db.column_family(name)
        .unwrap_or_else(|| panic!("family {name} missing"))
}

fn run_family_op(db: &mut Option<DB>, fs: &FaultInjectionFs, op: &FamilyOp) -> aidb::Result<()> {
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
fn family_states(ops: &[FamilyOp], gens: &[Vec<usize>], m: usize) -> HashMap<usize, State> {
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

/// Runs the families workload with the file system dying after `k` calls,
/// cuts the power, reopens and checks: the families are exactly the
/// acknowledged creations minus the acknowledged drops (the one operation
/// cut short may or may not have happened), and every family holds what
/// the batches of one prefix of the ops wrote to its generation, a prefix
/// that covers every write acknowledged as durable.
///
/// Returns what the crash interrupted: the kind of the op that failed (or
/// "none") and, for a create or drop, whether it took effect.
fn family_crash_at(ops: &[FamilyOp], gens: &[Vec<usize>], k: u64) -> String {
    let fs = FaultInjectionFs::new();
    let mut db = Some(DB::open_with(options(&fs)).expect("first open"));
    fs.crash_after(k);
    let mut issued = 0;
    // Batches `..durable` must survive.
    let mut durable = 0;
    let mut failed = None;
    for (i, op) in ops.iter().enumerate() {
        issued = i + 1;
        if let Err(e) = run_family_op(&mut db, &fs, op) {
            failed = Some(e);
            break;
        }
        match op {
            FamilyOp::Batch(_, sync) => {
                if *sync {
                    durable = i + 1;
                }
            }
            // A flush (or compaction, which flushes first) syncs the
            // shared log: every write before it is durable, in any family
            // (see `db_flush_makes_other_families_writes_durable`).
            FamilyOp::Flush(_) | FamilyOp::Compact(_) => durable = i + 1,
            // A clean close flushes every family.
            FamilyOp::Close => durable = i + 1,
            FamilyOp::Create(_) | FamilyOp::Drop(_) | FamilyOp::Open => {}
        }
    }
    fs.power_cut();
    drop(db); // the dead machine's handle: all its calls now fail
    let what = format!("crash at call {k} ({issued} ops issued, failure: {failed:?})");

    let db = DB::open_with(options(&fs)).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    // The families: every acknowledged create and drop done; the op that
    // failed (if a create or drop) done or not.
    let acked = if failed.is_some() { issued - 1 } else { issued };
    let mut live: BTreeMap<String, usize> = BTreeMap::from([("default".into(), DEFAULT_GEN)]);
    for (i, op) in ops.iter().enumerate().take(acked) {
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
    let names_acked: BTreeSet<String> = live.keys().cloned().collect();
    let mut allowed = vec![live.clone()];
    if failed.is_some() {
        let mut with_failed = live.clone();
        match &ops[acked] {
            FamilyOp::Create(n) => {
                with_failed.insert(n.clone(), acked);
                allowed.push(with_failed);
            }
            FamilyOp::Drop(n) => {
                with_failed.remove(n);
                allowed.push(with_failed);
            }
            _ => {}
        }
    }
    let names: BTreeSet<String> = db.column_family_names().into_iter().collect();
    let live = allowed
        .into_iter()
        .find(|l| l.keys().cloned().collect::<BTreeSet<_>>() == names)
        .unwrap_or_else(|| {
            panic!("{what}: families {names:?}, expected those of {live:?} (± the failed op)")
        });
    // Every family's contents: only its own generation's values (never
    // another family's, never those of a dropped family of the same name),
    // and together the effect of one prefix of the ops.
    let mut got: BTreeMap<String, State> = BTreeMap::new();
    for (name, gen) in &live {
        let cf = family(&db, name);
        let state = cf
            .iter()
            .collect::<aidb::Result<State>>()
            .unwrap_or_else(|e| panic!("{what}: reading family {name} failed: {e}"));
        let tag = value_tag(name, *gen);
        if let Some((k, v)) = state.iter().find(|(_, v)| !v.starts_with(tag.as_bytes())) {
            panic!(
                "{what}: family {} holds {}={}…, not its own",
                describe(name, *gen),
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&v[..v.len().min(24)])
            );
        }
        got.insert(name.clone(), state);
    }
    let matches = |m: usize| {
        let states = family_states(ops, gens, m);
        live.iter()
            .all(|(name, g)| got[name] == states.get(g).cloned().unwrap_or_default())
    };
    if !(durable..=issued).any(matches) {
        // Say what is wrong with the closest candidates.
        let mut detail = String::new();
        for m in [durable, issued] {
            let states = family_states(ops, gens, m);
            for (name, g) in &live {
                let want = states.get(g).cloned().unwrap_or_default();
                if got[name] != want {
                    let differ = got[name]
                        .keys()
                        .chain(want.keys())
                        .filter(|k| got[name].get(*k) != want.get(*k))
                        .count();
                    detail += &format!(
                        "\n  after op {m}: family {} differs in {differ} keys",
                        describe(name, *g)
                    );
                }
            }
        }
        panic!(
            "{what}: the families' contents are no prefix of the ops in {durable}..={issued}{detail}"
        );
    }
    check_no_orphans(&fs, &db, &what);
    db.close().unwrap();
    match (&failed, ops.get(acked)) {
        (None, _) | (_, None) => "none".into(),
        (Some(_), Some(op @ (FamilyOp::Create(_) | FamilyOp::Drop(_)))) => {
            let done = live.keys().cloned().collect::<BTreeSet<_>>() != names_acked;
            let kind = format!("{op:?}");
            let kind = kind.split('(').next().unwrap_or_default();
            format!("{kind} ({})", if done { "durable" } else { "lost" })
        }
        (Some(_), Some(op)) => {
            let kind = format!("{op:?}");
            kind.split('(').next().unwrap_or_default().to_string()
        }
    }
}

#[test]
fn power_cut_at_every_call_with_column_families() {
    let ops = family_workload(250, 0);
    let gens = generations(&ops);
    // The workload must exercise what it claims to: a dropped name
    // re-created and written again, batches spanning families, reopens.
    let count = |f: &dyn Fn(&FamilyOp) -> bool| ops.iter().filter(|op| f(op)).count();
    let recreated = FAMILY_POOL
        .iter()
        .any(|n| count(&|op| matches!(op, FamilyOp::Create(c) if c == n)) >= 2);
    assert!(recreated, "no family name is re-created: {ops:?}");
    assert!(count(&|op| matches!(op, FamilyOp::Drop(_))) >= 2);
    assert!(count(&|op| matches!(op, FamilyOp::Close)) >= 1);
    assert!(ops.iter().zip(&gens).any(|(op, g)| {
        matches!(op, FamilyOp::Batch(..)) && g.iter().collect::<BTreeSet<_>>().len() >= 3
    }));

    // How many calls the whole workload makes, and that it ends as the
    // model says.
    let fs = FaultInjectionFs::new();
    let mut db = Some(DB::open_with(options(&fs)).unwrap());
    let start = fs.call_count();
    for op in &ops {
        run_family_op(&mut db, &fs, op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    let total = fs.call_count() - start;
    let db = db.expect("open at the end");
    let states = family_states(&ops, &gens, ops.len());
    for (name, g) in generations_live(&ops) {
        let got: State = family(&db, &name).iter().map(|r| r.unwrap()).collect();
        assert!(
            got == states.get(&g).cloned().unwrap_or_default(),
            "family {name} at the end"
        );
    }
    drop(db);
    let step = std::env::var("AIDB_CRASH_STEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let started = std::time::Instant::now();
    let mut points = 0;
    let mut interrupted: BTreeMap<String, usize> = BTreeMap::new();
    for k in (0..=total + 5).step_by(step) {
        *interrupted
            .entry(family_crash_at(&ops, &gens, k))
            .or_default() += 1;
        points += 1;
    }
    let kinds: BTreeMap<String, usize> = ops.iter().fold(BTreeMap::new(), |mut m, op| {
        let kind = format!("{op:?}");
        *m.entry(kind.split('(').next().unwrap_or_default().to_string())
            .or_default() += 1;
        m
    });
    println!(
        "families workload: {} ops {kinds:?}, {total} file-system calls; \
         {points} crash points in {:.1?}; op interrupted by the crash: {interrupted:?}",
        ops.len(),
        started.elapsed()
    );
}

/// The live families at the end of a workload, with their generations.
fn generations_live(ops: &[FamilyOp]) -> BTreeMap<String, usize> {
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

/// `DB::flush` makes every write made before it durable (docs/durability.md
/// lists a completed `DB::flush` among what makes an unsynced write survive
/// a power cut): with the default family's memtable empty it used to
/// return without syncing the log, so an unsynced write to another family
/// was lost by a power cut after it. Same for `ColumnFamily::flush` of an
/// empty family.
#[test]
fn db_flush_makes_other_families_writes_durable() {
    let fs = FaultInjectionFs::new();
    let opts = || Options {
        fs: Arc::new(fs.clone()),
        ..Options::new("/db")
    };
    let db = DB::open_with(opts()).unwrap();
    let a = db.create_column_family("a", Default::default()).unwrap();
    a.put("k", "v").unwrap(); // not synced
    db.flush().unwrap(); // nothing in the default family to flush
    fs.power_cut();
    drop(db);
    let db = DB::open_with(opts()).unwrap();
    assert_eq!(
        db.column_family("a").unwrap().get("k").unwrap(),
        Some(b"v".to_vec()),
        "a write made before DB::flush was lost by a power cut after it"
    );
}
