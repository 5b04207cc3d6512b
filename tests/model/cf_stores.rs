//! The stores of the column-family model suite: AiDb's `DB` and the
//! in-memory reference backend, each behind [`CfHarness`], and the family
//! options the suite gives them.

use super::{BatchOp, CfHarness, DbHarness};
use aidb::{
    ColumnFamily, ColumnFamilyOptions, Compression, DbIterator, KeyRange, MemoryBackend, Options,
    Snapshot, StorageBackend, WriteBatch, DB,
};

/// Options of family `name` in a database opened with `opts`: the
/// database's own per-family settings, with compression and bloom filters
/// switched for "b" so that the families differ.
fn family_options(opts: &Options, name: &str) -> ColumnFamilyOptions {
    let mut o = opts.default_family_options();
    if name == "b" {
        o.compression = match o.compression {
            Compression::None => Compression::Lz4,
            _ => Compression::None,
        };
        o.bloom_bits_per_key = if o.bloom_bits_per_key == 0 { 10 } else { 0 };
    }
    o
}

/// Options given to family `name` at a reopen that lists it: Snappy and
/// twice the block size (recorded from then on).
fn reopen_family_options(opts: &Options, name: &str) -> ColumnFamilyOptions {
    let mut o = family_options(opts, name);
    o.compression = Compression::Snappy;
    o.block_size *= 2;
    o
}

/// A batch of `ops` for an AiDb backend.
fn aidb_batch(ops: &[(Option<&ColumnFamily>, &BatchOp)]) -> WriteBatch {
    let mut b = WriteBatch::new();
    for (cf, op) in ops {
        match (cf, op) {
            (None, BatchOp::Put(k, v)) => b.put(&k.0, &v.0),
            (None, BatchOp::Delete(k)) => b.delete(&k.0),
            (Some(cf), BatchOp::Put(k, v)) => b.put_cf(cf, &k.0, &v.0),
            (Some(cf), BatchOp::Delete(k)) => b.delete_cf(cf, &k.0),
            (None, BatchOp::Merge(k, v)) => b.merge(&k.0, &v.0),
            (Some(cf), BatchOp::Merge(k, v)) => b.merge_cf(cf, &k.0, &v.0),
            (None, BatchOp::DeleteRange(x, y)) => b.delete_range(x.0.clone()..y.0.clone()),
            (Some(cf), BatchOp::DeleteRange(x, y)) => {
                b.delete_range_cf(cf, x.0.clone()..y.0.clone())
            }
        };
    }
    b
}

/// The handle methods, the same for every AiDb backend.
macro_rules! aidb_handle_methods {
    () => {
        type Cf = ColumnFamily;
        type Snap = Box<dyn Snapshot>;
        fn put_cf(&self, cf: &ColumnFamily, key: &[u8], value: &[u8]) -> aidb::Result<()> {
            cf.put(key, value)
        }
        fn delete_cf(&self, cf: &ColumnFamily, key: &[u8]) -> aidb::Result<()> {
            cf.delete(key)
        }
        fn get_cf(&self, cf: &ColumnFamily, key: &[u8]) -> aidb::Result<Option<Vec<u8>>> {
            cf.get(key)
        }
        fn scan_cf(&self, cf: &ColumnFamily, range: KeyRange) -> DbIterator {
            cf.range(range)
        }
        fn flush_cf(&self, cf: &ColumnFamily) -> aidb::Result<()> {
            cf.flush()
        }
        fn compact_cf(&self, cf: &ColumnFamily, range: KeyRange) -> aidb::Result<()> {
            cf.compact_range(range)
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
    };
}

impl CfHarness for DbHarness {
    aidb_handle_methods!();

    fn default_cf(&self) -> ColumnFamily {
        self.db().default_column_family()
    }
    fn create_cf(&mut self, name: &str) -> aidb::Result<ColumnFamily> {
        self.db()
            .create_column_family(name, family_options(&self.opts, name))
    }
    fn drop_cf(&mut self, name: &str) -> aidb::Result<()> {
        self.db().drop_column_family(name)
    }
    fn cf(&self, name: &str) -> Option<ColumnFamily> {
        self.db().column_family(name)
    }
    fn cf_names(&self) -> Vec<String> {
        self.db().column_family_names()
    }
    fn write_cf(&self, ops: &[(Option<&ColumnFamily>, &BatchOp)]) -> aidb::Result<()> {
        self.db().write(aidb_batch(ops))
    }
    fn snapshot_cf(&self) -> aidb::Result<Box<dyn Snapshot>> {
        StorageBackend::snapshot(self.db())
    }
    fn reopen_with_families(&mut self, names: &[&str]) -> aidb::Result<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        let mut opts = self.opts.clone();
        opts.column_families = names
            .iter()
            .map(|n| (n.to_string(), reopen_family_options(&self.opts, n)))
            .collect();
        self.db = Some(DB::open_with(opts)?);
        Ok(())
    }
    fn crash_reopen(&mut self) -> aidb::Result<()> {
        DbHarness::crash_reopen(self)
    }
}

impl CfHarness for MemoryBackend {
    aidb_handle_methods!();

    fn default_cf(&self) -> ColumnFamily {
        self.default_column_family()
    }
    fn create_cf(&mut self, name: &str) -> aidb::Result<ColumnFamily> {
        self.create_column_family(name, ColumnFamilyOptions::default())
    }
    fn drop_cf(&mut self, name: &str) -> aidb::Result<()> {
        self.drop_column_family(name)
    }
    fn cf(&self, name: &str) -> Option<ColumnFamily> {
        self.column_family(name)
    }
    fn cf_names(&self) -> Vec<String> {
        self.column_family_names()
    }
    fn write_cf(&self, ops: &[(Option<&ColumnFamily>, &BatchOp)]) -> aidb::Result<()> {
        self.write_batch(aidb_batch(ops))
    }
    fn snapshot_cf(&self) -> aidb::Result<Box<dyn Snapshot>> {
        self.snapshot()
    }
    fn reopen_with_families(&mut self, names: &[&str]) -> aidb::Result<()> {
        for name in names {
            if self.column_family(name).is_none() {
                self.create_column_family(name, ColumnFamilyOptions::default())?;
            }
        }
        Ok(())
    }
}
