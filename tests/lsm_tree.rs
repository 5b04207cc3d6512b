//! Flush, compaction, versions and the MANIFEST, with tiny sizes so that a
//! few thousand writes exercise many flushes and compactions.

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{Error, Options, DB};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn tiny(path: &Path) -> Options {
    Options {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        level0_slowdown_writes_trigger: 4,
        level0_stop_writes_trigger: 8,
        block_size: 512,
        ..Options::new(path)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn check_all(db: &DB, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in model {
        assert_eq!(
            db.get(k).unwrap().as_ref(),
            Some(v),
            "key {:?}",
            String::from_utf8_lossy(k)
        );
    }
    let got: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(|r| r.unwrap()).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "forward scan differs");
    let mut back: Vec<(Vec<u8>, Vec<u8>)> = db.iter().rev().map(|r| r.unwrap()).collect();
    back.reverse();
    assert!(back == want, "reverse scan differs");
}

#[test]
fn random_writes_flush_and_compact_into_levels() {
    random_writes_into_levels(false);
}

/// The same with dynamic level sizing: the data ends up in the last
/// levels, and every level between level 0 and the first one holding data
/// is empty.
#[test]
fn random_writes_with_dynamic_level_sizes() {
    let stats = random_writes_into_levels(true);
    let first = (1..stats.levels.len())
        .find(|&l| stats.levels[l].files > 0)
        .expect("data below level 0");
    assert!(first >= 4, "data reached level {first}: {stats:?}");
    for l in &stats.levels[..first] {
        assert_eq!(l.target_bytes, None, "{stats:?}");
    }
    assert!(stats.levels[first].target_bytes.is_some(), "{stats:?}");
    let last = stats.levels.last().unwrap();
    let total: u64 = stats.levels.iter().map(|l| l.bytes).sum();
    assert!(
        last.bytes * 2 > total,
        "most data in the last level: {stats:?}"
    );
}

fn random_writes_into_levels(dynamic: bool) -> aidb::DbStats {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = BTreeMap::new();
    let opts = |path: &Path| Options {
        level_compaction_dynamic_level_bytes: dynamic,
        ..tiny(path)
    };
    let stats = {
        let db = DB::open_with(opts(dir.path())).unwrap();
        for n in 0..20_000u32 {
            let k = key(rng.gen_range(0..3000));
            if n % 10 == 0 {
                db.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = format!("value-{n}-{}", "x".repeat(rng.gen_range(0..60))).into_bytes();
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        db.wait_for_idle().unwrap();
        let stats = db.stats();
        assert!(stats.flushes > 10, "{stats:?}");
        assert!(stats.compactions > 0, "{stats:?}");
        assert!(stats.levels[0].files < 2, "level 0 left over: {stats:?}");
        for (level, l) in stats.levels.iter().enumerate().skip(1) {
            if let Some(target) = l.target_bytes {
                assert!(
                    l.bytes <= target + (8 << 10) * 2,
                    "level {level} over target: {stats:?}"
                );
            }
        }
        check_all(&db, &model);
        stats
    };
    let db = DB::open_with(opts(dir.path())).unwrap();
    check_all(&db, &model);
    // Reopened with the other sizing, data stays where it is and reads
    // and compactions go on from there.
    drop(db);
    let db = DB::open_with(Options {
        level_compaction_dynamic_level_bytes: !dynamic,
        ..tiny(dir.path())
    })
    .unwrap();
    for n in 0..5_000u32 {
        let k = key(rng.gen_range(0..3000));
        let v = format!("again-{n}").into_bytes();
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    db.wait_for_idle().unwrap();
    check_all(&db, &model);
    stats
}

/// Level-0 files that overlap neither one another nor the level they go
/// to (sequential writes) move down without being rewritten, all at once.
#[test]
fn disjoint_level0_files_move_down_together() {
    let dir = tempfile::tempdir().unwrap();
    for dynamic in [false, true] {
        let path = dir.path().join(format!("db-{dynamic}"));
        let db = DB::open_with(Options {
            level0_file_num_compaction_trigger: 4,
            level_compaction_dynamic_level_bytes: dynamic,
            ..Options::new(&path)
        })
        .unwrap();
        for batch in 0..8u32 {
            for i in 0..100 {
                db.put(key(batch * 100 + i), b"v").unwrap();
            }
            db.flush().unwrap();
        }
        db.wait_for_idle().unwrap();
        let stats = db.stats();
        assert_eq!(stats.levels[0].files, 0, "{stats:?}");
        assert_eq!(stats.compaction_bytes_written, 0, "{stats:?}");
        assert_eq!(stats.trivial_moves, 2, "{stats:?}");
        let base = if dynamic { 6 } else { 1 };
        assert_eq!(stats.levels[base].files, 8, "{stats:?}");
        assert_eq!(db.iter().count(), 800);
        assert_eq!(db.get(key(437)).unwrap().as_deref(), Some(&b"v"[..]));
    }
    // Moved into the last level, a file holding a tombstone is rewritten
    // there (the tombstone has nothing left to delete); the others are not.
    let db = DB::open_with(Options {
        level0_file_num_compaction_trigger: 4,
        level_compaction_dynamic_level_bytes: true,
        ..Options::new(dir.path().join("tombstone"))
    })
    .unwrap();
    for batch in 0..4u32 {
        for i in 0..100 {
            db.put(key(batch * 100 + i), b"v").unwrap();
        }
        if batch == 2 {
            db.delete(key(250)).unwrap();
        }
        db.flush().unwrap();
    }
    db.wait_for_idle().unwrap();
    let stats = db.stats();
    assert_eq!(stats.trivial_moves, 1, "{stats:?}");
    assert_eq!(stats.compactions, 2, "the move and one rewrite: {stats:?}");
    assert!(stats.compaction_bytes_written > 0, "{stats:?}");
    assert_eq!(stats.levels[6].files, 4, "{stats:?}");
    assert_eq!(db.get(key(250)).unwrap(), None);
    assert_eq!(db.iter().count(), 399);
    drop(db);

    // Overlapping level-0 files are merged, not moved.
    let db = DB::open_with(Options {
        level0_file_num_compaction_trigger: 4,
        ..Options::new(dir.path().join("overlap"))
    })
    .unwrap();
    for round in 0..4u32 {
        for i in 0..100 {
            db.put(key(i * 4 + round), round.to_string()).unwrap();
        }
        db.put(key(0), round.to_string()).unwrap();
        db.flush().unwrap();
    }
    db.wait_for_idle().unwrap();
    let stats = db.stats();
    assert_eq!(stats.trivial_moves, 0, "{stats:?}");
    assert_eq!(stats.levels[0].files, 0, "{stats:?}");
    assert_eq!(db.get(key(0)).unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(db.iter().count(), 400);
}

#[test]
fn compact_range_drops_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(tiny(dir.path())).unwrap();
    let value = [b'v'; 100];
    for round in 0..5 {
        for i in 0..2000 {
            db.put(key(i), [&value[..], &[round as u8]].concat())
                .unwrap();
        }
    }
    for i in 0..1000 {
        db.delete(key(i)).unwrap();
    }
    db.compact_range(..).unwrap();
    db.wait_for_idle().unwrap();
    let stats = db.stats();
    let live: u64 = stats.levels.iter().map(|l| l.bytes).sum();
    let logical = 1000 * (9 + 101) as u64;
    println!("live {live} bytes for {logical} logical bytes: {stats:?}");
    assert!(
        live as f64 <= logical as f64 * 1.15 + 4096.0,
        "live {live} vs logical {logical}"
    );
    assert_eq!(db.iter().count(), 1000);
    assert_eq!(db.get(key(1500)).unwrap().unwrap().last(), Some(&4));
}

#[test]
fn snapshots_survive_flushes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(tiny(dir.path())).unwrap();
    for i in 0..500 {
        db.put(key(i), b"old").unwrap();
    }
    let snap = db.snapshot();
    let iter_before = db.iter();
    for i in 0..500 {
        if i % 2 == 0 {
            db.delete(key(i)).unwrap();
        } else {
            db.put(key(i), b"new").unwrap();
        }
    }
    for _ in 0..3 {
        for i in 500..1500 {
            db.put(key(i), vec![b'f'; 50]).unwrap();
        }
    }
    db.compact_range(..).unwrap();
    db.wait_for_idle().unwrap();
    for i in 0..500 {
        assert_eq!(snap.get(key(i)).unwrap(), Some(b"old".to_vec()), "key {i}");
    }
    assert_eq!(snap.range(key(0)..key(500)).count(), 500);
    assert_eq!(iter_before.count(), 500);
    assert_eq!(db.get(key(2)).unwrap(), None);
    assert_eq!(db.get(key(3)).unwrap(), Some(b"new".to_vec()));
    drop(snap);
    db.compact_range(..).unwrap();
    assert_eq!(db.range(key(0)..key(500)).count(), 250);
}

#[test]
fn directory_holds_only_live_files_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = DB::open_with(tiny(dir.path())).unwrap();
        for i in 0..5000 {
            db.put(key(i % 1200), vec![b'x'; 40]).unwrap();
        }
    }
    let db = DB::open_with(tiny(dir.path())).unwrap();
    db.wait_for_idle().unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let manifests = names.iter().filter(|n| n.starts_with("MANIFEST-")).count();
    let logs = names.iter().filter(|n| n.ends_with(".log")).count();
    let tmps = names.iter().filter(|n| n.ends_with(".tmp")).count();
    assert_eq!((manifests, logs, tmps), (1, 1, 0), "{names:?}");
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    let listed: usize = db.stats().levels.iter().map(|l| l.files).sum();
    assert_eq!(tables, listed, "{names:?}");
}

#[test]
fn damaged_or_missing_current_is_corruption() {
    let fs = FaultInjectionFs::new();
    let opts = Options {
        fs: Arc::new(fs.clone()),
        ..tiny(Path::new("/db"))
    };
    {
        let db = DB::open_with(opts.clone()).unwrap();
        for i in 0..2000 {
            db.put(key(i), b"v").unwrap();
        }
        db.flush().unwrap();
    }
    let current = Path::new("/db/CURRENT");
    let saved = fs.read_all(current).unwrap();

    fs.remove_file(current).unwrap();
    match DB::open_with(opts.clone()) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, current),
        other => panic!("missing CURRENT: {other:?}"),
    }

    let mut f = fs.create(current).unwrap();
    f.append(b"MANIFEST-999999\n").unwrap();
    drop(f);
    match DB::open_with(opts.clone()) {
        Err(Error::Corruption { file, .. }) => {
            assert!(file.to_string_lossy().contains("MANIFEST-999999"))
        }
        other => panic!("dangling CURRENT: {other:?}"),
    }

    let mut f = fs.create(current).unwrap();
    f.append(&saved).unwrap();
    drop(f);
    let manifest = Path::new("/db").join(String::from_utf8(saved).unwrap().trim());
    fs.corrupt_byte(&manifest, 40, 0x10).unwrap();
    match DB::open_with(opts) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, manifest),
        other => panic!("damaged MANIFEST: {other:?}"),
    }
}

