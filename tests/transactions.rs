//! Transactions through the public API: read-your-own-writes over a
//! snapshot, conflicts (through memtables, tables and the last level; a
//! tombstone counts; plain reads never conflict), write skew, lost
//! updates under threads, savepoints, merged iterators, column families,
//! pessimistic locks (timeouts, deadlocks, drop releases), bad input.
//! The bank test is in `txn_bank.rs`, the model suite in `model_db.rs`.

mod common;

use aidb::{Error, Options, Transaction, TransactionOptions, WriteOptions, DB};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn open() -> (tempfile::TempDir, DB) {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    (dir, db)
}

fn pessimistic(timeout_ms: u64) -> TransactionOptions {
    TransactionOptions {
        pessimistic: true,
        lock_timeout: Duration::from_millis(timeout_ms),
        ..Default::default()
    }
}

fn v(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn keys(it: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>) -> Vec<String> {
    it.map(|kv| String::from_utf8(kv.unwrap().0).unwrap())
        .collect()
}

#[test]
fn reads_see_the_start_snapshot_and_own_writes() {
    let (_d, db) = open();
    db.put("a", "1").unwrap();
    db.put("gone", "x").unwrap();
    let mut txn = db.transaction();
    db.put("a", "2").unwrap();
    db.put("late", "x").unwrap();
    assert_eq!(txn.get("a").unwrap(), v("1"));
    assert_eq!(txn.get("late").unwrap(), None);
    txn.put("b", "own").unwrap();
    txn.delete("gone").unwrap();
    assert_eq!(txn.get("b").unwrap(), v("own"));
    assert_eq!(txn.get("gone").unwrap(), None);
    assert_eq!(db.get("b").unwrap(), None);
    assert_eq!(db.get("gone").unwrap(), v("x"));
    assert_eq!(keys(txn.iter()), ["a", "b"]);
    txn.commit().unwrap();
    assert_eq!(db.get("b").unwrap(), v("own"));
    assert_eq!(db.get("gone").unwrap(), None);
    // A plain read of a key changed since does not stop the commit.
    assert_eq!(db.get("a").unwrap(), v("2"));
}

#[test]
fn a_write_after_the_snapshot_to_a_written_key_is_a_conflict_and_nothing_is_written() {
    let (_d, db) = open();
    let mut txn = db.transaction();
    txn.put("k", "txn").unwrap();
    txn.put("other", "txn").unwrap();
    db.put("k", "plain").unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("k").unwrap(), v("plain"));
    assert_eq!(db.get("other").unwrap(), None);
    // First committer wins between two transactions as well.
    let mut t1 = db.transaction();
    let mut t2 = db.transaction();
    t1.put("k", "t1").unwrap();
    t2.put("k", "t2").unwrap();
    t1.commit().unwrap();
    let e = t2.commit().unwrap_err();
    assert!(matches!(e, Error::Conflict) && e.is_retryable());
    assert_eq!(db.get("k").unwrap(), v("t1"));
}

#[test]
fn get_for_update_conflicts_and_get_does_not() {
    let (_d, db) = open();
    db.put("x", "1").unwrap();
    let mut reads = db.transaction();
    assert_eq!(reads.get("x").unwrap(), v("1"));
    reads.put("y", "from x").unwrap();
    let mut tracks = db.transaction();
    assert_eq!(tracks.get_for_update("x").unwrap(), v("1"));
    tracks.put("z", "from x").unwrap();
    db.put("x", "2").unwrap();
    reads.commit().unwrap();
    assert!(matches!(tracks.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("z").unwrap(), None);
    // A read-only transaction's get_for_update is checked too.
    let mut ro = db.transaction();
    ro.get_for_update("x").unwrap();
    db.put("x", "3").unwrap();
    assert!(matches!(ro.commit(), Err(Error::Conflict)));
}

#[test]
fn a_delete_counts_as_a_change_even_of_an_absent_key() {
    let (_d, db) = open();
    let mut txn = db.transaction();
    assert_eq!(txn.get_for_update("absent").unwrap(), None);
    txn.put("k", "v").unwrap();
    db.delete("absent").unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
}

/// The change is found wherever its entry is: a frozen memtable being
/// flushed, a level-0 table, the last level after a compaction (where
/// sequence numbers no snapshot needs are zeroed, but the transaction's
/// snapshot needs them).
#[test]
fn conflicts_are_found_in_tables_and_the_last_level() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(Options {
        num_levels: 2,
        ..Options::new(dir.path())
    })
    .unwrap();
    for i in 0..100 {
        db.put(format!("k{i:03}"), "old").unwrap();
    }
    db.flush().unwrap();
    let mut flushed = db.transaction();
    let mut compacted = db.transaction();
    flushed.get_for_update("k010").unwrap();
    compacted.put("k020", "txn").unwrap();
    db.put("k010", "new").unwrap();
    db.put("k020", "new").unwrap();
    db.flush().unwrap();
    assert!(db.stats().levels[0].files > 0);
    let mut clean = db.transaction();
    clean.put("k030", "txn").unwrap();
    assert!(matches!(flushed.commit(), Err(Error::Conflict)));
    db.compact_range(..).unwrap();
    assert_eq!(db.stats().levels[0].files, 0);
    assert!(matches!(compacted.commit(), Err(Error::Conflict)));
    // No change since its start: no conflict, wherever the key's entries are.
    clean.commit().unwrap();
    let mut after = db.transaction();
    after.get_for_update("k010").unwrap();
    after.put("k020", "after").unwrap();
    after.commit().unwrap();
    assert_eq!(db.get("k020").unwrap(), v("after"));
}

