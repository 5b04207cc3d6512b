//! The memtable: a skiplist of internal keys in an arena.
//!
//! # Thread safety
//! Any number of readers run concurrently with one writer (the commit-group
//! leader) and never block on it: readers of the skiplist take no lock. A reader only
//! sees entries whose sequence number it asks for, and the engine publishes
//! a sequence number only after every entry up to it is inserted, so a
//! half-applied batch is never visible.

use crate::error::Result;
use crate::internal_iter::InternalIterator;
use crate::range_del::{Fragments, RangeTombstone};
use crate::types::{pack_trailer, parse_internal_key, LookupKey, SeqNo, ValueKind};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

mod arena;
mod filter;
mod skiplist;

pub(crate) use filter::filter_bytes;

use skiplist::{Node, SkipList};

/// Charged per range tombstone beyond its bytes (they are kept in a
/// vector, not the arena).
const RANGE_DEL_OVERHEAD: usize = 64;

/// A sorted in-memory table of recent writes.
pub(crate) struct MemTable {
    list: SkipList,
    /// The user keys of `list`, for point lookups; `None` for a memtable
    /// no read searches (replayed to be flushed), which then skips the
    /// hashing on insert.
    filter: Option<filter::KeyFilter>,
    /// Bytes charged for range tombstones.
    range_del_size: AtomicUsize,
    /// Number of the log file that holds this memtable's writes.
    log_number: u64,
    /// Range tombstones (rare): kept apart from the point entries, with a
    /// fragmented copy for reads rebuilt after each new one.
    range_dels: RwLock<Vec<RangeTombstone>>,
    fragments: RwLock<Option<Arc<Fragments>>>,
    has_range_dels: AtomicBool,
}

impl MemTable {
    /// An empty memtable whose writes are in log `log_number`, with a key
    /// filter of `filter_bytes` (see [`filter_bytes`]; 0: no filter, for
    /// one that no read will search; lookups then search the skiplist).
    pub(crate) fn new(log_number: u64, filter_bytes: usize) -> MemTable {
        MemTable {
            list: SkipList::new(),
            filter: (filter_bytes > 0).then(|| filter::KeyFilter::new(filter_bytes)),
            range_del_size: AtomicUsize::new(0),
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
        let charge = start.len() + end.len() + 8 + RANGE_DEL_OVERHEAD;
        self.range_del_size
            .fetch_add(charge, AtomicOrdering::Relaxed);
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
        let trailer = pack_trailer(seq, kind).to_le_bytes();
        let Some(filter) = &self.filter else {
            return self.list.insert(user_key, trailer, value, || {});
        };
        let h = crate::table::bloom_hash(user_key);
        // The filter's line arrives while the skiplist searches; its bits
        // are set before the skiplist publishes the entry (see `filter`).
        filter.prefetch(h);
        self.list
            .insert(user_key, trailer, value, || filter.insert(h));
    }

    /// The newest entry for `user_key` with sequence number `<= seq`.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<(SeqNo, ValueKind, &[u8])> {
        self.lookup(&LookupKey::new(user_key, seq))
    }

    /// The newest entry for `key`'s user key visible at its sequence number.
    pub(crate) fn lookup(&self, key: &LookupKey) -> Option<(SeqNo, ValueKind, &[u8])> {
        // An empty memtable (every one after a flush, until written) is
        // answered without touching the filter.
        let filtered_out = |f: &filter::KeyFilter| !f.may_contain(key.filter_hash());
        if self.list.first().is_none() || self.filter.as_ref().is_some_and(filtered_out) {
            return None;
        }
        let node = self.list.seek(key.internal_key())?;
        match parse_internal_key(node.key()) {
            Some(p) if p.user_key == key.user_key() => Some((p.seq, p.kind, node.value())),
            _ => None,
        }
    }

    /// The sequence number of the newest entry (value or tombstone) of
    /// `key`'s user key, if the memtable holds one. `key` must be built
    /// with [`MAX_SEQNO`](crate::types::MAX_SEQNO), so that no entry is
    /// above it. (Transactions' conflict checks: see `db::conflict`.)
    pub(crate) fn newest_seq(&self, key: &LookupKey) -> Option<SeqNo> {
        let node = self.list.seek(key.internal_key())?;
        parse_internal_key(node.key())
            .filter(|p| p.user_key == key.user_key())
            .map(|p| p.seq)
    }

    /// Approximate memory used, in bytes.
    pub(crate) fn approximate_size(&self) -> usize {
        self.list.memory_used() + self.range_del_size.load(AtomicOrdering::Relaxed)
    }

