//! The memtable: a concurrent skiplist of internal keys.
//!
//! # Thread safety
//! Any number of readers run concurrently with one writer (the commit-group
//! leader) and never block on it: the skiplist is lock-free. A reader only
//! sees entries whose sequence number it asks for, and the engine publishes
//! a sequence number only after every entry up to it is inserted, so a
//! half-applied batch is never visible.

use crate::error::Result;
use crate::internal_iter::InternalIterator;
use crate::range_del::{Fragments, RangeTombstone};
use crate::types::{
    compare_internal_keys, encode_internal_key, pack_trailer, parse_internal_key, LookupKey, SeqNo,
    ValueKind, TRAILER_LEN,
};
use bytes::{Bytes, BytesMut};
use crossbeam_skiplist::SkipMap;
use parking_lot::{Mutex, RwLock};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Internal keys up to this long live inside the skiplist node.
const INLINE_KEY: usize = 32;

/// An encoded internal key, ordered as internal keys are. Short keys are
/// stored inline: an insert or lookup compares against the key of every
/// node it passes, and a key behind a pointer costs a second cache miss
/// per node (about a third of an insert into a full memtable).
#[derive(Debug, Clone)]
enum MemKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl MemKey {
    /// The internal key of `user_key` at (`seq`, `kind`).
    fn new(user_key: &[u8], seq: SeqNo, kind: ValueKind) -> MemKey {
        let len = user_key.len() + TRAILER_LEN;
        if len <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..user_key.len()].copy_from_slice(user_key);
            bytes[user_key.len()..len].copy_from_slice(&pack_trailer(seq, kind).to_le_bytes());
            MemKey::Inline {
                len: len as u8,
                bytes,
            }
        } else {
            let mut ikey = Vec::with_capacity(len);
            encode_internal_key(&mut ikey, user_key, seq, kind);
            MemKey::Heap(ikey.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            MemKey::Inline { len, bytes } => &bytes[..*len as usize],
            MemKey::Heap(b) => b,
        }
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MemKey {}

/// Unsized view of an encoded internal key, so lookups can borrow.
#[derive(Debug, PartialEq, Eq)]
#[repr(transparent)]
struct KeyRef([u8]);

impl KeyRef {
    fn new(bytes: &[u8]) -> &KeyRef {
        // SAFETY: KeyRef is repr(transparent) over [u8], so the layouts and
        // metadata of &[u8] and &KeyRef are identical.
        unsafe { &*(bytes as *const [u8] as *const KeyRef) }
    }
}

impl Ord for KeyRef {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal_keys(&self.0, &other.0)
    }
}

