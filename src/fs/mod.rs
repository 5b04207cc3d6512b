//! The file-system layer: every byte AiDb reads or writes goes through
//! [`FileSystem`].
//!
//! Two implementations ship with the crate:
//! - [`OsFileSystem`], the real one on `std::fs`;
//! - [`FaultInjectionFs`], an in-memory file system for tests that can fail
//!   chosen calls (EIO, ENOSPC, an fsync that loses data), cuts reads short
//!   and interrupts them, and simulates a power cut under a choice of
//!   [`CrashRule`]s: what survives of the bytes and directory changes that
//!   were not synced.
//!
//! Errors are plain `std::io::Error`s; the engine attaches the path when it
//! turns them into [`crate::Error::Io`].

mod fault;
mod os;

pub use fault::{CrashRule, FaultInjectionFs, FaultKind, FsOp, UnsyncedData, UnsyncedDirChanges};
pub use os::OsFileSystem;

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file-system abstraction with just the calls a storage engine needs.
///
/// # Durability contract
/// Implementations must follow POSIX semantics as the engine relies on them:
/// data appended to a [`WritableFile`] is durable only after
/// [`WritableFile::sync`] returns; creating, renaming or removing a file is
/// durable only after [`FileSystem::sync_dir`] on its parent directory.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates `path` and all missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates (or truncates) a file for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for positional reads.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries in directory `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// What is at `path`, or `None` when nothing is.
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive advisory lock on `path` (creating it), failing with
    /// `io::ErrorKind::WouldBlock` when another handle holds it. The lock is
    /// released when the returned guard is dropped.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;

    /// Size of the file at `path` in bytes.
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(self.open(path)?.len())
    }

    /// Gives the file at `from` a second name `to` (a hard link), so that
    /// checkpoints and backups cost work per file, not per byte. Where a
    /// link is impossible (another device: `EXDEV`; a file system without
    /// links) it copies instead, syncing the copy. Either way `to` is
    /// durable only after [`FileSystem::sync_dir`] on its parent. The
    /// default copies; implementations that can link override it.
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        copy_file(self, from, to, None)
    }

    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path)?;
        let len = usize::try_from(file.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
        let mut buf = vec![0; len];
        file.read_exact_at(0, &mut buf)?;
        Ok(buf)
    }
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A file opened for appending.
pub trait WritableFile: Send {
    /// Appends all of `data` (implementations retry short writes and
    /// EINTR). When this returns, the bytes have been handed to the
    /// operating system (they survive a crash of this process, not a power
    /// cut).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (fsync / fdatasync).
    ///
    /// After a failure, callers must not call it again on the same handle
    /// and trust the answer: the kernel may have dropped the data it could
    /// not write and report the next sync as a success.
    fn sync(&mut self) -> io::Result<()>;
    /// Bytes appended so far, including what the file held when opened.
    fn len(&self) -> u64;
    /// True when the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reserves room for appends up to `len` bytes: the file's size
    /// becomes `len`, the bytes past those appended reading as zeros, and
    /// appends go on where they were (`len()` is unchanged). A sync of
    /// appends that stay inside that room need not make a new file size
    /// durable, which on ext4 saves a journal commit per `fdatasync`.
    /// The default does nothing, as may file systems that cannot do it.
    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        let _ = len;
        Ok(())
    }
    /// Cuts the file back to the bytes appended, giving back what
    /// `preallocate` reserved beyond them. Not durable until the next
    /// `sync`.
    fn trim(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file opened for positional reads. Shared between threads.
pub trait RandomAccessFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at end of file). As `pread(2)`, it may return fewer bytes than
    /// asked before the end of the file, and fail with
    /// `io::ErrorKind::Interrupted`: callers that need the bytes use
    /// [`read_exact_at`](Self::read_exact_at), which retries both.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// File length in bytes at the time it was opened.
    fn len(&self) -> u64;
    /// True when the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`, failing with `UnexpectedEof` when the file
    /// is too short.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(offset, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "read past end of file",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A held directory lock; dropping it releases the lock.
pub trait FileLock: Send + Sync {}

/// Copies the first `len` bytes (all when `None`) of `from` into a new
/// file `to`, synced. Fails with `UnexpectedEof` when `from` is shorter.
pub fn copy_file<F: FileSystem + ?Sized>(
    fs: &F,
    from: &Path,
    to: &Path,
    len: Option<u64>,
) -> io::Result<()> {
    let src = fs.open(from)?;
    copy_prefix(fs, &*src, to, len.unwrap_or(src.len()))
}

/// Copies the first `len` bytes of the open file `src` into a new file
/// `to`, synced (used for logs, which keep growing while they are copied).
pub(crate) fn copy_prefix<F: FileSystem + ?Sized>(
    fs: &F,
    src: &dyn RandomAccessFile,
    to: &Path,
    len: u64,
) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut out = fs.create(to)?;
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at) as usize;
        src.read_exact_at(at, &mut buf[..n])?;
        out.append(&buf[..n])?;
        at += n as u64;
    }
    out.sync()
}

/// Removes directory `path` and everything in it (for the temporary
/// directories of checkpoints and restores).
pub(crate) fn remove_tree(fs: &dyn FileSystem, path: &Path) -> io::Result<()> {
    for name in fs.list(path)? {
        let p = path.join(name);
        match fs.kind(&p)? {
            Some(EntryKind::Dir) => remove_tree(fs, &p)?,
            Some(EntryKind::File) => fs.remove_file(&p)?,
            None => {}
        }
    }
    fs.remove_dir(path)
}

/// `path` with `suffix` added to its last component (`a/b` → `a/b.tmp`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The parent directory of `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
