//! `DB::statistics()`: every counter matches a known sequence of
//! operations exactly, histograms count every operation and report
//! plausible percentiles, and counts from several threads add up.

use aidb::{Options, WriteBatch, WriteOptions, DB};
use std::time::Duration;

fn open(dir: &std::path::Path) -> DB {
    DB::open_with(Options {
        // One background thread: nothing runs that the test did not ask for
        // (no compaction triggers at these sizes).
        max_background_jobs: 1,
        ..Options::new(dir)
    })
    .unwrap()
}

fn table_sizes(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn counters_match_a_known_sequence_of_operations() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let s = db.statistics();
    assert_eq!(
        s,
        aidb::Statistics::default(),
        "a new database starts at zero"
    );

    // Writes: 3 puts, a delete, a batch of 2 puts and a delete, one
    // synced write of 1 put: 6 write calls, 8 operations.
    db.put("apple", "red").unwrap(); // 5 + 3
    db.put("banana", "yellow").unwrap(); // 6 + 6
    db.put("cherry", "dark red").unwrap(); // 6 + 8
    db.delete("banana").unwrap(); // 6
    let mut batch = WriteBatch::new();
    batch
        .put("date", "brown")
        .put("elder", "black")
        .delete("fig"); // 4+5, 5+5, 3
    db.write(batch).unwrap();
    let mut synced = WriteBatch::new();
    synced.put("grape", "green"); // 5 + 5
    db.write_opt(synced, &WriteOptions::synced()).unwrap();
    let s = db.statistics();
    assert_eq!(s.writes, 6);
    assert_eq!(s.keys_written, 8);
    assert_eq!(s.bytes_written, 8 + 12 + 14 + 6 + 9 + 10 + 3 + 10);
    assert_eq!(s.wal_syncs, 1, "one synced write, one fsync");
    // One in 8 timed on each thread, the first of each 8.
    assert_eq!(s.write_latency.count(), 1);
    assert_eq!(s.wal_sync_latency.count(), 1);

    // Point reads from the memtable: 4 found, 2 absent (one deleted).
    for k in ["apple", "cherry", "date", "grape", "banana", "zebra"] {
        db.get(k).unwrap();
    }
    let snap = db.snapshot();
    assert_eq!(snap.get("elder").unwrap(), Some(b"black".to_vec()));
    let s = db.statistics();
    assert_eq!(s.keys_read, 7);
    assert_eq!(s.keys_found, 5);
    assert_eq!(s.bytes_read, 3 + 8 + 5 + 5 + 5);
    assert_eq!(s.get_latency.count(), 1);
    assert_eq!(
        (
            s.bloom_checks,
            s.data_block_cache.hits + s.data_block_cache.misses
        ),
        (0, 0),
        "memtable reads touch no table"
    );

    // An iterator over the 5 live keys: one seek, 5 steps (the last one
    // runs off the end), every key and value landed on once.
    let all: Vec<_> = db.iter().map(Result::unwrap).collect();
    assert_eq!(all.len(), 5);
    let s = db.statistics();
    assert_eq!(s.iter_seeks, 1);
    assert_eq!(s.iter_steps, 5);
    assert_eq!(s.iter_bytes_read, 8 + 14 + 9 + 10 + 10);
    assert_eq!(s.seek_latency.count(), 1);
    assert!(
        s.next_latency.count() >= 1,
        "steps are sampled, the first is timed"
    );
    drop(snap);

    // A flush writes one table; its size is what the counter says.
    db.flush().unwrap();
    let tables = table_sizes(dir.path());
    assert_eq!(tables.len(), 1, "{tables:?}");
    let s = db.statistics();
    assert_eq!(s.flushes, 1);
    assert_eq!(s.flush_bytes_written, tables[0].1);
    assert_eq!(s.flush_latency.count(), 1);
    assert!(
        s.wal_syncs >= 2,
        "the flush starts a new log, syncing the old one"
    );

    // Reads from the table: the first opens it (index and filter miss)
    // and reads its one data block (miss); the second finds both.
    let before = db.statistics();
    assert_eq!(db.get("cherry").unwrap(), Some(b"dark red".to_vec()));
    assert_eq!(db.get("cherry").unwrap(), Some(b"dark red".to_vec()));
    // An absent key inside the table's range, which the filter rules out
    // (deterministic: the filter hash has no seed).
    assert_eq!(db.get("coconut").unwrap(), None);
    let s = db.statistics();
    assert_eq!(s.keys_read - before.keys_read, 3);
    assert_eq!(s.index_and_filter_blocks.misses, 1);
    assert_eq!(s.index_and_filter_blocks.hits, 2);
    assert_eq!(s.data_block_cache.misses, 1);
    assert_eq!(s.data_block_cache.hits, 1);
    assert_eq!(s.bloom_checks, 3);
    assert_eq!(s.bloom_useful, 1);

    // A second table, then a manual compaction of both into level 1.
    db.put("apple", "green").unwrap();
    db.flush().unwrap();
    let inputs: u64 = table_sizes(dir.path()).iter().map(|t| t.1).sum();
    db.compact_range(..).unwrap();
    let outputs: u64 = table_sizes(dir.path()).iter().map(|t| t.1).sum();
    let s = db.statistics();
    assert_eq!(s.flushes, 2);
    assert_eq!(s.compactions, 1);
    assert_eq!(s.trivial_moves, 0);
    assert_eq!(s.compaction_bytes_read, inputs);
    assert_eq!(s.compaction_bytes_written, outputs);
    assert_eq!(s.compaction_latency.count(), 1);
    assert_eq!(s.background_errors, 0);
    assert_eq!(s.stall_time, Duration::ZERO);

    // Column families count in the same statistics.
    let cf = db
        .create_column_family("other", Default::default())
        .unwrap();
    cf.put("k", "vv").unwrap();
    assert_eq!(cf.get("k").unwrap(), Some(b"vv".to_vec()));
    assert_eq!(cf.iter().count(), 1);
    let after = db.statistics();
    assert_eq!(after.writes - s.writes, 1);
    assert_eq!(after.bytes_written - s.bytes_written, 3);
    assert_eq!(after.keys_found - s.keys_found, 1);
    assert_eq!(after.iter_seeks - s.iter_seeks, 1);

    // The text form names every counter with its value.
    let text = after.to_string();
    for line in [
        format!("keys_written {}", after.keys_written),
        format!("bytes_read {}", after.bytes_read),
        format!("flush_bytes_written {}", after.flush_bytes_written),
        "compactions 1".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in:\n{text}"
        );
    }
    assert!(text.contains("get_latency count "), "{text}");
}

