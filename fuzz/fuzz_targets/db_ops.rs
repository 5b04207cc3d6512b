#![no_main]
//! An arbitrary operation sequence against `DB` with tiny sizes on the
//! in-memory file system, checked against `MemoryBackend` after every read,
//! with reopens and simulated power cuts along the way. Merges (an
//! order-sensitive append operator) and range deletions are folded and
//! dropped by the same flushes and compactions.

use aidb::fs::FaultInjectionFs;
use aidb::{
    ColumnFamilyOptions, MemoryBackend, MergeOperator, Options, StorageBackend, WriteBatch,
    WriteOptions, DB,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

#[derive(Arbitrary, Debug)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Merge(u8, Vec<u8>),
    DeleteRange(u8, u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Get(u8),
    Scan(bool),
    Flush,
    Compact,
    Reopen,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k % 32]
}

/// Joins operands with `|`: order matters, so a misordered fold shows.
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "append"
    }
    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        let parts: Vec<&[u8]> = base.into_iter().chain(ops.iter().copied()).collect();
        Some(parts.join(&b"|"[..]))
    }
    fn partial_merge(&self, key: &[u8], ops: &[&[u8]]) -> Option<Vec<u8>> {
        self.full_merge(key, None, ops)
    }
}

fn options(fs: &FaultInjectionFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        write_buffer_size: 4096,
        target_file_size: 4096,
        max_bytes_for_level_base: 16 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        merge_operator: Some(Arc::new(Append)),
        ..Options::new("/db")
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let fs = FaultInjectionFs::new();
    let model = MemoryBackend::with_options(ColumnFamilyOptions {
        merge_operator: Some(Arc::new(Append)),
        ..ColumnFamilyOptions::default()
    });
    let mut db = DB::open_with(options(&fs)).expect("open");
    for op in ops.into_iter().take(500) {
        match op {
            Op::Put(k, v) => {
                db.put(key(k), &v).unwrap();
                model.put(&key(k), &v).unwrap();
            }
            Op::Delete(k) => {
                db.delete(key(k)).unwrap();
                model.delete(&key(k)).unwrap();
            }
            Op::Merge(k, v) => {
                db.merge(key(k), &v).unwrap();
                model.merge(&key(k), &v).unwrap();
            }
            Op::DeleteRange(a, b) => {
                let (lo, hi) = (key(a), key(b));
                db.delete_range(lo.clone()..hi.clone()).unwrap();
                model.delete_range((lo..hi).into()).unwrap();
            }
            Op::Batch(items) => {
                let mut b = WriteBatch::new();
                for (k, v) in &items {
                    match v {
                        Some(v) => b.put(key(*k), v),
                        None => b.delete(key(*k)),
                    };
                }
                db.write_opt(b.clone(), &WriteOptions { sync: true })
                    .unwrap();
                model.write_batch(b).unwrap();
            }
            Op::Get(k) => assert_eq!(db.get(key(k)).unwrap(), model.get(&key(k)).unwrap()),
            Op::Scan(reverse) => {
                let got: Vec<_> = if reverse {
                    db.iter().rev().map(Result::unwrap).collect()
                } else {
                    db.iter().map(Result::unwrap).collect()
                };
                let mut want: Vec<_> = model.iter().map(Result::unwrap).collect();
                if reverse {
                    want.reverse();
                }
                assert_eq!(got, want);
            }
            Op::Flush => db.flush().unwrap(),
            Op::Compact => db.compact_range(..).unwrap(),
            Op::Reopen => {
                db.close().unwrap();
                db = DB::open_with(options(&fs)).expect("reopen");
            }
        }
    }
    let got: Vec<_> = db.iter().map(Result::unwrap).collect();
    let want: Vec<_> = model.iter().map(Result::unwrap).collect();
    assert_eq!(got, want);
});
