//! The MANIFEST and `CURRENT`: the durable record of the live files.
//!
//! The MANIFEST is a log file (kind MANIFEST) whose records are
//! [`VersionEdit`]s. Its first edit is a full snapshot (every live file and
//! every counter); later edits are changes. `CURRENT` holds the name of the
//! live MANIFEST followed by a newline and is only ever replaced atomically:
//! written to a temporary file, fsynced, renamed over `CURRENT`, and the
//! directory fsynced. A new MANIFEST is started at every open and when the
//! current one grows past a limit.

use super::{Deleter, FileMeta, Version, VersionEdit};
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::types::SeqNo;
use crate::wal::{LogKind, LogReader, LogWriter, ReadEvent};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the file naming the live MANIFEST.
pub(crate) const CURRENT: &str = "CURRENT";
/// A MANIFEST this large is replaced by a fresh snapshot.
const MAX_MANIFEST_SIZE: u64 = 64 << 20;

pub(crate) fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// The counters every MANIFEST snapshot records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters {
    /// Logs numbered below this hold nothing that is not in a table.
    pub(crate) log_number: u64,
    pub(crate) next_file_number: u64,
    pub(crate) last_sequence: SeqNo,
}

/// What a MANIFEST said when it was replayed.
pub(crate) struct RecoveredState {
    pub(crate) levels: Vec<Vec<FileMeta>>,
    pub(crate) log_number: u64,
    pub(crate) next_file_number: u64,
    pub(crate) last_sequence: SeqNo,
    pub(crate) manifest_number: u64,
}

/// Reads `CURRENT` and replays the MANIFEST it names.
pub(crate) fn read_current(
    fs: &dyn FileSystem,
    dir: &Path,
    num_levels: usize,
) -> Result<RecoveredState> {
    let current = dir.join(CURRENT);
    let text = fs.read_all(&current).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::corruption(&current, 0, "CURRENT is missing but the database exists")
        } else {
            Error::io(&current, e)
        }
    })?;
    let name = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.strip_suffix('\n'))
        .filter(|n| !n.contains('\n'))
        .ok_or_else(|| Error::corruption(&current, 0, "CURRENT does not hold a file name"))?;
    let manifest_number = name
        .strip_prefix("MANIFEST-")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::corruption(
                &current,
                0,
                format!("CURRENT names {name:?}, not a MANIFEST"),
            )
        })?;
    let path = dir.join(name);
    let data = fs.read_all(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::corruption(&path, 0, "the MANIFEST named by CURRENT is missing")
        } else {
            Error::io(&path, e)
        }
    })?;

    let mut levels: Vec<Vec<FileMeta>> = vec![Vec::new(); num_levels];
    let mut log_number = None;
    let mut next_file_number = None;
    let mut last_sequence = None;
    let mut reader = LogReader::new(&data, LogKind::Manifest);
    // Offset of the clean-close marker, once read. A MANIFEST is never
    // written after a clean close (the next open starts a new one), so
    // anything after the marker, torn or not, is damage.
    let mut clean_close_at: Option<u64> = None;
    loop {
        match reader.next_event() {
            ReadEvent::Eof => break,
            // A MANIFEST write is synced before it counts, so a torn tail
            // is an edit that never took effect.
            ReadEvent::TornTail { offset, reason } => match clean_close_at {
                None => break,
                Some(at) => {
                    return Err(Error::corruption(
                        &path,
                        offset,
                        format!("{reason}, after the clean-close marker at offset {at}"),
                    ))
                }
            },
            ReadEvent::Corrupt { offset, reason } => {
                return Err(Error::corruption(&path, offset, reason))
            }
            ReadEvent::Record { offset, data } => {
                if let Some(at) = clean_close_at {
                    return Err(Error::corruption(
                        &path,
                        offset,
                        format!("record after the clean-close marker at offset {at}"),
                    ));
                }
                let edit = VersionEdit::decode(&data)
                    .map_err(|reason| Error::corruption(&path, offset, reason))?;
                if edit.clean_close {
                    clean_close_at = Some(offset);
                }
                for &(level, number) in &edit.deleted_files {
                    if let Some(files) = levels.get_mut(level as usize) {
                        files.retain(|f| f.number != number);
                    }
                }
                for (level, meta) in edit.new_files {
                    let files = levels.get_mut(level as usize).ok_or_else(|| {
                        Error::corruption(
                            &path,
                            offset,
                            format!("file {} on level {level}, beyond num_levels", meta.number),
                        )
                    })?;
                    files.push(meta);
                }
                log_number = edit.log_number.or(log_number);
                next_file_number = edit.next_file_number.or(next_file_number);
                last_sequence = edit.last_sequence.or(last_sequence);
            }
        }
    }
    let missing = |what: &str| Error::corruption(&path, 0, format!("MANIFEST has no {what}"));
    Ok(RecoveredState {
        levels,
        log_number: log_number.ok_or_else(|| missing("log number"))?,
        next_file_number: next_file_number.ok_or_else(|| missing("next file number"))?,
        last_sequence: last_sequence.ok_or_else(|| missing("last sequence"))?,
        manifest_number,
    })
}

