//! Ingestion: adding table files written by [`SstWriter`](crate::SstWriter)
//! to a column family in one step.
//!
//! 1. Every file is read through and checked before anything changes: block
//!    checksums, strictly ascending keys, only puts and deletes, all at
//!    sequence number 0 (as `SstWriter` writes them). The files must not
//!    overlap one another.
//! 2. Under the log lock (writes wait; none is in flight), memtable data
//!    overlapping the files is frozen and flushed first: reads look in the
//!    memtables before the tables, so an older value left there would hide
//!    the ingested one.
//! 3. The files get one sequence number `G`, the next one, newer than all
//!    data. AiDb writes `G` into every entry by rewriting each file into a
//!    table of the database (a sequential copy; RocksDB instead records a
//!    "global sequence number" that its reader substitutes for each
//!    entry's, which saves the copy but puts a special case in every read).
//!    Each file goes to the lowest level where it overlaps no file on that
//!    level or above, so newer data always sits above older.
//!    Before the first table is written, a MANIFEST edit records `G` as
//!    the last sequence number, so that a crash leaves tables the next
//!    open recognizes as leftovers (not as tables whose edit was lost).
//! 4. One MANIFEST edit adds every file, recording `G` as the last sequence
//!    number; only then is `G` published to readers. A crash before the
//!    edit leaves unlisted tables the next open removes: all or nothing.
//!    Snapshots taken before see sequence numbers below `G` only.
//!
//! The compaction lock is held from placement to the edit, so a running
//! compaction cannot write output overlapping a file placed meanwhile.

use super::cf_api::check_live;
use super::family::Family;
use super::filenames::table_path;
use super::flush::build_options;
use super::health::Failure;
use super::{write, DbInner};
use crate::error::{Error, IoContext, Result};
use crate::internal_iter::InternalIterator;
use crate::table::{Table, TableBuilder};
use crate::types::{
    encode_internal_key, parse_internal_key, user_key, SeqNo, ValueKind, MAX_SEQNO,
};
use crate::version::{FamilyEdit, FileMeta, Version, VersionEdit};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How [`DB::ingest`](crate::DB::ingest) treats the files it is given.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Remove the given files once they are ingested (their contents are
    /// copied into the database either way). Default `false`.
    pub move_files: bool,
    /// When memtable data overlaps the files, flush it first (writes wait
    /// meanwhile). When `false`, such an ingest fails with
    /// [`Error::InvalidArgument`] instead. Default `true`.
    pub allow_blocking_flush: bool,
}

impl Default for IngestOptions {
    fn default() -> IngestOptions {
        IngestOptions {
            move_files: false,
            allow_blocking_flush: true,
        }
    }
}

/// A file to ingest, read and checked.
struct External {
    path: PathBuf,
    table: Arc<Table>,
    smallest: Vec<u8>,
    largest: Vec<u8>,
}

pub(crate) fn ingest(
    inner: &DbInner,
    family: &Family,
    paths: &[PathBuf],
    opts: IngestOptions,
) -> Result<()> {
    inner.check_writable()?;
    check_live(family)?;
    if family.opts.ttl.is_some() {
        return Err(Error::InvalidArgument(format!(
            "column family {:?} has a TTL: ingested values carry no write time",
            family.name
        )));
    }
    let mut files = paths
        .iter()
        .map(|p| read_external(inner, p))
        .collect::<Result<Vec<_>>>()?;
    if files.is_empty() {
        return Ok(());
    }
    files.sort_by(|a, b| a.smallest.cmp(&b.smallest));
    for pair in files.windows(2) {
        if pair[1].smallest <= pair[0].largest {
            return Err(Error::InvalidArgument(format!(
                "files to ingest overlap: {} and {}",
                pair[0].path.display(),
                pair[1].path.display()
            )));
        }
    }

    let mut wal = inner.wal.lock();
    inner.check_writable()?;
    if memtables_overlap(family, &files) {
        if !opts.allow_blocking_flush {
            return Err(Error::InvalidArgument(
                "memtable data overlaps the files to ingest and allow_blocking_flush is false"
                    .into(),
            ));
        }
        write::rotate(inner, &mut wal, family)?;
        inner.wait_for(|_, _| family.is_dropped() || family.view.read().imms.is_empty())?;
        check_live(family)?;
    }
    let _compacting = inner.compaction_lock.lock();
    let seq = wal.last_seq + 1;
    reserve_sequence(inner, seq)?;
    let version = family.view.read().version.clone();
    let mut written: Vec<(u32, FileMeta)> = Vec::new();
    let result = files.iter().try_for_each(|f| {
        let level = place(&version, &f.smallest, &f.largest);
        let number = inner.new_file_number();
        let meta = rewrite(inner, family, f, number, level, seq).inspect_err(|_| {
            let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
        })?;
        written.push((level as u32, meta));
        Ok::<(), Error>(())
    });
    let result = result
        .and_then(|_| inner.fs.sync_dir(&inner.dir).ctx(&inner.dir))
        .and_then(|_| {
            let edit = FamilyEdit {
                new_files: written.clone(),
                ..FamilyEdit::new(family.id)
            };
            inner.install_at(family, edit, None, Some(seq))
        });
    match result {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            for (_, meta) in &written {
                let _ = inner.fs.remove_file(&table_path(&inner.dir, meta.number));
            }
            result?;
            return Err(check_live(family).err().unwrap_or(Error::Closed));
        }
    }
    // Published only now: readers that took an older number before the
    // edit do not see the files, and every later one does.
    wal.last_seq = seq;
    inner.visible_seq.store(seq, Ordering::Release);
    drop(_compacting);
    drop(wal);
    inner.bg.notify();
    if opts.move_files {
        for f in &files {
            // The data is in the database already; a file left behind is
            // only clutter.
            let _ = inner.fs.remove_file(&f.path);
        }
    }
    Ok(())
}

