//! The workloads, run against one engine at a time, and what is measured
//! around them.

use crate::engines::{self, Counters, Engine};
use crate::hist::Histogram;
use crate::{die, Settings};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Every workload, in the order they run. Reads run on the database left
/// by fillrandom + overwrite; the `fill*` workloads start a fresh one.
pub const ALL: &[&str] = &[
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readrandom2",
    "readmissing",
    "readseq",
    "readreverse",
    "seekrandom",
    "readseq-raw",
    "readreverse-raw",
    "seekrandom-raw",
    "readwhilewriting",
    "readrandom-rangedel",
    "fillsync",
    "fillbatch",
    "txn_put",
    "txn_transfer",
    "mergerandom",
    "deleterange",
    "fillingest",
];

fn is_fresh(w: &str) -> bool {
    matches!(
        w,
        "fillseq"
            | "fillrandom"
            | "fillsync"
            | "fillbatch"
            | "mergerandom"
            | "deleterange"
            | "fillingest"
    )
}

fn is_write(w: &str) -> bool {
    matches!(
        w,
        "fillseq" | "fillrandom" | "fillsync" | "fillbatch" | "overwrite"
    )
}

/// One result row.
pub struct Row {
    pub workload: String,
    pub engine: String,
    pub api: String,
    pub threads: usize,
    pub ops: u64,
    pub secs: f64,
    pub bytes: u64,
    pub hist: Histogram,
    pub peak_rss_mb: f64,
    /// Bytes the process passed to write(2) per byte of keys and values.
    pub write_amp: Option<f64>,
    /// The engine's own figure: table bytes written per user byte.
    pub engine_write_amp: Option<f64>,
    /// Writer stall time the engine reports for the workload.
    pub stall_ms: Option<f64>,
    pub disk_mb: Option<f64>,
}

impl Row {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs.max(1e-9) / (1 << 20) as f64
    }
}

pub fn key(i: u64, size: usize) -> Vec<u8> {
    let mut k = format!("{i:0w$}", w = size).into_bytes();
    k.truncate(size);
    k
}

/// A value that compresses to about half, as db_bench makes them.
pub fn value(rng: &mut impl Rng, size: usize) -> Vec<u8> {
    let mut v = vec![b'x'; size];
    for b in &mut v[..size / 2] {
        *b = rng.gen_range(b' '..=b'~');
    }
    v
}

pub fn proc_field(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes allocated on disk to every file under `dir`, as `du` counts them
/// (engines keep subdirectories; fjall preallocates its journal sparsely).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

pub struct Measured {
    pub ops: u64,
    pub secs: f64,
    pub hist: Histogram,
    pub peak_rss_mb: f64,
}

/// Runs `work` (given a thread index and a latency histogram; returns its
/// operation count) on `threads` threads while sampling the process's RSS.
pub fn measure(threads: usize, work: impl Fn(usize, &mut Histogram) -> u64 + Sync) -> Measured {
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(proc_field("/proc/self/status", "VmRSS:"));
    let start = Instant::now();
    let (ops, secs, hist) = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(proc_field("/proc/self/status", "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                s.spawn(move || {
                    let mut h = Histogram::new();
                    let n = work(t, &mut h);
                    (n, h)
                })
            })
            .collect();
        let mut total = 0;
        let mut hist = Histogram::new();
        for h in handles {
            let (n, hh) = h.join().expect("worker");
            total += n;
            hist.merge(&hh);
        }
        // Timed before the sampler is stopped: it sleeps in 10 ms steps.
        let secs = start.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        (total, secs, hist)
    });
    Measured {
        ops,
        secs,
        hist,
        peak_rss_mb: peak.load(Ordering::Relaxed) as f64 / 1024.0,
    }
}

pub fn timed<T>(h: &mut Histogram, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    h.record(t.elapsed().as_nanos() as u64);
    r
}

