//! Read-only and secondary handles: [`DB::open_read_only`],
//! [`DB::open_secondary`] and [`DB::try_catch_up`].
//!
//! Both read `CURRENT`, the MANIFEST and the live logs as an open does,
//! replaying the logs into memtables held in memory (never flushed), and
//! write nothing at all: no lock, no new log or MANIFEST, no file removed
//! (their versions' files have no deleter), no background threads. Writes,
//! flushes and compactions are refused with `InvalidArgument`.
//!
//! A secondary follows a primary that keeps writing, in this process or
//! another, as RocksDB's secondary instance does: `try_catch_up` reads the
//! MANIFEST and the logs again and swaps in the result. Replay only ever
//! applies whole log records (a record the primary is still appending
//! fails its length or checksum check and is left for next time), and the
//! new sequence number is published before the new views, so a reader sees
//! either the old state or the new one, never part of a batch. The primary
//! may delete files the secondary still reads (after a compaction, or a
//! log it replaced); a catch-up that trips over one starts again, a few
//! times. It opens every table it will read, so later reads find them
//! even once the primary deleted them, as long as the table cache
//! (`max_open_files`) keeps them open.

use super::family::{Family, ReadView};
use super::filenames::{self, FileType};
use super::open::{opening_families, OpeningFamily};
use super::replay::{Replay, ReplayFamily};
use super::stats::Stats;
use super::table_cache::TableCache;
use super::write::WalState;
use super::{Background, DbInner, DB};
use crate::block_cache::BlockCache;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{Error, IoContext, Result};
use crate::fs::{EntryKind, WritableFile};
use crate::memtable::{filter_bytes, MemTable};
use crate::options::Options;
use crate::types::SeqNo;
use crate::version::{read_current, Deleter, FamilyVersions, LiveFile, Version, VersionSet};
use crate::wal::LogWriter;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What makes a handle read-only.
pub(crate) struct Follower {
    pub(crate) secondary: bool,
}

/// A file that refuses every write: the log and MANIFEST "writers" of a
/// read-only handle (nothing reaches them; this makes sure).
struct Refuse;

impl WritableFile for Refuse {
    fn append(&mut self, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other(
            "read-only handle: nothing is written",
        ))
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other(
            "read-only handle: nothing is written",
        ))
    }
    fn len(&self) -> u64 {
        0
    }
}

/// One family as the files say it is now.
struct Loaded {
    family: OpeningFamily,
    version: Arc<Version>,
    mem: Arc<MemTable>,
}

/// The database's state as its files say it is now.
struct State {
    families: Vec<Loaded>,
    max_family_id: u32,
    log_number: u64,
    last_seq: SeqNo,
}

fn no_delete() -> Deleter {
    Arc::new(|_| {})
}

/// Reads the MANIFEST and replays the live logs (into memtables as large
/// as needed: nothing is flushed).
fn load(opts: &Options) -> Result<State> {
    let fs = &*opts.fs;
    let recorded = read_current(fs, &opts.path)?;
    let mut max_family_id = recorded.max_family_id;
    let families: Vec<OpeningFamily> =
        opening_families(opts, recorded.families, &mut max_family_id)?
            .into_iter()
            .filter(|f| !f.created) // listed in the options, not in the files
            .collect();
    let mut logs: Vec<u64> = fs
        .list(&opts.path)
        .ctx(&opts.path)?
        .iter()
        .filter_map(|n| match filenames::parse(n) {
            Some(FileType::Log(n)) if n >= recorded.log_number => Some(n),
            _ => None,
        })
        .collect();
    logs.sort_unstable();
    let unlimited: Vec<ColumnFamilyOptions> = families
        .iter()
        .map(|f| ColumnFamilyOptions {
            write_buffer_size: usize::MAX,
            ..f.opts.clone()
        })
        .collect();
    let replay_families = families
        .iter()
        .zip(&unlimited)
        .map(|(f, o)| {
            let family = ReplayFamily {
                log_number: f.log_number.unwrap_or(recorded.log_number),
                opts: o,
                // The memtable reads will search.
                mem: Arc::new(MemTable::new(0, filter_bytes(f.opts.write_buffer_size))),
            };
            (f.id, family)
        })
        .collect();
    let mut replay = Replay::new(opts, replay_families, max_family_id, recorded.last_sequence);
    for &n in &logs {
        replay.log(n, &mut |_, _| Ok(()))?;
    }
    let last_seq = replay.last_seq;
    let mut mems: BTreeMap<u32, Arc<MemTable>> = replay
        .families
        .iter()
        .map(|(&id, f)| (id, f.mem.clone()))
        .collect();
    drop(replay);
    let families = families
        .into_iter()
        .map(|mut f| {
            let mut version = Version::empty(f.opts.num_levels);
            for (level, files) in std::mem::take(&mut f.levels).into_iter().enumerate() {
                for meta in files {
                    version.levels[level].push(LiveFile::new(meta, no_delete()));
                }
            }
            version.sort();
            let mem = mems
                .remove(&f.id)
                .unwrap_or_else(|| Arc::new(MemTable::new(0, 0)));
            Loaded {
                family: f,
                version: Arc::new(version),
                mem,
            }
        })
        .collect();
    Ok(State {
        families,
        max_family_id,
        log_number: recorded.log_number,
        last_seq,
    })
}

