//! What happens after a write, flush or compaction fails: writes stop and
//! reads go on; `resume()` (or the background retry) gets writes going
//! again after retryable failures and refuses the others; partial outputs
//! are removed; a failed MANIFEST write is final for that handle; a panic
//! in the write path or a background job stops writes instead of hanging
//! them; and nothing acknowledged is lost across any of it.

mod common;

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{Error, Options, WriteBatch, WriteOptions, DB};
use common::{within, Gate, HookFs};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn options(fs: Arc<dyn FileSystem>) -> Options {
    Options {
        fs,
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 4,
        block_size: 512,
        ..Options::new("/db")
    }
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:05}-").repeat(5).into_bytes()
}

/// Writes keys `from..to` (one batch each), recording acknowledged ones;
/// returns the first error.
fn write_keys(
    db: &DB,
    acked: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    keys: std::ops::Range<usize>,
) -> aidb::Result<()> {
    for i in keys {
        let k = format!("key{:05}", i % 3000).into_bytes();
        let mut b = WriteBatch::new();
        b.put(&k, value(i));
        db.write_opt(b, &WriteOptions { sync: i % 7 == 0 })?;
        acked.insert(k, value(i));
    }
    Ok(())
}

fn assert_has(db: &DB, acked: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    for (k, v) in acked {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{what}: {k:?}");
    }
}

/// Table files on disk minus the ones live in the version, and `.tmp`s.
fn orphans(fs: &FaultInjectionFs, db: &DB) -> usize {
    let names = fs.list(Path::new("/db")).unwrap();
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    let live: usize = db.stats().levels.iter().map(|l| l.files).sum();
    tables - live + names.iter().filter(|n| n.ends_with(".tmp")).count()
}

/// Writes until the injected fault surfaces; returns the error.
fn write_until_error(db: &DB, acked: &mut BTreeMap<Vec<u8>, Vec<u8>>, start: usize) -> Error {
    let mut i = start;
    loop {
        if let Err(e) = write_keys(db, acked, i..i + 1) {
            return e;
        }
        i += 1;
        assert!(i < start + 20_000, "the fault never surfaced");
    }
}

#[test]
fn a_full_disk_during_flush_stops_writes_until_resume() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    let mut acked = BTreeMap::new();
    write_keys(&db, &mut acked, 0..200).unwrap();
    // No compaction may be running or due when the fault starts: the
    // failure must be a flush's, which leaves a memtable for `resume()` to
    // fail on (after a failed compaction it has nothing to write).
    db.wait_for_idle().unwrap();
    fs.inject(FsOp::Append, FaultKind::TornEnospc, Some(".sst"), 0, None);
    write_until_error(&db, &mut acked, 200);
    assert!(matches!(db.put("x", "y"), Err(Error::ReadOnly { .. })));
    assert_has(&db, &acked, "reads while stopped");
    // The space is still gone: resume fails and writes stay stopped.
    assert!(db.resume().is_err());
    assert!(matches!(db.put("x", "y"), Err(Error::ReadOnly { .. })));
    assert_eq!(orphans(&fs, &db), 0, "a failed flush left its output");

    fs.clear_faults();
    db.resume().unwrap();
    write_keys(&db, &mut acked, 5000..5400).unwrap();
    db.flush().unwrap();
    assert_has(&db, &acked, "after resume");
    db.wait_for_idle().unwrap();
    assert_eq!(orphans(&fs, &db), 0);
    db.close().unwrap();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    assert_has(&db, &acked, "after reopen");
}

#[test]
fn a_failed_flush_is_retried_in_the_background() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    let mut acked = BTreeMap::new();
    fs.inject(FsOp::Sync, FaultKind::Eio, Some(".sst"), 0, Some(1));
    write_until_error(&db, &mut acked, 0);
    // No resume() call: the retry (about a second later) flushes and lets
    // writes in again.
    let start = Instant::now();
    while db.put("probe", "1").is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "never retried");
        std::thread::sleep(Duration::from_millis(50));
    }
    write_keys(&db, &mut acked, 100..600).unwrap();
    assert_has(&db, &acked, "after the retry");
    db.wait_for_idle().unwrap();
    assert_eq!(orphans(&fs, &db), 0);
}

