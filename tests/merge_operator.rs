//! Merge operators through the public API: operands folded by reads and by
//! compactions wherever they live, snapshots between operands, operands on
//! top of values, tombstones and range tombstones, and the failures: no
//! operator, an operator that refuses, an operator of another name.

mod common;

use aidb::{ColumnFamilyOptions, Error, MergeOperator, Options, WriteBatch, DB};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Appends operands to the value, comma-separated; refuses the operand
/// `"bad"`. Order-sensitive, so a fold in the wrong order shows.
struct Append {
    name: &'static str,
    refuse_bad: bool,
    partial: bool,
    partial_calls: AtomicUsize,
}

impl Append {
    fn new() -> Arc<Append> {
        Arc::new(Append {
            name: "append",
            refuse_bad: true,
            partial: true,
            partial_calls: AtomicUsize::new(0),
        })
    }
}

impl MergeOperator for Append {
    fn name(&self) -> &str {
        self.name
    }
    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>> {
        let mut parts: Vec<&[u8]> = existing.into_iter().collect();
        for op in operands {
            if self.refuse_bad && *op == b"bad" {
                return None;
            }
            parts.push(op);
        }
        Some(parts.join(&b","[..]))
    }
    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        if !self.partial || operands.iter().any(|o| self.refuse_bad && *o == b"bad") {
            return None;
        }
        self.partial_calls.fetch_add(1, Ordering::Relaxed);
        Some(operands.join(&b","[..]))
    }
}

fn opts(path: &Path, op: Option<Arc<Append>>) -> Options {
    Options {
        write_buffer_size: 8 << 10,
        target_file_size: 16 << 10,
        max_bytes_for_level_base: 64 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        merge_operator: op.map(|o| o as Arc<dyn MergeOperator>),
        ..Options::new(path)
    }
}

fn get(db: &DB, k: &str) -> Option<String> {
    db.get(k).unwrap().map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn operands_fold_across_memtable_level_0_and_deeper_levels() {
    let dir = tempfile::tempdir().unwrap();
    let op = Append::new();
    let db = DB::open_with(opts(dir.path(), Some(op.clone()))).unwrap();
    db.put("k", "base").unwrap();
    db.merge("k", "1").unwrap();
    db.merge("fresh", "a").unwrap();
    // Filler so that compactions happen around the key.
    for i in 0..2000 {
        db.put(format!("f{i:05}"), "x".repeat(20)).unwrap();
    }
    db.compact_range(..).unwrap();
    db.merge("k", "2").unwrap();
    db.merge("fresh", "b").unwrap();
    db.flush().unwrap();
    db.merge("k", "3").unwrap();
    let snap = db.snapshot();
    db.merge("k", "4").unwrap();
    db.merge("fresh", "c").unwrap();
    let want_k = "base,1,2,3,4";
    assert_eq!(get(&db, "k").as_deref(), Some(want_k));
    assert_eq!(get(&db, "fresh").as_deref(), Some("a,b,c"));
    assert_eq!(snap.get("k").unwrap().as_deref(), Some(&b"base,1,2,3"[..]));
    // Iterators fold too, in both directions.
    let fwd: Vec<_> = db.range("fresh"..="k").map(|r| r.unwrap()).collect();
    assert_eq!(fwd.first().unwrap().1, b"a,b,c");
    assert_eq!(fwd.last().unwrap().1, want_k.as_bytes());
    let rev: Vec<_> = db.range("fresh"..="k").rev().map(|r| r.unwrap()).collect();
    assert_eq!(rev.first().unwrap().1, want_k.as_bytes());
    assert_eq!(rev.last().unwrap().1, b"a,b,c");

    db.flush().unwrap();
    db.compact_range(..).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some(want_k));
    assert_eq!(
        snap.get("k").unwrap().as_deref(),
        Some(&b"base,1,2,3"[..]),
        "compaction kept what the snapshot sees"
    );
    drop(snap);
    db.compact_range(..).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some(want_k));
    db.close().unwrap();

    // Folded into plain values now: readable without the operator.
    let db = DB::open_with(opts(dir.path(), None)).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some(want_k));
    assert_eq!(get(&db, "fresh").as_deref(), Some("a,b,c"));
}

#[test]
fn partial_merges_shrink_operands_above_a_value_they_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let op = Append::new();
    let db = DB::open_with(opts(dir.path(), Some(op.clone()))).unwrap();
    db.put("k", "base").unwrap();
    for i in 0..3000 {
        db.put(format!("f{i:05}"), "x".repeat(20)).unwrap();
    }
    db.compact_range(..).unwrap();
    for i in 0..20 {
        db.merge("k", format!("{i}")).unwrap();
        db.flush().unwrap();
    }
    db.wait_for_idle().unwrap();
    let want: String = std::iter::once("base".to_string())
        .chain((0..20).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(get(&db, "k"), Some(want.clone()));
    // Level-0 compactions saw several operands of `k` and no value below.
    assert!(
        op.partial_calls.load(Ordering::Relaxed) > 0,
        "no partial merge was used"
    );
    db.compact_range(..).unwrap();
    assert_eq!(get(&db, "k"), Some(want));
}