/// `load`, again while it trips over files the primary replaced meanwhile
/// (a MANIFEST or log deleted between listing and reading, a log read in
/// the middle of a rotation).
///
/// Every table of the new state is opened here too (the table cache keeps
/// it open): a file the primary deletes afterwards stays readable through
/// the open handle, so reads do not trip over a compaction that ran after
/// the catch-up (as long as the cache holds the table).
fn load_following(opts: &Options, tables: &TableCache) -> Result<State> {
    let load = |opts: &Options| -> Result<State> {
        let state = load(opts)?;
        for l in &state.families {
            for file in l.version.levels.iter().flatten() {
                tables.get(file)?;
            }
        }
        Ok(state)
    };
    let mut attempt = 0;
    loop {
        match load(opts) {
            Err(e) if attempt < 10 && (e.is_corruption() || matches!(e, Error::Io { .. })) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(attempt * 5));
            }
            other => return other,
        }
    }
}

fn open_follower(opts: Options, secondary: bool) -> Result<Arc<DbInner>> {
    opts.validate()?;
    let fs = opts.fs.clone();
    let dir = opts.path.clone();
    if fs.kind(&dir.join(crate::version::CURRENT)).ctx(&dir)? != Some(EntryKind::File) {
        return Err(Error::NotFound { path: dir });
    }
    let block_cache = (opts.cache_size > 0).then(|| Arc::new(BlockCache::new(opts.cache_size)));
    let table_cache = TableCache::new(fs.clone(), &dir, block_cache, opts.max_open_files);
    let table_cache = Arc::new(if secondary {
        table_cache.without_pinning()
    } else {
        table_cache
    });
    let state = if secondary {
        load_following(&opts, &table_cache)?
    } else {
        load(&opts)?
    };
    let versions: BTreeMap<u32, FamilyVersions> = state
        .families
        .iter()
        .map(|l| {
            let f = &l.family;
            let record = FamilyVersions {
                name: f.name.clone(),
                options: f.opts.encode_recording(f.merge_name.as_deref()),
                current: l.version.clone(),
                log_number: state.log_number,
            };
            (f.id, record)
        })
        .collect();
    let set = VersionSet::detached(
        fs.clone(),
        &dir,
        versions,
        state.max_family_id,
        state.log_number,
        no_delete(),
        LogWriter::detached(Box::new(Refuse)),
    );
    let families: BTreeMap<u32, Arc<Family>> = state
        .families
        .into_iter()
        .map(|l| {
            let f = l.family;
            let family = Family::new(f.id, f.name.into(), f.opts, l.mem, l.version);
            (f.id, Arc::new(family))
        })
        .collect();
    let default = families
        .get(&0)
        .cloned()
        .ok_or_else(|| Error::Internal("the default column family is missing".into()))?;
    let ttl_in_use = families.values().any(|f| f.opts.ttl.is_some());
    Ok(Arc::new(DbInner {
        dir: dir.clone(),
        fs,
        lock: Mutex::new(None),
        families: RwLock::new(families),
        default,
        visible_seq: AtomicU64::new(state.last_seq),
        writers: Mutex::new(VecDeque::new()),
        wal: Mutex::new(WalState {
            writer: LogWriter::detached(Box::new(Refuse)),
            path: dir.clone(),
            number: 0,
            last_seq: state.last_seq,
            unlocked_seq: state.last_seq,
            closed_logs: BTreeMap::new(),
        }),
        current_log: AtomicU64::new(0),
        next_file_number: AtomicU64::new(0),
        versions: Mutex::new(set),
        table_cache,
        bg: Background::default(),
        compaction_lock: Mutex::new(()),
        stats: Stats::default(),
        snapshots: Mutex::new(BTreeMap::new()),
        stopped: Mutex::new(None),
        closed: AtomicBool::new(false),
        ttl_in_use: AtomicBool::new(ttl_in_use),
        follower: Some(Follower { secondary }),
        txn_locks: Default::default(),
        // No listeners: a read-only handle has no flushes, compactions or
        // file deletions to report.
        events: Arc::new(super::events::Events::new(&dir, &[])),
        opts,
    }))
}

