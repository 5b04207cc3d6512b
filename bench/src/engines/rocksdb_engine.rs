//! RocksDB through the `rocksdb` crate: `put`/`put_opt`, `write`, `get`,
//! `iterator(IteratorMode)`; the `*-raw` workloads use `raw_iterator`;
//! the transaction workloads `OptimisticTransactionDB` or
//! `TransactionDB`, opened with the same options.

use super::{Counters, Engine, Opened};
use crate::txn::{balance, TxnEngine};
use crate::Settings;
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{Direction, IteratorMode, WaitForCompactOptions};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

struct Rocks {
    db: rocksdb::DB,
    /// Shares the statistics object the database was opened with.
    opts: rocksdb::Options,
}

/// The bundled RocksDB version (librocksdb-sys's build metadata).
fn bundled_version() -> &'static str {
    env!("BENCH_LIBROCKSDB_SYS_VERSION")
        .split_once('+')
        .map_or("?", |(_, v)| v)
}

pub fn version() -> String {
    format!(
        "rocksdb crate {} (librocksdb-sys {}, bundled RocksDB {} compiled from source; \
         the library's own version is printed when it opens)",
        env!("BENCH_ROCKSDB_CRATE_VERSION"),
        env!("BENCH_LIBROCKSDB_SYS_VERSION"),
        bundled_version()
    )
}

/// The version RocksDB writes into its OPTIONS file: the linked library's.
fn library_version(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return "?".into();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find_map(|text| {
            text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("rocksdb_version=")
                    .map(str::to_string)
            })
        })
        .unwrap_or_else(|| "?".into())
}

/// The options every RocksDB of the run is opened with.
fn options(s: &Settings) -> rocksdb::Options {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(s.write_buffer_size);
    opts.set_max_background_jobs(2);
    opts.set_merge_operator_associative("uint64add", |_key, existing, operands| {
        Some(crate::features::add_u64(existing, operands.iter()))
    });
    opts.set_compression_type(match s.compression.as_str() {
        "none" => rocksdb::DBCompressionType::None,
        "snappy" => rocksdb::DBCompressionType::Snappy,
        _ => rocksdb::DBCompressionType::Lz4,
    });
    // Tickers only (no histograms or timers): the write amplification and
    // stall columns come from them.
    opts.enable_statistics();
    opts.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_size(4096);
    let cache = rocksdb::Cache::new_lru_cache(s.cache_size);
    table.set_block_cache(&cache);
    if s.bloom_bits > 0 {
        table.set_bloom_filter(s.bloom_bits as f64, false);
    }
    opts.set_block_based_table_factory(&table);
    opts
}

pub fn open(dir: &Path, s: &Settings) -> Opened {
    let opts = options(s);
    let db = rocksdb::DB::open(&opts, dir).expect("open rocksdb");
    let linked = library_version(dir);
    let mut settings = format!(
        "RocksDB {linked} write_buffer_size={} block_cache={} (LRU) block_size=4096 \
         bloom_bits_per_key={} (full filter) compression={} max_background_jobs=2 wal=on \
         statistics=tickers-only, otherwise RocksDB defaults",
        s.write_buffer_size, s.cache_size, s.bloom_bits, s.compression
    );
    if linked != bundled_version() {
        settings.push_str(&format!(
            " [WARNING: linked RocksDB {linked} is not the bundled {}: was ROCKSDB_LIB_DIR set when building?]",
            bundled_version()
        ));
    }
    Opened {
        engine: Box::new(Rocks { db, opts }),
        settings,
    }
}

