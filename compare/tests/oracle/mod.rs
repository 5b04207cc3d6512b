//! `RocksDbOracle`: RocksDB behind AiDb's `StorageBackend` trait, used as
//! the reference the engine is compared with; and its column families
//! behind handles that behave as AiDb's do (`OracleCf`).

#![allow(dead_code)]

use aidb::{BatchOp, DbIterator, KeyRange, RawIterator, Snapshot, StorageBackend, WriteBatch};
use rocksdb::{
    BoundColumnFamily, DBRawIteratorWithThreadMode, DBWithThreadMode, MultiThreaded, ReadOptions,
    SnapshotWithThreadMode,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// RocksDB with column families created and dropped through `&self`.
type Rocks = DBWithThreadMode<MultiThreaded>;
type RocksSnapshot = SnapshotWithThreadMode<'static, Rocks>;
type RocksIterator = DBRawIteratorWithThreadMode<'static, Rocks>;
type RocksFamily = Arc<BoundColumnFamily<'static>>;

fn err(e: rocksdb::Error) -> aidb::Error {
    aidb::Error::InvalidArgument(format!("rocksdb: {e}"))
}

/// The live column families by name, with the generation their handles
/// carry. A handle whose generation is not its name's current one belongs
/// to a dropped family (or to the database before a reopen).
type Live = Arc<Mutex<HashMap<String, u64>>>;

/// A column family handle of the oracle. RocksDB itself lets a handle of a
/// dropped family go on reading (and a stale RocksDB handle cannot be kept
/// across a reopen); the oracle answers `InvalidArgument` instead, as AiDb
/// does, and reads the family RocksDB has under the name otherwise.
#[derive(Clone, Debug)]
pub struct OracleCf {
    name: Arc<str>,
    generation: u64,
}

impl OracleCf {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn dropped(&self) -> aidb::Error {
        aidb::Error::InvalidArgument(format!("column family {:?} was dropped", self.name))
    }
}

fn is_live(live: &Live, cf: &OracleCf) -> bool {
    live.lock().unwrap().get(&*cf.name) == Some(&cf.generation)
}

/// RocksDB's handle of the family `cf` names, when `cf` is live.
fn family(db: &Arc<Rocks>, live: &Live, cf: &OracleCf) -> aidb::Result<RocksFamily> {
    if !is_live(live, cf) {
        return Err(cf.dropped());
    }
    let handle = db
        .cf_handle(&cf.name)
        .ok_or_else(|| aidb::Error::Internal(format!("rocksdb has no family {:?}", cf.name)))?;
    // SAFETY: the handle borrows the database, which `db` keeps alive; every
    // holder of the 'static handle (OracleIterator) also holds `db` and drops
    // the handle first.
    Ok(unsafe { std::mem::transmute::<Arc<BoundColumnFamily<'_>>, RocksFamily>(handle) })
}

/// One write of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Write<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
    Merge(&'a [u8], &'a [u8]),
    /// `start..end`; an empty or backwards range deletes nothing (as in
    /// AiDb; RocksDB may refuse a backwards one, so it is left out).
    DeleteRange(&'a [u8], &'a [u8]),
}

/// One operation of a batch across families: the family (none: the
/// default one) and the write.
pub type WriteOp<'a> = (Option<&'a OracleCf>, Write<'a>);

/// The merge operator on RocksDB's side: the model suite's `Concat`
/// (`+`-separated append), which is associative.
fn concat(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (i, part) in existing.into_iter().chain(operands).enumerate() {
        if i > 0 {
            out.push(b'+');
        }
        out.extend_from_slice(part);
    }
    Some(out)
}

/// Adds `w` to RocksDB batch `b`, in family `f` (none: the default one).
fn add_write(b: &mut rocksdb::WriteBatch, f: Option<&RocksFamily>, w: Write<'_>) {
    match (f, w) {
        (None, Write::Put(k, v)) => b.put(k, v),
        (None, Write::Delete(k)) => b.delete(k),
        (None, Write::Merge(k, v)) => b.merge(k, v),
        (None, Write::DeleteRange(s, e)) if s < e => b.delete_range(s, e),
        (Some(f), Write::Put(k, v)) => b.put_cf(f, k, v),
        (Some(f), Write::Delete(k)) => b.delete_cf(f, k),
        (Some(f), Write::Merge(k, v)) => b.merge_cf(f, k, v),
        (Some(f), Write::DeleteRange(s, e)) if s < e => b.delete_range_cf(f, s, e),
        (_, Write::DeleteRange(..)) => {}
    }
}

/// A RocksDB database adapted to `StorageBackend`.
pub struct RocksDbOracle {
    db: Option<Arc<Rocks>>,
    path: PathBuf,
    live: Live,
    next_generation: u64,
}

impl RocksDbOracle {
    pub fn open(path: &Path) -> Result<RocksDbOracle, rocksdb::Error> {
        let mut o = RocksDbOracle {
            db: None,
            path: path.to_path_buf(),
            live: Live::default(),
            next_generation: 0,
        };
        o.open_db(&[])?;
        Ok(o)
    }

    fn options() -> rocksdb::Options {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_merge_operator_associative("concat", concat);
        opts
    }

    /// Opens the database with every family it has (RocksDB wants them all
    /// named) and `extra` ones, created when missing. Handles from before
    /// are stale from now on.
    fn open_db(&mut self, extra: &[&str]) -> Result<(), rocksdb::Error> {
        let mut names = Rocks::list_cf(&Self::options(), &self.path)
            .unwrap_or_else(|_| vec!["default".to_string()]);
        for name in extra {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        let descriptors = names
            .iter()
            .map(|n| rocksdb::ColumnFamilyDescriptor::new(n, Self::options()));
        let db = Rocks::open_cf_descriptors(&Self::options(), &self.path, descriptors)?;
        let mut live = self.live.lock().unwrap();
        live.clear();
        for name in names {
            self.next_generation += 1;
            live.insert(name, self.next_generation);
        }
        drop(live);
        self.db = Some(Arc::new(db));
        Ok(())
    }

    fn db(&self) -> &Arc<Rocks> {
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
        self.reopen_with(&[])
    }

    /// Reopens, creating the families `extra` names when missing.
    pub fn reopen_with(&mut self, extra: &[&str]) -> aidb::Result<()> {
        let db = self.db.take().expect("oracle is open");
        let db = Arc::try_unwrap(db).map_err(|_| {
            aidb::Error::InvalidArgument("rocksdb: snapshots still open at reopen".into())
        })?;
        drop(db);
        self.open_db(extra).map_err(err)
    }

    fn handle(&self, name: &str) -> Option<OracleCf> {
        let generation = *self.live.lock().unwrap().get(name)?;
        Some(OracleCf {
            name: name.into(),
            generation,
        })
    }

    pub fn default_cf(&self) -> OracleCf {
        self.handle("default").expect("the default family")
    }

    /// The live family called `name`.
    pub fn cf(&self, name: &str) -> Option<OracleCf> {
        self.handle(name)
    }

    pub fn cf_names(&self) -> Vec<String> {
        self.live.lock().unwrap().keys().cloned().collect()
    }

    /// Creates a family; names are checked as AiDb checks them (RocksDB
    /// takes an empty one).
    pub fn create_cf(&mut self, name: &str) -> aidb::Result<OracleCf> {
        if name.is_empty() || name.len() > 255 {
            return Err(aidb::Error::InvalidArgument(format!(
                "bad column family name {name:?}"
            )));
        }
        self.db().create_cf(name, &Self::options()).map_err(err)?;
        self.next_generation += 1;
        self.live
            .lock()
            .unwrap()
            .insert(name.to_string(), self.next_generation);
        Ok(self.handle(name).expect("created"))
    }

    /// Drops a family. The binding forgets the handle before RocksDB
    /// refuses to drop "default", so "default" is refused here.
    pub fn drop_cf(&mut self, name: &str) -> aidb::Result<()> {
        if name == "default" || self.handle(name).is_none() {
            return Err(aidb::Error::InvalidArgument(format!(
                "cannot drop column family {name:?}"
            )));
        }
        self.db().drop_cf(name).map_err(err)?;
        self.live.lock().unwrap().remove(name);
        Ok(())
    }

    fn family(&self, cf: &OracleCf) -> aidb::Result<RocksFamily> {
        family(self.db(), &self.live, cf)
    }

    pub fn put_cf(&self, cf: &OracleCf, key: &[u8], value: &[u8]) -> aidb::Result<()> {
        let f = self.family(cf)?;
        self.db().put_cf(&f, key, value).map_err(err)
    }

    pub fn delete_cf(&self, cf: &OracleCf, key: &[u8]) -> aidb::Result<()> {
        let f = self.family(cf)?;
        self.db().delete_cf(&f, key).map_err(err)
    }

    pub fn get_cf(&self, cf: &OracleCf, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        let f = self.family(cf)?;
        self.db().get_cf(&f, key).map_err(err)
    }

    pub fn scan_cf(&self, cf: &OracleCf, range: KeyRange) -> DbIterator {
        let raw: Box<dyn RawIterator> = match self.family(cf) {
            Ok(f) => Box::new(OracleIterator::new(self.db().clone(), None, Some(f))),
            Err(e) => Box::new(FailedIterator(e.to_string())),
        };
        DbIterator::new(raw, range)
    }

    pub fn flush_cf(&self, cf: &OracleCf) -> aidb::Result<()> {
        let f = self.family(cf)?;
        self.db().flush_cf(&f).map_err(err)
    }

    /// Compacts the whole family (the range matters only to AiDb).
    pub fn compact_cf(&self, cf: &OracleCf) -> aidb::Result<()> {
        let f = self.family(cf)?;
        self.db().compact_range_cf(&f, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Writes one batch of `(family, write)`: no family means the default
    /// one. A stale handle fails the whole batch.
    pub fn write_cf(&self, ops: &[WriteOp<'_>]) -> aidb::Result<()> {
        let mut families = Vec::new();
        for (cf, _) in ops {
            families.push(match cf {
                Some(cf) => Some(self.family(cf)?),
                None => None,
            });
        }
        let mut b = rocksdb::WriteBatch::default();
        for ((_, w), f) in ops.iter().zip(&families) {
            add_write(&mut b, f.as_ref(), *w);
        }
        self.db().write(b).map_err(err)
    }

    /// A snapshot of every family.
    pub fn snapshot_cf(&self) -> OracleSnapshot {
        OracleSnapshot::new(self.db().clone(), self.live.clone())
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
            let w = match op {
                BatchOp::Put { key, value } => Write::Put(key, value),
                BatchOp::Delete { key } => Write::Delete(key),
                BatchOp::Merge { key, operand } => Write::Merge(key, operand),
                BatchOp::DeleteRange { start, end } => Write::DeleteRange(start, end),
                other => {
                    return Err(aidb::Error::InvalidArgument(format!(
                        "the oracle does not know {other:?}"
                    )))
                }
            };
            add_write(&mut b, None, w);
        }
        self.db().write(b).map_err(err)
    }

    fn snapshot(&self) -> aidb::Result<Box<dyn Snapshot>> {
        Ok(Box::new(self.snapshot_cf()))
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        Box::new(OracleIterator::new(self.db().clone(), None, None))
    }
}

/// A RocksDB snapshot that owns (a reference to) its database.
pub struct OracleSnapshot {
    // Field order is drop order: the snapshot goes before the database.
    snapshot: Arc<RocksSnapshot>,
    db: Arc<Rocks>,
    live: Live,
}

impl OracleSnapshot {
    fn new(db: Arc<Rocks>, live: Live) -> OracleSnapshot {
        let snapshot = db.snapshot();
        // SAFETY: the snapshot borrows the database, which `db` keeps alive
        // (in the Arc's heap allocation, which never moves) for as long as
        // this struct, and the snapshot field is dropped first. Iterators
        // made from it hold clones of both Arcs.
        let snapshot: RocksSnapshot = unsafe { std::mem::transmute(snapshot) };
        OracleSnapshot {
            snapshot: Arc::new(snapshot),
            db,
            live,
        }
    }

    /// The value of `key` in family `cf` as of the snapshot.
    pub fn get_in(&self, cf: &OracleCf, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
        let f = family(&self.db, &self.live, cf)?;
        self.snapshot.get_cf(&f, key).map_err(err)
    }

    /// The pairs of family `cf` inside `range` as of the snapshot.
    pub fn scan_in(&self, cf: &OracleCf, range: KeyRange) -> DbIterator {
        let raw: Box<dyn RawIterator> = match family(&self.db, &self.live, cf) {
            Ok(f) => Box::new(OracleIterator::new(
                self.db.clone(),
                Some(self.snapshot.clone()),
                Some(f),
            )),
            Err(e) => Box::new(FailedIterator(e.to_string())),
        };
        DbIterator::new(raw, range)
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
            None,
        ))
    }
}

/// A RocksDB raw iterator that owns its database (and snapshot, and
/// column family handle).
struct OracleIterator {
    // Field order is drop order: iterator, family handle, snapshot,
    // database.
    iter: RocksIterator,
    _family: Option<RocksFamily>,
    _snapshot: Option<Arc<RocksSnapshot>>,
    _db: Arc<Rocks>,
}

// SAFETY: a RocksDB iterator may be used from any one thread at a time; the
// trait requires Send, and this struct is only ever used by one owner (the
// family handle's Arc is never shared beyond it).
unsafe impl Send for OracleIterator {}

impl OracleIterator {
    fn new(
        db: Arc<Rocks>,
        snapshot: Option<Arc<RocksSnapshot>>,
        family: Option<RocksFamily>,
    ) -> OracleIterator {
        let mut ro = ReadOptions::default();
        if let Some(s) = &snapshot {
            ro.set_snapshot(s);
        }
        let iter = match &family {
            Some(f) => db.raw_iterator_cf_opt(f, ro),
            None => db.raw_iterator_opt(ro),
        };
        // SAFETY: as for OracleSnapshot: `db` (and the snapshot the read
        // options point to, and the family handle) outlive the iterator,
        // which is dropped first.
        let iter: RocksIterator = unsafe { std::mem::transmute(iter) };
        OracleIterator {
            iter,
            _family: family,
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

/// A cursor over nothing that reports an error (a stale handle's).
struct FailedIterator(String);

impl RawIterator for FailedIterator {
    fn seek_to_first(&mut self) {}
    fn seek_to_last(&mut self) {}
    fn seek(&mut self, _key: &[u8]) {}
    fn seek_for_prev(&mut self, _key: &[u8]) {}
    fn next(&mut self) {}
    fn prev(&mut self) {}
    fn valid(&self) -> bool {
        false
    }
    fn key(&self) -> &[u8] {
        &[]
    }
    fn value(&self) -> &[u8] {
        &[]
    }
    fn status(&self) -> aidb::Result<()> {
        Err(aidb::Error::InvalidArgument(self.0.clone()))
    }
}
