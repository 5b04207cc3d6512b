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
///
/// The valid children are kept in a binary heap ordered by their current
/// key (smallest on top moving forward, largest in reverse), so a step
/// costs the moved child's step and O(log n) key comparisons, and when the
/// same child stays on top, as it does through a run of keys held by one
/// level, only the comparisons with the top's two heap children.
pub(crate) struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    /// Indexes into `children` of the valid ones, in heap order.
    heap: Vec<usize>,
    direction: Direction,
    error: Option<crate::Error>,
}

impl MergingIterator {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> MergingIterator {
        MergingIterator {
            heap: Vec::with_capacity(children.len()),
            children,
            direction: Direction::Forward,
            error: None,
        }
    }

    /// Whether child `a` belongs above child `b` in the heap. Ties (which
    /// the invariant rules out) go to the lower index, as the order the
    /// children were given in.
    fn above(&self, a: usize, b: usize) -> bool {
        let order = compare_internal_keys(self.children[a].key(), self.children[b].key());
        let want = match self.direction {
            Direction::Forward => Ordering::Less,
            Direction::Reverse => Ordering::Greater,
        };
        order == want || (order == Ordering::Equal && a < b)
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                return;
            }
            let right = left + 1;
            let child = if right < len && self.above(self.heap[right], self.heap[left]) {
                right
            } else {
                left
            };
            if !self.above(self.heap[child], self.heap[pos]) {
                return;
            }
            self.heap.swap(pos, child);
            pos = child;
        }
    }

    /// Records the error of a child that stopped being valid, if it failed.
    fn note_invalid(&mut self, i: usize) {
        if self.error.is_none() {
            if let Err(e) = self.children[i].status() {
                self.error = Some(e);
            }
        }
    }

    /// Rebuilds the heap after every child was repositioned.
    fn rebuild(&mut self, direction: Direction) {
        self.direction = direction;
        self.heap.clear();
        for i in 0..self.children.len() {
            if self.children[i].valid() {
                self.heap.push(i);
            } else {
                self.note_invalid(i);
            }
        }
        if self.error.is_some() {
            self.heap.clear();
            return;
        }
        for pos in (0..self.heap.len() / 2).rev() {
            self.sift_down(pos);
        }
    }

    /// Puts the top child, just stepped, back in its place.
    fn settle_top(&mut self) {
        let top = self.heap[0];
        if self.children[top].valid() {
            self.sift_down(0);
            return;
        }
        self.note_invalid(top);
        if self.error.is_some() {
            self.heap.clear();
            return;
        }
        self.heap.swap_remove(0);
        self.sift_down(0);
    }

    /// Puts every child but `cur` on its first entry after `cur`'s key
    /// (forward) or its last entry before it (reverse).
    fn turn(&mut self, cur: usize, to: Direction) {
        let key = self.children[cur].key().to_vec();
        for (i, c) in self.children.iter_mut().enumerate() {
            if i == cur {
                continue;
            }
            match to {
                Direction::Forward => {
                    c.seek(&key);
                    if c.valid() && compare_internal_keys(c.key(), &key) == Ordering::Equal {
                        c.next();
                    }
                }
                Direction::Reverse => {
                    c.seek_for_prev(&key);
                    if c.valid() && compare_internal_keys(c.key(), &key) == Ordering::Equal {
                        c.prev();
                    }
                }
            }
        }
    }
}

impl InternalIterator for MergingIterator {
    fn seek_to_first(&mut self) {
        self.error = None;
        for c in &mut self.children {
            c.seek_to_first();
        }
        self.rebuild(Direction::Forward);
    }

    fn seek_to_last(&mut self) {
        self.error = None;
        for c in &mut self.children {
            c.seek_to_last();
        }
        self.rebuild(Direction::Reverse);
    }

    fn seek(&mut self, ikey: &[u8]) {
        self.error = None;
        for c in &mut self.children {
            c.seek(ikey);
        }
        self.rebuild(Direction::Forward);
    }

    fn seek_for_prev(&mut self, ikey: &[u8]) {
        self.error = None;
        for c in &mut self.children {
            c.seek_for_prev(ikey);
        }
        self.rebuild(Direction::Reverse);
    }

    fn next(&mut self) {
        let Some(&cur) = self.heap.first() else {
            return;
        };
        if self.direction != Direction::Forward {
            self.turn(cur, Direction::Forward);
            self.children[cur].next();
            self.rebuild(Direction::Forward);
            return;
        }
        self.children[cur].next();
        self.settle_top();
    }

    fn prev(&mut self) {
        let Some(&cur) = self.heap.first() else {
            return;
        };
        if self.direction != Direction::Reverse {
            self.turn(cur, Direction::Reverse);
            self.children[cur].prev();
            self.rebuild(Direction::Reverse);
            return;
        }
        self.children[cur].prev();
        self.settle_top();
    }

    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn key(&self) -> &[u8] {
        self.heap
            .first()
            .map_or(&[][..], |&i| self.children[i].key())
    }

