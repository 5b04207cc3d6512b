//! The transaction suite: random sequences of transaction operations —
//! begin (optimistic or pessimistic), get, get_for_update, put, delete,
//! scans and seeks both ways, savepoints, commit (synced or not),
//! rollback, drop — on several open transactions at once, over the
//! default family and family "a", mixed with plain writes to the keys
//! they use and with the model suite's plain operations (merges and range
//! deletions among them, which transactions must read through and which
//! count as changes in the conflict check; snapshots, flush, compaction,
//! reopen, crash and recovery).
//!
//! The reference is [`TxnModel`]: `MemoryBackend` for the data, plus what
//! the documented isolation needs: a clock that every write to a key
//! stamps it with, each transaction's start snapshot and clock reading,
//! its pending writes, its tracked keys (each with the clock reading after
//! which a change is a conflict: the start for optimistic transactions,
//! the locking for pessimistic ones) and a lock table. Pessimistic
//! transactions use a zero lock timeout, so a lock another open
//! transaction holds is `Busy` at once (one thread cannot wait).

use super::{
    bound_strategy, data_step, key_strategy, mixed, op_strategy, pick, range, seek, snapshot_step,
    value_strategy, Bytes, DbHarness, Harness, Op, Pairs,
};
use aidb::{
    ColumnFamily, DbIterator, KeyRange, MemoryBackend, Snapshot, StorageBackend, Transaction,
    TransactionOptions, WriteBatch, WriteOptions,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::Duration;

/// The second family every sequence has (slot 1; slot 0 is the default).
pub const TXN_FAMILY: &str = "a";

#[derive(Debug, Clone)]
pub enum TxnOp {
    /// A plain operation on the default family.
    Base(Op),
    /// A plain put / delete (`None`) in a family, on the keys transactions use.
    Plain(usize, Bytes, Option<Bytes>),
    Begin {
        pessimistic: bool,
    },
    Get(usize, usize, Bytes),
    GetForUpdate(usize, usize, Bytes),
    Put(usize, usize, Bytes, Bytes),
    Delete(usize, usize, Bytes),
    Scan {
        t: usize,
        cf: usize,
        start: Bound<Bytes>,
        end: Bound<Bytes>,
        reverse: bool,
        limit: usize,
    },
    Seek {
        t: usize,
        cf: usize,
        key: Bytes,
        reverse: bool,
        take: usize,
    },
    Mixed(usize, usize, Vec<bool>),
    SetSavepoint(usize),
    RollbackToSavepoint(usize),
    Commit {
        t: usize,
        sync: bool,
    },
    Rollback(usize),
    Drop(usize),
    /// Reopen after a simulated crash of the process.
    CrashReopen,
}

/// Keys transactions use: mostly a few hot ones, so that they conflict.
fn hot_key() -> impl Strategy<Value = Bytes> {
    let hot: Vec<&[u8]> = vec![b"", b"a", b"b", b"c", b"ab", b"b\x00", b"c\xff", b"\xff"];
    prop_oneof![
        6 => prop::sample::select(hot).prop_map(|k| Bytes(k.to_vec())),
        1 => key_strategy(),
    ]
}

fn txn_op_strategy() -> impl Strategy<Value = TxnOp> {
    let t = any::<usize>;
    let cf = || prop_oneof![3 => Just(0usize), 2 => Just(1usize)];
    prop_oneof![
        20 => op_strategy().prop_map(TxnOp::Base),
        6 => (cf(), hot_key(), prop::option::weighted(0.8, value_strategy()))
            .prop_map(|(cf, k, v)| TxnOp::Plain(cf, k, v)),
        5 => any::<bool>().prop_map(|pessimistic| TxnOp::Begin { pessimistic }),
        8 => (t(), cf(), hot_key()).prop_map(|(t, cf, k)| TxnOp::Get(t, cf, k)),
        8 => (t(), cf(), hot_key()).prop_map(|(t, cf, k)| TxnOp::GetForUpdate(t, cf, k)),
        14 => (t(), cf(), hot_key(), value_strategy()).prop_map(|(t, cf, k, v)| TxnOp::Put(t, cf, k, v)),
        5 => (t(), cf(), hot_key()).prop_map(|(t, cf, k)| TxnOp::Delete(t, cf, k)),
        4 => (t(), cf(), bound_strategy(), bound_strategy(), any::<bool>(), 0usize..20)
            .prop_map(|(t, cf, start, end, reverse, limit)| TxnOp::Scan { t, cf, start, end, reverse, limit }),
        2 => (t(), cf(), hot_key(), any::<bool>(), 1usize..6)
            .prop_map(|(t, cf, key, reverse, take)| TxnOp::Seek { t, cf, key, reverse, take }),
        2 => (t(), cf(), prop::collection::vec(any::<bool>(), 1..12))
            .prop_map(|(t, cf, p)| TxnOp::Mixed(t, cf, p)),
        2 => t().prop_map(TxnOp::SetSavepoint),
        2 => t().prop_map(TxnOp::RollbackToSavepoint),
        5 => (t(), prop::bool::weighted(0.2)).prop_map(|(t, sync)| TxnOp::Commit { t, sync }),
        1 => t().prop_map(TxnOp::Rollback),
        1 => t().prop_map(TxnOp::Drop),
        1 => Just(TxnOp::CrashReopen),
    ]
}

/// Sequences of up to `max_len` operations with transactions.
pub fn txn_ops_strategy(max_len: usize) -> impl Strategy<Value = Vec<TxnOp>> {
    prop::collection::vec(txn_op_strategy(), 0..=max_len)
}

/// An error's variant name: what the two sides are compared on.
fn kind(e: &aidb::Error) -> String {
    format!("{e:?}")
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

fn outcome<T>(r: aidb::Result<T>) -> Result<T, String> {
    r.map_err(|e| kind(&e))
}

fn gather(
    it: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>,
    limit: usize,
) -> Result<Pairs, String> {
    it.take(limit)
        .map(|r| r.map(|(k, v)| (Bytes(k), Bytes(v))).map_err(|e| kind(&e)))
        .collect()
}

type Key = (usize, Vec<u8>);
/// A write of the model: family slot, key, value (`None`: a delete).
type Write = (usize, Vec<u8>, Option<Vec<u8>>);
type Pending = [BTreeMap<Vec<u8>, Option<Vec<u8>>>; 2];

/// One open transaction of the model.
struct ModelTxn {
    id: u64,
    pessimistic: bool,
    snapshot: Box<dyn Snapshot>,
    /// The clock when it started.
    start: u64,
    writes: Pending,
    /// Tracked key → the clock reading after which a change conflicts.
    tracked: HashMap<Key, u64>,
    /// Keys it locked, in order.
    locks: Vec<Key>,
    /// (writes, tracked, number of locks) when each savepoint was set.
    savepoints: Vec<(Pending, HashMap<Key, u64>, usize)>,
}

/// The reference: the data in `MemoryBackend`, the clock, the locks.
pub struct TxnModel {
    mem: MemoryBackend,
    family: ColumnFamily,
    clock: u64,
    /// Key → the clock of its last write (put, delete or merge).
    stamps: HashMap<Key, u64>,
    /// `(slot, start, end, clock)` of each range deletion: it changes
    /// every key in `start..end`, present or not (as the engine's check,
    /// which looks at sequence numbers only).
    range_stamps: Vec<(usize, Vec<u8>, Vec<u8>, u64)>,
    /// Locked key → owning transaction id.
    owners: HashMap<Key, u64>,
    next_id: u64,
}

impl TxnModel {
    pub fn new() -> TxnModel {
        let mem = super::reference();
        let family = mem
            .create_column_family(TXN_FAMILY, Default::default())
            .expect("create");
        TxnModel {
            mem,
            family,
            clock: 0,
            stamps: HashMap::new(),
            range_stamps: Vec::new(),
            owners: HashMap::new(),
            next_id: 1,
        }
    }

    fn cf(&self, slot: usize) -> Option<&ColumnFamily> {
        (slot == 1).then_some(&self.family)
    }

    /// Applies one atomic batch of writes, stamping every key written.
    fn write(&mut self, writes: &[Write]) -> aidb::Result<()> {
        let mut b = WriteBatch::new();
        for (slot, k, v) in writes {
            match (self.cf(*slot), v) {
                (None, Some(v)) => b.put(k, v),
                (None, None) => b.delete(k),
                (Some(cf), Some(v)) => b.put_cf(cf, k, v),
                (Some(cf), None) => b.delete_cf(cf, k),
            };
        }
        self.mem.write_batch(b)?;
        self.clock += 1;
        for (slot, k, _) in writes {
            self.stamps.insert((*slot, k.clone()), self.clock);
        }
        Ok(())
    }

    fn begin(&mut self, pessimistic: bool) -> ModelTxn {
        self.next_id += 1;
        ModelTxn {
            id: self.next_id,
            pessimistic,
            snapshot: self.mem.snapshot().expect("snapshot"),
            start: self.clock,
            writes: Default::default(),
            tracked: HashMap::new(),
            locks: Vec::new(),
            savepoints: Vec::new(),
        }
    }

    fn lock(&mut self, t: &mut ModelTxn, key: &Key) -> aidb::Result<()> {
        match self.owners.get(key) {
            Some(&o) if o != t.id => Err(aidb::Error::Busy),
            Some(_) => Ok(()),
            None => {
                self.owners.insert(key.clone(), t.id);
                t.locks.push(key.clone());
                Ok(())
            }
        }
    }

    fn unlock_from(&mut self, t: &mut ModelTxn, first: usize) {
        for key in t.locks.drain(first..) {
            self.owners.remove(&key);
        }
    }

    /// The snapshot's value of `key` in `slot`.
    fn snapshot_get(&self, t: &ModelTxn, slot: usize, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        match self.cf(slot) {
            None => t.snapshot.get(key),
            Some(cf) => t.snapshot.get_cf(cf, key),
        }
    }

    fn get(&self, t: &ModelTxn, slot: usize, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        match t.writes[slot].get(key) {
            Some(w) => Ok(w.clone()),
            None => self.snapshot_get(t, slot, key),
        }
    }

    fn get_for_update(
        &mut self,
        t: &mut ModelTxn,
        slot: usize,
        key: &[u8],
    ) -> aidb::Result<Option<Vec<u8>>> {
        let k = (slot, key.to_vec());
        if !t.pessimistic {
            let v = self.get(t, slot, key)?;
            t.tracked.entry(k).or_insert(t.start);
            return Ok(v);
        }
        self.lock(t, &k)?;
        if let Some(w) = t.writes[slot].get(key) {
            return Ok(w.clone());
        }
        t.tracked.entry(k).or_insert(self.clock);
        match self.cf(slot) {
            None => self.mem.get(key),
            Some(cf) => cf.get(key),
        }
    }

    fn put(
        &mut self,
        t: &mut ModelTxn,
        slot: usize,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> aidb::Result<()> {
        let k = (slot, key.to_vec());
        let since = if t.pessimistic {
            self.lock(t, &k)?;
            self.clock
        } else {
            t.start
        };
        t.tracked.entry(k).or_insert(since);
        t.writes[slot].insert(key.to_vec(), value.map(<[u8]>::to_vec));
        Ok(())
    }

    /// The transaction's pairs of `slot`: its writes over its snapshot.
    fn merged(&self, t: &ModelTxn, slot: usize) -> aidb::Result<MemoryBackend> {
        let snap = match self.cf(slot) {
            None => t.snapshot.scan(KeyRange::all()),
            Some(cf) => t.snapshot.scan_cf(cf, KeyRange::all()),
        };
        let mut map = BTreeMap::new();
        for kv in snap {
            let (k, v) = kv?;
            map.insert(k, v);
        }
        for (k, w) in &t.writes[slot] {
            match w {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
        let out = MemoryBackend::new();
        let mut b = WriteBatch::new();
        for (k, v) in map {
            b.put(k, v);
        }
        out.write_batch(b)?;
        Ok(out)
    }

    fn commit(&mut self, mut t: ModelTxn) -> aidb::Result<()> {
        let conflict = t.tracked.iter().any(|(k, since)| {
            self.stamps.get(k).is_some_and(|s| s > since)
                || self
                    .range_stamps
                    .iter()
                    .any(|(slot, a, z, c)| *slot == k.0 && a <= &k.1 && &k.1 < z && c > since)
        });
        let result = if conflict {
            Err(aidb::Error::Conflict)
        } else {
            let writes: Vec<_> = (0..2)
                .flat_map(|slot| {
                    t.writes[slot]
                        .iter()
                        .map(move |(k, v)| (slot, k.clone(), v.clone()))
                })
                .collect();
            if writes.is_empty() {
                Ok(())
            } else {
                self.write(&writes)
            }
        };
        self.unlock_from(&mut t, 0);
        result
    }
}

impl Default for TxnModel {
    fn default() -> TxnModel {
        TxnModel::new()
    }
}

/// Pessimistic transactions of the suite: no waiting (one thread).
fn options(pessimistic: bool) -> TransactionOptions {
    TransactionOptions {
        pessimistic,
        lock_timeout: Duration::ZERO,
        ..Default::default()
    }
}

fn same<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, model says {want:?}"))
    }
}

fn scan_of(it: DbIterator, reverse: bool, limit: usize) -> Result<Pairs, String> {
    if reverse {
        gather(it.rev(), limit)
    } else {
        gather(it, limit)
    }
}

/// Runs `ops` against `h` (a `DB`) and the model; the error names the
/// first operation whose result differs.
pub fn run_txn_ops(h: &mut DbHarness, ops: &[TxnOp]) -> Result<(), String> {
    let mut model = TxnModel::new();
    let mut family = h
        .db()
        .create_column_family(TXN_FAMILY, Default::default())
        .map_err(|e| e.to_string())?;
    let mut txns: Vec<(Transaction, ModelTxn)> = Vec::new();
    let mut snaps: Vec<(Box<dyn Snapshot>, Box<dyn Snapshot>)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let fail = |what: String| format!("op #{i} {op:?}: {what}");
        let cf = |slot: usize| (slot == 1).then_some(family.clone());
        macro_rules! txn {
            ($t:expr) => {{
                if txns.is_empty() {
                    continue;
                }
                let n = txns.len();
                &mut txns[$t % n]
            }};
        }
        match op {
            TxnOp::Base(Op::TakeSnapshot) => {
                let s = h.backend().snapshot().map_err(|e| fail(e.to_string()))?;
                snaps.push((s, model.mem.snapshot().expect("snapshot")));
            }
            TxnOp::Base(base @ (Op::SnapshotGet(index, _) | Op::SnapshotScan { index, .. })) => {
                if let Some((s, m)) = pick(&snaps, *index) {
                    snapshot_step(&**s, &**m, base).map_err(fail)?;
                }
            }
            TxnOp::Base(Op::DropSnapshot(idx)) => {
                if !snaps.is_empty() {
                    snaps.remove(idx % snaps.len());
                }
            }
            TxnOp::Base(Op::Flush) => h.flush().map_err(|e| fail(e.to_string()))?,
            TxnOp::Base(Op::Compact) => h.compact().map_err(|e| fail(e.to_string()))?,
            TxnOp::Base(Op::Reopen) | TxnOp::CrashReopen => {
                // Open transactions and snapshots pin the closed database.
                txns.clear();
                snaps.clear();
                model.owners.clear();
                let r = if matches!(op, TxnOp::CrashReopen) {
                    h.crash_reopen()
                } else {
                    h.reopen()
                };
                r.map_err(|e| fail(e.to_string()))?;
                family = h
                    .db()
                    .column_family(TXN_FAMILY)
                    .ok_or_else(|| fail("family lost".into()))?;
            }
            TxnOp::Base(base) => {
                data_step(h.backend(), &model.mem, base).map_err(fail)?;
                // Stamp what it wrote (data_step wrote it to the model):
                // keys, and ranges (a range deletion's start and end).
                let mut written: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
                match base {
                    Op::Put(k, _) | Op::Delete(k) | Op::Merge(k, _) => {
                        written.push((k.0.clone(), None))
                    }
                    Op::DeleteRange(a, z) => written.push((a.0.clone(), Some(z.0.clone()))),
                    Op::Batch(ops) => {
                        for o in ops {
                            written.push(match o {
                                super::BatchOp::Put(k, _)
                                | super::BatchOp::Delete(k)
                                | super::BatchOp::Merge(k, _) => (k.0.clone(), None),
                                super::BatchOp::DeleteRange(a, z) => {
                                    (a.0.clone(), Some(z.0.clone()))
                                }
                            })
                        }
                    }
                    _ => {}
                };
                if !written.is_empty() {
                    model.clock += 1;
                    for (k, end) in written {
                        match end {
                            None => {
                                model.stamps.insert((0, k), model.clock);
                            }
                            Some(z) => model.range_stamps.push((0, k, z, model.clock)),
                        }
                    }
                }
            }
            TxnOp::Plain(slot, k, v) => {
                let got = match (cf(*slot), v) {
                    (None, Some(v)) => h.db().put(&k.0, &v.0),
                    (None, None) => h.db().delete(&k.0),
                    (Some(cf), Some(v)) => cf.put(&k.0, &v.0),
                    (Some(cf), None) => cf.delete(&k.0),
                };
                let want = model.write(&[(*slot, k.0.clone(), v.as_ref().map(|v| v.0.clone()))]);
                same(outcome(got), outcome(want)).map_err(fail)?;
            }
            TxnOp::Begin { pessimistic } => {
                let t = h.db().transaction_with(options(*pessimistic));
                txns.push((t, model.begin(*pessimistic)));
            }
            TxnOp::Get(t, slot, k) => {
                let (a, m) = txn!(*t);
                let got = match cf(*slot) {
                    None => a.get(&k.0),
                    Some(cf) => a.get_cf(&cf, &k.0),
                };
                same(outcome(got), outcome(model.get(m, *slot, &k.0))).map_err(fail)?;
            }
            TxnOp::GetForUpdate(t, slot, k) => {
                let (a, m) = txn!(*t);
                let got = match cf(*slot) {
                    None => a.get_for_update(&k.0),
                    Some(cf) => a.get_for_update_cf(&cf, &k.0),
                };
                same(outcome(got), outcome(model.get_for_update(m, *slot, &k.0))).map_err(fail)?;
            }
            TxnOp::Put(t, slot, k, _) | TxnOp::Delete(t, slot, k) => {
                let value = match op {
                    TxnOp::Put(.., v) => Some(v.0.as_slice()),
                    _ => None,
                };
                let (a, m) = txn!(*t);
                let got = match (cf(*slot), value) {
                    (None, Some(v)) => a.put(&k.0, v),
                    (None, None) => a.delete(&k.0),
                    (Some(cf), Some(v)) => a.put_cf(&cf, &k.0, v),
                    (Some(cf), None) => a.delete_cf(&cf, &k.0),
                };
                same(outcome(got), outcome(model.put(m, *slot, &k.0, value))).map_err(fail)?;
            }
            TxnOp::Scan {
                t,
                cf: slot,
                start,
                end,
                reverse,
                limit,
            } => {
                let (a, m) = txn!(*t);
                let r = range(start, end);
                let got = match cf(*slot) {
                    None => a.range(r.clone()),
                    Some(cf) => a.range_cf(&cf, r.clone()),
                };
                let want = model.merged(m, *slot).map_err(|e| fail(e.to_string()))?;
                same(
                    scan_of(got, *reverse, *limit),
                    scan_of(want.scan(r), *reverse, *limit),
                )
                .map_err(fail)?;
            }
            TxnOp::Seek {
                t,
                cf: slot,
                key,
                reverse,
                take,
            } => {
                let (a, m) = txn!(*t);
                let got = match cf(*slot) {
                    None => a.iter(),
                    Some(cf) => a.iter_cf(&cf),
                };
                let want = model.merged(m, *slot).map_err(|e| fail(e.to_string()))?;
                same(
                    seek(got, key, *reverse, *take),
                    seek(want.scan(KeyRange::all()), key, *reverse, *take),
                )
                .map_err(fail)?;
            }
            TxnOp::Mixed(t, slot, pattern) => {
                let (a, m) = txn!(*t);
                let got = match cf(*slot) {
                    None => a.iter(),
                    Some(cf) => a.iter_cf(&cf),
                };
                let want = model.merged(m, *slot).map_err(|e| fail(e.to_string()))?;
                same(
                    mixed(got, pattern),
                    mixed(want.scan(KeyRange::all()), pattern),
                )
                .map_err(fail)?;
            }
            TxnOp::SetSavepoint(t) => {
                let (a, m) = txn!(*t);
                a.set_savepoint();
                m.savepoints
                    .push((m.writes.clone(), m.tracked.clone(), m.locks.len()));
            }
            TxnOp::RollbackToSavepoint(t) => {
                let (a, m) = txn!(*t);
                let got = outcome(a.rollback_to_savepoint());
                let want = match m.savepoints.pop() {
                    None => Err("InvalidArgument".to_string()),
                    Some((writes, tracked, locks)) => {
                        m.writes = writes;
                        m.tracked = tracked;
                        model.unlock_from(m, locks);
                        Ok(())
                    }
                };
                same(got, want).map_err(fail)?;
            }
            TxnOp::Commit { t, sync } => {
                if txns.is_empty() {
                    continue;
                }
                let n = txns.len();
                let (a, m) = txns.remove(t % n);
                let got = a.commit_opt(&WriteOptions { sync: *sync });
                same(outcome(got), outcome(model.commit(m))).map_err(fail)?;
            }
            TxnOp::Rollback(t) => {
                let (a, m) = txn!(*t);
                a.rollback();
                m.writes = Default::default();
                m.tracked.clear();
                m.savepoints.clear();
                model.unlock_from(m, 0);
            }
            TxnOp::Drop(t) => {
                if txns.is_empty() {
                    continue;
                }
                let n = txns.len();
                let (a, mut m) = txns.remove(t % n);
                drop(a);
                model.unlock_from(&mut m, 0);
            }
        }
    }
    drop(txns);
    // Finally the whole content of both families must agree.
    let got = gather(h.db().iter(), usize::MAX)?;
    let want = gather(model.mem.iter(), usize::MAX)?;
    same(got, want).map_err(|e| format!("final contents of the default family: {e}"))?;
    let got = gather(family.iter(), usize::MAX)?;
    let want = gather(model.family.iter(), usize::MAX)?;
    same(got, want).map_err(|e| format!("final contents of family {TXN_FAMILY:?}: {e}"))
}
