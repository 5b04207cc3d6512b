//! Hooks into the engine's components for the fuzz targets under `fuzz/` and
//! the component benchmarks under `benches/` (only with the `internals`
//! cargo feature; not part of the supported API).
//!
//! The fuzz entry points each take arbitrary bytes, run one decoder over
//! them, and must return without panicking, hanging or reading out of
//! bounds; errors are expected and ignored.

use crate::fs::{FaultInjectionFs, FileSystem};
use crate::internal_iter::InternalIterator;
use std::path::Path;
use std::sync::Arc;

fn store(data: &[u8], name: &str) -> (FaultInjectionFs, std::path::PathBuf) {
    let fs = FaultInjectionFs::new();
    let dir = Path::new("/fuzz");
    let _ = fs.create_dir_all(dir);
    let path = dir.join(name);
    if let Ok(mut f) = fs.create(&path) {
        let _ = f.append(data);
    }
    (fs, path)
}

/// Opens `data` as a table file, iterates it both ways and does lookups.
pub fn table(data: &[u8]) {
    let (fs, path) = store(data, "000001.sst");
    let Ok(file) = fs.open(&path) else { return };
    let cache = Some(Arc::new(crate::block_cache::BlockCache::new(1 << 20)));
    let Ok(t) = crate::table::Table::open(file, path, 1, cache, Arc::default()) else {
        return;
    };
    let mut it = t.iter();
    let mut keys = Vec::new();
    it.seek_to_first();
    while it.valid() && keys.len() < 10_000 {
        keys.push(it.key().to_vec());
        it.next();
    }
    let _ = it.status();
    it.seek_to_last();
    let mut n = 0;
    while it.valid() && n < 10_000 {
        it.prev();
        n += 1;
    }
    for k in keys.iter().take(50) {
        it.seek(k);
        it.seek_for_prev(k);
        if let Some(p) = crate::types::parse_internal_key(k) {
            let _ = t.get(p.user_key, p.seq);
        }
    }
    let _ = t.get(b"", u64::MAX >> 8);
    let _ = t.verify();
}

/// Reads `data` as a bloom filter block and probes it; then builds a
/// filter over hashes taken from `data` and checks that every one of them
/// passes it (a filter must never rule out a key it holds).
pub fn bloom(data: &[u8]) {
    let filter = crate::table::BloomFilter::parse(data.to_vec());
    for chunk in data.chunks(8).take(64) {
        let mut h = [0u8; 8];
        h[..chunk.len()].copy_from_slice(chunk);
        let _ = filter.may_contain(u64::from_le_bytes(h));
    }
    let Some((&bits, rest)) = data.split_first() else {
        return;
    };
    let hashes: Vec<u64> = rest
        .chunks(8)
        .take(4096)
        .map(crate::table::bloom_hash)
        .collect();
    let built = crate::table::BloomFilter::parse(crate::table::build_bloom(
        &hashes,
        u32::from(bits % 64) + 1,
    ));
    for &h in &hashes {
        assert!(
            built.may_contain(h),
            "a built filter ruled out one of its keys"
        );
    }
}

/// Decodes `data` as one table block, and reads it in place with the
/// cursor data blocks are read through. When the full decode accepts the
/// block, the cursor must give the same entries both ways and find each
/// by seeking; either way it must not panic.
pub fn block(data: &[u8]) {
    use crate::types::compare_internal_keys as cmp;
    let bytes = bytes::Bytes::copy_from_slice(data);
    let decoded = crate::table::Block::decode(bytes.clone()).ok();
    if let Some(b) = &decoded {
        for i in 0..b.len() {
            let _ = (b.key(i), b.value(i));
        }
        let _ = b.seek(data, cmp);
    }
    let Ok(raw) = crate::table::DataBlock::new(bytes.to_vec()) else {
        assert!(
            decoded.as_ref().is_none_or(|b| b.len() == 0),
            "the cursor refused a block the decoder accepts"
        );
        return;
    };
    let mut c = crate::table::BlockCursor::new(Arc::new(raw), Vec::new());
    let mut forward = Vec::new();
    c.seek_to_first();
    while c.valid() && forward.len() <= data.len() {
        forward.push((c.key().to_vec(), c.value().to_vec()));
        c.next();
    }
    let forward_error = c.error().is_some();
    let mut backward = Vec::new();
    c.seek_to_last();
    while c.valid() && backward.len() <= data.len() {
        backward.push((c.key().to_vec(), c.value().to_vec()));
        c.prev();
    }
    c.seek(data);
    let Some(b) = decoded else {
        return;
    };
    let want: Vec<(Vec<u8>, Vec<u8>)> = (0..b.len())
        .map(|i| (b.key(i).to_vec(), b.value(i).to_vec()))
        .collect();
    assert!(
        !forward_error,
        "the cursor failed on a block the decoder accepts"
    );
    assert_eq!(forward, want, "forward");
    backward.reverse();
    assert_eq!(backward, want, "backward");
    for (i, (k, v)) in want.iter().enumerate() {
        c.seek(k);
        assert!(c.valid(), "seek to entry {i}");
        assert_eq!((c.key(), c.value()), (k.as_slice(), v.as_slice()));
    }
}

