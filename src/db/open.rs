//! Opening a database: checks, locking, and recovery.
//!
//! Recovery reads `CURRENT` and the MANIFEST it names to learn the live
//! table files and the oldest live log, replays the logs from there on into
//! memtables, and writes what they recovered to level-0 tables. Then it
//! starts a new log and a new MANIFEST that records those tables, points
//! `CURRENT` at it, and only then removes the old logs, the old MANIFEST and
//! any file no version references (left by a crash mid-flush or
//! mid-compaction). A crash at any point of this leaves the previous
//! MANIFEST and logs in charge.

use super::background::Background;
use super::events::{self, Events};
use super::family::{Families, Family};
use super::filenames::{self, table_path, FileType, IDENTITY, LOCK};
use super::flush::{write_table, TableFamily};
use super::replay::{Replay, ReplayFamily};
use super::stats::Stats;
use super::table_cache::TableCache;
use super::write::{create_log, log_reserve, WalState};
use super::DbInner;
use crate::block_cache::BlockCache;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{Error, IoContext, Result};
use crate::fs::{EntryKind, FileSystem};
use crate::memtable::{filter_bytes, MemTable};
use crate::options::{Options, DEFAULT_COLUMN_FAMILY};
use crate::table::Table;
use crate::types::SeqNo;
use crate::version::{
    read_current, Counters, Deleter, FamilyVersions, FileMeta, LiveFile, RecoveredFamily, Version,
    VersionSet, CURRENT,
};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) fn open(opts: Options) -> Result<Arc<DbInner>> {
    opts.validate()?;
    let fs = opts.fs.clone();
    let dir = opts.path.clone();
    match fs.kind(&dir).ctx(&dir)? {
        Some(EntryKind::File) => {
            return Err(Error::io(
                &dir,
                io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "database path is a file, not a directory",
                ),
            ))
        }
        Some(EntryKind::Dir) => {}
        None if opts.create_if_missing => fs.create_dir_all(&dir).ctx(&dir)?,
        None => return Err(Error::NotFound { path: dir }),
    }
    let lock_path = dir.join(LOCK);
    let lock = match fs.lock(&lock_path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(Error::Locked { path: dir }),
        Err(e) => return Err(Error::io(&lock_path, e)),
    };

    let names = fs.list(&dir).ctx(&dir)?;
    let has = |n: &str| names.iter().any(|x| x == n);
    let exists = has(IDENTITY) || has(CURRENT);
    if exists && opts.error_if_exists {
        return Err(Error::AlreadyExists { path: dir });
    }
    if !exists && !opts.create_if_missing {
        return Err(Error::NotFound { path: dir });
    }

    // What the MANIFEST says (or an empty database).
    let state = if exists {
        Some(read_current(&*fs, &dir)?)
    } else {
        None
    };
    let mut next_file: u64 = 1;
    let mut last_seq: SeqNo = 0;
    let mut log_floor = 0;
    let mut max_family_id = 0;
    let mut recorded = BTreeMap::new();
    if let Some(state) = state {
        log_floor = state.log_number;
        next_file = state.next_file_number.max(state.manifest_number + 1);
        last_seq = state.last_sequence;
        max_family_id = state.max_family_id;
        recorded = state.families;
    } else {
        recorded.insert(
            0,
            RecoveredFamily {
                name: DEFAULT_COLUMN_FAMILY.to_string(),
                ..RecoveredFamily::default()
            },
        );
    }
    let mut families = opening_families(&opts, recorded, &mut max_family_id)?;
    let mut logs = Vec::new();
    for name in &names {
        match filenames::parse(name) {
            Some(FileType::Log(n)) => {
                next_file = next_file.max(n + 1);
                if n >= log_floor {
                    logs.push(n);
                }
            }
            Some(FileType::Table(n)) | Some(FileType::Manifest(n)) => {
                next_file = next_file.max(n + 1)
            }
            _ => {}
        }
    }
    logs.sort_unstable();
    let listed: Vec<&FileMeta> = families
        .iter()
        .flat_map(|f| f.levels.iter().flatten())
        .collect();
    if opts.paranoid_checks {
        for meta in &listed {
            let name = format!("{:06}.sst", meta.number);
            if !has(&name) {
                return Err(Error::corruption(
                    table_path(&dir, meta.number),
                    0,
                    "table file listed in the MANIFEST is missing",
                ));
            }
        }
    }

    let next_file_number = AtomicU64::new(next_file);
    let new_number = || next_file_number.fetch_add(1, Ordering::Relaxed);

    // Tables no MANIFEST edit names: left by a crash mid-flush or
    // mid-compaction (their data is also in a log or in live tables), or
    // named by an edit that damage cut off the MANIFEST.
    let live: HashSet<u64> = listed.iter().map(|m| m.number).collect();
    let unlisted: Vec<u64> = names
        .iter()
        .filter_map(|n| match filenames::parse(n) {
            Some(FileType::Table(t)) if !live.contains(&t) => Some(t),
            _ => None,
        })
        .collect();

    // Replay the logs, writing a table whenever a memtable fills up.
    let mut recovered: Vec<(u32, FileMeta)> = Vec::new();
    let replay_families = families
        .iter()
        .filter(|f| !f.created)
        .map(|f| {
            let family = ReplayFamily {
                log_number: f.log_number.unwrap_or(log_floor),
                opts: &f.opts,
                // Replayed, flushed, never searched.
                mem: Arc::new(MemTable::new(0, 0)),
            };
            (f.id, family)
        })
        .collect();
    let mut replay = Replay::new(&opts, replay_families, max_family_id, last_seq);
    let family_of = |id: u32| families.iter().find(|f| f.id == id);
    let mut flush = |id: u32, mem: &Arc<MemTable>| -> Result<()> {
        if let Some(f) = family_of(id) {
            if let Some(meta) = flush_recovered(
                &*fs,
                &dir,
                TableFamily {
                    id,
                    name: &f.name,
                    opts: &f.opts,
                },
                mem,
                &new_number,
            )? {
                recovered.push((id, meta));
            }
        }
        Ok(())
    };
    let replayed = logs
        .iter()
        .try_for_each(|&number| replay.log(number, &mut flush))
        .and_then(|_| {
            replay
                .families
                .iter()
                .try_for_each(|(&id, f)| flush(id, &f.mem))
        })
        .and_then(|_| check_unlisted(&opts, &unlisted, replay.last_seq));
    if let Err(e) = replayed {
        for (_, meta) in &recovered {
            let _ = fs.remove_file(&table_path(&dir, meta.number));
        }
        return Err(e);
    }
    last_seq = replay.last_seq;
    let log_damage = replay.damage;
    drop(replay);
    if !recovered.is_empty() {
        fs.sync_dir(&dir).ctx(&dir)?;
    }
    let recovered_tables = recovered.len();
    for (id, meta) in recovered {
        if let Some(f) = families.iter_mut().find(|f| f.id == id) {
            f.levels[0].push(meta);
        }
    }

    let block_cache = (opts.cache_size > 0).then(|| Arc::new(BlockCache::new(opts.cache_size)));
    let table_cache = Arc::new(TableCache::new(
        fs.clone(),
        &dir,
        block_cache,
        opts.max_open_files,
    ));
    let events = Arc::new(Events::new(&dir, &opts.listeners));
    let deleter = make_deleter(fs.clone(), &dir, table_cache.clone(), events.clone());

    // Record every family, the recovered tables and the new log in a new
    // MANIFEST.
    let log_number = new_number();
    let (log_file_path, writer) = create_log(&*fs, &dir, log_number, log_reserve(&opts))?;
    let manifest_number = new_number();
    let versions: BTreeMap<u32, FamilyVersions> = families
        .iter_mut()
        .map(|f| {
            let mut version = Version::empty(f.opts.num_levels);
            for (level, files) in std::mem::take(&mut f.levels).into_iter().enumerate() {
                for meta in files {
                    version.levels[level].push(LiveFile::new(meta, deleter.clone()));
                }
            }
            version.sort();
            let entry = FamilyVersions {
                name: f.name.clone(),
                options: f.opts.encode_recording(f.merge_name.as_deref()),
                current: Arc::new(version),
                log_number,
            };
            (f.id, entry)
        })
        .collect();
    let set = VersionSet::create(
        fs.clone(),
        &dir,
        manifest_number,
        versions,
        max_family_id,
        Counters {
            log_number,
            next_file_number: next_file_number.load(Ordering::Relaxed),
            last_sequence: last_seq,
        },
        deleter,
    )?;
    if !exists {
        write_identity(&*fs, &dir)?;
    }
    let open_families: Families = families
        .into_iter()
        .map(|f| {
            let version = set
                .current(f.id)
                .unwrap_or_else(|| Arc::new(Version::empty(1)));
            let mem_filter = filter_bytes(f.opts.write_buffer_size);
            let family = Family::new(
                f.id,
                f.name.into(),
                f.opts,
                Arc::new(MemTable::new(log_number, mem_filter)),
                version,
            );
            (family.id, Arc::new(family))
        })
        .collect();
    let default = open_families
        .get(&0)
        .cloned()
        .ok_or_else(|| Error::Internal("the default column family is missing".into()))?;
    let ttl_in_use = open_families.values().any(|f| f.opts.ttl.is_some());
    let inner = Arc::new(DbInner {
        dir: dir.clone(),
        fs: fs.clone(),
        lock: Mutex::new(Some(lock)),
        families: RwLock::new(open_families),
        default,
        visible_seq: AtomicU64::new(last_seq),
        writers: Mutex::new(VecDeque::new()),
        wal: Mutex::new(WalState {
            writer,
            path: log_file_path,
            number: log_number,
            last_seq,
            unlocked_seq: last_seq,
            closed_logs: BTreeMap::new(),
        }),
        current_log: AtomicU64::new(log_number),
        next_file_number,
        versions: Mutex::new(set),
        table_cache,
        bg: Background::default(),
        compaction_lock: Mutex::new(()),
        stats: Stats {
            per_op: opts.statistics,
            ..Stats::default()
        },
        events,
        snapshots: Mutex::new(BTreeMap::new()),
        stopped: Mutex::new(None),
        txn_locks: Default::default(),
        closed: AtomicBool::new(false),
        follower: None,
        ttl_in_use: AtomicBool::new(ttl_in_use),
        opts,
    });
    inner
        .stats
        .log_damage_skipped
        .store(log_damage, Ordering::Relaxed);
    remove_obsolete_files(&inner, log_number, manifest_number)?;
    events::opened(&inner, logs.len(), recovered_tables);
    Background::start(&inner);
    Ok(inner)
}

