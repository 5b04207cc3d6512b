//! Component benchmarks: memtable, log, block, table, block cache, through
//! the `internals` hooks (enabled for dev builds by the crate's
//! dev-dependency on itself). `cargo bench --bench components`.

use aidb::internals::{
    build_block, internal_key, Block, BlockCache, DataBlock, Index, LogWriter, MemTable, Merge,
    Table,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

fn key(i: u64) -> Vec<u8> {
    format!(
        "key{:013}",
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 10_000_000_000_000
    )
    .into_bytes()
}

fn memtable(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(1));
    let m = MemTable::default();
    let mut seq = 0u64;
    g.bench_function("insert", |b| {
        b.iter(|| {
            seq += 1;
            m.insert(&key(seq), seq, &[7; 100])
        })
    });
    g.bench_function("lookup_hit", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % seq.max(1);
            black_box(m.contains(&key(i + 1), u64::MAX >> 8))
        })
    });
    // A key the memtable does not hold: what most lookups of a large
    // database ask its memtable.
    g.bench_function("lookup_miss", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % seq.max(1);
            let mut k = key(i + 1);
            k.push(b'!');
            black_box(m.contains(&k, u64::MAX >> 8))
        })
    });
    // A fixed 200,000-entry memtable (the size a 64 MiB one holds of
    // 100-byte values is about 450,000), filled in random key order: the
    // cost of an insert is mostly its search, so it is measured at one size.
    g.sample_size(10);
    g.throughput(Throughput::Elements(200_000));
    g.bench_function("fill_200k_random", |b| {
        b.iter_batched(
            MemTable::default,
            |m| {
                for i in 0..200_000u64 {
                    m.insert(&key(i), i + 1, &[7; 100]);
                }
                m
            },
            BatchSize::PerIteration,
        )
    });
    let full = MemTable::default();
    for i in 0..200_000u64 {
        full.insert(&key(i), i + 1, &[7; 100]);
    }
    g.bench_function("scan_200k", |b| b.iter(|| black_box(full.scan())));
    g.finish();
}

fn wal(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogWriter::create(&dir.path().join("bench.log")).unwrap();
    let record = vec![5u8; 128];
    let mut g = c.benchmark_group("wal");
    g.throughput(Throughput::Bytes(record.len() as u64));
    g.bench_function("append_128", |b| b.iter(|| log.append(&record).unwrap()));
    g.bench_function("append_128_sync", |b| {
        b.iter(|| {
            log.append(&record).unwrap();
            log.sync().unwrap()
        })
    });
    g.finish();
}

fn block(c: &mut Criterion) {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..40u64)
        .map(|i| {
            (
                internal_key(format!("key{i:013}").as_bytes(), 1),
                vec![3u8; 100],
            )
        })
        .collect();
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("build_40", |b| {
        b.iter(|| black_box(build_block(&entries, 16)))
    });
    let encoded = build_block(&entries, 16);
    g.bench_function("decode_40", |b| {
        b.iter(|| black_box(Block::decode(&encoded)))
    });
    // What a cache miss costs before the block can be searched: the full
    // decode above (what was cached before), or locating the restart
    // array (what is cached now).
    g.bench_function("load_40", |b| {
        b.iter(|| black_box(DataBlock::load(&encoded)))
    });
    let decoded = Block::decode(&encoded).unwrap();
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("seek", |b| {
        b.iter(|| {
            i = (i + 7) % entries.len();
            black_box(decoded.seek(&entries[i].0))
        })
    });
    let raw = DataBlock::load(&encoded).unwrap();
    let mut key_buf = Vec::new();
    g.bench_function("cursor_seek", |b| {
        b.iter(|| {
            i = (i + 7) % entries.len();
            black_box(raw.seek(&entries[i].0, &mut key_buf))
        })
    });
    // Every entry of the block, in order and in reverse (a reverse step
    // cannot decode backwards: keys are prefix-compressed forwards).
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("cursor_walk_40", |b| {
        b.iter(|| black_box(raw.walk(false, &mut key_buf)))
    });
    g.bench_function("cursor_walk_back_40", |b| {
        b.iter(|| black_box(raw.walk(true, &mut key_buf)))
    });
    g.finish();
}

