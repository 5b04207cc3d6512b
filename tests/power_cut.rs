//! Power cuts at every file-system call of a workload (synced and unsynced
//! batches, deletes, flushes, compactions; tiny sizes), each under every
//! persistence rule of [`CrashRule::ALL`]: unsynced data dropped, kept up
//! to a random prefix, or kept with the last write torn; unsynced
//! directory entries dropped; renames reverted; and, leniently, unsynced
//! directory changes kept. After each cut the database must open, hold
//! every write acknowledged as durable, and equal the effect of a prefix
//! of the issued operations: never a hole, never half a batch. The
//! column-family workload is in `power_cut_families.rs`.

mod common;

use aidb::fs::{CrashRule, FaultInjectionFs};
use aidb::{Options, DB};
use common::workload::{check_prefix, options, run, workload, Op};
use std::sync::Arc;

/// Runs the workload with the file system dying after `k` calls; then, on
/// a copy of that state for each rule, cuts the power and checks the
/// recovered database. Returns the number of crash states checked.
fn crash_at(ops: &[Op], k: u64) -> usize {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap_or_else(|e| panic!("first open failed: {e}"));
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
    for (r, rule) in CrashRule::ALL.iter().enumerate() {
        let copy = fs.fork();
        copy.power_cut_with(*rule, k * 16 + r as u64);
        let what = format!("crash at call {k} under {}", rule.name());
        check_prefix(&copy, ops, durable, issued, &what);
    }
    fs.power_cut();
    drop(db); // the dead machine's handle: all its calls now fail
    let resynced = fs.syncs_after_failure();
    assert!(
        resynced.is_empty(),
        "crash at call {k}: synced again after a failed sync: {resynced:?}"
    );
    CrashRule::ALL.len()
}

#[test]
fn power_cut_at_every_file_system_call_under_every_rule() {
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
    let started = std::time::Instant::now();
    let mut states = 0;
    for k in (0..=total + 5).step_by(step) {
        states += crash_at(&ops, k);
    }
    println!(
        "workload of {} ops makes {total} file-system calls; cut after every {step}, \
         under {} rules: {states} crash states in {:.1?}, 0 violations",
        ops.len(),
        CrashRule::ALL.len(),
        started.elapsed()
    );
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