/// Refuses options that contradict what the family's data was written
/// with: another merge operator, or a TTL turned on or off (values of a
/// family with a TTL carry their write time).
fn check_recorded(
    name: &str,
    given: &ColumnFamilyOptions,
    recorded: &ColumnFamilyOptions,
    recorded_merge: Option<&str>,
) -> Result<()> {
    if let (Some(m), Some(r)) = (&given.merge_operator, recorded_merge) {
        if m.name() != r {
            return Err(Error::InvalidArgument(format!(
                "column family {name:?} was written with merge operator {r:?}, \
                 not {:?}",
                m.name()
            )));
        }
    }
    if given.ttl.is_some() != recorded.ttl.is_some() {
        return Err(Error::InvalidArgument(format!(
            "column family {name:?} was created {} a TTL: it cannot be turned {} \
             (its values are stored {} their write time)",
            if recorded.ttl.is_some() {
                "with"
            } else {
                "without"
            },
            if recorded.ttl.is_some() { "off" } else { "on" },
            if recorded.ttl.is_some() {
                "with"
            } else {
                "without"
            },
        )));
    }
    Ok(())
}

/// A family as the open sees it: the MANIFEST's record, with the options it
/// is opened with.
pub(crate) struct OpeningFamily {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) opts: ColumnFamilyOptions,
    /// The merge operator's name to record (the given operator's, or the
    /// one recorded before).
    pub(crate) merge_name: Option<String>,
    pub(crate) levels: Vec<Vec<FileMeta>>,
    pub(crate) log_number: Option<u64>,
    /// Created by this open (listed in `Options::column_families` but not in
    /// the MANIFEST): it has no data to recover.
    pub(crate) created: bool,
}

