//! A skiplist of (internal key, value) entries in an arena: one writer,
//! any number of lock-free readers, no removal.
//!
//! # Node layout
//! A node is one arena allocation, addressed by a pointer to its level-0
//! link:
//!
//! ```text
//! [next(h-1)] … [next(1)] | next(0) | key_len u32 | value_len u32 | key | value
//!                          ^ node pointer
//! ```
//!
//! Links of higher levels sit *below* the node pointer, so the key is at a
//! fixed offset whatever the node's height, and a search that reads a
//! node's link and then its key touches one cache line for both.
//!
//! # Publication
//! The writer fills in a node completely (key, value, its own links) and
//! only then links it in, level 0 first, with release stores; readers
//! follow links with acquire loads. A reader therefore either does not
//! see a node or sees all of it. A node linked at level 0 but not yet at
//! a higher level is only reached at level 0 for a moment, which costs a
//! search a few extra steps, never a wrong answer. Nothing is ever
//! unlinked or freed before the whole list drops.

use super::arena::{Arena, ALIGN};
use crate::types::compare_internal_keys;
use parking_lot::Mutex;
use std::cmp::Ordering;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering as AtomicOrdering};

/// Highest tower: with one node in four reaching each next level, 12
/// levels keep searches logarithmic up to about 16 million entries.
const MAX_HEIGHT: usize = 12;
const BRANCHING: u64 = 4;

const LINK: usize = std::mem::size_of::<AtomicPtr<u8>>();
/// Bytes from the node pointer to the key: the level-0 link and the two
/// lengths.
const KEY_OFFSET: usize = LINK + 8;

/// A node of the list (see the module docs for its layout). Copyable: a
/// pointer into the arena, valid for as long as the list is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Node(NonNull<u8>);

// SAFETY: a node is immutable once published, apart from its links, which
// are atomics; it lives as long as the list (callers hold the list).
unsafe impl Send for Node {}
unsafe impl Sync for Node {}

impl Node {
    fn link(self, level: usize) -> &'static AtomicPtr<u8> {
        // SAFETY: level < the node's height (callers' invariant), so the
        // link lies inside the node's allocation, 8-aligned; it is only
        // accessed atomically. The 'static lifetime is narrowed by every
        // caller to the list's.
        unsafe { &*(self.0.as_ptr().sub(level * LINK) as *const AtomicPtr<u8>) }
    }

    fn next(self, level: usize) -> Option<Node> {
        NonNull::new(self.link(level).load(AtomicOrdering::Acquire)).map(Node)
    }

    fn lens(self) -> (usize, usize) {
        // SAFETY: the lengths are written before the node is published
        // and never change; the header is 4-aligned.
        unsafe {
            let p = self.0.as_ptr().add(LINK) as *const u32;
            (*p as usize, *p.add(1) as usize)
        }
    }

    /// The node's key, valid as long as the list.
    pub(super) fn key<'a>(self) -> &'a [u8] {
        let (key_len, _) = self.lens();
        // SAFETY: written before publication, immutable afterwards.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(KEY_OFFSET), key_len) }
    }

    /// The node's value, valid as long as the list.
    pub(super) fn value<'a>(self) -> &'a [u8] {
        let (key_len, value_len) = self.lens();
        // SAFETY: as for `key`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(KEY_OFFSET + key_len), value_len) }
    }
}

fn less(a: &[u8], b: &[u8]) -> bool {
    compare_internal_keys(a, b) == Ordering::Less
}

/// What only the writer touches: the arena, the random heights, and the
/// splice (the nodes around the previous insert), held under one lock
/// that callers, who serialise their inserts, never contend on.
struct Writer {
    arena: Arena,
    rng: u64,
    /// For each level, the node after which the previous insert went (or
    /// the head) and the node that followed it (`None`: the end). Keys
    /// arriving in order, as in a sorted load or a batch of consecutive
    /// keys, are placed from it with a couple of comparisons instead of a
    /// search from the top.
    prev: [Node; MAX_HEIGHT],
    next: [Option<Node>; MAX_HEIGHT],
    /// Arena bytes taken by the head, not counted as used: an empty list
    /// reports no memory, as an empty memtable always has.
    head_bytes: usize,
}

