//! [`FileSystem`] on the operating system's file system.

use super::{EntryKind, FileLock, FileSystem, RandomAccessFile, WritableFile};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// The real file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

impl OsFileSystem {
    /// A shared handle, as `Options::fs` takes it.
    pub fn shared() -> Arc<dyn FileSystem> {
        Arc::new(OsFileSystem)
    }
}

struct OsWritable {
    file: File,
    len: u64,
    /// Opened with O_APPEND, where writes go to the end of the file, so
    /// room past the appended bytes cannot be reserved.
    appending: bool,
    /// The file's size, when `preallocate` made it larger than `len`.
    reserved: Option<u64>,
}

impl WritableFile for OsWritable {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        if self.appending || len <= self.len.max(self.reserved.unwrap_or(0)) {
            return Ok(());
        }
        // A sparse extension: no blocks are allocated until written, but
        // the size is set once instead of on every append.
        self.file.set_len(len)?;
        self.reserved = Some(len);
        Ok(())
    }

    fn trim(&mut self) -> io::Result<()> {
        if self.reserved.is_some() {
            self.file.set_len(self.len)?;
            self.reserved = None;
        }
        Ok(())
    }
}

struct OsReadable {
    file: File,
    len: u64,
}

impl RandomAccessFile for OsReadable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

struct OsLock {
    _file: File,
}

impl FileLock for OsLock {}

impl FileSystem for OsFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(OsWritable {
            file,
            len: 0,
            appending: false,
            reserved: None,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(OsWritable {
            file,
            len,
            appending: true,
            reserved: None,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Arc::new(OsReadable { file, len }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        match std::fs::hard_link(from, to) {
            Ok(()) => Ok(()),
            // Nothing to copy, or a name already there: a copy would fail
            // the same way (or clobber the name).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
                ) =>
            {
                Err(e)
            }
            // EXDEV (another device), EPERM / ENOTSUP (no links here),
            // EMLINK (too many links): a copy does the job.
            Err(_) => super::copy_file(self, from, to, None),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(_) => Ok(Some(EntryKind::File)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Directory handles cannot be fsynced on Windows; NTFS journals
            // metadata itself.
            let _ = dir;
            Ok(())
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(OsLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "lock held by another handle",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