impl PartialOrd for KeyRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Borrow<KeyRef> for MemKey {
    fn borrow(&self) -> &KeyRef {
        KeyRef::new(self.as_slice())
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal_keys(self.as_slice(), other.as_slice())
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Per-entry bookkeeping the skiplist costs beyond key and value bytes
/// (node, tower pointers, allocation headers), for size accounting.
const ENTRY_OVERHEAD: usize = 64;

/// Values up to this long are copied into the memtable's shared chunks.
const ARENA_VALUE_MAX: usize = 4 << 10;
const ARENA_CHUNK: usize = 256 << 10;

/// A sorted in-memory table of recent writes.
pub(crate) struct MemTable {
    map: SkipMap<MemKey, Bytes>,
    /// Where small values are copied: slices of one large allocation
    /// instead of an allocation (and later a free, often on another
    /// thread) per value. A chunk is freed when the last value in it is.
    arena: Mutex<BytesMut>,
    size: AtomicUsize,
    /// Number of the log file that holds this memtable's writes.
    log_number: u64,
    /// Range tombstones (rare): kept apart from the point entries, with a
    /// fragmented copy for reads rebuilt after each new one.
    range_dels: RwLock<Vec<RangeTombstone>>,
    fragments: RwLock<Option<Arc<Fragments>>>,
    has_range_dels: AtomicBool,
}

impl MemTable {
    pub(crate) fn new(log_number: u64) -> MemTable {
        MemTable {
            map: SkipMap::new(),
            arena: Mutex::new(BytesMut::new()),
            size: AtomicUsize::new(0),
            log_number,
            range_dels: RwLock::new(Vec::new()),
            fragments: RwLock::new(None),
            has_range_dels: AtomicBool::new(false),
        }
    }

    /// Adds a range tombstone. Like `insert`, callers serialise writes.
    pub(crate) fn insert_range_delete(&self, start: &[u8], end: &[u8], seq: SeqNo) {
        self.range_dels.write().push(RangeTombstone {
            start: start.to_vec(),
            end: end.to_vec(),
            seq,
        });
        *self.fragments.write() = None;
        self.has_range_dels.store(true, AtomicOrdering::Release);
        let charge = start.len() + end.len() + 8 + ENTRY_OVERHEAD;
        self.size.fetch_add(charge, AtomicOrdering::Relaxed);
    }

    /// The range tombstones, fragmented (empty when there are none).
    pub(crate) fn fragments(&self) -> Arc<Fragments> {
        if !self.has_range_dels.load(AtomicOrdering::Acquire) {
            return Arc::default();
        }
        if let Some(f) = &*self.fragments.read() {
            return f.clone();
        }
        let mut cache = self.fragments.write();
        let built = Arc::new(Fragments::build(self.range_dels.read().iter().cloned()));
        *cache = Some(built.clone());
        built
    }

    /// The newest range tombstone covering `key` at `seq` (0: none).
    pub(crate) fn max_covering(&self, key: &[u8], seq: SeqNo) -> SeqNo {
        if !self.has_range_dels.load(AtomicOrdering::Acquire) {
            return 0;
        }
        self.fragments().max_covering(key, seq)
    }

    pub(crate) fn log_number(&self) -> u64 {
        self.log_number
    }

    /// Adds an entry. Callers serialise inserts (one writer at a time) and
    /// never insert the same (key, seq) twice.
    pub(crate) fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) {
        let charge = user_key.len() + TRAILER_LEN + value.len() + ENTRY_OVERHEAD;
        self.map
            .insert(MemKey::new(user_key, seq, kind), self.copy_value(value));
        self.size.fetch_add(charge, AtomicOrdering::Relaxed);
    }

    fn copy_value(&self, value: &[u8]) -> Bytes {
        if value.is_empty() || value.len() > ARENA_VALUE_MAX {
            return Bytes::copy_from_slice(value);
        }
        // Uncontended: callers serialise inserts.
        let mut arena = self.arena.lock();
        if arena.capacity() - arena.len() < value.len() {
            *arena = BytesMut::with_capacity(ARENA_CHUNK);
        }
        arena.extend_from_slice(value);
        arena.split().freeze()
    }

    /// The newest entry for `user_key` with sequence number `<= seq`.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<(SeqNo, ValueKind, Bytes)> {
        self.lookup(&LookupKey::new(user_key, seq))
    }

    /// The newest entry for `key`'s user key visible at its sequence number.
    pub(crate) fn lookup(&self, key: &LookupKey) -> Option<(SeqNo, ValueKind, Bytes)> {
        let probe = KeyRef::new(key.internal_key());
        let entry = self.map.lower_bound(Bound::Included(probe))?;
        match parse_internal_key(entry.key().as_slice()) {
            Some(p) if p.user_key == key.user_key() => Some((p.seq, p.kind, entry.value().clone())),
            _ => None,
        }
    }

    /// The sequence number of the newest entry (value or tombstone) of
    /// `key`'s user key, if the memtable holds one. `key` must be built
    /// with [`MAX_SEQNO`](crate::types::MAX_SEQNO), so that no entry is
    /// above it. (Transactions' conflict checks: see `db::conflict`.)
    pub(crate) fn newest_seq(&self, key: &LookupKey) -> Option<SeqNo> {
        let probe = KeyRef::new(key.internal_key());
        let entry = self.map.lower_bound(Bound::Included(probe))?;
        parse_internal_key(entry.key().as_slice())
            .filter(|p| p.user_key == key.user_key())
            .map(|p| p.seq)
    }