/// Puts `k` (50 KB), takes a snapshot, deletes `k`, and compacts until the
/// put and its tombstone (both kept for the snapshot) reach the last level;
/// then drops the snapshot. Returns the database and its level sizes.
fn garbage_in_the_last_level(dir: &Path) -> DB {
    let db = DB::open(dir).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let value: Vec<u8> = (0..50_000).map(|_| rng.gen()).collect();
    db.put("k", value).unwrap();
    let snap = db.snapshot();
    db.delete("k").unwrap();
    for _ in 0..8 {
        db.compact_range(..).unwrap();
    }
    let levels = db.stats().levels;
    let last = levels.len() - 1;
    assert!(levels[last].bytes > 40_000, "{levels:?}");
    assert_eq!(snap.get("k").unwrap().map(|v| v.len()), Some(50_000));
    drop(snap);
    db
}

fn table_bytes(db: &DB) -> u64 {
    db.stats().levels.iter().map(|l| l.bytes).sum()
}

/// Versions kept in the last level for a snapshot used to stay for ever:
/// `compact_range` never took last-level files as input and the background
/// picker skipped that level.
#[test]
fn compact_range_reclaims_last_level_garbage_once_no_snapshot_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = garbage_in_the_last_level(dir.path());
    db.compact_range(..).unwrap();
    assert_eq!(db.get("k").unwrap(), None);
    assert!(table_bytes(&db) < 1000, "{:?}", db.stats().levels);
    drop(db);
    let db = DB::open(dir.path()).unwrap();
    assert!(table_bytes(&db) < 1000, "{:?}", db.stats().levels);
}

