//! Column families through the public API: creating, finding, dropping,
//! separate keyspaces, batches and snapshots across families, reopening
//! with recorded options, stale handles, and logs kept bounded when one
//! family is rarely written.

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{ColumnFamilyOptions, Error, Options, WriteBatch, DB};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn small() -> ColumnFamilyOptions {
    ColumnFamilyOptions {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Default::default()
    }
}

fn invalid(r: aidb::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::InvalidArgument(msg)) => msg,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn create_find_list_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    assert_eq!(db.column_family_names(), vec!["default".to_string()]);
    assert_eq!(db.default_column_family().name(), "default");
    let users = db.create_column_family("users", small()).unwrap();
    assert_eq!(users.name(), "users");
    assert!(invalid(db.create_column_family("users", small())).contains("exists"));
    invalid(db.create_column_family("", small()));
    invalid(db.create_column_family(&"x".repeat(256), small()));
    db.create_column_family(&"x".repeat(255), small()).unwrap();
    invalid(db.create_column_family(
        "bad",
        ColumnFamilyOptions {
            block_size: 1,
            ..Default::default()
        },
    ));
    let mut names = db.column_family_names();
    names.sort();
    assert_eq!(
        names,
        vec!["default".to_string(), "users".into(), "x".repeat(255)]
    );
    assert_eq!(db.column_family("users").unwrap().id(), users.id());
    assert!(db.column_family("nope").is_none());

    invalid(db.drop_column_family("default"));
    invalid(db.drop_column_family("nope"));
    db.drop_column_family("users").unwrap();
    assert!(db.column_family("users").is_none());
    invalid(db.drop_column_family("users"));
}

#[test]
fn families_are_separate_keyspaces() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let a = db.create_column_family("a", small()).unwrap();
    let b = db.create_column_family("b", small()).unwrap();
    for i in 0..500 {
        db.put(format!("k{i:03}"), "default").unwrap();
        a.put(format!("k{i:03}"), format!("a{i}")).unwrap();
        if i % 2 == 0 {
            b.put(format!("k{i:03}"), format!("b{i}")).unwrap();
        }
    }
    a.delete("k007").unwrap();
    assert_eq!(db.get("k007").unwrap(), Some(b"default".to_vec()));
    assert_eq!(a.get("k007").unwrap(), None);
    assert_eq!(b.get("k001").unwrap(), None);
    assert_eq!(b.get("k002").unwrap(), Some(b"b2".to_vec()));
    assert_eq!(a.iter().count(), 499);
    assert_eq!(b.iter().count(), 250);
    assert_eq!(db.iter().count(), 500);
    let back: Vec<Vec<u8>> = a
        .range("k100".."k105")
        .rev()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(
        back,
        ["k104", "k103", "k102", "k101", "k100"].map(|k| k.as_bytes().to_vec())
    );
    assert_eq!(b.prefix("k01").count(), 5);
    a.flush().unwrap();
    a.compact_range(..).unwrap();
    assert!(a.stats().flushes > 0);
    assert_eq!(a.get("k499").unwrap(), Some(b"a499".to_vec()));
    assert_eq!(db.get("k499").unwrap(), Some(b"default".to_vec()));
}

