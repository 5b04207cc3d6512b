//! The model suite against `MemoryBackend` itself, and proof that the suite
//! catches broken backends.

mod model;

use aidb::{KeyRange, MemoryBackend, RawIterator, Snapshot, StorageBackend, WriteBatch};
use model::{cases, ops_strategy, run_ops, Harness};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::Arc;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn memory_backend_matches_the_model(ops in ops_strategy(200)) {
        let mut h = MemoryBackend::new();
        run_ops(&mut h, &ops).map_err(TestCaseError::fail)?;
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
                inner: Arc::new(MemoryBackend::new()),
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
fn scan_through_the_trait_sees_a_range() {
    let b = MemoryBackend::new();
    for k in ["a", "b", "c"] {
        b.put(k.as_bytes(), b"").unwrap();
    }
    assert_eq!(b.scan(KeyRange::new("b"..)).count(), 2);
}