/// Records `seq` as the last sequence number in the MANIFEST before any
/// table holding it is written: after a crash before the ingest's edit,
/// the next open must see those tables as leftovers (their sequence number
/// is covered) rather than as tables whose edit was lost.
fn reserve_sequence(inner: &DbInner, seq: SeqNo) -> Result<()> {
    let mut versions = inner.versions.lock();
    versions
        .log_and_apply(
            VersionEdit::default(),
            inner.next_file_number.load(Ordering::Relaxed),
            seq,
            || inner.new_file_number(),
        )
        .map(|_| ())
        .map_err(|e| inner.stop_writes(e, Failure::Fatal))
}

/// Opens `path` and reads every entry, checking what ingestion relies on.
fn read_external(inner: &DbInner, path: &Path) -> Result<External> {
    let file = inner.fs.open(path).ctx(path)?;
    let table = Table::open(file, path.to_path_buf(), 0, None, Arc::default())?;
    let bad = |reason: String| Error::corruption(path, 0, format!("cannot ingest: {reason}"));
    if !table.range_deletions().is_empty() {
        return Err(bad("the file holds range deletions".into()));
    }
    let mut it = table.iter();
    it.seek_to_first();
    let mut smallest: Option<Vec<u8>> = None;
    let mut last: Vec<u8> = Vec::new();
    let mut count = 0u64;
    while it.valid() {
        let p = parse_internal_key(it.key()).ok_or_else(|| bad("malformed key".into()))?;
        if p.seq != 0 || !matches!(p.kind, ValueKind::Put | ValueKind::Delete) {
            return Err(bad(format!(
                "entry {count} is not a put or delete at sequence 0 (not written by SstWriter)"
            )));
        }
        if smallest.is_some() && p.user_key <= last.as_slice() {
            return Err(bad(format!("keys out of order at entry {count}")));
        }
        if smallest.is_none() {
            smallest = Some(p.user_key.to_vec());
        }
        last.clear();
        last.extend_from_slice(p.user_key);
        count += 1;
        it.next();
    }
    it.status()?;
    if count != table.properties().entries {
        return Err(bad(format!(
            "{count} entries, the properties say {}",
            table.properties().entries
        )));
    }
    let smallest = smallest.ok_or_else(|| bad("the file is empty".into()))?;
    Ok(External {
        path: path.to_path_buf(),
        table,
        smallest,
        largest: last,
    })
}

/// Whether a memtable of `family` may hold keys inside some file's range.
fn memtables_overlap(family: &Family, files: &[External]) -> bool {
    let view = family.view.read().clone();
    std::iter::once(&view.mem)
        .chain(view.imms.iter())
        .any(|mem| {
            if mem.is_empty() {
                return false;
            }
            if !mem.fragments().is_empty() {
                return true; // rare; flushing is always correct
            }
            let mut it = mem.iter();
            files.iter().any(|f| {
                let mut target = Vec::new();
                encode_internal_key(&mut target, &f.smallest, MAX_SEQNO, ValueKind::SEEK);
                it.seek(&target);
                it.valid() && user_key(it.key()) <= f.largest.as_slice()
            })
        })
}

/// The lowest level where `[smallest, largest]` overlaps no file on it or
/// on any level above.
fn place(version: &Version, smallest: &[u8], largest: &[u8]) -> usize {
    let overlaps = |level: usize| {
        version.levels[level]
            .iter()
            .any(|f| f.smallest_user_key() <= largest && !f.ends_before(smallest))
    };
    let mut level = 0;
    while level + 1 < version.levels.len() && !overlaps(level) && !overlaps(level + 1) {
        level += 1;
    }
    level
}

/// Writes `f`'s entries with sequence number `seq` into table `number`.
fn rewrite(
    inner: &DbInner,
    family: &Family,
    f: &External,
    number: u64,
    level: usize,
    seq: SeqNo,
) -> Result<FileMeta> {
    let path = table_path(&inner.dir, number);
    let file = inner.fs.create(&path).ctx(&path)?;
    let mut builder = TableBuilder::new(file, path, build_options(&family.opts, level));
    let mut meta = FileMeta::new(number);
    let mut it = f.table.iter();
    let mut ikey = Vec::new();
    it.seek_to_first();
    while it.valid() {
        let p = parse_internal_key(it.key())
            .ok_or_else(|| Error::corruption(&f.path, 0, "malformed key"))?;
        ikey.clear();
        encode_internal_key(&mut ikey, p.user_key, seq, p.kind);
        meta.extend(&ikey);
        builder.add(&ikey, it.value())?;
        it.next();
    }
    it.status()?;
    let props = builder.finish()?;
    meta.finish(&props);
    Ok(meta)
}
