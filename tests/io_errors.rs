//! I/O errors (EIO and ENOSPC) at every kind of call the engine makes —
//! flush, compaction, MANIFEST, log, directory, reads — and fsync failures
//! that lose data: the failing call or the next write reports it, later
//! writes are refused, reads go on, no acknowledged write is lost after a
//! reopen, no file is synced again after its sync failed, and no orphan
//! file remains.

mod common;

use aidb::fs::{CrashRule, FaultInjectionFs, FaultKind, FsOp};
use aidb::{Error, WriteBatch, WriteOptions, DB};
use common::workload::{
    check_no_orphans, check_prefix, contents, options, run, workload, Op, State,
};

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
    // A failed log fsync says that only a reopen helps.
    let reopen = point.op == FsOp::Sync && point.path == Some(".log");
    assert!(
        match &first_error {
            Error::ReopenRequired { cause } => reopen && matches!(**cause, Error::Io { .. }),
            Error::Io { .. } | Error::ReadOnly { .. } => !reopen,
            _ => false,
        },
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

fn put_batch(key: &str, value: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(key, value);
    b
}

/// A failed fsync of the log that loses the unsynced data (the kernel
/// dropped the pages it could not write, and the next sync would report
/// success: "fsyncgate"): the write that asked for the sync is not
/// acknowledged and its error says to reopen; no later write, flush,
/// resume or close is acknowledged; the log is never synced again; after a
/// power cut the database holds every write synced before the failure.
#[test]
fn failed_log_fsync_is_never_acknowledged_retried_or_trusted() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    let mut synced = 0;
    for i in 0..50 {
        let sync = i % 10 == 9;
        db.write_opt(put_batch(&format!("k{i:02}"), "v"), &WriteOptions { sync })
            .unwrap();
        if sync {
            synced = i + 1;
        }
    }
    for i in 50..55 {
        db.put(format!("k{i:02}"), "v").unwrap(); // unsynced, lost below
    }
    fs.inject(
        FsOp::Sync,
        FaultKind::EioDropsUnsynced,
        Some(".log"),
        0,
        Some(1),
    );
    let sync = WriteOptions { sync: true };
    let err = db.write_opt(put_batch("k55", "v"), &sync).unwrap_err();
    match &err {
        Error::ReopenRequired { cause } => assert!(matches!(**cause, Error::Io { .. }), "{err}"),
        other => panic!("a failed log fsync must say to reopen, got {other:?}"),
    }
    assert!(err.to_string().contains("closed and reopened"), "{err}");
    // The next sync of the log would "succeed": nothing may rely on it.
    assert!(matches!(
        db.write_opt(put_batch("k56", "v"), &sync),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(db.put("k57", "v"), Err(Error::ReadOnly { .. })));
    assert!(db.flush().is_err());
    assert!(matches!(db.resume(), Err(Error::ReopenRequired { .. })));
    assert_eq!(db.get("k00").unwrap(), Some(b"v".to_vec()), "reads go on");
    assert!(db.close().is_err(), "close must report the failure");
    assert_eq!(fs.syncs_after_failure(), Vec::<std::path::PathBuf>::new());
    fs.power_cut();
    let db = DB::open_with(options(&fs)).unwrap();
    let got = contents(&db).unwrap();
    let present = (0..57)
        .take_while(|i| got.contains_key(format!("k{i:02}").as_bytes()))
        .count();
    assert!(
        present >= synced,
        "lost synced writes: {present} < {synced}"
    );
    assert_eq!(got.len(), present, "not a prefix: {got:?}");
}

/// An fsync that fails and loses data at every sync of a workload in turn
/// (log, tables, MANIFEST, CURRENT): whatever failed, no file is synced
/// again after its sync failed, and after a power cut under every rule
/// the database holds a prefix of the ops with every write acknowledged
/// as durable (all of them when `close` succeeded after the failure).
#[test]
fn an_fsync_losing_data_at_any_sync_is_never_retried_and_loses_nothing_acknowledged() {
    let ops = workload(150, 11);
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    let before = fs.op_count(FsOp::Sync);
    for op in &ops {
        run(&db, op).unwrap();
    }
    let syncs = fs.op_count(FsOp::Sync) - before;
    drop(db);
    let mut states = 0;
    let mut closed_cleanly = 0;
    for j in 0..syncs {
        let fs = FaultInjectionFs::new();
        let db = DB::open_with(options(&fs)).unwrap();
        fs.inject(FsOp::Sync, FaultKind::EioDropsUnsynced, None, j, Some(1));
        let (mut issued, mut durable, mut acked) = (0, 0, 0);
        for op in &ops {
            issued += 1;
            if run(&db, op).is_err() {
                break;
            }
            acked = issued;
            if matches!(op, Op::Batch(_, true) | Op::Flush | Op::Compact) {
                durable = issued;
            }
        }
        // A failure the engine recovers from (a table's sync) lets a clean
        // close flush everything acknowledged.
        if db.close().is_ok() {
            durable = acked;
            closed_cleanly += 1;
        }
        let resynced = fs.syncs_after_failure();
        assert!(
            resynced.is_empty(),
            "sync {j}: synced again after failing: {resynced:?}"
        );
        for (r, rule) in CrashRule::ALL.iter().enumerate() {
            let copy = fs.fork();
            copy.power_cut_with(*rule, j * 16 + r as u64);
            let what = format!("fsync {j} failed, then a power cut under {}", rule.name());
            check_prefix(&copy, &ops, durable, issued, &what);
            states += 1;
        }
    }
    println!(
        "{syncs} syncs failed in turn ({closed_cleanly} recovered by close); \
         {states} crash states, 0 violations"
    );
}