/// Runs the selected workloads against `engine`; databases live under `base`.
pub fn run_engine(engine: &str, s: &Settings, base: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut current: Option<(Box<dyn Engine>, std::path::PathBuf)> = None;
    let mut fresh_count = 0;
    for w in s.benchmarks.iter().map(String::as_str) {
        if crate::txn::WORKLOADS.contains(&w) {
            // On a database of its own; the one of the plain workloads
            // must not be compacting meanwhile.
            if let Some((db, _)) = &current {
                db.settle();
            }
            match crate::txn::run(engine, s, base, w) {
                Some(row) => {
                    print_row(engine, w, &row);
                    rows.push(row);
                }
                None => println!("  {engine:8} {w:17} skipped: not compared"),
            }
            continue;
        }
        if is_fresh(w) || current.is_none() {
            if let Some((db, dir)) = current.take() {
                drop(db); // close the previous database, then free its space
                let _ = std::fs::remove_dir_all(dir);
            }
            let dir = base.join(format!("{engine}-{fresh_count}"));
            fresh_count += 1;
            let _ = std::fs::remove_dir_all(&dir);
            let opened = engines::open(engine, &dir, s);
            if fresh_count == 1 {
                println!("  {engine} settings: {}", opened.settings);
            }
            current = Some((opened.engine, dir));
        }
        let (db, dir) = current.as_ref().expect("open");
        if w.ends_with("-raw") && !db.has_raw() {
            println!("  {engine:8} {w:17} skipped: no raw cursor API");
            continue;
        }
        if let Some(feature) = crate::features::needs(w).filter(|f| !db.supports(f)) {
            println!("  {engine:8} {w:17} skipped: no {feature} in its API");
            continue;
        }
        let row = run_one(engine, &**db, dir, w, s);
        print_row(engine, w, &row);
        rows.push(row);
    }
    if let Some((db, dir)) = current.take() {
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }
    rows
}

fn print_row(engine: &str, w: &str, row: &Row) {
    println!(
        "  {engine:8} {w:17} {:>12.0} ops/s  p99 {:>8.1} us  [{}]",
        row.ops_per_sec(),
        row.hist.quantile_us(0.99),
        row.api
    );
}

