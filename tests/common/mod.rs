//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod families;
pub mod kill;
pub mod workload;

use aidb::fs::{EntryKind, FileLock, FileSystem, FsOp, RandomAccessFile, WritableFile};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Called before every `create`, `append` and `sync` with the operation and
/// the file's path: it may block (to hold a job at a chosen point), panic,
/// or return an error that the call then returns.
pub type Hook = dyn Fn(FsOp, &Path) -> io::Result<()> + Send + Sync;

/// A file system that runs a hook before calls of an inner one, for tests
/// that need to stop a background job at a given point or make it panic
/// (as user-provided code can).
pub struct HookFs {
    inner: Arc<dyn FileSystem>,
    hook: Arc<Hook>,
}

impl std::fmt::Debug for HookFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookFs")
    }
}

impl HookFs {
    pub fn wrap(
        inner: Arc<dyn FileSystem>,
        hook: impl Fn(FsOp, &Path) -> io::Result<()> + Send + Sync + 'static,
    ) -> Arc<dyn FileSystem> {
        Arc::new(HookFs {
            inner,
            hook: Arc::new(hook),
        })
    }
}

struct HookFile {
    inner: Box<dyn WritableFile>,
    path: std::path::PathBuf,
    hook: Arc<Hook>,
}

impl WritableFile for HookFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        (self.hook)(FsOp::Append, &self.path)?;
        self.inner.append(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        (self.hook)(FsOp::Sync, &self.path)?;
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        self.inner.preallocate(len)
    }
    fn trim(&mut self) -> io::Result<()> {
        self.inner.trim()
    }
}

impl FileSystem for HookFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        (self.hook)(FsOp::Create, path)?;
        Ok(Box::new(HookFile {
            inner: self.inner.create(path)?,
            path: path.to_path_buf(),
            hook: self.hook.clone(),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        (self.hook)(FsOp::Create, path)?;
        Ok(Box::new(HookFile {
            inner: self.inner.open_append(path)?,
            path: path.to_path_buf(),
            hook: self.hook.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.inner.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.link(from, to)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        self.inner.kind(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
}

/// A gate that blocks threads at a point until the test opens it.
#[derive(Default)]
pub struct Gate {
    state: parking_lot::Mutex<(usize, bool)>,
    cv: parking_lot::Condvar,
}

impl Gate {
    /// Blocks until the gate is opened; counts the threads waiting.
    pub fn pass(&self) {
        let mut st = self.state.lock();
        st.0 += 1;
        self.cv.notify_all();
        while !st.1 {
            self.cv.wait(&mut st);
        }
    }

    /// Waits until `n` threads have arrived at the gate.
    pub fn wait_for_arrivals(&self, n: usize) {
        let mut st = self.state.lock();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while st.0 < n {
            assert!(
                !self.cv.wait_until(&mut st, deadline).timed_out(),
                "nobody reached the gate"
            );
        }
    }

    pub fn open(&self) {
        self.state.lock().1 = true;
        self.cv.notify_all();
    }
}

/// Runs `f` on a thread and returns its result, or panics with `what` if it
/// does not finish within `secs` seconds (a hang).
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: did not finish within {secs} s (hung)"))
}

/// The merge operator of the merge suites: operands appended to the value,
/// `,`-separated. Order-sensitive (a misordered fold shows) and
/// associative (its partial merge is the same append without a base).
pub struct Join;

impl aidb::MergeOperator for Join {
    fn name(&self) -> &str {
        "join"
    }
    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        Some(join(base, ops.iter().copied()))
    }
    fn partial_merge(&self, _key: &[u8], ops: &[&[u8]]) -> Option<Vec<u8>> {
        Some(join(None, ops.iter().copied()))
    }
}

/// What [`Join`] makes of `base` and `ops`.
pub fn join<'a>(base: Option<&'a [u8]>, ops: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let parts: Vec<&[u8]> = base.into_iter().chain(ops).collect();
    parts.join(&b","[..])
}

/// A file system over the real one that holds the first append to a file
/// ending in `.{ext}` made after the returned flag is set, at the returned
/// gate, until the test opens it (to stop a commit or a compaction at a
/// chosen point).
pub fn hold_first_append(
    ext: &'static str,
) -> (
    Arc<dyn FileSystem>,
    Arc<Gate>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let gate = Arc::new(Gate::default());
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, a) = (gate.clone(), armed.clone());
    let fs = HookFs::wrap(Arc::new(aidb::fs::OsFileSystem), move |op, path| {
        let matches = path.extension().is_some_and(|e| e == ext);
        if op == FsOp::Append && matches && a.swap(false, Ordering::AcqRel) {
            g.pass();
        }
        Ok(())
    });
    (fs, gate, armed)
}
