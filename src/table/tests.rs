use super::*;
use crate::block_cache::BlockCache;
use crate::fs::{FaultInjectionFs, FileSystem};
use crate::internal_iter::InternalIterator;
use crate::options::Compression;
use crate::types::{encode_internal_key, SeqNo, ValueKind};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Entry = (Vec<u8>, SeqNo, ValueKind, Vec<u8>);

fn opts(compression: Compression, bloom: u32, block_size: usize) -> TableBuildOptions {
    TableBuildOptions {
        block_size,
        restart_interval: 4,
        bloom_bits_per_key: bloom,
        compression,
    }
}

fn ikey(e: &Entry) -> Vec<u8> {
    let mut k = Vec::new();
    encode_internal_key(&mut k, &e.0, e.1, e.2);
    k
}

fn build(
    fs: &FaultInjectionFs,
    entries: &[Entry],
    o: TableBuildOptions,
) -> (PathBuf, TableProperties) {
    fs.create_dir_all(Path::new("/t")).unwrap();
    let path = PathBuf::from("/t/000001.sst");
    let mut b = TableBuilder::new(fs.create(&path).unwrap(), path.clone(), o);
    for e in entries {
        b.add(&ikey(e), &e.3).unwrap();
    }
    (path, b.finish().unwrap())
}

fn open(fs: &FaultInjectionFs, path: &Path, cache: bool) -> crate::Result<Arc<Table>> {
    let file = fs.open(path).map_err(crate::Error::from)?;
    let cache = cache.then(|| Arc::new(BlockCache::new(1 << 20)));
    Table::open(file, path.to_path_buf(), 1, cache, Arc::default())
}

/// Sorted entries: user keys ascending, several versions newest first.
fn sorted(mut raw: Vec<Entry>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    raw.retain(|e| seen.insert((e.0.clone(), e.1)));
    raw.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    raw
}