#[test]
fn write_skew_is_prevented_by_get_for_update() {
    let (_d, db) = open();
    db.put("x", "on").unwrap();
    db.put("y", "on").unwrap();
    // Each may turn one off if the other is still on.
    let mut t1 = db.transaction();
    let mut t2 = db.transaction();
    for t in [&mut t1, &mut t2] {
        assert_eq!(t.get_for_update("x").unwrap(), v("on"));
        assert_eq!(t.get_for_update("y").unwrap(), v("on"));
    }
    t1.put("x", "off").unwrap();
    t2.put("y", "off").unwrap();
    let results = [t1.commit(), t2.commit()];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(matches!(results[1], Err(Error::Conflict)));
    assert_eq!(
        (db.get("x").unwrap(), db.get("y").unwrap()),
        (v("off"), v("on"))
    );
}

/// Pessimistic: the two transactions interleave so that each holds one
/// lock and wants the other's; one gets `Deadlock` and gives way, the
/// other commits.
#[test]
fn pessimistic_write_skew_ends_in_one_deadlock_and_one_commit() {
    let (_d, db) = open();
    db.put("x", "on").unwrap();
    db.put("y", "on").unwrap();
    let db = Arc::new(db);
    let barrier = Arc::new(Barrier::new(2));
    let run = |first: &'static str, second: &'static str| {
        let (db, barrier) = (db.clone(), barrier.clone());
        std::thread::spawn(move || -> aidb::Result<()> {
            let mut t = db.transaction_with(pessimistic(10_000));
            t.get_for_update(first)?;
            barrier.wait();
            let other = t.get_for_update(second)?;
            if other == v("on") {
                t.put(first, "off")?;
            }
            t.commit()
        })
    };
    let a = run("x", "y");
    let b = run("y", "x");
    let results = [a.join().unwrap(), b.join().unwrap()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().any(|r| matches!(r, Err(Error::Deadlock))));
    let off = [db.get("x").unwrap(), db.get("y").unwrap()]
        .iter()
        .filter(|v| v.as_deref() == Some(b"off".as_slice()))
        .count();
    assert_eq!(off, 1);
}

/// N threads increment one counter read with `get_for_update`, retrying
/// on `Conflict`/`Busy`/`Deadlock`: the counter ends at exactly the number
/// of commits that succeeded. Commits race in the same commit groups, so
/// this also checks that a group member's write is a conflict for the
/// members queued behind it.
fn lost_update(options: TransactionOptions) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 300;
    let (_d, db) = open();
    let db = Arc::new(db);
    db.put("counter", 0u64.to_le_bytes()).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (db, options) = (db.clone(), options.clone());
            std::thread::spawn(move || {
                let (mut ok, mut retries) = (0u64, 0u64);
                while ok < PER_THREAD as u64 {
                    let mut t = db.transaction_with(options.clone());
                    let result = t.get_for_update("counter").and_then(|c| {
                        let n = u64::from_le_bytes(c.unwrap().try_into().unwrap());
                        t.put("counter", (n + 1).to_le_bytes())?;
                        t.commit()
                    });
                    match result {
                        Ok(()) => ok += 1,
                        Err(e) if e.is_retryable() => retries += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, retries)
            })
        })
        .collect();
    let (mut ok, mut retries) = (0, 0);
    for h in handles {
        let (o, r) = h.join().unwrap();
        ok += o;
        retries += r;
    }
    let n = u64::from_le_bytes(db.get("counter").unwrap().unwrap().try_into().unwrap());
    assert_eq!(n, ok, "{retries} retries");
    if options.pessimistic {
        assert_eq!(
            retries, 0,
            "pessimistic transactions wait, they do not conflict"
        );
    }
}

