//! Compaction filters and TTL through the public API. TTL is measured in
//! whole seconds of the system clock, so these tests wait a few seconds.

mod common;

use aidb::{
    ColumnFamilyOptions, CompactionFilter, Error, FilterDecision, MergeOperator, Options, DB,
};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Removes keys starting with `tmp`, upper-cases values starting with `up:`.
struct Filter {
    calls: AtomicUsize,
}

impl CompactionFilter for Filter {
    fn filter(&self, _level: usize, key: &[u8], value: &[u8]) -> FilterDecision {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if key.starts_with(b"tmp") {
            FilterDecision::Remove
        } else if value.starts_with(b"up:") {
            FilterDecision::ChangeValue(value.to_ascii_uppercase())
        } else {
            FilterDecision::Keep
        }
    }
}

fn filtered(path: &Path, filter: Arc<Filter>) -> Options {
    Options {
        compaction_filter: Some(filter),
        ..Options::new(path)
    }
}

fn get(db: &DB, k: &str) -> Option<String> {
    db.get(k).unwrap().map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn filter_removes_and_changes_values_in_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let filter = Arc::new(Filter {
        calls: AtomicUsize::new(0),
    });
    let db = DB::open_with(filtered(dir.path(), filter.clone())).unwrap();
    db.put("tmp1", "old").unwrap();
    db.flush().unwrap();
    db.compact_range(..).unwrap();
    // A newer version over an older one: the older must not come back
    // when the newer is removed.
    db.put("tmp1", "new").unwrap();
    db.put("keep", "v").unwrap();
    db.put("shout", "up:hello").unwrap();
    assert_eq!(
        get(&db, "tmp1").as_deref(),
        Some("new"),
        "not compacted yet"
    );
    db.flush().unwrap();
    db.compact_range(..).unwrap();
    assert!(filter.calls.load(Ordering::Relaxed) >= 3);
    assert_eq!(get(&db, "tmp1"), None);
    assert_eq!(get(&db, "keep").as_deref(), Some("v"));
    assert_eq!(get(&db, "shout").as_deref(), Some("UP:HELLO"));
    let keys: Vec<Vec<u8>> = db.iter().rev().map(|r| r.unwrap().0).collect();
    assert_eq!(keys, vec![b"shout".to_vec(), b"keep".to_vec()]);
}

#[test]
fn filter_leaves_what_a_snapshot_sees() {
    let dir = tempfile::tempdir().unwrap();
    let filter = Arc::new(Filter {
        calls: AtomicUsize::new(0),
    });
    let db = DB::open_with(filtered(dir.path(), filter)).unwrap();
    db.put("tmp", "seen").unwrap();
    db.put("shout", "up:x").unwrap();
    let snap = db.snapshot();
    db.flush().unwrap();
    db.compact_range(..).unwrap();
    assert_eq!(snap.get("tmp").unwrap().as_deref(), Some(&b"seen"[..]));
    assert_eq!(snap.get("shout").unwrap().as_deref(), Some(&b"up:x"[..]));
    assert_eq!(get(&db, "tmp").as_deref(), Some("seen"));
    drop(snap);
    db.compact_range(..).unwrap();
    assert_eq!(get(&db, "tmp"), None);
    assert_eq!(get(&db, "shout").as_deref(), Some("UP:X"));
}

fn with_ttl(path: &Path, secs: u64) -> Options {
    Options {
        ttl: Some(Duration::from_secs(secs)),
        ..Options::new(path)
    }
}

#[test]
fn ttl_hides_expired_entries_and_compaction_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(with_ttl(dir.path(), 1)).unwrap();
    for i in 0..1000 {
        db.put(format!("old{i:04}"), "x".repeat(100)).unwrap();
    }
    db.flush().unwrap();
    db.put("mem", "in the memtable").unwrap();
    assert_eq!(
        get(&db, "old0001").map(|v| v.len()),
        Some(100),
        "the time is not part of the value"
    );
    assert_eq!(db.iter().count(), 1001);
    std::thread::sleep(Duration::from_millis(2100));
    db.put("new", "fresh").unwrap();
    assert_eq!(get(&db, "old0001"), None);
    assert_eq!(get(&db, "mem"), None);
    let keys: Vec<Vec<u8>> = db.iter().map(|r| r.unwrap().0).collect();
    assert_eq!(keys, vec![b"new".to_vec()]);
    assert_eq!(db.iter().rev().count(), 1);
    // A newer write of an expired key reads; the expired one stays hidden.
    db.put("old0002", "again").unwrap();
    assert_eq!(get(&db, "old0002").as_deref(), Some("again"));
    db.flush().unwrap();
    db.compact_range(..).unwrap();
    let bytes: u64 = db.stats().levels.iter().map(|l| l.bytes).sum();
    assert!(
        bytes < 2000,
        "{bytes} bytes of tables left after the expired data went"
    );
    assert_eq!(get(&db, "new").as_deref(), Some("fresh"));
    assert_eq!(get(&db, "old0002").as_deref(), Some("again"));
}