impl Engine for Rocks {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        if sync {
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            self.db.put_opt(key, value, &wo).expect("rocksdb put");
        } else {
            self.db.put(key, value).expect("rocksdb put");
        }
    }
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = rocksdb::WriteBatch::default();
        for (k, v) in items {
            b.put(k, v);
        }
        self.db.write(b).expect("rocksdb batch");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.db.get(key).expect("rocksdb get").is_some()
    }
    fn scan(&self, reverse: bool) -> u64 {
        let mode = if reverse {
            IteratorMode::End
        } else {
            IteratorMode::Start
        };
        let mut n = 0;
        for kv in self.db.iterator(mode) {
            black_box(kv.expect("rocksdb scan"));
            n += 1;
        }
        n
    }
    fn seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut read = 0;
        for kv in self
            .db
            .iterator(IteratorMode::From(key, Direction::Forward))
            .take(n)
        {
            black_box(kv.expect("rocksdb seek"));
            read += 1;
        }
        read
    }
    fn has_raw(&self) -> bool {
        true
    }
    fn raw_scan(&self, reverse: bool) -> u64 {
        let mut it = self.db.raw_iterator();
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut n = 0;
        while it.valid() {
            black_box((it.key(), it.value()));
            n += 1;
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().expect("rocksdb raw scan");
        n
    }
    fn raw_seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut it = self.db.raw_iterator();
        it.seek(key);
        let mut read = 0;
        while it.valid() && read < n {
            black_box((it.key(), it.value()));
            read += 1;
            it.next();
        }
        it.status().expect("rocksdb raw seek");
        read
    }
    fn supports(&self, feature: &str) -> bool {
        matches!(feature, "merge" | "delete_range" | "ingest")
    }
    fn write_sst(&self, path: &Path, items: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) {
        let mut w = rocksdb::SstFileWriter::create(&self.opts);
        w.open(path).expect("rocksdb SstFileWriter::open");
        for (k, v) in items {
            w.put(k, v).expect("rocksdb SstFileWriter::put");
        }
        w.finish().expect("rocksdb SstFileWriter::finish");
    }
    fn ingest(&self, paths: &[std::path::PathBuf]) {
        let mut o = rocksdb::IngestExternalFileOptions::default();
        o.set_move_files(true);
        self.db
            .ingest_external_file_opts(&o, paths.to_vec())
            .expect("rocksdb ingest_external_file");
    }
    fn merge(&self, key: &[u8], operand: &[u8]) {
        self.db.merge(key, operand).expect("rocksdb merge");
    }
    fn delete_range(&self, start: &[u8], end: &[u8]) {
        let mut b = rocksdb::WriteBatch::default();
        b.delete_range(start, end);
        self.db.write(b).expect("rocksdb delete_range");
    }
    fn compact_all(&self) {
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
    }
    fn settle(&self) {
        let mut wait = WaitForCompactOptions::default();
        wait.set_flush(true);
        self.db
            .wait_for_compact(&wait)
            .expect("rocksdb wait_for_compact");
    }
    fn counters(&self) -> Option<Counters> {
        let t = |ticker| self.opts.get_ticker_count(ticker);
        Some(Counters {
            table_bytes: t(Ticker::FlushWriteBytes) + t(Ticker::CompactWriteBytes),
            stall: Duration::from_micros(t(Ticker::StallMicros)),
        })
    }
    fn api(&self, workload: &str) -> &'static str {
        match workload {
            "fillseq" | "fillrandom" | "overwrite" => "db.put",
            "fillsync" => "db.put_opt(sync)",
            "fillbatch" => "db.write(WriteBatch)",
            "readseq" => "db.iterator(Start)",
            "readreverse" => "db.iterator(End)",
            "seekrandom" => "db.iterator(From(k, Forward)).take(10)",
            "readseq-raw" | "readreverse-raw" | "seekrandom-raw" => "db.raw_iterator()",
            "readwhilewriting" => "db.get (writer: db.put)",
            "mergerandom" => "db.merge (associative uint64add)",
            "deleterange" => "db.write(WriteBatch::delete_range(a, b))",
            "fillingest" => "SstFileWriter::put, ingest_external_file(move_files)",
            _ => "db.get",
        }
    }
}

enum TxnDb {
    Optimistic(rocksdb::OptimisticTransactionDB),
    Pessimistic(rocksdb::TransactionDB),
}

