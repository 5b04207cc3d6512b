//! End-to-end benchmarks through the public API: writes (unsynced, synced,
//! batched), point lookups (memtable, table with the bloom filter saying
//! yes, absent keys the filter rules out) and scans.
//!
//! `cargo bench --bench db` (add `-- --quick` for a short run).

use aidb::{Options, WriteBatch, WriteOptions, DB};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

fn key(i: u64) -> [u8; 16] {
    let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&mixed.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

const VALUE: [u8; 100] = [7; 100];

fn writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("put", |b| {
        b.iter(|| {
            i += 1;
            db.put(key(i), VALUE).unwrap()
        })
    });
    g.bench_function("put_sync", |b| {
        b.iter(|| {
            i += 1;
            let mut batch = WriteBatch::new();
            batch.put(key(i), VALUE);
            db.write_opt(batch, &WriteOptions { sync: true }).unwrap()
        })
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("batch_100", |b| {
        b.iter_batched(
            || {
                let mut batch = WriteBatch::new();
                for _ in 0..100 {
                    i += 1;
                    batch.put(key(i), VALUE);
                }
                batch
            },
            |batch| db.write(batch).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    const N: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open_with(Options {
        write_buffer_size: 4 << 20,
        ..Options::new(dir.path())
    })
    .unwrap();
    for i in 0..N {
        db.put(key(i), VALUE).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_idle().unwrap();
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("get_table_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(db.get(key(i)).unwrap())
        })
    });
    g.bench_function("get_absent", |b| {
        b.iter(|| {
            i += 1;
            black_box(db.get(key(N + i)).unwrap())
        })
    });
    let mem_dir = tempfile::tempdir().unwrap();
    let mem_db = DB::open(mem_dir.path()).unwrap();
    for i in 0..10_000 {
        mem_db.put(key(i), VALUE).unwrap();
    }
    g.bench_function("get_memtable_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(mem_db.get(key(i)).unwrap())
        })
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("scan_1000", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            let mut it = db.iter();
            it.seek(key(i));
            black_box(it.take(1000).count())
        })
    });
    g.bench_function("scan_1000_reverse", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            let mut it = db.iter();
            it.seek_for_prev(key(i));
            black_box(it.rev().take(1000).count())
        })
    });
    g.finish();
}

criterion_group!(benches, writes, reads);
criterion_main!(benches);
