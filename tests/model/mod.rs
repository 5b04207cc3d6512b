//! The model-based suite: random operation sequences run against a backend
//! and against `MemoryBackend`, comparing every observable result.
//!
//! A backend joins by implementing [`Harness`] (the store, plus `flush`,
//! `compact` and `reopen` hooks that may be no-ops). The column-family
//! suite (`cf.rs`: [`CfOp`] sequences, [`run_cf_pair`]) also needs
//! [`CfHarness`].

#![allow(dead_code)]

use aidb::fs::FaultInjectionFs;
use aidb::{
    ColumnFamilyOptions, Compression, DbIterator, KeyRange, MemoryBackend, MergeOperator, Options,
    Snapshot, StorageBackend, WriteBatch, DB,
};
use proptest::prelude::*;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

mod cf;
mod cf_stores;
mod txn;
pub use cf::*;
// Used by model_db.rs only; the other users of this module need not.
#[allow(unused_imports)]
pub use txn::*;

/// The merge operator of the suite: the operands appended to the value,
/// separated by `+`. Associative (a partial merge is the same append
/// without a base), so RocksDB's associative operator can be the same
/// function, and order-sensitive, so a fold in the wrong order shows.
pub struct Concat;

/// What [`Concat`] makes of `existing` and `operands` (oldest first).
pub fn concat<'a>(
    existing: Option<&'a [u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in existing.into_iter().chain(operands).enumerate() {
        if i > 0 {
            out.push(b'+');
        }
        out.extend_from_slice(part);
    }
    out
}

impl MergeOperator for Concat {
    fn name(&self) -> &str {
        "concat"
    }
    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>> {
        Some(concat(existing, operands.iter().copied()))
    }
    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Some(concat(None, operands.iter().copied()))
    }
}

/// `opts` with the suite's merge operator (unless it has one).
pub fn with_concat(opts: Options) -> Options {
    Options {
        merge_operator: Some(opts.merge_operator.unwrap_or_else(|| Arc::new(Concat))),
        ..opts
    }
}

/// The reference store: `MemoryBackend` with the suite's merge operator.
pub fn reference() -> MemoryBackend {
    MemoryBackend::with_options(ColumnFamilyOptions {
        merge_operator: Some(Arc::new(Concat)),
        ..Default::default()
    })
}

/// A store under test.
pub trait Harness {
    fn backend(&self) -> &dyn StorageBackend;
    fn flush(&mut self) -> aidb::Result<()> {
        Ok(())
    }
    fn compact(&mut self) -> aidb::Result<()> {
        Ok(())
    }
    /// Closes and reopens the store (the runner drops all snapshots first).
    fn reopen(&mut self) -> aidb::Result<()> {
        Ok(())
    }
}

/// `DB` as a harness: reopen closes it and opens it again with the same
/// options.
pub struct DbHarness {
    db: Option<DB>,
    opts: Options,
    /// The file system of `opts`, when it is one a crash can be simulated
    /// on (see [`DbHarness::crash_reopen`]).
    crash_fs: Option<FaultInjectionFs>,
}

impl DbHarness {
    pub fn open(opts: Options) -> aidb::Result<DbHarness> {
        let opts = with_concat(opts);
        Ok(DbHarness {
            db: Some(DB::open_with(opts.clone())?),
            opts,
            crash_fs: None,
        })
    }

    /// Opens with `opts` on `fs` (which replaces `opts.fs`), so that
    /// [`DbHarness::crash_reopen`] can simulate a crash.
    pub fn open_crashable(opts: Options, fs: FaultInjectionFs) -> aidb::Result<DbHarness> {
        let opts = Options {
            fs: Arc::new(fs.clone()),
            ..opts
        };
        Ok(DbHarness {
            crash_fs: Some(fs),
            ..DbHarness::open(opts)?
        })
    }

    /// Kills the database as a crash of the process would (every file
    /// system call but reads fails from now on, so nothing more is written
    /// and memtables are lost; what was written stays, as in the page
    /// cache), then opens it again: recovery must replay every write from
    /// the logs. A clean reopen without a crash-capable file system.
    pub fn crash_reopen(&mut self) -> aidb::Result<()> {
        let Some(fs) = self.crash_fs.clone() else {
            return Harness::reopen(self);
        };
        fs.crash_after(0);
        if let Some(db) = self.db.take() {
            // Fails: nothing can be written any more.
            let _ = db.close();
        }
        fs.clear_faults();
        self.db = Some(DB::open_with(self.opts.clone())?);
        Ok(())
    }

    fn db(&self) -> &DB {
        self.db.as_ref().expect("open")
    }

    /// Closes the database, reporting any error.
    pub fn close(mut self) -> aidb::Result<()> {
        match self.db.take() {
            Some(db) => db.close(),
            None => Ok(()),
        }
    }
}