/// The skiplist. `'a` lifetimes handed out by its methods are tied to
/// `&self`: nodes live until the list drops.
pub(super) struct SkipList {
    head: Node,
    /// Height of the tallest node; only grows. Read relaxed: a reader that
    /// sees a new height before the links at it starts from the head's
    /// empty links there and drops a level, which is harmless.
    height: AtomicUsize,
    len: AtomicUsize,
    used: AtomicUsize,
    writer: Mutex<Writer>,
}

impl SkipList {
    pub(super) fn new() -> SkipList {
        let mut arena = Arena::new();
        let head = new_node(&mut arena, MAX_HEIGHT, &[], &[]);
        SkipList {
            head,
            height: AtomicUsize::new(1),
            len: AtomicUsize::new(0),
            used: AtomicUsize::new(0),
            writer: Mutex::new(Writer {
                head_bytes: arena.used(),
                arena,
                rng: 0x2545_f491_4f6c_dd1d,
                prev: [head; MAX_HEIGHT],
                next: [None; MAX_HEIGHT],
            }),
        }
    }

    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.len.load(AtomicOrdering::Relaxed)
    }

    /// Arena bytes used.
    pub(super) fn memory_used(&self) -> usize {
        self.used.load(AtomicOrdering::Relaxed)
    }

    /// Adds the internal key `user_key` + `trailer` (not yet in the list)
    /// with `value`, calling `before_publish` once the node's place is
    /// found and before any reader can reach it.
    pub(super) fn insert(
        &self,
        user_key: &[u8],
        trailer: [u8; 8],
        value: &[u8],
        before_publish: impl FnOnce(),
    ) {
        let mut guard = self.writer.lock();
        let w = &mut *guard;
        let height = w.random_height();
        // Built first, so that the search compares against its key.
        let node = new_node(&mut w.arena, height, &[user_key, &trailer], value);
        let key = node.key();
        let top = self.height.load(AtomicOrdering::Relaxed);
        if height > top {
            // The new levels start empty: the splice there is the head.
            self.height.store(height, AtomicOrdering::Relaxed);
        }
        // The lowest level whose splice still brackets the key; every
        // level above it does too (each level's interval contains the one
        // below), so only the levels below need a search. Levels from
        // `top` up hold only the head and bracket every key.
        let mut level = 0;
        while level < top {
            let after_prev = w.prev[level] == self.head || less(w.prev[level].key(), key);
            let before_next = w.next[level].is_none_or(|n| less(key, n.key()));
            if after_prev && before_next {
                break;
            }
            level += 1;
        }
        // Levels from `top` up hold only the head, which brackets every
        // key; with every level in use and none bracketing, the top level
        // is searched from the head.
        if level == MAX_HEIGHT {
            level -= 1;
            let (p, n) = self.find_splice_at(key, self.head, level);
            w.prev[level] = p;
            w.next[level] = n;
        }
        while level > 0 {
            level -= 1;
            let (p, n) = self.find_splice_at(key, w.prev[level + 1], level);
            w.prev[level] = p;
            w.next[level] = n;
        }

        before_publish();
        for l in 0..height {
            // Not yet visible: its own links need no ordering.
            node.link(l)
                .store(opt_ptr(w.next[l]), AtomicOrdering::Relaxed);
            // Publishes the node (its key, value and links) at this level.
            w.prev[l]
                .link(l)
                .store(node.0.as_ptr(), AtomicOrdering::Release);
            w.prev[l] = node;
        }
        // Only the writer, under its lock, changes the count: no locked
        // read-modify-write needed.
        let len = self.len.load(AtomicOrdering::Relaxed);
        self.len.store(len + 1, AtomicOrdering::Relaxed);
        self.used
            .store(w.arena.used() - w.head_bytes, AtomicOrdering::Relaxed);
    }

    /// The last node before `key` at `level`, starting from `from` (which
    /// is before it), and the node after that one there.
    fn find_splice_at(&self, key: &[u8], from: Node, level: usize) -> (Node, Option<Node>) {
        let mut x = from;
        loop {
            match x.next(level) {
                Some(n) if less(n.key(), key) => x = n,
                next => return (x, next),
            }
        }
    }

    /// The first node whose key is `>= key`.
    pub(super) fn seek(&self, key: &[u8]) -> Option<Node> {
        let mut x = self.head;
        let mut level = self.height.load(AtomicOrdering::Relaxed) - 1;
        // The node last found not to be before `key`: met again on the
        // level below, it needs no second comparison.
        let mut not_before: Option<Node> = None;
        loop {
            let next = x.next(level);
            match next {
                Some(n) if next != not_before && less(n.key(), key) => x = n,
                _ => {
                    if level == 0 {
                        return next;
                    }
                    not_before = next;
                    level -= 1;
                }
            }
        }
    }

    /// The last node whose key is `< key` (`before_or_at` false) or
    /// `<= key` (true).
    pub(super) fn seek_before(&self, key: &[u8], before_or_at: bool) -> Option<Node> {
        let mut x = self.head;
        let mut level = self.height.load(AtomicOrdering::Relaxed) - 1;
        loop {
            // One load per step: a second one could see a node linked in
            // meanwhile that was never compared.
            let next = x.next(level).filter(|n| {
                let ord = compare_internal_keys(n.key(), key);
                ord == Ordering::Less || (before_or_at && ord == Ordering::Equal)
            });
            if let Some(n) = next {
                x = n;
            } else if level == 0 {
                return (x != self.head).then_some(x);
            } else {
                level -= 1;
            }
        }
    }

    pub(super) fn first(&self) -> Option<Node> {
        self.head.next(0)
    }

    pub(super) fn last(&self) -> Option<Node> {
        let mut x = self.head;
        let mut level = self.height.load(AtomicOrdering::Relaxed) - 1;
        loop {
            match x.next(level) {
                Some(n) => x = n,
                None if level == 0 => return (x != self.head).then_some(x),
                None => level -= 1,
            }
        }
    }

    /// The node after `node`.
    pub(super) fn next(&self, node: Node) -> Option<Node> {
        node.next(0)
    }

    /// The node before `node` (a search: nodes have no back links).
    pub(super) fn prev(&self, node: Node) -> Option<Node> {
        self.seek_before(node.key(), false)
    }
}

