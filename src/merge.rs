//! Merges several internal iterators into one ordered stream.

use crate::error::Result;
use crate::internal_iter::InternalIterator;
use crate::types::compare_internal_keys;
use std::cmp::Ordering;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// An [`InternalIterator`] over the union of its children.
///
/// Invariant: an internal key appears in at most one child (the engine
/// never lists the same memtable or file twice in a read view). When moving
/// forward every child is positioned at its first entry `>=` the current
/// key; in reverse, at its last entry `<=` it. A child that fails makes the
/// merged iterator invalid with that child's error, so an I/O error never
/// silently hides entries.
pub(crate) struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    current: Option<usize>,
    direction: Direction,
    error: Option<crate::Error>,
}

impl MergingIterator {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> MergingIterator {
        MergingIterator {
            children,
            current: None,
            direction: Direction::Forward,
            error: None,
        }
    }

    fn check_errors(&mut self) -> bool {
        if self.error.is_none() {
            for c in &self.children {
                if !c.valid() {
                    if let Err(e) = c.status() {
                        self.error = Some(e);
                        break;
                    }
                }
            }
        }
        if self.error.is_some() {
            self.current = None;
            return false;
        }
        true
    }

    fn pick(&mut self, want: Ordering) {
        if !self.check_errors() {
            return;
        }
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                Some(b) if compare_internal_keys(c.key(), self.children[b].key()) != want => {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        self.current = best;
    }

    fn pick_smallest(&mut self) {
        self.direction = Direction::Forward;
        self.pick(Ordering::Less);
    }

    fn pick_largest(&mut self) {
        self.direction = Direction::Reverse;
        self.pick(Ordering::Greater);
    }
}

impl InternalIterator for MergingIterator {
    fn seek_to_first(&mut self) {
        self.error = None;
        for c in &mut self.children {
            c.seek_to_first();
        }
        self.pick_smallest();
    }

    fn seek_to_last(&mut self) {
        self.error = None;
        for c in &mut self.children {
            c.seek_to_last();
        }
        self.pick_largest();
    }

    fn seek(&mut self, ikey: &[u8]) {
        self.error = None;
        for c in &mut self.children {
            c.seek(ikey);
        }
        self.pick_smallest();
    }

    fn seek_for_prev(&mut self, ikey: &[u8]) {
        self.error = None;
        for c in &mut self.children {
            c.seek_for_prev(ikey);
        }
        self.pick_largest();
    }

    fn next(&mut self) {
        let Some(cur) = self.current else { return };
        if self.direction != Direction::Forward {
            // Put every other child on its first entry after the current key.
            let key = self.children[cur].key().to_vec();
            for (i, c) in self.children.iter_mut().enumerate() {
                if i != cur {
                    c.seek(&key);
                    if c.valid() && compare_internal_keys(c.key(), &key) == Ordering::Equal {
                        c.next();
                    }
                }
            }
        }
        self.children[cur].next();
        self.pick_smallest();
    }

    fn prev(&mut self) {
        let Some(cur) = self.current else { return };
        if self.direction != Direction::Reverse {
            // Put every other child on its last entry before the current key.
            let key = self.children[cur].key().to_vec();
            for (i, c) in self.children.iter_mut().enumerate() {
                if i != cur {
                    c.seek_for_prev(&key);
                    if c.valid() && compare_internal_keys(c.key(), &key) == Ordering::Equal {
                        c.prev();
                    }
                }
            }
        }
        self.children[cur].prev();
        self.pick_largest();
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current.map_or(&[][..], |i| self.children[i].key())
    }

    fn value(&self) -> &[u8] {
        self.current.map_or(&[][..], |i| self.children[i].value())
    }

    fn status(&self) -> Result<()> {
        match &self.error {
            None => Ok(()),
            Some(e) => Err(e.duplicate()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::MemTable;
    use crate::types::{user_key, ValueKind};
    use std::sync::Arc;

    fn collect_fwd(it: &mut MergingIterator) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        it.seek_to_first();
        while it.valid() {
            out.push(user_key(it.key()).to_vec());
            it.next();
        }
        out
    }

    #[test]
    fn merges_and_switches_direction() {
        let a = Arc::new(MemTable::new(1, 4096));
        let b = Arc::new(MemTable::new(2, 4096));
        for (i, k) in [b"a", b"c", b"e"].iter().enumerate() {
            a.insert(*k, i as u64 + 1, ValueKind::Put, b"");
        }
        for (i, k) in [b"b", b"d", b"f"].iter().enumerate() {
            b.insert(*k, i as u64 + 10, ValueKind::Put, b"");
        }
        let mut it = MergingIterator::new(vec![Box::new(a.iter()), Box::new(b.iter())]);
        assert_eq!(
            collect_fwd(&mut it),
            vec![b"a", b"b", b"c", b"d", b"e", b"f"]
        );
        let mut probe = Vec::new();
        crate::types::encode_internal_key(&mut probe, b"c", u64::MAX >> 8, ValueKind::Put);
        it.seek(&probe);
        assert_eq!(user_key(it.key()), b"c");
        it.prev();
        assert_eq!(user_key(it.key()), b"b");
        it.prev();
        assert_eq!(user_key(it.key()), b"a");
        it.next();
        assert_eq!(user_key(it.key()), b"b");
        it.next();
        assert_eq!(user_key(it.key()), b"c");
        it.seek_to_last();
        assert_eq!(user_key(it.key()), b"f");
    }
}
