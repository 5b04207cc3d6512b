//! Write-ahead log recovery: torn tails, damaged records, recovery modes,
//! power cuts, and I/O errors on the write path.

mod common;

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{Error, Options, WalRecoveryMode, WriteBatch, WriteOptions, DB};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn opts(fs: &FaultInjectionFs, mode: WalRecoveryMode) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        wal_recovery_mode: mode,
        ..Options::new("/db")
    }
}

fn log_files(fs: &FaultInjectionFs) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .map(|n| Path::new("/db").join(n))
        .collect();
    logs.sort();
    logs
}

fn batch(i: u32) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(format!("a{i}"), format!("value-{i}"));
    b.put(format!("b{i}"), vec![i as u8; 300]);
    b
}

fn check_batches(db: &DB, present: impl Fn(u32) -> bool, n: u32) {
    for i in 0..n {
        let a = db.get(format!("a{i}")).unwrap();
        let b = db.get(format!("b{i}")).unwrap();
        if present(i) {
            assert_eq!(a, Some(format!("value-{i}").into_bytes()), "batch {i}");
            assert_eq!(b, Some(vec![i as u8; 300]), "batch {i}");
        } else {
            assert_eq!((a, b), (None, None), "batch {i} must be absent, whole");
        }
    }
}

/// Writes `n` batches to a fresh database and returns its files' contents
/// together with the log's length before the last batch.
fn build(n: u32) -> (Vec<(PathBuf, Vec<u8>)>, PathBuf, usize) {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(opts(&fs, WalRecoveryMode::default())).unwrap();
    for i in 0..n - 1 {
        db.write(batch(i)).unwrap();
    }
    let log = log_files(&fs).pop().unwrap();
    let before_last = fs.appended_len(&log).unwrap() as usize;
    db.write(batch(n - 1)).unwrap();
    let files = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n != "LOCK")
        .map(|n| {
            let p = Path::new("/db").join(n);
            let mut data = fs.read_all(&p).unwrap();
            // The records only, not the room reserved past them.
            data.truncate(fs.appended_len(&p).unwrap() as usize);
            (p, data)
        })
        .collect();
    drop(db);
    (files, log, before_last)
}

/// A new file system holding `files`, with `edit` applied to the log.
fn restore(
    files: &[(PathBuf, Vec<u8>)],
    log: &Path,
    edit: impl FnOnce(&mut Vec<u8>),
) -> FaultInjectionFs {
    let fs = FaultInjectionFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    let mut edit = Some(edit);
    for (p, data) in files {
        let mut data = data.clone();
        if p == log {
            (edit.take().unwrap())(&mut data);
        }
        let mut f = fs.create(p).unwrap();
        f.append(&data).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new("/db")).unwrap();
    fs
}

#[test]
fn log_truncated_anywhere_in_its_last_record_opens_with_earlier_records() {
    let n = 20;
    let (files, log, before_last) = build(n);
    let full_len = files.iter().find(|(p, _)| *p == log).unwrap().1.len();
    assert!(full_len > before_last);
    for cut in before_last..full_len {
        let fs = restore(&files, &log, |d| d.truncate(cut));
        let db = DB::open_with(opts(&fs, WalRecoveryMode::default()))
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        check_batches(&db, |i| i < n - 1, n);
        // The database goes on working and keeps new writes.
        db.put("after", "crash").unwrap();
        drop(db);
        let db = DB::open_with(opts(&fs, WalRecoveryMode::default())).unwrap();
        check_batches(&db, |i| i < n - 1, n);
        assert_eq!(db.get("after").unwrap(), Some(b"crash".to_vec()));
    }
}

