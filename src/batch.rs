//! [`WriteBatch`]: several updates applied atomically.
//!
//! A batch is kept in its on-disk form, the payload of a write-ahead log
//! record, so writing it costs no re-encoding:
//!
//! ```text
//! +------------------+--------------+----------------------------------+
//! | first seq: u64LE | count: u32LE | count records                    |
//! +------------------+--------------+----------------------------------+
//! record := kind: u8 | varint32 key len | key | (Put only) varint32 value len | value
//! ```
//!
//! `kind` uses [`ValueKind`]'s values (0 = Delete, 1 = Put). Record `i`
//! gets sequence number `first seq + i`.

use crate::coding::{get_length_prefixed, get_u32_le, get_u64_le, put_length_prefixed};
use crate::error::{Error, Result};
use crate::options::{MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::types::{SeqNo, ValueKind};

pub(crate) const HEADER_LEN: usize = 12;

/// A group of puts and deletes applied atomically: after a crash either all
/// of them are visible or none, and readers never see part of a batch.
///
/// ```
/// let mut batch = aidb::WriteBatch::new();
/// batch.put("apple", "red").put("banana", "yellow").delete("cherry");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
    max_key_len: usize,
    max_value_len: usize,
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
}

impl BatchOp<'_> {
    /// The key the operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

impl Default for WriteBatch {
    fn default() -> WriteBatch {
        WriteBatch::new()
    }
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch {
            rep: vec![0; HEADER_LEN],
            count: 0,
            max_key_len: 0,
            max_value_len: 0,
        }
    }

    /// Adds a put of `value` at `key`. Size limits are checked when the
    /// batch is written.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.rep.push(ValueKind::Put as u8);
        put_length_prefixed(&mut self.rep, key);
        put_length_prefixed(&mut self.rep, value);
        self.note(key.len(), value.len());
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.rep.push(ValueKind::Delete as u8);
        put_length_prefixed(&mut self.rep, key);
        self.note(key.len(), 0);
        self
    }

    fn note(&mut self, key_len: usize, value_len: usize) {
        self.count += 1;
        self.max_key_len = self.max_key_len.max(key_len);
        self.max_value_len = self.max_value_len.max(value_len);
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        *self = WriteBatch::new();
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size in bytes (roughly what the batch adds to the log).
    pub fn size_in_bytes(&self) -> usize {
        self.rep.len()
    }

    /// The operations in the order they were added (later ones win).
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            rest: self.rep.get(HEADER_LEN..).unwrap_or(&[]),
        }
    }

    /// Checks the documented size limits ([`MAX_KEY_SIZE`],
    /// [`MAX_VALUE_SIZE`], [`MAX_BATCH_SIZE`]).
    pub(crate) fn check_limits(&self) -> Result<()> {
        if self.max_key_len > MAX_KEY_SIZE {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes exceeds the maximum key size of {MAX_KEY_SIZE} bytes",
                self.max_key_len
            )));
        }
        if self.max_value_len > MAX_VALUE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "value of {} bytes exceeds the maximum value size of {MAX_VALUE_SIZE} bytes",
                self.max_value_len
            )));
        }
        if self.rep.len() > MAX_BATCH_SIZE {
            return Err(Error::InvalidArgument(format!(
                "write batch of {} bytes exceeds the maximum batch size of {MAX_BATCH_SIZE} bytes",
                self.rep.len()
            )));
        }
        Ok(())
    }

    /// Appends every operation of `other` (used to merge a commit group).
    pub(crate) fn append(&mut self, other: &WriteBatch) {
        self.rep.extend_from_slice(&other.rep[HEADER_LEN..]);
        self.count += other.count;
        self.max_key_len = self.max_key_len.max(other.max_key_len);
        self.max_value_len = self.max_value_len.max(other.max_value_len);
    }

    /// Stamps the first sequence number and returns the encoded form.
    pub(crate) fn encode(&mut self, first_seq: SeqNo) -> &[u8] {
        self.rep[..8].copy_from_slice(&first_seq.to_le_bytes());
        self.rep[8..12].copy_from_slice(&self.count.to_le_bytes());
        &self.rep
    }

    /// Parses an encoded batch, checking its whole structure. Returns the
    /// first sequence number and the batch, or a reason for rejecting it.
    pub(crate) fn decode(rep: &[u8]) -> std::result::Result<(SeqNo, WriteBatch), String> {
        let seq = get_u64_le(rep).ok_or("batch shorter than its header")?;
        let count =
            get_u32_le(rep.get(8..).unwrap_or(&[])).ok_or("batch shorter than its header")?;
        let mut batch = WriteBatch {
            rep: rep.to_vec(),
            count: 0,
            max_key_len: 0,
            max_value_len: 0,
        };
        let mut rest = &rep[HEADER_LEN..];
        while !rest.is_empty() {
            let (op, used) = decode_op(rest).ok_or("malformed batch record")?;
            rest = &rest[used..];
            match op {
                BatchOp::Put { key, value } => batch.note(key.len(), value.len()),
                BatchOp::Delete { key } => batch.note(key.len(), 0),
            }
        }
        if batch.count != count {
            return Err(format!(
                "batch header says {count} records but holds {}",
                batch.count
            ));
        }
        Ok((seq, batch))
    }
}

fn decode_op(src: &[u8]) -> Option<(BatchOp<'_>, usize)> {
    let kind = ValueKind::try_from(*src.first()?).ok()?;
    let (key, n) = get_length_prefixed(&src[1..])?;
    match kind {
        ValueKind::Delete => Some((BatchOp::Delete { key }, 1 + n)),
        ValueKind::Put => {
            let (value, m) = get_length_prefixed(&src[1 + n..])?;
            Some((BatchOp::Put { key, value }, 1 + n + m))
        }
    }
}

/// Iterator over a batch's operations.
pub struct BatchIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;
    fn next(&mut self) -> Option<BatchOp<'a>> {
        // The representation was built by `put`/`delete` or checked by
        // `decode`, so it always parses; stop quietly if it ever did not.
        let (op, used) = decode_op(self.rest)?;
        self.rest = &self.rest[used..];
        Some(op)
    }
}

impl<'a> IntoIterator for &'a WriteBatch {
    type Item = BatchOp<'a>;
    type IntoIter = BatchIter<'a>;
    fn into_iter(self) -> BatchIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut b = WriteBatch::new();
        b.put("k1", "v1").delete("k2").put("", "");
        let enc = b.encode(42).to_vec();
        let (seq, d) = WriteBatch::decode(&enc).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(d.len(), 3);
        let ops: Vec<_> = d.iter().collect();
        assert_eq!(
            ops,
            vec![
                BatchOp::Put {
                    key: b"k1",
                    value: b"v1"
                },
                BatchOp::Delete { key: b"k2" },
                BatchOp::Put {
                    key: b"",
                    value: b""
                },
            ]
        );
    }

    #[test]
    fn decode_rejects_every_truncation_and_bad_count() {
        let mut b = WriteBatch::new();
        b.put("key", "value").delete("gone");
        let enc = b.encode(7).to_vec();
        for cut in 0..enc.len() {
            assert!(WriteBatch::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = enc.clone();
        bad[8] = 3;
        assert!(WriteBatch::decode(&bad).is_err());
    }

    #[test]
    fn clear_and_append() {
        let mut a = WriteBatch::new();
        a.put("a", "1");
        let mut b = WriteBatch::new();
        b.delete("b");
        a.append(&b);
        assert_eq!(a.len(), 2);
        a.clear();
        assert!(a.is_empty());
        assert_eq!(a.size_in_bytes(), HEADER_LEN);
    }
}
