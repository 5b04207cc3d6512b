//! The MANIFEST, edit by edit, and the state it describes.

use super::log::{parse_header, LogHeader};
use crate::cf_options::ColumnFamilyOptions;
use crate::db::table_file;
use crate::error::{Error, IoContext, Result};
use crate::fs::{FileSystem, OsFileSystem};
use crate::listener::TableFile;
use crate::version::{manifest_name, VersionEdit, CURRENT};
use crate::wal::{LogKind, LogReader, ReadEvent};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One column family's part of a MANIFEST edit.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FamilyChange {
    /// The family's id (0 is the default family).
    pub id: u32,
    /// The family is created (or, in a MANIFEST's first edit, described)
    /// with this name and these options (`None` when they cannot be read).
    pub added: Option<(String, Option<ColumnFamilyOptions>)>,
    /// The family is dropped.
    pub dropped: bool,
    /// Logs numbered below this hold nothing of the family that is not in
    /// its tables.
    pub log_number: Option<u64>,
    /// Files leaving the family: (level, file number).
    pub deleted_files: Vec<(usize, u64)>,
    /// Files joining it.
    pub new_files: Vec<TableFile>,
}

/// One edit (record) of a MANIFEST.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ManifestEdit {
    /// Where the record starts in the file.
    pub offset: u64,
    /// Logs numbered below this hold nothing that is not in a table.
    pub log_number: Option<u64>,
    /// The next file number to hand out.
    pub next_file_number: Option<u64>,
    /// The sequence number of the newest write in a table.
    pub last_sequence: Option<u64>,
    /// Every family id up to this was handed out.
    pub max_column_family: Option<u32>,
    /// Changes to families.
    pub families: Vec<FamilyChange>,
    /// The database was closed cleanly after the previous edit.
    pub clean_close: bool,
}

/// A column family as the MANIFEST leaves it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LiveFamily {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its recorded options (`None` when not recorded, as in format 1, or
    /// not readable).
    pub options: Option<ColumnFamilyOptions>,
    /// Its table files, by level then as listed.
    pub files: Vec<TableFile>,
}

/// A MANIFEST read edit by edit, from [`read_manifest`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ManifestDump {
    /// The MANIFEST read.
    pub path: PathBuf,
    /// Its header, when valid.
    pub header: Option<LogHeader>,
    /// Every edit that could be read, in order.
    pub edits: Vec<ManifestEdit>,
    /// Damage that ended the reading (offset, what failed): nothing after
    /// it was read.
    pub damage: Option<(u64, String)>,
    /// The file ends inside a record (an edit cut short by a crash, which
    /// never took effect), at this offset.
    pub torn_tail: Option<u64>,
    /// Families after applying every edit read, by id, with their files.
    pub families: Vec<LiveFamily>,
    /// The last log number, next file number and last sequence recorded.
    pub log_number: Option<u64>,
    /// See [`ManifestEdit::next_file_number`].
    pub next_file_number: Option<u64>,
    /// See [`ManifestEdit::last_sequence`].
    pub last_sequence: Option<u64>,
    /// The largest family id recorded (explicitly, or as a family's id).
    pub max_column_family: u32,
}

/// The MANIFEST of the database in `dir`: the one `CURRENT` names, else
/// (`CURRENT` missing or naming no file) the one with the largest number.
fn find_manifest(dir: &Path) -> Result<PathBuf> {
    if let Ok(text) = std::fs::read_to_string(dir.join(CURRENT)) {
        let p = dir.join(text.trim_end_matches('\n'));
        if text.ends_with('\n') && p.is_file() {
            return Ok(p);
        }
    }
    let newest = OsFileSystem
        .list(dir)
        .ctx(dir)?
        .into_iter()
        .filter_map(|n| {
            n.strip_prefix("MANIFEST-")
                .and_then(|d| d.parse::<u64>().ok())
        })
        .max();
    match newest {
        Some(n) => Ok(dir.join(manifest_name(n))),
        None => Err(Error::corruption(
            dir.join(CURRENT),
            0,
            "no usable CURRENT and no MANIFEST file in the directory",
        )),
    }
}