    fn value(&self) -> &[u8] {
        self.heap
            .first()
            .map_or(&[][..], |&i| self.children[i].value())
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

    /// A sorted vector as a child, which fails (becomes invalid with an
    /// error) when it steps onto entry `fail_at`.
    struct VecIter {
        keys: Vec<Vec<u8>>,
        pos: Option<usize>,
        fail_at: Option<usize>,
        failed: bool,
    }

    impl VecIter {
        fn new(mut keys: Vec<Vec<u8>>, fail_at: Option<usize>) -> VecIter {
            keys.sort_by(|a, b| compare_internal_keys(a, b));
            VecIter {
                keys,
                pos: None,
                fail_at,
                failed: false,
            }
        }

        fn land(&mut self, pos: Option<usize>) {
            self.failed = pos.is_some() && pos == self.fail_at;
            self.pos = if self.failed { None } else { pos };
        }
    }

    impl InternalIterator for VecIter {
        fn seek_to_first(&mut self) {
            self.land((!self.keys.is_empty()).then_some(0));
        }
        fn seek_to_last(&mut self) {
            self.land(self.keys.len().checked_sub(1));
        }
        fn seek(&mut self, ikey: &[u8]) {
            let p = self
                .keys
                .partition_point(|k| compare_internal_keys(k, ikey) == Ordering::Less);
            self.land((p < self.keys.len()).then_some(p));
        }
        fn seek_for_prev(&mut self, ikey: &[u8]) {
            let p = self
                .keys
                .partition_point(|k| compare_internal_keys(k, ikey) != Ordering::Greater);
            self.land(p.checked_sub(1));
        }
        fn next(&mut self) {
            let p = self.pos.expect("valid") + 1;
            self.land((p < self.keys.len()).then_some(p));
        }
        fn prev(&mut self) {
            self.land(self.pos.expect("valid").checked_sub(1));
        }
        fn valid(&self) -> bool {
            self.pos.is_some()
        }
        fn key(&self) -> &[u8] {
            &self.keys[self.pos.expect("valid")]
        }
        fn value(&self) -> &[u8] {
            user_key(self.key())
        }
        fn status(&self) -> Result<()> {
            if self.failed {
                Err(crate::Error::corruption("child", 0, "planted"))
            } else {
                Ok(())
            }
        }
    }

    fn ikey(user: &[u8], seq: u64) -> Vec<u8> {
        let mut k = Vec::new();
        crate::types::encode_internal_key(&mut k, user, seq, ValueKind::Put);
        k
    }

    /// Random children over a small alphabet (user keys shared across
    /// children at different sequence numbers) and random moves, checked
    /// against a sorted list of every key.
    #[test]
    fn agrees_with_a_sorted_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(19);
        for round in 0..400 {
            let n = rng.gen_range(0..7);
            let mut all = Vec::new();
            let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
            let mut seq = 1;
            for _ in 0..n {
                let mut keys = Vec::new();
                for _ in 0..rng.gen_range(0..12) {
                    let len = rng.gen_range(1..3);
                    let user: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..b'e')).collect();
                    keys.push(ikey(&user, seq));
                    seq += 1;
                }
                all.extend(keys.iter().cloned());
                children.push(Box::new(VecIter::new(keys, None)));
            }
            all.sort_by(|a, b| compare_internal_keys(a, b));
            let mut it = MergingIterator::new(children);
            let mut model: Option<usize> = None;
            for step in 0..60 {
                let probe = {
                    let len = rng.gen_range(1..3);
                    let user: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..b'f')).collect();
                    ikey(&user, rng.gen_range(0..seq + 1))
                };
                match rng.gen_range(0..8) {
                    0 => {
                        it.seek_to_first();
                        model = (!all.is_empty()).then_some(0);
                    }
                    1 => {
                        it.seek_to_last();
                        model = all.len().checked_sub(1);
                    }
                    2 => {
                        it.seek(&probe);
                        let p = all.partition_point(|k| {
                            compare_internal_keys(k, &probe) == Ordering::Less
                        });
                        model = (p < all.len()).then_some(p);
                    }
                    3 => {
                        it.seek_for_prev(&probe);
                        let p = all.partition_point(|k| {
                            compare_internal_keys(k, &probe) != Ordering::Greater
                        });
                        model = p.checked_sub(1);
                    }
                    4..=5 => {
                        if let Some(p) = model {
                            it.next();
                            model = (p + 1 < all.len()).then_some(p + 1);
                        }
                    }
                    _ => {
                        if let Some(p) = model {
                            it.prev();
                            model = p.checked_sub(1);
                        }
                    }
                }
                assert_eq!(it.valid(), model.is_some(), "round {round} step {step}");
                if let Some(p) = model {
                    assert_eq!(it.key(), &all[p][..], "round {round} step {step}");
                    assert_eq!(it.value(), user_key(&all[p]));
                }
                assert!(it.status().is_ok());
            }
        }
    }

    /// A child that fails while the merged iterator steps past it, in
    /// either direction, ends the iteration with its error instead of
    /// quietly leaving its entries out.
    #[test]
    fn a_failing_child_ends_the_iteration_with_its_error() {
        for reverse in [false, true] {
            let good: Vec<_> = (0..20u64)
                .map(|i| ikey(format!("k{i:02}").as_bytes(), i + 1))
                .collect();
            // The failing child holds every third key; it fails on its
            // fourth entry from the end it is walked from.
            let bad: Vec<_> = (0..20u64)
                .step_by(3)
                .map(|i| ikey(format!("k{i:02}x").as_bytes(), 100 + i))
                .collect();
            let fail_at = if reverse { bad.len() - 4 } else { 3 };
            let mut it = MergingIterator::new(vec![
                Box::new(VecIter::new(good, None)),
                Box::new(VecIter::new(bad, Some(fail_at))),
            ]);
            let mut seen = 0;
            if reverse {
                it.seek_to_last();
            } else {
                it.seek_to_first();
            }
            while it.valid() {
                seen += 1;
                if reverse {
                    it.prev()
                } else {
                    it.next()
                }
            }
            assert!(it.status().is_err(), "reverse={reverse}");
            assert_eq!(seen, 10, "stops where the child fails (reverse={reverse})");
            // A new seek starts over and clears the error.
            it.seek(&ikey(b"k19", u64::MAX >> 8));
            assert!(it.valid() && it.status().is_ok());
        }
    }
}
