//! The user-facing iterator.
//!
//! Every backend exposes a [`RawIterator`], a cursor over the keys visible at
//! one point in time (RocksDB's `Iterator` shape). [`DbIterator`] turns one
//! into a Rust iterator over a key range that runs in both directions, so
//! `db.range("a".."m").rev()` and `db.prefix("user:")` work on every backend.

use crate::error::Result;
use std::ops::{Bound, RangeBounds};

/// A cursor over the key-value pairs of a fixed view (a snapshot or the
/// state when the iterator was created), in ascending key order.
///
/// After any positioning call, `valid()` says whether the cursor is on an
/// entry; when it is not, `status()` says whether it ran off the end or hit
/// an error. `key()` and `value()` may only be called while `valid()`.
pub trait RawIterator: Send {
    /// Moves to the first entry.
    fn seek_to_first(&mut self);
    /// Moves to the last entry.
    fn seek_to_last(&mut self);
    /// Moves to the first entry whose key is `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// Moves to the last entry whose key is `<= key`.
    fn seek_for_prev(&mut self, key: &[u8]);
    /// Moves to the next entry.
    fn next(&mut self);
    /// Moves to the previous entry.
    fn prev(&mut self);
    /// True when positioned on an entry.
    fn valid(&self) -> bool;
    /// The current key.
    fn key(&self) -> &[u8];
    /// The current value.
    fn value(&self) -> &[u8];
    /// The error that made the cursor invalid, if any.
    fn status(&self) -> Result<()>;
}

/// A key range: lower and upper bound, each inclusive, exclusive or open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// The keys within any Rust range of byte strings: `"a".."m"`, `b"x"..`,
    /// `..=k`, `..`.
    pub fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(range: R) -> KeyRange {
        fn own<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<Vec<u8>> {
            match b {
                Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
                Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
                Bound::Unbounded => Bound::Unbounded,
            }
        }
        KeyRange {
            start: own(range.start_bound()),
            end: own(range.end_bound()),
        }
    }

    /// The keys starting with `prefix`.
    pub fn prefix(prefix: impl AsRef<[u8]>) -> KeyRange {
        let prefix = prefix.as_ref();
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end: match prefix_successor(prefix) {
                Some(s) => Bound::Excluded(s),
                None => Bound::Unbounded,
            },
        }
    }

    /// True when `key` is inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        above_start(&self.start, key) && below_end(&self.end, key)
    }
}

macro_rules! key_range_from {
    ($($ty:ident),*) => {$(
        impl<K: AsRef<[u8]>> From<std::ops::$ty<K>> for KeyRange {
            fn from(range: std::ops::$ty<K>) -> KeyRange {
                KeyRange::new(range)
            }
        }
    )*};
}

key_range_from!(Range, RangeInclusive, RangeFrom, RangeTo, RangeToInclusive);

impl From<std::ops::RangeFull> for KeyRange {
    fn from(_: std::ops::RangeFull) -> KeyRange {
        KeyRange::all()
    }
}

impl<K: AsRef<[u8]>> From<(Bound<K>, Bound<K>)> for KeyRange {
    fn from(bounds: (Bound<K>, Bound<K>)) -> KeyRange {
        KeyRange::new::<K, _>((bounds.0.as_ref(), bounds.1.as_ref()))
    }
}

