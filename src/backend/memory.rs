//! [`MemoryBackend`]: the reference model.
//!
//! It is deliberately simple, since tests trust it: the state is one
//! `BTreeMap` behind an `Arc`, replaced copy-on-write by each write, so a
//! snapshot or iterator is just another `Arc` to a map nobody changes.

use super::{Snapshot, StorageBackend};
use crate::batch::{BatchOp, WriteBatch};
use crate::cf_options::ColumnFamilyOptions;
use crate::column_family::{new_uid, ColumnFamily, Target};
use crate::error::{Error, Result};
use crate::iterator::RawIterator;
use crate::operators::MergeOperator;
use crate::options::{check_family_name, DEFAULT_COLUMN_FAMILY};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// One family: its name, the identity of its handles, its pairs, and the
/// merge operator it folds operands with (eagerly, at write time).
#[derive(Clone)]
struct MemFamily {
    name: Arc<str>,
    uid: u64,
    map: Arc<Map>,
    merge: Option<Arc<dyn MergeOperator>>,
}

/// Every family, by id. Replaced copy-on-write by each change, so a
/// snapshot is an `Arc` to a state nobody changes.
#[derive(Clone)]
struct MemState {
    families: BTreeMap<u32, MemFamily>,
    next_id: u32,
}

impl MemState {
    /// The family a handle names, if it still exists.
    fn family(&self, cf: &ColumnFamily) -> Result<&MemFamily> {
        self.families
            .get(&cf.id())
            .filter(|f| f.uid == cf.uid())
            .ok_or_else(|| cf.dropped_error())
    }
}

/// The state behind a [`MemoryBackend`] and its column family handles.
pub(crate) struct MemoryShared {
    state: Mutex<Arc<MemState>>,
}

/// An in-memory backend on `BTreeMap`s, one per column family. Nothing is
/// persisted. It is the model the test suites compare every other backend
/// with.
pub struct MemoryBackend {
    shared: Arc<MemoryShared>,
}

impl Default for MemoryBackend {
    fn default() -> MemoryBackend {
        MemoryBackend::with_options(ColumnFamilyOptions::default())
    }
}

impl MemoryBackend {
    /// An empty store whose default family uses `options` (of which only
    /// the merge operator matters here).
    pub fn with_options(options: ColumnFamilyOptions) -> MemoryBackend {
        let mut families = BTreeMap::new();
        families.insert(
            0,
            MemFamily {
                name: DEFAULT_COLUMN_FAMILY.into(),
                uid: new_uid(),
                map: Arc::default(),
                merge: options.merge_operator,
            },
        );
        MemoryBackend {
            shared: Arc::new(MemoryShared {
                state: Mutex::new(Arc::new(MemState {
                    families,
                    next_id: 1,
                })),
            }),
        }
    }

    /// An empty store with only the default column family.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn handle(&self, id: u32, f: &MemFamily) -> ColumnFamily {
        ColumnFamily::new(
            id,
            f.uid,
            f.name.clone(),
            Target::Memory(Arc::downgrade(&self.shared)),
        )
    }

    /// Creates a column family, as [`DB::create_column_family`] does (of
    /// the options, only the merge operator matters here).
    ///
    /// [`DB::create_column_family`]: crate::DB::create_column_family
    pub fn create_column_family(
        &self,
        name: &str,
        options: ColumnFamilyOptions,
    ) -> Result<ColumnFamily> {
        check_family_name(name)?;
        options.validate_as("ColumnFamilyOptions")?;
        let mut st = self.shared.state.lock();
        if st.families.values().any(|f| &*f.name == name) {
            return Err(Error::InvalidArgument(format!(
                "column family {name:?} already exists"
            )));
        }
        let state = Arc::make_mut(&mut st);
        let id = state.next_id;
        state.next_id += 1;
        let family = MemFamily {
            name: name.into(),
            uid: new_uid(),
            map: Arc::default(),
            merge: options.merge_operator,
        };
        let handle = self.handle(id, &family);
        state.families.insert(id, family);
        Ok(handle)
    }

    /// The column family called `name`, if it exists.
    pub fn column_family(&self, name: &str) -> Option<ColumnFamily> {
        let st = self.shared.state.lock();
        let (id, f) = st.families.iter().find(|(_, f)| &*f.name == name)?;
        Some(self.handle(*id, f))
    }

    /// The default column family (the one [`StorageBackend`] acts on).
    pub fn default_column_family(&self) -> ColumnFamily {
        let st = self.shared.state.lock();
        self.handle(0, &st.families[&0])
    }

    /// Names of every column family, `"default"` included.
    pub fn column_family_names(&self) -> Vec<String> {
        let st = self.shared.state.lock();
        st.families.values().map(|f| f.name.to_string()).collect()
    }

    /// Drops a column family, as [`DB::drop_column_family`] does.
    ///
    /// [`DB::drop_column_family`]: crate::DB::drop_column_family
    pub fn drop_column_family(&self, name: &str) -> Result<()> {
        if name == DEFAULT_COLUMN_FAMILY {
            return Err(Error::InvalidArgument(
                "the default column family cannot be dropped".into(),
            ));
        }
        let mut st = self.shared.state.lock();
        let id = st
            .families
            .iter()
            .find(|(_, f)| &*f.name == name)
            .map(|(id, _)| *id)
            .ok_or_else(|| Error::InvalidArgument(format!("no column family {name:?}")))?;
        Arc::make_mut(&mut st).families.remove(&id);
        Ok(())
    }

    fn default_family(&self) -> ColumnFamily {
        self.default_column_family()
    }
}

impl MemoryShared {
    fn current(&self) -> Arc<MemState> {
        self.state.lock().clone()
    }

