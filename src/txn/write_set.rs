//! A transaction's write set: what it wrote and which keys it tracks for
//! conflicts, per column family, with savepoints.
//!
//! One ordered map per family holds, for each key the transaction touched,
//! its pending write (read-your-own-writes, and the overlay its iterators
//! merge with the snapshot) and the sequence number after which no other
//! write may change the key (the conflict check at commit). Iterators hold
//! an `Arc` of a family's map, so creating one copies nothing; a write
//! while an iterator lives copies the map once (`Arc::make_mut`), and the
//! iterator keeps seeing the writes made before it was created.
//!
//! A savepoint records, for every key changed after it, the key's state
//! before the first such change. Rolling back restores those states and
//! pops the savepoint; savepoints are rolled back last-in first-out, so
//! only the newest one needs to record a change: a key an older savepoint
//! did not record was unchanged between the two, so its state before the
//! newer one is its state before the older one too.

use crate::batch::WriteBatch;
use crate::column_family::ColumnFamily;
use crate::db::ConflictCheck;
use crate::types::SeqNo;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the transaction did to one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyState {
    /// The pending write: `Some(Some(value))` a put, `Some(None)` a delete,
    /// `None` when the key is only tracked (read with `get_for_update`).
    pub(crate) write: Option<Option<Vec<u8>>>,
    /// When tracked: the commit fails if another write with a larger
    /// sequence number changed the key.
    pub(crate) since: Option<SeqNo>,
}

/// One family's keys, in key order.
pub(crate) type KeyMap = BTreeMap<Vec<u8>, KeyState>;

struct Savepoint {
    /// Each key changed since the savepoint, with its state before (`None`:
    /// the transaction had not touched it).
    undo: HashMap<(u32, Vec<u8>), Option<KeyState>>,
    /// How many locks the transaction held when the savepoint was set.
    locks: usize,
}

#[derive(Default)]
pub(crate) struct WriteSet {
    /// Per family id, its keys (a handful of families at most: a list).
    families: Vec<(u32, Arc<KeyMap>)>,
    savepoints: Vec<Savepoint>,
}

impl WriteSet {
    /// The state of `key` in family `id`, if the transaction touched it.
    pub(crate) fn get(&self, id: u32, key: &[u8]) -> Option<&KeyState> {
        self.map(id)?.get(key)
    }

    /// The keys of family `id`, shared (for an iterator).
    pub(crate) fn map(&self, id: u32) -> Option<&Arc<KeyMap>> {
        self.families.iter().find(|(f, _)| *f == id).map(|(_, m)| m)
    }

    /// Records a put (`Some(value)`) or delete (`None`) of `key`, tracking
    /// the key with `since` unless it is tracked already.
    pub(crate) fn write(&mut self, id: u32, key: &[u8], value: Option<&[u8]>, since: SeqNo) {
        self.update(id, key, |st| {
            st.write = Some(value.map(<[u8]>::to_vec));
            st.since.get_or_insert(since);
        });
    }

    /// Tracks `key` with `since` unless it is tracked already.
    pub(crate) fn track(&mut self, id: u32, key: &[u8], since: SeqNo) {
        if self.get(id, key).is_some_and(|st| st.since.is_some()) {
            return;
        }
        self.update(id, key, |st| {
            st.since.get_or_insert(since);
        });
    }

    fn update(&mut self, id: u32, key: &[u8], change: impl FnOnce(&mut KeyState)) {
        if let Some(sp) = self.savepoints.last_mut() {
            let before = self
                .families
                .iter()
                .find(|(f, _)| *f == id)
                .and_then(|(_, m)| m.get(key).cloned());
            sp.undo.entry((id, key.to_vec())).or_insert(before);
        }
        let pos = match self.families.iter().position(|(f, _)| *f == id) {
            Some(p) => p,
            None => {
                self.families.push((id, Arc::default()));
                self.families.len() - 1
            }
        };
        let map = Arc::make_mut(&mut self.families[pos].1);
        match map.get_mut(key) {
            Some(st) => change(st),
            None => {
                let mut st = KeyState::default();
                change(&mut st);
                map.insert(key.to_vec(), st);
            }
        }
    }