/// The live MANIFEST and the current version. Owned by the engine under a
/// mutex: one version change at a time.
pub(crate) struct VersionSet {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    manifest: LogWriter,
    manifest_path: PathBuf,
    current: Arc<Version>,
    deleter: Deleter,
    /// Logs numbered below this hold nothing that is not in a table.
    pub(crate) log_number: u64,
    /// The first failed MANIFEST write. After it the file may end in part
    /// of a record, and a record appended after that would be unreadable
    /// (and could still be synced and trusted): every later change is
    /// refused, so no file is ever deleted on the strength of an edit that
    /// is not durably readable. Only a reopen, which starts a new
    /// MANIFEST, clears it.
    failed: Option<Arc<Error>>,
}

impl VersionSet {
    /// Starts a new MANIFEST holding a snapshot of `version` and points
    /// `CURRENT` at it. Used at open.
    pub(crate) fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        manifest_number: u64,
        version: Version,
        counters: Counters,
        deleter: Deleter,
    ) -> Result<VersionSet> {
        let (manifest, manifest_path) =
            write_manifest(&*fs, dir, manifest_number, &version, counters)?;
        Ok(VersionSet {
            fs,
            dir: dir.to_path_buf(),
            manifest,
            manifest_path,
            current: Arc::new(version),
            deleter,
            log_number: counters.log_number,
            failed: None,
        })
    }

    /// Refuses any change after a failed write (see `failed`).
    fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(cause) => Err(Error::ReopenRequired {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Remembers a failed write, then passes the error on.
    fn fail(&mut self, err: Error) -> Error {
        if self.failed.is_none() {
            self.failed = Some(Arc::new(err.duplicate()));
        }
        err
    }

    /// Records that the database was closed cleanly. The marker holds no
    /// data, so the edit before it, which does, is never the file's last
    /// record: damage to it cannot pass for a write torn by a crash.
    pub(crate) fn mark_clean_close(&mut self) -> Result<()> {
        self.check_usable()?;
        let edit = VersionEdit {
            clean_close: true,
            ..VersionEdit::default()
        };
        let written = self
            .manifest
            .add_record(&edit.encode())
            .and_then(|_| self.manifest.sync())
            .ctx(&self.manifest_path);
        written.map_err(|e| self.fail(e))
    }

    pub(crate) fn current(&self) -> Arc<Version> {
        self.current.clone()
    }

    /// Records `edit` durably, then makes the version it produces current.
    /// `new_file_number` hands out the file number of a fresh MANIFEST when
    /// the current one is full. On error nothing changes in memory, but the
    /// MANIFEST may hold a partial record: the caller must stop writing.
    pub(crate) fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        next_file_number: u64,
        last_sequence: SeqNo,
        new_file_number: impl FnOnce() -> u64,
    ) -> Result<Arc<Version>> {
        self.check_usable()?;
        let log_number = edit.log_number.unwrap_or(self.log_number);
        edit.log_number = Some(log_number);
        edit.next_file_number = Some(next_file_number);
        edit.last_sequence = Some(last_sequence);
        let (version, removed) = self.current.apply(&edit, &self.deleter);
        if self.manifest.len() >= MAX_MANIFEST_SIZE {
            let number = new_file_number();
            let old = self.manifest_path.clone();
            let counters = Counters {
                log_number,
                next_file_number: next_file_number.max(number + 1),
                last_sequence,
            };
            let (manifest, path) = write_manifest(&*self.fs, &self.dir, number, &version, counters)
                .map_err(|e| self.fail(e))?;
            self.manifest = manifest;
            self.manifest_path = path;
            // The old MANIFEST is unreferenced now; a failure to remove it
            // leaves a file that the next open removes.
            let _ = self.fs.remove_file(&old);
        } else {
            let written = self
                .manifest
                .add_record(&edit.encode())
                .and_then(|_| self.manifest.sync())
                .ctx(&self.manifest_path);
            written.map_err(|e| self.fail(e))?;
        }
        // Only now that the edit is durable may the files it removed go.
        super::retire(removed);
        self.current = Arc::new(version);
        self.log_number = log_number;
        Ok(self.current.clone())
    }
}

/// Writes a MANIFEST holding a full snapshot, syncs it, and atomically
/// points `CURRENT` at it.
fn write_manifest(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    version: &Version,
    counters: Counters,
) -> Result<(LogWriter, PathBuf)> {
    let path = dir.join(manifest_name(number));
    let file = fs.create(&path).ctx(&path)?;
    let mut writer = LogWriter::create(file, LogKind::Manifest, number).ctx(&path)?;
    let snapshot = VersionEdit {
        log_number: Some(counters.log_number),
        next_file_number: Some(counters.next_file_number),
        last_sequence: Some(counters.last_sequence),
        deleted_files: Vec::new(),
        new_files: version
            .levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |f| (level as u32, f.meta.clone())))
            .collect(),
        clean_close: false,
    };
    writer.add_record(&snapshot.encode()).ctx(&path)?;
    writer.sync().ctx(&path)?;
    set_current(fs, dir, number)?;
    Ok((writer, path))
}

/// Atomically replaces `CURRENT` with the name of MANIFEST `number`.
fn set_current(fs: &dyn FileSystem, dir: &Path, number: u64) -> Result<()> {
    let tmp = dir.join(format!("{number:06}.tmp"));
    let mut f = fs.create(&tmp).ctx(&tmp)?;
    f.append(format!("{}\n", manifest_name(number)).as_bytes())
        .ctx(&tmp)?;
    f.sync().ctx(&tmp)?;
    drop(f);
    let current = dir.join(CURRENT);
    fs.rename(&tmp, &current).ctx(&tmp)?;
    fs.sync_dir(dir).ctx(dir)
}
