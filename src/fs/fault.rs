//! An in-memory [`FileSystem`] for tests: injects I/O errors and simulates
//! power cuts.
//!
//! # Model
//! Each file is a node holding its bytes and how many of them are synced.
//! Two name spaces map paths to nodes: the *live* one, which every call sees,
//! and the *durable* one, which is what a power cut leaves behind. Creating,
//! renaming and removing change the live name space; `sync_dir` copies a
//! directory's live entries into the durable one. `sync` on a file marks all
//! its bytes synced. [`FaultInjectionFs::power_cut`] makes the durable name
//! space live again and cuts every file back to its synced bytes.
//! Directories themselves are durable as soon as they are created.

use super::{parent_dir, EntryKind, FileLock, FileSystem, RandomAccessFile, WritableFile};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
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
}

impl FaultKind {
    fn to_error(self) -> io::Error {
        match self {
            FaultKind::Eio => io::Error::from_raw_os_error(5),
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

#[derive(Debug, Default)]
struct Node {
    data: Vec<u8>,
    synced_len: usize,
}

type NodeRef = Arc<Mutex<Node>>;

#[derive(Debug, Default)]
struct State {
    live: BTreeMap<PathBuf, NodeRef>,
    durable: BTreeMap<PathBuf, NodeRef>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    rules: Vec<Rule>,
    calls: u64,
    crash_after: Option<u64>,
    counts: HashMap<FsOp, u64>,
    /// Bumped by every power cut; handles from an earlier epoch belong to
    /// the machine that lost power and fail every call.
    epoch: u64,
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

    /// Simulates a power cut: every unsynced byte and every directory change
    /// not made durable by `sync_dir` is lost. Locks are released and faults
    /// cleared, as after a reboot, and every other handle to this file
    /// system stops working (see the type's documentation).
    pub fn power_cut(&self) {
        self.power_cut_keeping(|_, _| 0);
    }

    /// Like [`power_cut`](Self::power_cut), but each file keeps a prefix of
    /// its unsynced bytes: `keep(path, unsynced_len)` says how many (clamped
    /// to `unsynced_len`). Models a torn write that reached the disk in part.
    pub fn power_cut_keeping(&self, mut keep: impl FnMut(&Path, usize) -> usize) {
        let mut st = self.state.lock();
        st.epoch += 1;
        self.epoch.store(st.epoch, AtomicOrdering::Release);
        st.live = st.durable.clone();
        for (path, node) in &st.live {
            let mut n = node.lock();
            let unsynced = n.data.len() - n.synced_len;
            let kept = keep(path, unsynced).min(unsynced);
            let len = n.synced_len + kept;
            n.data.truncate(len);
            n.synced_len = len;
        }
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

    /// Cuts a file down to `len` bytes (live and durable).
    pub fn truncate(&self, path: &Path, len: usize) -> io::Result<()> {
        let st = self.state.lock();
        let node = st
            .live
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut n = node.lock();
        n.data.truncate(len);
        n.synced_len = n.synced_len.min(len);
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
}

impl WritableFile for FaultWritable {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let checked = self
            .fs
            .state
            .lock()
            .check_kind(self.fs.epoch(), FsOp::Append, &self.path);
        match checked {
            Ok(()) => {
                self.node.lock().data.extend_from_slice(data);
                Ok(())
            }
            Err((e, Some(FaultKind::TornEnospc))) => {
                self.node
                    .lock()
                    .data
                    .extend_from_slice(&data[..data.len() / 2]);
                Err(e)
            }
            Err((e, _)) => Err(e),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.fs
            .state
            .lock()
            .check(self.fs.epoch(), FsOp::Sync, &self.path)?;
        let mut n = self.node.lock();
        n.synced_len = n.data.len();
        Ok(())
    }

    fn len(&self) -> u64 {
        self.node.lock().data.len() as u64
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
        self.fs
            .state
            .lock()
            .check(self.fs.epoch(), FsOp::Read, &self.path)?;
        let n = self.node.lock();
        let end = (self.len as usize).min(n.data.len());
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(end);
        let count = buf.len().min(end - start);
        buf[..count].copy_from_slice(&n.data[start..start + count]);
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
            node
        };
        Ok(Box::new(FaultWritable {
            fs: self.clone(),
            path: path.to_path_buf(),
            node,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.state.lock().check(self.epoch(), FsOp::Create, path)?;
        let node = self.node(path)?;
        Ok(Box::new(FaultWritable {
            fs: self.clone(),
            path: path.to_path_buf(),
            node,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.state.lock().check(self.epoch(), FsOp::Read, path)?;
        let node = self.node(path)?;
        let len = node.lock().data.len() as u64;
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
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(self.epoch(), FsOp::Remove, path)?;
        st.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
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
        // Both names share the node, as hard links share an inode.
        st.live.insert(to.to_path_buf(), node);
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
            st.live.insert(path.to_path_buf(), NodeRef::default());
        }
        Ok(Box::new(FaultLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_with_dir() -> (FaultInjectionFs, PathBuf) {
        let fs = FaultInjectionFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        (fs, dir)
    }

    #[test]
    fn injected_eio_reaches_caller() {
        let (fs, dir) = fs_with_dir();
        let mut f = fs.create(&dir.join("a")).unwrap();
        fs.inject(FsOp::Sync, FaultKind::Eio, None, 0, Some(1));
        f.append(b"x").unwrap();
        let err = f.sync().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(5));
        f.sync().unwrap(); // fault was for one call only
    }

    #[test]
    fn injected_enospc_on_append_writes_nothing() {
        let (fs, dir) = fs_with_dir();
        let mut f = fs.create(&dir.join("a")).unwrap();
        fs.inject(FsOp::Append, FaultKind::Enospc, Some("a"), 1, None);
        f.append(b"ok").unwrap();
        assert_eq!(f.append(b"no").unwrap_err().raw_os_error(), Some(28));
        assert_eq!(fs.read_all(&dir.join("a")).unwrap(), b"ok");
    }

    #[test]
    fn torn_enospc_writes_half_then_fails() {
        let (fs, dir) = fs_with_dir();
        let mut f = fs.create(&dir.join("a")).unwrap();
        fs.inject(FsOp::Append, FaultKind::TornEnospc, None, 0, Some(1));
        assert_eq!(f.append(b"abcdef").unwrap_err().raw_os_error(), Some(28));
        assert_eq!(fs.read_all(&dir.join("a")).unwrap(), b"abc");
    }

    #[test]
    fn power_cut_discards_only_unsynced_data() {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("log");
        let mut f = fs.create(&path).unwrap();
        f.append(b"durable").unwrap();
        f.sync().unwrap();
        fs.sync_dir(&dir).unwrap();
        f.append(b"-lost").unwrap();
        assert_eq!(fs.read_all(&path).unwrap(), b"durable-lost");
        fs.power_cut();
        assert_eq!(fs.read_all(&path).unwrap(), b"durable");
    }

    #[test]
    fn power_cut_discards_unsynced_directory_entries() {
        let (fs, dir) = fs_with_dir();
        let synced = dir.join("synced");
        let unsynced = dir.join("unsynced");
        let mut a = fs.create(&synced).unwrap();
        a.append(b"a").unwrap();
        a.sync().unwrap();
        fs.sync_dir(&dir).unwrap();
        // Synced data but no directory sync: the name itself is lost.
        let mut b = fs.create(&unsynced).unwrap();
        b.append(b"b").unwrap();
        b.sync().unwrap();
        // A rename without directory sync is undone.
        fs.rename(&synced, &dir.join("renamed")).unwrap();
        fs.power_cut();
        let mut names = fs.list(&dir).unwrap();
        names.sort();
        assert_eq!(names, vec!["synced".to_string()]);
        assert_eq!(fs.read_all(&synced).unwrap(), b"a");
    }

    #[test]
    fn torn_power_cut_keeps_a_prefix() {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let mut f = fs.create(&path).unwrap();
        fs.sync_dir(&dir).unwrap();
        f.append(b"0123456789").unwrap();
        fs.power_cut_keeping(|_, _| 4);
        assert_eq!(fs.read_all(&path).unwrap(), b"0123");
    }

    #[test]
    fn crash_after_fails_later_calls() {
        let (fs, dir) = fs_with_dir();
        let mut f = fs.create(&dir.join("f")).unwrap();
        fs.crash_after(1);
        f.append(b"a").unwrap();
        assert!(f.append(b"b").is_err());
        assert!(f.sync().is_err());
    }

    #[test]
    fn handles_from_before_a_power_cut_are_dead() {
        let (fs, dir) = fs_with_dir();
        let old = fs.clone();
        let mut f = old.create(&dir.join("f")).unwrap();
        fs.power_cut();
        assert!(f.append(b"x").is_err());
        assert!(old.create(&dir.join("g")).is_err());
        assert!(old.list(&dir).is_err());
        let new = fs.clone();
        new.create(&dir.join("g")).unwrap();
    }

    #[test]
    fn links_share_data_and_need_a_dir_sync() {
        let (fs, dir) = fs_with_dir();
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        f.append(b"data").unwrap();
        f.sync().unwrap();
        fs.sync_dir(&dir).unwrap();
        fs.link(&a, &dir.join("b")).unwrap();
        assert!(fs.link(&a, &dir.join("b")).is_err(), "name taken");
        fs.remove_file(&a).unwrap();
        assert_eq!(fs.read_all(&dir.join("b")).unwrap(), b"data");
        fs.power_cut();
        // The removal and the link were never made durable.
        assert!(fs.kind(&dir.join("a")).unwrap().is_some());
        assert!(fs.kind(&dir.join("b")).unwrap().is_none());
    }

    #[test]
    fn directories_rename_and_remove() {
        let (fs, dir) = fs_with_dir();
        let sub = dir.join("sub");
        fs.create_dir_all(&sub.join("deep")).unwrap();
        fs.create(&sub.join("deep").join("f")).unwrap();
        fs.rename(&sub, &dir.join("moved")).unwrap();
        assert!(fs.kind(&sub).unwrap().is_none());
        let f = dir.join("moved").join("deep").join("f");
        assert_eq!(fs.kind(&f).unwrap(), Some(EntryKind::File));
        assert!(fs.remove_dir(&dir.join("moved").join("deep")).is_err());
        fs.remove_file(&f).unwrap();
        fs.remove_dir(&dir.join("moved").join("deep")).unwrap();
        fs.remove_dir(&dir.join("moved")).unwrap();
        assert!(fs.list(&dir).unwrap().is_empty());
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let (fs, dir) = fs_with_dir();
        let l = fs.lock(&dir.join("LOCK")).unwrap();
        assert_eq!(
            fs.lock(&dir.join("LOCK")).err().unwrap().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(l);
        fs.lock(&dir.join("LOCK")).unwrap();
    }
}
