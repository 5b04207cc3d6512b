//! Read views under churn: keys that always exist must always be found,
//! and a reader must never see a value older than one it already saw,
//! whatever flushes and compactions do meanwhile.
//!
//! Every key is written before the threads start and never deleted; one
//! writer keeps bumping versions while readers use `get`, `iter`, `range`,
//! a seek (`range(k..)`), reverse iteration and snapshots. Tiny memtables
//! and a level-0 trigger of 2 keep a flush or compaction installing a new
//! version at almost every moment, which is when a reader that takes its
//! sequence number and its view at two different points loses keys.
//!
//! The window between a reader's two steps is nanoseconds wide, so the
//! test widens it with a test-only hook (`internals::set_read_view_pause`):
//! one read in 16 pauses for 2 ms between reading the sequence number
//! and taking the view. With the two taken at different points, this finds
//! a missing key within a second or two; without the hook, in 5–30 s.
//!
//! `AIDB_STRESS_MS` sets the duration (default 15 s).

use aidb::{Options, DB};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: usize = 64;
const READERS: usize = 6;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

fn value(version: u64) -> Vec<u8> {
    let mut v = version.to_be_bytes().to_vec();
    v.resize(64, b'v');
    v
}

fn version_of(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().expect("value holds a version"))
}

fn duration() -> Duration {
    let ms = std::env::var("AIDB_STRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_000);
    Duration::from_millis(ms)
}

/// What one reader has seen: per key, the newest version.
struct Seen(Vec<u64>);

impl Seen {
    fn check(&mut self, how: &str, k: usize, got: Option<Vec<u8>>) -> Result<(), String> {
        let Some(v) = got else {
            return Err(format!("{how}: key {k} is missing (it always exists)"));
        };
        let ver = version_of(&v);
        if ver < self.0[k] {
            return Err(format!(
                "{how}: key {k} went back from version {} to {ver}",
                self.0[k]
            ));
        }
        self.0[k] = ver;
        Ok(())
    }

    /// Checks a full scan: every key once, in order, none older than seen.
    fn check_scan(
        &mut self,
        how: &str,
        items: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>,
        expected: impl Iterator<Item = usize>,
    ) -> Result<(), String> {
        let mut items = items;
        for k in expected {
            match items.next() {
                Some(Ok((got, v))) if got == key(k) => self.check(how, k, Some(v))?,
                Some(Ok((got, _))) => {
                    return Err(format!(
                        "{how}: expected key {k}, got {}",
                        String::from_utf8_lossy(&got)
                    ))
                }
                Some(Err(e)) => return Err(format!("{how}: error {e}")),
                None => return Err(format!("{how}: ended before key {k}")),
            }
        }
        match items.next() {
            None => Ok(()),
            Some(other) => Err(format!("{how}: extra item {other:?}")),
        }
    }
}

fn reader(db: &DB, r: usize, stop: &AtomicBool, reads: &AtomicU64) -> Result<(), String> {
    let mut seen = Seen(vec![0; KEYS]);
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let k = (r * 17 + round * 7) % KEYS;
        let get = db.get(key(k)).map_err(|e| e.to_string())?;
        seen.check("get", k, get)?;
        match round % 16 {
            0 => seen.check_scan("iter", db.iter(), 0..KEYS)?,
            1 => seen.check_scan("iter().rev()", db.iter().rev(), (0..KEYS).rev())?,
            2 => {
                let lo = k.min(KEYS - 8);
                seen.check_scan("range", db.range(key(lo)..key(lo + 8)), lo..lo + 8)?
            }
            3 => {
                // A seek: the first entry at or after an existing key is it.
                let first = db.range(key(k)..).next();
                let first = first.transpose().map_err(|e| e.to_string())?;
                match first {
                    Some((got, v)) if got == key(k) => seen.check("seek", k, Some(v))?,
                    other => return Err(format!("seek to key {k} gave {other:?}")),
                }
            }
            4 => {
                let snap = db.snapshot();
                let before: Vec<_> = (0..KEYS)
                    .map(|k| snap.get(key(k)).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
                for (k, v) in before.iter().enumerate() {
                    seen.check("snapshot get", k, v.clone())?;
                }
                let mut scan_seen = Seen(seen.0.clone());
                scan_seen.check_scan("snapshot iter", snap.iter(), 0..KEYS)?;
                let after: Vec<_> = (0..KEYS)
                    .map(|k| snap.get(key(k)).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
                if before != after {
                    return Err("a snapshot's answers changed".into());
                }
            }
            _ => {}
        }
        reads.fetch_add(1, Ordering::Relaxed);
        round += 1;
    }
    Ok(())
}

#[test]
fn keys_that_always_exist_are_always_found_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Options::new(dir.path())
    };
    aidb::internals::set_read_view_pause(16, Duration::from_millis(2));
    let db = Arc::new(DB::open_with(opts).unwrap());
    for k in 0..KEYS {
        db.put(key(k), value(1)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut versions = vec![1u64; KEYS];
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let k = (i * 13) % KEYS;
                versions[k] += 1;
                db.put(key(k), value(versions[k])).unwrap();
                i += 1;
            }
            versions
        })
    };
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, stop, reads) = (db.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let result = reader(&db, r, &stop, &reads);
                // Stop everyone at the first anomaly.
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                result
            })
        })
        .collect();

    let start = Instant::now();
    while start.elapsed() < duration() && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = readers
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();
    let versions = writer.join().unwrap();
    let stats = db.stats();
    println!(
        "{} reads, {} flushes, {} compactions in {:?}",
        reads.load(Ordering::Relaxed),
        stats.flushes,
        stats.compactions,
        start.elapsed()
    );
    assert!(failures.is_empty(), "anomalies: {failures:#?}");
    assert!(
        stats.flushes > 0 && stats.compactions > 0,
        "no background work"
    );
    for (k, &v) in versions.iter().enumerate() {
        assert_eq!(db.get(key(k)).unwrap().map(|v| version_of(&v)), Some(v));
    }
}