#[test]
fn absolute_consistency_rejects_a_torn_tail() {
    let (files, log, before_last) = build(5);
    let fs = restore(&files, &log, |d| d.truncate(before_last + 10));
    match DB::open_with(opts(&fs, WalRecoveryMode::AbsoluteConsistency)) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, log);
            assert_eq!(offset, before_last as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn flipped_byte_in_an_earlier_record_is_corruption_never_a_wrong_value() {
    let n = 8;
    let (files, log, before_last) = build(n);
    let data_start = 7 + 21; // header record: 7-byte fragment header + 21-byte payload
    for offset in (data_start..before_last).step_by(7) {
        let fs = restore(&files, &log, |d| d[offset] ^= 0x20);
        match DB::open_with(opts(&fs, WalRecoveryMode::default())) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, log),
            Ok(_) => panic!("flip at {offset} went unnoticed"),
            Err(e) => panic!("flip at {offset}: unexpected error {e}"),
        }
        // Skipping mode opens and never returns a wrong value: every batch
        // is either whole or absent, and the ones before the damage are
        // kept. (It resumes at the next 32 KiB block, which this log, all
        // in its first block, does not reach.)
        let fs = restore(&files, &log, |d| d[offset] ^= 0x20);
        let db = DB::open_with(opts(&fs, WalRecoveryMode::SkipAnyCorruptedRecords)).unwrap();
        let mut first_missing = None;
        for i in 0..n {
            let a = db.get(format!("a{i}")).unwrap();
            let b = db.get(format!("b{i}")).unwrap();
            match (a, b) {
                (None, None) => {
                    first_missing.get_or_insert(i);
                }
                (Some(a), Some(b)) => {
                    assert!(first_missing.is_none(), "batch {i} kept after a lost one");
                    assert_eq!(a, format!("value-{i}").into_bytes());
                    assert_eq!(b, vec![i as u8; 300]);
                }
                other => panic!("batch {i} half present: {other:?}"),
            }
        }
        let first_missing = first_missing.expect("the damaged batch was replayed");
        let record_len = (before_last - data_start) / (n as usize - 1); // all the same size
        let damaged = (offset - data_start) / record_len;
        assert_eq!(first_missing as usize, damaged, "flip at {offset}");
        assert_eq!(db.stats().log_damage_skipped, 1);
    }
}

#[test]
fn skipping_resumes_at_the_next_block_and_keeps_what_follows() {
    let n = 300; // about three 32 KiB blocks of 335-byte records
    let (files, log, _) = build(n);
    let fs = restore(&files, &log, |d| d[7 + 21 + 10] ^= 0x20);
    let db = DB::open_with(opts(&fs, WalRecoveryMode::SkipAnyCorruptedRecords)).unwrap();
    // The records that start in the first block are gone (a damaged one
    // and those after it up to the block end), every later one is there.
    let present: Vec<bool> = (0..n)
        .map(|i| db.get(format!("a{i}")).unwrap().is_some())
        .collect();
    let kept_from = present.iter().position(|p| *p).expect("nothing kept");
    assert!(
        present[kept_from..].iter().all(|p| *p),
        "a hole after the block"
    );
    assert!(
        (90..=110).contains(&kept_from),
        "resumed at batch {kept_from}"
    );
    check_batches(&db, |i| i as usize >= kept_from, n);
    assert_eq!(db.stats().log_damage_skipped, 1);
}

/// Writes a raw log fragment image (what the writer would produce for a
/// FULL record holding `payload`).
fn fragment_image(payload: &[u8]) -> Vec<u8> {
    let mut h = crc32fast::Hasher::new();
    h.update(&[1]);
    h.update(payload);
    let crc = h.finalize();
    let masked = crc.rotate_right(15).wrapping_add(0xa282_ead8);
    let mut out = masked.to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(1);
    out.extend_from_slice(payload);
    out
}

/// A write batch image: seq, count, then put records.
fn batch_image(seq: u64, puts: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = seq.to_le_bytes().to_vec();
    out.extend_from_slice(&(puts.len() as u32).to_le_bytes());
    for (k, v) in puts {
        out.push(1);
        out.push(k.len() as u8);
        out.extend_from_slice(k);
        out.push(v.len() as u8);
        out.extend_from_slice(v);
    }
    out
}

/// Skipping damage must never replay bytes from inside a user's value: a
/// value holding a valid-looking log fragment, right after a damaged
/// fragment header, used to be applied as a write nobody made.
#[test]
fn skipping_damage_never_replays_a_users_value_as_a_write() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(opts(&fs, WalRecoveryMode::default())).unwrap();
    db.put("a", "real").unwrap();
    let forged = fragment_image(&batch_image(3, &[(b"a", b"forged"), (b"phantom", b"boo")]));
    let log = log_files(&fs).pop().unwrap();
    let before = fs.appended_len(&log).unwrap() as usize;
    db.put("v", &forged).unwrap();
    db.put("c", "3").unwrap();
    let files: Vec<(PathBuf, Vec<u8>)> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n != "LOCK")
        .map(|n| {
            let p = Path::new("/db").join(n);
            let mut data = fs.read_all(&p).unwrap();
            data.truncate(fs.appended_len(&p).unwrap() as usize);
            (p, data)
        })
        .collect();
    drop(db);
    // Damage the checksum of the record holding the value.
    let fs = restore(&files, &log, |d| d[before] ^= 0x01);
    let db = DB::open_with(opts(&fs, WalRecoveryMode::SkipAnyCorruptedRecords)).unwrap();
    assert_eq!(db.get("a").unwrap(), Some(b"real".to_vec()));
    assert_eq!(db.get("phantom").unwrap(), None);
    assert_eq!(db.get("v").unwrap(), None);
}