#[test]
fn a_failed_compaction_removes_its_outputs_and_can_run_again() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    let mut acked = BTreeMap::new();
    write_keys(&db, &mut acked, 0..1500).unwrap();
    db.flush().unwrap();
    db.wait_for_idle().unwrap();
    // Let the first output through, fail the second one's write midway
    // (a table reaches its file in one append per 256 KiB, so each of
    // these 8 KiB outputs is a single append).
    fs.inject(FsOp::Append, FaultKind::TornEnospc, Some(".sst"), 1, None);
    assert!(db.compact_range(..).is_err());
    assert_has(&db, &acked, "after the failed compaction");
    assert_eq!(orphans(&fs, &db), 0, "a failed compaction left outputs");
    fs.clear_faults();
    db.resume().unwrap();
    db.compact_range(..).unwrap();
    assert_has(&db, &acked, "after compacting again");
    write_keys(&db, &mut acked, 2000..2100).unwrap();
}

#[test]
fn a_torn_log_write_resumes_in_a_new_log_and_reopens_cleanly() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    let mut acked = BTreeMap::new();
    write_keys(&db, &mut acked, 0..100).unwrap();
    fs.inject(
        FsOp::Append,
        FaultKind::TornEnospc,
        Some(".log"),
        0,
        Some(1),
    );
    let err = write_until_error(&db, &mut acked, 100);
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(matches!(db.put("x", "y"), Err(Error::ReadOnly { .. })));
    // A log error needs resume(): no background retry appends to it.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(matches!(db.put("x", "y"), Err(Error::ReadOnly { .. })));
    db.resume().unwrap();
    write_keys(&db, &mut acked, 200..400).unwrap();
    drop(db);
    // The damaged log is gone or fully flushed: the reopen sees no damage
    // in the middle of the logs.
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    assert_has(&db, &acked, "after reopen");
}

#[test]
fn a_failed_log_fsync_needs_a_reopen() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    let mut acked = BTreeMap::new();
    write_keys(&db, &mut acked, 0..50).unwrap();
    fs.inject(FsOp::Sync, FaultKind::Eio, Some(".log"), 0, Some(1));
    write_until_error(&db, &mut acked, 50);
    match db.resume() {
        Err(Error::ReopenRequired { cause }) => {
            assert!(matches!(*cause, Error::Io { .. }), "{cause:?}")
        }
        other => panic!("expected ReopenRequired, got {other:?}"),
    }
    assert!(matches!(db.put("x", "y"), Err(Error::ReadOnly { .. })));
    assert!(db.close().is_err(), "close must report the failure");
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    assert_has(&db, &acked, "after reopen");
}

#[test]
fn close_reports_a_failure_it_could_not_recover_from() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    db.put("a", "1").unwrap();
    fs.inject(FsOp::Append, FaultKind::Eio, Some(".log"), 0, None);
    assert!(db.put("b", "2").is_err());
    match db.close() {
        Err(Error::ReadOnly { cause }) => assert!(matches!(*cause, Error::Io { .. })),
        other => panic!("close after a failure returned {other:?}"),
    }
    fs.clear_faults();
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    assert_eq!(db.get("a").unwrap(), Some(b"1".to_vec()));
}

/// A torn MANIFEST record while a compaction is running: the compaction
/// must not append its edit after the torn bytes, sync it, delete its
/// inputs and report success (which made the next open fail and lost the
/// inputs).
#[test]
fn a_torn_manifest_record_is_final_for_compactions_already_running() {
    let fs = FaultInjectionFs::new();
    let gate = Arc::new(Gate::default());
    let hook_gate = gate.clone();
    let hooked = HookFs::wrap(Arc::new(fs.clone()), move |op, path| {
        let compactor = std::thread::current().name() == Some("compactor");
        if compactor && op == FsOp::Create && path.extension().is_some_and(|e| e == "sst") {
            hook_gate.pass();
        }
        Ok(())
    });
    let opts = Options {
        level0_file_num_compaction_trigger: 100,
        level0_slowdown_writes_trigger: 100,
        level0_stop_writes_trigger: 100,
        ..options(hooked)
    };
    let db = Arc::new(DB::open_with(opts.clone()).unwrap());
    let mut acked = BTreeMap::new();
    for round in 0..3 {
        write_keys(&db, &mut acked, round * 100..round * 100 + 100).unwrap();
        db.flush().unwrap();
    }
    let compactor = {
        let db = db.clone();
        std::thread::Builder::new()
            .name("compactor".into())
            .spawn(move || db.compact_range(..))
            .unwrap()
    };
    gate.wait_for_arrivals(1);
    // The compaction is writing its output; now a flush's MANIFEST record
    // is torn by a full disk.
    write_keys(&db, &mut acked, 1000..1050).unwrap();
    fs.inject(
        FsOp::Append,
        FaultKind::TornEnospc,
        Some("MANIFEST"),
        0,
        Some(1),
    );
    assert!(db.flush().is_err());
    gate.open();
    let compacted = compactor.join().unwrap();
    assert!(
        compacted.is_err(),
        "the compaction installed after a torn record"
    );
    assert!(matches!(db.resume(), Err(Error::ReopenRequired { .. })));
    assert_has(&db, &acked, "reads after the failure");
    drop(db);
    let db = DB::open_with(Options {
        fs: Arc::new(fs.clone()),
        ..opts
    })
    .unwrap_or_else(|e| panic!("reopen after a torn MANIFEST record: {e}"));
    assert_has(&db, &acked, "after reopen");
}

