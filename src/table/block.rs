//! Blocks: sorted entries with prefix-compressed keys and restart points.
//!
//! ```text
//! entry   := shared: varint32 | unshared: varint32 | value len: varint32 | key[shared..] | value
//! block   := entry* | restart offset: u32 LE * n | n: u32 LE
//! ```
//!
//! Every `restart_interval`-th entry stores its whole key (`shared` = 0)
//! and its offset is listed among the restarts. Data blocks are read in
//! place (`data_block.rs`); [`Block`] decodes a block once, checking every
//! field and the key order, into full keys and value positions: index
//! blocks (searched on every read) and `verify` use it.

use crate::coding::{get_u32_le, get_varint32, put_varint32};
use bytes::Bytes;
use std::cmp::Ordering;

/// Builds one block.
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry; keys must arrive in increasing order.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart == self.restart_interval {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint32(&mut self.buf, shared as u32);
        put_varint32(&mut self.buf, (key.len() - shared) as u32);
        put_varint32(&mut self.buf, value.len() as u32);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Size the block would have if finished now.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Finishes the block, hands its bytes to `f`, and empties the
    /// builder for the next block, keeping its buffers (a table builder
    /// starts a block every 4 KiB; growing a fresh buffer to that size
    /// took a dozen reallocations each time).
    pub(crate) fn finish_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf
            .extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        let result = f(&self.buf);
        self.buf.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
        result
    }
}

/// A decoded, validated block. Values are slices of the block's bytes, so
/// handing one out copies nothing.
pub(crate) struct Block {
    data: Bytes,
    keys: Vec<u8>,
    key_ends: Vec<u32>,
    values: Vec<(u32, u32)>,
}

/// Where a block's restart array starts and how many restart points it
/// lists, checking that the array fits, is not empty and starts with the
/// block's first entry (readers that start from restart 0 would
/// otherwise skip the entries before it). Every block reader starts here.
pub(crate) fn locate_restarts(data: &[u8]) -> Result<(usize, usize), String> {
    let n = data.len();
    let count = n
        .checked_sub(4)
        .and_then(|at| get_u32_le(&data[at..]))
        .ok_or("block too short for its restart count")? as usize;
    let restarts_at = count
        .checked_mul(4)
        .and_then(|r| n.checked_sub(4 + r))
        .ok_or("restart array larger than the block")?;
    if count == 0 {
        return Err("block has no restart point".into());
    }
    if get_u32_le(&data[restarts_at..]) != Some(0) {
        return Err("the first restart point is not the block's start".into());
    }
    Ok((restarts_at, count))
}

/// The header of the entry at `at` of `entries` (a block's bytes before
/// its restart array): shared length, unshared length, value length and
/// where the key's unshared bytes start, with the entry's end checked
/// against `entries`.
pub(crate) fn entry_header(
    entries: &[u8],
    at: usize,
) -> Result<(usize, usize, usize, usize), String> {
    let (shared, unshared, value_len, key_at) = match entries.get(at..at.saturating_add(3)) {
        // Most entries have three one-byte lengths.
        Some(&[a, b, c]) if (a | b | c) < 0x80 => (a as usize, b as usize, c as usize, at + 3),
        _ => {
            let mut pos = at;
            let mut field = |what: &str| -> Result<usize, String> {
                let (v, used) = entries
                    .get(pos..)
                    .and_then(get_varint32)
                    .ok_or_else(|| format!("bad {what} at block offset {pos}"))?;
                pos += used;
                Ok(v as usize)
            };
            let shared = field("shared length")?;
            let unshared = field("key length")?;
            let value_len = field("value length")?;
            (shared, unshared, value_len, pos)
        }
    };
    let end = key_at
        .checked_add(unshared)
        .and_then(|k| k.checked_add(value_len));
    if end.is_none_or(|e| e > entries.len()) {
        return Err(format!("entry overruns the block at offset {at}"));
    }
    Ok((shared, unshared, value_len, key_at))
}