/// RocksDB's transactions: default transaction options, except deadlock
/// detection on for pessimistic ones (as AiDb's default).
struct RocksTxn {
    db: TxnDb,
    write: rocksdb::WriteOptions,
    pessimistic: rocksdb::TransactionOptions,
}

pub fn open_txn(dir: &Path, s: &Settings) -> Box<dyn TxnEngine> {
    let opts = options(s);
    let db = if s.pessimistic {
        let txn_db = rocksdb::TransactionDBOptions::default();
        TxnDb::Pessimistic(rocksdb::TransactionDB::open(&opts, &txn_db, dir).expect("open rocksdb"))
    } else {
        TxnDb::Optimistic(rocksdb::OptimisticTransactionDB::open(&opts, dir).expect("open rocksdb"))
    };
    let mut pessimistic = rocksdb::TransactionOptions::default();
    pessimistic.set_deadlock_detect(true);
    Box::new(RocksTxn {
        db,
        write: rocksdb::WriteOptions::default(),
        pessimistic,
    })
}

/// The errors a transaction is retried on: a conflict (`Busy`; also a
/// deadlock), `TryAgain` (validation history too short), a lock timeout.
fn retryable(e: &rocksdb::Error) -> bool {
    use rocksdb::ErrorKind::{Busy, TimedOut, TryAgain};
    matches!(e.kind(), Busy | TryAgain | TimedOut)
}

/// One transfer attempt in `t`.
fn transfer<D>(
    t: rocksdb::Transaction<'_, D>,
    from: &[u8],
    to: &[u8],
) -> Result<(), rocksdb::Error> {
    let a = balance(&t.get_for_update(from, true)?.expect("account"));
    let b = balance(&t.get_for_update(to, true)?.expect("account"));
    t.put(from, (a - 1).to_le_bytes())?;
    t.put(to, (b + 1).to_le_bytes())?;
    t.commit()
}

impl TxnEngine for RocksTxn {
    fn txn_put(&self, key: &[u8], value: &[u8]) {
        let result = match &self.db {
            TxnDb::Optimistic(db) => {
                let t = db.transaction();
                t.put(key, value).and_then(|_| t.commit())
            }
            TxnDb::Pessimistic(db) => {
                let t = db.transaction_opt(&self.write, &self.pessimistic);
                t.put(key, value).and_then(|_| t.commit())
            }
        };
        result.expect("rocksdb txn put");
    }
    fn txn_transfer(&self, from: &[u8], to: &[u8]) -> u64 {
        let mut retries = 0;
        loop {
            let result = match &self.db {
                TxnDb::Optimistic(db) => transfer(db.transaction(), from, to),
                TxnDb::Pessimistic(db) => {
                    transfer(db.transaction_opt(&self.write, &self.pessimistic), from, to)
                }
            };
            match result {
                Ok(()) => return retries,
                Err(e) if retryable(&e) => retries += 1,
                Err(e) => panic!("rocksdb transfer: {e}"),
            }
        }
    }
    fn load(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = rocksdb::WriteBatchWithTransaction::<true>::default();
        for (k, v) in items {
            b.put(k, v);
        }
        match &self.db {
            TxnDb::Optimistic(db) => db.write(b),
            TxnDb::Pessimistic(db) => db.write(b),
        }
        .expect("rocksdb load");
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match &self.db {
            TxnDb::Optimistic(db) => db.get(key),
            TxnDb::Pessimistic(db) => db.get(key),
        }
        .expect("rocksdb get")
    }
    fn api(&self, workload: &str) -> &'static str {
        match (workload, &self.db) {
            ("txn_put", TxnDb::Optimistic(_)) => "OptimisticTransactionDB: put, commit",
            ("txn_put", TxnDb::Pessimistic(_)) => "TransactionDB: put, commit",
            (_, TxnDb::Optimistic(_)) => "OptimisticTransactionDB: 2 get_for_update, 2 put, commit",
            (_, TxnDb::Pessimistic(_)) => "TransactionDB: 2 get_for_update, 2 put, commit",
        }
    }
}