/// The index search every lookup starts with, over 256 K entries (the
/// data blocks of 10M db_bench keys): far more than the CPU caches hold,
/// as at 10M keys. The plain binary search of the decoded block (what
/// tables did before) next to the table's prefix-array search.
fn index(c: &mut Criterion) {
    let mut user: Vec<Vec<u8>> = (0..256 * 1024u64).map(key).collect();
    user.sort();
    user.dedup();
    let ikeys: Vec<Vec<u8>> = user.iter().map(|k| internal_key(k, 1)).collect();
    let block = Block::decode(&build_block(
        &ikeys
            .iter()
            .map(|k| (k.clone(), vec![0u8; 4]))
            .collect::<Vec<_>>(),
        1,
    ))
    .unwrap();
    let index = Index::build(&ikeys);
    let targets: Vec<Vec<u8>> = (0..4096u64)
        .map(|i| internal_key(&key(i * 7919 + 1_000_003), 9))
        .collect();
    let mut g = c.benchmark_group("index");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("block_seek_256k", |b| {
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(block.seek(&targets[i]))
        })
    });
    g.bench_function("prefix_seek_256k", |b| {
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(index.seek(&targets[i]))
        })
    });
    g.finish();
}

fn table(c: &mut Criterion) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
        (0..100_000u64).map(|i| (key(i), vec![9u8; 100])).collect();
    pairs.sort();
    let table = Table::build(&pairs, 64 << 20).unwrap();
    let mut g = c.benchmark_group("table");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("get_bloom_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % pairs.len();
            black_box(table.get(&pairs[i].0).unwrap())
        })
    });
    g.bench_function("get_bloom_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % pairs.len();
            let mut k = pairs[i].0.clone();
            k.push(b'!');
            black_box(table.get(&k).unwrap())
        })
    });
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("scan_all", |b| b.iter(|| black_box(table.scan())));
    // Writing a table (flush, compaction, SstWriter): values as db_bench's,
    // half random bytes and half repeated, so LZ4 halves them.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let written: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|(k, _)| {
            let mut v = vec![b'x'; 100];
            for b in &mut v[..50] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = b' ' + (state % 95) as u8;
            }
            (k.clone(), v)
        })
        .collect();
    g.sample_size(20);
    g.bench_function("write_100k", |b| {
        b.iter(|| black_box(Table::write(&written).unwrap()))
    });
    g.finish();
}

fn cache(c: &mut Criterion) {
    let block = DataBlock::load(&build_block(
        &[(internal_key(b"k", 1), vec![1u8; 4000])],
        16,
    ))
    .unwrap();
    let cache = BlockCache::new(64 << 20);
    for off in 0..1000 {
        cache.insert(1, off, &block);
    }
    let mut g = c.benchmark_group("block_cache");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 7) % 1000;
            black_box(cache.get(1, i))
        })
    });
    let mut off = 1_000_000;
    g.bench_function("insert_evicting", |b| {
        b.iter_batched(
            || {
                off += 1;
                off
            },
            |o| cache.insert(2, o, &block),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The merging iterator over several children. "interleaved": eight
/// children taking keys in turn, so every step changes child (the worst
/// case). "skewed": one child with 90% of the keys and seven small ones, as
/// a tree whose last level holds most data.
fn merge(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..100_000u64).map(key).collect();
    let interleaved = Merge::build(&keys, 8, |i| i).unwrap();
    let skewed = Merge::build(&keys, 8, |i| if i % 10 == 0 { 1 + i / 10 % 7 } else { 0 }).unwrap();
    let mut g = c.benchmark_group("merge");
    g.sample_size(20);
    g.throughput(Throughput::Elements(keys.len() as u64));
    for (name, m) in [("interleaved", &interleaved), ("skewed", &skewed)] {
        g.bench_function(format!("scan_{name}"), |b| {
            b.iter(|| black_box(m.scan(false)))
        });
        g.bench_function(format!("scan_reverse_{name}"), |b| {
            b.iter(|| black_box(m.scan(true)))
        });
    }
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("seek_next10_skewed", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len() as u64;
            black_box(skewed.seek_next(&key(i), 10))
        })
    });
    g.finish();
}

criterion_group!(benches, memtable, wal, block, index, table, cache, merge);
criterion_main!(benches);