impl Block {
    /// Decodes `data`; the error names the first malformed field.
    pub(crate) fn decode(data: Bytes) -> Result<Block, String> {
        let (restarts_at, count) = locate_restarts(&data)?;
        let restart_offsets: Vec<usize> = (0..count)
            .map(|i| get_u32_le(&data[restarts_at + 4 * i..]).unwrap_or(u32::MAX) as usize)
            .collect();
        // Sized up front so that decoding does not grow vectors entry by
        // entry: the keys take at most the block's bytes, and each entry
        // takes at least three bytes.
        let max_entries = restarts_at / 3 + 1;
        let mut block = Block {
            data: data.clone(),
            keys: Vec::with_capacity(restarts_at),
            key_ends: Vec::with_capacity(max_entries),
            values: Vec::with_capacity(max_entries),
        };
        let entries = &data[..restarts_at];
        let mut pos = 0;
        let mut key: Vec<u8> = Vec::new();
        let mut next_restart = 0;
        while pos < entries.len() {
            let is_restart = restart_offsets.get(next_restart) == Some(&pos);
            if is_restart {
                next_restart += 1;
            }
            let (shared, unshared, value_len, key_at) = entry_header(entries, pos)?;
            if shared > key.len() || (is_restart && shared != 0) {
                return Err(format!("bad shared key length at block offset {pos}"));
            }
            pos = key_at;
            let key_end = key_at + unshared;
            let value_end = key_end + value_len;
            key.truncate(shared);
            key.extend_from_slice(&entries[pos..key_end]);
            if let Some(prev_end) = block.key_ends.last() {
                let prev_start = block
                    .key_ends
                    .len()
                    .checked_sub(2)
                    .map_or(0, |i| block.key_ends[i]);
                let prev = &block.keys[prev_start as usize..*prev_end as usize];
                if crate::types::compare_internal_keys(prev, &key) != Ordering::Less {
                    return Err(format!("keys out of order at block offset {pos}"));
                }
            }
            block.keys.extend_from_slice(&key);
            block.key_ends.push(block.keys.len() as u32);
            block.values.push((key_end as u32, value_end as u32));
            pos = value_end;
        }
        // An empty block (only the index of an empty table) keeps the one
        // restart point a builder always writes.
        let expected = if entries.is_empty() { 0 } else { count };
        if next_restart != expected || (entries.is_empty() && restart_offsets != [0]) {
            return Err("restart points do not match the entries".into());
        }
        Ok(block)
    }

    pub(crate) fn len(&self) -> usize {
        self.key_ends.len()
    }

    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.key_ends[i - 1] as usize
        };
        &self.keys[start..self.key_ends[i] as usize]
    }

    pub(crate) fn value(&self, i: usize) -> &[u8] {
        let (s, e) = self.values[i];
        &self.data[s as usize..e as usize]
    }

    /// Index of the first entry whose key is `>= target` under `cmp`
    /// (`len()` when none is). Tables search their index through
    /// [`super::index::Index`]; this plain search is its benchmark baseline.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn seek(&self, target: &[u8], cmp: fn(&[u8], &[u8]) -> Ordering) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if cmp(self.key(mid), target) == Ordering::Less {
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
    use crate::types::{compare_internal_keys, encode_internal_key, ValueKind};

    fn ik(k: &str, seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_internal_key(&mut v, k.as_bytes(), seq, ValueKind::Put);
        v
    }

    #[test]
    fn round_trip_and_seek() {
        let mut b = BlockBuilder::new(3);
        let keys: Vec<Vec<u8>> = (0..20).map(|i| ik(&format!("key{i:03}"), 5)).collect();
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        let block = Block::decode(Bytes::from(b.finish_with(<[u8]>::to_vec))).unwrap();
        assert_eq!(block.len(), 20);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(block.key(i), k.as_slice());
            assert_eq!(block.value(i), format!("v{i}").as_bytes());
            assert_eq!(block.seek(k, compare_internal_keys), i);
        }
        assert_eq!(block.seek(&ik("zzz", 1), compare_internal_keys), 20);
        assert_eq!(block.seek(&ik("key0005", 1), compare_internal_keys), 1);
    }

    #[test]
    fn every_truncation_and_most_flips_are_rejected_or_harmless() {
        let mut b = BlockBuilder::new(2);
        for i in 0..10 {
            b.add(&ik(&format!("k{i}"), 1), b"value");
        }
        let enc = b.finish_with(<[u8]>::to_vec);
        for cut in 0..enc.len() {
            let _ = Block::decode(Bytes::copy_from_slice(&enc[..cut]));
        }
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x55;
            let _ = Block::decode(Bytes::from(bad)); // must not panic
        }
    }
}