/// Two transactions that read the same counter commit in one group: the
/// leader of the group before theirs is held inside its log append while
/// both queue behind it. The second member must see the first's write as
/// a conflict, though neither is in a memtable yet when it is checked.
#[test]
fn a_write_earlier_in_the_same_commit_group_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, gate, armed) = common::hold_first_append("log");
    let db = Arc::new(
        DB::open_with(Options {
            fs,
            ..Options::new(dir.path())
        })
        .unwrap(),
    );
    db.put("counter", "0").unwrap();
    let mut txns: Vec<Transaction> = (0..2).map(|_| db.transaction()).collect();
    for t in &mut txns {
        assert_eq!(t.get_for_update("counter").unwrap(), v("0"));
        t.put("counter", "1").unwrap();
    }
    armed.store(true, Ordering::Release);
    let db2 = db.clone();
    let held = std::thread::spawn(move || db2.put("unrelated", "x"));
    gate.wait_for_arrivals(1);
    let commits: Vec<_> = txns
        .into_iter()
        .map(|t| std::thread::spawn(move || t.commit()))
        .collect();
    // Let both commits queue behind the held leader.
    std::thread::sleep(Duration::from_millis(200));
    gate.open();
    held.join().unwrap().unwrap();
    let results: Vec<_> = commits.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().any(|r| matches!(r, Err(Error::Conflict))));
}

#[test]
fn lost_updates_are_prevented_optimistic() {
    lost_update(TransactionOptions::default());
}

#[test]
fn lost_updates_are_prevented_pessimistic() {
    lost_update(pessimistic(10_000));
}

#[test]
fn savepoints_nest_and_undo_writes_tracking_and_locks() {
    let (_d, db) = open();
    let mut txn = db.transaction_with(pessimistic(0));
    txn.put("a", "1").unwrap();
    txn.set_savepoint();
    txn.put("a", "2").unwrap();
    txn.put("b", "2").unwrap();
    txn.set_savepoint();
    txn.delete("a").unwrap();
    txn.get_for_update("c").unwrap();
    assert_eq!(keys(txn.iter()), ["b"]);
    // "c" is locked now...
    let mut other = db.transaction_with(pessimistic(0));
    assert!(matches!(other.put("c", "x"), Err(Error::Busy)));
    txn.rollback_to_savepoint().unwrap();
    // ...and released with the savepoint; "b" locked before it stays.
    other.put("c", "x").unwrap();
    assert!(matches!(other.put("b", "x"), Err(Error::Busy)));
    assert_eq!(txn.get("a").unwrap(), v("2"));
    txn.rollback_to_savepoint().unwrap();
    assert_eq!(txn.get("a").unwrap(), v("1"));
    assert_eq!(txn.get("b").unwrap(), None);
    assert!(matches!(
        txn.rollback_to_savepoint(),
        Err(Error::InvalidArgument(_))
    ));
    other.commit().unwrap();
    txn.commit().unwrap();
    assert_eq!(keys(db.iter()), ["a", "c"]);
}

#[test]
fn a_get_for_update_rolled_back_to_a_savepoint_no_longer_conflicts() {
    let (_d, db) = open();
    let mut txn = db.transaction();
    txn.put("mine", "1").unwrap();
    txn.set_savepoint();
    txn.get_for_update("theirs").unwrap();
    txn.rollback_to_savepoint().unwrap();
    db.put("theirs", "changed").unwrap();
    txn.commit().unwrap();
}

#[test]
fn rollback_and_drop_discard_writes_and_release_locks() {
    let (_d, db) = open();
    let mut txn = db.transaction_with(pessimistic(0));
    txn.put("k", "1").unwrap();
    txn.rollback();
    assert_eq!(txn.get("k").unwrap(), None);
    let mut other = db.transaction_with(pessimistic(0));
    other.put("k", "2").unwrap();
    assert!(matches!(txn.put("k", "3"), Err(Error::Busy)));
    drop(other);
    txn.put("k", "3").unwrap();
    txn.commit().unwrap();
    assert_eq!(db.get("k").unwrap(), v("3"));
    let mut dropped = db.transaction();
    dropped.put("k", "never").unwrap();
    drop(dropped);
    assert_eq!(db.get("k").unwrap(), v("3"));
}

