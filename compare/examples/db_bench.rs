//! db_bench: the same workloads against AiDb, RocksDB and fjall, with the
//! same settings, in one run; one table per run, plus CSV and an SVG chart.
//!
//! ```sh
//! cargo run --release -p aidb-compare --example db_bench -- --num 1000000
//! ```
//!
//! Flags (defaults in brackets): --num [1000000] --key-size [16]
//! --value-size [100] --threads [1] --engines [aidb,rocksdb,fjall]
//! --compression [lz4|snappy|none] --cache-size [67108864]
//! --write-buffer-size [67108864] --bloom-bits [10] --db [a temp dir]
//! --benchmarks [all] --out [db_bench] (writes OUT.csv and OUT.svg).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALL: &[&str] = &[
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "readseq",
    "readreverse",
    "seekrandom",
    "readwhilewriting",
    "fillsync",
    "fillbatch",
];

#[derive(Clone)]
struct Settings {
    num: u64,
    key_size: usize,
    value_size: usize,
    threads: usize,
    engines: Vec<String>,
    compression: String,
    cache_size: usize,
    write_buffer_size: usize,
    bloom_bits: u32,
    db: Option<PathBuf>,
    benchmarks: Vec<String>,
    out: String,
}

fn parse_args() -> Settings {
    let mut s = Settings {
        num: 1_000_000,
        key_size: 16,
        value_size: 100,
        threads: 1,
        engines: vec!["aidb".into(), "rocksdb".into(), "fjall".into()],
        compression: "lz4".into(),
        cache_size: 64 << 20,
        write_buffer_size: 64 << 20,
        bloom_bits: 10,
        db: None,
        benchmarks: ALL.iter().map(|s| s.to_string()).collect(),
        out: "db_bench".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let (flag, value) = match args[i].split_once('=') {
            Some((f, v)) => (f.to_string(), v.to_string()),
            None => {
                i += 1;
                (
                    args[i - 1].clone(),
                    args.get(i).cloned().unwrap_or_default(),
                )
            }
        };
        i += 1;
        let list = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
        let num = |v: &str| {
            v.parse::<u64>()
                .unwrap_or_else(|_| die(&format!("bad number for {flag}: {v}")))
        };
        match flag.as_str() {
            "--num" => s.num = num(&value),
            "--key-size" => s.key_size = num(&value) as usize,
            "--value-size" => s.value_size = num(&value) as usize,
            "--threads" => s.threads = num(&value).max(1) as usize,
            "--engines" => s.engines = list(&value),
            "--compression" => s.compression = value,
            "--cache-size" => s.cache_size = num(&value) as usize,
            "--write-buffer-size" => s.write_buffer_size = num(&value) as usize,
            "--bloom-bits" => s.bloom_bits = num(&value) as u32,
            "--db" => s.db = Some(PathBuf::from(value)),
            "--benchmarks" => s.benchmarks = list(&value),
            "--out" => s.out = value,
            other => die(&format!("unknown flag {other}")),
        }
    }
    if s.key_size < 8 {
        die("--key-size must be at least 8");
    }
    s
}

fn die(msg: &str) -> ! {
    eprintln!("db_bench: {msg}");
    std::process::exit(2)
}

/// The operations every engine offers the workloads.
trait Engine: Send + Sync {
    fn put(&self, key: &[u8], value: &[u8], sync: bool);
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]);
    fn get(&self, key: &[u8]) -> bool;
    /// Reads every entry in one direction; returns how many.
    fn scan(&self, reverse: bool) -> u64;
    /// Seeks to `key` and reads up to `n` entries.
    fn seek_read(&self, key: &[u8], n: usize) -> usize;
    /// Waits until background work is done (flushes, compactions).
    fn settle(&self);
}

struct AiDbEngine(aidb::DB);

