//! The three engines behind one trait, each driven through its own
//! idiomatic API. `api` names the calls each workload makes, for the report.

mod aidb_engine;
mod fjall_engine;
mod rocksdb_engine;

use crate::Settings;
use std::path::Path;
use std::time::Duration;

/// Engine-reported counters, where the engine exposes them.
#[derive(Clone, Copy, Default)]
pub struct Counters {
    /// Bytes of table files written by flushes and compactions.
    pub table_bytes: u64,
    /// Time writers spent stalled or slowed down.
    pub stall: Duration,
}

/// The operations the workloads need.
pub trait Engine: Send + Sync {
    /// One write; `sync` makes it durable before returning.
    fn put(&self, key: &[u8], value: &[u8], sync: bool);
    /// One atomic batch of puts, unsynced.
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]);
    /// Point lookup; whether the key was found.
    fn get(&self, key: &[u8]) -> bool;
    /// Reads every entry in one direction with the normal iterator.
    fn scan(&self, reverse: bool) -> u64;
    /// Positions the normal iterator at `key` and reads up to `n` entries.
    fn seek_read(&self, key: &[u8], n: usize) -> usize;
    /// Whether the engine has a zero-copy cursor (`*-raw` workloads).
    fn has_raw(&self) -> bool {
        false
    }
    /// `scan` through the raw cursor.
    fn raw_scan(&self, _reverse: bool) -> u64 {
        unreachable!("no raw cursor")
    }
    /// `seek_read` through the raw cursor.
    fn raw_seek_read(&self, _key: &[u8], _n: usize) -> usize {
        unreachable!("no raw cursor")
    }
    /// Whether the engine offers `feature` ("merge", "delete_range").
    fn supports(&self, _feature: &str) -> bool {
        false
    }
    /// Merges a little-endian `u64` operand (the engine adds them).
    fn merge(&self, _key: &[u8], _operand: &[u8]) {
        unreachable!("no merge operator")
    }
    /// Deletes every key in `[start, end)` with one range deletion.
    fn delete_range(&self, _start: &[u8], _end: &[u8]) {
        unreachable!("no range delete")
    }
    /// Writes `items` (ascending keys) to a new table file at `path` with
    /// the engine's SST writer ("ingest").
    fn write_sst(&self, _path: &Path, _items: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) {
        unreachable!("no SST writer")
    }
    /// Ingests the table files at `paths`, moving them in ("ingest").
    fn ingest(&self, _paths: &[std::path::PathBuf]) {
        unreachable!("no ingest")
    }
    /// Compacts the whole key space and waits for it.
    fn compact_all(&self) {
        unreachable!("no manual compaction")
    }
    /// Flushes the memtable and waits until background work is done.
    fn settle(&self);
    /// The engine's own counters, if it keeps them.
    fn counters(&self) -> Option<Counters>;
    /// The API calls `workload` makes.
    fn api(&self, workload: &str) -> &'static str;
}

/// An opened engine, with a description of its settings.
pub struct Opened {
    pub engine: Box<dyn Engine>,
    pub settings: String,
}

pub const ENGINES: &[&str] = &["aidb", "rocksdb", "fjall"];

pub fn open(engine: &str, dir: &Path, s: &Settings) -> Opened {
    std::fs::create_dir_all(dir).expect("create db dir");
    match engine {
        "aidb" => aidb_engine::open(dir, s),
        "rocksdb" => rocksdb_engine::open(dir, s),
        "fjall" => fjall_engine::open(dir, s),
        other => crate::die(&format!("unknown engine {other}")),
    }
}

/// `engine`'s transactions on a fresh database in `dir` (`None`: the
/// engine is not compared on transactions).
pub fn open_txn(engine: &str, dir: &Path, s: &Settings) -> Option<Box<dyn crate::txn::TxnEngine>> {
    match engine {
        "aidb" => Some(aidb_engine::open_txn(dir, s)),
        "rocksdb" => Some(rocksdb_engine::open_txn(dir, s)),
        _ => None,
    }
}

/// One line per engine: the version it was built with or runs.
pub fn versions() -> Vec<String> {
    vec![
        format!(
            "aidb {} (path dependency, this checkout)",
            env!("BENCH_AIDB_VERSION")
        ),
        rocksdb_engine::version(),
        format!(
            "fjall {} (crate; lsm-tree {})",
            env!("BENCH_FJALL_VERSION"),
            env!("BENCH_LSM_TREE_VERSION")
        ),
    ]
}
