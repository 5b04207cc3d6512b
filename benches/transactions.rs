//! Transactions against plain writes on the same database: a one-key
//! optimistic transaction (begin, put, commit), the same pessimistic, and
//! a transfer (two `get_for_update`s, two puts). Issue 14's goal: the
//! one-key optimistic commit costs at most 1.5x a plain `put` (compare
//! `txn/put` with `txn/txn_put_optimistic`).
//!
//! `cargo bench --bench transactions` (add `-- --quick` for a short run).

use aidb::{TransactionOptions, DB};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn key(i: u64) -> [u8; 16] {
    let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&mixed.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

const VALUE: [u8; 100] = [7; 100];

fn transactions(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let mut g = c.benchmark_group("txn");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("put", |b| {
        b.iter(|| {
            i += 1;
            db.put(key(i), VALUE).unwrap()
        })
    });
    g.bench_function("txn_put_optimistic", |b| {
        b.iter(|| {
            i += 1;
            let mut txn = db.transaction();
            txn.put(key(i), VALUE).unwrap();
            txn.commit().unwrap()
        })
    });
    let pessimistic = TransactionOptions {
        pessimistic: true,
        ..Default::default()
    };
    g.bench_function("txn_put_pessimistic", |b| {
        b.iter(|| {
            i += 1;
            let mut txn = db.transaction_with(pessimistic.clone());
            txn.put(key(i), VALUE).unwrap();
            txn.commit().unwrap()
        })
    });
    // 1,000 accounts, one thread: every commit succeeds.
    for a in 0..1000u64 {
        db.put(a.to_be_bytes(), 100u64.to_le_bytes()).unwrap();
    }
    let balance = |v: Option<Vec<u8>>| u64::from_le_bytes(v.unwrap().try_into().unwrap());
    g.bench_function("txn_transfer", |b| {
        b.iter(|| {
            i += 1;
            let (from, to) = ((i * 7919) % 1000, (i * 104_729 + 1) % 1000);
            let mut txn = db.transaction();
            let f = balance(txn.get_for_update(from.to_be_bytes()).unwrap());
            let t = balance(txn.get_for_update(to.to_be_bytes()).unwrap());
            if from != to && f > 0 {
                txn.put(from.to_be_bytes(), (f - 1).to_le_bytes()).unwrap();
                txn.put(to.to_be_bytes(), (t + 1).to_le_bytes()).unwrap();
            }
            txn.commit().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, transactions);
criterion_main!(benches);
