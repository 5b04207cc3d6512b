//! Crash safety under the fault-injecting file system: power cuts at every
//! file-system call, I/O errors during flush, compaction, log rotation and
//! MANIFEST updates, and single bit flips in the files of a closed database.

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{Error, Options, WriteBatch, WriteOptions, DB};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
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
    let listed: usize = db.stats().levels.iter().map(|l| l.files).sum();
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