#[test]
fn histograms_report_plausible_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..2000u32 {
        db.put(format!("key{i:05}"), [b'v'; 100]).unwrap();
    }
    for i in 0..2000u32 {
        assert!(db.get(format!("key{i:05}")).unwrap().is_some());
    }
    let s = db.statistics();
    for (name, h) in [("get", &s.get_latency), ("write", &s.write_latency)] {
        assert_eq!(h.count(), 250, "{name}: one in 8 timed");
        let (p50, p99, max) = (h.percentile(50.0), h.percentile(99.0), h.max());
        assert!(h.min() > Duration::ZERO, "{name}: {h}");
        assert!(h.min() <= p50 && p50 <= p99 && p99 <= max, "{name}: {h}");
        assert!(h.min() <= h.mean() && h.mean() <= max, "{name}: {h}");
        // A memtable get or an unsynced put takes microseconds; the median
        // of 2,000 is far below a millisecond even on a loaded machine.
        assert!(p50 < Duration::from_millis(1), "{name}: {h}");
        assert!(h.sum() >= p50 * 125, "{name}: {h}");
    }
}

#[test]
fn counts_from_many_threads_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..500u32 {
                    db.put(format!("t{t}-{i:04}"), "x").unwrap();
                    db.get(format!("t{t}-{i:04}")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = db.statistics();
    assert_eq!(s.writes, 2000);
    assert_eq!(s.keys_written, 2000);
    assert_eq!(s.bytes_written, 2000 * 8);
    assert_eq!(s.keys_read, 2000);
    assert_eq!(s.keys_found, 2000);
    // Each thread times the first of every 8 of its 500: 63.
    assert_eq!(s.write_latency.count(), 4 * 63);
    assert_eq!(s.get_latency.count(), 4 * 63);
}

#[test]
fn statistics_off_records_no_per_operation_figures() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(Options {
        statistics: false,
        ..Options::new(dir.path())
    })
    .unwrap();
    db.put("k", "v").unwrap();
    assert!(db.get("k").unwrap().is_some());
    assert_eq!(db.iter().count(), 1);
    db.flush().unwrap();
    let s = db.statistics();
    assert_eq!((s.writes, s.keys_read, s.iter_seeks), (0, 0, 0));
    assert_eq!(s.get_latency.count() + s.write_latency.count(), 0);
    // Background work is counted either way.
    assert_eq!(s.flushes, 1);
}
