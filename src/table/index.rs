//! A table's index in memory: the decoded index block plus a dense array
//! of eight-byte key prefixes that most of a search runs on.
//!
//! Every point lookup and seek starts with a binary search of the index.
//! On the decoded block each probe loads a key's end offset and then the
//! key, two cache lines apart; at 10M keys the index of all tables no
//! longer fits the cache, and those two loads were a fifth of a reader
//! thread's time. Here each probe first compares the eight bytes that
//! follow the prefix every index key in the table shares, read as a
//! big-endian `u64` from one array (a table of 16 K blocks: 128 KiB).
//! The last probes land in one cache line, and the full key is loaded
//! only when the prefixes are equal. Nothing of this is stored on disk.

use super::block::Block;
use crate::types::{compare_bytes, compare_internal_keys, user_key};
use std::cmp::Ordering;

pub(crate) struct Index {
    block: Block,
    /// The bytes every index entry's user key starts with.
    common: Vec<u8>,
    /// For each entry, the eight user-key bytes after `common`, zero
    /// padded. Padding keeps the order: `a <= b` implies
    /// `prefix(a) <= prefix(b)`, so unequal prefixes decide a comparison.
    prefixes: Vec<u64>,
}

/// The eight bytes of `key` from the start, zero padded, as a number that
/// orders as the bytes do.
fn prefix_of(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

impl Index {
    pub(crate) fn new(block: Block) -> Index {
        let n = block.len();
        let common = if n == 0 {
            Vec::new()
        } else {
            // Sorted keys: what the first and last share, all share.
            let first = user_key(block.key(0));
            let last = user_key(block.key(n - 1));
            let len = first.iter().zip(last).take_while(|(a, b)| a == b).count();
            first[..len].to_vec()
        };
        let prefixes = (0..n)
            .map(|i| prefix_of(&user_key(block.key(i))[common.len()..]))
            .collect();
        Index {
            block,
            common,
            prefixes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Index of the first entry whose key is `>= target` (an internal
    /// key), or `len()` when none is.
    pub(crate) fn seek(&self, target: &[u8]) -> usize {
        let t = user_key(target);
        let Some(rest) = t.strip_prefix(&self.common[..]) else {
            // Every entry starts with `common` and `t` does not: all
            // entries order the same way against it.
            return match compare_bytes(t, &self.common) {
                Ordering::Less => 0,
                _ => self.len(),
            };
        };
        let want = prefix_of(rest);
        let (mut lo, mut hi) = (0, self.len());
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