impl Engine for AiDbEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        let mut b = aidb::WriteBatch::new();
        b.put(key, value);
        self.0
            .write_opt(b, &aidb::WriteOptions { sync })
            .expect("aidb put");
    }
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = aidb::WriteBatch::new();
        for (k, v) in items {
            b.put(k, v);
        }
        self.0.write(b).expect("aidb batch");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.0.get(key).expect("aidb get").is_some()
    }
    fn scan(&self, reverse: bool) -> u64 {
        // The cursor reads entries in place, as RocksDB's raw iterator does.
        let mut it = aidb::StorageBackend::raw_iterator(&self.0);
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut n = 0;
        while it.valid() {
            std::hint::black_box((it.key(), it.value()));
            n += 1;
            if reverse {
                it.prev()
            } else {
                it.next()
            }
        }
        it.status().expect("aidb scan");
        n
    }
    fn seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut it = aidb::StorageBackend::raw_iterator(&self.0);
        it.seek(key);
        let mut read = 0;
        while it.valid() && read < n {
            std::hint::black_box((it.key(), it.value()));
            read += 1;
            it.next();
        }
        it.status().expect("aidb seek");
        read
    }
    fn settle(&self) {
        self.0.flush().expect("aidb flush");
        self.0.wait_for_idle().expect("aidb idle");
    }
}

struct RocksEngine(rocksdb::DB);

impl Engine for RocksEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(sync);
        self.0.put_opt(key, value, &wo).expect("rocksdb put");
    }
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = rocksdb::WriteBatch::default();
        for (k, v) in items {
            b.put(k, v);
        }
        self.0.write(b).expect("rocksdb batch");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.0.get_pinned(key).expect("rocksdb get").is_some()
    }
    fn scan(&self, reverse: bool) -> u64 {
        let mut it = self.0.raw_iterator();
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut n = 0;
        while it.valid() {
            std::hint::black_box((it.key(), it.value()));
            n += 1;
            if reverse {
                it.prev()
            } else {
                it.next()
            }
        }
        n
    }
    fn seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut it = self.0.raw_iterator();
        it.seek(key);
        let mut read = 0;
        while it.valid() && read < n {
            std::hint::black_box((it.key(), it.value()));
            read += 1;
            it.next();
        }
        read
    }
    fn settle(&self) {
        self.0.flush().expect("rocksdb flush");
        loop {
            let busy = |p: &str| self.0.property_int_value(p).ok().flatten().unwrap_or(0);
            if busy("rocksdb.compaction-pending") == 0
                && busy("rocksdb.num-running-compactions") == 0
                && busy("rocksdb.num-running-flushes") == 0
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct FjallEngine {
    keyspace: fjall::Keyspace,
    items: fjall::PartitionHandle,
}

impl Engine for FjallEngine {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        self.items.insert(key, value).expect("fjall put");
        if sync {
            self.keyspace
                .persist(fjall::PersistMode::SyncData)
                .expect("fjall persist");
        }
    }
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = self.keyspace.batch();
        for (k, v) in items {
            b.insert(&self.items, k.as_slice(), v.as_slice());
        }
        b.commit().expect("fjall batch");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.items.get(key).expect("fjall get").is_some()
    }
    fn scan(&self, reverse: bool) -> u64 {
        let count = |it: &mut dyn Iterator<Item = fjall::Result<fjall::KvPair>>| {
            it.map(|r| {
                std::hint::black_box(r.expect("fjall scan"));
                1u64
            })
            .sum()
        };
        if reverse {
            count(&mut self.items.iter().rev())
        } else {
            count(&mut self.items.iter())
        }
    }
    fn seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut read = 0;
        for r in self.items.range(key.to_vec()..).take(n) {
            std::hint::black_box(r.expect("fjall seek"));
            read += 1;
        }
        read
    }
    fn settle(&self) {
        self.keyspace
            .persist(fjall::PersistMode::SyncAll)
            .expect("fjall persist");
        // fjall has no call that waits for compaction; give it a moment.
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn open(engine: &str, dir: &Path, s: &Settings) -> (Arc<dyn Engine>, String) {
    std::fs::create_dir_all(dir).expect("create db dir");
    match engine {
        "aidb" => {
            let compression = match s.compression.as_str() {
                "none" => aidb::Compression::None,
                "snappy" => aidb::Compression::Snappy,
                _ => aidb::Compression::Lz4,
            };
            let opts = aidb::Options {
                write_buffer_size: s.write_buffer_size,
                cache_size: s.cache_size,
                bloom_bits_per_key: s.bloom_bits,
                block_size: 4096,
                compression,
                ..aidb::Options::new(dir)
            };
            let desc = format!(
                "write_buffer_size={} cache_size={} block_size=4096 bloom_bits={} compression={:?} wal=on",
                opts.write_buffer_size, opts.cache_size, opts.bloom_bits_per_key, opts.compression
            );
            (
                Arc::new(AiDbEngine(aidb::DB::open_with(opts).expect("open aidb"))),
                desc,
            )
        }
        "rocksdb" => {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            opts.set_write_buffer_size(s.write_buffer_size);
            opts.set_max_background_jobs(2);
            opts.set_compression_type(match s.compression.as_str() {
                "none" => rocksdb::DBCompressionType::None,
                "snappy" => rocksdb::DBCompressionType::Snappy,
                _ => rocksdb::DBCompressionType::Lz4,
            });
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_size(4096);
            let cache = rocksdb::Cache::new_lru_cache(s.cache_size);
            table.set_block_cache(&cache);
            if s.bloom_bits > 0 {
                table.set_bloom_filter(s.bloom_bits as f64, false);
            }
            opts.set_block_based_table_factory(&table);
            let desc = format!(
                "write_buffer_size={} block_cache={} block_size=4096 bloom_bits={} compression={} wal=on max_background_jobs=2",
                s.write_buffer_size, s.cache_size, s.bloom_bits, s.compression
            );
            (
                Arc::new(RocksEngine(
                    rocksdb::DB::open(&opts, dir).expect("open rocksdb"),
                )),
                desc,
            )
        }
        "fjall" => {
            let keyspace = fjall::Config::new(dir)
                .cache_size(s.cache_size as u64)
                .open()
                .expect("open fjall");
            let mut popts = fjall::PartitionCreateOptions::default()
                .max_memtable_size(s.write_buffer_size.min(u32::MAX as usize) as u32)
                .block_size(4096);
            popts = popts.bloom_filter_bits(if s.bloom_bits > 0 {
                Some(s.bloom_bits as u8)
            } else {
                None
            });
            let items = keyspace
                .open_partition("bench", popts)
                .expect("open fjall partition");
            let desc = format!(
                "max_memtable_size={} cache_size={} block_size=4096 bloom_bits={} compression=lz4 (fjall default) journal=on",
                s.write_buffer_size, s.cache_size, s.bloom_bits
            );
            (Arc::new(FjallEngine { keyspace, items }), desc)
        }
        other => die(&format!("unknown engine {other}")),
    }
}

fn key(i: u64, size: usize) -> Vec<u8> {
    let mut k = format!("{i:0w$}", w = size).into_bytes();
    k.truncate(size);
    k
}

/// A value that compresses to about half, as db_bench makes them.
fn value(rng: &mut impl Rng, size: usize) -> Vec<u8> {
    let mut v = vec![b'x'; size];
    for b in &mut v[..size / 2] {
        *b = rng.gen_range(b' '..=b'~');
    }
    v
}

/// Log-linear latency histogram in nanoseconds (16 sub-buckets per power of 2).
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; 64 * 16],
        }
    }
    fn bucket(ns: u64) -> usize {
        if ns < 16 {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros() as usize;
        let mantissa = ((ns >> (exp - 4)) & 15) as usize;
        exp * 16 + mantissa
    }
    fn lower_bound(b: usize) -> u64 {
        if b < 16 {
            return b as u64;
        }
        let (exp, m) = (b / 16, b % 16);
        (1u64 << exp) | ((m as u64) << (exp - 4))
    }
    fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
    }
    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
    }
    fn quantile_us(&self, q: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let target = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return Self::lower_bound(b) as f64 / 1000.0;
            }
        }
        0.0
    }
}