impl Harness for DbHarness {
    fn backend(&self) -> &dyn StorageBackend {
        self.db()
    }
    fn flush(&mut self) -> aidb::Result<()> {
        self.db().flush()
    }
    fn compact(&mut self) -> aidb::Result<()> {
        self.db().compact_range(..)
    }
    fn reopen(&mut self) -> aidb::Result<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        self.db = Some(DB::open_with(self.opts.clone())?);
        Ok(())
    }
}

/// Tiny sizes on the in-memory file system (4 KiB write buffer, 8 KiB
/// tables, 32 KiB level base), so that every case flushes and compacts
/// many times.
pub fn tiny(compression: Compression, bloom_bits_per_key: u32) -> Options {
    Options {
        fs: Arc::new(FaultInjectionFs::new()),
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        block_restart_interval: 4,
        compression,
        bloom_bits_per_key,
        ..Options::new("/db")
    }
}

impl Harness for MemoryBackend {
    fn backend(&self) -> &dyn StorageBackend {
        self
    }
}

/// A byte string printed as an escaped literal, for readable failures.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            // Long runs of one byte (large values) as `[0xe4; 1500]`.
            [first, rest @ ..] if rest.len() >= 16 && rest.iter().all(|b| b == first) => {
                write!(f, "[{first:#04x}; {}]", self.0.len())
            }
            _ => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

#[derive(Debug, Clone)]
pub enum BatchOp {
    Put(Bytes, Bytes),
    Delete(Bytes),
    Merge(Bytes, Bytes),
    /// `delete_range(start..end)`; the runner orders the two keys.
    DeleteRange(Bytes, Bytes),
}

#[derive(Debug, Clone)]
pub enum Op {
    Put(Bytes, Bytes),
    Delete(Bytes),
    Merge(Bytes, Bytes),
    /// `delete_range(start..end)`, the two keys in either order (an empty
    /// or backwards range deletes nothing).
    DeleteRange(Bytes, Bytes),
    Batch(Vec<BatchOp>),
    Get(Bytes),
    /// The trait's plain `iter()`.
    Iter,
    Scan {
        start: Bound<Bytes>,
        end: Bound<Bytes>,
        reverse: bool,
        limit: usize,
    },
    Prefix {
        prefix: Bytes,
        reverse: bool,
    },
    /// Seek (or seek_for_prev when `reverse`), then take a few.
    Seek {
        key: Bytes,
        reverse: bool,
        take: usize,
    },
    /// Alternate `next` (true) and `next_back` (false) on one iterator.
    Mixed(Vec<bool>),
    TakeSnapshot,
    SnapshotGet(usize, Bytes),
    SnapshotScan {
        index: usize,
        start: Bound<Bytes>,
        reverse: bool,
    },
    DropSnapshot(usize),
    Flush,
    Compact,
    Reopen,
}

fn key_strategy() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        20 => prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', 0x00, 0xff]), 0..=3),
        1 => prop::collection::vec(any::<u8>(), 4..40),
    ]
    .prop_map(Bytes)
}

fn value_strategy() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        10 => prop::collection::vec(any::<u8>(), 0..=8),
        2 => Just(Vec::new()),
        1 => (1usize..2000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
    .prop_map(Bytes)
}

fn bound_strategy() -> impl Strategy<Value = Bound<Bytes>> {
    prop_oneof![
        1 => Just(Bound::Unbounded),
        2 => key_strategy().prop_map(Bound::Included),
        2 => key_strategy().prop_map(Bound::Excluded),
    ]
}

/// A range for `delete_range`: mostly short, start before end.
fn range_strategy() -> impl Strategy<Value = (Bytes, Bytes)> {
    (key_strategy(), key_strategy()).prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
}

