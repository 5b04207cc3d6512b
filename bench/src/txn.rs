//! The transaction workloads, each on a fresh database:
//!
//! - `txn_put`: one-key transactions (begin, put, commit) with the keys
//!   and values of `fillrandom`, in the same order, so the two rows
//!   compare a transaction's commit with a plain put.
//! - `txn_transfer`: moves 1 between two random accounts of `--num`/10
//!   (get_for_update both, put both, commit), retried on a conflict, lock
//!   timeout or deadlock; `--threads` threads, `--num` transfers in all.
//!   The total of the accounts is checked afterwards.
//!
//! AiDb's transactions against RocksDB's `OptimisticTransactionDB`
//! (`--txn optimistic`, the default) or `TransactionDB` (`--txn
//! pessimistic`), both with their default options except deadlock
//! detection, which is switched on for RocksDB as AiDb has it by default.
//! fjall is not compared.

use crate::engines;
use crate::workloads::{key, measure, timed, value, Row};
use crate::Settings;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub const WORKLOADS: &[&str] = &["txn_put", "txn_transfer"];

/// Each account's opening balance.
const OPENING: u64 = 1_000_000_000;

/// An engine's transactions.
pub trait TxnEngine: Send + Sync {
    /// One transaction writing one key.
    fn txn_put(&self, key: &[u8], value: &[u8]);
    /// Moves 1 from account `from` to account `to` in one transaction
    /// that reads both with get_for_update, retrying until it commits;
    /// returns the number of retries.
    fn txn_transfer(&self, from: &[u8], to: &[u8]) -> u64;
    /// Plain atomic batch of puts (to create the accounts).
    fn load(&self, items: &[(Vec<u8>, Vec<u8>)]);
    /// Plain read.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// The API calls `workload` makes.
    fn api(&self, workload: &str) -> &'static str;
}

pub fn balance(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().expect("8-byte balance"))
}

/// Runs transaction workload `w` on a fresh database of `engine` under
/// `base`; `None` when the engine is not compared.
pub fn run(engine: &str, s: &Settings, base: &Path, w: &str) -> Option<Row> {
    let dir = base.join(format!("{engine}-{w}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create db dir");
    let db = engines::open_txn(engine, &dir, s)?;
    let kv = (s.key_size + s.value_size) as u64;
    let n = s.num;
    let (m, threads, bytes) = match w {
        "txn_put" => {
            // fillrandom's keys, order and values.
            let mut order: Vec<u64> = (0..n).collect();
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
            let m = measure(1, |_, h| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(2);
                for &i in &order {
                    let (k, v) = (key(i, s.key_size), value(&mut rng, s.value_size));
                    timed(h, || db.txn_put(&k, &v));
                }
                n
            });
            (m, 1, n * kv)
        }
        "txn_transfer" => {
            let accounts = (n / 10).max(2);
            for chunk in (0..accounts).collect::<Vec<_>>().chunks(1000) {
                let items: Vec<_> = chunk
                    .iter()
                    .map(|&i| (key(i, s.key_size), OPENING.to_le_bytes().to_vec()))
                    .collect();
                db.load(&items);
            }
            let retries = AtomicU64::new(0);
            let threads = s.threads;
            let m = measure(threads, |t, h| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(50 + t as u64);
                let per = n / threads as u64;
                for _ in 0..per {
                    let from = rng.gen_range(0..accounts);
                    let to = (from + rng.gen_range(1..accounts)) % accounts;
                    let (a, b) = (key(from, s.key_size), key(to, s.key_size));
                    let r = timed(h, || db.txn_transfer(&a, &b));
                    retries.fetch_add(r, Ordering::Relaxed);
                }
                per
            });
            let total: u64 = (0..accounts)
                .map(|i| balance(&db.get(&key(i, s.key_size)).expect("account")))
                .sum();
            if total != accounts * OPENING {
                eprintln!("  {engine}: {w}: the accounts' total changed!");
            }
            println!(
                "  {engine}: {w}: {} retries for {} transfers",
                retries.load(Ordering::Relaxed),
                m.ops
            );
            // Two keys and balances written per transfer.
            let bytes = m.ops * 2 * (s.key_size as u64 + 8);
            (m, threads, bytes)
        }
        other => crate::die(&format!("unknown transaction workload {other}")),
    };
    let api = db.api(w).to_string();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Some(Row {
        workload: w.to_string(),
        engine: engine.to_string(),
        api,
        threads,
        ops: m.ops,
        secs: m.secs,
        bytes,
        hist: m.hist,
        peak_rss_mb: m.peak_rss_mb,
        write_amp: None,
        engine_write_amp: None,
        stall_ms: None,
        disk_mb: None,
    })
}