#[test]
fn a_lock_wait_ends_in_busy_after_the_timeout_or_when_the_lock_is_released() {
    let (_d, db) = open();
    let db = Arc::new(db);
    let mut holder = db.transaction_with(pessimistic(0));
    holder.get_for_update("k").unwrap();
    let start = Instant::now();
    let mut waiter = db.transaction_with(pessimistic(50));
    assert!(matches!(waiter.put("k", "w"), Err(Error::Busy)));
    assert!(start.elapsed() >= Duration::from_millis(50));
    // A waiter gets the lock when the holder commits, and then reads its
    // commit.
    let db2 = db.clone();
    let waiting = std::thread::spawn(move || {
        let mut t = db2.transaction_with(pessimistic(10_000));
        let seen = t.get_for_update("k");
        t.commit().map(|_| seen)
    });
    std::thread::sleep(Duration::from_millis(20));
    holder.put("k", "held").unwrap();
    holder.commit().unwrap();
    assert_eq!(waiting.join().unwrap().unwrap().unwrap(), v("held"));
}

#[test]
fn pessimistic_get_for_update_reads_the_newest_value_and_plain_writes_still_conflict() {
    let (_d, db) = open();
    db.put("k", "1").unwrap();
    let mut txn = db.transaction_with(pessimistic(0));
    db.put("k", "2").unwrap();
    assert_eq!(txn.get("k").unwrap(), v("1"));
    assert_eq!(txn.get_for_update("k").unwrap(), v("2"));
    txn.put("k", "3").unwrap();
    txn.commit().unwrap();
    // A plain write takes no lock: it makes the locking transaction fail.
    let mut txn = db.transaction_with(pessimistic(0));
    txn.get_for_update("k").unwrap();
    db.put("k", "plain").unwrap();
    txn.put("k", "txn").unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("k").unwrap(), v("plain"));
}

