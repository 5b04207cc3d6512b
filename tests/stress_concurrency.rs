//! Concurrency stress: writers, readers, a snapshot checker and an iterating
//! thread run together while flushes and compactions churn with tiny sizes.

use aidb::{Options, DB};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: usize = 300;
const WRITERS: usize = 4;
const READERS: usize = 4;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

fn decode(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().expect("value holds a version"))
}

fn duration() -> Duration {
    let ms = std::env::var("AIDB_STRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    Duration::from_millis(ms)
}

#[test]
fn versions_never_go_backwards_and_snapshots_never_change() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Options::new(dir.path())
    };
    let db = Arc::new(DB::open_with(opts.clone()).unwrap());
    // Per key: the last acknowledged version. Writers hold the key's lock
    // while writing, so versions of one key are written in order.
    let versions: Arc<Vec<Mutex<u64>>> = Arc::new((0..KEYS).map(|_| Mutex::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();

    for w in 0..WRITERS {
        let (db, versions, stop) = (db.clone(), versions.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            // Overlapping ranges: writer w covers [w*60, w*60+120).
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let k = (w * 60 + (i * 7) % 120) % KEYS;
                let mut v = versions[k].lock();
                let next = *v + 1;
                let mut value = next.to_be_bytes().to_vec();
                value.extend(std::iter::repeat_n(b'p', (i % 40) + 8));
                db.put(key(k), &value).unwrap();
                *v = next;
                i += 1;
            }
        }));
    }
    for r in 0..READERS {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut seen = vec![0u64; KEYS];
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let k = (r * 31 + round * 13) % KEYS;
                if let Some(v) = db.get(key(k)).unwrap() {
                    let ver = decode(&v);
                    assert!(ver >= seen[k], "key {k} went from {} to {ver}", seen[k]);
                    seen[k] = ver;
                }
                if round.is_multiple_of(200) {
                    let snap = db.snapshot();
                    let first: Vec<Option<Vec<u8>>> = (0..KEYS)
                        .step_by(7)
                        .map(|k| snap.get(key(k)).unwrap())
                        .collect();
                    let scanned: Vec<_> = snap.iter().map(|r| r.unwrap()).collect();
                    std::thread::sleep(Duration::from_millis(5));
                    let again: Vec<Option<Vec<u8>>> = (0..KEYS)
                        .step_by(7)
                        .map(|k| snap.get(key(k)).unwrap())
                        .collect();
                    assert_eq!(first, again, "snapshot answers changed");
                    let rescanned: Vec<_> = snap.iter().map(|r| r.unwrap()).collect();
                    assert!(scanned == rescanned, "snapshot scan changed");
                }
                round += 1;
            }
        }));
    }
    {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut prev: Option<Vec<u8>> = None;
                for item in db.iter() {
                    let (k, v) = item.unwrap();
                    assert!(prev.as_ref().is_none_or(|p| *p < k), "scan out of order");
                    decode(&v);
                    prev = Some(k);
                }
                let back: Vec<_> = db.iter().rev().take(50).map(|r| r.unwrap().0).collect();
                assert!(
                    back.windows(2).all(|w| w[0] > w[1]),
                    "reverse scan out of order"
                );
            }
        }));
    }

    let start = Instant::now();
    while start.elapsed() < duration() {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    db.wait_for_idle().unwrap();
    let stats = db.stats();
    println!("{stats:?}");
    assert!(
        stats.flushes > 0 && stats.compactions > 0,
        "no background work happened"
    );
    let check = |db: &DB| {
        for (k, v) in versions.iter().enumerate() {
            let want = *v.lock();
            let got = db.get(key(k)).unwrap().map(|v| decode(&v)).unwrap_or(0);
            assert_eq!(got, want, "key {k}");
        }
    };
    check(&db);
    drop(db);
    let db = DB::open_with(opts).unwrap();
    check(&db);
}
