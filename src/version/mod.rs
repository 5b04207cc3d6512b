//! Versions: the set of live table files, and the MANIFEST that records it.
//!
//! A [`Version`] is an immutable list of files per level. Readers pin the
//! version they start on (an `Arc`); a file leaves the disk only when it is
//! in no version anyone still holds: each file is an `Arc<LiveFile>`, and
//! the last reference to a file that was removed from the current version
//! deletes it.

mod edit;
mod set;

pub(crate) use edit::{FamilyEdit, FileMeta, VersionEdit};
pub(crate) use set::{
    manifest_name, read_current, snapshot_edit, write_manifest, Counters, FamilyVersions,
    RecoveredFamily, VersionSet, CURRENT,
};

use crate::types::{compare_internal_keys, user_key};
use std::cmp::Ordering;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

/// Called with a file number when a removed file is no longer referenced.
pub(crate) type Deleter = Arc<dyn Fn(u64) + Send + Sync>;

/// A table file that is or was part of a version.
pub(crate) struct LiveFile {
    pub(crate) meta: FileMeta,
    obsolete: AtomicBool,
    deleter: Deleter,
    /// The file's open table, kept here (when the table cache's budget
    /// allows) for as long as the file is part of some version, so that a
    /// lookup reaches it without the cache's lock and reference counts.
    pinned: OnceLock<Pinned>,
}

/// A table kept open with its file, counted in its table cache's pinned
/// tables until the file goes.
struct Pinned {
    table: Arc<crate::table::Table>,
    count: Arc<AtomicUsize>,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.count.fetch_sub(1, AtomicOrdering::Relaxed);
    }
}

impl LiveFile {
    pub(crate) fn new(meta: FileMeta, deleter: Deleter) -> Arc<LiveFile> {
        Arc::new(LiveFile {
            meta,
            obsolete: AtomicBool::new(false),
            deleter,
            pinned: OnceLock::new(),
        })
    }

    /// The table pinned to this file, if any.
    pub(crate) fn pinned_table(&self) -> Option<&Arc<crate::table::Table>> {
        self.pinned.get().map(|p| &p.table)
    }

    /// Pins `table` to this file. `count`, already incremented for it, is
    /// decremented when the file goes, or at once if another thread pinned
    /// a table first.
    pub(crate) fn pin(&self, table: Arc<crate::table::Table>, count: Arc<AtomicUsize>) {
        let _ = self.pinned.set(Pinned { table, count });
    }

    /// A file of `size` bytes holding user keys `lo` to `hi`, deleted by
    /// no one.
    #[cfg(test)]
    pub(crate) fn for_test(number: u64, lo: &str, hi: &str, size: u64) -> Arc<LiveFile> {
        let mut meta = FileMeta::new(number);
        for k in [lo, hi] {
            let mut ik = Vec::new();
            crate::types::encode_internal_key(
                &mut ik,
                k.as_bytes(),
                1,
                crate::types::ValueKind::Put,
            );
            meta.extend(&ik);
        }
        meta.size = size;
        LiveFile::new(meta, Arc::new(|_| {}))
    }

    /// The smallest user key in the file.
    pub(crate) fn smallest_user_key(&self) -> &[u8] {
        user_key(&self.meta.smallest)
    }

    /// The largest user key in the file.
    pub(crate) fn largest_user_key(&self) -> &[u8] {
        user_key(&self.meta.largest)
    }

    /// Whether every entry of the file sorts before user key `key`. The
    /// largest key may be the sentinel of a range tombstone's (exclusive)
    /// end, with the largest sequence number: the file then holds nothing
    /// of that user key.
    pub(crate) fn ends_before(&self, key: &[u8]) -> bool {
        match self.largest_user_key().cmp(key) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => crate::types::parse_internal_key(&self.meta.largest)
                .is_some_and(|p| p.seq == crate::types::MAX_SEQNO),
        }
    }
}

impl Drop for LiveFile {
    fn drop(&mut self) {
        if self.obsolete.load(AtomicOrdering::Acquire) {
            (self.deleter)(self.meta.number);
        }
    }
}

impl std::fmt::Debug for LiveFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFile")
            .field("meta", &self.meta)
            .finish()
    }
}