fn opt_ptr(n: Option<Node>) -> *mut u8 {
    n.map_or(ptr::null_mut(), |n| n.0.as_ptr())
}

/// Lays out a node of `height` levels in the arena, its links empty, its
/// key the concatenation of `key_parts`.
fn new_node(arena: &mut Arena, height: usize, key_parts: &[&[u8]], value: &[u8]) -> Node {
    let key_len: usize = key_parts.iter().map(|p| p.len()).sum();
    let key_len = u32::try_from(key_len).expect("keys are limited to 64 KiB");
    let value_len = u32::try_from(value.len()).expect("values are limited to 256 MiB");
    let below = (height - 1) * LINK;
    let size = below + KEY_OFFSET + key_len as usize + value.len();
    let base = arena.allocate(size).as_ptr();
    debug_assert_eq!(base as usize % ALIGN, 0);
    // SAFETY: the allocation is `size` bytes, 8-aligned, fresh and not yet
    // shared; every write below stays inside it.
    unsafe {
        let node = base.add(below);
        for l in 0..height {
            (node.sub(l * LINK) as *mut *mut u8).write(ptr::null_mut());
        }
        let lens = node.add(LINK) as *mut u32;
        lens.write(key_len);
        lens.add(1).write(value_len);
        let mut at = node.add(KEY_OFFSET);
        for part in key_parts {
            ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
            at = at.add(part.len());
        }
        ptr::copy_nonoverlapping(value.as_ptr(), at, value.len());
        Node(NonNull::new_unchecked(node))
    }
}

