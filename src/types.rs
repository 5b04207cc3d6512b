//! Typed numbers and the internal key.
//!
//! An internal key is a user key plus an 8-byte trailer packing the sequence
//! number and the value kind:
//!
//! ```text
//! +-----------------+----------------------------------------+
//! | user key (n B)  | trailer: u64 LE = (seq << 8) | kind    |
//! +-----------------+----------------------------------------+
//! ```
//!
//! Internal keys order by user key ascending (bytewise), then by trailer
//! descending, so the newest version of a key comes first.

use std::cmp::Ordering;

/// A sequence number: every write gets the next one. 56 bits are usable.
pub type SeqNo = u64;

/// The largest sequence number that fits in a trailer.
pub const MAX_SEQNO: SeqNo = (1 << 56) - 1;

/// Length of the trailer that follows the user key in an internal key.
pub const TRAILER_LEN: usize = 8;

/// What an entry records. The numeric values are part of the on-disk format
/// (WAL batches, table keys): never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key is deleted as of this sequence number.
    Delete = 0,
    /// A value.
    Put = 1,
    /// A merge operand, folded with older entries of the key by the
    /// family's merge operator when read.
    Merge = 2,
}

impl ValueKind {
    /// The kind that sorts first for a given sequence number when seeking
    /// (the largest: trailers sort descending).
    pub const SEEK: ValueKind = ValueKind::Merge;
}

impl TryFrom<u8> for ValueKind {
    type Error = u8;
    fn try_from(v: u8) -> Result<Self, u8> {
        match v {
            0 => Ok(ValueKind::Delete),
            1 => Ok(ValueKind::Put),
            2 => Ok(ValueKind::Merge),
            other => Err(other),
        }
    }
}

/// Packs a sequence number and kind into a trailer.
pub fn pack_trailer(seq: SeqNo, kind: ValueKind) -> u64 {
    debug_assert!(seq <= MAX_SEQNO);
    (seq << 8) | kind as u64
}

/// Splits a trailer; `None` for an unknown kind.
pub fn unpack_trailer(trailer: u64) -> Option<(SeqNo, ValueKind)> {
    let kind = ValueKind::try_from((trailer & 0xff) as u8).ok()?;
    Some((trailer >> 8, kind))
}

/// Appends the internal key for (`user_key`, `seq`, `kind`) to `dst`.
pub fn encode_internal_key(dst: &mut Vec<u8>, user_key: &[u8], seq: SeqNo, kind: ValueKind) {
    dst.reserve(user_key.len() + TRAILER_LEN);
    dst.extend_from_slice(user_key);
    dst.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

/// The internal key a point lookup seeks to: the user key with the
/// snapshot's sequence number and the kind that sorts first, so the first
/// entry at or after it is the newest one visible. Built once per lookup
/// and shared by every memtable and table consulted.
pub struct LookupKey {
    ikey: Vec<u8>,
    /// The user key's bloom filter hash, computed on first use: a lookup
    /// that reaches several tables hashes the key once.
    filter_hash: std::cell::Cell<Option<u64>>,
}

impl LookupKey {
    /// The lookup key for `user_key` as of `seq`.
    pub fn new(user_key: &[u8], seq: SeqNo) -> LookupKey {
        let mut ikey = Vec::with_capacity(user_key.len() + TRAILER_LEN);
        encode_internal_key(&mut ikey, user_key, seq, ValueKind::SEEK);
        LookupKey {
            ikey,
            filter_hash: std::cell::Cell::new(None),
        }
    }

    /// The user key's bloom filter hash.
    pub(crate) fn filter_hash(&self) -> u64 {
        if let Some(h) = self.filter_hash.get() {
            return h;
        }
        let h = crate::table::bloom_hash(self.user_key());
        self.filter_hash.set(Some(h));
        h
    }

    /// The encoded internal key.
    pub fn internal_key(&self) -> &[u8] {
        &self.ikey
    }

    /// The user key.
    pub fn user_key(&self) -> &[u8] {
        user_key(&self.ikey)
    }
}

/// A borrowed, already validated view of an encoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// Sequence number of the write.
    pub seq: SeqNo,
    /// Put or delete.
    pub kind: ValueKind,
}