/// Marks files that left the current version: each is deleted when the
/// last version (or reader) holding it lets go.
pub(crate) fn retire(files: Vec<Arc<LiveFile>>) {
    for f in files {
        f.obsolete.store(true, AtomicOrdering::Release);
    }
}

/// The live files, per level.
///
/// Invariants: level 0 is ordered newest first (by file number, which
/// follows flush order) and its files may overlap; every other level is
/// ordered by smallest key and its files do not overlap.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) levels: Vec<Vec<Arc<LiveFile>>>,
}

impl Version {
    pub(crate) fn empty(num_levels: usize) -> Version {
        Version {
            levels: vec![Vec::new(); num_levels],
        }
    }

    /// Applies `edit`, building the next version. Returns it with the
    /// files the edit removes (and does not re-add elsewhere); the caller
    /// marks those obsolete with [`retire`] once the edit is durable, never
    /// before: until then the current version still needs them.
    ///
    /// An edit that removes a file the level does not hold, or that leaves
    /// two files of a deeper level overlapping, is refused: it was made
    /// against some other version, and installing it would hide keys from
    /// every read of that level (see [`check_levels`]).
    pub(crate) fn apply(
        &self,
        edit: &FamilyEdit,
        deleter: &Deleter,
    ) -> Result<(Version, Vec<Arc<LiveFile>>), String> {
        let mut levels = self.levels.clone();
        let mut removed: Vec<Arc<LiveFile>> = Vec::new();
        for &(level, number) in &edit.deleted_files {
            let pos = levels
                .get(level as usize)
                .and_then(|files| files.iter().position(|f| f.meta.number == number));
            let Some(pos) = pos else {
                return Err(format!(
                    "edit removes table {number} from level {level}, which does not hold it"
                ));
            };
            removed.push(levels[level as usize].remove(pos));
        }
        for (level, meta) in &edit.new_files {
            let file = match removed.iter().position(|f| f.meta.number == meta.number) {
                Some(pos) => removed.swap_remove(pos), // a move between levels
                None => LiveFile::new(meta.clone(), deleter.clone()),
            };
            let level = (*level as usize).min(levels.len() - 1);
            levels[level].push(file);
        }
        let mut v = Version { levels };
        v.sort();
        check_levels(v.levels.iter().map(|files| files.iter().map(|f| &f.meta)))?;
        Ok((v, removed))
    }

    pub(crate) fn sort(&mut self) {
        for (level, files) in self.levels.iter_mut().enumerate() {
            if level == 0 {
                files.sort_by_key(|f| std::cmp::Reverse(f.meta.number));
            } else {
                files.sort_by(|a, b| compare_internal_keys(&a.meta.smallest, &b.meta.smallest));
            }
        }
    }

    /// Every live file number.
    pub(crate) fn file_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.levels.iter().flatten().map(|f| f.meta.number)
    }

    /// Files of `level` whose user-key range may contain `key`: any number
    /// on level 0 (newest first), at most one deeper down.
    pub(crate) fn files_for_key<'a>(
        &'a self,
        level: usize,
        key: &'a [u8],
    ) -> impl Iterator<Item = &'a Arc<LiveFile>> + 'a {
        let files = &self.levels[level];
        let candidates = if level == 0 {
            &files[..]
        } else {
            // Sorted and disjoint: only the first file that does not end
            // before the key can hold it.
            let idx = files.partition_point(|f| f.ends_before(key));
            &files[idx..(idx + 1).min(files.len())]
        };
        candidates
            .iter()
            .filter(move |f| f.smallest_user_key() <= key && !f.ends_before(key))
    }
}

