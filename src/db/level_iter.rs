//! An iterator over one sorted level (level 1 and deeper): its files do not
//! overlap, so at most one is open at a time, and a seek looks at one file
//! instead of all of them.

use super::table_cache::TableCache;
use crate::error::{Error, Result};
use crate::internal_iter::InternalIterator;
use crate::table::TableIterator;
use crate::types::compare_internal_keys;
use crate::version::{LiveFile, Version};
use std::cmp::Ordering;
use std::sync::Arc;

/// Concatenates the files of a sorted level. Tables are opened (through the
/// table cache) only when the cursor reaches them. The level's file list is
/// read in place from the version (which the read view holds anyway), not
/// copied: a copy took a reference on every file of the level per iterator.
pub(crate) struct LevelIterator {
    version: Arc<Version>,
    level: usize,
    cache: Arc<TableCache>,
    /// Index of the open file and its cursor.
    current: Option<(usize, TableIterator)>,
    error: Option<Error>,
}

impl LevelIterator {
    pub(crate) fn new(
        version: Arc<Version>,
        level: usize,
        cache: Arc<TableCache>,
    ) -> LevelIterator {
        LevelIterator {
            version,
            level,
            cache,
            current: None,
            error: None,
        }
    }

    /// Opens file `i` (none when out of range or on error).
    fn open(&mut self, i: usize) -> Option<&mut TableIterator> {
        self.current = None;
        let file = self.version.levels[self.level].get(i)?;
        match self.cache.get(file) {
            Ok(table) => {
                self.current = Some((i, table.iter()));
                self.current.as_mut().map(|(_, it)| it)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Moves forward from an exhausted file to the next non-empty one.
    fn skip_forward(&mut self) {
        while let Some((i, it)) = &self.current {
            if it.valid() || it.status().is_err() {
                return;
            }
            let next = *i + 1;
            match self.open(next) {
                Some(it) => it.seek_to_first(),
                None => return,
            }
        }
    }

    /// Moves backward from an exhausted file to the previous non-empty one.
    fn skip_backward(&mut self) {
        while let Some((i, it)) = &self.current {
            if it.valid() || it.status().is_err() {
                return;
            }
            let Some(prev) = i.checked_sub(1) else {
                self.current = None;
                return;
            };
            match self.open(prev) {
                Some(it) => it.seek_to_last(),
                None => return,
            }
        }
    }

    fn files(&self) -> &[Arc<LiveFile>] {
        &self.version.levels[self.level]
    }

    fn it(&self) -> Option<&TableIterator> {
        self.current.as_ref().map(|(_, it)| it)
    }
}

impl InternalIterator for LevelIterator {
    fn seek_to_first(&mut self) {
        self.error = None;
        if let Some(it) = self.open(0) {
            it.seek_to_first();
        }
        self.skip_forward();
    }

    fn seek_to_last(&mut self) {
        self.error = None;
        if let Some(last) = self.files().len().checked_sub(1) {
            if let Some(it) = self.open(last) {
                it.seek_to_last();
            }
        }
        self.skip_backward();
    }

    fn seek(&mut self, ikey: &[u8]) {
        self.error = None;
        // The first file whose largest key is >= ikey.
        let i = self
            .files()
            .partition_point(|f| compare_internal_keys(&f.meta.largest, ikey) == Ordering::Less);
        if let Some(it) = self.open(i) {
            it.seek(ikey);
        }
        self.skip_forward();
    }

    fn seek_for_prev(&mut self, ikey: &[u8]) {
        self.error = None;
        // The last file whose smallest key is <= ikey.
        let n = self.files().partition_point(|f| {
            compare_internal_keys(&f.meta.smallest, ikey) != Ordering::Greater
        });
        let Some(i) = n.checked_sub(1) else {
            self.current = None;
            return;
        };
        if let Some(it) = self.open(i) {
            it.seek_for_prev(ikey);
        }
        self.skip_backward();
    }

    fn next(&mut self) {
        if let Some((_, it)) = &mut self.current {
            it.next();
        }
        self.skip_forward();
    }

    fn prev(&mut self) {
        if let Some((_, it)) = &mut self.current {
            it.prev();
        }
        self.skip_backward();
    }

    fn valid(&self) -> bool {
        self.it().is_some_and(|it| it.valid())
    }

    fn key(&self) -> &[u8] {
        self.it().map_or(&[][..], |it| it.key())
    }

    fn value(&self) -> &[u8] {
        self.it().map_or(&[][..], |it| it.value())
    }

    fn status(&self) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.duplicate());
        }
        self.it().map_or(Ok(()), |it| it.status())
    }
}