/// Decodes `data` as a table's range deletions block, then checks that
/// what it decoded survives encoding and decoding again (the bytes may
/// differ: an over-long varint decodes too) and that fragmenting its
/// tombstones again answers every lookup the same way (a panic here is a
/// bug in the fragmenter or the codec, not in the input).
pub fn range_deletions(data: &[u8]) {
    use crate::range_del::Fragments;
    let Ok(frags) = Fragments::decode(data) else {
        return;
    };
    let again = Fragments::decode(&frags.encode()).expect("an encoded block decodes");
    assert_eq!(again, frags, "decode and encode disagree");
    let rebuilt = Fragments::build(frags.tombstones());
    let mut probes: Vec<Vec<u8>> = vec![Vec::new()];
    for t in frags.tombstones().take(1000) {
        let mut after = t.start.clone();
        after.push(0);
        probes.extend([t.start, after, t.end]);
    }
    let seqs = frags.tombstones().take(64).map(|t| t.seq);
    let reads: Vec<u64> = seqs.flat_map(|s| [s, s.saturating_sub(1)]).collect();
    for key in &probes {
        for &read in reads.iter().chain([&u64::MAX]) {
            assert_eq!(
                frags.max_covering(key, read),
                rebuilt.max_covering(key, read),
                "lookups differ after rebuilding"
            );
        }
    }
    if let Some((lo, hi)) = frags.bounds() {
        let (lo, hi) = (lo.to_vec(), hi.to_vec());
        let _ = frags.clip(Some(&lo[..lo.len() / 2]), Some(&hi), |s| s % 2 == 0);
    }
    let _ = frags.seq_range();
}

/// Reads `data` as a write-ahead log, decoding every record as a batch.
pub fn wal(data: &[u8]) {
    let mut r = crate::wal::LogReader::new(data, crate::wal::LogKind::Wal);
    for _ in 0..100_000 {
        match r.next_event() {
            crate::wal::ReadEvent::Record { data, .. } => {
                if let Ok((_, b)) = crate::batch::WriteBatch::decode(&data) {
                    let _ = b.iter().count();
                }
            }
            crate::wal::ReadEvent::Corrupt { .. } => {}
            _ => return,
        }
    }
}

/// Decodes `data` as a version edit (with the column family options it
/// records), as column family options, and as a whole MANIFEST named by
/// `CURRENT`.
pub fn manifest(data: &[u8]) {
    if let Ok(edit) = crate::version::VersionEdit::decode(data) {
        for f in &edit.families {
            if let Some((_, options)) = &f.add {
                let _ = crate::cf_options::ColumnFamilyOptions::decode(options);
            }
        }
    }
    let _ = crate::cf_options::ColumnFamilyOptions::decode(data);
    let (fs, _) = store(data, "MANIFEST-000002");
    if let Ok(mut f) = fs.create(Path::new("/fuzz/CURRENT")) {
        let _ = f.append(b"MANIFEST-000002\n");
    }
    let _ = crate::version::read_current(&fs, Path::new("/fuzz"));
}

/// A memtable, for benchmarks.
pub struct MemTable(Arc<crate::memtable::MemTable>);