/// Damage at the end of a log that is not the newest one is not a torn
/// write: a crash can only tear the last log, since a log is synced before
/// the next one starts. Treating it as torn dropped an acknowledged synced
/// write while keeping a later one: a hole.
#[test]
fn damage_at_the_end_of_an_older_log_is_corruption() {
    let fs = FaultInjectionFs::new();
    let o = Options {
        write_buffer_size: 4096,
        ..opts(&fs, WalRecoveryMode::default())
    };
    // Flushes never finish, so the older log stays live.
    let hooked = Options {
        fs: common_block_tables(&fs),
        ..o.clone()
    };
    let db = DB::open_with(hooked).unwrap();
    let mut i = 0;
    while log_files(&fs).len() < 2 {
        db.write_opt(batch(i), &WriteOptions { sync: true })
            .unwrap();
        i += 1;
    }
    db.write_opt(batch(i), &WriteOptions { sync: true })
        .unwrap();
    let logs = log_files(&fs);
    let older = logs[0].clone();
    let files: Vec<(PathBuf, Vec<u8>)> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n != "LOCK" && !n.ends_with(".sst"))
        .map(|n| {
            let p = Path::new("/db").join(n);
            let data = fs.read_all(&p).unwrap();
            (p, data)
        })
        .collect();
    std::mem::forget(db); // its flush is blocked for ever
                          // A flipped bit in the last record of the older log.
    let fs = restore(&files, &older, |d| {
        let n = d.len();
        d[n - 3] ^= 0x08
    });
    match DB::open_with(opts(&fs, WalRecoveryMode::default())) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, older),
        Ok(db) => panic!(
            "opened; batch {} is {:?}",
            i - 2,
            db.get(format!("a{}", i - 2)).unwrap()
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
    // Point-in-time recovery keeps the prefix before the damage, and
    // nothing after it.
    let fs = restore(&files, &older, |d| {
        let n = d.len();
        d[n - 3] ^= 0x08
    });
    let db = DB::open_with(opts(&fs, WalRecoveryMode::PointInTimeRecovery)).unwrap();
    check_batches(&db, |b| b < i - 2, i + 1);
}

/// A file system on `fs` whose table creation blocks for ever.
fn common_block_tables(fs: &FaultInjectionFs) -> Arc<dyn FileSystem> {
    common::HookFs::wrap(Arc::new(fs.clone()), |op, path| {
        if op == FsOp::Create && path.extension().is_some_and(|e| e == "sst") {
            loop {
                std::thread::park();
            }
        }
        Ok(())
    })
}

#[test]
fn point_in_time_recovery_keeps_the_prefix_before_damage() {
    let n = 8;
    let (files, log, _) = build(n);
    let offset = 7 + 21 + 3; // inside the first batch's fragment header
    let fs = restore(&files, &log, |d| d[offset] ^= 0x01);
    let db = DB::open_with(opts(&fs, WalRecoveryMode::PointInTimeRecovery)).unwrap();
    check_batches(&db, |_| false, n);
    db.put("new", "write").unwrap();
    drop(db);
    // The damage is not replayed again in front of the new write.
    let db = DB::open_with(opts(&fs, WalRecoveryMode::default())).unwrap();
    assert_eq!(db.get("new").unwrap(), Some(b"write".to_vec()));
}

