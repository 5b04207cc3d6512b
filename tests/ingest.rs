//! `SstWriter` and `DB::ingest`: ordering checks, newest-wins with
//! snapshot isolation, placement, all-or-nothing under failures and
//! crashes.

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{ColumnFamilyOptions, Error, IngestOptions, Options, SstWriter, DB};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn write_sst(
    path: &Path,
    opts: &Options,
    keys: impl IntoIterator<Item = (String, Option<String>)>,
) -> PathBuf {
    let mut w = SstWriter::create(path, opts).unwrap();
    for (k, v) in keys {
        match v {
            Some(v) => w.put(k, v).unwrap(),
            None => w.delete(k).unwrap(),
        }
    }
    w.finish().unwrap();
    path.to_path_buf()
}

fn all(db: &DB) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter().collect::<aidb::Result<_>>().unwrap()
}

#[test]
fn writer_checks_order_and_reports_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let mut w = SstWriter::create(dir.path().join("a.sst"), &opts).unwrap();
    w.put("b", "1").unwrap();
    assert!(matches!(w.put("b", "2"), Err(Error::InvalidArgument(_))));
    assert!(matches!(w.put("a", "2"), Err(Error::InvalidArgument(_))));
    assert!(matches!(w.delete("a"), Err(Error::InvalidArgument(_))));
    w.delete("c").unwrap();
    w.put("d", "4").unwrap();
    let info = w.finish().unwrap();
    assert_eq!(info.smallest_key, b"b");
    assert_eq!(info.largest_key, b"d");
    assert_eq!(info.entries, 3);
    assert_eq!(
        info.size,
        std::fs::metadata(dir.path().join("a.sst")).unwrap().len()
    );
    let empty = SstWriter::create(dir.path().join("e.sst"), &opts).unwrap();
    assert!(matches!(empty.finish(), Err(Error::InvalidArgument(_))));
    assert!(!dir.path().join("e.sst").exists());
}

#[test]
fn ingested_values_win_and_snapshots_keep_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let db = DB::open_with(opts.clone()).unwrap();
    for i in 0..100 {
        db.put(format!("k{i:03}"), "old-table").unwrap();
    }
    db.flush().unwrap();
    for i in 50..150 {
        db.put(format!("k{i:03}"), "old-mem").unwrap();
    }
    let before = db.snapshot();
    let old = all(&db);
    let file = write_sst(
        &dir.path().join("in.sst"),
        &opts,
        (0..200).step_by(2).map(|i| {
            let k = format!("k{i:03}");
            (
                k,
                if i % 10 == 0 {
                    None
                } else {
                    Some("new".into())
                },
            )
        }),
    );
    db.ingest(&[&file], IngestOptions::default()).unwrap();
    assert!(file.exists(), "kept without move_files");
    let mut expect: BTreeMap<Vec<u8>, Vec<u8>> = old.iter().cloned().collect();
    for i in (0..200).step_by(2) {
        let k = format!("k{i:03}").into_bytes();
        if i % 10 == 0 {
            expect.remove(&k);
        } else {
            expect.insert(k, b"new".to_vec());
        }
    }
    let expect: Vec<_> = expect.into_iter().collect();
    assert_eq!(all(&db), expect);
    assert_eq!(db.get("k001").unwrap(), Some(b"old-table".to_vec()));
    assert_eq!(db.get("k052").unwrap(), Some(b"new".to_vec()));
    assert_eq!(db.get("k050").unwrap(), None);
    let snap: Vec<_> = before.iter().collect::<aidb::Result<_>>().unwrap();
    assert_eq!(snap, old, "the snapshot from before sees none of it");
    assert_eq!(before.get("k052").unwrap(), Some(b"old-mem".to_vec()));
    // Later writes win over ingested data.
    db.put("k052", "newest").unwrap();
    assert_eq!(db.get("k052").unwrap(), Some(b"newest".to_vec()));
    drop(before);
    db.compact_range(..).unwrap();
    assert_eq!(db.get("k052").unwrap(), Some(b"newest".to_vec()));
    assert_eq!(db.get("k054").unwrap(), Some(b"new".to_vec()));
    drop(db);
    let db = DB::open_with(opts).unwrap();
    assert_eq!(db.get("k054").unwrap(), Some(b"new".to_vec()));
    assert_eq!(db.get("k050").unwrap(), None);
    assert!(db.verify().is_empty());
}