/// A file system that panics on the first log append after `armed` is set.
fn panicking_fs(
    fs: &FaultInjectionFs,
    armed: Arc<AtomicBool>,
    on: &'static str,
) -> Arc<dyn FileSystem> {
    HookFs::wrap(Arc::new(fs.clone()), move |op, path| {
        let hit = path.to_string_lossy().ends_with(on) && op == FsOp::Append;
        if hit && armed.swap(false, Ordering::SeqCst) {
            panic!("injected panic in the file system");
        }
        Ok(())
    })
}

#[test]
fn a_panic_in_the_commit_leader_stops_writes_instead_of_hanging_them() {
    let fs = FaultInjectionFs::new();
    let armed = Arc::new(AtomicBool::new(false));
    let db = Arc::new(DB::open_with(options(panicking_fs(&fs, armed.clone(), ".log"))).unwrap());
    db.put("before", "1").unwrap();
    armed.store(true, Ordering::SeqCst);
    let results = within(30, "writers after a panic in the leader", {
        let db = db.clone();
        move || {
            let writers: Vec<_> = (0..4)
                .map(|t| {
                    let db = db.clone();
                    std::thread::spawn(move || {
                        (0..50)
                            .map(|i| db.put(format!("t{t}-{i}"), "v"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            writers
                .into_iter()
                .map(|w| w.join().expect("a writer thread panicked"))
                .collect::<Vec<_>>()
        }
    });
    let errors: Vec<&Error> = results
        .iter()
        .flatten()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("injected panic")),
        "the panic is not reported: {errors:?}"
    );
    assert!(matches!(db.put("later", "x"), Err(Error::ReadOnly { .. })));
    assert_eq!(db.get("before").unwrap(), Some(b"1".to_vec()));
    assert!(matches!(db.resume(), Err(Error::ReopenRequired { .. })));
    drop(db);
    let db = DB::open_with(options(Arc::new(fs.clone()))).unwrap();
    assert_eq!(db.get("before").unwrap(), Some(b"1".to_vec()));
    for (t, r) in results.iter().enumerate() {
        for (i, r) in r.iter().enumerate() {
            if r.is_ok() {
                assert!(
                    db.get(format!("t{t}-{i}")).unwrap().is_some(),
                    "acknowledged write lost"
                );
            }
        }
    }
}

#[test]
fn a_panic_in_a_background_flush_stops_writes_instead_of_hanging_them() {
    let fs = FaultInjectionFs::new();
    let armed = Arc::new(AtomicBool::new(false));
    let db = Arc::new(DB::open_with(options(panicking_fs(&fs, armed.clone(), ".sst"))).unwrap());
    db.put("before", "1").unwrap();
    armed.store(true, Ordering::SeqCst);
    let flushed = within(30, "flush after a panic in the background", {
        let db = db.clone();
        move || db.flush()
    });
    match flushed {
        Err(Error::ReadOnly { cause }) => {
            assert!(cause.to_string().contains("injected panic"), "{cause}")
        }
        other => panic!("flush after a background panic returned {other:?}"),
    }
    assert_eq!(db.get("before").unwrap(), Some(b"1".to_vec()));
}