/// Operands: short, so that values built by many merges stay readable.
fn operand_strategy() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(prop::sample::select(vec![b'x', b'y', b'z', b'0']), 0..=3).prop_map(Bytes)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let batch_op = prop_oneof![
        6 => (key_strategy(), value_strategy()).prop_map(|(k, v)| BatchOp::Put(k, v)),
        2 => key_strategy().prop_map(BatchOp::Delete),
        2 => (key_strategy(), operand_strategy()).prop_map(|(k, v)| BatchOp::Merge(k, v)),
        1 => range_strategy().prop_map(|(a, b)| BatchOp::DeleteRange(a, b)),
    ];
    prop_oneof![
        30 => (key_strategy(), value_strategy()).prop_map(|(k, v)| Op::Put(k, v)),
        10 => key_strategy().prop_map(Op::Delete),
        10 => (key_strategy(), operand_strategy()).prop_map(|(k, v)| Op::Merge(k, v)),
        3 => range_strategy().prop_map(|(a, b)| Op::DeleteRange(a, b)),
        6 => prop::collection::vec(batch_op, 0..8).prop_map(Op::Batch),
        15 => key_strategy().prop_map(Op::Get),
        2 => Just(Op::Iter),
        6 => (bound_strategy(), bound_strategy(), any::<bool>(), 0usize..20)
            .prop_map(|(start, end, reverse, limit)| Op::Scan { start, end, reverse, limit }),
        3 => (key_strategy(), any::<bool>()).prop_map(|(prefix, reverse)| Op::Prefix { prefix, reverse }),
        4 => (key_strategy(), any::<bool>(), 1usize..6)
            .prop_map(|(key, reverse, take)| Op::Seek { key, reverse, take }),
        2 => prop::collection::vec(any::<bool>(), 1..12).prop_map(Op::Mixed),
        3 => Just(Op::TakeSnapshot),
        4 => (any::<usize>(), key_strategy()).prop_map(|(i, k)| Op::SnapshotGet(i, k)),
        2 => (any::<usize>(), bound_strategy(), any::<bool>())
            .prop_map(|(index, start, reverse)| Op::SnapshotScan { index, start, reverse }),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// Sequences of up to `max_len` operations.
pub fn ops_strategy(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(), 0..=max_len)
}

/// Number of cases: `AIDB_MODEL_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("AIDB_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Pairs = Vec<(Bytes, Bytes)>;

