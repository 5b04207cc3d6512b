//! An in-memory [`FileSystem`] for tests: injects I/O errors, short reads
//! and EINTR, and simulates power cuts.
//!
//! # Model
//! Each file is a node holding its bytes and how many of them are synced.
//! Two name spaces map paths to nodes: the *live* one, which every call sees,
//! and the *durable* one, as of each directory's last `sync_dir`. Creating,
//! renaming and removing change the live name space and are logged as
//! pending changes of their directory; `sync_dir` copies a directory's live
//! entries into the durable one and forgets its pending changes. `sync` on
//! a file marks all its bytes synced. A power cut
//! ([`FaultInjectionFs::power_cut_with`]) builds the surviving state from
//! the durable name space, the pending changes and the unsynced bytes its
//! [`CrashRule`] keeps, and makes that live. Directories themselves are
//! durable as soon as they are created.

mod crash;
#[cfg(test)]
mod tests;

pub use crash::{CrashRule, UnsyncedData, UnsyncedDirChanges};

use super::{parent_dir, EntryKind, FileLock, FileSystem, RandomAccessFile, WritableFile};
use crash::{DirChange, SplitMix};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

/// The file-system calls that faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsOp {
    /// `create` and `open_append`.
    Create,
    /// `WritableFile::append`.
    Append,
    /// `WritableFile::sync`.
    Sync,
    /// `sync_dir`.
    SyncDir,
    /// `rename`.
    Rename,
    /// `remove_file`.
    Remove,
    /// `open` and `RandomAccessFile::read_at`.
    Read,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// EIO: a device error.
    Eio,
    /// ENOSPC: no space left on the device. A failing append writes nothing.
    Enospc,
    /// ENOSPC after part of the data reached the file: an append writes
    /// the first half of its bytes, then fails, as a write that fills the
    /// disk midway does. Other calls fail as with `Enospc`.
    TornEnospc,
    /// EIO from a `sync` that also loses the file's unsynced bytes: the
    /// kernel could not write those pages and marked them clean, so they
    /// never reach the disk, and the *next* sync of the file reports
    /// success without them (the "fsyncgate" behaviour of Linux file
    /// systems, ATC'20). Reads of the live file still see the bytes (they
    /// are in the page cache); a power cut leaves zeros in their place.
    /// Other calls fail as with `Eio`.
    EioDropsUnsynced,
}

