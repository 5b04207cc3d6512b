//! The model suite against `MemoryBackend` itself, and proof that the suite
//! catches broken backends.

mod model;

use aidb::{
    ColumnFamily, DbIterator, KeyRange, MemoryBackend, RawIterator, Snapshot, StorageBackend,
    WriteBatch,
};
use model::{
    cases, cf_ops_strategy, ops_strategy, run_cf_ops, run_ops, BatchOp, CfHarness, Harness,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::HashMap;
use std::sync::Arc;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn memory_backend_matches_the_model(ops in ops_strategy(200)) {
        let mut h = model::reference();
        run_ops(&mut h, &ops).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn memory_backend_with_families_matches_the_model(ops in cf_ops_strategy(200)) {
        let mut h = model::reference();
        run_cf_ops(&mut h, &ops).map_err(TestCaseError::fail)?;
    }
}

/// A backend with one deliberate bug, chosen by `bug`.
struct Broken {
    inner: Arc<MemoryBackend>,
    bug: Bug,
}

#[derive(Clone, Copy)]
enum Bug {
    /// `delete` does nothing.
    DeleteIgnored,
    /// Snapshots see later writes.
    SnapshotNotFrozen,
    /// Reverse iteration skips the last key.
    ReverseSkipsLast,
    /// `delete_range` deletes its end key too.
    RangeDeleteTakesTheEnd,
    /// `merge` puts the operand before the value instead of after it.
    MergeReversed,
}

impl StorageBackend for Broken {
    fn put(&self, key: &[u8], value: &[u8]) -> aidb::Result<()> {
        self.inner.put(key, value)
    }
    fn get(&self, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn delete(&self, key: &[u8]) -> aidb::Result<()> {
        match self.bug {
            Bug::DeleteIgnored => Ok(()),
            _ => self.inner.delete(key),
        }
    }
    fn write_batch(&self, batch: WriteBatch) -> aidb::Result<()> {
        self.inner.write_batch(batch)
    }
    fn merge(&self, key: &[u8], operand: &[u8]) -> aidb::Result<()> {
        match self.bug {
            Bug::MergeReversed => {
                let old = self.inner.get(key)?;
                let parts = std::iter::once(operand).chain(old.as_deref());
                self.inner.put(key, &model::concat(None, parts))
            }
            _ => self.inner.merge(key, operand),
        }
    }
    fn delete_range(&self, range: KeyRange) -> aidb::Result<()> {
        match (self.bug, &range.end) {
            (Bug::RangeDeleteTakesTheEnd, std::ops::Bound::Excluded(end)) => {
                self.inner.delete_range(range.clone())?;
                let reaches_end = match &range.start {
                    std::ops::Bound::Included(s) => s <= end,
                    std::ops::Bound::Excluded(s) => s < end,
                    std::ops::Bound::Unbounded => true,
                };
                if reaches_end {
                    self.inner.delete(end)?;
                }
                Ok(())
            }
            _ => self.inner.delete_range(range),
        }
    }
    fn snapshot(&self) -> aidb::Result<Box<dyn Snapshot>> {
        match self.bug {
            Bug::SnapshotNotFrozen => Ok(Box::new(LiveView(self.inner.clone()))),
            _ => self.inner.snapshot(),
        }
    }
    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        let raw = self.inner.raw_iterator();
        match self.bug {
            Bug::ReverseSkipsLast => Box::new(SkipLast(raw)),
            _ => raw,
        }
    }
}

/// A "snapshot" that reads the live store.
struct LiveView(Arc<MemoryBackend>);

impl Snapshot for LiveView {
    fn get(&self, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        self.0.raw_iterator()
    }
}

/// A cursor whose `seek_to_last` lands on the second-to-last key.
struct SkipLast(Box<dyn RawIterator>);

impl RawIterator for SkipLast {
    fn seek_to_first(&mut self) {
        self.0.seek_to_first()
    }
    fn seek_to_last(&mut self) {
        self.0.seek_to_last();
        if self.0.valid() {
            self.0.prev();
        }
    }
    fn seek(&mut self, key: &[u8]) {
        self.0.seek(key)
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        self.0.seek_for_prev(key)
    }
    fn next(&mut self) {
        self.0.next()
    }
    fn prev(&mut self) {
        self.0.prev()
    }
    fn valid(&self) -> bool {
        self.0.valid()
    }
    fn key(&self) -> &[u8] {
        self.0.key()
    }
    fn value(&self) -> &[u8] {
        self.0.value()
    }
    fn status(&self) -> aidb::Result<()> {
        self.0.status()
    }
}

impl Harness for Broken {
    fn backend(&self) -> &dyn StorageBackend {
        self
    }
}

fn suite_fails_on(bug: Bug) -> bool {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&ops_strategy(200), |ops| {
            let mut h = Broken {
                inner: Arc::new(model::reference()),
                bug,
            };
            run_ops(&mut h, &ops).map_err(TestCaseError::fail)
        })
        .is_err()
}