impl Default for MemTable {
    fn default() -> MemTable {
        MemTable(Arc::new(crate::memtable::MemTable::new(
            0,
            crate::memtable::filter_bytes(64 << 20),
        )))
    }
}

impl MemTable {
    /// Adds a put of `value` at `key` with sequence number `seq`.
    pub fn insert(&self, key: &[u8], seq: u64, value: &[u8]) {
        self.0.insert(key, seq, crate::types::ValueKind::Put, value);
    }

    /// Whether `key` has a value visible at `seq`.
    pub fn contains(&self, key: &[u8], seq: u64) -> bool {
        matches!(
            self.0.get(key, seq),
            Some((_, crate::types::ValueKind::Put, _))
        )
    }

    /// Steps a cursor over every entry, reading each key and value (as a
    /// flush or an iterator does); returns how many it saw.
    pub fn scan(&self) -> usize {
        use crate::internal_iter::InternalIterator;
        let mut it = self.0.iter();
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            n += (it.key().len() + usize::from(it.value().first().copied().unwrap_or(1))).min(1);
            it.next();
        }
        n
    }
}

/// A merging iterator over several tables (their blocks cached), for
/// benchmarks: what every scan and seek of a database steps through.
pub struct Merge(Vec<Table>);

impl Merge {
    /// `keys[i]` goes into table `child_of(i) % children`; keys distinct.
    pub fn build(
        keys: &[Vec<u8>],
        children: usize,
        child_of: impl Fn(usize) -> usize,
    ) -> crate::Result<Merge> {
        let mut parts: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![Vec::new(); children];
        for (i, k) in keys.iter().enumerate() {
            parts[child_of(i) % children].push((k.clone(), vec![7; 100]));
        }
        let mut tables = Vec::new();
        for mut p in parts {
            p.sort();
            let t = Table::build(&p, 256 << 20)?;
            t.scan(); // warm its cache
            tables.push(t);
        }
        Ok(Merge(tables))
    }

    fn iter(&self) -> crate::merge::MergingIterator {
        let children: Vec<Box<dyn InternalIterator>> = self
            .0
            .iter()
            .map(|t| Box::new(t.0.iter()) as Box<dyn InternalIterator>)
            .collect();
        crate::merge::MergingIterator::new(children)
    }

    /// Steps over every entry, forward or backward; returns how many.
    pub fn scan(&self, reverse: bool) -> usize {
        let mut it = self.iter();
        let mut n = 0;
        if reverse {
            it.seek_to_last();
            while it.valid() {
                n += it.key().len().min(1);
                it.prev();
            }
        } else {
            it.seek_to_first();
            while it.valid() {
                n += it.key().len().min(1);
                it.next();
            }
        }
        n
    }

    /// Builds an iterator, seeks it to `user_key` and steps `count` entries
    /// forward: a short range scan.
    pub fn seek_next(&self, user_key: &[u8], count: usize) -> usize {
        let mut it = self.iter();
        it.seek(&internal_key(user_key, u64::MAX >> 8));
        let mut n = 0;
        while it.valid() && n < count {
            n += 1;
            it.next();
        }
        n
    }
}

/// A write-ahead log writer on the real file system, for benchmarks.
pub struct LogWriter(crate::wal::LogWriter);

impl LogWriter {
    /// Creates a log at `path`.
    pub fn create(path: &Path) -> crate::Result<LogWriter> {
        let fs = crate::fs::OsFileSystem;
        let file = fs.create(path).map_err(|e| crate::Error::io(path, e))?;
        crate::wal::LogWriter::create(file, crate::wal::LogKind::Wal, 1)
            .map(LogWriter)
            .map_err(|e| crate::Error::io(path, e))
    }

    /// Appends one record.
    pub fn append(&mut self, record: &[u8]) -> std::io::Result<()> {
        self.0.add_record(record)
    }

    /// Fsyncs the log.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync()
    }
}

/// Builds one table block from `(internal key, value)` pairs (see
/// [`internal_key`]), sorted.
pub fn build_block(entries: &[(Vec<u8>, Vec<u8>)], restart_interval: usize) -> Vec<u8> {
    let mut b = crate::table::BlockBuilder::new(restart_interval);
    for (k, v) in entries {
        b.add(k, v);
    }
    b.finish_with(<[u8]>::to_vec)
}

