//! Transactions over merge operands and range deletions: their reads see
//! through both exactly as `DB::get` and `DB::iter` do, and a merge or a
//! range deletion committed by someone else counts as a change of every
//! key it touches in the conflict check — found in memtables, in tables,
//! and in a batch ahead in the same commit group.

mod common;

use aidb::{Error, MergeOperator, Options, DB};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Appends operands to the existing value, comma-separated.
struct Join;

impl MergeOperator for Join {
    fn name(&self) -> &str {
        "join"
    }
    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        let mut parts: Vec<&[u8]> = existing.into_iter().collect();
        parts.extend_from_slice(ops);
        Some(parts.join(&b","[..]))
    }
}

fn options(path: &std::path::Path) -> Options {
    Options {
        merge_operator: Some(Arc::new(Join)),
        ..Options::new(path)
    }
}

fn open() -> (tempfile::TempDir, DB) {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(options(dir.path())).unwrap();
    (dir, db)
}

fn pairs(it: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|kv| kv.unwrap()).collect()
}

/// Operands and range tombstones spread over tables and the memtable.
fn layered(db: &DB) {
    for k in ["a", "b", "c", "d", "e", "f"] {
        db.put(k, "base").unwrap();
    }
    db.merge("b", "1").unwrap();
    db.flush().unwrap();
    db.merge("b", "2").unwrap();
    db.merge("g", "only").unwrap();
    db.delete_range("c".."e").unwrap();
    db.flush().unwrap();
    db.compact_range(..).unwrap();
    db.merge("d", "after").unwrap(); // above the range tombstone
    db.merge("e", "3").unwrap();
    db.delete_range("f".."g").unwrap();
}

#[test]
fn reads_see_through_merges_and_range_deletions_as_the_db_does() {
    let (_dir, db) = open();
    layered(&db);
    let mut txn = db.transaction();
    for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        assert_eq!(txn.get(k).unwrap(), db.get(k).unwrap(), "get {k}");
        assert_eq!(
            txn.get_for_update(k).unwrap(),
            db.get(k).unwrap(),
            "gfu {k}"
        );
    }
    assert_eq!(txn.get("b").unwrap(), Some(b"base,1,2".to_vec()));
    assert_eq!(txn.get("c").unwrap(), None);
    assert_eq!(txn.get("d").unwrap(), Some(b"after".to_vec()));
    assert_eq!(pairs(txn.iter()), pairs(db.iter()));
    assert_eq!(pairs(txn.iter().rev()), pairs(db.iter().rev()));
    // Own writes over all of that: a put over a range-deleted key, a
    // delete of a merged one.
    txn.put("c", "mine").unwrap();
    txn.delete("b").unwrap();
    let mut want = pairs(db.iter());
    want.retain(|(k, _)| k != b"b");
    want.insert(1, (b"c".to_vec(), b"mine".to_vec()));
    assert_eq!(pairs(txn.iter()), want);
    want.reverse();
    assert_eq!(pairs(txn.iter().rev()), want);
    // Pessimistic get_for_update reads the newest value the same way.
    let mut p = db.transaction_with(aidb::TransactionOptions {
        pessimistic: true,
        ..Default::default()
    });
    assert_eq!(p.get_for_update("e").unwrap(), db.get("e").unwrap());
    assert_eq!(p.get_for_update("f").unwrap(), None);
}

#[test]
fn a_later_merge_is_a_conflict() {
    let (_dir, db) = open();
    db.put("k", "v").unwrap();
    let mut txn = db.transaction();
    txn.get_for_update("k").unwrap();
    txn.put("other", "x").unwrap();
    db.merge("k", "m").unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("other").unwrap(), None);
}

#[test]
fn a_later_range_deletion_covering_a_key_is_a_conflict_in_memtables_and_tables() {
    let (_dir, db) = open();
    db.put("k2", "v").unwrap();
    let mut written = db.transaction();
    let mut read = db.transaction();
    let mut outside = db.transaction();
    written.put("k2", "txn").unwrap();
    // An absent key counts too: the check compares sequence numbers.
    read.get_for_update("k3").unwrap();
    read.put("x", "1").unwrap();
    outside.get_for_update("k9").unwrap();
    outside.put("k0", "txn").unwrap();
    db.delete_range("k1".."k5").unwrap();
    assert!(matches!(written.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("k2").unwrap(), None);
    // The tombstone in a table (flushed, then compacted to the bottom).
    db.flush().unwrap();
    assert!(matches!(read.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("x").unwrap(), None);
    let mut before = db.transaction();
    before.put("k4", "txn").unwrap();
    db.delete_range("k4".."k5").unwrap();
    db.flush().unwrap();
    db.compact_range(..).unwrap();
    let mut later = db.transaction();
    later.put("k4", "later").unwrap();
    assert!(matches!(before.commit(), Err(Error::Conflict)));
    // A deletion older than the transaction, or not covering its keys,
    // is no conflict.
    later.commit().unwrap();
    outside.commit().unwrap();
    assert_eq!(db.get("k4").unwrap(), Some(b"later".to_vec()));
    assert_eq!(db.get("k0").unwrap(), Some(b"txn".to_vec()));
}

/// A range deletion queued ahead of a transaction's commit in the same
/// group gets the smaller sequence numbers, so it changed the key first.
#[test]
fn a_range_deletion_earlier_in_the_same_commit_group_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, gate, armed) = common::hold_first_append("log");
    let db = Arc::new(
        DB::open_with(Options {
            fs,
            ..options(dir.path())
        })
        .unwrap(),
    );
    db.put("m", "0").unwrap();
    let mut txn = db.transaction();
    txn.get_for_update("m").unwrap();
    txn.put("m", "1").unwrap();
    armed.store(true, Ordering::Release);
    let db2 = db.clone();
    let held = std::thread::spawn(move || db2.put("unrelated", "x"));
    gate.wait_for_arrivals(1);
    // Queue the deletion, then the commit, behind the held leader.
    let db3 = db.clone();
    let deletion = std::thread::spawn(move || db3.delete_range("a".."z"));
    std::thread::sleep(Duration::from_millis(200));
    let commit = std::thread::spawn(move || txn.commit());
    std::thread::sleep(Duration::from_millis(200));
    gate.open();
    held.join().unwrap().unwrap();
    deletion.join().unwrap().unwrap();
    assert!(matches!(commit.join().unwrap(), Err(Error::Conflict)));
    assert_eq!(db.get("m").unwrap(), None);
}
