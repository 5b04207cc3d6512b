//! The cost of `Options::statistics` on db_bench's fillrandom and
//! readrandom: two databases, one with per-operation statistics and one
//! without, run the same operations taking turns a chunk at a time (so
//! load from other processes hits both alike), several rounds; prints the
//! median overhead. A plain program, not criterion: `cargo bench --bench
//! statistics_overhead [-- N]` with N keys (default 200,000).

use aidb::{Options, DB};
use std::time::Instant;

const VALUE_LEN: usize = 100;
const ROUNDS: usize = 5;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(format!("{i:016}").as_bytes());
    k
}

/// A permutation of 0..n (xorshift), the same for every run.
fn shuffled(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn open(dir: &std::path::Path, statistics: bool) -> DB {
    DB::open_with(Options {
        statistics,
        ..Options::new(dir)
    })
    .unwrap()
}

/// Keys per turn: the two databases take turns, a chunk at a time, so
/// that load from other processes falls on both alike.
const CHUNK: usize = 5_000;

/// (fillrandom, readrandom) seconds taken by the database with statistics
/// on and by the one with them off, which run the same operations in turn.
fn run(n: u64) -> ([f64; 2], [f64; 2]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let dbs = [open(dirs[0].path(), true), open(dirs[1].path(), false)];
    let order = shuffled(n);
    let value = vec![b'v'; VALUE_LEN];
    let (mut fill, mut read) = ([0.0; 2], [0.0; 2]);
    for (c, chunk) in order.chunks(CHUNK).enumerate() {
        // Alternate which goes first.
        for which in [c % 2, 1 - c % 2] {
            let (db, t) = (&dbs[which], &mut fill[which]);
            let start = Instant::now();
            for &i in chunk {
                db.put(key(i), &value).unwrap();
            }
            *t += start.elapsed().as_secs_f64();
        }
    }
    // The same shape for both (background work ran at different moments):
    // the reads then compare the read paths alone.
    for db in &dbs {
        db.compact_range(..).unwrap();
    }
    let mut found = 0u64;
    for (c, chunk) in order.rchunks(CHUNK).enumerate() {
        for which in [c % 2, 1 - c % 2] {
            let (db, t) = (&dbs[which], &mut read[which]);
            let start = Instant::now();
            for &i in chunk {
                found += u64::from(db.get(key(i)).unwrap().is_some());
            }
            *t += start.elapsed().as_secs_f64();
        }
    }
    assert_eq!(found, 2 * n);
    (fill, read)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let (mut fill, mut read) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (f, r) = run(n);
        // The overhead of each round: time with statistics over time
        // without, minus one.
        fill.push(f[0] / f[1] - 1.0);
        read.push(r[0] / r[1] - 1.0);
        println!(
            "round: fillrandom {:.0}/{:.0} ops/s, readrandom {:.0}/{:.0} ops/s (on/off)",
            n as f64 / f[0],
            n as f64 / f[1],
            n as f64 / r[0],
            n as f64 / r[1]
        );
    }
    for (name, v) in [("fillrandom", fill), ("readrandom", read)] {
        println!(
            "{name}: statistics overhead, median of {ROUNDS} rounds: {:.1}%",
            median(v) * 100.0
        );
    }
}