#[test]
fn files_go_to_the_lowest_level_free_of_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let db = DB::open_with(opts.clone()).unwrap();
    let a = write_sst(
        &dir.path().join("a.sst"),
        &opts,
        [("a".to_string(), Some("1".to_string()))],
    );
    db.ingest(&[a], IngestOptions::default()).unwrap();
    let levels = |db: &DB| {
        db.stats()
            .levels
            .iter()
            .map(|l| l.files)
            .collect::<Vec<_>>()
    };
    let last = opts.num_levels - 1;
    assert_eq!(levels(&db)[last], 1, "empty database: the last level");
    let b = write_sst(
        &dir.path().join("b.sst"),
        &opts,
        [("a".to_string(), Some("2".to_string()))],
    );
    db.ingest(&[b], IngestOptions::default()).unwrap();
    assert_eq!(levels(&db)[last - 1], 1, "just above the file it overlaps");
    assert_eq!(db.get("a").unwrap(), Some(b"2".to_vec()));
    let c = write_sst(
        &dir.path().join("c.sst"),
        &opts,
        [("z".to_string(), Some("3".to_string()))],
    );
    db.ingest(
        &[c],
        IngestOptions {
            move_files: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(levels(&db)[last], 2, "no overlap: the last level again");
    assert!(!dir.path().join("c.sst").exists(), "moved");
}

#[test]
fn ingest_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let db = DB::open_with(opts.clone()).unwrap();
    db.put("x", "1").unwrap();
    let good = write_sst(
        &dir.path().join("good.sst"),
        &opts,
        (0..1000).map(|i| (format!("a{i:04}"), Some("v".repeat(50)))),
    );
    let bad = write_sst(
        &dir.path().join("bad.sst"),
        &opts,
        (0..1000).map(|i| (format!("b{i:04}"), Some("w".repeat(50)))),
    );
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[100] ^= 0x40; // inside the first data block
    std::fs::write(&bad, &bytes).unwrap();
    let err = db
        .ingest(&[&good, &bad], IngestOptions::default())
        .unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(db.get("a0000").unwrap(), None, "nothing of the good file");
    // Overlapping files, and a missing one.
    let over = write_sst(
        &dir.path().join("over.sst"),
        &opts,
        [("a0500".to_string(), Some("o".to_string()))],
    );
    assert!(matches!(
        db.ingest(&[&good, &over], IngestOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(db
        .ingest(&[dir.path().join("missing.sst")], IngestOptions::default())
        .is_err());
    assert_eq!(all(&db).len(), 1);
    // A table of a database is not an SstWriter file (sequence numbers).
    db.put("y", "2").unwrap();
    db.flush().unwrap();
    let table = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap();
    assert!(db
        .ingest(&[table], IngestOptions::default())
        .unwrap_err()
        .is_corruption());
    // Memtable overlap without permission to flush.
    db.put("a0001", "mem").unwrap();
    let no_flush = IngestOptions {
        allow_blocking_flush: false,
        ..Default::default()
    };
    assert!(matches!(
        db.ingest(&[&good], no_flush),
        Err(Error::InvalidArgument(_))
    ));
    db.ingest(&[&good], IngestOptions::default()).unwrap();
    assert_eq!(db.get("a0001").unwrap(), Some("v".repeat(50).into_bytes()));
}

#[test]
fn column_family_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let db = DB::open_with(opts.clone()).unwrap();
    let cf = db
        .create_column_family("cf", ColumnFamilyOptions::default())
        .unwrap();
    let f = write_sst(
        &dir.path().join("f.sst"),
        &opts,
        [("k".to_string(), Some("v".to_string()))],
    );
    cf.ingest(&[f], IngestOptions::default()).unwrap();
    assert_eq!(cf.get("k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(db.get("k").unwrap(), None);
}

#[test]
fn crash_at_any_call_of_an_ingest_is_all_or_nothing() {
    // Over existing data (rewritten with a new sequence number), and into
    // an empty range (copied as it is).
    crash_at_any_call("k0005");
    crash_at_any_call("z");
}

#[test]
fn a_snapshot_keeps_a_non_overlapping_ingest_out() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let db = DB::open_with(opts.clone()).unwrap();
    db.put("a", "1").unwrap();
    let snap = db.snapshot();
    let f = write_sst(
        &dir.path().join("f.sst"),
        &opts,
        [("m".to_string(), Some("v".to_string()))],
    );
    db.ingest(&[f], IngestOptions::default()).unwrap();
    assert_eq!(snap.get("m").unwrap(), None);
    assert_eq!(snap.iter().count(), 1);
    assert_eq!(db.get("m").unwrap(), Some(b"v".to_vec()));
    assert!(db.snapshot().sequence() > snap.sequence());
}

fn crash_at_any_call(existing: &str) {
    let setup = |fs: &FaultInjectionFs| {
        let opts = Options {
            fs: Arc::new(fs.clone()),
            ..Options::new("/db")
        };
        let db = DB::open_with(opts.clone()).unwrap();
        db.put(existing, "old").unwrap();
        db.flush().unwrap();
        let mut files = Vec::new();
        for (n, range) in [(0, 0..100), (1, 100..200)] {
            let path = PathBuf::from(format!("/in{n}.sst"));
            write_sst(
                &path,
                &opts,
                range.map(|i| (format!("k{i:04}"), Some(format!("new{i}")))),
            );
            files.push(path);
        }
        fs.sync_dir(Path::new("/")).unwrap();
        (opts, db, files)
    };
    let calls = {
        let fs = FaultInjectionFs::new();
        let (_, db, files) = setup(&fs);
        let start = fs.call_count();
        db.ingest(&files, IngestOptions::default()).unwrap();
        fs.call_count() - start
    };
    for crash_at in 0..calls {
        let fs = FaultInjectionFs::new();
        let (opts, db, files) = setup(&fs);
        fs.crash_after(crash_at);
        let result = db.ingest(&files, IngestOptions::default());
        fs.power_cut();
        drop(db);
        let db = DB::open_with(Options {
            fs: Arc::new(fs.clone()),
            ..opts
        })
        .unwrap();
        let got = all(&db);
        if got.len() == 1 {
            assert!(
                result.is_err(),
                "crash at {crash_at}: acknowledged but lost"
            );
            assert_eq!(got[0].1, b"old");
        } else {
            assert_eq!(got.len(), 200, "crash at {crash_at}: part of the ingest");
            assert_eq!(db.get("k0005").unwrap(), Some(b"new5".to_vec()));
        }
        // New writes after recovery are newer than the ingested data.
        db.put("k0007", "after").unwrap();
        assert_eq!(db.get("k0007").unwrap(), Some(b"after".to_vec()));
    }
}

#[test]
fn log_replay_after_an_ingest_accepts_the_sequence_number_it_used() {
    // The ingest takes a sequence number no log record carries; a crash
    // after later writes makes the next open replay across that gap.
    let fs = FaultInjectionFs::new();
    let opts = Options {
        fs: Arc::new(fs.clone()),
        ..Options::new("/db")
    };
    let db = DB::open_with(opts.clone()).unwrap();
    let sync = aidb::WriteOptions { sync: true };
    let mut b = aidb::WriteBatch::new();
    b.put("a", "1");
    db.write_opt(b, &sync).unwrap();
    // Not overlapping the memtable (no flush, so one log holds the writes
    // before and after), and rewritten with a new number (a snapshot).
    let snap = db.snapshot();
    let f = write_sst(
        Path::new("/in.sst"),
        &opts,
        [("m".to_string(), Some("2".to_string()))],
    );
    db.ingest(&[f], IngestOptions::default()).unwrap();
    assert!(db.snapshot().sequence() == snap.sequence() + 1);
    let mut b = aidb::WriteBatch::new();
    b.put("b", "3");
    db.write_opt(b, &sync).unwrap();
    fs.power_cut();
    drop(db);
    let db = DB::open_with(Options {
        fs: Arc::new(fs.clone()),
        ..opts
    })
    .unwrap();
    assert_eq!(db.get("a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get("m").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get("b").unwrap(), Some(b"3".to_vec()));
}

/// By default (as RocksDB's `verify_checksums_before_ingest = false`)
/// ingest checks a file's properties and first and last entries, not every
/// block: damage in between is found when it is read, as corruption naming
/// the file, never served. With `verify_checksums` the ingest reads every
/// entry first and refuses the file, changing nothing.
#[test]
fn a_damaged_middle_block_is_refused_when_verifying_and_never_served_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path().join("db"));
    let db = DB::open_with(opts.clone()).unwrap();
    let keys: Vec<String> = (0..2000).map(|i| format!("k{i:05}")).collect();
    let path = write_sst(
        &dir.path().join("load.sst"),
        &opts,
        keys.iter()
            .map(|k| (k.clone(), Some(format!("{k}-{}", "v".repeat(60))))),
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let verifying = IngestOptions {
        verify_checksums: true,
        ..Default::default()
    };
    let err = db.ingest(&[&path], verifying).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(all(&db).is_empty(), "a refused ingest changes nothing");

    db.ingest(&[&path], IngestOptions::default()).unwrap();
    // Every key reads as its value or as corruption; none is missing or
    // wrong without an error, and some do fail.
    let mut failed = 0;
    for k in &keys {
        match db.get(k) {
            Ok(v) => assert_eq!(v, Some(format!("{k}-{}", "v".repeat(60)).into_bytes())),
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(e.to_string().contains(".sst"), "names the file: {e}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the damaged block was never read");
    let scan: aidb::Result<Vec<_>> = db.iter().collect();
    assert!(scan.unwrap_err().is_corruption());
}