#[test]
fn a_delete_that_does_nothing_fails_the_suite() {
    assert!(suite_fails_on(Bug::DeleteIgnored));
}

#[test]
fn reverse_iteration_skipping_a_key_fails_the_suite() {
    assert!(suite_fails_on(Bug::ReverseSkipsLast));
}

#[test]
fn a_snapshot_that_is_not_frozen_fails_the_suite() {
    assert!(suite_fails_on(Bug::SnapshotNotFrozen));
}

#[test]
fn a_range_delete_that_takes_its_end_fails_the_suite() {
    assert!(suite_fails_on(Bug::RangeDeleteTakesTheEnd));
}

#[test]
fn a_merge_in_the_wrong_order_fails_the_suite() {
    assert!(suite_fails_on(Bug::MergeReversed));
}

#[test]
fn scan_through_the_trait_sees_a_range() {
    let b = model::reference();
    for k in ["a", "b", "c"] {
        b.put(k.as_bytes(), b"").unwrap();
    }
    assert_eq!(b.scan(KeyRange::new("b"..)).count(), 2);
}

/// A backend with column families and one deliberate bug in them.
struct BrokenFamilies {
    inner: MemoryBackend,
    bug: CfBug,
    /// Families "dropped" under `CfBug::DropKeepsData`: hidden, not gone.
    hidden: HashMap<String, ColumnFamily>,
}

#[derive(Clone, Copy)]
enum CfBug {
    /// A batch writes its column family operations to the default family.
    BatchIgnoresFamily,
    /// A drop only hides the family: its handles go on working and a
    /// family created with its name gets its data back.
    DropKeepsData,
    /// Snapshot reads of a column family see later writes.
    SnapshotFamilyNotFrozen,
    /// Reopening loses every family but the default one.
    ReopenForgetsFamilies,
}

impl Harness for BrokenFamilies {
    fn backend(&self) -> &dyn StorageBackend {
        &self.inner
    }
    fn reopen(&mut self) -> aidb::Result<()> {
        if let CfBug::ReopenForgetsFamilies = self.bug {
            for name in self.inner.column_family_names() {
                if name != "default" {
                    self.inner.drop_column_family(&name)?;
                }
            }
        }
        Ok(())
    }
}