impl FaultKind {
    fn to_error(self) -> io::Error {
        match self {
            FaultKind::Eio | FaultKind::EioDropsUnsynced => io::Error::from_raw_os_error(5),
            FaultKind::Enospc | FaultKind::TornEnospc => io::Error::from_raw_os_error(28),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    op: FsOp,
    kind: FaultKind,
    path_contains: Option<String>,
    skip: u64,
    remaining: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct Node {
    data: Vec<u8>,
    synced_len: usize,
    /// Where the last append started, for tearing it at a power cut.
    last_append: usize,
    /// Bytes a failed sync lost (see [`FaultKind::EioDropsUnsynced`]):
    /// whatever later syncs say, a power cut leaves zeros there.
    lost: Vec<Range<usize>>,
    /// The file's size when `preallocate` made it larger than `data`:
    /// readers see zeros past the appended bytes, up to it. (Kept at a
    /// power cut, as a size change made durable with the first sync.)
    reserved: usize,
}

impl Node {
    /// The file's size as readers see it.
    fn visible_len(&self) -> usize {
        self.data.len().max(self.reserved)
    }
}

type NodeRef = Arc<Mutex<Node>>;

#[derive(Debug)]
struct State {
    live: BTreeMap<PathBuf, NodeRef>,
    durable: BTreeMap<PathBuf, NodeRef>,
    /// Directory changes since their directory's last `sync_dir`, in order.
    pending: Vec<DirChange>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    rules: Vec<Rule>,
    calls: u64,
    crash_after: Option<u64>,
    counts: HashMap<FsOp, u64>,
    /// Bumped by every power cut; handles from an earlier epoch belong to
    /// the machine that lost power and fail every call.
    epoch: u64,
    /// Whether reads are cut short and interrupted at random.
    read_faults: bool,
    /// Drives the random short reads and EINTRs.
    rng: SplitMix,
    /// Files whose handle was synced again after one of its syncs failed.
    resynced: Vec<PathBuf>,
}

impl Default for State {
    fn default() -> State {
        State {
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            pending: Vec::new(),
            dirs: BTreeSet::new(),
            locks: BTreeSet::new(),
            rules: Vec::new(),
            calls: 0,
            crash_after: None,
            counts: HashMap::new(),
            epoch: 0,
            read_faults: true,
            rng: SplitMix::new(0x5EED),
            resynced: Vec::new(),
        }
    }
}

impl State {
    fn check_epoch(&self, epoch: u64) -> io::Result<()> {
        if epoch == self.epoch {
            Ok(())
        } else {
            Err(io::Error::other(
                "file system handle from before a simulated power cut",
            ))
        }
    }

    /// Fails when the file system is gone (a power cut since `epoch`, or
    /// the crash point passed), without counting a call: for the handle
    /// operations that are no [`FsOp`] (`preallocate`, `trim`).
    fn check_alive(&self, epoch: u64) -> io::Result<()> {
        self.check_epoch(epoch)?;
        if self.crash_after.is_some_and(|limit| self.calls >= limit) {
            return Err(io::Error::other("simulated crash: file system is gone"));
        }
        Ok(())
    }

    /// Counts a call and decides whether it fails.
    fn check(&mut self, epoch: u64, op: FsOp, path: &Path) -> io::Result<()> {
        self.check_kind(epoch, op, path).map_err(|(e, _)| e)
    }

    /// As `check`, also saying which fault fired (`None` for a crash).
    fn check_kind(
        &mut self,
        epoch: u64,
        op: FsOp,
        path: &Path,
    ) -> Result<(), (io::Error, Option<FaultKind>)> {
        self.check_epoch(epoch).map_err(|e| (e, None))?;
        self.calls += 1;
        *self.counts.entry(op).or_default() += 1;
        if let Some(limit) = self.crash_after {
            if self.calls > limit && op != FsOp::Read {
                return Err((
                    io::Error::other("simulated crash: file system is gone"),
                    None,
                ));
            }
        }
        for rule in &mut self.rules {
            if rule.op != op || rule.remaining == Some(0) {
                continue;
            }
            if let Some(part) = &rule.path_contains {
                if !path.to_string_lossy().contains(part.as_str()) {
                    continue;
                }
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if let Some(n) = &mut rule.remaining {
                *n -= 1;
            }
            return Err((rule.kind.to_error(), Some(rule.kind)));
        }
        Ok(())
    }
}

/// In-memory, fault-injecting, crash-simulating file system. Cloning gives
/// another handle to the same files.
///
/// A power cut ends the "machine" that was running: every handle cloned
/// before it (and every file, lock or reader opened through one) fails all
/// later calls, so a database that was not closed cannot keep writing into
/// the state that survived. Only the handle `power_cut` was called on, and
/// clones made from it afterwards, work on the new state.
#[derive(Debug, Default)]
pub struct FaultInjectionFs {
    state: Arc<Mutex<State>>,
    epoch: AtomicU64,
}

impl Clone for FaultInjectionFs {
    fn clone(&self) -> FaultInjectionFs {
        FaultInjectionFs {
            state: self.state.clone(),
            epoch: AtomicU64::new(self.epoch()),
        }
    }
}

impl FaultInjectionFs {
    /// An empty file system.
    pub fn new() -> FaultInjectionFs {
        FaultInjectionFs::default()
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(AtomicOrdering::Acquire)
    }

    /// Fails every `op` call (whose path contains `path_contains`, if given)
    /// with `kind`, after letting `skip` matching calls through, `times`
    /// times (`None`: until [`clear_faults`](Self::clear_faults)).
    pub fn inject(
        &self,
        op: FsOp,
        kind: FaultKind,
        path_contains: Option<&str>,
        skip: u64,
        times: Option<u64>,
    ) {
        self.state.lock().rules.push(Rule {
            op,
            kind,
            path_contains: path_contains.map(str::to_owned),
            skip,
            remaining: times,
        });
    }

    /// Removes every injected fault and any pending crash.
    pub fn clear_faults(&self) {
        let mut st = self.state.lock();
        st.rules.clear();
        st.crash_after = None;
    }

    /// Lets `calls` more calls succeed, then fails every call but reads, as
    /// if the machine had died at that point. Combine with
    /// [`power_cut`](Self::power_cut).
    pub fn crash_after(&self, calls: u64) {
        let mut st = self.state.lock();
        st.crash_after = Some(st.calls + calls);
    }

    /// Total number of calls made so far.
    pub fn call_count(&self) -> u64 {
        self.state.lock().calls
    }

    /// Number of calls of one kind made so far.
    pub fn op_count(&self, op: FsOp) -> u64 {
        self.state.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// Whether reads are cut short and interrupted at random (on by
    /// default). `RandomAccessFile::read_at` may return fewer bytes than
    /// asked, or fail with `ErrorKind::Interrupted`, as a real `pread` may;
    /// the engine must read through `read_exact_at`, which retries.
    pub fn set_read_faults(&self, on: bool) {
        self.state.lock().read_faults = on;
    }

    /// The files whose handle was synced again after one of its syncs had
    /// failed (once per such call). After a failed fsync the kernel may
    /// have dropped the data it could not write, so a later sync that
    /// succeeds proves nothing; the engine must never do this, and the
    /// tests check that this list stays empty.
    pub fn syncs_after_failure(&self) -> Vec<PathBuf> {
        self.state.lock().resynced.clone()
    }

    /// A separate copy of the file system as it is now: the same files,
    /// synced and unsynced bytes, durable entries and pending directory
    /// changes, sharing nothing with this one. Locks, faults, a pending
    /// crash and counters are not copied. A test that stops a workload at
    /// some call can fork the stopped state once per [`CrashRule`] and cut
    /// the power on each copy, rather than running the workload again.
    pub fn fork(&self) -> FaultInjectionFs {
        let st = self.state.lock();
        let mut copies: HashMap<*const Mutex<Node>, NodeRef> = HashMap::new();
        let mut copy = |node: &NodeRef| -> NodeRef {
            copies
                .entry(Arc::as_ptr(node))
                .or_insert_with(|| Arc::new(Mutex::new(node.lock().clone())))
                .clone()
        };
        let mut map = |m: &BTreeMap<PathBuf, NodeRef>| -> BTreeMap<PathBuf, NodeRef> {
            m.iter().map(|(p, n)| (p.clone(), copy(n))).collect()
        };
        let live = map(&st.live);
        let durable = map(&st.durable);
        let pending = st
            .pending
            .iter()
            .map(|c| match c {
                DirChange::Create { path, node } => DirChange::Create {
                    path: path.clone(),
                    node: copy(node),
                },
                other => other.clone(),
            })
            .collect();
        let state = State {
            live,
            durable,
            pending,
            dirs: st.dirs.clone(),
            read_faults: st.read_faults,
            rng: st.rng.clone(),
            ..State::default()
        };
        FaultInjectionFs {
            state: Arc::new(Mutex::new(state)),
            epoch: AtomicU64::new(0),
        }
    }

    /// Simulates a power cut: every unsynced byte and every directory change
    /// not made durable by `sync_dir` is lost ([`CrashRule::STRICT`]).
    /// Locks are released and faults cleared, as after a reboot, and every
    /// other handle to this file system stops working (see the type's
    /// documentation).
    pub fn power_cut(&self) {
        self.power_cut_with(CrashRule::STRICT, 0);
    }

    /// Like [`power_cut`](Self::power_cut), but each file keeps a prefix of
    /// its unsynced bytes: `keep(path, unsynced_len)` says how many (clamped
    /// to `unsynced_len`). Models a torn write that reached the disk in part.
    pub fn power_cut_keeping(&self, mut keep: impl FnMut(&Path, usize) -> usize) {
        self.cut(UnsyncedDirChanges::Lost, &mut |path, node| {
            keep(path, node.data.len() - node.synced_len)
        });
    }

    /// Simulates a power cut under `rule`: what survives of unsynced data
    /// and of unsynced directory changes (see [`CrashRule`]). `seed` drives
    /// the random choices (prefix lengths, tear points), so a failing case
    /// can be replayed. Otherwise as [`power_cut`](Self::power_cut).
    pub fn power_cut_with(&self, rule: CrashRule, seed: u64) {
        let mut rng = SplitMix::new(seed);
        self.cut(rule.dirs, &mut |_, node| {
            let unsynced = node.data.len() - node.synced_len;
            match rule.data {
                UnsyncedData::Lost => 0,
                UnsyncedData::Kept => unsynced,
                UnsyncedData::RandomPrefix => rng.below(unsynced + 1),
                UnsyncedData::TornLastWrite => {
                    // Everything before the last append, and a part of it
                    // that is never the whole.
                    let start = node.last_append.max(node.synced_len);
                    (start - node.synced_len) + rng.below(node.data.len() - start)
                }
            }
        });
    }

    /// The power cut itself: `dirs` picks the surviving entries, `keep`
    /// how many unsynced bytes each surviving file keeps.
    fn cut(&self, dirs: UnsyncedDirChanges, keep: &mut dyn FnMut(&Path, &Node) -> usize) {
        let mut st = self.state.lock();
        st.epoch += 1;
        self.epoch.store(st.epoch, AtomicOrdering::Release);
        let image = crash::surviving_entries(&st.durable, &st.pending, dirs);
        for (path, node) in &image {
            let mut n = node.lock();
            let unsynced = n.data.len() - n.synced_len;
            let len = n.synced_len + keep(path, &n).min(unsynced);
            n.data.truncate(len);
            for range in std::mem::take(&mut n.lost) {
                let range = range.start.min(len)..range.end.min(len);
                n.data[range].fill(0);
            }
            n.synced_len = len;
            n.last_append = len;
        }
        st.durable = image.clone();
        st.live = image;
        st.pending.clear();
        st.locks.clear();
        st.rules.clear();
        st.crash_after = None;
    }

    /// Overwrites one byte of a file in place (live and durable), for
    /// corruption tests.
    pub fn corrupt_byte(&self, path: &Path, offset: usize, xor: u8) -> io::Result<()> {
        let st = self.state.lock();
        let node = st
            .live
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut n = node.lock();
        match n.data.get_mut(offset) {
            Some(b) => {
                *b ^= xor;
                Ok(())
            }
            None => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        }
    }

    /// Bytes appended to a file, without the room reserved past them (see
    /// [`WritableFile::preallocate`]), which `file_size` includes.
    pub fn appended_len(&self, path: &Path) -> io::Result<u64> {
        let st = self.state.lock();
        let node = st
            .live
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let len = node.lock().data.len() as u64;
        Ok(len)
    }

    /// Cuts a file down to `len` bytes (live and durable).
    pub fn truncate(&self, path: &Path, len: usize) -> io::Result<()> {
        let st = self.state.lock();
        let node = st
            .live
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut n = node.lock();
        n.data.truncate(len);
        n.reserved = 0;
        n.synced_len = n.synced_len.min(len);
        n.last_append = n.last_append.min(len);
        Ok(())
    }

    fn node(&self, path: &Path) -> io::Result<NodeRef> {
        self.state
            .lock()
            .live
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    /// Moves directory `from` with everything in it to `to` (which must not
    /// exist). Like directory creation in this model, the move is durable
    /// at once: the entries move in both name spaces.
    fn rename_dir(st: &mut State, from: &Path, to: &Path) -> io::Result<()> {
        if st.dirs.contains(to) || st.live.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                to.display().to_string(),
            ));
        }
        let moved = |p: &PathBuf| -> Option<PathBuf> {
            p.strip_prefix(from).ok().map(|rest| to.join(rest))
        };
        let move_map = |m: &mut BTreeMap<PathBuf, NodeRef>| {
            let keys: Vec<PathBuf> = m.keys().filter(|p| moved(p).is_some()).cloned().collect();
            for k in keys {
                if let (Some(node), Some(new)) = (m.remove(&k), moved(&k)) {
                    m.insert(new, node);
                }
            }
        };
        move_map(&mut st.live);
        move_map(&mut st.durable);
        let dirs: Vec<PathBuf> = st
            .dirs
            .iter()
            .filter(|p| moved(p).is_some())
            .cloned()
            .collect();
        for d in dirs {
            st.dirs.remove(&d);
            if let Some(new) = moved(&d) {
                st.dirs.insert(new);
            }
        }
        Ok(())
    }

    fn require_parent(st: &State, path: &Path) -> io::Result<()> {
        if st.dirs.contains(&parent_dir(path)) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory for {}", path.display()),
            ))
        }
    }
}

