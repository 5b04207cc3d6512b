//! `DB::property` and `ColumnFamily::property`: each documented name
//! answers, and the figures follow what the database holds.

use aidb::{ColumnFamilyOptions, Options, DB, PROPERTIES};

fn prop(db: &DB, name: &str) -> u64 {
    db.property(name)
        .unwrap_or_else(|| panic!("{name} unknown"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_listed_property_answers_and_unknown_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    for (name, _) in PROPERTIES {
        let name = name.replace("<N>", "0");
        assert!(db.property(&name).is_some(), "{name}");
    }
    for bad in [
        "",
        "aidb.",
        "aidb.num-files-at-level",
        "aidb.num-files-at-level99",
        "rocksdb.stats",
    ] {
        assert_eq!(db.property(bad), None, "{bad:?}");
    }
}

#[test]
fn figures_follow_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(Options {
        max_background_jobs: 1,
        level0_file_num_compaction_trigger: 10,
        ..Options::new(dir.path())
    })
    .unwrap();
    assert_eq!(prop(&db, "aidb.cur-size-all-mem-tables"), 0);
    for i in 0..100u32 {
        db.put(format!("k{i:03}"), "v").unwrap();
    }
    db.delete("k000").unwrap();
    assert_eq!(prop(&db, "aidb.num-entries-active-mem-table"), 101);
    assert!(prop(&db, "aidb.cur-size-active-mem-table") > 0);
    // 101 entries, one of them a tombstone (counted twice, as RocksDB).
    assert_eq!(prop(&db, "aidb.estimate-num-keys"), 101);
    assert_eq!(prop(&db, "aidb.last-sequence"), 101);

    db.flush().unwrap();
    assert_eq!(prop(&db, "aidb.cur-size-all-mem-tables"), 0);
    assert_eq!(prop(&db, "aidb.num-files-at-level0"), 1);
    assert_eq!(prop(&db, "aidb.estimate-num-keys"), 99);
    let size = prop(&db, "aidb.total-sst-files-size");
    assert_eq!(size, db.stats().levels[0].bytes);
    assert_eq!(prop(&db, "aidb.estimate-live-data-size"), size);
    assert_eq!(prop(&db, "aidb.compaction-pending"), 0);
    assert_eq!(prop(&db, "aidb.estimate-pending-compaction-bytes"), 0);

    assert_eq!(prop(&db, "aidb.num-snapshots"), 0);
    assert_eq!(prop(&db, "aidb.oldest-snapshot-sequence"), 0);
    let snap = db.snapshot();
    db.put("later", "v").unwrap();
    let _second = db.snapshot();
    assert_eq!(prop(&db, "aidb.num-snapshots"), 2);
    assert_eq!(prop(&db, "aidb.oldest-snapshot-sequence"), snap.sequence());
    drop(snap);
    assert_eq!(prop(&db, "aidb.oldest-snapshot-sequence"), 102);

    db.compact_range(..).unwrap();
    assert_eq!(prop(&db, "aidb.num-files-at-level0"), 0);
    assert_eq!(prop(&db, "aidb.num-files-at-level1"), 1);
    assert_eq!(prop(&db, "aidb.num-running-compactions"), 0);
    assert_eq!(prop(&db, "aidb.background-errors"), 0);
    assert_eq!(db.property("aidb.background-error").as_deref(), Some(""));
    let levels = db.property("aidb.levelstats").unwrap();
    assert!(
        levels.starts_with("level files bytes target\n0 0 0 -\n1 1 "),
        "{levels}"
    );
    assert!(db
        .property("aidb.stats")
        .unwrap()
        .contains("keys_written 102"));
}

#[test]
fn column_families_answer_for_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let users = db
        .create_column_family("users", ColumnFamilyOptions::default())
        .unwrap();
    users.put("u", "1").unwrap();
    users.flush().unwrap();
    assert_eq!(
        users.property("aidb.num-files-at-level0").as_deref(),
        Some("1")
    );
    assert_eq!(
        db.property("aidb.num-files-at-level0").as_deref(),
        Some("0")
    );
    db.drop_column_family("users").unwrap();
    assert_eq!(users.property("aidb.num-files-at-level0"), None);
}