fn check_table(t: &Arc<Table>, entries: &[Entry]) {
    // Forward and backward iteration return exactly the entries.
    let mut it = t.iter();
    it.seek_to_first();
    for e in entries {
        assert!(it.valid(), "ended early");
        assert_eq!(it.key(), ikey(e).as_slice());
        assert_eq!(it.value(), e.3.as_slice());
        it.next();
    }
    assert!(!it.valid());
    it.status().unwrap();
    it.seek_to_last();
    for e in entries.iter().rev() {
        assert_eq!(it.key(), ikey(e).as_slice());
        it.prev();
    }
    assert!(!it.valid());
    // Point lookups: the newest version at or below each entry's seq.
    let mut by_key: BTreeMap<&[u8], Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        by_key.entry(&e.0).or_default().push(e);
    }
    for (k, versions) in &by_key {
        for e in versions {
            let got = t.get(k, e.1).unwrap().expect("present");
            assert_eq!((got.0, got.1, got.2.as_ref()), (e.1, e.2, e.3.as_slice()));
            it.seek(&ikey(e));
            assert_eq!(it.key(), ikey(e).as_slice());
            it.seek_for_prev(&ikey(e));
            assert_eq!(it.key(), ikey(e).as_slice());
        }
        let oldest = versions.last().unwrap().1;
        if oldest > 0 {
            assert_eq!(t.get(k, oldest - 1).unwrap(), None);
        }
        let mut absent = k.to_vec();
        absent.push(0);
        if !by_key.contains_key(absent.as_slice()) {
            assert_eq!(t.get(&absent, SeqNo::MAX >> 8).unwrap(), None);
        }
    }
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (
        prop::collection::vec(any::<u8>(), 0..12),
        1u64..50,
        prop::bool::weighted(0.8),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(k, s, put, v)| {
            if put {
                (k, s, ValueKind::Put, v)
            } else {
                (k, s, ValueKind::Delete, Vec::new())
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(raw in prop::collection::vec(entry_strategy(), 1..300),
                  comp in prop::sample::select(vec![Compression::None, Compression::Lz4, Compression::Snappy]),
                  bloom in prop::sample::select(vec![0u32, 10]),
                  block_size in prop::sample::select(vec![256usize, 4096])) {
        let entries = sorted(raw);
        let fs = FaultInjectionFs::new();
        let (path, props) = build(&fs, &entries, opts(comp, bloom, block_size));
        prop_assert_eq!(props.entries, entries.len() as u64);
        let t = open(&fs, &path, true).unwrap();
        check_table(&t, &entries);
        // The reader cannot know the whole-file CRC (only the writer can).
        prop_assert_eq!(t.properties(), &TableProperties { file_crc: 0, ..props.clone() });
        prop_assert_eq!(crc32fast::hash(&fs.read_all(&path).unwrap()), props.file_crc);
    }
}

#[test]
fn large_keys_empty_values_and_single_entry() {
    for comp in [Compression::None, Compression::Lz4, Compression::Snappy] {
        let fs = FaultInjectionFs::new();
        let big = vec![0xabu8; crate::options::MAX_KEY_SIZE];
        let entries = sorted(vec![
            (big.clone(), 3, ValueKind::Put, Vec::new()),
            (b"".to_vec(), 1, ValueKind::Put, b"empty key".to_vec()),
            (vec![0xff; 100], 2, ValueKind::Delete, Vec::new()),
        ]);
        let (path, _) = build(&fs, &entries, opts(comp, 10, 4096));
        check_table(&open(&fs, &path, false).unwrap(), &entries);

        let one = vec![(b"k".to_vec(), 9, ValueKind::Put, b"v".to_vec())];
        let fs = FaultInjectionFs::new();
        let (path, _) = build(&fs, &one, opts(comp, 10, 4096));
        check_table(&open(&fs, &path, true).unwrap(), &one);
    }
}

#[test]
fn hundreds_of_thousands_of_entries() {
    let entries: Vec<Entry> = (0..200_000u32)
        .map(|i| {
            let k = format!("key{i:08}").into_bytes();
            (
                k,
                u64::from(i) + 1,
                ValueKind::Put,
                format!("value{}", i % 977).into_bytes(),
            )
        })
        .collect();
    for comp in [Compression::Lz4, Compression::Snappy, Compression::None] {
        let fs = FaultInjectionFs::new();
        let (path, props) = build(&fs, &entries, opts(comp, 10, 4096));
        assert!(props.data_blocks > 100);
        let t = open(&fs, &path, true).unwrap();
        let mut it = t.iter();
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        assert_eq!(n, entries.len());
        for e in entries.iter().step_by(997) {
            let got = t.get(&e.0, SeqNo::MAX >> 8).unwrap().unwrap();
            assert_eq!(got.2.as_slice(), e.3.as_slice());
        }
    }
}

#[test]
fn empty_table_round_trips() {
    let fs = FaultInjectionFs::new();
    let (path, props) = build(&fs, &[], opts(Compression::Lz4, 10, 4096));
    assert_eq!(props.entries, 0);
    let t = open(&fs, &path, false).unwrap();
    let mut it = t.iter();
    it.seek_to_first();
    assert!(!it.valid());
    assert_eq!(t.get(b"x", 5).unwrap(), None);
}

#[test]
fn every_flipped_byte_is_detected_or_harmless() {
    let entries: Vec<Entry> = (0..60u32)
        .map(|i| {
            (
                format!("k{i:03}").into_bytes(),
                5,
                ValueKind::Put,
                format!("v{i}").repeat(3).into_bytes(),
            )
        })
        .collect();
    for comp in [Compression::None, Compression::Lz4] {
        let fs = FaultInjectionFs::new();
        let (path, _) = build(&fs, &entries, opts(comp, 10, 256));
        let len = fs.file_size(&path).unwrap() as usize;
        for offset in 0..len {
            for xor in [0x01u8, 0x80] {
                fs.corrupt_byte(&path, offset, xor).unwrap();
                check_damaged(&fs, &path, &entries, offset);
                fs.corrupt_byte(&path, offset, xor).unwrap();
            }
        }
    }
}

/// Reads everything from a damaged table: each answer is right or an
/// `Error::Corruption`, never a wrong value, never a panic.
fn check_damaged(fs: &FaultInjectionFs, path: &Path, entries: &[Entry], offset: usize) {
    let t = match open(fs, path, false) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.is_corruption(), "offset {offset}: {e}");
            return;
        }
    };
    for e in entries {
        match t.get(&e.0, 100) {
            Ok(Some((_, _, v))) => assert_eq!(v.as_slice(), e.3.as_slice(), "offset {offset}"),
            Ok(None) => panic!("offset {offset}: key {:?} vanished", e.0),
            Err(err) => assert!(err.is_corruption(), "offset {offset}: {err}"),
        }
    }
    let mut it = t.iter();
    it.seek_to_first();
    let mut i = 0;
    while it.valid() {
        assert_eq!(it.key(), ikey(&entries[i]).as_slice(), "offset {offset}");
        assert_eq!(it.value(), entries[i].3.as_slice(), "offset {offset}");
        i += 1;
        it.next();
    }
    match it.status() {
        Ok(()) => assert_eq!(i, entries.len(), "offset {offset}: iteration ended early"),
        Err(err) => assert!(err.is_corruption(), "offset {offset}: {err}"),
    }
}

