//! Checkpoints: an openable copy of the database at one sequence number.
//!
//! Under the log lock (no write is in flight, so the log ends on a record
//! boundary and every acknowledged write is in a memtable) and the
//! MANIFEST lock (no flush or compaction installs meanwhile), we note the
//! last sequence number, each family's read view (which pins its table
//! files: a compaction cannot delete them until the view is dropped), the
//! oldest log each family still needs, and open those logs with the length
//! the current one has. Then, with writes running again, the table files
//! are hard-linked (copied where linking fails), the logs copied up to the
//! noted length, and a new MANIFEST written that lists the pinned tables
//! with each family's log number. Opening the checkpoint replays the
//! copied logs, which ends at exactly the noted sequence number.
//!
//! We copy the logs rather than flush first: a flush of every family is
//! not one cut when writes keep coming (a family flushed later holds newer
//! writes than one flushed earlier), and a copy of at most a few memtables'
//! worth of log is cheap. RocksDB does the same when the log is small.
//!
//! Everything is built in `<dir>.tmp` and renamed to `dir` at the end, so
//! a crash never leaves a half-made checkpoint under the final name (a
//! leftover `.tmp` is removed by the next checkpoint to the same place).
//! The source directory is only read.

use super::filenames::{self, log_path, table_path, FileType};
use super::DbInner;
use crate::error::{Error, IoContext, Result};
use crate::fs::{copy_prefix, parent_dir, remove_tree, with_suffix, FileSystem, RandomAccessFile};
use crate::types::SeqNo;
use crate::version::{snapshot_edit, write_manifest, Counters, FamilyVersions};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a checkpoint (or backup) holds, noted at one instant. Holding it
/// pins the table files.
pub(crate) struct Capture {
    pub(crate) seq: SeqNo,
    pub(crate) families: BTreeMap<u32, FamilyVersions>,
    max_family_id: u32,
    /// Live logs: number, open handle, bytes to copy.
    pub(crate) logs: Vec<(u64, Arc<dyn RandomAccessFile>, u64)>,
    next_file_number: u64,
    manifest_number: u64,
}

impl Capture {
    /// Every table file, once.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &crate::version::FileMeta> {
        self.families
            .values()
            .flat_map(|f| f.current.levels.iter().flatten())
            .map(|f| &f.meta)
    }
}

/// Creates a checkpoint of `inner` in `target`, which must not exist.
/// Returns the sequence number it holds.
pub(crate) fn checkpoint(inner: &DbInner, target: &Path) -> Result<SeqNo> {
    inner.check_open()?;
    let fs = &*inner.fs;
    if fs.kind(target).ctx(target)?.is_some() {
        return Err(Error::InvalidArgument(format!(
            "checkpoint directory {} already exists",
            target.display()
        )));
    }
    let tmp = with_suffix(target, ".tmp");
    if fs.kind(&tmp).ctx(&tmp)?.is_some() {
        // Left by a checkpoint that crashed: never renamed, so never used.
        remove_tree(fs, &tmp).ctx(&tmp)?;
    }
    fs.create_dir_all(&tmp).ctx(&tmp)?;
    let built = capture(inner).and_then(|c| write_files(inner, &c, &tmp).map(|_| c.seq));
    let seq = match built {
        Ok(seq) => seq,
        Err(e) => {
            let _ = remove_tree(fs, &tmp);
            return Err(e);
        }
    };
    fs.rename(&tmp, target).ctx(&tmp)?;
    let parent = parent_dir(target);
    fs.sync_dir(&parent).ctx(&parent)?;
    Ok(seq)
}

/// Notes the state to copy; holds the log and MANIFEST locks only for
/// in-memory work plus one directory listing and a few opens.
pub(crate) fn capture(inner: &DbInner) -> Result<Capture> {
    if inner.follower.is_some() {
        // Its memtables hold what no file of its own does.
        return Err(Error::InvalidArgument(
            "checkpoints and backups need the primary handle, not a read-only one".into(),
        ));
    }
    let wal = inner.wal.lock();
    let versions = inner.versions.lock();
    let seq = wal.last_seq;
    let mut families = BTreeMap::new();
    for family in inner.family_list() {
        let Some(record) = versions.families().get(&family.id) else {
            continue; // dropped meanwhile
        };
        let view = family.view.read().clone();
        let log_number = family.oldest_unflushed_log(None).unwrap_or(wal.number);
        families.insert(
            family.id,
            FamilyVersions {
                name: record.name.clone(),
                options: record.options.clone(),
                current: view.version.clone(),
                log_number,
            },
        );
    }
    let oldest_log = families
        .values()
        .map(|f| f.log_number)
        .fold(wal.number, u64::min);
    let mut logs = Vec::new();
    for name in inner.fs.list(&inner.dir).ctx(&inner.dir)? {
        if let Some(FileType::Log(n)) = filenames::parse(&name) {
            if n >= oldest_log && n <= wal.number {
                let path = log_path(&inner.dir, n);
                let file = inner.fs.open(&path).ctx(&path)?;
                let len = if n == wal.number {
                    wal.writer.len()
                } else {
                    file.len()
                };
                logs.push((n, file, len));
            }
        }
    }
    let max_family_id = versions.max_family_id;
    drop(versions);
    drop(wal);
    Ok(Capture {
        seq,
        families,
        max_family_id,
        logs,
        next_file_number: inner.next_file_number.load(Ordering::Relaxed),
        manifest_number: inner.new_file_number(),
    })
}

/// Links the tables, copies the logs, writes the MANIFEST, `CURRENT` and
/// the identity file into `dir`, all synced.
fn write_files(inner: &DbInner, c: &Capture, dir: &Path) -> Result<()> {
    let fs: &dyn FileSystem = &*inner.fs;
    for meta in c.tables() {
        let (from, to) = (
            table_path(&inner.dir, meta.number),
            table_path(dir, meta.number),
        );
        fs.link(&from, &to).ctx(&from)?;
    }
    for (number, file, len) in &c.logs {
        let to = log_path(dir, *number);
        copy_prefix(fs, &**file, &to, *len).ctx(&to)?;
    }
    fs.sync_dir(dir).ctx(dir)?;
    write_manifest_and_identity(fs, c, dir)
}

/// Writes the MANIFEST listing the captured state, `CURRENT` and the
/// identity file into `dir`, synced.
pub(crate) fn write_manifest_and_identity(
    fs: &dyn FileSystem,
    c: &Capture,
    dir: &Path,
) -> Result<()> {
    let counters = Counters {
        log_number: c.families.values().map(|f| f.log_number).min().unwrap_or(0),
        next_file_number: c.next_file_number.max(c.manifest_number + 1),
        last_sequence: c.seq,
    };
    let snapshot = snapshot_edit(&c.families, c.max_family_id, counters);
    write_manifest(fs, dir, c.manifest_number, &snapshot)?;
    super::open::write_identity(fs, dir)
}