fn collect(
    iter: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>,
    limit: usize,
) -> Result<Pairs, String> {
    iter.take(limit)
        .map(|r| {
            r.map(|(k, v)| (Bytes(k), Bytes(v)))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The first `limit` pairs of `iter`, from the back when `reverse`.
fn collect_dir(iter: DbIterator, reverse: bool, limit: usize) -> Result<Pairs, String> {
    if reverse {
        collect(iter.rev(), limit)
    } else {
        collect(iter, limit)
    }
}

fn range(start: &Bound<Bytes>, end: &Bound<Bytes>) -> KeyRange {
    let conv = |b: &Bound<Bytes>| match b {
        Bound::Included(k) => Bound::Included(k.0.clone()),
        Bound::Excluded(k) => Bound::Excluded(k.0.clone()),
        Bound::Unbounded => Bound::Unbounded,
    };
    KeyRange {
        start: conv(start),
        end: conv(end),
    }
}

fn mixed(mut it: DbIterator, pattern: &[bool]) -> Result<Vec<Option<Bytes>>, String> {
    pattern
        .iter()
        .map(|&front| {
            let item = if front { it.next() } else { it.next_back() };
            item.transpose()
                .map(|o| o.map(|(k, _)| Bytes(k)))
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn seek(mut it: DbIterator, key: &Bytes, reverse: bool, take: usize) -> Result<Pairs, String> {
    if reverse {
        it.seek_for_prev(&key.0);
        collect(it.rev(), take)
    } else {
        it.seek(&key.0);
        collect(it, take)
    }
}

fn to_batch(ops: &[BatchOp]) -> WriteBatch {
    let mut b = WriteBatch::new();
    for op in ops {
        match op {
            BatchOp::Put(k, v) => b.put(&k.0, &v.0),
            BatchOp::Delete(k) => b.delete(&k.0),
            BatchOp::Merge(k, v) => b.merge(&k.0, &v.0),
            BatchOp::DeleteRange(a, z) => b.delete_range(a.0.clone()..z.0.clone()),
        };
    }
    b
}

/// Runs `ops` against `h` and the model; the error names the first op whose
/// result differs.
pub fn run_ops<H: Harness>(h: &mut H, ops: &[Op]) -> Result<(), String> {
    run_pair(h, &mut reference(), ops)
}

/// Compares the result of an operation with the model's.
fn same<T: PartialEq + fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, model says {want:?}"))
    }
}

/// Runs one operation that writes to or reads the live store (not the
/// snapshot, hook and reopen operations) on both backends.
fn data_step(b: &dyn StorageBackend, model: &dyn StorageBackend, op: &Op) -> Result<(), String> {
    match op {
        Op::Put(k, v) => {
            b.put(&k.0, &v.0).map_err(|e| e.to_string())?;
            model.put(&k.0, &v.0).map_err(|e| format!("reference: {e}"))
        }
        Op::Delete(k) => {
            b.delete(&k.0).map_err(|e| e.to_string())?;
            model.delete(&k.0).map_err(|e| format!("reference: {e}"))
        }
        Op::Merge(k, v) => {
            b.merge(&k.0, &v.0).map_err(|e| e.to_string())?;
            model
                .merge(&k.0, &v.0)
                .map_err(|e| format!("reference: {e}"))
        }
        Op::DeleteRange(a, z) => {
            let r = KeyRange::from(a.0.clone()..z.0.clone());
            b.delete_range(r.clone()).map_err(|e| e.to_string())?;
            model.delete_range(r).map_err(|e| format!("reference: {e}"))
        }
        Op::Batch(ops) => {
            b.write_batch(to_batch(ops)).map_err(|e| e.to_string())?;
            model
                .write_batch(to_batch(ops))
                .map_err(|e| format!("reference: {e}"))
        }
        Op::Get(k) => same(
            b.get(&k.0).map_err(|e| e.to_string()).map(|o| o.map(Bytes)),
            model
                .get(&k.0)
                .map_err(|e| e.to_string())
                .map(|o| o.map(Bytes)),
        ),
        Op::Iter => same(
            collect(b.iter(), usize::MAX),
            collect(model.iter(), usize::MAX),
        ),
        Op::Scan {
            start,
            end,
            reverse,
            limit,
        } => {
            let r = range(start, end);
            same(
                collect_dir(b.scan(r.clone()), *reverse, *limit),
                collect_dir(model.scan(r), *reverse, *limit),
            )
        }
        Op::Prefix { prefix, reverse } => {
            let r = KeyRange::prefix(&prefix.0);
            same(
                collect_dir(b.scan(r.clone()), *reverse, usize::MAX),
                collect_dir(model.scan(r), *reverse, usize::MAX),
            )
        }
        Op::Seek { key, reverse, take } => same(
            seek(b.scan(KeyRange::all()), key, *reverse, *take),
            seek(model.scan(KeyRange::all()), key, *reverse, *take),
        ),
        Op::Mixed(pattern) => same(
            mixed(b.scan(KeyRange::all()), pattern),
            mixed(model.scan(KeyRange::all()), pattern),
        ),
        other => Err(format!("not a data operation: {other:?}")),
    }
}

/// Runs a snapshot read on a snapshot of each backend.
fn snapshot_step(s: &dyn Snapshot, m: &dyn Snapshot, op: &Op) -> Result<(), String> {
    match op {
        Op::SnapshotGet(_, k) => same(
            s.get(&k.0).map_err(|e| e.to_string()).map(|o| o.map(Bytes)),
            m.get(&k.0).map_err(|e| e.to_string()).map(|o| o.map(Bytes)),
        ),
        Op::SnapshotScan { start, reverse, .. } => {
            let r = range(start, &Bound::Unbounded);
            same(
                collect_dir(s.scan(r.clone()), *reverse, usize::MAX),
                collect_dir(m.scan(r), *reverse, usize::MAX),
            )
        }
        other => Err(format!("not a snapshot read: {other:?}")),
    }
}

/// Runs `ops` against `h` and against `reference` side by side; the error
/// names the first op whose result differs. Hooks (flush, compact, reopen)
/// run on both.
pub fn run_pair<H: Harness, R: Harness>(
    h: &mut H,
    reference: &mut R,
    ops: &[Op],
) -> Result<(), String> {
    let mut snaps: Vec<(Box<dyn Snapshot>, Box<dyn Snapshot>)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let fail = |what: String| format!("op #{i} {op:?}: {what}");
        match op {
            Op::TakeSnapshot => {
                let s = h.backend().snapshot().map_err(|e| fail(e.to_string()))?;
                let m = reference
                    .backend()
                    .snapshot()
                    .map_err(|e| fail(format!("reference: {e}")))?;
                snaps.push((s, m));
            }
            Op::SnapshotGet(index, _) | Op::SnapshotScan { index, .. } => {
                if let Some((s, m)) = pick(&snaps, *index) {
                    snapshot_step(&**s, &**m, op).map_err(fail)?;
                }
            }
            Op::DropSnapshot(idx) => {
                if !snaps.is_empty() {
                    snaps.remove(idx % snaps.len());
                }
            }
            Op::Flush => {
                h.flush().map_err(|e| fail(e.to_string()))?;
                reference
                    .flush()
                    .map_err(|e| fail(format!("reference: {e}")))?;
            }
            Op::Compact => {
                h.compact().map_err(|e| fail(e.to_string()))?;
                reference
                    .compact()
                    .map_err(|e| fail(format!("reference: {e}")))?;
            }
            Op::Reopen => {
                snaps.clear();
                h.reopen().map_err(|e| fail(e.to_string()))?;
                reference
                    .reopen()
                    .map_err(|e| fail(format!("reference: {e}")))?;
            }
            _ => data_step(h.backend(), reference.backend(), op).map_err(fail)?,
        }
    }
    // Finally the whole content must agree.
    let got = collect(h.backend().iter(), usize::MAX)?;
    let want = collect(reference.backend().iter(), usize::MAX)?;
    if got != want {
        return Err(format!(
            "final contents differ: got {got:?}, model says {want:?}"
        ));
    }
    Ok(())
}

fn pick<T>(snaps: &[T], idx: usize) -> Option<&T> {
    if snaps.is_empty() {
        None
    } else {
        snaps.get(idx % snaps.len())
    }
}