/// Reads a MANIFEST: `path` is a database directory (its live MANIFEST is
/// read: the one `CURRENT` names, else the newest `MANIFEST-*`) or a
/// MANIFEST file. Reading stops at the first damage, which is reported in
/// [`ManifestDump::damage`] with everything read before it.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Corruption`] when a
/// directory holds no MANIFEST.
pub fn read_manifest(path: impl AsRef<Path>) -> Result<ManifestDump> {
    let path = path.as_ref();
    let path = if path.is_dir() {
        find_manifest(path)?
    } else {
        path.to_path_buf()
    };
    let data = OsFileSystem.read_all(&path).ctx(&path)?;
    Ok(parse_manifest(path, &data))
}

/// Reads the edits of the MANIFEST `path` whose bytes are `data` (for
/// repair, which reads through the database's file system).
pub(crate) fn parse_manifest(path: PathBuf, data: &[u8]) -> ManifestDump {
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut dump = ManifestDump {
        header: parse_header(data),
        path,
        edits: Vec::new(),
        damage: None,
        torn_tail: None,
        families: Vec::new(),
        log_number: None,
        next_file_number: None,
        last_sequence: None,
        max_column_family: 0,
    };
    let mut reader = LogReader::new(data, LogKind::Manifest);
    loop {
        match reader.next_event() {
            ReadEvent::Eof => break,
            ReadEvent::TornTail { offset, .. } => {
                dump.torn_tail = Some(offset);
                break;
            }
            ReadEvent::Corrupt { offset, reason } => {
                dump.damage = Some((offset, reason));
                break;
            }
            ReadEvent::Record { offset, data } => match VersionEdit::decode(&data) {
                Ok(edit) => dump.edits.push(public_edit(&dir, offset, edit)),
                Err(reason) => {
                    dump.damage = Some((offset, reason));
                    break;
                }
            },
        }
    }
    apply_edits(&mut dump);
    dump
}

fn public_edit(dir: &Path, offset: u64, edit: VersionEdit) -> ManifestEdit {
    ManifestEdit {
        offset,
        log_number: edit.log_number,
        next_file_number: edit.next_file_number,
        last_sequence: edit.last_sequence,
        max_column_family: edit.max_family_id,
        clean_close: edit.clean_close,
        families: edit
            .families
            .into_iter()
            .map(|f| FamilyChange {
                id: f.id,
                added: f
                    .add
                    .map(|(name, o)| (name, ColumnFamilyOptions::decode(&o).ok().map(|(o, _)| o))),
                dropped: f.drop,
                log_number: f.log_number,
                deleted_files: f
                    .deleted_files
                    .iter()
                    .map(|&(l, n)| (l as usize, n))
                    .collect(),
                new_files: f
                    .new_files
                    .iter()
                    .map(|(l, m)| table_file(dir, *l as usize, m))
                    .collect(),
            })
            .collect(),
    }
}

/// Replays the edits into the final state, as an open would (leniently:
/// an edit for a family that does not exist ends the replay as damage).
fn apply_edits(dump: &mut ManifestDump) {
    let mut families: BTreeMap<u32, LiveFamily> = BTreeMap::new();
    families.insert(
        0,
        LiveFamily {
            id: 0,
            name: crate::options::DEFAULT_COLUMN_FAMILY.to_string(),
            options: None,
            files: Vec::new(),
        },
    );
    for edit in &dump.edits {
        dump.log_number = edit.log_number.or(dump.log_number);
        dump.next_file_number = edit.next_file_number.or(dump.next_file_number);
        dump.last_sequence = edit.last_sequence.or(dump.last_sequence);
        dump.max_column_family = dump
            .max_column_family
            .max(edit.max_column_family.unwrap_or(0));
        for f in &edit.families {
            dump.max_column_family = dump.max_column_family.max(f.id);
            if let Some((name, options)) = &f.added {
                let family = families.entry(f.id).or_insert_with(|| LiveFamily {
                    id: f.id,
                    name: String::new(),
                    options: None,
                    files: Vec::new(),
                });
                family.name = name.clone();
                family.options = options.clone();
            }
            if f.dropped {
                families.remove(&f.id);
                continue;
            }
            let Some(family) = families.get_mut(&f.id) else {
                if dump.damage.is_none() {
                    dump.damage = Some((
                        edit.offset,
                        format!("edit for column family {} that does not exist", f.id),
                    ));
                }
                continue;
            };
            for &(level, number) in &f.deleted_files {
                family
                    .files
                    .retain(|t| !(t.level == level && t.number == number));
            }
            family.files.extend(f.new_files.iter().cloned());
        }
    }
    for f in families.values_mut() {
        f.files.sort_by_key(|t| (t.level, t.number));
    }
    dump.families = families.into_values().collect();
}
