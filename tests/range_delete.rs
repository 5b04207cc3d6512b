//! `delete_range` through the public API: what reads, iterators (both
//! directions, seeks), snapshots and batches see, wherever the deleted keys
//! and the tombstone live (memtable, level 0, deeper levels); that it
//! survives flushes, compactions and reopening; and that compaction gives
//! the space back.

use aidb::{ColumnFamilyOptions, Error, Options, WriteBatch, DB};
use std::collections::BTreeMap;
use std::path::Path;

fn small(path: &Path) -> Options {
    Options {
        write_buffer_size: 8 << 10,
        target_file_size: 16 << 10,
        max_bytes_for_level_base: 64 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Options::new(path)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Checks every way of reading the database against `model`.
fn check(db: &DB, model: &Model, what: &str) {
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(|r| r.unwrap()).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(fwd == want, "{what}: forward scan differs");
    let mut rev: Vec<(Vec<u8>, Vec<u8>)> = db.iter().rev().map(|r| r.unwrap()).collect();
    rev.reverse();
    assert!(rev == want, "{what}: reverse scan differs");
    for i in (0..3000).step_by(37) {
        let k = key(i);
        assert_eq!(
            db.get(&k).unwrap().as_ref(),
            model.get(&k),
            "{what}: get {i}"
        );
        // A seek into (or just before) a deleted stretch lands after it.
        let got = db.range(k.clone()..).next().map(|r| r.unwrap().0);
        let want = model.range(k.clone()..).next().map(|(k, _)| k.clone());
        assert_eq!(got, want, "{what}: seek {i}");
        let got = db.range(..k.clone()).next_back().map(|r| r.unwrap().0);
        let want = model.range(..k.clone()).next_back().map(|(k, _)| k.clone());
        assert_eq!(got, want, "{what}: reverse seek {i}");
    }
}

fn delete_in_model(model: &mut Model, lo: u32, hi: u32) {
    for i in lo..hi {
        model.remove(&key(i));
    }
}

#[test]
fn keys_are_gone_wherever_they_and_the_tombstone_live() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(small(dir.path())).unwrap();
    let mut model = Model::new();
    // Deep levels, then level 0, then the memtable.
    for i in 0..3000u32 {
        db.put(key(i), format!("deep{i}")).unwrap();
        model.insert(key(i), format!("deep{i}").into_bytes());
    }
    db.compact_range(..).unwrap();
    for i in (0..3000u32).step_by(3) {
        db.put(key(i), format!("l0-{i}")).unwrap();
        model.insert(key(i), format!("l0-{i}").into_bytes());
    }
    db.flush().unwrap();
    for i in (0..3000u32).step_by(7) {
        db.put(key(i), format!("mem{i}")).unwrap();
        model.insert(key(i), format!("mem{i}").into_bytes());
    }
    // Overlapping ranges, one nested in another, one touching another.
    db.delete_range(key(100)..key(900)).unwrap();
    db.delete_range(key(400)..key(500)).unwrap();
    db.delete_range(key(900)..key(1000)).unwrap();
    db.delete_range(key(2000)..key(2500)).unwrap();
    delete_in_model(&mut model, 100, 1000);
    delete_in_model(&mut model, 2000, 2500);
    check(&db, &model, "tombstones in the memtable");

    // Writes after the tombstone are not deleted by it.
    for i in (2100..2200u32).step_by(2) {
        db.put(key(i), b"after").unwrap();
        model.insert(key(i), b"after".to_vec());
    }
    check(&db, &model, "rewritten after the tombstone");
    db.flush().unwrap();
    check(&db, &model, "tombstones in level 0");
    db.wait_for_idle().unwrap();
    check(&db, &model, "after background compactions");
    db.compact_range(..).unwrap();
    check(&db, &model, "after compact_range");
    db.close().unwrap();
    let db = DB::open_with(small(dir.path())).unwrap();
    check(&db, &model, "reopened");
}

#[test]
fn replayed_from_the_log_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(small(dir.path())).unwrap();
    let mut model = Model::new();
    for i in 0..3000u32 {
        db.put(key(i), b"v").unwrap();
        model.insert(key(i), b"v".to_vec());
    }
    db.flush().unwrap();
    db.delete_range(key(10)..key(2990)).unwrap();
    delete_in_model(&mut model, 10, 2990);
    // Not closed: the tombstone is only in the log. The leaked handle's
    // background threads outlive it, so let them finish first: a
    // compaction still running would delete files under the reopened one.
    db.wait_for_idle().unwrap();
    std::mem::forget(db);
    std::fs::remove_file(dir.path().join("LOCK")).ok();
    let db = DB::open_with(small(dir.path())).unwrap();
    check(&db, &model, "recovered");
}

#[test]
fn snapshots_keep_seeing_what_was_deleted_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(small(dir.path())).unwrap();
    for i in 0..3000u32 {
        db.put(key(i), b"old").unwrap();
    }
    let before = db.snapshot();
    db.delete_range(key(0)..key(3000)).unwrap();
    assert_eq!(db.iter().count(), 0);
    for stage in ["memtable", "flushed", "compacted"] {
        match stage {
            "flushed" => db.flush().unwrap(),
            "compacted" => db.compact_range(..).unwrap(),
            _ => {}
        }
        assert_eq!(before.iter().count(), 3000, "{stage}");
        assert_eq!(before.iter().rev().count(), 3000, "{stage}");
        assert_eq!(
            before.get(key(1234)).unwrap().as_deref(),
            Some(&b"old"[..]),
            "{stage}"
        );
        assert_eq!(db.get(key(1234)).unwrap(), None, "{stage}");
        assert_eq!(db.iter().rev().count(), 0, "{stage}");
    }
    drop(before);
    db.compact_range(..).unwrap();
    assert_eq!(db.iter().count(), 0);
}

