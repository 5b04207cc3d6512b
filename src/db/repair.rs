//! `aidb::repair`: rebuild the MANIFEST of a database from the files
//! present, when it is lost or damaged, as RocksDB's `RepairDB`.
//!
//! 1. Salvage what the old MANIFESTs still say, edit by edit up to any
//!    damage: the column families (names and recorded options), which
//!    family each table belonged to, and the counters.
//! 2. Read every table file whole, checking every checksum, and rebuild
//!    its MANIFEST record (key and sequence ranges, range tombstones,
//!    unique id, whole-file CRC). A table that fails is moved to `lost/`
//!    and reported as dropped. A table's family comes from its properties
//!    (recorded since format 3 tables carry it), else from the salvaged
//!    edits, else it goes to the default family (reported).
//! 3. Write a new MANIFEST with every surviving table in level 0 and a log
//!    number of 0, so the next open replays every log present.
//! 4. Open the database (replaying the logs) and compact each family's
//!    whole range. The levels the tables were in are not known for sure
//!    (edits after the damage are lost, and level 0 is searched newest file
//!    first), so a compaction, which orders versions by sequence number
//!    whatever file they come from, puts every key's newest version on top
//!    before anyone reads.

use super::filenames::{self, FileType, IDENTITY, LOCK};
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::options::{Options, DEFAULT_COLUMN_FAMILY};
use crate::table::Table;
use crate::version::{
    Counters, FamilyVersions, FileMeta, LiveFile, Version, VersionEdit, VersionSet,
};
use crate::wal::{LogKind, LogReader, ReadEvent};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What [`repair`](crate::repair) found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RepairReport {
    /// Tables kept: (file number, column family name, entries).
    pub tables_recovered: Vec<(u64, String, u64)>,
    /// Tables that could not be read, moved to `lost/`, with why.
    pub tables_dropped: Vec<(PathBuf, String)>,
    /// Tables whose family is unknown (old tables, MANIFEST lost), put in
    /// the default family.
    pub tables_assigned_to_default: Vec<u64>,
    /// Tables of dropped column families, moved to `lost/`.
    pub tables_of_dropped_families: Vec<u64>,
    /// Logs present, replayed by the open that follows.
    pub logs_replayed: Vec<u64>,
    /// Column families of the new MANIFEST: (id, name, whether their
    /// options were recovered; if not they have the defaults, or those
    /// given in `Options::column_families`).
    pub column_families: Vec<(u32, String, bool)>,
    /// MANIFEST files read, with the damage that ended the reading if any.
    pub manifests_read: Vec<(PathBuf, Option<String>)>,
    /// Damaged places the replay of the logs skipped (writes there lost).
    pub log_damage_skipped: u64,
}

impl RepairReport {
    /// Whether anything was dropped: a table, a damaged part of a log.
    pub fn lost_anything(&self) -> bool {
        !self.tables_dropped.is_empty() || self.log_damage_skipped > 0
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, damage) in &self.manifests_read {
            match damage {
                None => writeln!(f, "read {}: intact", path.display())?,
                Some(d) => writeln!(
                    f,
                    "read {}: damaged ({d}), edits before it used",
                    path.display()
                )?,
            }
        }
        for (id, name, known) in &self.column_families {
            let opts = if *known {
                "recorded options"
            } else {
                "options unknown, defaults used"
            };
            writeln!(f, "column family {id} {name:?}: {opts}")?;
        }
        for (n, family, entries) in &self.tables_recovered {
            writeln!(f, "recovered table {n} ({family:?}, {entries} entries)")?;
        }
        for n in &self.tables_assigned_to_default {
            writeln!(
                f,
                "table {n}: column family unknown, put in the default family"
            )?;
        }
        for n in &self.tables_of_dropped_families {
            writeln!(
                f,
                "table {n}: its column family was dropped; moved to lost/"
            )?;
        }
        for (path, why) in &self.tables_dropped {
            writeln!(f, "DROPPED table {}: {why}; moved to lost/", path.display())?;
        }
        for n in &self.logs_replayed {
            writeln!(f, "replayed log {n}")?;
        }
        if self.log_damage_skipped > 0 {
            writeln!(
                f,
                "DROPPED {} damaged places in the logs",
                self.log_damage_skipped
            )?;
        }
        writeln!(
            f,
            "{} tables recovered, {} dropped",
            self.tables_recovered.len(),
            self.tables_dropped.len()
        )
    }
}

/// A family as the salvaged MANIFEST edits leave it.
#[derive(Default)]
struct Salvaged {
    /// id → (name, encoded options).
    families: BTreeMap<u32, (String, Vec<u8>)>,
    dropped: Vec<u32>,
    /// Table number → family id, from every new-file record read.
    table_family: BTreeMap<u64, u32>,
    max_family_id: u32,
    next_file_number: u64,
    last_sequence: u64,
}