#[test]
fn power_cut_keeps_synced_writes_and_a_prefix_of_the_rest() {
    for keep_fraction in [0usize, 1, 2, 3] {
        let fs = FaultInjectionFs::new();
        let o = Options {
            write_buffer_size: 8 << 10, // several logs
            ..opts(&fs, WalRecoveryMode::default())
        };
        let db = DB::open_with(o.clone()).unwrap();
        let mut synced_upto = 0;
        for i in 0..200u32 {
            let sync = i % 17 == 0;
            db.write_opt(batch(i), &WriteOptions { sync }).unwrap();
            if sync {
                synced_upto = i + 1;
            }
        }
        // Power is cut while the database is open: the old handle is dead
        // and is never closed cleanly.
        fs.power_cut_keeping(|_, unsynced| unsynced * keep_fraction / 4);
        drop(db);
        let db = DB::open_with(Options {
            fs: Arc::new(fs.clone()),
            ..o
        })
        .unwrap();
        let present: Vec<bool> = (0..200)
            .map(|i| db.get(format!("a{i}")).unwrap().is_some())
            .collect();
        let prefix = present.iter().take_while(|p| **p).count();
        assert!(prefix >= synced_upto as usize, "lost synced writes");
        check_batches(&db, |i| (i as usize) < prefix, 200);
    }
}

#[test]
fn log_write_error_is_reported_and_stops_writes_but_not_reads() {
    let fs = FaultInjectionFs::new();
    let o = opts(&fs, WalRecoveryMode::default());
    let db = DB::open_with(o.clone()).unwrap();
    db.put("before", "1").unwrap();
    fs.inject(FsOp::Append, FaultKind::Enospc, Some(".log"), 0, Some(1));
    match db.put("failing", "x") {
        Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(28)),
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    match db.put("later", "x") {
        Err(Error::ReadOnly { cause }) => assert!(matches!(*cause, Error::Io { .. })),
        other => panic!("expected ReadOnly, got {other:?}"),
    }
    assert_eq!(db.get("before").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get("failing").unwrap(), None);
    drop(db);
    fs.clear_faults();
    let db = DB::open_with(o).unwrap();
    assert_eq!(db.get("before").unwrap(), Some(b"1".to_vec()));
    db.put("later", "ok").unwrap();
}

#[test]
fn fsync_error_is_never_retried_silently() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(opts(&fs, WalRecoveryMode::default())).unwrap();
    fs.inject(FsOp::Sync, FaultKind::Eio, None, 0, Some(1));
    assert!(matches!(
        db.write_opt(batch(1), &WriteOptions { sync: true }),
        Err(Error::ReopenRequired { .. })
    ));
    assert!(matches!(db.write(batch(2)), Err(Error::ReadOnly { .. })));
    assert!(matches!(db.flush(), Err(Error::ReadOnly { .. })));
}

#[test]
fn a_log_with_reserved_room_reopens_after_a_power_cut_in_every_mode() {
    for mode in [
        WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::TolerateCorruptedTailRecords,
        WalRecoveryMode::PointInTimeRecovery,
    ] {
        let fs = FaultInjectionFs::new();
        let o = Options {
            write_buffer_size: 1 << 20,
            ..opts(&fs, mode)
        };
        let db = DB::open_with(o.clone()).unwrap();
        for i in 0..30 {
            db.write_opt(batch(i), &WriteOptions { sync: true })
                .unwrap();
        }
        // The live log's size is the room reserved for it (a tenth more
        // than the memtable), not the bytes written: syncs need not make
        // a growing size durable.
        let log = log_files(&fs).pop().unwrap();
        assert!(fs.file_size(&log).unwrap() >= (1 << 20) + (1 << 20) / 10);
        let data = fs.read_all(&log).unwrap();
        assert!(data.ends_with(&[0u8; 1000]));
        fs.power_cut_keeping(|_, _| 0);
        drop(db);
        // The zeros past the last record end the log: not a torn write,
        // not damage, in any mode.
        let db = DB::open_with(Options {
            fs: Arc::new(fs.clone()),
            ..o
        })
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        check_batches(&db, |_| true, 30);
    }
}

#[test]
fn a_finished_log_is_cut_back_to_its_records() {
    let fs = FaultInjectionFs::new();
    let o = Options {
        write_buffer_size: 4096,
        fs: common_block_tables(&fs), // the older log stays live
        ..opts(&fs, WalRecoveryMode::default())
    };
    let db = DB::open_with(o).unwrap();
    let mut i = 0;
    while log_files(&fs).len() < 2 {
        db.write(batch(i)).unwrap();
        i += 1;
    }
    // Its flush is blocked for ever: never closed, even when an assertion
    // below fails.
    std::mem::forget(db);
    let older = log_files(&fs)[0].clone();
    let data = fs.read_all(&older).unwrap();
    assert!(data.len() < 4096 + 4096 / 10, "{} bytes", data.len());
    // It ends with its last record, not with zeros (a fragment's last
    // bytes are the batch's value).
    assert_ne!(data[data.len() - 1], 0);
}
