//! Workloads of features not every engine has: merge operators, range
//! deletions and SST ingestion. An engine without the feature skips them
//! (fjall 3 has none of them).
//!
//! - `mergerandom`: `num` merges of a little-endian `u64` 1 onto random keys
//!   (an adding operator on both sides, as RocksDB's db_bench `uint64add`),
//!   on a fresh database.
//! - `readrandom-rangedel`: 1,000 range deletions scattered over the
//!   database the reads use (each removes one key), then readrandom with
//!   the same keys and seeds as `readrandom`: compare the two rows.
//! - `deleterange`: fills `num` keys in order, compacts, deletes the first
//!   90% with one range deletion (the call is what is timed), compacts
//!   again, and prints the disk use against the remaining 10%.
//! - `fillingest`: the keys and values of `fillseq` (same order, same
//!   seed) written with the engine's SST writer into files of at most
//!   `INGEST_FILE_KEYS` keys, then ingested in one call, moving the files
//!   in; all of it is timed, on a fresh database. Compare with the
//!   `fillseq` row (a put loop, which leaves its last memtable unflushed).

use crate::engines::Engine;
use crate::workloads::{dir_size, key, measure, timed, value, Measured};
use crate::Settings;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// The engine feature a workload needs.
pub fn needs(w: &str) -> Option<&'static str> {
    match w {
        "mergerandom" => Some("merge"),
        "readrandom-rangedel" | "deleterange" => Some("delete_range"),
        "fillingest" => Some("ingest"),
        _ => None,
    }
}

/// Keys per table file written by `fillingest`.
pub const INGEST_FILE_KEYS: u64 = 250_000;

/// The adding operator's operand.
pub const ONE: [u8; 8] = 1u64.to_le_bytes();

/// Folds `u64` operands onto an existing `u64` (absent: 0).
pub fn add_u64<'a>(existing: Option<&[u8]>, operands: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let read = |b: &[u8]| b.try_into().map_or(0, u64::from_le_bytes);
    let sum = operands.fold(existing.map_or(0, read), |s, o| s.wrapping_add(read(o)));
    sum.to_le_bytes().to_vec()
}

pub fn run(engine: &str, db: &dyn Engine, dir: &Path, w: &str, s: &Settings) -> Measured {
    let n = s.num;
    match w {
        "mergerandom" => measure(1, |_, h| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(50);
            for _ in 0..n {
                let k = key(rng.gen_range(0..n), s.key_size);
                timed(h, || db.merge(&k, &ONE));
            }
            n
        }),
        "readrandom-rangedel" => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(60);
            for _ in 0..1000 {
                let i = rng.gen_range(0..n.saturating_sub(1));
                db.delete_range(&key(i, s.key_size), &key(i + 1, s.key_size));
            }
            db.settle();
            // The same keys and seeds as `readrandom`.
            measure(s.threads, |t, h| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(10 + t as u64);
                let per = n / s.threads as u64;
                let mut found = 0;
                for _ in 0..per {
                    let k = key(rng.gen_range(0..n), s.key_size);
                    found += timed(h, || db.get(&k)) as u64;
                }
                if found * 100 < per * 99 {
                    eprintln!("  {engine}: {w} found only {found} of {per} keys");
                }
                per
            })
        }
        "deleterange" => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(70);
            for i in 0..n {
                db.put(&key(i, s.key_size), &value(&mut rng, s.value_size), false);
            }
            db.settle();
            db.compact_all();
            let before = dir_size(dir);
            let cut = n / 10 * 9;
            let mut m = measure(1, |_, h| {
                timed(h, || {
                    db.delete_range(&key(0, s.key_size), &key(cut, s.key_size))
                });
                1
            });
            // One call: its own latency, not the harness's thread start-up,
            // is the workload's time (and so its ops/s).
            m.secs = m.hist.quantile_us(1.0) / 1e6;
            db.settle();
            db.compact_all();
            db.settle();
            let after = dir_size(dir);
            let live = (before as f64) * (n - cut) as f64 / n as f64;
            println!(
                "  {engine:8} deleterange: the call took {:.1} us; disk {:.2} MB before, \
                 {:.2} MB after compaction = {:.2}x the remaining live data ({:.2} MB)",
                m.hist.quantile_us(1.0),
                before as f64 / (1 << 20) as f64,
                after as f64 / (1 << 20) as f64,
                after as f64 / live.max(1.0),
                live / (1 << 20) as f64
            );
            m
        }
        "fillingest" => {
            let files = dir.with_extension("ingest");
            std::fs::create_dir_all(&files).expect("create the SST directory");
            let m = measure(1, |_, h| {
                // The values of `fillseq`: the same generator and seed.
                let mut rng = rand::rngs::StdRng::seed_from_u64(2);
                let mut paths = Vec::new();
                let mut next = 0;
                while next < n {
                    let end = (next + INGEST_FILE_KEYS).min(n);
                    let path = files.join(format!("{:06}.sst", paths.len()));
                    let mut items =
                        (next..end).map(|i| (key(i, s.key_size), value(&mut rng, s.value_size)));
                    timed(h, || db.write_sst(&path, &mut items));
                    paths.push(path);
                    next = end;
                }
                timed(h, || db.ingest(&paths));
                n
            });
            let _ = std::fs::remove_dir_all(&files);
            m
        }
        other => crate::die(&format!("unknown feature workload {other}")),
    }
}