    /// Fails when the family of `cf` is gone.
    pub(crate) fn check(&self, cf: &ColumnFamily) -> Result<()> {
        self.current().family(cf).map(|_| ())
    }

    pub(crate) fn write(&self, batch: WriteBatch) -> Result<()> {
        batch.check_limits()?;
        let mut st = self.state.lock();
        for &(id, uid) in batch.families() {
            if st.families.get(&id).is_none_or(|f| f.uid != uid) {
                return Err(Error::InvalidArgument(format!(
                    "the batch writes to column family id {id}, which was dropped \
                     (or belongs to another database)"
                )));
            }
        }
        // Applied to a copy, so that a merge the operator refuses leaves
        // the store as it was.
        let mut state = (**st).clone();
        for (id, op) in batch.iter_cf() {
            let Some(family) = state.families.get_mut(&id) else {
                return Err(Error::InvalidArgument(format!("no column family id {id}")));
            };
            let merge = family.merge.clone();
            let map = Arc::make_mut(&mut family.map);
            match op {
                BatchOp::Put { key, value } => {
                    map.insert(key.to_vec(), value.to_vec());
                }
                BatchOp::Delete { key } => {
                    map.remove(key);
                }
                BatchOp::Merge { key, operand } => {
                    let Some(merge) = merge else {
                        return Err(Error::Merge(format!(
                            "column family {:?} has no merge operator",
                            family.name
                        )));
                    };
                    let merged = merge
                        .full_merge(key, map.get(key).map(Vec::as_slice), &[operand])
                        .ok_or_else(|| {
                            Error::Merge(format!("{:?} refused an operand", merge.name()))
                        })?;
                    map.insert(key.to_vec(), merged);
                }
                BatchOp::DeleteRange { start, end } if start < end => {
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        map.remove(&k);
                    }
                }
                // An empty or backwards range deletes nothing.
                BatchOp::DeleteRange { .. } => {}
            }
        }
        *st = Arc::new(state);
        Ok(())
    }

    pub(crate) fn get(&self, cf: &ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.current().family(cf)?.map.get(key).cloned())
    }

    pub(crate) fn raw_iterator(&self, cf: &ColumnFamily) -> Box<dyn RawIterator> {
        match self.current().family(cf) {
            Ok(f) => Box::new(MapCursor::new(f.map.clone())),
            Err(e) => Box::new(crate::db::FailedIterator(e)),
        }
    }
}

impl StorageBackend for MemoryBackend {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write_batch(batch)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.shared.get(&self.default_family(), key)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write_batch(batch)
    }

    fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        self.shared.write(batch)
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        Ok(Box::new(MemorySnapshot {
            state: self.shared.current(),
            live: Arc::downgrade(&self.shared),
        }))
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        self.shared.raw_iterator(&self.default_family())
    }
}

/// A frozen state. Handles are checked against the families that exist
/// now, as `DB`'s snapshots do: a dropped family's handle fails, and a
/// family created after the snapshot reads as empty.
struct MemorySnapshot {
    state: Arc<MemState>,
    live: std::sync::Weak<MemoryShared>,
}

impl MemorySnapshot {
    /// The frozen pairs of `cf`'s family (empty when it was created after
    /// the snapshot), once the handle is known to be live.
    fn map(&self, cf: &ColumnFamily) -> Result<Arc<Map>> {
        let live = self.live.upgrade().ok_or(crate::Error::Closed)?;
        live.check(cf)?;
        Ok(self
            .state
            .families
            .get(&cf.id())
            .filter(|f| f.uid == cf.uid())
            .map(|f| f.map.clone())
            .unwrap_or_default())
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state.families[&0].map.get(key).cloned())
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        Box::new(MapCursor::new(self.state.families[&0].map.clone()))
    }

    fn get_cf(&self, cf: &ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map(cf)?.get(key).cloned())
    }

    fn raw_iterator_cf(&self, cf: &ColumnFamily) -> Box<dyn RawIterator> {
        match self.map(cf) {
            Ok(map) => Box::new(MapCursor::new(map)),
            Err(e) => Box::new(crate::db::FailedIterator(e)),
        }
    }
}

/// A cursor over a frozen map: each move is one `BTreeMap::range` lookup.
struct MapCursor {
    map: Arc<Map>,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl MapCursor {
    fn new(map: Arc<Map>) -> MapCursor {
        MapCursor { map, current: None }
    }

    /// Moves to the entry `pick` selects from the map (or off the end).
    fn move_to(&mut self, pick: impl FnOnce(&Map) -> Option<(&Vec<u8>, &Vec<u8>)>) {
        self.current = pick(&self.map).map(|(k, v)| (k.clone(), v.clone()));
    }
}

impl RawIterator for MapCursor {
    fn seek_to_first(&mut self) {
        self.move_to(|m| m.iter().next());
    }

    fn seek_to_last(&mut self) {
        self.move_to(|m| m.iter().next_back());
    }

    fn seek(&mut self, key: &[u8]) {
        self.move_to(|m| {
            m.range::<[u8], _>((Bound::Included(key), Bound::Unbounded))
                .next()
        });
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        self.move_to(|m| {
            m.range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
                .next_back()
        });
    }

    fn next(&mut self) {
        if let Some((k, _)) = self.current.take() {
            self.move_to(|m| {
                m.range::<[u8], _>((Bound::Excluded(k.as_slice()), Bound::Unbounded))
                    .next()
            });
        }
    }

    fn prev(&mut self) {
        if let Some((k, _)) = self.current.take() {
            self.move_to(|m| {
                m.range::<[u8], _>((Bound::Unbounded, Bound::Excluded(k.as_slice())))
                    .next_back()
            });
        }
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current
            .as_ref()
            .map(|(k, _)| k.as_slice())
            .unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.current
            .as_ref()
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}
