//! [`WriteBatch`]: several updates applied atomically.
//!
//! A batch is kept in its on-disk form, the payload of a write-ahead log
//! record, so writing it costs no re-encoding:
//!
//! ```text
//! +------------------+--------------+----------------------------------+
//! | first seq: u64LE | count: u32LE | count records                    |
//! +------------------+--------------+----------------------------------+
//! record := tag: u8 | (tag & 0x80) varint32 family | varint32 key len | key
//!           | (Put only) varint32 value len | value
//! ```
//!
//! The low bits of `tag` are the operation: 0 = Delete, 1 = Put, 2 = Merge
//! (the value is the operand), 3 = DeleteRange (the key is the start, the
//! value the exclusive end); bit 7 set means a column family id follows
//! (clear: the default family, id 0, which is all format 1 knew). Record
//! `i` gets sequence number `first seq + i`.

use crate::coding::{
    get_length_prefixed, get_u32_le, get_u64_le, get_varint32, put_length_prefixed, put_varint32,
};
use crate::column_family::ColumnFamily;
use crate::error::{Error, Result};
use crate::iterator::KeyRange;
use crate::options::{MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::types::{SeqNo, ValueKind};
use std::ops::Bound;

pub(crate) const HEADER_LEN: usize = 12;

/// Bit of a record's tag saying a column family id follows.
const HAS_FAMILY: u8 = 0x80;

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
    /// The families other than the default one that records name, with
    /// the identity of the handle used (see `ColumnFamily::uid`), so that
    /// a write can check that each id means that family in its database.
    families: Vec<(u32, u64)>,
    /// Whether some record is for the default family.
    touches_default: bool,
    /// A range deletion without an end was added: writing the batch fails.
    unbounded_range: bool,
}

/// The batch record tag of a range deletion (not a [`ValueKind`]: range
/// tombstones are not point entries).
const RANGE_DELETE: u8 = 3;

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Merge `operand` into `key` (see [`MergeOperator`](crate::MergeOperator)).
    Merge {
        /// The key.
        key: &'a [u8],
        /// The operand.
        operand: &'a [u8],
    },
    /// Remove every key in `start..end`.
    DeleteRange {
        /// The first key removed.
        start: &'a [u8],
        /// The first key after the range (not removed).
        end: &'a [u8],
    },
}

