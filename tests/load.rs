//! Load test (ignored by default; `cargo test --release --test load -- --ignored --nocapture`):
//! 5 million random puts with default options, then a full overwrite and
//! `compact_range(..)`. Checks that level 0 never reaches the stop trigger,
//! that every level stays near its target once idle, and that the live data
//! after compaction is at most 1.15 times the logical data. Prints the
//! write amplification. `AIDB_LOAD_KEYS` changes the number of keys.

use aidb::{Options, DB};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;

fn key(i: u64) -> [u8; KEY_LEN] {
    // Spread the keys over the key space, as random keys would be.
    let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&mixed.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A value that compresses to about half, like db_bench's.
fn value(rng: &mut impl Rng) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_LEN];
    rng.fill(&mut v[..VALUE_LEN / 2]);
    v
}

fn fill(db: &DB, order: &[u64], rng: &mut impl Rng) {
    for (n, &i) in order.iter().enumerate() {
        db.put(key(i), value(rng)).unwrap();
        if n % 1_000_000 == 999_999 {
            println!(
                "  {} puts, {:?}",
                n + 1,
                db.stats()
                    .levels
                    .iter()
                    .map(|l| l.files)
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
#[ignore]
fn five_million_random_puts() {
    let n: u64 = std::env::var("AIDB_LOAD_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path());
    let stop_trigger = opts.level0_stop_writes_trigger;
    let db = Arc::new(DB::open_with(opts).unwrap());
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut order: Vec<u64> = (0..n).collect();
    order.shuffle(&mut rng);

    let done = Arc::new(AtomicBool::new(false));
    let max_l0 = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (db, done, max_l0) = (db.clone(), done.clone(), max_l0.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                max_l0.fetch_max(db.stats().levels[0].files, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let start = Instant::now();
    fill(&db, &order, &mut rng);
    let load_time = start.elapsed();
    db.wait_for_idle().unwrap();
    let settled = db.stats();
    println!(
        "loaded {n} keys in {load_time:?} ({:.0} puts/s)",
        n as f64 / load_time.as_secs_f64()
    );
    println!("after load: {settled:#?}");
    for (level, l) in settled.levels.iter().enumerate() {
        if let Some(target) = l.target_bytes {
            assert!(
                l.bytes as f64 <= target as f64 * 1.1 + (64 << 20) as f64,
                "level {level} holds {} bytes, target {target}",
                l.bytes
            );
        }
    }

    order.shuffle(&mut rng);
    let start = Instant::now();
    fill(&db, &order, &mut rng);
    println!("overwrote {n} keys in {:?}", start.elapsed());
    let start = Instant::now();
    db.compact_range(..).unwrap();
    db.wait_for_idle().unwrap();
    println!("compact_range(..) took {:?}", start.elapsed());
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();

    let stats = db.stats();
    let live: u64 = stats.levels.iter().map(|l| l.bytes).sum();
    let logical = n * (KEY_LEN + VALUE_LEN) as u64;
    println!("final: {stats:#?}");
    println!(
        "max level-0 files {} (stop trigger {stop_trigger}); live {live} bytes for {logical} logical ({:.3}); write amplification {:.2}; stalled {:?}",
        max_l0.load(Ordering::Relaxed),
        live as f64 / logical as f64,
        stats.write_amplification,
        stats.stall_time,
    );
    assert!(max_l0.load(Ordering::Relaxed) <= stop_trigger);
    assert!(live as f64 <= logical as f64 * 1.15);
    assert_eq!(db.iter().count() as u64, n);
}