    /// Approximate memory used, in bytes.
    pub(crate) fn approximate_size(&self) -> usize {
        self.size.load(AtomicOrdering::Relaxed)
    }

    /// Entries (point versions), for estimates.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty() && !self.has_range_dels.load(AtomicOrdering::Acquire)
    }

    /// A cursor over every entry.
    pub(crate) fn iter(self: &Arc<Self>) -> MemTableIterator {
        MemTableIterator {
            entry: None,
            mem: self.clone(),
        }
    }
}

type MapEntry = crossbeam_skiplist::map::Entry<'static, MemKey, Bytes>;

/// Cursor over a memtable. It holds the skiplist entry it is on and steps
/// along the skiplist's links from there; a fresh search per step (what
/// it did before) cost about half of a flush's reading.
///
/// Entries are never removed from a memtable, and concurrent inserts link
/// new nodes in without invalidating the one held, so stepping from it
/// stays correct while the memtable is written.
pub(crate) struct MemTableIterator {
    // Declared before `mem` so that it is dropped first: the entry points
    // into `mem`'s skiplist.
    entry: Option<MapEntry>,
    mem: Arc<MemTable>,
}

/// Widens an entry of an iterator's own memtable to be stored in it.
fn widen(entry: Option<crossbeam_skiplist::map::Entry<'_, MemKey, Bytes>>) -> Option<MapEntry> {
    // SAFETY: callers pass an entry of the iterator's `mem`, whose
    // skiplist the iterator keeps alive (an `Arc`, never replaced) for as
    // long as it holds the entry, and drops only after the entry (field
    // order). The lifetime is widened only to store the entry beside the
    // `Arc` that owns what it points into; the entry never leaves the
    // iterator (`key` and `value` lend it out tied to `&self`).
    entry.map(|e| unsafe { std::mem::transmute::<_, MapEntry>(e) })
}

impl InternalIterator for MemTableIterator {
    fn seek_to_first(&mut self) {
        self.entry = widen(self.mem.map.front());
    }

    fn seek_to_last(&mut self) {
        self.entry = widen(self.mem.map.back());
    }

    fn seek(&mut self, ikey: &[u8]) {
        self.entry = widen(self.mem.map.lower_bound(Bound::Included(KeyRef::new(ikey))));
    }

    fn seek_for_prev(&mut self, ikey: &[u8]) {
        self.entry = widen(self.mem.map.upper_bound(Bound::Included(KeyRef::new(ikey))));
    }

    fn next(&mut self) {
        if let Some(e) = self.entry.take() {
            self.entry = e.next();
        }
    }

    fn prev(&mut self) {
        if let Some(e) = self.entry.take() {
            self.entry = e.prev();
        }
    }

    fn valid(&self) -> bool {
        self.entry.is_some()
    }

    fn key(&self) -> &[u8] {
        self.entry.as_ref().map_or(&[][..], |e| e.key().as_slice())
    }

