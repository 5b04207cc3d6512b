//! A transaction's cursor: its pending writes over its snapshot.
//!
//! Two children: the snapshot's cursor (`base`) and a cursor over the
//! transaction's writes to the family (`delta`, a frozen copy of the write
//! set's map as of the iterator's creation). Moving forward, each child
//! sits on its first key at or after the shown one and the smaller key is
//! shown; moving in reverse, each sits on its last key at or before it and
//! the larger is shown. On equal keys the transaction's write wins, and a
//! pending delete hides the key. A change of direction re-seeks both
//! children to the shown key, which is then shown by both orders, and
//! steps from there.

use super::write_set::KeyMap;
use crate::error::Result;
use crate::iterator::RawIterator;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

/// A cursor over the written keys of one family's map (keys only tracked
/// by `get_for_update` are skipped).
struct Delta {
    map: Arc<KeyMap>,
    /// The current key and whether it is a put (else a delete).
    current: Option<(Vec<u8>, bool)>,
}

impl Delta {
    fn pick<'a>(
        &mut self,
        mut entries: impl Iterator<Item = (&'a Vec<u8>, &'a super::write_set::KeyState)>,
    ) {
        self.current =
            entries.find_map(|(k, st)| st.write.as_ref().map(|w| (k.clone(), w.is_some())));
    }

    fn seek_to_first(&mut self) {
        let map = self.map.clone();
        self.pick(map.iter());
    }

    fn seek_to_last(&mut self) {
        let map = self.map.clone();
        self.pick(map.iter().rev());
    }

    fn seek(&mut self, key: &[u8]) {
        let map = self.map.clone();
        self.pick(map.range::<[u8], _>((Bound::Included(key), Bound::Unbounded)));
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        let map = self.map.clone();
        self.pick(
            map.range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
                .rev(),
        );
    }

    fn next(&mut self) {
        if let Some((k, _)) = self.current.take() {
            let map = self.map.clone();
            self.pick(map.range::<[u8], _>((Bound::Excluded(k.as_slice()), Bound::Unbounded)));
        }
    }

    fn prev(&mut self) {
        if let Some((k, _)) = self.current.take() {
            let map = self.map.clone();
            self.pick(
                map.range::<[u8], _>((Bound::Unbounded, Bound::Excluded(k.as_slice())))
                    .rev(),
            );
        }
    }

    fn key(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|(k, _)| k.as_slice())
    }

    fn is_put(&self) -> bool {
        self.current.as_ref().is_some_and(|(_, put)| *put)
    }

    fn value(&self) -> &[u8] {
        self.current
            .as_ref()
            .and_then(|(k, _)| self.map.get(k))
            .and_then(|st| st.write.as_ref())
            .and_then(|w| w.as_deref())
            .unwrap_or(&[])
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Base,
    Delta,
    Nothing,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// The transaction's writes over the snapshot, as one cursor.
pub(crate) struct TxnIterator {
    base: Box<dyn RawIterator>,
    delta: Delta,
    direction: Direction,
    shown: Shown,
}

impl TxnIterator {
    /// `writes` is the family's map (none: the transaction wrote nothing
    /// to it).
    pub(crate) fn new(base: Box<dyn RawIterator>, writes: Option<Arc<KeyMap>>) -> TxnIterator {
        TxnIterator {
            base,
            delta: Delta {
                map: writes.unwrap_or_default(),
                current: None,
            },
            direction: Direction::Forward,
            shown: Shown::Nothing,
        }
    }

    /// How the base's key compares with the delta's: `None` when the base
    /// is exhausted (or failed), `Some(Less)` also when only the delta is.
    fn order(&self) -> Option<Ordering> {
        if !self.base.valid() {
            return None;
        }
        Some(match self.delta.key() {
            Some(d) => self.base.key().cmp(d),
            None => Ordering::Less,
        })
    }

    /// Forward: shows the smaller of the children's keys, skipping keys the
    /// transaction deleted.
    fn settle_forward(&mut self) {
        loop {
            let order = match self.order() {
                None if self.base.status().is_err() => {
                    self.shown = Shown::Nothing;
                    return;
                }
                // Only the delta is left.
                None => Ordering::Greater,
                Some(o) => o,
            };
            if order == Ordering::Less {
                self.shown = Shown::Base;
                return;
            }
            if self.delta.key().is_none() {
                self.shown = Shown::Nothing;
                return;
            }
            if self.delta.is_put() {
                self.shown = Shown::Delta;
                return;
            }
            // A pending delete: hide the key in both children.
            if order == Ordering::Equal {
                self.base.next();
            }
            self.delta.next();
        }
    }

    /// Reverse: shows the larger of the children's keys.
    fn settle_reverse(&mut self) {
        loop {
            let order = match self.order() {
                None if self.base.status().is_err() => {
                    self.shown = Shown::Nothing;
                    return;
                }
                None => Ordering::Less,
                // With no delta left, the base is the larger.
                Some(_) if self.delta.key().is_none() => Ordering::Greater,
                Some(o) => o,
            };
            if order == Ordering::Greater {
                self.shown = Shown::Base;
                return;
            }
            if self.delta.key().is_none() {
                self.shown = Shown::Nothing;
                return;
            }
            if self.delta.is_put() {
                self.shown = Shown::Delta;
                return;
            }
            if order == Ordering::Equal {
                self.base.prev();
            }
            self.delta.prev();
        }
    }

    /// Steps both children past the shown key in the current direction.
    fn step(&mut self) {
        let both = self.shown == Shown::Delta && self.order() == Some(Ordering::Equal);
        let forward = self.direction == Direction::Forward;
        if self.shown == Shown::Base || both {
            if forward {
                self.base.next()
            } else {
                self.base.prev()
            }
        }
        if self.shown == Shown::Delta {
            if forward {
                self.delta.next()
            } else {
                self.delta.prev()
            }
        }
    }
}

impl RawIterator for TxnIterator {
    fn seek_to_first(&mut self) {
        self.direction = Direction::Forward;
        self.base.seek_to_first();
        self.delta.seek_to_first();
        self.settle_forward();
    }

    fn seek_to_last(&mut self) {
        self.direction = Direction::Reverse;
        self.base.seek_to_last();
        self.delta.seek_to_last();
        self.settle_reverse();
    }

    fn seek(&mut self, key: &[u8]) {
        self.direction = Direction::Forward;
        self.base.seek(key);
        self.delta.seek(key);
        self.settle_forward();
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        self.direction = Direction::Reverse;
        self.base.seek_for_prev(key);
        self.delta.seek_for_prev(key);
        self.settle_reverse();
    }

    fn next(&mut self) {
        if !self.valid() {
            return;
        }
        if self.direction == Direction::Reverse {
            // Both children to the shown key, in forward order.
            let key = self.key().to_vec();
            self.seek(&key);
        }
        self.step();
        self.settle_forward();
    }

    fn prev(&mut self) {
        if !self.valid() {
            return;
        }
        if self.direction == Direction::Forward {
            let key = self.key().to_vec();
            self.seek_for_prev(&key);
        }
        self.step();
        self.settle_reverse();
    }

    fn valid(&self) -> bool {
        self.shown != Shown::Nothing
    }

    fn key(&self) -> &[u8] {
        match self.shown {
            Shown::Base => self.base.key(),
            Shown::Delta => self.delta.key().unwrap_or(&[]),
            Shown::Nothing => &[],
        }
    }

    fn value(&self) -> &[u8] {
        match self.shown {
            Shown::Base => self.base.value(),
            Shown::Delta => self.delta.value(),
            Shown::Nothing => &[],
        }
    }

    fn status(&self) -> Result<()> {
        self.base.status()
    }
}