#[test]
fn batch_order_decides_and_families_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let other = db
        .create_column_family("other", ColumnFamilyOptions::default())
        .unwrap();
    for k in ["a", "b", "c", "d"] {
        db.put(k, "v").unwrap();
        other.put(k, "v").unwrap();
    }
    let mut batch = WriteBatch::new();
    batch.put("b", "in batch, before");
    batch.delete_range("a".."c");
    batch.put("a", "in batch, after");
    db.write(batch).unwrap();
    assert_eq!(
        db.get("a").unwrap().as_deref(),
        Some(&b"in batch, after"[..])
    );
    assert_eq!(db.get("b").unwrap(), None);
    assert_eq!(db.get("c").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(other.iter().count(), 4, "another family is untouched");

    other.delete_range("b"..="c").unwrap();
    let keys: Vec<Vec<u8>> = other.iter().map(|r| r.unwrap().0).collect();
    assert_eq!(
        keys,
        vec![b"a".to_vec(), b"d".to_vec()],
        "an inclusive end is deleted too"
    );
    let mut batch = WriteBatch::new();
    batch.delete_range_cf(&other, "a".."z");
    db.write(batch).unwrap();
    assert_eq!(other.iter().count(), 0);
    assert_eq!(db.iter().count(), 3);
}

#[test]
fn bad_and_empty_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    db.put("m", "v").unwrap();
    assert!(matches!(
        db.delete_range("a"..),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.delete_range(..),
        Err(Error::InvalidArgument(_))
    ));
    let mut batch = WriteBatch::new();
    batch.put("x", "y").delete_range("a"..);
    assert!(matches!(db.write(batch), Err(Error::InvalidArgument(_))));
    assert_eq!(db.get("x").unwrap(), None, "a refused batch writes nothing");
    // Empty or backwards ranges delete nothing.
    db.delete_range("m".."m").unwrap();
    db.delete_range("z".."a").unwrap();
    assert_eq!(db.get("m").unwrap().as_deref(), Some(&b"v"[..]));
    // A range without a start deletes from the first key.
    db.delete_range(.."n").unwrap();
    assert_eq!(db.get("m").unwrap(), None);
    let big = vec![b'k'; aidb::MAX_KEY_SIZE + 1];
    assert!(matches!(
        db.delete_range(b"a".to_vec()..big),
        Err(Error::InvalidArgument(_))
    ));
}

/// Bytes of every file in `dir`.
fn disk_use(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn compaction_gives_the_space_back() {
    let opts = |p: &Path| Options {
        write_buffer_size: 256 << 10,
        target_file_size: 256 << 10,
        ..Options::new(p)
    };
    let value = |i: u32| format!("value-{i:08}-").repeat(8);
    let n = 100_000u32;
    let live = |i: u32| i < n / 20 || i >= n - n / 20;
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(opts(dir.path())).unwrap();
    for i in 0..n {
        db.put(key(i), value(i)).unwrap();
    }
    db.flush().unwrap();
    db.delete_range(key(n / 20)..key(n - n / 20)).unwrap();
    db.compact_range(..).unwrap();
    db.close().unwrap();
    // The same live data written on its own, for comparison.
    let alone = tempfile::tempdir().unwrap();
    let db2 = DB::open_with(opts(alone.path())).unwrap();
    for i in (0..n).filter(|&i| live(i)) {
        db2.put(key(i), value(i)).unwrap();
    }
    db2.compact_range(..).unwrap();
    db2.close().unwrap();
    let (used, needed) = (disk_use(dir.path()), disk_use(alone.path()));
    assert!(
        used as f64 <= needed as f64 * 1.15,
        "{used} bytes on disk for {needed} bytes of live data"
    );
    let db = DB::open_with(opts(dir.path())).unwrap();
    assert_eq!(db.iter().count() as u32, n / 10);
    assert!(db.verify().is_empty());
}

#[test]
fn a_tombstone_over_a_deeper_level_keeps_deleting_after_compactions() {
    // The tombstone reaches a level above the data only: until the two meet
    // in a compaction it must hide keys in files it does not overlap by
    // point keys.
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(small(dir.path())).unwrap();
    for i in 0..3000u32 {
        db.put(key(i), b"deep").unwrap();
    }
    db.compact_range(..).unwrap();
    db.put(key(5000), b"x").unwrap();
    db.delete_range(key(1)..key(2999)).unwrap();
    db.flush().unwrap();
    assert_eq!(db.iter().count(), 3);
    assert_eq!(db.get(key(1500)).unwrap(), None);
    // Level 0 only: push the tombstone down by a manual compaction of a
    // range that covers only its start.
    db.compact_range(key(0)..key(2)).unwrap();
    assert_eq!(db.iter().count(), 3);
    assert_eq!(db.iter().rev().count(), 3);
    assert_eq!(db.get(key(2000)).unwrap(), None);
}
