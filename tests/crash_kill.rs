//! Process-level crash test: a child process writes synced batches and
//! reports each acknowledged one; the parent kills it with SIGKILL at a
//! random moment, reopens the database and checks that every acknowledged
//! batch is there and that the state is exactly some prefix of the batches.
//!
//! Variant: four writer threads with synced and unsynced batches. Batches
//! across column families are in `crash_kill_families.rs`.
//!
//! `AIDB_CRASH_CYCLES` sets the number of kill cycles (default 50 for the
//! single writer, 100 for the threaded soak).

mod common;

use aidb::{WriteBatch, WriteOptions, DB};
use common::kill::{check_directory, cycles_or, options, serial, Ops};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "AIDB_CRASH_CHILD_DIR";

/// Whether this process is one of the children (the parent tests then do
/// nothing).
fn is_child() -> bool {
    [CHILD_ENV, THREADS_ENV]
        .iter()
        .any(|v| std::env::var(v).is_ok())
}

const KEYS: u64 = 40;
const MARKER: &[u8] = b"~batch";

/// Batch `i`: puts to three keys, a delete of another, and the marker.
fn batch_ops(i: u64) -> (Vec<(String, Vec<u8>)>, String) {
    let puts = (0..3)
        .map(|j| {
            let k = format!("key{:02}", (i * 7 + j * 13) % KEYS);
            let v = format!("batch{i}-{j}")
                .into_bytes()
                .repeat((i % 5 + 1) as usize);
            (k, v)
        })
        .collect();
    let del = format!("key{:02}", (i * 11 + 5) % KEYS);
    (puts, del)
}

fn build_batch(i: u64) -> WriteBatch {
    let (puts, del) = batch_ops(i);
    let mut b = WriteBatch::new();
    for (k, v) in &puts {
        b.put(k, v);
    }
    b.delete(del);
    b.put(MARKER, i.to_le_bytes());
    b
}

/// The state after batches `0..=last`.
fn model(last: Option<u64>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Some(last) = last {
        for i in 0..=last {
            let (puts, del) = batch_ops(i);
            for (k, v) in puts {
                m.insert(k.into_bytes(), v);
            }
            m.remove(del.as_bytes());
            m.insert(MARKER.to_vec(), i.to_le_bytes().to_vec());
        }
    }
    m
}

fn recovered_last(db: &DB) -> Option<u64> {
    db.get(MARKER)
        .unwrap()
        .map(|v| u64::from_le_bytes(v.try_into().expect("marker is 8 bytes")))
}

/// The child's work; runs only when the parent starts this test binary
/// with `CHILD_ENV` set.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = DB::open_with(options(Path::new(&dir))).expect("child open");
    let mut next = recovered_last(&db).map_or(0, |l| l + 1);
    let stdout = std::io::stdout();
    loop {
        db.write_opt(build_batch(next), &WriteOptions { sync: true })
            .expect("child write");
        let mut out = stdout.lock();
        writeln!(out, "ack {next}").unwrap();
        out.flush().unwrap();
        next += 1;
    }
}

#[test]
fn sigkill_never_loses_acknowledged_synced_batches() {
    if is_child() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xA1DB);
    let mut total_acked = 0u64;
    for cycle in 0..cycles_or(50) {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Let it run a random while, at least until it has acknowledged
        // something most of the time.
        let run_for = Duration::from_millis(rng.gen_range(5..120));
        let start = Instant::now();
        let mut last_ack = None;
        while start.elapsed() < run_for {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(1)) {
                last_ack = Some(n);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for n in rx.try_iter() {
            last_ack = Some(n);
        }

        let db = DB::open_with(options(dir.path()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let last = recovered_last(&db);
        if let Some(acked) = last_ack {
            total_acked += 1;
            let got = last.unwrap_or_else(|| panic!("cycle {cycle}: acked batch {acked} lost"));
            assert!(
                got >= acked,
                "cycle {cycle}: acked {acked}, recovered only {got}"
            );
            // At most the one batch in flight beyond the last ack.
            assert!(got <= acked + 1, "cycle {cycle}: recovered {got} > issued");
        }
        let state: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|r| r.unwrap()).collect();
        assert_eq!(
            state,
            model(last),
            "cycle {cycle}: not a prefix of the batches"
        );
        check_directory(&db, dir.path(), cycle);
        db.close().unwrap();
    }
    assert!(
        total_acked > 0,
        "the child never got to acknowledge a write"
    );
    let db = DB::open_with(options(dir.path())).unwrap();
    let stats = db.stats();
    println!("after {} cycles: {stats:?}", cycles_or(50));
    assert!(
        stats.levels.iter().skip(1).any(|l| l.files > 0),
        "no compaction output"
    );
}

#[test]
fn another_process_gets_locked() {
    if is_child() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_probe_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AIDB_LOCK_PROBE_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("probe: locked"), "child said: {text}");
    drop(db);
}