impl CfHarness for BrokenFamilies {
    type Cf = ColumnFamily;
    type Snap = Box<dyn Snapshot>;
    fn default_cf(&self) -> ColumnFamily {
        self.inner.default_cf()
    }
    fn create_cf(&mut self, name: &str) -> aidb::Result<ColumnFamily> {
        match self.hidden.remove(name) {
            Some(cf) => Ok(cf),
            None => self.inner.create_cf(name),
        }
    }
    fn drop_cf(&mut self, name: &str) -> aidb::Result<()> {
        match (self.bug, self.cf(name)) {
            (CfBug::DropKeepsData, Some(cf)) if name != "default" => {
                self.hidden.insert(name.to_string(), cf);
                Ok(())
            }
            _ => self.inner.drop_cf(name),
        }
    }
    fn cf(&self, name: &str) -> Option<ColumnFamily> {
        if self.hidden.contains_key(name) {
            return None;
        }
        self.inner.cf(name)
    }
    fn cf_names(&self) -> Vec<String> {
        let mut names = self.inner.cf_names();
        names.retain(|n| !self.hidden.contains_key(n));
        names
    }
    fn put_cf(&self, cf: &ColumnFamily, key: &[u8], value: &[u8]) -> aidb::Result<()> {
        self.inner.put_cf(cf, key, value)
    }
    fn delete_cf(&self, cf: &ColumnFamily, key: &[u8]) -> aidb::Result<()> {
        self.inner.delete_cf(cf, key)
    }
    fn get_cf(&self, cf: &ColumnFamily, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        self.inner.get_cf(cf, key)
    }
    fn scan_cf(&self, cf: &ColumnFamily, range: KeyRange) -> DbIterator {
        self.inner.scan_cf(cf, range)
    }
    fn flush_cf(&self, cf: &ColumnFamily) -> aidb::Result<()> {
        self.inner.flush_cf(cf)
    }
    fn compact_cf(&self, cf: &ColumnFamily, range: KeyRange) -> aidb::Result<()> {
        self.inner.compact_cf(cf, range)
    }
    fn write_cf(&self, ops: &[(Option<&ColumnFamily>, &BatchOp)]) -> aidb::Result<()> {
        match self.bug {
            CfBug::BatchIgnoresFamily => {
                let ops: Vec<_> = ops.iter().map(|(_, op)| (None, *op)).collect();
                self.inner.write_cf(&ops)
            }
            _ => self.inner.write_cf(ops),
        }
    }
    fn snapshot_cf(&self) -> aidb::Result<Box<dyn Snapshot>> {
        let snap = self.inner.snapshot_cf()?;
        match self.bug {
            CfBug::SnapshotFamilyNotFrozen => Ok(Box::new(LiveFamilies(snap))),
            _ => Ok(snap),
        }
    }
    fn snapshot_base(snap: &Box<dyn Snapshot>) -> &dyn Snapshot {
        &**snap
    }
    fn snapshot_get_cf(
        snap: &Box<dyn Snapshot>,
        cf: &ColumnFamily,
        key: &[u8],
    ) -> aidb::Result<Option<Vec<u8>>> {
        snap.get_cf(cf, key)
    }
    fn snapshot_scan_cf(
        snap: &Box<dyn Snapshot>,
        cf: &ColumnFamily,
        range: KeyRange,
    ) -> DbIterator {
        snap.scan_cf(cf, range)
    }
    fn reopen_with_families(&mut self, names: &[&str]) -> aidb::Result<()> {
        self.reopen()?;
        self.inner.reopen_with_families(names)
    }
}

/// A snapshot whose default family is frozen but whose other families
/// are read live through the handle.
struct LiveFamilies(Box<dyn Snapshot>);

impl Snapshot for LiveFamilies {
    fn get(&self, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        self.0.raw_iterator()
    }
    fn get_cf(&self, cf: &ColumnFamily, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        cf.get(key)
    }
    fn scan_cf(&self, cf: &ColumnFamily, range: KeyRange) -> DbIterator {
        cf.range(range)
    }
}

fn family_suite_fails_on(bug: CfBug) -> bool {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&cf_ops_strategy(200), |ops| {
            let mut h = BrokenFamilies {
                inner: model::reference(),
                bug,
                hidden: HashMap::new(),
            };
            run_cf_ops(&mut h, &ops).map_err(TestCaseError::fail)
        })
        .is_err()
}

#[test]
fn a_batch_that_ignores_column_families_fails_the_suite() {
    assert!(family_suite_fails_on(CfBug::BatchIgnoresFamily));
}

#[test]
fn a_drop_that_keeps_the_data_fails_the_suite() {
    assert!(family_suite_fails_on(CfBug::DropKeepsData));
}

#[test]
fn a_snapshot_whose_families_are_not_frozen_fails_the_suite() {
    assert!(family_suite_fails_on(CfBug::SnapshotFamilyNotFrozen));
}

#[test]
fn a_reopen_that_loses_families_fails_the_suite() {
    assert!(family_suite_fails_on(CfBug::ReopenForgetsFamilies));
}

/// `MemoryBackend`'s snapshots resolve a handle among the live families,
/// as `DB`'s do: through a snapshot, a family created after it is empty,
/// and a dropped family's handle fails (they used to answer an error and
/// the old data; found by the column-family suite).
#[test]
fn memory_snapshots_resolve_handles_among_live_families() {
    let mem = model::reference();
    let snap = mem.snapshot().unwrap();
    let b = mem.create_column_family("b", Default::default()).unwrap();
    b.put("k", "v").unwrap();
    assert_eq!(snap.get_cf(&b, b"k").ok(), Some(None));
    assert_eq!(snap.scan_cf(&b, KeyRange::all()).count(), 0);

    let a = mem.create_column_family("a", Default::default()).unwrap();
    a.put("k", "v").unwrap();
    let snap = mem.snapshot().unwrap();
    mem.drop_column_family("a").unwrap();
    assert!(snap.get_cf(&a, b"k").is_err());
    assert!(snap.scan_cf(&a, KeyRange::all()).next().unwrap().is_err());
}
