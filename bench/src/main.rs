//! db_bench: the same workloads against AiDb, RocksDB (the current
//! `rocksdb` crate, RocksDB compiled from source) and fjall 3, with the
//! same settings, one engine after the other in one process. Prints the
//! engines' versions and settings, one table per run and the AiDb/RocksDB
//! and AiDb/fjall ratios, and writes OUT.csv and OUT.svg.
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml -- --num 1000000
//! ```
//!
//! Flags (defaults in brackets): --num [1000000] --key-size [16]
//! --value-size [100] --threads [1] (readers in readrandom, readmissing,
//! seekrandom, readwhilewriting; readrandom2 always uses 2)
//! --engines [aidb,rocksdb,fjall] --compression [lz4|snappy|none]
//! --cache-size [67108864] --write-buffer-size [67108864] --bloom-bits [10]
//! --db [a temp dir] --benchmarks [all] --txn [optimistic|pessimistic]
//! --out [db_bench].

mod engines;
mod features;
mod hist;
mod report;
mod txn;
mod workloads;

use std::path::PathBuf;

pub struct Settings {
    pub num: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub threads: usize,
    pub engines: Vec<String>,
    pub compression: String,
    pub cache_size: usize,
    pub write_buffer_size: usize,
    pub bloom_bits: u32,
    pub db: Option<PathBuf>,
    pub benchmarks: Vec<String>,
    pub out: String,
    /// Pessimistic transactions (RocksDB's TransactionDB) rather than
    /// optimistic ones (OptimisticTransactionDB).
    pub pessimistic: bool,
}

pub fn die(msg: &str) -> ! {
    eprintln!("db_bench: {msg}");
    std::process::exit(2)
}

fn parse_args() -> Settings {
    let mut s = Settings {
        num: 1_000_000,
        key_size: 16,
        value_size: 100,
        threads: 1,
        engines: engines::ENGINES.iter().map(|s| s.to_string()).collect(),
        compression: "lz4".into(),
        cache_size: 64 << 20,
        write_buffer_size: 64 << 20,
        bloom_bits: 10,
        db: None,
        benchmarks: workloads::ALL.iter().map(|s| s.to_string()).collect(),
        out: "db_bench".into(),
        pessimistic: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if matches!(args[i].as_str(), "-h" | "--help") {
            println!("{}", HELP.trim());
            std::process::exit(0);
        }
        let (flag, value) = match args[i].split_once('=') {
            Some((f, v)) => (f.to_string(), v.to_string()),
            None => {
                i += 1;
                let value = args
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| die(&format!("{} needs a value", args[i - 1])));
                (args[i - 1].clone(), value)
            }
        };
        i += 1;
        let list = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
        let num = |v: &str| {
            v.replace('_', "")
                .parse::<u64>()
                .unwrap_or_else(|_| die(&format!("bad number for {flag}: {v}")))
        };
        match flag.as_str() {
            "--num" => s.num = num(&value).max(1),
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
            "--txn" => {
                s.pessimistic = match value.as_str() {
                    "optimistic" => false,
                    "pessimistic" => true,
                    _ => die("--txn must be optimistic or pessimistic"),
                }
            }
            other => die(&format!("unknown flag {other} (see --help)")),
        }
    }
    if s.key_size < 8 {
        die("--key-size must be at least 8");
    }
    if !matches!(s.compression.as_str(), "lz4" | "snappy" | "none") {
        die("--compression must be lz4, snappy or none");
    }
    for e in &s.engines {
        if !engines::ENGINES.contains(&e.as_str()) {
            die(&format!("unknown engine {e}"));
        }
    }
    for w in &s.benchmarks {
        if !workloads::ALL.contains(&w.as_str()) {
            die(&format!("unknown benchmark {w}"));
        }
    }
    s
}

const HELP: &str = "
db_bench: AiDb, RocksDB and fjall on the same workloads with the same settings.

  --num N                keys (default 1000000; fillsync writes N/100)
  --key-size N           bytes per key (16)
  --value-size N         bytes per value (100), compressible to about half
  --threads N            reader threads for readrandom, readmissing, seekrandom,
                         readwhilewriting (1); readrandom2 always uses 2
  --engines LIST         aidb,rocksdb,fjall
  --compression C        lz4 | snappy | none (lz4)
  --cache-size BYTES     block cache (67108864)
  --write-buffer-size B  memtable (67108864)
  --bloom-bits N         bloom filter bits per key (10; 0 = none)
  --db DIR               where the databases go (a temp dir)
  --benchmarks LIST      fillseq,fillrandom,overwrite,readrandom,readrandom2,
                         readmissing,readseq,readreverse,seekrandom,readseq-raw,
                         readreverse-raw,seekrandom-raw,readwhilewriting,
                         readrandom-rangedel,fillsync,fillbatch,txn_put,
                         txn_transfer,mergerandom,deleterange,fillingest
                         (all; engines without merge, range delete or SST
                         ingestion skip those workloads)
  --txn MODE             optimistic | pessimistic: the transactions of
                         txn_put and txn_transfer (RocksDB's
                         OptimisticTransactionDB or TransactionDB) (optimistic)
  --out PREFIX           writes PREFIX.csv and PREFIX.svg (db_bench)
";

fn main() {
    let s = parse_args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = s.db.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let versions = engines::versions();
    println!("db_bench");
    for v in &versions {
        println!("  {v}");
    }
    println!(
        "  workload settings: num={} key_size={} value_size={} threads={} compression={} cache_size={} write_buffer_size={} bloom_bits={} block_size=4096 txn={}",
        s.num, s.key_size, s.value_size, s.threads, s.compression, s.cache_size, s.write_buffer_size, s.bloom_bits,
        if s.pessimistic { "pessimistic" } else { "optimistic" }
    );
    let mut rows = Vec::new();
    for engine in &s.engines {
        println!("== {engine}");
        rows.extend(workloads::run_engine(engine, &s, &base));
    }
    report::print_table(&rows, &s);
    report::write_csv(&rows, &format!("{}.csv", s.out));
    report::write_svg(&rows, &s, &versions, &format!("{}.svg", s.out));
    println!("wrote {0}.csv and {0}.svg", s.out);
}