impl BatchOp<'_> {
    /// The key the operation touches (the start, for a range).
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } | BatchOp::Merge { key, .. } => key,
            BatchOp::DeleteRange { start, .. } => start,
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
        WriteBatch::with_capacity_bytes(0)
    }

    /// An empty batch with room for `bytes` bytes of encoded operations
    /// (about key and value length plus four bytes each), so that adding
    /// them does not reallocate.
    pub fn with_capacity_bytes(bytes: usize) -> WriteBatch {
        let mut rep = Vec::with_capacity(HEADER_LEN + bytes);
        rep.resize(HEADER_LEN, 0);
        WriteBatch {
            rep,
            count: 0,
            max_key_len: 0,
            max_value_len: 0,
            families: Vec::new(),
            touches_default: false,
            unbounded_range: false,
        }
    }

    /// Adds a put of `value` at `key`. Size limits are checked when the
    /// batch is written.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.add(0, ValueKind::Put as u8, key.as_ref(), Some(value.as_ref()))
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.add(0, ValueKind::Delete as u8, key.as_ref(), None)
    }

    /// Adds a merge of `operand` into `key`: when the key is read, the
    /// family's [`MergeOperator`](crate::MergeOperator) folds it with the
    /// value before it.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> &mut Self {
        self.add(
            0,
            ValueKind::Merge as u8,
            key.as_ref(),
            Some(operand.as_ref()),
        )
    }

    /// Adds a merge in column family `cf`.
    pub fn merge_cf(
        &mut self,
        cf: &ColumnFamily,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.note_family(cf);
        self.add(
            cf.id(),
            ValueKind::Merge as u8,
            key.as_ref(),
            Some(operand.as_ref()),
        )
    }

    /// Adds a deletion of every key in `range` (`"a".."m"`, `"a"..="m"`,
    /// `.."m"`), in one entry whatever the number of keys. The range needs
    /// an end; an empty range deletes nothing. The bounds are checked when
    /// the batch is written.
    pub fn delete_range(&mut self, range: impl Into<KeyRange>) -> &mut Self {
        self.add_range(0, range.into())
    }

    /// Adds a range deletion in column family `cf`.
    pub fn delete_range_cf(&mut self, cf: &ColumnFamily, range: impl Into<KeyRange>) -> &mut Self {
        self.note_family(cf);
        self.add_range(cf.id(), range.into())
    }

    fn add_range(&mut self, family: u32, range: KeyRange) -> &mut Self {
        match range_bounds(&range) {
            Some((start, end)) => {
                // Both bounds are keys, and limited as keys.
                self.add(family, RANGE_DELETE, &start, Some(&end));
                self.max_key_len = self.max_key_len.max(end.len());
                self
            }
            None => {
                self.unbounded_range = true;
                self
            }
        }
    }

    /// Adds a put of `value` at `key` in column family `cf`. One batch is
    /// atomic across families.
    pub fn put_cf(
        &mut self,
        cf: &ColumnFamily,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.note_family(cf);
        self.add(
            cf.id(),
            ValueKind::Put as u8,
            key.as_ref(),
            Some(value.as_ref()),
        )
    }

    /// Adds a delete of `key` in column family `cf`.
    pub fn delete_cf(&mut self, cf: &ColumnFamily, key: impl AsRef<[u8]>) -> &mut Self {
        self.note_family(cf);
        self.add(cf.id(), ValueKind::Delete as u8, key.as_ref(), None)
    }

    fn note_family(&mut self, cf: &ColumnFamily) {
        let entry = (cf.id(), cf.uid());
        if cf.id() != 0 && !self.families.contains(&entry) {
            self.families.push(entry);
        }
    }

    fn add(&mut self, family: u32, kind: u8, key: &[u8], value: Option<&[u8]>) -> &mut Self {
        if family == 0 {
            self.touches_default = true;
            self.rep.push(kind);
        } else {
            self.rep.push(kind | HAS_FAMILY);
            put_varint32(&mut self.rep, family);
        }
        put_length_prefixed(&mut self.rep, key);
        if let Some(v) = value {
            put_length_prefixed(&mut self.rep, v);
        }
        self.note(key.len(), value.map_or(0, <[u8]>::len));
        self
    }

    /// The families (other than the default one) the batch writes to, with
    /// the identity of the handle each was named by.
    pub(crate) fn families(&self) -> &[(u32, u64)] {
        &self.families
    }

    /// Whether some operation is for the default family.
    pub(crate) fn touches_default(&self) -> bool {
        self.touches_default
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

    /// The operations in the order they were added (later ones win), of
    /// every column family.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            rest: self.rep.get(HEADER_LEN..).unwrap_or(&[]),
        }
    }

    /// The operations with the id of the family each applies to.
    pub(crate) fn iter_cf(&self) -> impl Iterator<Item = (u32, BatchOp<'_>)> {
        let mut rest = self.rep.get(HEADER_LEN..).unwrap_or(&[]);
        std::iter::from_fn(move || {
            let (family, op, used) = decode_op(rest)?;
            rest = &rest[used..];
            Some((family, op))
        })
    }

    /// Checks the documented size limits ([`MAX_KEY_SIZE`],
    /// [`MAX_VALUE_SIZE`], [`MAX_BATCH_SIZE`]).
    pub(crate) fn check_limits(&self) -> Result<()> {
        if self.unbounded_range {
            return Err(Error::InvalidArgument(
                "delete_range needs an end key (the range deletes keys below it)".into(),
            ));
        }
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

    /// A copy with `time` appended to every value and merge operand of the
    /// families `stamped` accepts (those with a TTL: see `ttl`).
    pub(crate) fn with_write_time(&self, stamped: impl Fn(u32) -> bool, time: u64) -> WriteBatch {
        let mut out = WriteBatch::new();
        let mut buf = Vec::new();
        for (family, op) in self.iter_cf() {
            let (kind, key, value) = match op {
                BatchOp::Put { key, value } => (ValueKind::Put as u8, key, Some(value)),
                BatchOp::Delete { key } => (ValueKind::Delete as u8, key, None),
                BatchOp::Merge { key, operand } => (ValueKind::Merge as u8, key, Some(operand)),
                BatchOp::DeleteRange { start, end } => (RANGE_DELETE, start, Some(end)),
            };
            let value = match value {
                Some(v) if kind != RANGE_DELETE && stamped(family) => {
                    buf.clear();
                    buf.extend_from_slice(v);
                    crate::ttl::append_time(&mut buf, time);
                    Some(buf.as_slice())
                }
                v => v,
            };
            out.add(family, kind, key, value);
        }
        out.families = self.families.clone();
        out.unbounded_range = self.unbounded_range;
        out
    }

    /// Appends every operation of `other` (used to merge a commit group).
    pub(crate) fn append(&mut self, other: &WriteBatch) {
        self.rep.extend_from_slice(&other.rep[HEADER_LEN..]);
        self.count += other.count;
        self.max_key_len = self.max_key_len.max(other.max_key_len);
        self.max_value_len = self.max_value_len.max(other.max_value_len);
        self.touches_default |= other.touches_default;
        self.unbounded_range |= other.unbounded_range;
        for f in &other.families {
            if !self.families.contains(f) {
                self.families.push(*f);
            }
        }
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
            families: Vec::new(),
            touches_default: false,
            unbounded_range: false,
        };
        let mut rest = &rep[HEADER_LEN..];
        while !rest.is_empty() {
            let (family, op, used) = decode_op(rest).ok_or("malformed batch record")?;
            rest = &rest[used..];
            batch.touches_default |= family == 0;
            match op {
                BatchOp::Put { key, value }
                | BatchOp::Merge {
                    key,
                    operand: value,
                } => batch.note(key.len(), value.len()),
                BatchOp::Delete { key } => batch.note(key.len(), 0),
                BatchOp::DeleteRange { start, end } => batch.note(start.len().max(end.len()), 0),
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

/// Decodes one record: its family, the operation and the bytes it used.
fn decode_op(src: &[u8]) -> Option<(u32, BatchOp<'_>, usize)> {
    let tag = *src.first()?;
    let op = tag & !HAS_FAMILY;
    let mut used = 1;
    let mut family = 0;
    if tag & HAS_FAMILY != 0 {
        let (f, n) = get_varint32(&src[used..])?;
        family = f;
        used += n;
    }
    let (key, n) = get_length_prefixed(&src[used..])?;
    used += n;
    if op == ValueKind::Delete as u8 {
        return Some((family, BatchOp::Delete { key }, used));
    }
    let (value, m) = get_length_prefixed(&src[used..])?;
    let op = match op {
        1 => BatchOp::Put { key, value },
        2 => BatchOp::Merge {
            key,
            operand: value,
        },
        RANGE_DELETE => BatchOp::DeleteRange {
            start: key,
            end: value,
        },
        _ => return None,
    };
    Some((family, op, used + m))
}

/// A range's keys as `[start, end)`: an excluded start or included end is
/// moved to the next key (`k` followed by a zero byte); no start means the
/// empty key. `None` when it has no end.
fn range_bounds(range: &KeyRange) -> Option<(Vec<u8>, Vec<u8>)> {
    let next = |k: &Vec<u8>| {
        let mut n = k.clone();
        n.push(0);
        n
    };
    let start = match &range.start {
        Bound::Included(s) => s.clone(),
        Bound::Excluded(s) => next(s),
        Bound::Unbounded => Vec::new(),
    };
    let end = match &range.end {
        Bound::Included(e) => next(e),
        Bound::Excluded(e) => e.clone(),
        Bound::Unbounded => return None,
    };
    Some((start, end))
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
        let (_, op, used) = decode_op(self.rest)?;
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