/// The families to open: the recorded ones with the options they get (the
/// default family's from `Options`, a listed family's from
/// `Options::column_families`, another's as recorded), plus the listed ones
/// that do not exist yet.
pub(crate) fn opening_families(
    opts: &Options,
    recorded: BTreeMap<u32, RecoveredFamily>,
    max_family_id: &mut u32,
) -> Result<Vec<OpeningFamily>> {
    let mut out = Vec::new();
    for (id, f) in recorded {
        let recorded_opts = match &f.options {
            Some(encoded) => Some(ColumnFamilyOptions::decode(encoded).map_err(|reason| {
                Error::InvalidArgument(format!(
                    "recorded options of column family {:?} cannot be read ({reason}); \
                     pass them in Options::column_families",
                    f.name
                ))
            })?),
            None => None,
        };
        let given = if id == 0 {
            Some(opts.default_family_options())
        } else {
            opts.column_families.get(&f.name).cloned()
        };
        let recorded_merge = recorded_opts.as_ref().and_then(|(_, m)| m.clone());
        let family_opts = match (given, recorded_opts) {
            (Some(given), recorded) => {
                if let Some((r, _)) = &recorded {
                    check_recorded(&f.name, &given, r, recorded_merge.as_deref())?;
                }
                given
            }
            (None, Some((r, _))) => r,
            (None, None) => ColumnFamilyOptions::default(),
        };
        let mut levels = f.levels;
        if levels.len() > family_opts.num_levels {
            if let Some(meta) = levels[family_opts.num_levels..].iter().flatten().next() {
                return Err(Error::InvalidArgument(format!(
                    "column family {:?} holds table {} below its num_levels ({})",
                    f.name, meta.number, family_opts.num_levels
                )));
            }
        }
        levels.resize(family_opts.num_levels, Vec::new());
        // A name recorded for operands already written stays recorded even
        // when this open gives no operator.
        let merge_name = family_opts
            .merge_operator
            .as_ref()
            .map(|m| m.name().to_string())
            .or(recorded_merge);
        out.push(OpeningFamily {
            id,
            name: f.name,
            opts: family_opts,
            merge_name,
            levels,
            log_number: f.log_number,
            created: false,
        });
    }
    let mut missing: Vec<(&String, &ColumnFamilyOptions)> = opts
        .column_families
        .iter()
        .filter(|(name, _)| !out.iter().any(|f| &f.name == *name))
        .collect();
    missing.sort_by(|a, b| a.0.cmp(b.0));
    for (name, o) in missing {
        if name == DEFAULT_COLUMN_FAMILY {
            continue;
        }
        *max_family_id += 1;
        out.push(OpeningFamily {
            id: *max_family_id,
            name: name.clone(),
            opts: o.clone(),
            merge_name: o.merge_operator.as_ref().map(|m| m.name().to_string()),
            levels: vec![Vec::new(); o.num_levels],
            log_number: None,
            created: true,
        });
    }
    Ok(out)
}