    /// Entries (point versions), for estimates.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.len() == 0 && !self.has_range_dels.load(AtomicOrdering::Acquire)
    }

    /// A cursor over every entry.
    pub(crate) fn iter(self: &Arc<Self>) -> MemTableIterator {
        MemTableIterator {
            node: None,
            mem: self.clone(),
        }
    }
}

/// Cursor over a memtable: the node it is on, stepped along the
/// skiplist's links. Nothing is ever removed from a memtable, and inserts
/// link new nodes in without moving the one held, so stepping from it
/// stays correct while the memtable is written.
pub(crate) struct MemTableIterator {
    node: Option<Node>,
    /// Keeps the nodes' arena alive.
    mem: Arc<MemTable>,
}

impl InternalIterator for MemTableIterator {
    fn seek_to_first(&mut self) {
        self.node = self.mem.list.first();
    }

    fn seek_to_last(&mut self) {
        self.node = self.mem.list.last();
    }

    fn seek(&mut self, ikey: &[u8]) {
        self.node = self.mem.list.seek(ikey);
    }

    fn seek_for_prev(&mut self, ikey: &[u8]) {
        self.node = self.mem.list.seek_before(ikey, true);
    }

    fn next(&mut self) {
        if let Some(n) = self.node {
            self.node = self.mem.list.next(n);
        }
    }

    fn prev(&mut self) {
        if let Some(n) = self.node {
            self.node = self.mem.list.prev(n);
        }
    }

    fn valid(&self) -> bool {
        self.node.is_some()
    }

    fn key(&self) -> &[u8] {
        self.node.map_or(&[][..], |n| n.key())
    }

    fn value(&self) -> &[u8] {
        self.node.map_or(&[][..], |n| n.value())
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
        let m = MemTable::new(1, 4096);
        m.insert(b"k", 1, ValueKind::Put, b"v1");
        m.insert(b"k", 3, ValueKind::Delete, b"");
        m.insert(b"k", 5, ValueKind::Put, b"v5");
        m.insert(b"j", 4, ValueKind::Put, b"j");
        let kind = |r: Option<(SeqNo, ValueKind, &[u8])>| r.map(|(s, k, v)| (s, k, v.to_vec()));
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
    fn a_memtable_without_a_filter_is_searched() {
        // Replayed memtables have no filter; should one be searched (a
        // read-only open keeps what it replays), nothing may be missed.
        let m = MemTable::new(1, 0);
        assert!(m.filter.is_none());
        for i in 0..1000u64 {
            m.insert(format!("k{i}").as_bytes(), i + 1, ValueKind::Put, b"v");
        }
        for i in 0..1000u64 {
            let key = format!("k{i}");
            assert_eq!(
                m.get(key.as_bytes(), crate::types::MAX_SEQNO).map(|e| e.0),
                Some(i + 1)
            );
        }
        assert_eq!(m.get(b"absent", crate::types::MAX_SEQNO), None);
    }

    #[test]
    fn a_lookup_finds_every_entry_a_concurrent_scan_sees() {
        // Keys arrive in ascending order, so the last entry is always the
        // newest insert: readers look it up the moment they see it. Its
        // filter bits must already be visible (set before the skiplist
        // publishes the entry), or the lookup would report it missing.
        let m = Arc::new(MemTable::new(1, 64 << 10));
        let n = 200_000u64;
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        // At least once, even if the writer finished
                        // before this thread got a core.
                        let mut checked = 0u64;
                        while checked == 0 || !done.load(AtomicOrdering::Acquire) {
                            let mut it = m.iter();
                            it.seek_to_last();
                            if !it.valid() {
                                continue;
                            }
                            let key = user_key(it.key()).to_vec();
                            let found = m.get(&key, crate::types::MAX_SEQNO);
                            assert!(found.is_some(), "{key:?} seen by a scan, not by a lookup");
                            checked += 1;
                        }
                    })
                })
                .collect();
            for i in 0..n {
                m.insert(
                    format!("key{i:010}").as_bytes(),
                    i + 1,
                    ValueKind::Put,
                    b"v",
                );
            }
            done.store(true, AtomicOrdering::Release);
            for r in readers {
                r.join().unwrap();
            }
        });
    }

    #[test]
    fn iterator_both_directions() {
        let m = Arc::new(MemTable::new(1, 4096));
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
        let m = Arc::new(MemTable::new(1, 4096));
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
        let m = Arc::new(MemTable::new(1, 4096));
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