/// Parses an encoded internal key; `None` when it is too short or its kind
/// is unknown.
pub fn parse_internal_key(ikey: &[u8]) -> Option<ParsedKey<'_>> {
    let split = ikey.len().checked_sub(TRAILER_LEN)?;
    let (user_key, trailer) = ikey.split_at(split);
    let trailer = u64::from_le_bytes(trailer.try_into().ok()?);
    let (seq, kind) = unpack_trailer(trailer)?;
    Some(ParsedKey {
        user_key,
        seq,
        kind,
    })
}

/// The user-key part of an encoded internal key (the whole slice when it is
/// too short to hold a trailer, which only corrupt input can be).
pub fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

fn trailer(ikey: &[u8]) -> u64 {
    let split = ikey.len().saturating_sub(TRAILER_LEN);
    let mut t = [0u8; 8];
    let tail = &ikey[split..];
    t[..tail.len()].copy_from_slice(tail);
    u64::from_le_bytes(t)
}

/// Compares two encoded internal keys: user key ascending, trailer
/// descending.
#[inline]
pub fn compare_internal_keys(a: &[u8], b: &[u8]) -> Ordering {
    compare_bytes(user_key(a), user_key(b)).then_with(|| trailer(b).cmp(&trailer(a)))
}

/// Byte-wise comparison (the order of `<[u8]>::cmp`), eight bytes at a
/// time. Keys are short and compared on every step of every search; for
/// them a call into the C library's `memcmp` costs more than the compare
/// itself (memcmp was a fifth of a random-insert profile).
#[inline]
pub fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let (mut x, mut y) = (&a[..n], &b[..n]);
    while x.len() >= 8 {
        let (xa, xr) = x.split_at(8);
        let (ya, yr) = y.split_at(8);
        let xa = u64::from_be_bytes(xa.try_into().unwrap_or([0; 8]));
        let ya = u64::from_be_bytes(ya.try_into().unwrap_or([0; 8]));
        if xa != ya {
            return xa.cmp(&ya);
        }
        (x, y) = (xr, yr);
    }
    for (p, q) in x.iter().zip(y) {
        if p != q {
            return p.cmp(q);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ik(k: &[u8], seq: SeqNo, kind: ValueKind) -> Vec<u8> {
        let mut v = Vec::new();
        encode_internal_key(&mut v, k, seq, kind);
        v
    }

    #[test]
    fn compare_bytes_orders_as_slices_do() {
        let samples: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![0xff],
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefgi".to_vec(),
            b"abcdefghabcdefgh".to_vec(),
            b"abcdefghabcdefgg".to_vec(),
            b"abcdefghabcdefgh1".to_vec(),
            vec![0x80; 9],
            vec![0x7f; 9],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14],
        ];
        for a in &samples {
            for b in &samples {
                assert_eq!(compare_bytes(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn order_is_user_key_then_newest_first() {
        let a5 = ik(b"a", 5, ValueKind::Put);
        let a9 = ik(b"a", 9, ValueKind::Delete);
        let ab1 = ik(b"ab", 1, ValueKind::Put);
        assert_eq!(compare_internal_keys(&a9, &a5), Ordering::Less);
        assert_eq!(compare_internal_keys(&a5, &ab1), Ordering::Less);
        assert_eq!(compare_internal_keys(&a9, &ab1), Ordering::Less);
        // Same seq: Put (1) sorts before Delete (0) since trailers descend.
        let p = ik(b"k", 3, ValueKind::Put);
        let d = ik(b"k", 3, ValueKind::Delete);
        assert_eq!(compare_internal_keys(&p, &d), Ordering::Less);
    }

    #[test]
    fn parse_round_trip_and_rejects_bad_kind() {
        let k = ik(b"key", MAX_SEQNO, ValueKind::Delete);
        let p = parse_internal_key(&k).unwrap();
        assert_eq!(
            (p.user_key, p.seq, p.kind),
            (&b"key"[..], MAX_SEQNO, ValueKind::Delete)
        );
        let mut bad = k.clone();
        let n = bad.len();
        bad[n - 8] = 7;
        assert!(parse_internal_key(&bad).is_none());
        assert!(parse_internal_key(b"short").is_none());
    }
}