/// Checks that the files of every level below 0, taken in the order given
/// (by smallest key), do not overlap: reads and compactions of such a
/// level look at one file per key, so a second file holding the key would
/// be invisible to them.
pub(crate) fn check_levels<'a, L, F>(levels: L) -> Result<(), String>
where
    L: IntoIterator<Item = F>,
    F: IntoIterator<Item = &'a FileMeta>,
{
    for (level, files) in levels.into_iter().enumerate().skip(1) {
        let mut prev: Option<&FileMeta> = None;
        for f in files {
            if let Some(p) = prev {
                // A file ending in a range tombstone's sentinel holds nothing
                // of its largest user key: the next may start with it.
                let sentinel_end = crate::types::parse_internal_key(&p.largest)
                    .is_some_and(|k| k.seq == crate::types::MAX_SEQNO);
                let (p_end, f_start) = (user_key(&p.largest), user_key(&f.smallest));
                if p_end > f_start || (p_end == f_start && !sentinel_end) {
                    return Err(format!(
                        "tables {} and {} of level {level} overlap ({:?} ends after {:?} starts)",
                        p.number,
                        f.number,
                        String::from_utf8_lossy(p_end),
                        String::from_utf8_lossy(f_start),
                    ));
                }
            }
            prev = Some(f);
        }
    }
    Ok(())
}

/// A table's record spanning user keys `lo..=hi` (sequence number 5),
/// for tests.
#[cfg(test)]
pub(crate) fn test_meta(number: u64, lo: &str, hi: &str) -> FileMeta {
    let mut m = FileMeta::new(number);
    for k in [lo, hi] {
        let mut ik = Vec::new();
        crate::types::encode_internal_key(&mut ik, k.as_bytes(), 5, crate::types::ValueKind::Put);
        m.extend(&ik);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{encode_internal_key, ValueKind, MAX_SEQNO};
    use test_meta as meta;

    fn version(levels: Vec<Vec<FileMeta>>) -> (Version, Deleter) {
        let deleter: Deleter = Arc::new(|_| {});
        let mut v = Version::empty(levels.len());
        for (l, files) in levels.into_iter().enumerate() {
            v.levels[l] = files
                .into_iter()
                .map(|m| LiveFile::new(m, deleter.clone()))
                .collect();
        }
        v.sort();
        (v, deleter)
    }

    #[test]
    fn an_edit_that_makes_a_level_overlap_is_refused() {
        let (v, d) = version(vec![vec![], vec![meta(1, "a", "b"), meta(2, "m", "n")]]);
        let mut edit = FamilyEdit::new(0);
        edit.new_files.push((1, meta(3, "c", "m")));
        let err = v.apply(&edit, &d).unwrap_err();
        assert!(err.contains("tables 3 and 2 of level 1 overlap"), "{err}");
        // Level 0 may overlap; a disjoint file fits.
        let mut edit = FamilyEdit::new(0);
        edit.new_files.push((0, meta(4, "a", "z")));
        edit.new_files.push((1, meta(5, "c", "l")));
        let (next, removed) = v.apply(&edit, &d).unwrap();
        assert!(removed.is_empty());
        assert_eq!(next.levels[1].len(), 3);
    }

    #[test]
    fn an_edit_that_removes_a_file_the_level_lacks_is_refused() {
        let (v, d) = version(vec![vec![meta(1, "a", "b")], vec![meta(2, "m", "n")]]);
        let mut edit = FamilyEdit::new(0);
        edit.deleted_files.push((1, 1));
        let err = v.apply(&edit, &d).unwrap_err();
        assert!(err.contains("removes table 1 from level 1"), "{err}");
        let mut edit = FamilyEdit::new(0);
        edit.deleted_files.push((0, 1));
        edit.new_files.push((1, meta(1, "a", "b")));
        let (next, removed) = v.apply(&edit, &d).unwrap();
        assert!(removed.is_empty(), "a move keeps the file");
        assert!(next.levels[0].is_empty());
        assert_eq!(next.levels[1].len(), 2);
    }

    #[test]
    fn a_file_ending_in_a_range_tombstone_sentinel_may_touch_the_next() {
        let mut ends_at_sentinel = meta(1, "a", "b");
        ends_at_sentinel.largest.clear();
        encode_internal_key(
            &mut ends_at_sentinel.largest,
            b"m",
            MAX_SEQNO,
            ValueKind::SEEK,
        );
        let next = meta(2, "m", "n");
        assert!(check_levels([vec![], vec![&ends_at_sentinel, &next]]).is_ok());
        let plain_end = meta(3, "a", "m");
        let err = check_levels([vec![], vec![&plain_end, &next]]).unwrap_err();
        assert!(err.contains("\"m\" ends after \"m\" starts"), "{err}");
    }
}
