//! The [`StorageBackend`] trait every engine implements, and the in-memory
//! reference backend.

pub(crate) mod memory;

pub use memory::MemoryBackend;

use crate::batch::WriteBatch;
use crate::column_family::ColumnFamily;
use crate::error::Result;
use crate::iterator::{DbIterator, KeyRange, RawIterator};

/// Boxed iterator over `(key, value)` pairs, as [`StorageBackend::iter`]
/// returns it.
pub type KvIter = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>>;

/// A key-value store: the interface shared by [`DB`](crate::DB),
/// [`MemoryBackend`] and any other engine (the test suite runs the same
/// checks against all of them).
///
/// The trait is object safe; use `Box<dyn StorageBackend>` to pick a backend
/// at run time. [`DB`](crate::DB) also has generic inherent methods
/// (`db.put("k", "v")`) that are more convenient when the type is known.
pub trait StorageBackend: Send + Sync {
    /// Sets `key` to `value`.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// The value of `key`, or `None`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Removes `key` (not an error when it is absent).
    fn delete(&self, key: &[u8]) -> Result<()>;
    /// Applies every operation of `batch` atomically.
    fn write_batch(&self, batch: WriteBatch) -> Result<()>;
    /// Merges `operand` into `key` with the backend's merge operator.
    fn merge(&self, key: &[u8], operand: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.merge(key, operand);
        self.write_batch(batch)
    }
    /// Removes every key in `range` (which needs an end).
    fn delete_range(&self, range: KeyRange) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_range(range);
        self.write_batch(batch)
    }
    /// All pairs in ascending key order, as of this call.
    fn iter(&self) -> KvIter {
        Box::new(self.scan(KeyRange::all()))
    }
    /// A consistent read-only view as of this call.
    fn snapshot(&self) -> Result<Box<dyn Snapshot>>;
    /// A cursor over the current state, for seeks and both directions.
    fn raw_iterator(&self) -> Box<dyn RawIterator>;
    /// The pairs inside `range`; `.rev()` gives them in descending order.
    fn scan(&self, range: KeyRange) -> DbIterator {
        DbIterator::new(self.raw_iterator(), range)
    }
}

/// A frozen, read-only view of a backend. Reads through it see exactly the
/// state at the moment it was taken, whatever is written afterwards.
/// Dropping it releases what it pins.
pub trait Snapshot: Send + Sync {
    /// The value of `key` in the snapshot.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// All pairs of the snapshot in ascending key order.
    fn iter(&self) -> KvIter {
        Box::new(self.scan(KeyRange::all()))
    }
    /// A cursor over the snapshot.
    fn raw_iterator(&self) -> Box<dyn RawIterator>;
    /// The value of `key` in column family `cf` in the snapshot. Backends
    /// without column families answer `InvalidArgument`.
    fn get_cf(&self, cf: &ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = key;
        Err(cf.dropped_error())
    }
    /// A cursor over column family `cf` in the snapshot.
    fn raw_iterator_cf(&self, cf: &ColumnFamily) -> Box<dyn RawIterator> {
        Box::new(crate::db::FailedIterator(cf.dropped_error()))
    }
    /// The pairs of column family `cf` inside `range` in the snapshot.
    fn scan_cf(&self, cf: &ColumnFamily, range: KeyRange) -> DbIterator {
        DbIterator::new(self.raw_iterator_cf(cf), range)
    }
    /// The snapshot's pairs inside `range`.
    fn scan(&self, range: KeyRange) -> DbIterator {
        DbIterator::new(self.raw_iterator(), range)
    }
}