impl Default for KeyRange {
    fn default() -> KeyRange {
        KeyRange::all()
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when no such key exists (the prefix is all `0xff`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

fn above_start(start: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    match start {
        Bound::Included(s) => key >= s.as_slice(),
        Bound::Excluded(s) => key > s.as_slice(),
        Bound::Unbounded => true,
    }
}

fn below_end(end: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    match end {
        Bound::Included(e) => key <= e.as_slice(),
        Bound::Excluded(e) => key < e.as_slice(),
        Bound::Unbounded => true,
    }
}

/// Makes `bound` exclude `key` and what lies beyond it, reusing the
/// bound's buffer: a fresh copy of every yielded key was a third of the
/// allocations of a scan.
fn exclude(bound: &mut Bound<Vec<u8>>, key: &[u8]) {
    let mut buf = match std::mem::replace(bound, Bound::Unbounded) {
        Bound::Included(b) | Bound::Excluded(b) => b,
        Bound::Unbounded => Vec::new(),
    };
    buf.clear();
    buf.extend_from_slice(key);
    *bound = Bound::Excluded(buf);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// The cursor is not where either end needs it.
    Unknown,
    /// The cursor is on the next entry the front end will yield.
    Front,
    /// The cursor is on the next entry the back end will yield.
    Back,
}

/// An iterator over `(key, value)` pairs of a key range, in ascending order,
/// or descending with [`.rev()`](Iterator::rev). Both ends can be
/// consumed alternately; they stop where they meet.
///
/// The view is fixed when the iterator is created: later writes are not
/// seen. An I/O or corruption error is yielded once as `Err` and ends the
/// iteration.
///
/// ```
/// let db = aidb::MemoryBackend::new();
/// use aidb::StorageBackend;
/// for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
///     db.put(k.as_bytes(), v.as_bytes()).unwrap();
/// }
/// let keys: Vec<Vec<u8>> = db
///     .scan(aidb::KeyRange::new("a".."c"))
///     .rev()
///     .map(|kv| kv.unwrap().0)
///     .collect();
/// assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec()]);
/// ```
pub struct DbIterator {
    raw: Box<dyn RawIterator>,
    /// Keys the front end may still yield are above this bound.
    front: Bound<Vec<u8>>,
    /// Keys the back end may still yield are below this bound.
    back: Bound<Vec<u8>>,
    pos: Position,
    done: bool,
}

impl DbIterator {
    /// Iterates over the entries of `raw` inside `range`.
    pub fn new(raw: Box<dyn RawIterator>, range: KeyRange) -> DbIterator {
        DbIterator {
            raw,
            front: range.start,
            back: range.end,
            pos: Position::Unknown,
            done: false,
        }
    }

    /// Moves the front end to the first key `>= key` (never before the
    /// range's start, nor before what the front end already yielded).
    pub fn seek(&mut self, key: impl AsRef<[u8]>) {
        let key = key.as_ref();
        if above_start(&self.front, key) {
            self.front = Bound::Included(key.to_vec());
            self.pos = Position::Unknown;
        }
    }

    /// Moves the back end to the last key `<= key` (never past the range's
    /// end, nor past what the back end already yielded).
    pub fn seek_for_prev(&mut self, key: impl AsRef<[u8]>) {
        let key = key.as_ref();
        if below_end(&self.back, key) {
            self.back = Bound::Included(key.to_vec());
            self.pos = Position::Unknown;
        }
    }

    fn fail(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        self.done = true;
        match self.raw.status() {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn position_front(&mut self) {
        match &self.front {
            Bound::Unbounded => self.raw.seek_to_first(),
            Bound::Included(k) => self.raw.seek(k),
            Bound::Excluded(k) => {
                self.raw.seek(k);
                if self.raw.valid() && self.raw.key() == k.as_slice() {
                    self.raw.next();
                }
            }
        }
        self.pos = Position::Front;
    }

    fn position_back(&mut self) {
        match &self.back {
            Bound::Unbounded => self.raw.seek_to_last(),
            Bound::Included(k) => self.raw.seek_for_prev(k),
            Bound::Excluded(k) => {
                self.raw.seek_for_prev(k);
                if self.raw.valid() && self.raw.key() == k.as_slice() {
                    self.raw.prev();
                }
            }
        }
        self.pos = Position::Back;
    }
}

impl Iterator for DbIterator {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.pos != Position::Front {
            self.position_front();
        }
        if !self.raw.valid() {
            return self.fail();
        }
        let key = self.raw.key();
        if !below_end(&self.back, key) {
            self.done = true;
            return None;
        }
        let item = (key.to_vec(), self.raw.value().to_vec());
        self.raw.next();
        exclude(&mut self.front, &item.0);
        Some(Ok(item))
    }
}

impl DoubleEndedIterator for DbIterator {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.pos != Position::Back {
            self.position_back();
        }
        if !self.raw.valid() {
            return self.fail();
        }
        let key = self.raw.key();
        if !above_start(&self.front, key) {
            self.done = true;
            return None;
        }
        let item = (key.to_vec(), self.raw.value().to_vec());
        self.raw.prev();
        exclude(&mut self.back, &item.0);
        Some(Ok(item))
    }
}

impl std::iter::FusedIterator for DbIterator {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_cases() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn range_contains() {
        let r = KeyRange::new("b".."d");
        assert!(!r.contains(b"a"));
        assert!(r.contains(b"b"));
        assert!(r.contains(b"c\xff"));
        assert!(!r.contains(b"d"));
        let p = KeyRange::prefix("ab");
        assert!(
            p.contains(b"ab") && p.contains(b"abz") && !p.contains(b"ac") && !p.contains(b"aa")
        );
    }
}