fn run_one(engine: &str, db: &dyn Engine, dir: &Path, w: &str, s: &Settings) -> Row {
    let kv = (s.key_size + s.value_size) as u64;
    let n = s.num;
    let writes = is_write(w);
    if !writes {
        println!("  {engine}: waiting for background work before {w}");
        db.settle();
    }
    let threads = match w {
        _ if writes => 1,
        "readrandom2" => 2,
        "readseq" | "readreverse" | "readseq-raw" | "readreverse-raw" => 1,
        _ => s.threads,
    };
    let counters_before = db.counters();
    let wchar_before = proc_field("/proc/self/io", "wchar:");
    let m = match w {
        "fillseq" | "fillrandom" | "overwrite" | "fillsync" => {
            let count = if w == "fillsync" { (n / 100).max(1) } else { n };
            let mut order: Vec<u64> = (0..count).collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            match w {
                "fillrandom" => order.shuffle(&mut rng),
                "overwrite" => order.iter_mut().for_each(|k| *k = rng.gen_range(0..n)),
                _ => {}
            }
            measure(1, |_, h| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(2);
                for &i in &order {
                    let (k, v) = (key(i, s.key_size), value(&mut rng, s.value_size));
                    timed(h, || db.put(&k, &v, w == "fillsync"));
                }
                order.len() as u64
            })
        }
        "fillbatch" => measure(1, |_, h| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
                let items: Vec<_> = chunk
                    .iter()
                    .map(|&i| (key(i, s.key_size), value(&mut rng, s.value_size)))
                    .collect();
                timed(h, || db.batch(&items));
            }
            n
        }),
        "readrandom" | "readrandom2" | "readmissing" => measure(threads, |t, h| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(10 + t as u64);
            let per = n / threads as u64;
            let mut found = 0;
            for _ in 0..per {
                let mut k = key(rng.gen_range(0..n), s.key_size);
                if w == "readmissing" {
                    *k.last_mut().expect("key") = b'.';
                }
                found += timed(h, || db.get(&k)) as u64;
            }
            let expected = if w == "readmissing" { 0 } else { per };
            if found != expected {
                eprintln!("  {engine}: {w} found {found} keys, expected {expected}");
            }
            per
        }),
        "readseq" | "readreverse" | "readseq-raw" | "readreverse-raw" => {
            let reverse = w.starts_with("readreverse");
            let raw = w.ends_with("-raw");
            measure(1, |_, h| {
                let read = timed(h, || {
                    if raw {
                        db.raw_scan(reverse)
                    } else {
                        db.scan(reverse)
                    }
                });
                if read != n {
                    eprintln!("  {engine}: {w} read {read} entries, expected {n}");
                }
                read
            })
        }
        "seekrandom" | "seekrandom-raw" => measure(threads, |t, h| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(20 + t as u64);
            let per = (n / 10 / threads as u64).max(1);
            for _ in 0..per {
                let k = key(rng.gen_range(0..n), s.key_size);
                timed(h, || {
                    if w == "seekrandom" {
                        db.seek_read(&k, 10)
                    } else {
                        db.raw_seek_read(&k, 10)
                    }
                });
            }
            per
        }),
        "readwhilewriting" => {
            let stop = AtomicBool::new(false);
            let puts = AtomicU64::new(0);
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(30);
                    while !stop.load(Ordering::Relaxed) {
                        let k = key(rng.gen_range(0..n), s.key_size);
                        db.put(&k, &value(&mut rng, s.value_size), false);
                        puts.fetch_add(1, Ordering::Relaxed);
                    }
                });
                let r = measure(threads, |t, h| {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(40 + t as u64);
                    let per = n / threads as u64;
                    for _ in 0..per {
                        let k = key(rng.gen_range(0..n), s.key_size);
                        timed(h, || db.get(&k));
                    }
                    per
                });
                stop.store(true, Ordering::Relaxed);
                // The writer is not rate-limited: how much it wrote says
                // how much of the CPU it and its background work took.
                let puts = puts.load(Ordering::Relaxed);
                println!(
                    "  {engine:<8} readwhilewriting writer: {puts} puts, {:.0} puts/s",
                    puts as f64 / r.secs
                );
                r
            })
        }
        w if crate::features::needs(w).is_some() => crate::features::run(engine, db, dir, w, s),
        other => die(&format!("unknown benchmark {other}")),
    };
    let (mut write_amp, mut engine_write_amp, mut stall_ms, mut disk_mb) = (None, None, None, None);
    if writes {
        // Bytes the process handed to write(2) for this workload,
        // background work included: the same yardstick for every engine.
        db.settle();
        let wrote = proc_field("/proc/self/io", "wchar:").saturating_sub(wchar_before);
        write_amp = Some(wrote as f64 / (m.ops * kv) as f64);
        disk_mb = Some(dir_size(dir) as f64 / (1 << 20) as f64);
        if let (Some(a), Some(b)) = (counters_before, db.counters()) {
            let d = |f: fn(&Counters) -> u64| f(&b).saturating_sub(f(&a));
            engine_write_amp =
                // Per byte of keys and values, as the process column: the
                // engines count their own user bytes differently (RocksDB
                // includes batch framing, 15 bytes more per 116-byte put).
                Some(d(|c| c.table_bytes) as f64 / (m.ops * kv).max(1) as f64);
            stall_ms = Some(b.stall.saturating_sub(a.stall).as_secs_f64() * 1000.0);
        }
    }
    Row {
        workload: w.to_string(),
        engine: engine.to_string(),
        api: db.api(w).to_string(),
        threads,
        ops: m.ops,
        secs: m.secs,
        bytes: m.ops * kv,
        hist: m.hist,
        peak_rss_mb: m.peak_rss_mb,
        write_amp,
        engine_write_amp,
        stall_ms,
        disk_mb,
    }
}