#[test]
fn lock_probe_child() {
    let Ok(dir) = std::env::var("AIDB_LOCK_PROBE_DIR") else {
        return;
    };
    match DB::open(&dir) {
        Err(aidb::Error::Locked { .. }) => println!("probe: locked"),
        Err(e) => println!("probe: other error {e}"),
        Ok(_) => println!("probe: opened"),
    }
}

const THREADS_ENV: &str = "AIDB_CRASH_THREADS_DIR";
const WRITER_THREADS: u64 = 4;

/// Batch `i` of writer thread `t`: its own key space, so each thread's
/// state can be checked as a prefix of its own batches.
fn thread_batch(t: u64, i: u64) -> (WriteBatch, Ops) {
    let mut b = WriteBatch::new();
    let mut ops = Vec::new();
    for j in 0..3 {
        let k = format!("t{t}-key{:02}", (i * 5 + j * 11) % 30).into_bytes();
        let v = format!("t{t}-batch{i}-{j}")
            .into_bytes()
            .repeat((i % 4 + 1) as usize);
        b.put(&k, &v);
        ops.push((k, Some(v)));
    }
    let del = format!("t{t}-key{:02}", (i * 7 + 3) % 30).into_bytes();
    b.delete(&del);
    ops.push((del, None));
    let marker = format!("t{t}-~marker").into_bytes();
    b.put(&marker, i.to_le_bytes());
    ops.push((marker, Some(i.to_le_bytes().to_vec())));
    (b, ops)
}

fn thread_model(t: u64, last: Option<u64>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..last.map_or(0, |l| l + 1) {
        for (k, v) in thread_batch(t, i).1 {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
    }
    m
}

fn thread_last(db: &DB, t: u64) -> Option<u64> {
    db.get(format!("t{t}-~marker"))
        .unwrap()
        .map(|v| u64::from_le_bytes(v.try_into().expect("marker is 8 bytes")))
}

/// Child: several threads write synced batches concurrently while
/// background flushes and compactions run.
#[test]
fn crash_child_threads() {
    let Ok(dir) = std::env::var(THREADS_ENV) else {
        return;
    };
    let db = std::sync::Arc::new(DB::open_with(options(Path::new(&dir))).expect("child open"));
    let handles: Vec<_> = (0..WRITER_THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut next = thread_last(&db, t).map_or(0, |l| l + 1);
                loop {
                    let sync = next % 3 != 1;
                    db.write_opt(thread_batch(t, next).0, &WriteOptions { sync })
                        .expect("child write");
                    if sync {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {t} {next}").unwrap();
                        out.flush().unwrap();
                    }
                    next += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn sigkill_with_concurrent_writers_and_background_work() {
    if is_child() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x50AC);
    let cycles = cycles_or(100);
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_threads",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(THREADS_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acked = [None::<u64>; WRITER_THREADS as usize];
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if parts.next() == Some("ack") {
                    let t: usize = parts.next().unwrap().parse().unwrap();
                    let i: u64 = parts.next().unwrap().parse().unwrap();
                    acked[t] = Some(i);
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..200)));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let db = DB::open_with(options(dir.path()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let state: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|r| r.unwrap()).collect();
        for t in 0..WRITER_THREADS {
            let last = thread_last(&db, t);
            if let Some(a) = acked[t as usize] {
                let got =
                    last.unwrap_or_else(|| panic!("cycle {cycle}: thread {t} lost batch {a}"));
                assert!(
                    got >= a,
                    "cycle {cycle}: thread {t} acked {a}, recovered {got}"
                );
            }
            let prefix = format!("t{t}-").into_bytes();
            let mine: BTreeMap<Vec<u8>, Vec<u8>> = state
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert!(
                mine == thread_model(t, last),
                "cycle {cycle}: thread {t}'s keys are not a prefix of its batches"
            );
        }
        check_directory(&db, dir.path(), cycle);
        db.close().unwrap();
    }
}

// Column families: batches that span families with different sizes (so
// each flushes and compacts at its own moments), a rarely written family,
// and families created and dropped while the child runs.
