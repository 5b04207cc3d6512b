//! AiDb through `DB::put`/`write_opt`, `DB::get`, `DB::iter`/`DB::range`;
//! the `*-raw` workloads use `StorageBackend::raw_iterator`, its cursor;
//! the transaction workloads `DB::transaction_with`.

use super::{Counters, Engine, Opened};
use crate::txn::{balance, TxnEngine};
use crate::Settings;
use aidb::{RawIterator, StorageBackend};
use std::hint::black_box;
use std::path::Path;

/// The database, and the options its SST writer uses.
struct AiDb(aidb::DB, aidb::Options);

/// `u64` addition, for `mergerandom`.
struct AddU64;

impl aidb::MergeOperator for AddU64 {
    fn name(&self) -> &str {
        "uint64add"
    }
    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        Some(crate::features::add_u64(existing, ops.iter().copied()))
    }
    fn partial_merge(&self, _key: &[u8], ops: &[&[u8]]) -> Option<Vec<u8>> {
        Some(crate::features::add_u64(None, ops.iter().copied()))
    }
}

fn options(dir: &Path, s: &Settings) -> aidb::Options {
    let compression = match s.compression.as_str() {
        "none" => aidb::Compression::None,
        "snappy" => aidb::Compression::Snappy,
        _ => aidb::Compression::Lz4,
    };
    aidb::Options {
        write_buffer_size: s.write_buffer_size,
        cache_size: s.cache_size,
        bloom_bits_per_key: s.bloom_bits,
        block_size: 4096,
        compression,
        merge_operator: Some(std::sync::Arc::new(AddU64)),
        // RocksDB's default since 8.4, which its side of the comparison
        // runs with; AiDb's default stays LevelDB's static sizing.
        level_compaction_dynamic_level_bytes: true,
        ..aidb::Options::new(dir)
    }
}

pub fn open(dir: &Path, s: &Settings) -> Opened {
    let opts = options(dir, s);
    let settings = format!(
        "write_buffer_size={} cache_size={} block_size={} bloom_bits_per_key={} compression={:?} \
         max_background_jobs={} level0_compaction/slowdown/stop={}/{}/{} \
         level_compaction_dynamic_level_bytes={} wal=on",
        opts.write_buffer_size,
        opts.cache_size,
        opts.block_size,
        opts.bloom_bits_per_key,
        opts.compression,
        opts.max_background_jobs,
        opts.level0_file_num_compaction_trigger,
        opts.level0_slowdown_writes_trigger,
        opts.level0_stop_writes_trigger,
        opts.level_compaction_dynamic_level_bytes,
    );
    let db = aidb::DB::open_with(opts.clone()).expect("open aidb");
    Opened {
        engine: Box::new(AiDb(db, opts)),
        settings,
    }
}

/// Reads every entry through the cursor, in place; returns how many.
fn cursor_scan(it: &mut dyn RawIterator, reverse: bool) -> u64 {
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
    it.status().expect("aidb raw scan");
    n
}