/// Blocks beyond the old 64 MiB reader limit: an index block of about
/// 75 MiB (one 60 KiB separator per data block) and a data block holding a
/// 100 MiB value. Tables like these come from large values and large
/// memtables or compaction outputs; the reader used to reject them as
/// "block handle outside the file".
#[test]
fn blocks_larger_than_64_mib_round_trip() {
    let fs = FaultInjectionFs::new();
    let mut entries: Vec<Entry> = (0..1280u32)
        .map(|i| {
            let mut key = vec![b'k'; 60 << 10];
            key[..4].copy_from_slice(&i.to_be_bytes());
            (key, 1, ValueKind::Put, i.to_le_bytes().to_vec())
        })
        .collect();
    let mut big = vec![0u8; 100 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    entries.push((vec![0xff; 8], 2, ValueKind::Put, big));
    let (path, props) = build(&fs, &entries, opts(Compression::Lz4, 10, 256));
    assert!(props.data_blocks > 1000);
    let t = open(&fs, &path, true).unwrap();
    for e in [&entries[0], &entries[700], &entries[1280]] {
        let got = t.get(&e.0, 10).unwrap().expect("entry present");
        assert!(got.2 == e.3, "value of a {} byte key differs", e.0.len());
    }
    assert!(t.verify().is_empty());
}

/// One table per compression, of `n` entries with values of varied
/// length, all sharing `cache`. (The in-memory file systems are dropped:
/// an open file keeps its contents.)
fn tables_sharing(
    cache: &Arc<BlockCache>,
    compressions: &[Compression],
    n: u32,
) -> Vec<(Arc<Table>, Vec<Entry>)> {
    let mut tables = Vec::new();
    for (t, &comp) in compressions.iter().enumerate() {
        let entries: Vec<Entry> = (0..n)
            .map(|i| {
                let k = format!("t{t}key{i:06}").into_bytes();
                let v = format!("{t}:{i}:")
                    .repeat(1 + (i % 13) as usize)
                    .into_bytes();
                (k, u64::from(i) + 1, ValueKind::Put, v)
            })
            .collect();
        let fs = FaultInjectionFs::new();
        let (path, _) = build(&fs, &entries, opts(comp, 10, 4096));
        let file = fs.open(&path).unwrap();
        let table = Table::open(
            file,
            path,
            10 + t as u64,
            Some(cache.clone()),
            Arc::default(),
        );
        tables.push((table.unwrap(), entries));
    }
    tables
}

/// Tables of each compression share a block cache of two blocks per shard
/// (the cache has 16 shards and skips a block larger than a shard), so
/// nearly every read evicts a block and decodes into its memory: every
/// value read is still right, and so is a block an open cursor holds
/// while the cache evicts it.
#[test]
fn reads_into_the_memory_of_evicted_blocks_stay_correct() {
    let cache = Arc::new(BlockCache::new(16 * 2 * 4200));
    let tables = tables_sharing(
        &cache,
        &[Compression::Lz4, Compression::Snappy, Compression::None],
        5_000,
    );
    let mut held = tables[0].0.iter();
    held.seek(&ikey(&tables[0].1[2500]));
    let mut x = 7u64;
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (t, entries) = &tables[(x >> 60) as usize % 3];
        let e = &entries[(x >> 20) as usize % entries.len()];
        let got = t.get(&e.0, SeqNo::MAX >> 8).unwrap().unwrap();
        assert_eq!(got.2, e.3, "{}", String::from_utf8_lossy(&e.0));
    }
    assert_eq!(held.key(), ikey(&tables[0].1[2500]).as_slice());
    assert_eq!(held.value(), tables[0].1[2500].3.as_slice());
    held.next();
    assert_eq!(held.value(), tables[0].1[2501].3.as_slice());
}

/// Four threads read two tables through one cache of two blocks per shard
/// (almost every read evicts, and the evicting thread decodes its next
/// block into the evicted block's memory) while holding cursors on blocks
/// the others evict: every value read, and every held cursor's entry,
/// stays right.
#[test]
fn concurrent_reads_through_a_tiny_cache_stay_correct() {
    let cache = Arc::new(BlockCache::new(16 * 2 * 4200));
    let tables = tables_sharing(&cache, &[Compression::Lz4, Compression::None], 4_000);
    let tables = Arc::new(tables);
    let threads: Vec<_> = (0..4u64)
        .map(|id| {
            let tables = tables.clone();
            std::thread::spawn(move || {
                let mut x = id + 1;
                for round in 0..50 {
                    let (held_t, held_e) = &tables[round % 2];
                    let at = (x as usize >> 7) % held_e.len();
                    let mut held = held_t.iter();
                    held.seek(&ikey(&held_e[at]));
                    for _ in 0..100 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let (t, entries) = &tables[(x >> 62) as usize % 2];
                        let e = &entries[(x >> 20) as usize % entries.len()];
                        let got = t.get(&e.0, SeqNo::MAX >> 8).unwrap().unwrap();
                        assert_eq!(got.2, e.3);
                    }
                    assert_eq!(held.key(), ikey(&held_e[at]).as_slice());
                    assert_eq!(held.value(), held_e[at].3.as_slice());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