/// Swaps in the state the files describe now (see the module docs).
fn catch_up(inner: &DbInner) -> Result<()> {
    let state = load_following(&inner.opts, &inner.table_cache)?;
    // The number first: a reader then pairs it with the old views (an
    // older, complete state: they hold nothing newer) or the new ones.
    inner
        .visible_seq
        .fetch_max(state.last_seq, Ordering::AcqRel);
    let mut families = inner.families.write();
    for l in state.families {
        match families.get(&l.family.id) {
            Some(family) => {
                *family.view.write() = Arc::new(ReadView {
                    mem: l.mem,
                    imms: Vec::new(),
                    version: l.version,
                });
            }
            None => {
                let f = l.family;
                let family = Family::new(f.id, f.name.into(), f.opts, l.mem, l.version);
                families.insert(f.id, Arc::new(family));
            }
        }
    }
    Ok(())
}

impl DB {
    /// Opens the database at `path` for reading only, with default
    /// [`Options`]. See [`DB::open_read_only_with`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<DB> {
        DB::open_read_only_with(Options::new(path.as_ref()))
    }

    /// Opens the database at `options.path` for reading only: without the
    /// writer's lock (a process may have it open for writing), seeing its
    /// state as of this call (including what only its logs hold), and
    /// writing nothing to its directory. Writes, flushes and compactions
    /// fail with [`Error::InvalidArgument`]. Column families listed in
    /// `options` that do not exist are not created.
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// db.put("k", "v")?;
    /// let reader = aidb::DB::open_read_only(dir.path())?; // while `db` is open
    /// assert_eq!(reader.get("k")?, Some(b"v".to_vec()));
    /// assert!(reader.put("k", "w").is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no database at the path;
    /// [`Error::Corruption`] as for [`DB::open`].
    pub fn open_read_only_with(options: Options) -> Result<DB> {
        Ok(DB {
            inner: open_follower(options, false)?,
        })
    }

    /// Opens the database at `path` as a secondary: read-only, like
    /// [`DB::open_read_only`], and able to follow a primary that keeps
    /// writing (in this or another process) with [`DB::try_catch_up`].
    /// `own_dir` is the secondary's own directory (created if missing);
    /// AiDb keeps nothing in it yet (RocksDB keeps its info log there), and
    /// never writes to the primary's.
    pub fn open_secondary(path: impl AsRef<Path>, own_dir: impl AsRef<Path>) -> Result<DB> {
        let options = Options::new(path.as_ref());
        let own = own_dir.as_ref();
        options.fs.create_dir_all(own).ctx(own)?;
        Ok(DB {
            inner: open_follower(options, true)?,
        })
    }

    /// Brings a secondary up to date with its primary: afterwards it sees
    /// every write the primary acknowledged before the call (that reached
    /// the log: unsynced writes of a primary that crashed may not have),
    /// and never part of a batch. Iterators and snapshots taken before keep
    /// their view.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] on a handle not opened as a secondary;
    /// [`Error::Corruption`] or [`Error::Io`] when the primary's files
    /// cannot be read (after a few attempts, for files it replaced
    /// meanwhile).
    pub fn try_catch_up(&self) -> Result<()> {
        self.inner.check_open()?;
        match &self.inner.follower {
            Some(f) if f.secondary => catch_up(&self.inner),
            _ => Err(Error::InvalidArgument(
                "try_catch_up needs a handle opened with DB::open_secondary".into(),
            )),
        }
    }
}