#[test]
fn expired_tables_are_compacted_without_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(with_ttl(dir.path(), 1)).unwrap();
    for i in 0..1000 {
        db.put(format!("k{i:04}"), "x".repeat(100)).unwrap();
    }
    db.flush().unwrap();
    let before: u64 = db.stats().levels.iter().map(|l| l.bytes).sum();
    assert!(before > 10_000);
    // No more writes: the background must notice the table's data expire.
    let db = Arc::new(db);
    let d = db.clone();
    common::within(30, "the expired table to be compacted away", move || loop {
        let bytes: u64 = d.stats().levels.iter().map(|l| l.bytes).sum();
        if bytes == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    });
    assert_eq!(db.iter().count(), 0);
}

/// Adds little-endian u64s.
struct Add;

impl MergeOperator for Add {
    fn name(&self) -> &str {
        "add"
    }
    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>> {
        let n = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let mut total = match existing {
            Some(v) => n(v)?,
            None => 0,
        };
        for op in operands {
            total += n(op)?;
        }
        Some(total.to_le_bytes().to_vec())
    }
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        self.full_merge(key, None, operands)
    }
}

#[test]
fn operands_under_a_ttl_expire_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |p: &Path| Options {
        merge_operator: Some(Arc::new(Add)),
        ttl: Some(Duration::from_secs(2)),
        ..Options::new(p)
    };
    let db = DB::open_with(opts(dir.path())).unwrap();
    let num = |db: &DB| {
        db.get("n")
            .unwrap()
            .map(|v| u64::from_le_bytes(v.try_into().unwrap()))
    };
    db.merge("n", 1u64.to_le_bytes()).unwrap();
    db.merge("n", 2u64.to_le_bytes()).unwrap();
    db.flush().unwrap();
    assert_eq!(num(&db), Some(3));
    std::thread::sleep(Duration::from_millis(1500));
    db.merge("n", 10u64.to_le_bytes()).unwrap();
    db.flush().unwrap();
    // Compaction must not fold the older operands into the newer one:
    // they expire first.
    db.compact_range(..).unwrap();
    assert_eq!(num(&db), Some(13));
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(num(&db), Some(10), "only the newest operand is left");
    db.compact_range(..).unwrap();
    assert_eq!(num(&db), Some(10));
    db.close().unwrap();
    let db = DB::open_with(opts(dir.path())).unwrap();
    assert_eq!(num(&db), Some(10));
}

#[test]
fn a_ttl_is_fixed_when_the_family_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(with_ttl(dir.path(), 3600)).unwrap();
    db.put("k", "v").unwrap();
    let plain = db
        .create_column_family("plain", ColumnFamilyOptions::default())
        .unwrap();
    plain.put("k", "v").unwrap();
    db.close().unwrap();
    // Turning it off (or on) is refused; changing its length is not.
    assert!(matches!(
        DB::open(dir.path()),
        Err(Error::InvalidArgument(_))
    ));
    let mut o = with_ttl(dir.path(), 60);
    o.column_families.insert(
        "plain".into(),
        ColumnFamilyOptions {
            ttl: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    );
    assert!(matches!(DB::open_with(o), Err(Error::InvalidArgument(_))));
    let db = DB::open_with(with_ttl(dir.path(), 60)).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some("v"));
    assert_eq!(
        db.column_family("plain")
            .unwrap()
            .get("k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
    assert!(matches!(
        DB::open_with(Options {
            ttl: Some(Duration::from_millis(500)),
            ..Options::new(tempfile::tempdir().unwrap().path())
        }),
        Err(Error::InvalidArgument(_))
    ));
}

/// A snapshot taken while a compaction runs sees the entries the filter
/// is about to remove or change (they were newer than every snapshot when
/// the compaction started): it must go on seeing them after the
/// compaction installs. The compaction is held inside its output's first
/// append while the snapshot is taken. It used to install its filtered
/// output anyway, and the snapshot's `tmp` went from "seen" to absent
/// (found by `model_filter` under load).
#[test]
fn a_snapshot_taken_during_a_filtering_compaction_keeps_what_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, gate, armed) = common::hold_first_append("sst");
    let filter = Arc::new(Filter {
        calls: AtomicUsize::new(0),
    });
    let db = Arc::new(
        DB::open_with(Options {
            fs,
            ..filtered(dir.path(), filter)
        })
        .unwrap(),
    );
    db.put("tmp", "seen").unwrap();
    db.put("shout", "up:x").unwrap();
    db.flush().unwrap();
    armed.store(true, Ordering::Release);
    let db2 = db.clone();
    let compaction = std::thread::spawn(move || db2.compact_range(..));
    gate.wait_for_arrivals(1);
    let snap = db.snapshot();
    gate.open();
    compaction.join().unwrap().unwrap();
    assert_eq!(snap.get("tmp").unwrap().as_deref(), Some(&b"seen"[..]));
    assert_eq!(snap.get("shout").unwrap().as_deref(), Some(&b"up:x"[..]));
    // Once the snapshot is gone the filter applies.
    drop(snap);
    db.compact_range(..).unwrap();
    assert_eq!(get(&db, "tmp"), None);
    assert_eq!(get(&db, "shout").as_deref(), Some("UP:X"));
}