fn proc_field(file: &str, field: &str) -> u64 {
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

/// Bytes of every file under `dir` (engines keep subdirectories).
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

struct Row {
    workload: String,
    engine: String,
    ops: u64,
    secs: f64,
    bytes: u64,
    hist: Histogram,
    peak_rss_mb: f64,
    write_amp: Option<f64>,
    disk_mb: Option<f64>,
}

impl Row {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// Runs `work` (given a thread index and a latency histogram) on `threads`
/// threads while sampling the process's RSS.
fn measure(
    threads: usize,
    work: impl Fn(usize, &mut Histogram) -> u64 + Sync,
) -> (u64, f64, Histogram, f64) {
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(proc_field("/proc/self/status", "VmRSS:"));
    let start = Instant::now();
    let (ops, hist) = std::thread::scope(|s| {
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
        done.store(true, Ordering::Relaxed);
        (total, hist)
    });
    let secs = start.elapsed().as_secs_f64();
    (
        ops,
        secs,
        hist,
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
    )
}

fn timed<T>(h: &mut Histogram, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    h.record(t.elapsed().as_nanos() as u64);
    r
}

fn run_engine(engine: &str, s: &Settings, base: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let kv = (s.key_size + s.value_size) as u64;
    let mut current: Option<(Arc<dyn Engine>, PathBuf)> = None;
    let mut fresh_count = 0;
    for workload in &s.benchmarks {
        let w = workload.as_str();
        let fresh = matches!(w, "fillseq" | "fillrandom" | "fillsync" | "fillbatch");
        if fresh || current.is_none() {
            drop(current.take()); // close the previous database first
            let dir = base.join(format!("{engine}-{fresh_count}"));
            fresh_count += 1;
            let _ = std::fs::remove_dir_all(&dir);
            let (e, desc) = open(engine, &dir, s);
            println!("  {engine} settings: {desc}");
            current = Some((e, dir));
        }
        let (db, dir) = current.clone().expect("open");
        let writes = matches!(
            w,
            "fillseq" | "fillrandom" | "overwrite" | "fillsync" | "fillbatch"
        );
        if !writes {
            println!("  {engine}: waiting for background work before {w}");
            db.settle();
        }
        let threads = if writes { 1 } else { s.threads };
        let n = s.num;
        let wchar_before = proc_field("/proc/self/io", "wchar:");
        let (ops, secs, hist, rss) = match w {
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
            "readrandom" | "readmissing" => measure(threads, |t, h| {
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
                if w == "readrandom" && found != per {
                    eprintln!("  {engine}: readrandom found {found} of {per}");
                }
                per
            }),
            "readseq" | "readreverse" => {
                measure(1, |_, h| timed(h, || db.scan(w == "readreverse")))
            }
            "seekrandom" => measure(threads, |t, h| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(20 + t as u64);
                let per = (n / 10 / threads as u64).max(1);
                for _ in 0..per {
                    let k = key(rng.gen_range(0..n), s.key_size);
                    timed(h, || db.seek_read(&k, 10));
                }
                per
            }),
            "readwhilewriting" => {
                let stop = AtomicBool::new(false);
                std::thread::scope(|sc| {
                    sc.spawn(|| {
                        let mut rng = rand::rngs::StdRng::seed_from_u64(30);
                        while !stop.load(Ordering::Relaxed) {
                            let k = key(rng.gen_range(0..n), s.key_size);
                            db.put(&k, &value(&mut rng, s.value_size), false);
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
                    r
                })
            }
            other => die(&format!("unknown benchmark {other}")),
        };
        let (write_amp, disk_mb) = if writes {
            // Bytes the process handed to write(2) for this workload,
            // background work included: the same yardstick for every engine.
            db.settle();
            let wrote_total = proc_field("/proc/self/io", "wchar:").saturating_sub(wchar_before);
            (
                Some(wrote_total as f64 / (ops * kv) as f64),
                Some(dir_size(&dir) as f64 / (1 << 20) as f64),
            )
        } else {
            (None, None)
        };
        let row = Row {
            workload: w.to_string(),
            engine: engine.to_string(),
            ops,
            secs,
            bytes: ops * kv,
            hist,
            peak_rss_mb: rss,
            write_amp,
            disk_mb,
        };
        println!(
            "  {engine:8} {w:17} {:>12.0} ops/s  p99 {:>8.1} us",
            row.ops_per_sec(),
            row.hist.quantile_us(0.99)
        );
        rows.push(row);
    }
    rows
}

fn main() {
    let s = parse_args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = s.db.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "db_bench: num={} key_size={} value_size={} threads={} compression={} cache_size={} write_buffer_size={} bloom_bits={}",
        s.num, s.key_size, s.value_size, s.threads, s.compression, s.cache_size, s.write_buffer_size, s.bloom_bits
    );
    let mut rows = Vec::new();
    for engine in &s.engines {
        println!("== {engine}");
        rows.extend(run_engine(engine, &s, &base));
    }
    print_table(&rows, &s);
    write_csv(&rows, &format!("{}.csv", s.out));
    write_svg(&rows, &s, &format!("{}.svg", s.out));
    println!("wrote {0}.csv and {0}.svg", s.out);
}

fn find<'a>(rows: &'a [Row], w: &str, e: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.workload == w && r.engine == e)
}

fn print_table(rows: &[Row], s: &Settings) {
    println!();
    println!("| workload | engine | ops/s | MB/s | p50 us | p99 us | p99.9 us | peak RSS MB | write amp | disk MB |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} |",
            r.workload,
            r.engine,
            r.ops_per_sec(),
            r.bytes as f64 / r.secs.max(1e-9) / (1 << 20) as f64,
            r.hist.quantile_us(0.5),
            r.hist.quantile_us(0.99),
            r.hist.quantile_us(0.999),
            r.peak_rss_mb,
            opt(r.write_amp),
            opt(r.disk_mb)
        );
    }
    println!();
    println!("| workload | AiDb / RocksDB | AiDb / fjall |");
    println!("|---|---:|---:|");
    for w in &s.benchmarks {
        let ratio = |other: &str| match (find(rows, w, "aidb"), find(rows, w, other)) {
            (Some(a), Some(b)) => format!("{:.2}", a.ops_per_sec() / b.ops_per_sec()),
            _ => "-".into(),
        };
        println!("| {w} | {} | {} |", ratio("rocksdb"), ratio("fjall"));
    }
}