fn salvage(fs: &dyn FileSystem, path: &Path, s: &mut Salvaged) -> Result<Option<String>> {
    let data = fs.read_all(path).ctx(path)?;
    let mut reader = LogReader::new(&data, LogKind::Manifest);
    loop {
        let edit = match reader.next_event() {
            ReadEvent::Eof | ReadEvent::TornTail { .. } => return Ok(None),
            ReadEvent::Corrupt { offset, reason } => {
                return Ok(Some(format!("offset {offset}: {reason}")))
            }
            ReadEvent::Record { offset, data } => match VersionEdit::decode(&data) {
                Ok(e) => e,
                Err(reason) => return Ok(Some(format!("offset {offset}: {reason}"))),
            },
        };
        s.max_family_id = s.max_family_id.max(edit.max_family_id.unwrap_or(0));
        s.next_file_number = s.next_file_number.max(edit.next_file_number.unwrap_or(0));
        s.last_sequence = s.last_sequence.max(edit.last_sequence.unwrap_or(0));
        for f in edit.families {
            s.max_family_id = s.max_family_id.max(f.id);
            if let Some(add) = f.add {
                s.families.insert(f.id, add);
                s.dropped.retain(|&d| d != f.id);
            }
            if f.drop {
                s.families.remove(&f.id);
                s.dropped.push(f.id);
            }
            for (_, meta) in &f.new_files {
                s.table_family.insert(meta.number, f.id);
            }
        }
    }
}

/// A table read whole: its MANIFEST record, the family recorded in it, and
/// its entry count.
type Scanned = (FileMeta, Option<(u32, String)>, u64);

/// Reads table `number` whole and builds its MANIFEST record.
fn scan_table(fs: &dyn FileSystem, path: &Path, number: u64) -> Result<Scanned> {
    use crate::internal_iter::InternalIterator;
    let bytes = fs.read_all(path).ctx(path)?;
    let file = fs.open(path).ctx(path)?;
    let table = Table::open(file, path.to_path_buf(), number, None, Arc::default())?;
    let mut meta = FileMeta::new(number);
    let mut entries = 0u64;
    let mut iter = table.iter();
    iter.seek_to_first();
    while iter.valid() {
        meta.extend(iter.key());
        entries += 1;
        iter.next();
    }
    iter.status()?;
    let props = table.properties();
    if entries != props.entries {
        return Err(Error::corruption(
            path,
            0,
            format!(
                "{entries} entries read, the properties say {}",
                props.entries
            ),
        ));
    }
    meta.add_range_deletions(table.range_deletions());
    let mut props = props.clone();
    props.file_size = bytes.len() as u64;
    props.unique_id = table.unique_id();
    props.file_crc = crc32fast::hash(&bytes);
    meta.finish(&props);
    Ok((meta, props.family.clone(), entries))
}

/// Moves `name` of `dir` into `dir/lost/`, where an operator can look at
/// it (as RocksDB's repair does).
fn move_to_lost(fs: &dyn FileSystem, dir: &Path, name: &str) -> Result<()> {
    let lost = dir.join("lost");
    fs.create_dir_all(&lost).ctx(&lost)?;
    let to = lost.join(name);
    fs.rename(&dir.join(name), &to).ctx(&to)
}

/// See [`crate::repair`].
pub(crate) fn repair(options: Options) -> Result<RepairReport> {
    let fs = options.fs.clone();
    let dir = options.path.clone();
    match fs.kind(&dir).ctx(&dir)? {
        Some(crate::fs::EntryKind::Dir) => {}
        _ => return Err(Error::NotFound { path: dir }),
    }
    let names = fs.list(&dir).ctx(&dir)?;
    let parsed: Vec<(String, FileType)> = names
        .iter()
        .filter_map(|n| filenames::parse(n).map(|t| (n.clone(), t)))
        .collect();
    let has_db_files = parsed.iter().any(|(_, t)| {
        matches!(
            t,
            FileType::Table(_) | FileType::Log(_) | FileType::Manifest(_)
        )
    });
    if !has_db_files && !names.iter().any(|n| n == IDENTITY) {
        return Err(Error::NotFound { path: dir });
    }
    let mut report = RepairReport::default();
    {
        let lock_path = dir.join(LOCK);
        let _lock = match fs.lock(&lock_path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(Error::Locked { path: dir })
            }
            Err(e) => return Err(Error::io(&lock_path, e)),
        };
        rebuild_manifest(&*fs, &dir, &options, &parsed, &mut report)?;
    }
    // Replay the logs and settle the levels (see the module comment).
    let db = crate::DB::open_with(Options {
        create_if_missing: false,
        ..options.clone()
    })?;
    report.log_damage_skipped = db.stats().log_damage_skipped;
    for name in db.column_family_names() {
        if let Some(cf) = db.column_family(&name) {
            cf.compact_range(..)?;
        }
    }
    db.close()?;
    log::info!(
        target: "aidb::recovery",
        "repaired {}: {} tables recovered, {} dropped",
        options.path.display(),
        report.tables_recovered.len(),
        report.tables_dropped.len()
    );
    Ok(report)
}

