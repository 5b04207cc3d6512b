//! The MANIFEST and `CURRENT`: the durable record of the live files.
//!
//! The MANIFEST is a log file (kind MANIFEST) whose records are
//! [`VersionEdit`]s. Its first edit is a full snapshot (every live file and
//! every counter); later edits are changes. `CURRENT` holds the name of the
//! live MANIFEST followed by a newline and is only ever replaced atomically:
//! written to a temporary file, fsynced, renamed over `CURRENT`, and the
//! directory fsynced. A new MANIFEST is started at every open and when the
//! current one grows past a limit.

use super::{Deleter, FamilyEdit, FileMeta, Version, VersionEdit};
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::types::{compare_internal_keys, SeqNo};
use crate::wal::{LogKind, LogReader, LogWriter, ReadEvent};
use std::collections::BTreeMap;
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

/// One column family as a MANIFEST describes it.
#[derive(Debug, Default)]
pub(crate) struct RecoveredFamily {
    pub(crate) name: String,
    /// Encoded options, when recorded (format 1 recorded none).
    pub(crate) options: Option<Vec<u8>>,
    /// Live files by level (as many levels as files were found on).
    pub(crate) levels: Vec<Vec<FileMeta>>,
    /// Logs below this hold nothing of this family that is not in a table
    /// (when not recorded, the database-wide log number says it).
    pub(crate) log_number: Option<u64>,
}

/// What a MANIFEST said when it was replayed.
pub(crate) struct RecoveredState {
    pub(crate) families: BTreeMap<u32, RecoveredFamily>,
    /// Every family id up to this was handed out.
    pub(crate) max_family_id: u32,
    pub(crate) log_number: u64,
    pub(crate) next_file_number: u64,
    pub(crate) last_sequence: SeqNo,
    pub(crate) manifest_number: u64,
}

/// Applies one family's part of an edit to the recovered state.
fn recover_family_edit(
    state: &mut BTreeMap<u32, RecoveredFamily>,
    f: FamilyEdit,
) -> std::result::Result<(), String> {
    if let Some((name, options)) = f.add {
        let family = state.entry(f.id).or_default();
        family.name = name;
        family.options = Some(options);
    }
    if f.drop {
        if f.id == 0 || state.remove(&f.id).is_none() {
            return Err(format!(
                "drop of column family {} that does not exist",
                f.id
            ));
        }
        return Ok(());
    }
    let family = state
        .get_mut(&f.id)
        .ok_or_else(|| format!("edit for column family {} that does not exist", f.id))?;
    for &(level, number) in &f.deleted_files {
        if let Some(files) = family.levels.get_mut(level as usize) {
            files.retain(|m| m.number != number);
        }
    }
    for (level, meta) in f.new_files {
        let level = level as usize;
        if level >= 64 {
            return Err(format!("file {} on level {level}", meta.number));
        }
        if family.levels.len() <= level {
            family.levels.resize(level + 1, Vec::new());
        }
        family.levels[level].push(meta);
    }
    family.log_number = f.log_number.or(family.log_number);
    Ok(())
}

/// Reads `CURRENT` and replays the MANIFEST it names.
pub(crate) fn read_current(fs: &dyn FileSystem, dir: &Path) -> Result<RecoveredState> {
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

    let mut families = BTreeMap::new();
    families.insert(
        0,
        RecoveredFamily {
            name: crate::options::DEFAULT_COLUMN_FAMILY.to_string(),
            ..RecoveredFamily::default()
        },
    );
    let mut max_family_id = 0;
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
                for f in edit.families {
                    max_family_id = max_family_id.max(f.id);
                    recover_family_edit(&mut families, f)
                        .map_err(|reason| Error::corruption(&path, offset, reason))?;
                }
                max_family_id = max_family_id.max(edit.max_family_id.unwrap_or(0));
                log_number = edit.log_number.or(log_number);
                next_file_number = edit.next_file_number.or(next_file_number);
                last_sequence = edit.last_sequence.or(last_sequence);
            }
        }
    }
    for f in families.values_mut() {
        for files in f.levels.iter_mut().skip(1) {
            files.sort_by(|a, b| compare_internal_keys(&a.smallest, &b.smallest));
        }
        super::check_levels(&f.levels).map_err(|reason| {
            Error::corruption(&path, 0, format!("column family {:?}: {reason}", f.name))
        })?;
    }
    let missing = |what: &str| Error::corruption(&path, 0, format!("MANIFEST has no {what}"));
    Ok(RecoveredState {
        families,
        max_family_id,
        log_number: log_number.ok_or_else(|| missing("log number"))?,
        next_file_number: next_file_number.ok_or_else(|| missing("next file number"))?,
        last_sequence: last_sequence.ok_or_else(|| missing("last sequence"))?,
        manifest_number,
    })
}