fn make_deleter(
    fs: Arc<dyn FileSystem>,
    dir: &Path,
    table_cache: Arc<TableCache>,
    events: Arc<Events>,
) -> Deleter {
    let dir = dir.to_path_buf();
    Arc::new(move |number| {
        table_cache.evict(number);
        // A failure leaves an orphan that the next open removes.
        events.table_deleted(number, fs.remove_file(&table_path(&dir, number)));
    })
}

pub(crate) fn write_identity(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let path = dir.join(IDENTITY);
    let mut f = fs.create(&path).ctx(&path)?;
    f.append(filenames::IDENTITY_TEXT).ctx(&path)?;
    f.sync().ctx(&path)?;
    fs.sync_dir(dir).ctx(dir)
}

/// Writes a recovered memtable to a level-0 table.
fn flush_recovered(
    fs: &dyn FileSystem,
    dir: &Path,
    family: TableFamily<'_>,
    mem: &Arc<MemTable>,
    new_number: &dyn Fn() -> u64,
) -> Result<Option<FileMeta>> {
    if mem.is_empty() {
        return Ok(None);
    }
    write_table(
        fs,
        dir,
        family,
        &mut mem.iter(),
        &mem.fragments(),
        new_number(),
        0,
    )
}

/// Checks that every table no MANIFEST edit names is safe to delete: one
/// that holds writes newer than anything the MANIFEST and the logs account
/// for was named by an edit that is gone (damage cut the MANIFEST short),
/// and deleting it would lose acknowledged data silently. A table that
/// cannot be read was cut short by a crash while being written.
fn check_unlisted(opts: &Options, unlisted: &[u64], last_seq: SeqNo) -> Result<()> {
    for &number in unlisted {
        let path = table_path(&opts.path, number);
        let Ok(file) = opts.fs.open(&path) else {
            continue;
        };
        let Ok(table) = Table::open(file, path.clone(), number, None, Arc::default()) else {
            continue;
        };
        let newest = table.properties().largest_seq;
        if newest > last_seq && table.properties().entries > 0 {
            return Err(Error::corruption(
                &path,
                0,
                format!(
                    "table holds writes up to sequence number {newest}, but the MANIFEST \
                     and the logs end at {last_seq}: the MANIFEST lost the edit that names \
                     it (damaged or truncated); not opening rather than deleting it \
                     (repair the database to recover it)"
                ),
            ));
        }
    }
    Ok(())
}

/// Removes logs older than `log_number`, MANIFESTs other than the live one,
/// tables in no version, and temporary files.
fn remove_obsolete_files(inner: &DbInner, log_number: u64, manifest_number: u64) -> Result<()> {
    let live: HashSet<u64> = inner
        .family_list()
        .iter()
        .flat_map(|f| f.view.read().version.file_numbers().collect::<Vec<_>>())
        .collect();
    let names = inner.fs.list(&inner.dir).ctx(&inner.dir)?;
    let mut removed = false;
    for name in names {
        let obsolete = match filenames::parse(&name) {
            Some(FileType::Log(n)) => n < log_number,
            Some(FileType::Manifest(n)) => n != manifest_number,
            Some(FileType::Table(n)) => !live.contains(&n),
            Some(FileType::Temp) => true,
            _ => false,
        };
        if obsolete {
            let p = inner.dir.join(&name);
            inner.fs.remove_file(&p).ctx(&p)?;
            removed = true;
        }
    }
    if removed {
        inner.fs.sync_dir(&inner.dir).ctx(&inner.dir)?;
    }
    Ok(())
}
