//! `RocksDbOracle`: RocksDB behind AiDb's `StorageBackend` trait, used as
//! the reference the engine is compared with.

#![allow(dead_code)]

use aidb::{BatchOp, RawIterator, Snapshot, StorageBackend, WriteBatch};
use rocksdb::{DBRawIterator, ReadOptions, SnapshotWithThreadMode, DB};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn err(e: rocksdb::Error) -> aidb::Error {
    aidb::Error::InvalidArgument(format!("rocksdb: {e}"))
}

/// A RocksDB database adapted to `StorageBackend`.
pub struct RocksDbOracle {
    db: Option<Arc<DB>>,
    path: PathBuf,
}

impl RocksDbOracle {
    pub fn open(path: &Path) -> Result<RocksDbOracle, rocksdb::Error> {
        let mut o = RocksDbOracle {
            db: None,
            path: path.to_path_buf(),
        };
        o.db = Some(Arc::new(DB::open(&Self::options(), path)?));
        Ok(o)
    }

    fn options() -> rocksdb::Options {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts
    }

    fn db(&self) -> &Arc<DB> {
        self.db.as_ref().expect("oracle is open")
    }

    pub fn flush(&self) -> aidb::Result<()> {
        self.db().flush().map_err(err)
    }

    pub fn compact(&self) -> aidb::Result<()> {
        self.db().compact_range(None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Closes and reopens the database. Every snapshot and iterator must be
    /// gone (they hold the database open).
    pub fn reopen(&mut self) -> aidb::Result<()> {
        let db = self.db.take().expect("oracle is open");
        let db = Arc::try_unwrap(db).map_err(|_| {
            aidb::Error::InvalidArgument("rocksdb: snapshots still open at reopen".into())
        })?;
        drop(db);
        self.db = Some(Arc::new(
            DB::open(&Self::options(), &self.path).map_err(err)?,
        ));
        Ok(())
    }
}

impl StorageBackend for RocksDbOracle {
    fn put(&self, key: &[u8], value: &[u8]) -> aidb::Result<()> {
        self.db().put(key, value).map_err(err)
    }

    fn get(&self, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        self.db().get(key).map_err(err)
    }

    fn delete(&self, key: &[u8]) -> aidb::Result<()> {
        self.db().delete(key).map_err(err)
    }

    fn write_batch(&self, batch: WriteBatch) -> aidb::Result<()> {
        let mut b = rocksdb::WriteBatch::default();
        for op in &batch {
            match op {
                BatchOp::Put { key, value } => b.put(key, value),
                BatchOp::Delete { key } => b.delete(key),
            }
        }
        self.db().write(b).map_err(err)
    }

    fn snapshot(&self) -> aidb::Result<Box<dyn Snapshot>> {
        Ok(Box::new(OracleSnapshot::new(self.db().clone())))
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        Box::new(OracleIterator::new(self.db().clone(), None))
    }
}

/// A RocksDB snapshot that owns (a reference to) its database.
struct OracleSnapshot {
    // Field order is drop order: the snapshot goes before the database.
    snapshot: Arc<SnapshotWithThreadMode<'static, DB>>,
    db: Arc<DB>,
}

impl OracleSnapshot {
    fn new(db: Arc<DB>) -> OracleSnapshot {
        let snapshot = db.snapshot();
        // SAFETY: the snapshot borrows the database, which `db` keeps alive
        // (in the Arc's heap allocation, which never moves) for as long as
        // this struct, and the snapshot field is dropped first. Iterators
        // made from it hold clones of both Arcs.
        let snapshot: SnapshotWithThreadMode<'static, DB> =
            unsafe { std::mem::transmute(snapshot) };
        OracleSnapshot {
            snapshot: Arc::new(snapshot),
            db,
        }
    }
}

impl Snapshot for OracleSnapshot {
    fn get(&self, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        self.snapshot.get(key).map_err(err)
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        Box::new(OracleIterator::new(
            self.db.clone(),
            Some(self.snapshot.clone()),
        ))
    }
}

/// A RocksDB raw iterator that owns its database (and snapshot).
struct OracleIterator {
    // Field order is drop order: iterator, then snapshot, then database.
    iter: DBRawIterator<'static>,
    _snapshot: Option<Arc<SnapshotWithThreadMode<'static, DB>>>,
    _db: Arc<DB>,
}

// SAFETY: a RocksDB iterator may be used from any one thread at a time; the
// trait requires Send, and this struct is only ever used by one owner.
unsafe impl Send for OracleIterator {}

impl OracleIterator {
    fn new(
        db: Arc<DB>,
        snapshot: Option<Arc<SnapshotWithThreadMode<'static, DB>>>,
    ) -> OracleIterator {
        let mut ro = ReadOptions::default();
        if let Some(s) = &snapshot {
            ro.set_snapshot(s);
        }
        let iter = db.raw_iterator_opt(ro);
        // SAFETY: as for OracleSnapshot: `db` (and the snapshot the read
        // options point to) outlive the iterator, which is dropped first.
        let iter: DBRawIterator<'static> = unsafe { std::mem::transmute(iter) };
        OracleIterator {
            iter,
            _snapshot: snapshot,
            _db: db,
        }
    }
}

impl RawIterator for OracleIterator {
    fn seek_to_first(&mut self) {
        self.iter.seek_to_first()
    }
    fn seek_to_last(&mut self) {
        self.iter.seek_to_last()
    }
    fn seek(&mut self, key: &[u8]) {
        self.iter.seek(key)
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        self.iter.seek_for_prev(key)
    }
    fn next(&mut self) {
        self.iter.next()
    }
    fn prev(&mut self) {
        self.iter.prev()
    }
    fn valid(&self) -> bool {
        self.iter.valid()
    }
    fn key(&self) -> &[u8] {
        self.iter.key().unwrap_or(&[])
    }
    fn value(&self) -> &[u8] {
        self.iter.value().unwrap_or(&[])
    }
    fn status(&self) -> aidb::Result<()> {
        self.iter.status().map_err(err)
    }
}
