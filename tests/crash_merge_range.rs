//! Process-level crash test for merges and range deletes: a child process
//! writes synced batches of merge operands, puts and range deletions (and
//! reports each acknowledged one) while flushes and compactions fold the
//! operands and drop what the tombstones cover; the parent kills it with
//! SIGKILL at a random moment, reopens, and checks that the state is
//! exactly the one after some prefix of the batches that includes every
//! acknowledged one. Folding an operand twice, losing one, or a range
//! tombstone that lost its reach would all show as a state no prefix has.
//!
//! `AIDB_CRASH_CYCLES` sets the number of kill cycles (default 60).

use aidb::{MergeOperator, Options, WriteBatch, WriteOptions, DB};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "AIDB_CRASH_MERGE_CHILD_DIR";
const KEYS: u64 = 60;
const MARKER: &[u8] = b"~batch";

/// Appends operands, `,`-separated (order-sensitive).
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "append"
    }
    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>> {
        Some(append(existing, operands.iter().copied()))
    }
    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Some(append(None, operands.iter().copied()))
    }
}

fn append<'a>(existing: Option<&'a [u8]>, ops: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let parts: Vec<&[u8]> = existing.into_iter().chain(ops).collect();
    parts.join(&b","[..])
}

fn options(dir: &Path) -> Options {
    Options {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        num_levels: 3,
        merge_operator: Some(Arc::new(Append)),
        ..Options::new(dir)
    }
}

fn key(k: u64) -> Vec<u8> {
    format!("key{k:02}").into_bytes()
}

/// One write of a batch.
enum W {
    Merge(Vec<u8>, Vec<u8>),
    Put(Vec<u8>, Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
}

/// Batch `i`: two merges, every fifth batch a put, every seventh a range
/// deletion of a few keys, and the marker.
fn batch_ops(i: u64) -> Vec<W> {
    let mut ops = vec![
        W::Merge(key((i * 7) % KEYS), format!("m{i}").into_bytes()),
        W::Merge(key((i * 13 + 3) % KEYS), format!("n{i}").into_bytes()),
    ];
    if i.is_multiple_of(5) {
        ops.push(W::Put(key((i * 3) % KEYS), format!("p{i}").into_bytes()));
    }
    if i.is_multiple_of(7) {
        let lo = (i * 11) % KEYS;
        ops.push(W::Range(key(lo), key((lo + 1 + i % 6).min(KEYS))));
    }
    ops.push(W::Put(MARKER.to_vec(), i.to_le_bytes().to_vec()));
    ops
}

fn build_batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    for w in batch_ops(i) {
        match w {
            W::Merge(k, v) => b.merge(k, v),
            W::Put(k, v) => b.put(k, v),
            W::Range(s, e) => b.delete_range(s..e),
        };
    }
    b
}

/// The state after batches `0..=last`.
fn model(last: Option<u64>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for i in last.map(|l| 0..=l).into_iter().flatten() {
        for w in batch_ops(i) {
            match w {
                W::Merge(k, v) => {
                    let new = append(m.get(&k).map(Vec::as_slice), std::iter::once(&v[..]));
                    m.insert(k, new);
                }
                W::Put(k, v) => {
                    m.insert(k, v);
                }
                W::Range(s, e) => {
                    let doomed: Vec<Vec<u8>> = m.range(s..e).map(|(k, _)| k.clone()).collect();
                    for k in doomed {
                        m.remove(&k);
                    }
                }
            }
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
fn crash_merge_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = DB::open_with(options(Path::new(&dir))).expect("child open");
    let mut next = recovered_last(&db).map_or(0, |l| l + 1);
    let stdout = std::io::stdout();
    let mut rng = rand::rngs::StdRng::seed_from_u64(next);
    loop {
        // Mostly synced; some not (they may be lost, but only as a suffix).
        let sync = rng.gen_bool(0.8);
        db.write_opt(build_batch(next), &WriteOptions { sync })
            .expect("child write");
        if sync {
            let mut out = stdout.lock();
            writeln!(out, "ack {next}").unwrap();
            out.flush().unwrap();
        }
        next += 1;
    }
}

fn cycles() -> usize {
    std::env::var("AIDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

#[test]
fn sigkill_keeps_merges_and_range_deletes_a_prefix() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x3E6E);
    let mut acked_cycles = 0;
    for cycle in 0..cycles() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_merge_child",
                "--nocapture",
                "--test-threads=1",
            ])
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
        let run_for = Duration::from_millis(rng.gen_range(5..150));
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
            acked_cycles += 1;
            let got = last.unwrap_or_else(|| panic!("cycle {cycle}: acked batch {acked} lost"));
            assert!(
                got >= acked,
                "cycle {cycle}: acked {acked}, recovered only {got}"
            );
        }
        let state: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|r| r.unwrap()).collect();
        assert!(
            state == model(last),
            "cycle {cycle}: the state after batch {last:?} is not that of a prefix"
        );
        let mut rev: Vec<(Vec<u8>, Vec<u8>)> = db.iter().rev().map(|r| r.unwrap()).collect();
        rev.reverse();
        assert!(
            rev.into_iter().eq(state),
            "cycle {cycle}: reverse scan differs"
        );
        db.close().unwrap();
    }
    assert!(
        acked_cycles > 0,
        "the child never got to acknowledge a write"
    );
    let db = DB::open_with(options(dir.path())).unwrap();
    // Stats count only this process's work; tables below level 0 show
    // that the children's compactions ran.
    let stats = db.stats();
    assert!(
        stats.levels[1..].iter().any(|l| l.files > 0),
        "no compaction ran: {stats:?}"
    );
    db.compact_range(..).unwrap();
    let state: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|r| r.unwrap()).collect();
    assert!(
        state == model(recovered_last(&db)),
        "after a full compaction"
    );
}