/// One column family's part of the version set.
#[derive(Clone)]
pub(crate) struct FamilyVersions {
    pub(crate) name: String,
    /// Its options, encoded as recorded in the MANIFEST.
    pub(crate) options: Vec<u8>,
    pub(crate) current: Arc<Version>,
    /// Logs below this hold nothing of the family that is not in a table.
    pub(crate) log_number: u64,
}

/// The live MANIFEST and every family's current version. Owned by the
/// engine under a mutex: one version change at a time.
pub(crate) struct VersionSet {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    manifest: LogWriter,
    manifest_path: PathBuf,
    families: BTreeMap<u32, FamilyVersions>,
    deleter: Deleter,
    /// Every family id up to this was handed out.
    pub(crate) max_family_id: u32,
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
    /// Starts a new MANIFEST holding a snapshot of `families` and points
    /// `CURRENT` at it. Used at open.
    pub(crate) fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        manifest_number: u64,
        families: BTreeMap<u32, FamilyVersions>,
        max_family_id: u32,
        counters: Counters,
        deleter: Deleter,
    ) -> Result<VersionSet> {
        let snapshot = snapshot_edit(&families, max_family_id, counters);
        let (manifest, manifest_path) = write_manifest(&*fs, dir, manifest_number, &snapshot)?;
        Ok(VersionSet {
            fs,
            dir: dir.to_path_buf(),
            manifest,
            manifest_path,
            families,
            deleter,
            max_family_id,
            log_number: counters.log_number,
            failed: None,
        })
    }

    /// A version set for a read-only handle: it holds `families` and
    /// refuses every change (its MANIFEST writer writes nowhere).
    pub(crate) fn detached(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        families: BTreeMap<u32, FamilyVersions>,
        max_family_id: u32,
        log_number: u64,
        deleter: Deleter,
        manifest: LogWriter,
    ) -> VersionSet {
        VersionSet {
            fs,
            dir: dir.to_path_buf(),
            manifest,
            manifest_path: dir.join(CURRENT),
            families,
            deleter,
            max_family_id,
            log_number,
            failed: Some(Arc::new(Error::InvalidArgument(
                "opened read-only: the MANIFEST is never written".into(),
            ))),
        }
    }

    /// Refuses any change after a failed write (see `failed`): writes are
    /// stopped for good since then (`DB::resume` answers `ReopenRequired`).
    fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(cause) => Err(Error::ReadOnly {
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

    /// Every live family's record (name, options, version), by id.
    pub(crate) fn families(&self) -> &BTreeMap<u32, FamilyVersions> {
        &self.families
    }

    /// The current version of family `id`, if it exists.
    pub(crate) fn current(&self, id: u32) -> Option<Arc<Version>> {
        self.families.get(&id).map(|f| f.current.clone())
    }

    /// Records `edit` durably, then makes the versions it produces current;
    /// returns them for each family it changed (not those it drops).
    /// `new_file_number` hands out the file number of a fresh MANIFEST when
    /// the current one is full. On error nothing changes in memory, and
    /// (the MANIFEST may hold part of a record) no later edit is accepted.
    pub(crate) fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        next_file_number: u64,
        last_sequence: SeqNo,
        new_file_number: impl FnOnce() -> u64,
    ) -> Result<Vec<(u32, Arc<Version>)>> {
        self.check_usable()?;
        let log_number = edit.log_number.unwrap_or(self.log_number);
        edit.log_number = Some(log_number);
        edit.next_file_number = Some(next_file_number);
        edit.last_sequence = Some(last_sequence);
        let mut max_family_id = self.max_family_id;
        let mut families = self.families.clone();
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for f in &edit.families {
            max_family_id = max_family_id.max(f.id);
            if let Some((name, options)) = &f.add {
                let num_levels = crate::cf_options::ColumnFamilyOptions::decode(options)
                    .map(|(o, _)| o.num_levels)
                    .unwrap_or(7);
                families.insert(
                    f.id,
                    FamilyVersions {
                        name: name.clone(),
                        options: options.clone(),
                        current: Arc::new(Version::empty(num_levels)),
                        log_number: f.log_number.unwrap_or(log_number),
                    },
                );
            }
            if f.drop {
                if let Some(gone) = families.remove(&f.id) {
                    removed.extend(gone.current.levels.iter().flatten().cloned());
                }
                continue;
            }
            let family = families.get_mut(&f.id).ok_or_else(|| {
                Error::InvalidArgument(format!("column family id {} does not exist", f.id))
            })?;
            let (version, gone) = family
                .current
                .apply(f, &self.deleter)
                .map_err(|e| Error::Internal(format!("column family {}: {e}", f.id)))?;
            removed.extend(gone);
            family.current = Arc::new(version);
            family.log_number = f.log_number.unwrap_or(family.log_number);
            changed.push(f.id);
        }
        edit.max_family_id = (max_family_id > self.max_family_id).then_some(max_family_id);
        if self.manifest.len() >= MAX_MANIFEST_SIZE {
            let number = new_file_number();
            let old = self.manifest_path.clone();
            let counters = Counters {
                log_number,
                next_file_number: next_file_number.max(number + 1),
                last_sequence,
            };
            let snapshot = snapshot_edit(&families, max_family_id, counters);
            let (manifest, path) = write_manifest(&*self.fs, &self.dir, number, &snapshot)
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
        self.families = families;
        self.max_family_id = max_family_id;
        self.log_number = log_number;
        Ok(changed
            .into_iter()
            .filter_map(|id| self.families.get(&id).map(|f| (id, f.current.clone())))
            .collect())
    }
}

/// The first edit of a MANIFEST: every counter, every family with its
/// options, log number and live files.
pub(crate) fn snapshot_edit(
    families: &BTreeMap<u32, FamilyVersions>,
    max_family_id: u32,
    counters: Counters,
) -> VersionEdit {
    VersionEdit {
        log_number: Some(counters.log_number),
        next_file_number: Some(counters.next_file_number),
        last_sequence: Some(counters.last_sequence),
        max_family_id: Some(max_family_id),
        families: families
            .iter()
            .map(|(&id, f)| FamilyEdit {
                id,
                add: Some((f.name.clone(), f.options.clone())),
                drop: false,
                log_number: Some(f.log_number),
                deleted_files: Vec::new(),
                new_files: f
                    .current
                    .levels
                    .iter()
                    .enumerate()
                    .flat_map(|(level, files)| {
                        files.iter().map(move |lf| (level as u32, lf.meta.clone()))
                    })
                    .collect(),
            })
            .collect(),
        clean_close: false,
    }
}

/// Writes a MANIFEST holding `snapshot`, syncs it, and atomically points
/// `CURRENT` at it.
pub(crate) fn write_manifest(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    snapshot: &VersionEdit,
) -> Result<(LogWriter, PathBuf)> {
    let path = dir.join(manifest_name(number));
    let file = fs.create(&path).ctx(&path)?;
    let mut writer = LogWriter::create(file, LogKind::Manifest, number).ctx(&path)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FaultInjectionFs;
    use crate::version::test_meta as meta;

    /// A MANIFEST whose deeper level lists overlapping files describes a
    /// database whose reads would miss keys: opening it is corruption.
    #[test]
    fn a_manifest_with_overlapping_files_in_a_level_is_corruption() {
        let fs = FaultInjectionFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let write = |files: Vec<(u32, FileMeta)>| {
            let edit = VersionEdit {
                log_number: Some(1),
                next_file_number: Some(10),
                last_sequence: Some(5),
                families: vec![FamilyEdit {
                    new_files: files,
                    ..FamilyEdit::new(0)
                }],
                ..VersionEdit::default()
            };
            write_manifest(&fs, dir, 2, &edit).unwrap();
        };
        write(vec![
            (1, meta(7, "m", "z")),
            (1, meta(6, "a", "l")),
            (0, meta(8, "a", "z")),
        ]);
        let state = read_current(&fs, dir).unwrap();
        let numbers: Vec<u64> = state.families[&0].levels[1]
            .iter()
            .map(|m| m.number)
            .collect();
        assert_eq!(numbers, [6, 7], "sorted by key");
        write(vec![(1, meta(7, "m", "z")), (1, meta(6, "a", "m"))]);
        match read_current(&fs, dir) {
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(
                    e.to_string().contains("tables 6 and 7 of level 1 overlap"),
                    "{e}"
                );
            }
            Ok(_) => panic!("overlapping files accepted"),
        }
    }
}