struct FaultWritable {
    fs: FaultInjectionFs,
    path: PathBuf,
    node: NodeRef,
    /// A sync of this handle failed: syncing it again is a bug in the
    /// caller (see [`FaultInjectionFs::syncs_after_failure`]).
    sync_failed: bool,
}

impl FaultWritable {
    fn boxed(fs: &FaultInjectionFs, path: &Path, node: NodeRef) -> Box<dyn WritableFile> {
        Box::new(FaultWritable {
            fs: fs.clone(),
            path: path.to_path_buf(),
            node,
            sync_failed: false,
        })
    }
}

impl WritableFile for FaultWritable {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let checked = self
            .fs
            .state
            .lock()
            .check_kind(self.fs.epoch(), FsOp::Append, &self.path);
        let (written, result) = match checked {
            Ok(()) => (data, Ok(())),
            Err((e, Some(FaultKind::TornEnospc))) => (&data[..data.len() / 2], Err(e)),
            Err((e, _)) => (&data[..0], Err(e)),
        };
        if !written.is_empty() {
            let mut n = self.node.lock();
            n.last_append = n.data.len();
            n.data.extend_from_slice(written);
        }
        result
    }

    fn sync(&mut self) -> io::Result<()> {
        let checked = {
            let mut st = self.fs.state.lock();
            if self.sync_failed {
                st.resynced.push(self.path.clone());
            }
            st.check_kind(self.fs.epoch(), FsOp::Sync, &self.path)
        };
        let mut n = self.node.lock();
        match checked {
            Ok(()) => {
                n.synced_len = n.data.len();
                Ok(())
            }
            Err((e, kind)) => {
                self.sync_failed = true;
                if kind == Some(FaultKind::EioDropsUnsynced) && n.data.len() > n.synced_len {
                    let lost = n.synced_len..n.data.len();
                    n.lost.push(lost);
                }
                Err(e)
            }
        }
    }

    fn len(&self) -> u64 {
        self.node.lock().data.len() as u64
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        self.fs.state.lock().check_alive(self.fs.epoch())?;
        let mut n = self.node.lock();
        n.reserved = n.reserved.max(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }

    fn trim(&mut self) -> io::Result<()> {
        self.fs.state.lock().check_alive(self.fs.epoch())?;
        self.node.lock().reserved = 0;
        Ok(())
    }
}

