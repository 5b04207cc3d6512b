//! Flush: writing a frozen memtable to a level-0 table file.

use super::family::Family;
use super::filenames::{log_path, table_path};
use super::health::Failure;
use super::DbInner;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{IoContext, Result};
use crate::fs::FileSystem;
use crate::internal_iter::InternalIterator;
use crate::memtable::MemTable;
use crate::range_del::Fragments;
use crate::table::{TableBuildOptions, TableBuilder};
use crate::version::{FamilyEdit, FileMeta};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Table-building options for output at `level`.
pub(crate) fn build_options(o: &ColumnFamilyOptions, level: usize) -> TableBuildOptions {
    TableBuildOptions {
        block_size: o.block_size,
        restart_interval: o.block_restart_interval,
        bloom_bits_per_key: o.bloom_bits_per_key,
        compression: o.compression_for_level(level),
    }
}

/// The column family a table is written for: its options, and its id and
/// name, which the table records (see `TableBuilder::set_family`).
pub(crate) struct TableFamily<'a> {
    pub(crate) id: u32,
    pub(crate) name: &'a str,
    pub(crate) opts: &'a ColumnFamilyOptions,
}

/// Writes every entry of `iter` and the range tombstones `range_dels` to
/// table `number`, synced. Returns `None` when there was nothing to write.
/// The directory is not synced: the caller does it once for all outputs.
pub(crate) fn write_table(
    fs: &dyn FileSystem,
    dir: &Path,
    family: TableFamily<'_>,
    iter: &mut dyn InternalIterator,
    range_dels: &Fragments,
    number: u64,
    level: usize,
) -> Result<Option<FileMeta>> {
    let opts = family.opts;
    iter.seek_to_first();
    if !iter.valid() {
        iter.status()?;
        if range_dels.is_empty() {
            return Ok(None);
        }
    }
    let path = table_path(dir, number);
    let file = fs.create(&path).ctx(&path)?;
    let mut builder = TableBuilder::new(file, path.clone(), build_options(opts, level));
    builder.set_family(family.id, family.name);
    let mut meta = FileMeta::new(number);
    while iter.valid() {
        let key = iter.key();
        meta.extend(key);
        builder.add(key, iter.value())?;
        iter.next();
    }
    iter.status()?;
    meta.add_range_deletions(range_dels);
    builder.set_range_deletions(range_dels.clone());
    let props = builder.finish()?;
    meta.finish(&props);
    Ok(Some(meta))
}

/// Flushes the oldest frozen memtable of `family`, if any. Returns whether
/// it did.
pub(crate) fn flush_oldest(inner: &DbInner, family: &Family) -> Result<bool> {
    let imm: Arc<MemTable> = match family.view.read().imms.last() {
        Some(m) => m.clone(),
        None => return Ok(false),
    };
    let number = inner.new_file_number();
    let mut job = super::events::FlushJob::begin(inner, family, &imm);
    let written = write_table(
        &*inner.fs,
        &inner.dir,
        TableFamily {
            id: family.id,
            name: &family.name,
            opts: &family.opts,
        },
        &mut imm.iter(),
        &imm.fragments(),
        number,
        0,
    )
    .and_then(|meta| inner.fs.sync_dir(&inner.dir).ctx(&inner.dir).map(|_| meta));
    let meta = match written {
        Ok(meta) => meta,
        Err(e) => {
            // Nothing refers to the table: remove it; the memtable stays
            // and the flush can run again.
            let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
            let failure = failure_of(&e);
            return Err(inner.stop_writes(e, failure));
        }
    };
    job.wrote(inner, meta.as_ref());
    let size = meta.as_ref().map_or(0, |m| m.size);
    let edit = FamilyEdit {
        // The family's writes in logs older than its next memtable's are
        // all in tables now.
        log_number: Some(family.log_after(&imm)),
        new_files: meta.into_iter().map(|m| (0, m)).collect(),
        ..FamilyEdit::new(family.id)
    };
    if !inner.install(family, edit, Some(&imm))? {
        // The family was dropped while the table was written.
        let _ = inner.fs.remove_file(&table_path(&inner.dir, number));
        return Ok(false);
    }
    family
        .stats
        .bytes_flushed
        .fetch_add(size, Ordering::Relaxed);
    family.stats.flushes.fetch_add(1, Ordering::Relaxed);
    job.completed(inner);
    let oldest_live_log = inner.versions.lock().log_number;
    remove_logs_below(inner, oldest_live_log);
    Ok(true)
}

/// How a failed flush or compaction (before its MANIFEST edit) stops
/// writes: damaged input cannot be retried away; I/O errors can.
pub(crate) fn failure_of(e: &crate::Error) -> Failure {
    if e.is_corruption() {
        Failure::Fatal
    } else {
        Failure::Background
    }
}

/// Removes log files older than `log_number`. Failures only leave files
/// behind, which the next open removes.
pub(crate) fn remove_logs_below(inner: &DbInner, log_number: u64) {
    let Ok(names) = inner.fs.list(&inner.dir) else {
        return;
    };
    for name in names {
        if let Some(super::filenames::FileType::Log(n)) = super::filenames::parse(&name) {
            if n < log_number {
                let _ = inner.fs.remove_file(&log_path(&inner.dir, n));
            }
        }
    }
}
