//! Range tombstones: `delete_range(start..end)` removes every key in
//! `[start, end)` written before it, in one entry.
//!
//! Tombstones of one source (a memtable or a table) are kept *fragmented*:
//! cut at every tombstone boundary into sorted, non-overlapping pieces,
//! each with the sequence numbers (newest first) of the tombstones that
//! cover all of it. Whether a key is deleted at a read's sequence number is
//! then one binary search, however many tombstones overlap. A table stores
//! its fragments in its range deletions block (format in `docs/format.md`,
//! encoded and decoded here).

use crate::coding::{
    get_length_prefixed, get_varint32, get_varint64, put_length_prefixed, put_varint32,
    put_varint64,
};
use crate::types::SeqNo;

/// One `delete_range`: keys in `[start, end)` with sequence numbers below
/// `seq` are deleted as of `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeTombstone {
    pub(crate) start: Vec<u8>,
    pub(crate) end: Vec<u8>,
    pub(crate) seq: SeqNo,
}

/// A piece of the key space covered by the same tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fragment {
    start: Vec<u8>,
    end: Vec<u8>,
    /// Newest first, distinct.
    seqs: Vec<SeqNo>,
}

/// The fragmented tombstones of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fragments {
    frags: Vec<Fragment>,
}

impl Fragments {
    /// Fragments `tombstones` (in any order; empty ranges are ignored).
    pub(crate) fn build(tombstones: impl IntoIterator<Item = RangeTombstone>) -> Fragments {
        let mut ts: Vec<RangeTombstone> =
            tombstones.into_iter().filter(|t| t.start < t.end).collect();
        if ts.is_empty() {
            return Fragments::default();
        }
        ts.sort_by(|a, b| a.start.cmp(&b.start));
        let mut points: Vec<&[u8]> = ts
            .iter()
            .flat_map(|t| [t.start.as_slice(), t.end.as_slice()])
            .collect();
        points.sort_unstable();
        points.dedup();
        let mut frags: Vec<Fragment> = Vec::new();
        let mut active: Vec<(&[u8], SeqNo)> = Vec::new();
        let mut next = 0;
        for w in points.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            while next < ts.len() && ts[next].start.as_slice() <= lo {
                active.push((&ts[next].end, ts[next].seq));
                next += 1;
            }
            // Every boundary is a point, so a tombstone still active past
            // `lo` covers all of `[lo, hi)`.
            active.retain(|(end, _)| *end > lo);
            if active.is_empty() {
                continue;
            }
            let mut seqs: Vec<SeqNo> = active.iter().map(|(_, s)| *s).collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            seqs.dedup();
            match frags.last_mut() {
                // Adjacent with the same tombstones: one fragment.
                Some(prev) if prev.end == lo && prev.seqs == seqs => prev.end = hi.to_vec(),
                _ => frags.push(Fragment {
                    start: lo.to_vec(),
                    end: hi.to_vec(),
                    seqs,
                }),
            }
        }
        Fragments { frags }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frags.is_empty()
    }

    /// Number of (fragment, sequence number) pairs: the tombstones this
    /// holds once expanded.
    pub(crate) fn len(&self) -> usize {
        self.frags.iter().map(|f| f.seqs.len()).sum()
    }

    /// The newest sequence number, at most `read_seq`, of a tombstone
    /// covering `key`; 0 when none does.
    pub(crate) fn max_covering(&self, key: &[u8], read_seq: SeqNo) -> SeqNo {
        let i = self.frags.partition_point(|f| f.end.as_slice() <= key);
        match self.frags.get(i) {
            Some(f) if f.start.as_slice() <= key => {
                f.seqs.iter().copied().find(|&s| s <= read_seq).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Every fragment as a tombstone of its own (one per sequence number).
    pub(crate) fn tombstones(&self) -> impl Iterator<Item = RangeTombstone> + '_ {
        self.frags.iter().flat_map(|f| {
            f.seqs.iter().map(move |&seq| RangeTombstone {
                start: f.start.clone(),
                end: f.end.clone(),
                seq,
            })
        })
    }

    /// The part within `[lo, hi)` (`None`: unbounded), keeping only the
    /// tombstones `keep` accepts.
    pub(crate) fn clip(
        &self,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        keep: impl Fn(SeqNo) -> bool,
    ) -> Fragments {
        let frags = self
            .frags
            .iter()
            .filter_map(|f| {
                let start = match lo {
                    Some(lo) if lo > f.start.as_slice() => lo.to_vec(),
                    _ => f.start.clone(),
                };
                let end = match hi {
                    Some(hi) if hi < f.end.as_slice() => hi.to_vec(),
                    _ => f.end.clone(),
                };
                let seqs: Vec<SeqNo> = f.seqs.iter().copied().filter(|&s| keep(s)).collect();
                (start < end && !seqs.is_empty()).then_some(Fragment { start, end, seqs })
            })
            .collect();
        Fragments { frags }
    }

    /// The smallest start and largest end, when any.
    pub(crate) fn bounds(&self) -> Option<(&[u8], &[u8])> {
        Some((&self.frags.first()?.start, &self.frags.last()?.end))
    }

    /// The smallest and largest sequence numbers, when any.
    pub(crate) fn seq_range(&self) -> Option<(SeqNo, SeqNo)> {
        let seqs = self.frags.iter().flat_map(|f| f.seqs.iter().copied());
        let (mut lo, mut hi) = (SeqNo::MAX, 0);
        let mut any = false;
        for s in seqs {
            lo = lo.min(s);
            hi = hi.max(s);
            any = true;
        }
        any.then_some((lo, hi))
    }

    /// The range deletions block:
    /// `count: varint32 | count × (start: length-prefixed | end:
    /// length-prefixed | n: varint32 | n × seq: varint64, newest first)`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint32(&mut out, self.frags.len() as u32);
        for f in &self.frags {
            put_length_prefixed(&mut out, &f.start);
            put_length_prefixed(&mut out, &f.end);
            put_varint32(&mut out, f.seqs.len() as u32);
            for &s in &f.seqs {
                put_varint64(&mut out, s);
            }
        }
        out
    }

    /// Decodes and checks a range deletions block: fragments sorted and
    /// disjoint, each non-empty with sequence numbers strictly decreasing.
    pub(crate) fn decode(mut src: &[u8]) -> Result<Fragments, String> {
        let (count, n) = get_varint32(src).ok_or("bad fragment count")?;
        src = &src[n..];
        let mut frags: Vec<Fragment> = Vec::new();
        for _ in 0..count {
            let (start, n) = get_length_prefixed(src).ok_or("bad fragment start")?;
            src = &src[n..];
            let (end, n) = get_length_prefixed(src).ok_or("bad fragment end")?;
            src = &src[n..];
            let (nseq, n) = get_varint32(src).ok_or("bad sequence count")?;
            src = &src[n..];
            if start >= end || nseq == 0 || nseq as usize > src.len() {
                return Err("empty or malformed fragment".into());
            }
            if frags.last().is_some_and(|p| p.end.as_slice() > start) {
                return Err("fragments out of order or overlapping".into());
            }
            let mut seqs = Vec::with_capacity(nseq as usize);
            for _ in 0..nseq {
                let (s, n) = get_varint64(src).ok_or("bad sequence number")?;
                src = &src[n..];
                if seqs.last().is_some_and(|&p| p <= s) {
                    return Err("sequence numbers not decreasing".into());
                }
                seqs.push(s);
            }
            frags.push(Fragment {
                start: start.to_vec(),
                end: end.to_vec(),
                seqs,
            });
        }
        if !src.is_empty() {
            return Err("trailing bytes after the fragments".into());
        }
        Ok(Fragments { frags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: &str, end: &str, seq: SeqNo) -> RangeTombstone {
        RangeTombstone {
            start: start.into(),
            end: end.into(),
            seq,
        }
    }

    /// The newest tombstone covering `key` at `read`, by brute force.
    fn naive(ts: &[RangeTombstone], key: &[u8], read: SeqNo) -> SeqNo {
        ts.iter()
            .filter(|t| t.start.as_slice() <= key && key < t.end.as_slice() && t.seq <= read)
            .map(|t| t.seq)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn fragments_answer_like_the_tombstones() {
        let ts = vec![
            t("b", "f", 5),
            t("d", "k", 9),
            t("a", "c", 2),
            t("x", "z", 7),
            t("e", "e", 3),
        ];
        let f = Fragments::build(ts.clone());
        for key in [
            "", "a", "b", "bb", "c", "d", "e", "f", "g", "k", "w", "x", "y", "z",
        ] {
            for read in [0, 1, 2, 4, 5, 8, 9, 100] {
                assert_eq!(
                    f.max_covering(key.as_bytes(), read),
                    naive(&ts, key.as_bytes(), read),
                    "{key} @{read}"
                );
            }
        }
        let round = Fragments::decode(&f.encode()).unwrap();
        assert_eq!(round, f);
        // Re-fragmenting the expanded fragments gives the same answer.
        assert_eq!(Fragments::build(f.tombstones()), f);
        let clipped = f.clip(Some(b"c"), Some(b"y"), |s| s != 9);
        assert_eq!(clipped.max_covering(b"b", 100), 0);
        assert_eq!(clipped.max_covering(b"d", 100), 5);
        assert_eq!(clipped.max_covering(b"g", 100), 0);
        assert_eq!(clipped.max_covering(b"x", 100), 7);
        assert_eq!(clipped.max_covering(b"y", 100), 0);
        assert_eq!(f.bounds(), Some((&b"a"[..], &b"z"[..])));
        assert_eq!(f.seq_range(), Some((2, 9)));
    }

    #[test]
    fn damaged_blocks_are_rejected() {
        let f = Fragments::build(vec![t("a", "m", 4), t("c", "z", 6)]);
        let enc = f.encode();
        for cut in 0..enc.len() {
            assert!(Fragments::decode(&enc[..cut]).is_err(), "cut {cut}");
        }
        let mut overlapping = Vec::new();
        put_varint32(&mut overlapping, 2);
        for (s, e) in [("a", "m"), ("c", "z")] {
            put_length_prefixed(&mut overlapping, s.as_bytes());
            put_length_prefixed(&mut overlapping, e.as_bytes());
            put_varint32(&mut overlapping, 1);
            put_varint64(&mut overlapping, 3);
        }
        assert!(Fragments::decode(&overlapping).is_err());
    }
}
