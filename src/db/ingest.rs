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
//! 3. When every file overlaps nothing in the family (so it can go to the
//!    last level) and no snapshot is alive, sequence number 0 orders the
//!    files correctly: no older version of their keys exists, and every
//!    later write gets a larger number. The files then go in as they are,
//!    hard-linked (`move_files`) or copied, with no rewrite. RocksDB does
//!    the same.
//! 4. Otherwise the files get one sequence number `G`, the next one, newer
//!    than all data. AiDb writes `G` into every entry by rewriting each
//!    file into a table of the database (a sequential copy; RocksDB
//!    instead records a "global sequence number" that its reader
//!    substitutes for each entry's, which saves the copy but puts a
//!    special case in every read). Each file goes to the lowest level
//!    where it overlaps no file on that level or above, so newer data
//!    always sits above older. Before the first table is written, a
//!    MANIFEST edit records `G` as the last sequence number, so that a
//!    crash leaves tables the next open recognizes as leftovers (not as
//!    tables whose edit was lost).
//! 5. One MANIFEST edit adds every file; then a record with no operations
//!    and sequence number `G` goes to the log (replay checks that the
//!    records' numbers follow on without gaps; this one says `G` was used
//!    outside the log), and only then is `G` published to readers. A crash before the edit leaves unlisted tables the next
//!    open removes: all or nothing. Snapshots taken before see sequence
//!    numbers below `G` only (and on the fast path there are none: the
//!    snapshot list stays locked from the check to the edit).
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
use crate::fs::{copy_file, RandomAccessFile};
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
    /// Move the given files into the database instead of copying them:
    /// they are hard-linked in where their contents can be used as they
    /// are (see `docs/operations.md`), and their names are removed once
    /// the ingest is durable. Default `false`: the files are copied and
    /// stay where they are.
    pub move_files: bool,
    /// When memtable data overlaps the files, flush it first (writes wait
    /// meanwhile). When `false`, such an ingest fails with
    /// [`Error::InvalidArgument`] instead. Default `true`.
    pub allow_blocking_flush: bool,
    /// Read every entry of every file before ingesting it: each block's
    /// checksum, keys strictly ascending, only puts and deletes at
    /// sequence number 0. Default `false`, as RocksDB's
    /// `verify_checksums_before_ingest`: then the checks use the file's
    /// properties (entry count, sequence numbers, no range deletions) and
    /// its first and last entries, and a damaged block in between is found
    /// when it is read, as [`Error::Corruption`] naming the file, never
    /// served. The whole file's CRC is computed either way, for the
    /// MANIFEST.
    pub verify_checksums: bool,
}

impl Default for IngestOptions {
    fn default() -> IngestOptions {
        IngestOptions {
            move_files: false,
            allow_blocking_flush: true,
            verify_checksums: false,
        }
    }
}

/// A file to ingest, read and checked.
struct External {
    path: PathBuf,
    table: Arc<Table>,
    smallest: Vec<u8>,
    largest: Vec<u8>,
    /// First and last internal keys (sequence number 0).
    first_ikey: Vec<u8>,
    last_ikey: Vec<u8>,
    /// CRC-32 of the whole file, for the MANIFEST (as flushes record it).
    file_crc: u32,
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
        .map(|p| read_external(inner, p, opts.verify_checksums))
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
    let version = family.view.read().version.clone();
    let levels: Vec<usize> = files
        .iter()
        .map(|f| place(&version, &f.smallest, &f.largest))
        .collect();
    let bottom = version.levels.len() - 1;
    if levels.iter().all(|&l| l == bottom) && inner.snapshots.lock().is_empty() {
        // Nothing in the database overlaps the files and no snapshot is
        // alive: sequence number 0 orders them correctly, and the files go
        // in as they are (linked or copied), with no rewrite.
        if add_as_is(inner, family, &files, opts.move_files)? {
            drop(_compacting);
            drop(wal);
            return finish(inner, &files, &opts);
        }
    }
    let seq = wal.last_seq + 1;
    reserve_sequence(inner, seq)?;
    let written = write_all(inner, &files, &levels, |f, number, level| {
        rewrite(inner, family, f, number, level, seq)
    })?;
    if !install(inner, family, written, seq)? {
        return Err(check_live(family).err().unwrap_or(Error::Closed));
    }
    // The log gets a record with no operations at `seq`: the later
    // records then follow on without a gap when the log is replayed.
    let marker = crate::batch::WriteBatch::new().encode(seq).to_vec();
    if let Err(e) = wal.writer.add_record(&marker) {
        return Err(inner.stop_writes(Error::io(&wal.path, e), Failure::Log));
    }
    // Published only now: readers that took an older number before the
    // edit do not see the files, and every later one does.
    wal.last_seq = seq;
    wal.unlocked_seq = seq;
    inner.visible_seq.store(seq, Ordering::Release);
    drop(_compacting);
    drop(wal);
    finish(inner, &files, &opts)
}