#[test]
fn background_compaction_reclaims_last_level_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let db = garbage_in_the_last_level(dir.path());
    db.wait_for_idle().unwrap();
    assert_eq!(db.get("k").unwrap(), None);
    assert!(table_bytes(&db) < 1000, "{:?}", db.stats().levels);
    // Files rewritten at the bottom hold no garbage and are not rewritten
    // again and again.
    db.put("a", "1").unwrap();
    for _ in 0..8 {
        db.compact_range(..).unwrap();
    }
    db.wait_for_idle().unwrap();
    let compactions = db.stats().compactions;
    db.wait_for_idle().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(db.stats().compactions, compactions);
    assert_eq!(db.get("a").unwrap(), Some(b"1".to_vec()));
}

/// `compact_range` rewrites the last-level files of its range that hold
/// sequence numbers, skipping those that are all zeros. It used to rewrite
/// them in one job, whose output spanned the skipped files in between:
/// two files of the last level then overlapped, and reads of that level
/// (which look at one file per key) lost the keys of the skipped one.
#[test]
fn compact_range_never_makes_last_level_files_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(Options {
        num_levels: 2,
        ..Options::new(dir.path())
    })
    .unwrap();
    // The middle file: written before any snapshot, all sequence numbers 0.
    for k in ["b1", "b2", "b3"] {
        db.put(k, k).unwrap();
    }
    db.compact_range(..).unwrap();
    // The outer files keep their sequence numbers for the snapshot.
    let snap = db.snapshot();
    db.put("a1", "a1").unwrap();
    db.compact_range("a".."b").unwrap();
    db.put("c1", "c1").unwrap();
    db.compact_range("c".."d").unwrap();
    assert_eq!(db.stats().levels[1].files, 3, "{:?}", db.stats().levels);
    // Rewrites the two outer files, not the middle one.
    db.compact_range(..).unwrap();
    let want: Vec<(Vec<u8>, Vec<u8>)> = ["a1", "b1", "b2", "b3", "c1"]
        .iter()
        .map(|k| (k.as_bytes().to_vec(), k.as_bytes().to_vec()))
        .collect();
    let check = |db: &DB| {
        for (k, v) in &want {
            assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{k:?}");
        }
        let got: Vec<_> = db.iter().map(|r| r.unwrap()).collect();
        assert_eq!(got, want);
        let mut back: Vec<_> = db.iter().rev().map(|r| r.unwrap()).collect();
        back.reverse();
        assert_eq!(back, want);
    };
    check(&db);
    assert_eq!(snap.get("b2").unwrap(), Some(b"b2".to_vec()));
    drop(snap);
    drop(db);
    check(&DB::open(dir.path()).unwrap());
}