/// The encoded internal key of a put of `user_key` at `seq`.
pub fn internal_key(user_key: &[u8], seq: u64) -> Vec<u8> {
    let mut k = Vec::new();
    crate::types::encode_internal_key(&mut k, user_key, seq, crate::types::ValueKind::Put);
    k
}

/// A decoded block, for benchmarks.
pub struct Block(crate::table::Block);

impl Block {
    /// Decodes and checks an encoded block.
    pub fn decode(data: &[u8]) -> Option<Block> {
        crate::table::Block::decode(bytes::Bytes::copy_from_slice(data))
            .ok()
            .map(Block)
    }

    /// Index of the first entry `>= ikey`.
    pub fn seek(&self, ikey: &[u8]) -> usize {
        self.0.seek(ikey, crate::types::compare_internal_keys)
    }
}

/// A table's index as an open table searches it, for benchmarks.
pub struct Index(crate::table::Index);

impl Index {
    /// The index of an index block holding `ikeys` (sorted internal keys).
    pub fn build(ikeys: &[Vec<u8>]) -> Index {
        let mut b = crate::table::BlockBuilder::new(1);
        for k in ikeys {
            b.add(k, &[0; 4]);
        }
        let block = crate::table::Block::decode(bytes::Bytes::from(b.finish_with(<[u8]>::to_vec)))
            .expect("a block just built decodes");
        Index(crate::table::Index::new(block))
    }

    /// Index of the first entry `>= ikey`.
    pub fn seek(&self, ikey: &[u8]) -> usize {
        self.0.seek(ikey)
    }
}

/// A data block as the block cache holds it (read in place), for
/// benchmarks.
#[derive(Clone)]
pub struct DataBlock(Arc<crate::table::DataBlock>);

impl DataBlock {
    /// Locates the restart array of an encoded block.
    pub fn load(data: &[u8]) -> Option<DataBlock> {
        crate::table::DataBlock::new(data.to_vec())
            .ok()
            .map(|b| DataBlock(Arc::new(b)))
    }

    /// Seeks a cursor to the first entry `>= ikey`; whether there is one.
    /// (Like a table lookup, it reuses one key buffer.)
    pub fn seek(&self, ikey: &[u8], key_buf: &mut Vec<u8>) -> bool {
        let mut c = crate::table::BlockCursor::new(self.0.clone(), std::mem::take(key_buf));
        c.seek(ikey);
        let found = c.valid();
        *key_buf = c.into_key_buf();
        found
    }

    /// Walks a cursor over every entry, backwards when `reverse`; returns
    /// the bytes of keys and values seen.
    pub fn walk(&self, reverse: bool, key_buf: &mut Vec<u8>) -> usize {
        let mut c = crate::table::BlockCursor::new(self.0.clone(), std::mem::take(key_buf));
        let mut bytes = 0;
        if reverse {
            c.seek_to_last();
        } else {
            c.seek_to_first();
        }
        while c.valid() {
            bytes += c.key().len() + c.value().len();
            if reverse {
                c.prev();
            } else {
                c.next();
            }
        }
        *key_buf = c.into_key_buf();
        bytes
    }
}

/// An in-memory table with a block cache, for benchmarks.
pub struct Table(Arc<crate::table::Table>);

impl Table {
    /// Builds a table of `(user key, value)` pairs (sorted, distinct) with
    /// default block size, restarts, bloom filter and LZ4, and opens it
    /// with a block cache of `cache_size` bytes.
    pub fn build(pairs: &[(Vec<u8>, Vec<u8>)], cache_size: usize) -> crate::Result<Table> {
        let (fs, path, _) = Self::write_in_memory(pairs)?;
        let file = fs.open(&path).map_err(crate::Error::from)?;
        let cache =
            (cache_size > 0).then(|| Arc::new(crate::block_cache::BlockCache::new(cache_size)));
        crate::table::Table::open(file, path, 1, cache, Arc::default()).map(Table)
    }

