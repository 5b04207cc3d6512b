//! `DB::open_read_only` and `DB::open_secondary` + `try_catch_up`: no
//! writes (to the handle or the directory), state as of open, and a
//! secondary following a primary that writes in another process.

use aidb::{ColumnFamilyOptions, Error, Options, WriteBatch, DB};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn listing(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn read_only_sees_the_state_at_open_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    for i in 0..2000 {
        db.put(format!("k{i:05}"), "table").unwrap();
    }
    db.flush().unwrap();
    db.put("k00001", "memtable").unwrap(); // only in the primary's log
    let cf = db
        .create_column_family("cf", ColumnFamilyOptions::default())
        .unwrap();
    cf.put("x", "1").unwrap();
    let before = listing(dir.path());

    let ro = DB::open_read_only(dir.path()).unwrap(); // the primary holds the lock
    assert_eq!(ro.get("k00001").unwrap(), Some(b"memtable".to_vec()));
    assert_eq!(ro.get("k01999").unwrap(), Some(b"table".to_vec()));
    assert_eq!(
        ro.column_family("cf").unwrap().get("x").unwrap(),
        Some(b"1".to_vec())
    );
    db.put("later", "1").unwrap();
    assert_eq!(ro.get("later").unwrap(), None, "state as of open");

    let refused = |r: aidb::Result<()>| {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
    };
    refused(ro.put("a", "b"));
    refused(ro.delete("a"));
    refused(ro.write(WriteBatch::new().put("a", "b").clone()));
    refused(ro.flush());
    refused(ro.compact_range(..));
    refused(ro.column_family("cf").unwrap().put("y", "2"));
    assert!(ro.checkpoint(dir.path().join("ckpt")).is_err());
    assert!(ro.try_catch_up().is_err(), "not a secondary");
    assert_eq!(ro.iter().count(), 2000);
    assert!(ro.verify().is_empty());
    drop(ro);
    let mut after = listing(dir.path());
    after.retain(|n, _| !n.ends_with(".log")); // the primary's own writes
    let mut expect = before.clone();
    expect.retain(|n, _| !n.ends_with(".log"));
    assert_eq!(after, expect, "the read-only handle changed the directory");
    assert!(matches!(
        DB::open_read_only(dir.path().join("missing")),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn secondary_in_process_follows_flushes_compactions_and_new_families() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        ..Options::new(dir.path().join("db"))
    };
    let db = DB::open_with(opts).unwrap();
    db.put("a", "1").unwrap();
    let sec = DB::open_secondary(dir.path().join("db"), dir.path().join("sec")).unwrap();
    assert!(dir.path().join("sec").is_dir());
    assert_eq!(sec.get("a").unwrap(), Some(b"1".to_vec()));
    for round in 0..5 {
        for i in 0..2000 {
            db.put(format!("k{i:05}"), format!("round{round}")).unwrap();
        }
        db.delete("a").unwrap();
        sec.try_catch_up().unwrap();
        assert_eq!(
            sec.get("k01999").unwrap(),
            Some(format!("round{round}").into_bytes())
        );
        assert_eq!(sec.get("a").unwrap(), None);
        assert_eq!(sec.iter().count(), 2000);
    }
    db.compact_range(..).unwrap();
    db.create_column_family("late", ColumnFamilyOptions::default())
        .unwrap()
        .put("z", "1")
        .unwrap();
    sec.try_catch_up().unwrap();
    assert_eq!(
        sec.column_family("late").unwrap().get("z").unwrap(),
        Some(b"1".to_vec())
    );
    assert!(matches!(sec.put("b", "2"), Err(Error::InvalidArgument(_))));
}

const CHILD_ENV: &str = "AIDB_PRIMARY_CHILD_DIR";
const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// The primary: batches that set every key of `KEYS` to the batch number,
/// acknowledged on stdout once written; small buffers, so that it flushes
/// and compacts (replacing files under the secondary) all the time.
#[test]
fn primary_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let opts = Options {
        write_buffer_size: 16 << 10,
        target_file_size: 16 << 10,
        level0_file_num_compaction_trigger: 2,
        ..Options::new(dir)
    };
    let db = DB::open_with(opts).unwrap();
    let mut out = std::io::stdout().lock();
    for n in 1..=20_000u64 {
        let mut batch = WriteBatch::new();
        for k in KEYS {
            batch.put(k, n.to_string());
        }
        batch.put(format!("fill{:05}", n % 3000), "x".repeat(100));
        db.write(batch).unwrap();
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
}

#[test]
fn secondary_follows_a_primary_in_another_process() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    drop(DB::open(&db_dir).unwrap()); // exists before the secondary opens
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "primary_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let acked = acked.clone();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines() {
                let line = line.unwrap();
                if let Some(n) = line.rsplit("ack ").next().and_then(|n| n.parse().ok()) {
                    acked.store(n, Ordering::SeqCst);
                }
            }
        })
    };
    let sec = DB::open_secondary(&db_dir, dir.path().join("secondary")).unwrap();
    let start = Instant::now();
    let mut catch_ups = 0;
    let mut last_seen = 0u64;
    while start.elapsed() < Duration::from_secs(60) {
        let before = acked.load(Ordering::SeqCst);
        sec.try_catch_up().unwrap();
        catch_ups += 1;
        let snap = sec.snapshot();
        let values: Vec<u64> = KEYS
            .iter()
            .map(|k| {
                snap.get(k)
                    .unwrap()
                    .map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
            })
            .collect();
        assert!(
            values.iter().all(|v| *v == values[0]),
            "part of a batch: {values:?}"
        );
        assert!(
            values[0] >= before,
            "acknowledged {before}, secondary sees {}",
            values[0]
        );
        assert!(values[0] >= last_seen, "went backwards");
        last_seen = values[0];
        if last_seen == 20_000 {
            break;
        }
    }
    child.wait().unwrap();
    reader.join().unwrap();
    assert!(catch_ups > 3, "only {catch_ups} catch-ups");
    sec.try_catch_up().unwrap();
    assert_eq!(sec.get("a").unwrap(), Some(b"20000".to_vec()));
}
