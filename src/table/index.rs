//! A table's index in memory: the decoded index block plus a dense array
//! of eight-byte key prefixes that most of a search runs on.
//!
//! Every point lookup and seek starts with a binary search of the index.
//! On the decoded block each probe loads a key's end offset and then the
//! key, two cache lines apart; at 10M keys the index of all tables no
//! longer fits the cache, and those two loads were a fifth of a reader
//! thread's time. Here each probe first compares a `u64` rank of the key:
//! the eight bytes after the prefix the table's index keys share (all but
//! perhaps the last, see `Index::new`), big-endian, from one array (a
//! table of 16 K blocks: 128 KiB). A search finds its group of eight in
//! an array of every eighth rank (16 KiB, which stays cached) and then
//! reads that one group; the full key is loaded only when ranks tie.
//! Nothing of this is stored on disk.

use super::block::Block;
use crate::types::{compare_bytes, compare_internal_keys, user_key};
use std::cmp::Ordering;

pub(crate) struct Index {
    block: Block,
    /// A prefix nearly every entry's user key starts with (see `new`).
    common: Vec<u8>,
    /// `rank(user key)` of each entry.
    prefixes: Vec<u64>,
    /// Every `GROUP`-th prefix: a search narrows to one group here (an
    /// array an eighth the size, which stays cached) and then reads one
    /// group of `prefixes`, instead of probing `prefixes` all over.
    fences: Vec<u64>,
}

const GROUP: usize = 8;

impl Index {
    pub(crate) fn new(block: Block) -> Index {
        let n = block.len();
        // Every entry but the last separates two keys of the table, so it
        // starts with whatever the first and the last but one share. The
        // last may not: the writer shortens it to a successor of the
        // table's last key ("1" after "0000000009999998"), and a common
        // prefix that had to include it would often be empty.
        let common = match n {
            0 | 1 => Vec::new(),
            _ => {
                let first = user_key(block.key(0));
                let other = user_key(block.key(n - 2));
                let len = first.iter().zip(other).take_while(|(a, b)| a == b).count();
                first[..len].to_vec()
            }
        };
        let mut index = Index {
            block,
            common,
            prefixes: Vec::with_capacity(n),
            fences: Vec::new(),
        };
        index.prefixes = (0..n)
            .map(|i| index.rank(user_key(index.block.key(i))))
            .collect();
        index.fences = index.prefixes.iter().step_by(GROUP).copied().collect();
        index
    }