/// After the edit: wakes the background (the levels changed) and removes
/// the given files when asked to.
fn finish(inner: &DbInner, files: &[External], opts: &IngestOptions) -> Result<()> {
    inner.bg.notify();
    if opts.move_files {
        for f in files {
            // The data is in the database already; a file left behind is
            // only clutter.
            let _ = inner.fs.remove_file(&f.path);
        }
    }
    Ok(())
}

/// Writes one table per file (`make` gets the file, a new table number and
/// its level), then syncs the directory. On error removes what it wrote.
fn write_all(
    inner: &DbInner,
    files: &[External],
    levels: &[usize],
    mut make: impl FnMut(&External, u64, usize) -> Result<FileMeta>,
) -> Result<Vec<(u32, FileMeta)>> {
    let mut written: Vec<(u32, FileMeta)> = Vec::new();
    let result = files.iter().zip(levels).try_for_each(|(f, &level)| {
        let number = inner.new_file_number();
        let made = make(f, number, level);
        if made.is_err() {
            let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
        }
        written.push((level as u32, made?));
        Ok(())
    });
    match result.and_then(|_| inner.fs.sync_dir(&inner.dir).ctx(&inner.dir)) {
        Ok(()) => Ok(written),
        Err(e) => {
            remove_tables(inner, &written);
            Err(e)
        }
    }
}

fn remove_tables(inner: &DbInner, written: &[(u32, FileMeta)]) {
    for (_, meta) in written {
        let _ = inner.fs.remove_file(&table_path(&inner.dir, meta.number));
    }
}

/// Adds the written tables in one MANIFEST edit recording `seq`. Returns
/// false (the tables removed) when the family was dropped meanwhile. A
/// failed edit stops writes, and the tables stay: the edit may be durable.
fn install(
    inner: &DbInner,
    family: &Family,
    written: Vec<(u32, FileMeta)>,
    seq: SeqNo,
) -> Result<bool> {
    let edit = FamilyEdit {
        new_files: written.clone(),
        ..FamilyEdit::new(family.id)
    };
    let installed = inner
        .install_at(family, edit, None, Some(seq))
        .map_err(|e| inner.stop_writes(e, Failure::Fatal))?;
    if !installed {
        remove_tables(inner, &written);
    }
    Ok(installed)
}

