//! Bulk loading 1M sorted keys (16-byte keys, 100-byte values, as
//! db_bench's fillseq): `put` in a loop (then `flush`, so both end with
//! the data in tables) against `SstWriter` + `DB::ingest`.
//!
//! `cargo bench --bench ingest`. The goal (issue 16): ingest at least 3x
//! faster than the put loop.

use aidb::{IngestOptions, Options, SstWriter, DB};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const N: u64 = 1_000_000;
const VALUE: [u8; 100] = [7; 100];

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn bulk_load(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk_load_1m");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    g.bench_function("put_loop", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let db = DB::open(dir.path()).unwrap();
                for i in 0..N {
                    db.put(key(i), VALUE).unwrap();
                }
                db.flush().unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("sst_writer_ingest", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let opts = Options::new(dir.path().join("db"));
                let file = dir.path().join("load.sst");
                let mut w = SstWriter::create(&file, &opts).unwrap();
                for i in 0..N {
                    w.put(key(i), VALUE).unwrap();
                }
                w.finish().unwrap();
                let db = DB::open_with(opts).unwrap();
                db.ingest(&[file], IngestOptions::default()).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bulk_load);
criterion_main!(benches);