/// A pessimistic commit skips looking up the keys it locked when only
/// lock holders wrote since it locked them. Every writer that takes no
/// lock must still make it look: an optimistic commit, an ingest, a plain
/// write after other pessimistic commits.
#[test]
fn writers_without_locks_still_conflict_with_a_pessimistic_commit() {
    let (dir, db) = open();
    db.put("k", "0").unwrap();
    // An optimistic transaction takes no lock: it commits over the locked
    // key, and the locking transaction must then fail.
    let mut locking = db.transaction_with(pessimistic(0));
    assert_eq!(locking.get_for_update("k").unwrap(), v("0"));
    let mut optimistic = db.transaction();
    optimistic.put("k", "optimistic").unwrap();
    optimistic.commit().unwrap();
    locking.put("k", "locking").unwrap();
    assert!(matches!(locking.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("k").unwrap(), v("optimistic"));

    // Pessimistic commits alone: no conflict, and the lookups can go.
    for i in 0..3 {
        let mut t = db.transaction_with(pessimistic(0));
        t.get_for_update("k").unwrap();
        t.put("k", format!("p{i}")).unwrap();
        t.commit().unwrap();
    }
    // A plain write after them, over a key locked before it.
    let mut locking = db.transaction_with(pessimistic(0));
    locking.put("k", "locking").unwrap();
    let mut other = db.transaction_with(pessimistic(0));
    other.put("x", "1").unwrap();
    other.commit().unwrap();
    db.put("k", "plain").unwrap();
    assert!(matches!(locking.commit(), Err(Error::Conflict)));

    // An ingest over a locked key.
    let mut locking = db.transaction_with(pessimistic(0));
    assert_eq!(locking.get_for_update("k").unwrap(), v("plain"));
    let path = dir.path().join("load.sst");
    let mut w = aidb::SstWriter::create(&path, &Options::new(dir.path())).unwrap();
    w.put("k", "ingested").unwrap();
    w.finish().unwrap();
    db.ingest(&[&path], aidb::IngestOptions::default()).unwrap();
    locking.put("k", "locking").unwrap();
    assert!(matches!(locking.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("k").unwrap(), v("ingested"));
}

#[test]
fn iterators_merge_writes_with_the_snapshot_in_both_directions() {
    let (_d, db) = open();
    for k in ["b", "d", "f", "h"] {
        db.put(k, format!("db-{k}")).unwrap();
    }
    let mut txn = db.transaction();
    db.put("c", "after the snapshot").unwrap();
    txn.put("a", "t").unwrap();
    txn.put("d", "t").unwrap();
    txn.delete("f").unwrap();
    txn.delete("zz").unwrap();
    txn.put("i", "t").unwrap();
    txn.get_for_update("e").unwrap(); // tracked only: not a pair
    let it = txn.iter();
    txn.put("late", "not seen by the iterator made before")
        .unwrap();
    assert_eq!(keys(it), ["a", "b", "d", "h", "i"]);
    assert_eq!(keys(txn.iter().rev()), ["late", "i", "h", "d", "b", "a"]);
    let pairs: Vec<_> = txn.range("b"..="d").map(|kv| kv.unwrap()).collect();
    assert_eq!(
        pairs,
        vec![
            (b"b".to_vec(), b"db-b".to_vec()),
            (b"d".to_vec(), b"t".to_vec())
        ]
    );
    assert_eq!(keys(txn.prefix("l")), ["late"]);
    // Both ends of one iterator, alternately.
    let mut it = txn.iter();
    let mut seen = Vec::new();
    for front in [true, false, true, false, true, false] {
        let kv = if front { it.next() } else { it.next_back() };
        seen.push(kv.map(|kv| String::from_utf8(kv.unwrap().0).unwrap()));
    }
    let seen: Vec<_> = seen.into_iter().flatten().collect();
    assert_eq!(seen, ["a", "late", "b", "i", "d", "h"]);
    let mut it = txn.iter();
    it.seek("e");
    assert_eq!(keys(it), ["h", "i", "late"]);
    let mut it = txn.iter();
    it.seek_for_prev("g");
    assert_eq!(keys(it.rev()), ["d", "b", "a"]);
}

#[test]
fn column_families_commit_atomically_and_bad_handles_are_errors() {
    let (_d, db) = open();
    let a = db.create_column_family("a", Default::default()).unwrap();
    let b = db.create_column_family("b", Default::default()).unwrap();
    a.put("k", "a-old").unwrap();
    let mut txn = db.transaction();
    assert_eq!(txn.get_for_update_cf(&a, "k").unwrap(), v("a-old"));
    txn.put_cf(&a, "k", "a-new").unwrap();
    txn.put_cf(&b, "k", "b-new").unwrap();
    txn.delete_cf(&a, "gone").unwrap();
    txn.put("k", "default").unwrap();
    assert_eq!(txn.get_cf(&b, "k").unwrap(), v("b-new"));
    assert_eq!(txn.get("k").unwrap(), v("default"));
    assert_eq!(keys(txn.iter_cf(&a)), ["k"]);
    assert_eq!(keys(txn.prefix_cf(&b, "k").rev()), ["k"]);
    assert_eq!(b.get("k").unwrap(), None);
    txn.commit().unwrap();
    assert_eq!(a.get("k").unwrap(), v("a-new"));
    assert_eq!(b.get("k").unwrap(), v("b-new"));
    assert_eq!(db.get("k").unwrap(), v("default"));

    // A conflict in one family stops the writes to every family.
    let mut txn = db.transaction();
    txn.put_cf(&a, "k", "x").unwrap();
    txn.put_cf(&b, "k", "x").unwrap();
    a.put("k", "plain").unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(b.get("k").unwrap(), v("b-new"));

    // A handle of another database, a dropped family.
    let (_d2, other) = open();
    let foreign = other.create_column_family("a", Default::default()).unwrap();
    let mut txn = db.transaction();
    assert!(matches!(
        txn.put_cf(&foreign, "k", "v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        txn.get_cf(&foreign, "k"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(txn.iter_cf(&foreign).next().unwrap().is_err());
    txn.put_cf(&b, "k", "before the drop").unwrap();
    txn.put("default-key", "v").unwrap();
    db.drop_column_family("b").unwrap();
    assert!(matches!(
        txn.put_cf(&b, "k2", "v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(txn.commit(), Err(Error::InvalidArgument(_))));
    assert_eq!(db.get("default-key").unwrap(), None);
}

#[test]
fn bad_input_and_a_closed_database_are_errors() {
    let (_d, db) = open();
    let mut txn = db.transaction();
    let big_key = vec![0u8; aidb::MAX_KEY_SIZE + 1];
    assert!(matches!(
        txn.put(&big_key, "v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        txn.get_for_update(&big_key),
        Err(Error::InvalidArgument(_))
    ));
    txn.put("k", "v").unwrap();
    let mut synced = db.transaction();
    synced.put("s", "v").unwrap();
    synced.commit_opt(&WriteOptions { sync: true }).unwrap();
    let held: Transaction = txn;
    db.close().unwrap();
    assert!(matches!(held.commit(), Err(Error::Closed)));
}