struct FaultReadable {
    fs: FaultInjectionFs,
    path: PathBuf,
    node: NodeRef,
    len: u64,
}

impl RandomAccessFile for FaultReadable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        // As a real `pread`: interrupted by a signal now and then (EINTR),
        // and sometimes returning fewer bytes than asked though more are
        // there; callers must retry, not take it for the end of the file.
        let (interrupted, short) = {
            let mut st = self.fs.state.lock();
            st.check(self.fs.epoch(), FsOp::Read, &self.path)?;
            if st.read_faults {
                let r = st.rng.next();
                (
                    r.is_multiple_of(16),
                    (r >> 8).is_multiple_of(4).then_some(r >> 16),
                )
            } else {
                (false, None)
            }
        };
        if interrupted {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = self.node.lock();
        let end = (self.len as usize).min(n.visible_len());
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(end);
        let mut count = buf.len().min(end - start);
        if let Some(r) = short.filter(|_| count > 1) {
            count = 1 + (r % (count as u64 - 1)) as usize;
        }
        // Past the appended bytes, reserved room reads as zeros.
        let appended = n.data.len().clamp(start, start + count);
        if appended > start {
            buf[..appended - start].copy_from_slice(&n.data[start..appended]);
        }
        buf[appended - start..count].fill(0);
        Ok(count)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

struct FaultLock {
    fs: FaultInjectionFs,
    path: PathBuf,
}

impl FileLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        let mut st = self.fs.state.lock();
        // A lock from before a power cut was already released by it.
        if st.check_epoch(self.fs.epoch()).is_ok() {
            st.locks.remove(&self.path);
        }
    }
}