impl Writer {
    fn random_height(&mut self) -> usize {
        let mut height = 1;
        while height < MAX_HEIGHT && self.next_random().is_multiple_of(BRANCHING) {
            height += 1;
        }
        height
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: quality enough for tower heights.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{pack_trailer, ValueKind};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// The internal key `user_key`@`seq` and the value stored with it.
    fn entry(user_key: &[u8], seq: u64) -> (Vec<u8>, Vec<u8>) {
        let mut ikey = user_key.to_vec();
        ikey.extend_from_slice(&pack_trailer(seq, ValueKind::Put).to_le_bytes());
        let value = format!("{}@{seq}", String::from_utf8_lossy(user_key)).into_bytes();
        (ikey, value)
    }

    fn insert(list: &SkipList, user_key: &[u8], seq: u64) {
        let trailer = pack_trailer(seq, ValueKind::Put).to_le_bytes();
        list.insert(user_key, trailer, &entry(user_key, seq).1, || {});
    }

    fn ordered(ikey: &[u8]) -> (Vec<u8>, std::cmp::Reverse<u64>) {
        let (user, trailer) = ikey.split_at(ikey.len() - 8);
        let trailer = u64::from_le_bytes(trailer.try_into().unwrap());
        (user.to_vec(), std::cmp::Reverse(trailer))
    }

    /// Entries by (user key, newest first), as the list orders them.
    type Model = BTreeMap<(Vec<u8>, std::cmp::Reverse<u64>), (Vec<u8>, Vec<u8>)>;

    fn check_against_model(list: &SkipList, model: &Model, probes: &[Vec<u8>]) {
        let want: Vec<&(Vec<u8>, Vec<u8>)> = model.values().collect();
        let mut got = Vec::new();
        let mut n = list.first();
        while let Some(x) = n {
            got.push((x.key().to_vec(), x.value().to_vec()));
            n = list.next(x);
        }
        assert_eq!(got.iter().collect::<Vec<_>>(), want);
        assert_eq!(list.len(), want.len());
        let mut back = Vec::new();
        let mut n = list.last();
        while let Some(x) = n {
            back.push(x.key().to_vec());
            n = list.prev(x);
        }
        back.reverse();
        assert_eq!(back, want.iter().map(|e| e.0.clone()).collect::<Vec<_>>());
        for probe in probes {
            let o = ordered(probe);
            let ge = model.range(o.clone()..).next().map(|(_, e)| e.0.clone());
            assert_eq!(list.seek(probe).map(|n| n.key().to_vec()), ge);
            let le = model
                .range(..=o.clone())
                .next_back()
                .map(|(_, e)| e.0.clone());
            assert_eq!(list.seek_before(probe, true).map(|n| n.key().to_vec()), le);
            let lt = model.range(..o).next_back().map(|(_, e)| e.0.clone());
            assert_eq!(list.seek_before(probe, false).map(|n| n.key().to_vec()), lt);
        }
    }

    /// Runs of keys inserted in ascending, descending or random order
    /// exercise the splice (reused, partly reused, searched afresh).
    #[derive(Debug, Clone)]
    enum Run {
        Up(u16, u8),
        Down(u16, u8),
        Random(Vec<u16>),
    }

    fn run() -> impl Strategy<Value = Run> {
        prop_oneof![
            (any::<u16>(), 1u8..40).prop_map(|(s, n)| Run::Up(s, n)),
            (any::<u16>(), 1u8..40).prop_map(|(s, n)| Run::Down(s, n)),
            proptest::collection::vec(any::<u16>(), 1..40).prop_map(Run::Random),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_sorted_model(runs in proptest::collection::vec(run(), 1..30),
                                  probes in proptest::collection::vec((any::<u16>(), 0u64..2000), 1..40)) {
            let list = SkipList::new();
            let mut model = BTreeMap::new();
            let mut seq = 0u64;
            let mut add = |k: u16, list: &SkipList| {
                seq += 1;
                // Short and long keys (some past one cache line).
                let user = if k.is_multiple_of(5) { format!("{k:05}-{}", "x".repeat(60)) } else { format!("{k:05}") };
                insert(list, user.as_bytes(), seq);
                let e = entry(user.as_bytes(), seq);
                model.insert(ordered(&e.0), e);
            };
            for r in &runs {
                match r {
                    Run::Up(s, n) => (0..*n as u16).for_each(|i| add(s.wrapping_add(i), &list)),
                    Run::Down(s, n) => (0..*n as u16).for_each(|i| add(s.wrapping_sub(i), &list)),
                    Run::Random(keys) => keys.iter().for_each(|&k| add(k, &list)),
                }
            }
            let probes: Vec<Vec<u8>> = probes.iter().map(|(k, s)| entry(format!("{k:05}").as_bytes(), *s).0).collect();
            check_against_model(&list, &model, &probes);
        }
    }

    #[test]
    fn heights_reach_the_top_and_large_entries_fit() {
        let list = SkipList::new();
        // Enough entries that towers reach all twelve levels is too many
        // for a unit test; 200k reach about nine, and every insert after
        // the splice goes stale searches from the head.
        for i in 0..200_000u32 {
            insert(&list, &i.wrapping_mul(2_654_435_761).to_be_bytes(), 1);
        }
        assert!(list.height.load(AtomicOrdering::Relaxed) >= 7);
        let big = vec![7u8; 3 << 20];
        list.insert(
            b"big",
            pack_trailer(1, ValueKind::Put).to_le_bytes(),
            &big,
            || {},
        );
        let node = list.seek(&entry(b"big", 1).0).unwrap();
        assert_eq!(node.value(), &big[..]);
        assert!(list.memory_used() > (3 << 20) + 200_000 * 20);
        let mut n = 0;
        let mut x = list.first();
        let mut last: Option<Vec<u8>> = None;
        while let Some(node) = x {
            if let Some(l) = &last {
                assert!(less(l, node.key()));
            }
            last = Some(node.key().to_vec());
            n += 1;
            x = list.next(node);
        }
        assert_eq!(n, 200_001);
    }

    /// One writer inserts a fixed permutation of keys and publishes how
    /// many it has inserted (as the engine publishes a sequence number
    /// after inserting a batch). Readers probe mostly at the key being
    /// inserted right now and check that a seek and the step after it
    /// skip no published key and return whole entries; now and then a
    /// full scan checks order and completeness.
    #[test]
    fn readers_see_every_published_entry_while_the_writer_inserts() {
        // Several lists, for more chances to catch the writer between two
        // stores.
        for _ in 0..8 {
            readers_race_one_writer();
        }
    }

    fn readers_race_one_writer() {
        const N: u64 = 100_000;
        const STEP: u64 = 7_919; // prime, so i * STEP % N permutes 0..N
        let inverse = (1..N).find(|i| i * STEP % N == 1).unwrap();
        // The key inserted i-th is `value_at(i)`; the value v is inserted
        // at position `index_of(v)`.
        let value_at = |i: u64| i * STEP % N;
        let index_of = move |v: u64| v * inverse % N;
        let user_key = |v: u64| format!("{v:08}").into_bytes();
        let list = Arc::new(SkipList::new());
        let published = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (list, published, done) = (list.clone(), published.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut rounds = 0u64;
                    let value_of = |node: Node| -> u64 {
                        let user = &node.key()[..node.key().len() - 8];
                        let v: u64 = std::str::from_utf8(user).unwrap().parse().unwrap();
                        let seq =
                            u64::from_le_bytes(node.key()[user.len()..].try_into().unwrap()) >> 8;
                        assert_eq!(node.value(), &entry(user, seq).1[..], "torn entry");
                        v
                    };
                    // No key in `from..to` was published before `n`.
                    let none_published_in = |from: u64, to: u64, n: usize| {
                        for u in from..to {
                            assert!(index_of(u) as usize >= n, "published key {u} skipped");
                        }
                    };
                    while !done.load(AtomicOrdering::Acquire) || rounds == 0 {
                        rounds += 1;
                        let n = published.load(AtomicOrdering::Acquire);
                        let probe = if rounds.is_multiple_of(2) {
                            value_at(n as u64 % N)
                        } else {
                            (rounds * 131 + r) % N
                        };
                        let first = list.seek(&entry(&user_key(probe), u64::MAX >> 8).0);
                        let Some(first) = first else {
                            none_published_in(probe, N, n);
                            continue;
                        };
                        let v = value_of(first);
                        none_published_in(probe, v, n);
                        match list.next(first) {
                            Some(second) => none_published_in(v + 1, value_of(second), n),
                            None => none_published_in(v + 1, N, n),
                        }
                        if rounds.is_multiple_of(4096) {
                            let mut seen = 0usize;
                            let mut last: Option<&[u8]> = None;
                            let mut x = list.first();
                            while let Some(node) = x {
                                if let Some(l) = last {
                                    assert!(less(l, node.key()), "scan out of order");
                                }
                                last = Some(node.key());
                                seen += 1;
                                x = list.next(node);
                            }
                            assert!(seen >= n, "scan saw {seen} of {n} published entries");
                        }
                    }
                    rounds
                })
            })
            .collect();
        for i in 0..N {
            insert(&list, &user_key(value_at(i)), i + 1);
            published.store(i as usize + 1, AtomicOrdering::Release);
        }
        done.store(true, AtomicOrdering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(list.len(), N as usize);
    }
}