    /// Sets a savepoint; `locks` is the number of locks held now.
    pub(crate) fn set_savepoint(&mut self, locks: usize) {
        self.savepoints.push(Savepoint {
            undo: HashMap::new(),
            locks,
        });
    }

    /// Undoes every change since the newest savepoint and removes it.
    /// Returns the number of locks held when it was set (`None`: there is
    /// no savepoint).
    pub(crate) fn rollback_to_savepoint(&mut self) -> Option<usize> {
        let sp = self.savepoints.pop()?;
        for ((id, key), before) in sp.undo {
            let Some((_, map)) = self.families.iter_mut().find(|(f, _)| *f == id) else {
                continue;
            };
            let map = Arc::make_mut(map);
            match before {
                Some(st) => {
                    map.insert(key, st);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
        Some(sp.locks)
    }

    /// Forgets everything (a rollback).
    pub(crate) fn clear(&mut self) {
        self.families.clear();
        self.savepoints.clear();
    }

    /// The batch of every pending write, and the check of every tracked
    /// key, for the commit. `handle(id)` gives the handle of a family
    /// other than the default one; `locked`: every tracked key is locked
    /// (a pessimistic transaction).
    pub(crate) fn into_commit(
        self,
        handle: impl Fn(u32) -> Option<ColumnFamily>,
        locked: bool,
    ) -> crate::Result<(WriteBatch, ConflictCheck)> {
        let mut batch = WriteBatch::new();
        let mut check = ConflictCheck {
            keys: Vec::new(),
            locked,
        };
        for (id, map) in self.families {
            let cf = match id {
                0 => None,
                _ => Some(handle(id).ok_or_else(|| {
                    crate::Error::Internal(format!("transaction lost the handle of family {id}"))
                })?),
            };
            // Unshared unless an iterator of the transaction still lives.
            let map = Arc::try_unwrap(map).unwrap_or_else(|shared| (*shared).clone());
            for (key, st) in map {
                match (&st.write, &cf) {
                    (Some(Some(v)), None) => batch.put(&key, v),
                    (Some(Some(v)), Some(cf)) => batch.put_cf(cf, &key, v),
                    (Some(None), None) => batch.delete(&key),
                    (Some(None), Some(cf)) => batch.delete_cf(cf, &key),
                    (None, _) => &mut batch,
                };
                if let Some(since) = st.since {
                    check.keys.push((id, key, since));
                }
            }
        }
        Ok((batch, check))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_of(set: &WriteSet, key: &[u8]) -> Option<Option<Vec<u8>>> {
        set.get(0, key).and_then(|st| st.write.clone())
    }

    #[test]
    fn nested_savepoints_restore_each_level() {
        let mut set = WriteSet::default();
        set.write(0, b"a", Some(b"1"), 5);
        set.set_savepoint(0);
        set.write(0, b"a", Some(b"2"), 7);
        set.write(0, b"b", None, 7);
        set.set_savepoint(1);
        set.write(0, b"a", Some(b"3"), 9);
        set.track(0, b"c", 9);
        set.write(0, b"d", Some(b"x"), 9);
        assert_eq!(set.rollback_to_savepoint(), Some(1));
        assert_eq!(write_of(&set, b"a"), Some(Some(b"2".to_vec())));
        assert_eq!(write_of(&set, b"b"), Some(None));
        assert!(set.get(0, b"c").is_none() && set.get(0, b"d").is_none());
        assert_eq!(set.rollback_to_savepoint(), Some(0));
        assert_eq!(
            set.get(0, b"a"),
            Some(&KeyState {
                write: Some(Some(b"1".to_vec())),
                since: Some(5)
            })
        );
        assert!(set.get(0, b"b").is_none());
        assert_eq!(set.rollback_to_savepoint(), None);
    }

    #[test]
    fn an_iterator_keeps_the_map_it_saw() {
        let mut set = WriteSet::default();
        set.write(0, b"a", Some(b"1"), 1);
        let seen = set.map(0).unwrap().clone();
        set.write(0, b"b", Some(b"2"), 1);
        assert_eq!(seen.len(), 1);
        assert_eq!(set.map(0).unwrap().len(), 2);
    }
}