    fn value(&self) -> &[u8] {
        self.entry.as_ref().map_or(&[][..], |e| &e.value()[..])
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::user_key;

    #[test]
    fn get_sees_newest_visible_version() {
        let m = MemTable::new(1);
        m.insert(b"k", 1, ValueKind::Put, b"v1");
        m.insert(b"k", 3, ValueKind::Delete, b"");
        m.insert(b"k", 5, ValueKind::Put, b"v5");
        m.insert(b"j", 4, ValueKind::Put, b"j");
        let kind = |r: Option<(SeqNo, ValueKind, Bytes)>| r.map(|(s, k, v)| (s, k, v.to_vec()));
        assert_eq!(kind(m.get(b"k", 0)), None);
        assert_eq!(
            kind(m.get(b"k", 1)),
            Some((1, ValueKind::Put, b"v1".to_vec()))
        );
        assert_eq!(
            kind(m.get(b"k", 2)),
            Some((1, ValueKind::Put, b"v1".to_vec()))
        );
        assert_eq!(
            kind(m.get(b"k", 3)),
            Some((3, ValueKind::Delete, Vec::new()))
        );
        assert_eq!(
            kind(m.get(b"k", 9)),
            Some((5, ValueKind::Put, b"v5".to_vec()))
        );
        assert_eq!(kind(m.get(b"kk", 9)), None);
        assert_eq!(kind(m.get(b"", 9)), None);
        assert!(m.approximate_size() > 0);
        let newest = |k: &[u8]| m.newest_seq(&LookupKey::new(k, crate::types::MAX_SEQNO));
        assert_eq!(newest(b"k"), Some(5));
        assert_eq!(newest(b"j"), Some(4));
        assert_eq!(newest(b"kk"), None);
        assert_eq!(newest(b""), None);
    }

    #[test]
    fn iterator_both_directions() {
        let m = Arc::new(MemTable::new(1));
        m.insert(b"b", 2, ValueKind::Put, b"b2");
        m.insert(b"a", 1, ValueKind::Put, b"a1");
        m.insert(b"b", 3, ValueKind::Put, b"b3");
        let mut it = m.iter();
        it.seek_to_first();
        let mut fwd = Vec::new();
        while it.valid() {
            fwd.push((user_key(it.key()).to_vec(), it.value().to_vec()));
            it.next();
        }
        assert_eq!(
            fwd,
            vec![
                (b"a".to_vec(), b"a1".to_vec()),
                (b"b".to_vec(), b"b3".to_vec()),
                (b"b".to_vec(), b"b2".to_vec())
            ]
        );
        it.seek_to_last();
        assert_eq!(it.value(), b"b2");
        it.prev();
        assert_eq!(it.value(), b"b3");
        it.prev();
        assert_eq!(it.value(), b"a1");
        it.prev();
        assert!(!it.valid());
    }

    #[test]
    fn short_and_long_keys_sort_and_step_together() {
        // User keys of 23, 24 (the longest stored inline) and 25 bytes
        // sharing a prefix, plus versions of each.
        let m = Arc::new(MemTable::new(1));
        let keys: Vec<Vec<u8>> = [23, 24, 25, 40].iter().map(|&n| vec![b'k'; n]).collect();
        for (i, k) in keys.iter().enumerate().rev() {
            m.insert(k, 10 + i as u64, ValueKind::Put, b"new");
            m.insert(k, 1 + i as u64, ValueKind::Put, b"old");
        }
        for k in &keys {
            assert_eq!(m.get(k, 100).map(|e| e.2.to_vec()), Some(b"new".to_vec()));
            assert_eq!(m.get(k, 9).map(|e| e.2.to_vec()), Some(b"old".to_vec()));
        }
        let mut it = m.iter();
        it.seek_to_first();
        let mut seen = Vec::new();
        while it.valid() {
            seen.push((user_key(it.key()).len(), it.value().to_vec()));
            it.next();
        }
        let want: Vec<(usize, Vec<u8>)> = [23, 24, 25, 40]
            .iter()
            .flat_map(|&n| [(n, b"new".to_vec()), (n, b"old".to_vec())])
            .collect();
        assert_eq!(seen, want);
        // Backwards from the end, across the inline/heap boundary.
        it.seek_to_last();
        let mut back = Vec::new();
        while it.valid() {
            back.push((user_key(it.key()).len(), it.value().to_vec()));
            it.prev();
        }
        back.reverse();
        assert_eq!(back, want);
    }

    #[test]
    fn a_cursor_steps_onto_entries_inserted_after_it_was_placed() {
        let m = Arc::new(MemTable::new(1));
        m.insert(b"a", 1, ValueKind::Put, b"a");
        m.insert(b"c", 2, ValueKind::Put, b"c");
        let mut it = m.iter();
        it.seek_to_first();
        m.insert(b"b", 3, ValueKind::Put, b"b");
        it.next();
        assert_eq!(user_key(it.key()), b"b");
        drop(m); // the cursor keeps the memtable alive
        it.next();
        assert_eq!(user_key(it.key()), b"c");
        it.next();
        assert!(!it.valid());
    }
}