    /// A number that orders as user keys do, not strictly: `a <= b`
    /// implies `rank(a) <= rank(b)`, so unequal ranks decide a comparison
    /// and equal ones need the keys. Keys starting with `common` rank by
    /// the eight bytes after it (zero padded: padding keeps the order);
    /// keys before all of those rank 0, keys after them `u64::MAX`.
    fn rank(&self, key: &[u8]) -> u64 {
        match key.strip_prefix(&self.common[..]) {
            Some(rest) => {
                let mut b = [0u8; 8];
                let n = rest.len().min(8);
                b[..n].copy_from_slice(&rest[..n]);
                u64::from_be_bytes(b)
            }
            None if compare_bytes(key, &self.common).is_lt() => 0,
            None => u64::MAX,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Index of the first entry whose key is `>= target` (an internal
    /// key), or `len()` when none is.
    pub(crate) fn seek(&self, target: &[u8]) -> usize {
        let want = self.rank(user_key(target));
        // The first entry ranked >= `want` lies in the group before the
        // first fence >= `want` (or is that fence's entry).
        let g = self.fences.partition_point(|&f| f < want);
        let start = g.saturating_sub(1) * GROUP;
        let end = (g * GROUP).min(self.len());
        let first = start + self.prefixes[start..end].partition_point(|&p| p < want);
        if self.prefixes.get(first) != Some(&want) {
            return first;
        }
        // Entries ranked as the target: decided by their full keys.
        let (mut lo, mut hi) = (first, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let less = match self.prefixes[mid].cmp(&want) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => compare_internal_keys(self.block.key(mid), target).is_lt(),
            };
            if less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::block::BlockBuilder;
    use crate::types::{encode_internal_key, ValueKind};
    use bytes::Bytes;

    fn ik(k: &[u8], seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_internal_key(&mut v, k, seq, ValueKind::Put);
        v
    }

    fn index_of(keys: &[Vec<u8>]) -> Index {
        let mut b = BlockBuilder::new(1);
        for k in keys {
            b.add(k, b"handle");
        }
        Index::new(Block::decode(Bytes::from(b.finish_with(<[u8]>::to_vec))).unwrap())
    }

    /// The answer of a plain binary search over the full keys.
    fn expected(keys: &[Vec<u8>], target: &[u8]) -> usize {
        keys.partition_point(|k| compare_internal_keys(k, target).is_lt())
    }

    #[test]
    fn agrees_with_a_search_of_the_full_keys() {
        // Keys sharing a long prefix, keys whose distinguishing bytes go
        // past the eight compared, keys that are prefixes of others, and
        // several entries of one user key.
        let mut user: Vec<Vec<u8>> = Vec::new();
        for i in 0..40u32 {
            user.push(format!("user/0000{:04}", i * 7).into_bytes());
            user.push(format!("user/0000{:04}/long-tail-{i:03}", i * 7).into_bytes());
        }
        user.push(b"user/".to_vec());
        user.push(b"user/0".to_vec());
        user.sort();
        let mut keys = Vec::new();
        for (i, u) in user.iter().enumerate() {
            keys.push(ik(u, 100));
            if i % 5 == 0 {
                keys.push(ik(u, 50));
            }
        }
        let idx = index_of(&keys);
        assert_eq!(idx.common, b"user/");
        let mut targets: Vec<Vec<u8>> = Vec::new();
        for u in &user {
            for seq in [200, 100, 75, 50, 1] {
                targets.push(ik(u, seq));
            }
            let mut longer = u.clone();
            longer.push(0);
            targets.push(ik(&longer, 9));
            targets.push(ik(&u[..u.len() - 1], 9));
        }
        for t in [
            &b""[..],
            b"a",
            b"user",
            b"user.",
            b"use",
            b"v",
            b"user/\xff",
        ] {
            targets.push(ik(t, 9));
        }
        for t in &targets {
            assert_eq!(idx.seek(t), expected(&keys, t), "target {t:?}");
        }
    }

    /// db_bench's keys, with the last separator shortened as the writer
    /// does: the prefix is still the one the other entries share, and the
    /// last entry ranks above every key that has it.
    #[test]
    fn a_short_last_separator_does_not_empty_the_common_prefix() {
        let mut keys: Vec<Vec<u8>> = (0..1000u64)
            .map(|i| ik(format!("{:016}", 1_000_000 + i * 997).as_bytes(), 0))
            .collect();
        keys.push(ik(b"1", 0));
        let idx = index_of(&keys);
        assert_eq!(idx.common, b"0000000001");
        assert_eq!(idx.prefixes.last(), Some(&u64::MAX));
        for i in 0..1_100_000u64 / 97 {
            for t in [format!("{:016}", 1_000_000 + i * 97), format!("{}", i % 3)] {
                let t = ik(t.as_bytes(), 5);
                assert_eq!(idx.seek(&t), expected(&keys, &t));
            }
        }
    }

    #[test]
    fn agrees_on_random_indexes_of_every_size() {
        // Few distinct bytes and varied lengths: many ties of the eight
        // compared bytes, and group edges at every position.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let random_key = |rand: &mut dyn FnMut(u64) -> u64| -> Vec<u8> {
            let len = 3 + rand(12) as usize;
            let mut k = b"pp".to_vec();
            k.extend((0..len).map(|_| b'a' + rand(3) as u8));
            k
        };
        for n in 0..70 {
            let mut keys: Vec<Vec<u8>> = (0..n)
                .map(|_| ik(&random_key(&mut rand), 1 + rand(3)))
                .collect();
            keys.sort_by(|a, b| compare_internal_keys(a, b));
            keys.dedup();
            let idx = index_of(&keys);
            for _ in 0..200 {
                let t = ik(&random_key(&mut rand), rand(5));
                assert_eq!(idx.seek(&t), expected(&keys, &t), "n {n}, target {t:?}");
            }
            for k in &keys {
                assert_eq!(idx.seek(k), expected(&keys, k));
            }
        }
    }

    #[test]
    fn no_common_prefix_and_empty_index() {
        let keys: Vec<Vec<u8>> = [&b"a"[..], b"b\x00", b"b\x00\x00", b"zz"]
            .iter()
            .map(|k| ik(k, 1))
            .collect();
        let idx = index_of(&keys);
        assert!(idx.common.is_empty());
        for t in [
            &b""[..],
            b"a",
            b"a\x00",
            b"b",
            b"b\x00",
            b"b\x00\x00\x00",
            b"z",
            b"zzz",
        ] {
            for seq in [0, 1, 2] {
                let t = ik(t, seq);
                assert_eq!(idx.seek(&t), expected(&keys, &t));
            }
        }
        let empty = index_of(&[]);
        assert_eq!(empty.seek(&ik(b"k", 1)), 0);
    }
}