#[test]
fn operands_over_tombstones_and_range_tombstones_start_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(opts(dir.path(), Some(Append::new()))).unwrap();
    for k in ["a", "b", "c"] {
        db.put(k, "old").unwrap();
        db.merge(k, "x").unwrap();
    }
    db.flush().unwrap();
    db.delete("a").unwrap();
    db.delete_range("b".."c").unwrap();
    db.merge("a", "new").unwrap();
    db.merge("b", "new").unwrap();
    db.merge("c", "new").unwrap();
    let check = |db: &DB, what: &str| {
        assert_eq!(get(db, "a").as_deref(), Some("new"), "{what}");
        assert_eq!(get(db, "b").as_deref(), Some("new"), "{what}");
        assert_eq!(get(db, "c").as_deref(), Some("old,x,new"), "{what}");
    };
    check(&db, "memtable");
    db.flush().unwrap();
    check(&db, "flushed");
    db.compact_range(..).unwrap();
    check(&db, "compacted");
}

#[test]
fn reading_operands_without_an_operator_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(opts(dir.path(), Some(Append::new()))).unwrap();
    db.put("plain", "v").unwrap();
    db.merge("counted", "1").unwrap();
    db.flush().unwrap();
    db.merge("counted", "2").unwrap();
    db.close().unwrap();

    // Two levels: the operands reach the last level, where a compaction
    // with nothing to fold them with must not pick them again and again.
    let db = DB::open_with(Options {
        num_levels: 2,
        ..opts(dir.path(), None)
    })
    .unwrap();
    assert_eq!(get(&db, "plain").as_deref(), Some("v"));
    assert!(matches!(db.get("counted"), Err(Error::Merge(_))));
    let items: Vec<_> = db.iter().collect();
    assert!(
        items.iter().any(|r| matches!(r, Err(Error::Merge(_)))),
        "{items:?}"
    );
    // Compactions keep the operands (and do not spin on them).
    common::within(60, "compaction of unfoldable operands", move || {
        db.compact_range(..).unwrap();
        db.wait_for_idle().unwrap();
        let compactions = db.stats().compactions;
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            db.stats().compactions,
            compactions,
            "compactions keep running"
        );
        db.close().unwrap();
    });
    let db = DB::open_with(Options {
        num_levels: 2,
        ..opts(dir.path(), Some(Append::new()))
    })
    .unwrap();
    assert_eq!(
        get(&db, "counted").as_deref(),
        Some("1,2"),
        "operands were kept"
    );
    let compactions = db.stats().compactions;
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        db.stats().compactions <= compactions + 1,
        "compactions keep running"
    );
}

#[test]
fn an_operator_that_refuses_fails_the_read_and_keeps_the_operands() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(opts(dir.path(), Some(Append::new()))).unwrap();
    db.put("k", "base").unwrap();
    db.merge("k", "bad").unwrap();
    db.merge("k", "1").unwrap();
    assert!(matches!(db.get("k"), Err(Error::Merge(_))));
    db.compact_range(..).unwrap();
    assert!(
        matches!(db.get("k"), Err(Error::Merge(_))),
        "compaction kept the operand"
    );
    db.close().unwrap();
    // The same operator, fixed: the operands were not lost.
    let lenient = Arc::new(Append {
        name: "append",
        refuse_bad: false,
        partial: true,
        partial_calls: AtomicUsize::new(0),
    });
    let db = DB::open_with(opts(dir.path(), Some(lenient))).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some("base,bad,1"));
}

#[test]
fn an_operator_of_another_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(opts(dir.path(), Some(Append::new()))).unwrap();
    db.merge("k", "1").unwrap();
    db.close().unwrap();
    let other = Arc::new(Append {
        name: "something-else",
        refuse_bad: true,
        partial: true,
        partial_calls: AtomicUsize::new(0),
    });
    match DB::open_with(opts(dir.path(), Some(other))) {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("append"), "{msg}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // Opened without one in between, the name stays recorded.
    DB::open_with(opts(dir.path(), None))
        .unwrap()
        .close()
        .unwrap();
    let other = Arc::new(Append {
        name: "something-else",
        refuse_bad: true,
        partial: true,
        partial_calls: AtomicUsize::new(0),
    });
    assert!(DB::open_with(opts(dir.path(), Some(other))).is_err());
}

#[test]
fn families_have_their_own_operators() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let counters = db
        .create_column_family(
            "counters",
            ColumnFamilyOptions {
                merge_operator: Some(Append::new()),
                ..Default::default()
            },
        )
        .unwrap();
    counters.merge("k", "1").unwrap();
    let mut batch = WriteBatch::new();
    batch.merge_cf(&counters, "k", "2");
    batch.merge("k", "in default");
    db.write(batch).unwrap();
    assert_eq!(counters.get("k").unwrap().as_deref(), Some(&b"1,2"[..]));
    assert!(
        matches!(db.get("k"), Err(Error::Merge(_))),
        "the default family has no operator"
    );
    db.close().unwrap();
    // The family's operator is not recorded as code: give it again.
    let mut o = Options::new(dir.path());
    o.column_families.insert(
        "counters".into(),
        ColumnFamilyOptions {
            merge_operator: Some(Append::new()),
            ..Default::default()
        },
    );
    let db = DB::open_with(o).unwrap();
    let counters = db.column_family("counters").unwrap();
    counters.merge("k", "3").unwrap();
    assert_eq!(counters.get("k").unwrap().as_deref(), Some(&b"1,2,3"[..]));
}