fn rebuild_manifest(
    fs: &dyn FileSystem,
    dir: &Path,
    options: &Options,
    parsed: &[(String, FileType)],
    report: &mut RepairReport,
) -> Result<()> {
    // 1. What the old MANIFESTs say, newest last so it wins.
    let mut manifests: Vec<(u64, &String)> = parsed
        .iter()
        .filter_map(|(n, t)| match t {
            FileType::Manifest(num) => Some((*num, n)),
            _ => None,
        })
        .collect();
    manifests.sort();
    let mut s = Salvaged::default();
    for (_, name) in &manifests {
        let path = dir.join(name);
        let damage = match salvage(fs, &path, &mut s) {
            Ok(d) => d,
            Err(e) => Some(e.to_string()),
        };
        report.manifests_read.push((path, damage));
    }
    let mut max_number = manifests.last().map_or(0, |m| m.0);

    // 2. Every table, read whole.
    let mut tables: BTreeMap<u32, Vec<(FileMeta, u64)>> = BTreeMap::new();
    let mut from_tables: BTreeMap<u32, String> = BTreeMap::new();
    let mut last_seq = s.last_sequence;
    for (name, t) in parsed {
        match *t {
            FileType::Log(n) => {
                max_number = max_number.max(n);
                report.logs_replayed.push(n);
            }
            FileType::Table(n) => {
                max_number = max_number.max(n);
                let path = dir.join(name);
                let (meta, recorded, entries) = match scan_table(fs, &path, n) {
                    Ok(t) => t,
                    Err(e) => {
                        move_to_lost(fs, dir, name)?;
                        report.tables_dropped.push((path, e.to_string()));
                        continue;
                    }
                };
                let id = match (&recorded, s.table_family.get(&n)) {
                    (Some((id, name)), _) => {
                        from_tables.entry(*id).or_insert_with(|| name.clone());
                        *id
                    }
                    (None, Some(&id)) => id,
                    (None, None) => {
                        report.tables_assigned_to_default.push(n);
                        0
                    }
                };
                if s.dropped.contains(&id) && !s.families.contains_key(&id) {
                    move_to_lost(fs, dir, name)?;
                    report.tables_of_dropped_families.push(n);
                    continue;
                }
                last_seq = last_seq.max(meta.largest_seq);
                tables.entry(id).or_default().push((meta, entries));
            }
            _ => {}
        }
    }
    report.logs_replayed.sort();

    // 3. The families: salvaged ones, then ones only tables name.
    let mut families: BTreeMap<u32, (String, Vec<u8>, bool)> = BTreeMap::new();
    for (id, (name, opts)) in &s.families {
        families.insert(*id, (name.clone(), opts.clone(), true));
    }
    let defaults = |name: &str| {
        options
            .column_families
            .get(name)
            .cloned()
            .unwrap_or_else(ColumnFamilyOptions::default)
    };
    for (id, name) in from_tables {
        families
            .entry(id)
            .or_insert_with(|| (name.clone(), defaults(&name).encode_recording(None), false));
    }
    families.entry(0).or_insert_with(|| {
        let name = DEFAULT_COLUMN_FAMILY.to_string();
        let opts = defaults(&name).encode_recording(None);
        (name, opts, false)
    });
    let noop: crate::version::Deleter = Arc::new(|_| {});
    let mut versions = BTreeMap::new();
    for (id, (name, encoded, known)) in families {
        let num_levels = ColumnFamilyOptions::decode(&encoded)
            .map(|(o, _)| o.num_levels)
            .unwrap_or(ColumnFamilyOptions::default().num_levels);
        let mut version = Version::empty(num_levels);
        for (meta, entries) in tables.remove(&id).unwrap_or_default() {
            report
                .tables_recovered
                .push((meta.number, name.clone(), entries));
            version.levels[0].push(LiveFile::new(meta, noop.clone()));
        }
        version.sort();
        report.column_families.push((id, name.clone(), known));
        versions.insert(
            id,
            FamilyVersions {
                name,
                options: encoded,
                current: Arc::new(version),
                log_number: 0,
            },
        );
    }
    let manifest_number = max_number.max(s.next_file_number) + 1;
    let max_family_id = s
        .max_family_id
        .max(versions.keys().copied().max().unwrap_or(0));
    let set = VersionSet::create(
        Arc::clone(&options.fs),
        dir,
        manifest_number,
        versions,
        max_family_id,
        Counters {
            log_number: 0,
            next_file_number: manifest_number + 1,
            last_sequence: last_seq,
        },
        noop,
    )?;
    drop(set);
    if !fs.list(dir).ctx(dir)?.iter().any(|n| n == IDENTITY) {
        let path = dir.join(IDENTITY);
        let mut f = fs.create(&path).ctx(&path)?;
        f.append(super::filenames::IDENTITY_TEXT).ctx(&path)?;
        f.sync().ctx(&path)?;
    }
    fs.sync_dir(dir).ctx(dir)
}