/// `verify()` on a database that is being written: logs made obsolete and
/// deleted by a flush, and MANIFESTs replaced, while it reads them are not
/// damage. (Found by the randomized crash test: it reported the logs a
/// concurrent flush had just deleted as missing.)
#[test]
fn verify_during_writes_flushes_and_compactions_finds_nothing() {
    let fs = FaultInjectionFs::new();
    let db = Arc::new(
        DB::open_with(Options {
            fs: Arc::new(fs.clone()),
            ..tiny(Path::new("/db"))
        })
        .unwrap(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                db.put(key(i % 3000), [b'v'; 100]).unwrap();
                i += 1;
            }
        })
    };
    let started = std::time::Instant::now();
    let mut runs = 0;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        let damage = db.verify();
        assert!(damage.is_empty(), "verify() run {runs}: {damage:?}");
        runs += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(runs > 10);
}

/// Table files this process holds open in `dir`, and how many of those
/// were deleted (an open handle keeps a deleted file's space in use).
fn open_tables(dir: &Path) -> (usize, usize) {
    let (mut open, mut deleted) = (0, 0);
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let name = target.to_string_lossy();
        if target.starts_with(dir) && name.contains(".sst") {
            open += 1;
            if name.ends_with(" (deleted)") {
                deleted += 1;
            }
        }
    }
    (open, deleted)
}

/// `max_open_files` bounds the table files open at once, counting those
/// kept open with their live files for lock-free lookups; and a table
/// compacted away is closed once no reader needs it.
#[test]
fn open_tables_stay_within_max_open_files_and_close_when_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    let db = DB::open_with(Options {
        max_open_files: 16,
        ..tiny(&path)
    })
    .unwrap();
    let value = [b'v'; 100];
    for i in 0..4000 {
        db.put(key(i), value).unwrap();
    }
    db.wait_for_idle().unwrap();
    let files = db.stats().levels.iter().map(|l| l.files).sum::<usize>();
    assert!(files > 40, "{files} tables");
    for _ in 0..2 {
        for i in (0..4000).step_by(7) {
            assert_eq!(db.get(key(i)).unwrap().as_deref(), Some(&value[..]));
        }
        assert_eq!(db.iter().count(), 4000);
        let (open, _) = open_tables(&path);
        assert!((1..=16).contains(&open), "{open} tables open");
    }
    for i in 0..4000 {
        db.put(key(i), b"new").unwrap();
    }
    db.compact_range(..).unwrap();
    db.wait_for_idle().unwrap();
    assert_eq!(db.get(key(5)).unwrap().as_deref(), Some(&b"new"[..]));
    let (open, deleted) = open_tables(&path);
    assert_eq!(deleted, 0, "{open} tables open, {deleted} of them deleted");
}
