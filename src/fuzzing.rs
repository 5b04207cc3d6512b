//! Entry points for the fuzz targets under `fuzz/` (only with the
//! `fuzzing` cargo feature). Each takes arbitrary bytes, runs one decoder
//! over them, and must return without panicking, hanging or reading out of
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

/// Decodes `data` as one table block.
pub fn block(data: &[u8]) {
    if let Ok(b) = crate::table::Block::decode(bytes::Bytes::copy_from_slice(data)) {
        for i in 0..b.len() {
            let _ = (b.key(i), b.value(i));
        }
        let _ = b.seek(data, crate::types::compare_internal_keys);
    }
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

/// Decodes `data` as a version edit, and as a whole MANIFEST named by
/// `CURRENT`.
pub fn manifest(data: &[u8]) {
    let _ = crate::version::VersionEdit::decode(data);
    let (fs, _) = store(data, "MANIFEST-000002");
    if let Ok(mut f) = fs.create(Path::new("/fuzz/CURRENT")) {
        let _ = f.append(b"MANIFEST-000002\n");
    }
    let _ = crate::version::read_current(&fs, Path::new("/fuzz"), 7);
}