impl FileSystem for FaultInjectionFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_epoch(self.epoch())?;
        if st.live.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file is in the way",
            ));
        }
        for anc in path.ancestors() {
            if !anc.as_os_str().is_empty() {
                st.dirs.insert(anc.to_path_buf());
            }
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let node = {
            let mut st = self.state.lock();
            st.check(self.epoch(), FsOp::Create, path)?;
            Self::require_parent(&st, path)?;
            let node = NodeRef::default();
            st.live.insert(path.to_path_buf(), node.clone());
            st.pending.push(DirChange::Create {
                path: path.to_path_buf(),
                node: node.clone(),
            });
            node
        };
        Ok(FaultWritable::boxed(self, path, node))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.state.lock().check(self.epoch(), FsOp::Create, path)?;
        let node = self.node(path)?;
        Ok(FaultWritable::boxed(self, path, node))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.state.lock().check(self.epoch(), FsOp::Read, path)?;
        let node = self.node(path)?;
        let len = node.lock().visible_len() as u64;
        Ok(Arc::new(FaultReadable {
            fs: self.clone(),
            path: path.to_path_buf(),
            node,
            len,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(self.epoch(), FsOp::Rename, from)?;
        Self::require_parent(&st, to)?;
        if st.dirs.contains(from) {
            return Self::rename_dir(&mut st, from, to);
        }
        let node = st
            .live
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.display().to_string()))?;
        st.live.insert(to.to_path_buf(), node);
        st.pending.push(DirChange::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(self.epoch(), FsOp::Remove, path)?;
        st.live
            .remove(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))?;
        st.pending.push(DirChange::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(self.epoch(), FsOp::Remove, path)?;
        if !st.dirs.contains(path) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                path.display().to_string(),
            ));
        }
        let inside = |p: &PathBuf| p.starts_with(path) && p != path;
        if st.live.keys().any(inside) || st.dirs.iter().any(inside) {
            return Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                path.display().to_string(),
            ));
        }
        st.dirs.remove(path);
        Ok(())
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(self.epoch(), FsOp::Create, to)?;
        Self::require_parent(&st, to)?;
        if st.live.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                to.display().to_string(),
            ));
        }
        let node =
            st.live.get(from).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, from.display().to_string())
            })?;
        // Both names share the node, as hard links share an inode. The new
        // name is a directory change like a creation: lost by a power cut
        // until the directory is synced (under the rules that lose those).
        st.live.insert(to.to_path_buf(), node.clone());
        st.pending.push(DirChange::Create {
            path: to.to_path_buf(),
            node,
        });
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        st.check_epoch(self.epoch())?;
        if !st.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                dir.display().to_string(),
            ));
        }
        let files = st.live.keys().filter(|p| parent_dir(p) == dir);
        let subdirs = st.dirs.iter().filter(|p| p.parent() == Some(dir));
        Ok(files
            .chain(subdirs)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        let st = self.state.lock();
        st.check_epoch(self.epoch())?;
        Ok(if st.dirs.contains(path) {
            Some(EntryKind::Dir)
        } else if st.live.contains_key(path) {
            Some(EntryKind::File)
        } else {
            None
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(self.epoch(), FsOp::SyncDir, dir)?;
        let st = &mut *st;
        st.durable.retain(|p, _| parent_dir(p) != dir);
        for (p, node) in &st.live {
            if parent_dir(p) == dir {
                st.durable.insert(p.clone(), node.clone());
            }
        }
        // (A rename between two directories is forgotten once either is
        // synced: the engine renames only within its directory.)
        st.pending.retain(|c| !c.touches_dir(dir));
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.state.lock();
        st.check_epoch(self.epoch())?;
        Self::require_parent(&st, path)?;
        if !st.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "lock held by another handle",
            ));
        }
        if !st.live.contains_key(path) {
            let node = NodeRef::default();
            st.live.insert(path.to_path_buf(), node.clone());
            st.pending.push(DirChange::Create {
                path: path.to_path_buf(),
                node,
            });
        }
        Ok(Box::new(FaultLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}