    /// Writes a table of `(user key, value)` pairs (sorted, distinct) as
    /// [`build`](Self::build) does, without opening it; returns the file's
    /// size. What a flush, a compaction or an `SstWriter` spends per table.
    pub fn write(pairs: &[(Vec<u8>, Vec<u8>)]) -> crate::Result<u64> {
        Self::write_in_memory(pairs).map(|(_, _, size)| size)
    }

    /// Default block size, restarts, bloom filter and LZ4, into an
    /// in-memory file system.
    fn write_in_memory(
        pairs: &[(Vec<u8>, Vec<u8>)],
    ) -> crate::Result<(FaultInjectionFs, std::path::PathBuf, u64)> {
        let fs = FaultInjectionFs::new();
        let dir = Path::new("/bench");
        fs.create_dir_all(dir).map_err(crate::Error::from)?;
        let path = dir.join("000001.sst");
        let file = fs.create(&path).map_err(crate::Error::from)?;
        let opts = crate::table::TableBuildOptions {
            block_size: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: crate::Compression::Lz4,
        };
        let mut b = crate::table::TableBuilder::new(file, path.clone(), opts);
        let mut ikey = Vec::new();
        for (k, v) in pairs {
            ikey.clear();
            crate::types::encode_internal_key(&mut ikey, k, 1, crate::types::ValueKind::Put);
            b.add(&ikey, v)?;
        }
        let size = b.finish()?.file_size;
        Ok((fs, path, size))
    }

    /// Point lookup of `user_key`; whether it has a value.
    pub fn get(&self, user_key: &[u8]) -> crate::Result<bool> {
        Ok(self.0.get(user_key, crate::types::MAX_SEQNO)?.is_some())
    }

    /// Reads every entry; returns how many.
    pub fn scan(&self) -> usize {
        let mut it = self.0.iter();
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            std::hint::black_box((it.key(), it.value()));
            n += 1;
            it.next();
        }
        n
    }
}

/// The block cache, for benchmarks.
pub struct BlockCache(crate::block_cache::BlockCache);

impl BlockCache {
    /// A cache of `capacity` bytes.
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache(crate::block_cache::BlockCache::new(capacity))
    }

    /// Caches `block` under (`file`, `offset`).
    pub fn insert(&self, file: u64, offset: u64, block: &DataBlock) {
        self.0.insert(file, offset, block.0.clone());
    }

    /// Whether (`file`, `offset`) is cached.
    pub fn get(&self, file: u64, offset: u64) -> bool {
        self.0.get(file, offset).is_some()
    }
}

/// Fixes the clock TTL expiry reads, process-wide, at `secs` since the
/// Unix epoch (`None`: the system clock again), so a test decides exactly
/// when entries expire.
pub fn set_clock(secs: Option<u64>) {
    crate::ttl::FIXED_NOW.store(secs.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

static READ_VIEW_PAUSE_EVERY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static READ_VIEW_PAUSE_MICROS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static READ_VIEW_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes every `every`-th reader pause for `pause` between reading the
/// visible sequence number and taking its read view (0 turns it off), so a
/// stress test can widen the window in which a flush or compaction
/// installs a new version. Process-wide.
pub fn set_read_view_pause(every: u64, pause: std::time::Duration) {
    use std::sync::atomic::Ordering;
    READ_VIEW_PAUSE_MICROS.store(pause.as_micros() as u64, Ordering::Relaxed);
    READ_VIEW_PAUSE_EVERY.store(every, Ordering::Relaxed);
}

pub(crate) fn read_view_pause() {
    use std::sync::atomic::Ordering;
    let every = READ_VIEW_PAUSE_EVERY.load(Ordering::Relaxed);
    if every > 0
        && READ_VIEW_CALLS
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(every)
    {
        let micros = READ_VIEW_PAUSE_MICROS.load(Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }
}

/// The data blocks of the table in `data` (offset, stored size without the
/// trailer), for tests that move blocks around; empty when it does not
/// open as a table.
pub fn table_data_blocks(data: &[u8]) -> Vec<(u64, u64)> {
    let (fs, path) = store(data, "000001.sst");
    let Ok(file) = fs.open(&path) else {
        return Vec::new();
    };
    match crate::table::Table::open(file, path, 1, None, Arc::default()) {
        Ok(t) => t.data_block_handles(),
        Err(_) => Vec::new(),
    }
}