/// The fast path: every file goes to the last level unchanged (sequence
/// number 0), linked when `move_files` (the caller's name is removed
/// afterwards) and copied otherwise (so later changes to the caller's file
/// cannot reach the database). Returns false, having added nothing, when a
/// snapshot appeared meanwhile: the caller then takes the slow path.
fn add_as_is(
    inner: &DbInner,
    family: &Family,
    files: &[External],
    move_files: bool,
) -> Result<bool> {
    let bottom = family.view.read().version.levels.len() - 1;
    let levels = vec![bottom; files.len()];
    let written = write_all(inner, files, &levels, |f, number, _| {
        let to = table_path(&inner.dir, number);
        let placed = if move_files {
            inner.fs.link(&f.path, &to)
        } else {
            copy_file(&*inner.fs, &f.path, &to, None)
        };
        placed.ctx(&to)?;
        let props = f.table.properties();
        let mut meta = FileMeta::new(number);
        meta.extend(&f.first_ikey);
        meta.extend(&f.last_ikey);
        meta.size = props.file_size;
        meta.unique_id = f.table.unique_id();
        meta.file_crc = f.file_crc;
        meta.creation_time = props.creation_time;
        Ok(meta)
    })?;
    // Snapshots register under this lock: none can appear until the files
    // are in (and would then see them, as they should).
    let snapshots = inner.snapshots.lock();
    if !snapshots.is_empty() {
        drop(snapshots);
        remove_tables(inner, &written);
        return Ok(false);
    }
    let edit = FamilyEdit {
        new_files: written.clone(),
        ..FamilyEdit::new(family.id)
    };
    let installed = inner.install_at(family, edit, None, None);
    drop(snapshots);
    match installed {
        Ok(true) => Ok(true),
        Ok(false) => {
            remove_tables(inner, &written);
            Err(check_live(family).err().unwrap_or(Error::Closed))
        }
        Err(e) => Err(inner.stop_writes(e, Failure::Fatal)),
    }
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

/// Opens `path` and checks what ingestion relies on: from the properties
/// and the first and last entries, or (`full`) by reading every entry.
fn read_external(inner: &DbInner, path: &Path, full: bool) -> Result<External> {
    let file = inner.fs.open(path).ctx(path)?;
    let table = Table::open(file.clone(), path.to_path_buf(), 0, None, Arc::default())?;
    let bad = |reason: String| Error::corruption(path, 0, format!("cannot ingest: {reason}"));
    if !table.range_deletions().is_empty() {
        return Err(bad("the file holds range deletions".into()));
    }
    let props = table.properties();
    if props.entries == 0 {
        return Err(bad("the file is empty".into()));
    }
    if props.largest_seq != 0 {
        return Err(bad(
            "entries above sequence number 0 (not written by SstWriter)".into(),
        ));
    }
    let entry = |key: &[u8], n: u64| -> Result<(Vec<u8>, ValueKind)> {
        let p = parse_internal_key(key).ok_or_else(|| bad("malformed key".into()))?;
        if p.seq != 0 || !matches!(p.kind, ValueKind::Put | ValueKind::Delete) {
            return Err(bad(format!(
                "entry {n} is not a put or delete at sequence 0 (not written by SstWriter)"
            )));
        }
        Ok((p.user_key.to_vec(), p.kind))
    };
    let mut it = table.iter();
    it.seek_to_first();
    if !it.valid() {
        it.status()?;
        return Err(bad("the file is empty".into()));
    }
    let first_ikey = it.key().to_vec();
    let (smallest, first_kind) = entry(&first_ikey, 0)?;
    let (largest, last_kind) = if full {
        let mut last = smallest.clone();
        let mut last_kind = first_kind;
        let mut count = 1u64;
        it.next();
        while it.valid() {
            let (k, kind) = entry(it.key(), count)?;
            if k <= last {
                return Err(bad(format!("keys out of order at entry {count}")));
            }
            (last, last_kind) = (k, kind);
            count += 1;
            it.next();
        }
        it.status()?;
        if count != props.entries {
            return Err(bad(format!(
                "{count} entries, the properties say {}",
                props.entries
            )));
        }
        (last, last_kind)
    } else {
        it.seek_to_last();
        if !it.valid() {
            it.status()?;
            return Err(bad("the last entry cannot be read".into()));
        }
        let (k, kind) = entry(it.key(), props.entries - 1)?;
        if k < smallest || (k == smallest && props.entries > 1) {
            return Err(bad("keys out of order".into()));
        }
        (k, kind)
    };
    let mut last_ikey = Vec::new();
    encode_internal_key(&mut last_ikey, &largest, 0, last_kind);
    Ok(External {
        path: path.to_path_buf(),
        file_crc: whole_file_crc(&*file, path)?,
        table,
        smallest,
        largest,
        first_ikey,
        last_ikey,
    })
}

fn whole_file_crc(file: &dyn RandomAccessFile, path: &Path) -> Result<u32> {
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < file.len() {
        let n = (file.len() - at).min(buf.len() as u64) as usize;
        file.read_exact_at(at, &mut buf[..n]).ctx(path)?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    Ok(crc.finalize())
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