#[test]
fn a_batch_is_atomic_and_a_snapshot_consistent_across_families() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let a = db.create_column_family("a", small()).unwrap();
    let b = db.create_column_family("b", small()).unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put("x", "1")
        .put_cf(&a, "x", "1")
        .put_cf(&b, "x", "1");
    db.write(batch).unwrap();
    let snap = db.snapshot();
    let mut batch = WriteBatch::new();
    batch
        .put("x", "2")
        .put_cf(&a, "x", "2")
        .delete_cf(&b, "x")
        .put_cf(&b, "y", "2");
    db.write(batch).unwrap();
    assert_eq!(snap.get("x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(snap.get_cf(&a, "x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(snap.get_cf(&b, "x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(snap.iter_cf(&b).count(), 1);
    assert_eq!(snap.range_cf(&b, "y"..).count(), 0);
    assert_eq!(a.get("x").unwrap(), Some(b"2".to_vec()));
    assert_eq!(b.get("x").unwrap(), None);
    assert_eq!(b.get("y").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn families_and_their_recorded_options_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = DB::open(dir.path()).unwrap();
        let cf = db
            .create_column_family(
                "tuned",
                ColumnFamilyOptions {
                    max_bytes_for_level_base: 1 << 20,
                    ..small()
                },
            )
            .unwrap();
        for i in 0..300 {
            cf.put(format!("k{i}"), vec![b'v'; 100]).unwrap();
        }
        cf.flush().unwrap();
        db.wait_for_idle().unwrap();
        cf.put("unflushed", "yes").unwrap();
        // Not closed cleanly: the last write is only in the log (and no
        // background work is left to run in the leaked handle).
        std::mem::forget(db);
        std::fs::remove_file(dir.path().join("LOCK")).ok();
    }
    let db = DB::open(dir.path()).unwrap();
    let cf = db.column_family("tuned").expect("family reopened");
    assert_eq!(cf.get("unflushed").unwrap(), Some(b"yes".to_vec()));
    assert_eq!(cf.iter().count(), 301);
    assert_eq!(cf.stats().levels[1].target_bytes, Some(1 << 20));
    db.close().unwrap();
    // Options given at open win, and are recorded for the next open.
    let opts = Options {
        column_families: HashMap::from([(
            "tuned".to_string(),
            ColumnFamilyOptions {
                max_bytes_for_level_base: 2 << 20,
                ..small()
            },
        )]),
        ..Options::new(dir.path())
    };
    let db = DB::open_with(opts).unwrap();
    let cf = db.column_family("tuned").unwrap();
    assert_eq!(cf.stats().levels[1].target_bytes, Some(2 << 20));
    db.close().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let cf = db.column_family("tuned").unwrap();
    assert_eq!(cf.stats().levels[1].target_bytes, Some(2 << 20));
    assert_eq!(cf.iter().count(), 301);
}

#[test]
fn options_at_open_create_missing_families() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        column_families: HashMap::from([("new".to_string(), small())]),
        ..Options::new(dir.path())
    };
    let db = DB::open_with(opts.clone()).unwrap();
    db.column_family("new").unwrap().put("k", "v").unwrap();
    drop(db);
    let db = DB::open_with(opts).unwrap();
    assert_eq!(
        db.column_family("new").unwrap().get("k").unwrap(),
        Some(b"v".to_vec())
    );
}

#[test]
fn stale_handles_fail_cleanly_and_a_dropped_name_starts_empty() {
    let fs = FaultInjectionFs::new();
    let opts = Options {
        fs: Arc::new(fs.clone()),
        ..Options::new("/db")
    };
    let db = DB::open_with(opts.clone()).unwrap();
    let old = db.create_column_family("t", small()).unwrap();
    for i in 0..400 {
        old.put(format!("k{i}"), vec![b'x'; 64]).unwrap();
    }
    old.flush().unwrap();
    let tables = |fs: &FaultInjectionFs| {
        fs.list(Path::new("/db"))
            .unwrap()
            .iter()
            .filter(|n| n.ends_with(".sst"))
            .count()
    };
    assert!(tables(&fs) > 0);
    let mut iter = old.iter();
    assert!(iter.next().is_some());
    db.drop_column_family("t").unwrap();
    invalid(old.put("a", "b"));
    invalid(old.get("k1"));
    invalid(old.flush());
    assert!(old.iter().next().unwrap().is_err());
    let mut batch = WriteBatch::new();
    batch.put("default-key", "v").put_cf(&old, "a", "b");
    invalid(db.write(batch));
    assert_eq!(
        db.get("default-key").unwrap(),
        None,
        "the batch is all or nothing"
    );
    // The iterator made before the drop still reads its files; once it is
    // gone, they are deleted.
    assert_eq!(iter.count(), 399);
    db.wait_for_idle().unwrap(); // a compaction of it may still be running
    assert_eq!(
        tables(&fs),
        0,
        "the dropped family's tables are still there"
    );
    let new = db.create_column_family("t", small()).unwrap();
    assert_ne!(new.id(), old.id());
    assert_eq!(new.get("k1").unwrap(), None);
    invalid(old.get("k1"));
    drop(db);
    let db = DB::open_with(opts).unwrap();
    let new = db.column_family("t").unwrap();
    assert_eq!(new.iter().count(), 0);
    // After the database is closed, handles say so.
    db.close().unwrap();
    assert!(matches!(new.get("k"), Err(Error::Closed)));
}

#[test]
fn a_handle_from_another_database_is_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db1 = DB::open(d1.path()).unwrap();
    let db2 = DB::open(d2.path()).unwrap();
    let cf1 = db1.create_column_family("same", small()).unwrap();
    let _cf2 = db2.create_column_family("same", small()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put_cf(&cf1, "k", "v");
    invalid(db2.write(batch));
    assert_eq!(db2.column_family("same").unwrap().get("k").unwrap(), None);
}

/// A family written once and then never again must not keep every later
/// log alive: `max_total_wal_size` flushes it.
#[test]
fn a_rarely_written_family_does_not_pin_logs() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(Options {
        fs: Arc::new(fs.clone()),
        write_buffer_size: 4 << 10,
        max_total_wal_size: 64 << 10,
        ..Options::new("/db")
    })
    .unwrap();
    let rare = db.create_column_family("rare", small()).unwrap();
    rare.put("once", "1").unwrap();
    let logs = || {
        fs.list(Path::new("/db"))
            .unwrap()
            .iter()
            .filter(|n| n.ends_with(".log"))
            .count()
    };
    let mut most = 0;
    for i in 0..5000 {
        db.put(format!("k{i:05}"), vec![b'v'; 100]).unwrap();
        if i % 50 == 0 {
            most = most.max(logs());
        }
    }
    db.wait_for_idle().unwrap();
    // 64 KiB of logs is about 16 memtables of 4 KiB; flushes running
    // behind the writer (a loaded machine) keep a few more for a while.
    // Pinned by the rare family, every log would stay (200 or more).
    assert!(most <= 40, "{most} live logs");
    assert!(logs() <= 20, "{} live logs once idle", logs());
    assert_eq!(rare.get("once").unwrap(), Some(b"1".to_vec()));
    assert!(rare.stats().flushes >= 1);
    drop(db);
    let db = DB::open_with(Options {
        fs: Arc::new(fs.clone()),
        ..Options::new("/db")
    })
    .unwrap();
    assert_eq!(
        db.column_family("rare").unwrap().get("once").unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(db.iter().count(), 5000);
}

#[test]
fn many_families_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = DB::open(dir.path()).unwrap();
        for f in 0..20 {
            let cf = db.create_column_family(&format!("f{f}"), small()).unwrap();
            for i in 0..50 {
                cf.put(format!("k{i}"), format!("{f}-{i}")).unwrap();
            }
            if f % 3 == 0 {
                cf.flush().unwrap();
            }
        }
        db.drop_column_family("f5").unwrap();
    }
    let db = DB::open(dir.path()).unwrap();
    assert_eq!(db.column_family_names().len(), 20);
    assert!(db.column_family("f5").is_none());
    for f in (0..20).filter(|f| *f != 5) {
        let cf = db.column_family(&format!("f{f}")).unwrap();
        assert_eq!(cf.get("k49").unwrap(), Some(format!("{f}-49").into_bytes()));
        assert_eq!(cf.iter().count(), 50);
    }
}