fn write_csv(rows: &[Row], path: &str) {
    let mut out = String::from("workload,engine,ops,seconds,ops_per_sec,mb_per_sec,p50_us,p99_us,p999_us,peak_rss_mb,write_amp,disk_mb\n");
    for r in rows {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "{},{},{},{:.3},{:.0},{:.2},{:.2},{:.2},{:.2},{:.1},{},{}\n",
            r.workload,
            r.engine,
            r.ops,
            r.secs,
            r.ops_per_sec(),
            r.bytes as f64 / r.secs.max(1e-9) / (1 << 20) as f64,
            r.hist.quantile_us(0.5),
            r.hist.quantile_us(0.99),
            r.hist.quantile_us(0.999),
            r.peak_rss_mb,
            opt(r.write_amp),
            opt(r.disk_mb)
        ));
    }
    std::fs::write(path, out).unwrap_or_else(|e| die(&format!("writing {path}: {e}")));
}

/// Grouped bars: for each workload, each engine's ops/s relative to the
/// fastest engine on it, labelled with the absolute figure.
fn write_svg(rows: &[Row], s: &Settings, path: &str) {
    let colors = ["#d1495b", "#00798c", "#edae49", "#66a182"];
    let (bar_h, gap, label_w, chart_w) = (14.0, 10.0, 150.0, 520.0);
    let group_h = bar_h * s.engines.len() as f64 + gap;
    let height = 60.0 + group_h * s.benchmarks.len() as f64 + 20.0 * s.engines.len() as f64;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{height}' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n<text x='10' y='20' font-size='14'>db_bench, {} keys, {}-byte keys, {}-byte values (ops/s; bar = share of the fastest)</text>\n",
        label_w + chart_w + 140.0,
        s.num,
        s.key_size,
        s.value_size
    );
    for (wi, w) in s.benchmarks.iter().enumerate() {
        let y0 = 40.0 + wi as f64 * group_h;
        svg.push_str(&format!("<text x='10' y='{}'>{w}</text>\n", y0 + bar_h));
        let best = s
            .engines
            .iter()
            .filter_map(|e| find(rows, w, e).map(Row::ops_per_sec))
            .fold(0.0, f64::max);
        for (ei, e) in s.engines.iter().enumerate() {
            if let Some(r) = find(rows, w, e) {
                let width = chart_w * r.ops_per_sec() / best.max(1e-9);
                let y = y0 + ei as f64 * bar_h;
                svg.push_str(&format!(
                    "<rect x='{label_w}' y='{y}' width='{width:.1}' height='{}' fill='{}'/><text x='{}' y='{}'>{:.0}</text>\n",
                    bar_h - 2.0,
                    colors[ei % colors.len()],
                    label_w + width + 4.0,
                    y + bar_h - 4.0,
                    r.ops_per_sec()
                ));
            }
        }
    }
    let ly = 50.0 + group_h * s.benchmarks.len() as f64;
    for (ei, e) in s.engines.iter().enumerate() {
        svg.push_str(&format!(
            "<rect x='{label_w}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}'>{e}</text>\n",
            ly + ei as f64 * 18.0,
            colors[ei % colors.len()],
            label_w + 18.0,
            ly + ei as f64 * 18.0 + 10.0
        ));
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).unwrap_or_else(|e| die(&format!("writing {path}: {e}")));
}
