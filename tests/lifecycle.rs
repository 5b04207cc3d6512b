//! Handle lifecycle: what `flush` waits for, and what `close` leaves locked
//! while snapshots and iterators of the handle are still alive.

mod common;

use aidb::fs::{FaultInjectionFs, FsOp};
use aidb::{Error, Options, DB};
use common::{within, Gate, HookFs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `flush` waits for the memtables that hold the writes made before it was
/// called, not for memtables frozen by later writes: under steady writes
/// it used to wait until no frozen memtable was left at all.
#[test]
fn flush_does_not_wait_for_memtables_frozen_after_it_was_called() {
    let fs = FaultInjectionFs::new();
    let first = Arc::new(Gate::default());
    let later = Arc::new(Gate::default());
    let tables = Arc::new(AtomicUsize::new(0));
    let (hook_first, hook_later, hook_tables) = (first.clone(), later.clone(), tables.clone());
    let hooked = HookFs::wrap(Arc::new(fs.clone()), move |op, path| {
        if op == FsOp::Create && path.extension().is_some_and(|e| e == "sst") {
            match hook_tables.fetch_add(1, Ordering::SeqCst) {
                0 => hook_first.pass(),
                _ => hook_later.pass(),
            }
        }
        Ok(())
    });
    let db = Arc::new(
        DB::open_with(Options {
            fs: hooked,
            write_buffer_size: 4 << 10,
            max_write_buffer_number: 8,
            ..Options::new("/db")
        })
        .unwrap(),
    );
    db.put("early", "1").unwrap();
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush())
    };
    // The flush of the memtable holding "early" is under way; later writes
    // freeze another memtable, whose flush will not finish.
    first.wait_for_arrivals(1);
    for i in 0..60 {
        db.put(format!("later{i:03}"), [b'x'; 100]).unwrap();
    }
    assert!(db.stats().immutable_memtables >= 2);
    first.open();
    later.wait_for_arrivals(1);
    within(
        20,
        "flush waiting for a memtable frozen after it",
        move || flusher.join().unwrap(),
    )
    .unwrap();
    assert_eq!(db.get("early").unwrap(), Some(b"1".to_vec()));
    later.open();
}

#[test]
fn the_directory_stays_locked_while_snapshots_and_iterators_live() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    for i in 0..100 {
        db.put(format!("k{i:03}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    let snapshot = db.snapshot();
    let mut iter = db.iter();
    assert_eq!(iter.next().unwrap().unwrap().0, b"k000".to_vec());
    db.close().unwrap();

    // A second handle could compact and delete files they still read.
    assert!(matches!(DB::open(dir.path()), Err(Error::Locked { .. })));
    assert_eq!(snapshot.get("k050").unwrap(), Some(b"v50".to_vec()));
    assert_eq!(iter.count(), 99);
    assert!(matches!(DB::open(dir.path()), Err(Error::Locked { .. })));
    drop(snapshot);
    let db = DB::open(dir.path()).unwrap();
    assert_eq!(db.get("k099").unwrap(), Some(b"v99".to_vec()));
}
