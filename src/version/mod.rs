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
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Called with a file number when a removed file is no longer referenced.
pub(crate) type Deleter = Arc<dyn Fn(u64) + Send + Sync>;

/// A table file that is or was part of a version.
pub(crate) struct LiveFile {
    pub(crate) meta: FileMeta,
    obsolete: AtomicBool,
    deleter: Deleter,
}

impl LiveFile {
    pub(crate) fn new(meta: FileMeta, deleter: Deleter) -> Arc<LiveFile> {
        Arc::new(LiveFile {
            meta,
            obsolete: AtomicBool::new(false),
            deleter,
        })
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
    pub(crate) fn apply(
        &self,
        edit: &FamilyEdit,
        deleter: &Deleter,
    ) -> (Version, Vec<Arc<LiveFile>>) {
        let mut levels = self.levels.clone();
        let mut removed: Vec<Arc<LiveFile>> = Vec::new();
        for &(level, number) in &edit.deleted_files {
            if let Some(files) = levels.get_mut(level as usize) {
                if let Some(pos) = files.iter().position(|f| f.meta.number == number) {
                    removed.push(files.remove(pos));
                }
            }
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
        (v, removed)
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
