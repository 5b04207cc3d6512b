//! [`MemoryBackend`]: the reference model.
//!
//! It is deliberately simple, since tests trust it: the state is one
//! `BTreeMap` behind an `Arc`, replaced copy-on-write by each write, so a
//! snapshot or iterator is just another `Arc` to a map nobody changes.

use super::{Snapshot, StorageBackend};
use crate::batch::{BatchOp, WriteBatch};
use crate::error::Result;
use crate::iterator::RawIterator;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory backend on a `BTreeMap`. Nothing is persisted. It is the
/// model the test suites compare every other backend with.
#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<Arc<Map>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn current(&self) -> Arc<Map> {
        self.state.lock().clone()
    }

    fn update(&self, f: impl FnOnce(&mut Map)) {
        let mut st = self.state.lock();
        f(Arc::make_mut(&mut st));
    }
}

impl StorageBackend for MemoryBackend {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write_batch(batch)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state.lock().get(key).cloned())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write_batch(batch)
    }

    fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        batch.check_limits()?;
        self.update(|m| {
            for op in &batch {
                match op {
                    BatchOp::Put { key, value } => {
                        m.insert(key.to_vec(), value.to_vec());
                    }
                    BatchOp::Delete { key } => {
                        m.remove(key);
                    }
                }
            }
        });
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        Ok(Box::new(MemorySnapshot(self.current())))
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        Box::new(MapCursor::new(self.current()))
    }
}

struct MemorySnapshot(Arc<Map>);

impl Snapshot for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }

    fn raw_iterator(&self) -> Box<dyn RawIterator> {
        Box::new(MapCursor::new(self.0.clone()))
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