impl Engine for AiDb {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        if sync {
            let mut b = aidb::WriteBatch::new();
            b.put(key, value);
            self.0
                .write_opt(b, &aidb::WriteOptions { sync: true })
                .expect("aidb put");
        } else {
            self.0.put(key, value).expect("aidb put");
        }
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
        let mut n = 0;
        let mut read = |kv: aidb::Result<(Vec<u8>, Vec<u8>)>| {
            black_box(kv.expect("aidb scan"));
            n += 1;
        };
        if reverse {
            self.0.iter().rev().for_each(&mut read);
        } else {
            self.0.iter().for_each(&mut read);
        }
        n
    }
    fn seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut read = 0;
        for kv in self.0.range(key..).take(n) {
            black_box(kv.expect("aidb seek"));
            read += 1;
        }
        read
    }
    fn has_raw(&self) -> bool {
        true
    }
    fn raw_scan(&self, reverse: bool) -> u64 {
        cursor_scan(&mut *self.0.raw_iterator(), reverse)
    }
    fn raw_seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut it = self.0.raw_iterator();
        it.seek(key);
        let mut read = 0;
        while it.valid() && read < n {
            black_box((it.key(), it.value()));
            read += 1;
            it.next();
        }
        it.status().expect("aidb raw seek");
        read
    }
    fn supports(&self, feature: &str) -> bool {
        matches!(feature, "merge" | "delete_range" | "ingest")
    }
    fn write_sst(&self, path: &Path, items: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) {
        let mut w = aidb::SstWriter::create(path, &self.1).expect("aidb SstWriter");
        for (k, v) in items {
            w.put(k, v).expect("aidb SstWriter::put");
        }
        w.finish().expect("aidb SstWriter::finish");
    }
    fn ingest(&self, paths: &[std::path::PathBuf]) {
        let opts = aidb::IngestOptions {
            move_files: true,
            ..Default::default()
        };
        self.0.ingest(paths, opts).expect("aidb ingest");
    }
    fn merge(&self, key: &[u8], operand: &[u8]) {
        self.0.merge(key, operand).expect("aidb merge");
    }
    fn delete_range(&self, start: &[u8], end: &[u8]) {
        self.0
            .delete_range(start.to_vec()..end.to_vec())
            .expect("aidb delete_range");
    }
    fn compact_all(&self) {
        self.0.compact_range(..).expect("aidb compact_range");
    }
    fn settle(&self) {
        self.0.flush().expect("aidb flush");
        self.0.wait_for_idle().expect("aidb wait_for_idle");
    }
    fn counters(&self) -> Option<Counters> {
        let st = self.0.stats();
        Some(Counters {
            table_bytes: st.bytes_flushed + st.compaction_bytes_written,
            stall: st.stall_time,
        })
    }
    fn api(&self, workload: &str) -> &'static str {
        match workload {
            "fillseq" | "fillrandom" | "overwrite" => "db.put",
            "fillsync" => "db.write_opt(batch of 1, sync)",
            "fillbatch" => "db.write(WriteBatch)",
            "readseq" => "db.iter()",
            "readreverse" => "db.iter().rev()",
            "seekrandom" => "db.range(k..).take(10)",
            "readseq-raw" | "readreverse-raw" | "seekrandom-raw" => "raw_iterator() cursor",
            "readwhilewriting" => "db.get (writer: db.put)",
            "mergerandom" => "db.merge",
            "deleterange" => "db.delete_range(a..b)",
            "fillingest" => "SstWriter::put, DB::ingest(move_files)",
            _ => "db.get",
        }
    }
}

/// AiDb's transactions, optimistic or pessimistic (default options).
struct AiDbTxn {
    db: aidb::DB,
    opts: aidb::TransactionOptions,
}

pub fn open_txn(dir: &Path, s: &Settings) -> Box<dyn TxnEngine> {
    let db = aidb::DB::open_with(options(dir, s)).expect("open aidb");
    let opts = aidb::TransactionOptions {
        pessimistic: s.pessimistic,
        ..Default::default()
    };
    Box::new(AiDbTxn { db, opts })
}

impl TxnEngine for AiDbTxn {
    fn txn_put(&self, key: &[u8], value: &[u8]) {
        let mut t = self.db.transaction_with(self.opts.clone());
        t.put(key, value).expect("aidb txn put");
        t.commit().expect("aidb txn commit");
    }
    fn txn_transfer(&self, from: &[u8], to: &[u8]) -> u64 {
        let mut retries = 0;
        loop {
            let mut t = self.db.transaction_with(self.opts.clone());
            let result = (|| {
                let a = balance(&t.get_for_update(from)?.expect("account"));
                let b = balance(&t.get_for_update(to)?.expect("account"));
                t.put(from, (a - 1).to_le_bytes())?;
                t.put(to, (b + 1).to_le_bytes())
            })()
            .and_then(|_| t.commit());
            match result {
                Ok(()) => return retries,
                Err(e) if e.is_retryable() => retries += 1,
                Err(e) => panic!("aidb transfer: {e}"),
            }
        }
    }
    fn load(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = aidb::WriteBatch::new();
        for (k, v) in items {
            b.put(k, v);
        }
        self.db.write(b).expect("aidb load");
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.db.get(key).expect("aidb get")
    }
    fn api(&self, workload: &str) -> &'static str {
        match (workload, self.opts.pessimistic) {
            ("txn_put", false) => "transaction(): put, commit",
            ("txn_put", true) => "transaction_with(pessimistic): put, commit",
            (_, false) => "transaction(): 2 get_for_update, 2 put, commit",
            (_, true) => "transaction_with(pessimistic): 2 get_for_update, 2 put, commit",
        }
    }
}
