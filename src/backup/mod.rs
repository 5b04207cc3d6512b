//! [`BackupEngine`]: incremental backups of a live database.
//!
//! Layout of a backup directory:
//!
//! ```text
//! LOCK                                   one engine at a time
//! meta/<id>                              what backup <id> holds (see `meta`)
//! shared/<number>_<crc>_<size>.sst       table files, shared by backups
//! private/<id>/                          its MANIFEST, CURRENT, IDENTITY, logs
//! ```
//!
//! A backup notes the database's state at one instant (as a checkpoint
//! does: the live tables, pinned, and the logs up to that moment). Table
//! files are identified by number, CRC-32 and size; one already in
//! `shared/` is not copied again, which makes backups incremental. A
//! backup exists once its metadata file does: the metadata is written to
//! a temporary file, synced, renamed into place and the directory synced,
//! after every file it names is durable. A crash at any point leaves
//! either the complete backup or none, and never touches the source or an
//! earlier backup (shared files are only ever added, or removed when no
//! metadata names them). Leftovers of a crash are removed by the next
//! [`BackupEngine::open`].

mod meta;

use crate::db::{log_path, table_path, write_manifest_and_identity, DB};
use crate::error::{Error, IoContext, Result};
use crate::fs::{
    copy_prefix, remove_tree, with_suffix, FileLock, FileSystem, OsFileSystem, RandomAccessFile,
};
use meta::{BackupFile, Meta};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one backup holds, as [`BackupEngine::backups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The backup's id: 1 for the first, then one more than the newest
    /// backup there is.
    pub id: u64,
    /// When it was taken, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// The database's last sequence number at that instant.
    pub sequence: u64,
    /// Total bytes of its files (shared ones included).
    pub size: u64,
    /// Number of files.
    pub file_count: usize,
}

/// Creates, checks, restores and deletes backups in one directory.
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path().join("db"))?;
/// db.put("k", "v")?;
/// let mut engine = aidb::BackupEngine::open(dir.path().join("backups"))?;
/// let info = engine.create_backup(&db)?;
/// engine.verify(info.id)?;
/// engine.restore(info.id, dir.path().join("restored"))?;
/// let restored = aidb::DB::open(dir.path().join("restored"))?;
/// assert_eq!(restored.get("k")?, Some(b"v".to_vec()));
/// # Ok(())
/// # }
/// ```
pub struct BackupEngine {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    metas: Vec<Meta>,
    _lock: Box<dyn FileLock>,
}

impl std::fmt::Debug for BackupEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupEngine")
            .field("dir", &self.dir)
            .finish()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl BackupEngine {
    /// Opens (creating it if needed) the backup directory `backup_dir` on
    /// the operating system's file system.
    ///
    /// # Errors
    /// [`Error::Locked`] when another engine has it open; [`Error::Io`];
    /// [`Error::Corruption`] when a backup's metadata is damaged.
    pub fn open(backup_dir: impl AsRef<Path>) -> Result<BackupEngine> {
        BackupEngine::open_with(backup_dir, OsFileSystem::shared())
    }

    /// As [`open`](Self::open), through the file system `fs` (which must
    /// be the one the backed-up databases use).
    pub fn open_with(
        backup_dir: impl AsRef<Path>,
        fs: Arc<dyn FileSystem>,
    ) -> Result<BackupEngine> {
        let dir = backup_dir.as_ref().to_path_buf();
        for sub in ["meta", "shared", "private"] {
            let p = dir.join(sub);
            fs.create_dir_all(&p).ctx(&p)?;
        }
        let lock_path = dir.join("LOCK");
        let lock = match fs.lock(&lock_path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(Error::Locked { path: dir })
            }
            Err(e) => return Err(Error::io(&lock_path, e)),
        };
        let mut engine = BackupEngine {
            fs,
            dir,
            metas: Vec::new(),
            _lock: lock,
        };
        engine.load()?;
        engine.collect_garbage()?;
        Ok(engine)
    }

    fn load(&mut self) -> Result<()> {
        let meta_dir = self.dir.join("meta");
        let mut metas = Vec::new();
        for name in self.fs.list(&meta_dir).ctx(&meta_dir)? {
            let Ok(id) = name.parse::<u64>() else {
                continue; // a temporary file (removed by collect_garbage)
            };
            let path = meta_dir.join(&name);
            let data = self.fs.read_all(&path).ctx(&path)?;
            let meta = Meta::decode(&data).map_err(|r| Error::corruption(&path, 0, r))?;
            if meta.id != id {
                return Err(Error::corruption(&path, 0, "id does not match the name"));
            }
            metas.push(meta);
        }
        metas.sort_by_key(|m| m.id);
        self.metas = metas;
        Ok(())
    }

    /// Removes what no backup names: temporary files, private directories
    /// of backups that never completed (or were deleted), shared files no
    /// metadata lists.
    fn collect_garbage(&self) -> Result<()> {
        let fs = &*self.fs;
        let used: HashSet<&str> = self
            .metas
            .iter()
            .flat_map(|m| m.files.iter().map(|f| f.stored.as_str()))
            .collect();
        let ids: HashSet<String> = self.metas.iter().map(|m| m.id.to_string()).collect();
        let meta_dir = self.dir.join("meta");
        for name in fs.list(&meta_dir).ctx(&meta_dir)? {
            if !ids.contains(&name) {
                let p = meta_dir.join(&name);
                fs.remove_file(&p).ctx(&p)?;
            }
        }
        let private = self.dir.join("private");
        for name in fs.list(&private).ctx(&private)? {
            if !ids.contains(&name) {
                let p = private.join(&name);
                remove_tree(fs, &p).ctx(&p)?;
            }
        }
        let shared = self.dir.join("shared");
        for name in fs.list(&shared).ctx(&shared)? {
            if !used.contains(format!("shared/{name}").as_str()) {
                let p = shared.join(&name);
                fs.remove_file(&p).ctx(&p)?;
            }
        }
        fs.sync_dir(&shared).ctx(&shared)
    }

    /// Backs up `db`: every column family at one sequence number, while
    /// writes go on. Table files already in the backup directory (same
    /// number, size and checksum) are not copied again.
    ///
    /// # Errors
    /// [`Error::Io`] when reading the database or writing the backup
    /// fails; nothing of this backup remains then (the next `open` removes
    /// any leftovers), and earlier backups are untouched.
    pub fn create_backup(&mut self, db: &DB) -> Result<BackupInfo> {
        let id = self.metas.last().map_or(1, |m| m.id + 1);
        let (capture, src, src_fs) = db.capture()?;
        let fs = &*self.fs;
        let private = self.dir.join("private").join(id.to_string());
        if fs.kind(&private).ctx(&private)?.is_some() {
            remove_tree(fs, &private).ctx(&private)?;
        }
        fs.create_dir_all(&private).ctx(&private)?;
        let mut files = Vec::new();
        let shared_dir = self.dir.join("shared");
        for meta in capture.tables() {
            let from = table_path(src, meta.number);
            let crc = match meta.file_crc {
                0 => crc_of(&*src_fs.open(&from).ctx(&from)?, meta.size, &from)?,
                crc => crc,
            };
            let name = format!("{:06}.sst", meta.number);
            let stored = format!("{:06}_{crc:08x}_{}.sst", meta.number, meta.size);
            let to = shared_dir.join(&stored);
            if fs.kind(&to).ctx(&to)?.is_none() {
                let tmp = with_suffix(&to, ".tmp");
                let file = src_fs.open(&from).ctx(&from)?;
                copy_prefix(fs, &*file, &tmp, meta.size).ctx(&tmp)?;
                fs.rename(&tmp, &to).ctx(&tmp)?;
            }
            files.push(BackupFile {
                stored: format!("shared/{stored}"),
                name,
                size: meta.size,
                crc,
            });
        }
        fs.sync_dir(&shared_dir).ctx(&shared_dir)?;
        for (number, file, len) in &capture.logs {
            let to = log_path(&private, *number);
            copy_prefix(fs, &**file, &to, *len).ctx(&to)?;
        }
        write_manifest_and_identity(fs, &capture, &private)?;
        for name in fs.list(&private).ctx(&private)? {
            let p = private.join(&name);
            let file = fs.open(&p).ctx(&p)?;
            files.push(BackupFile {
                stored: format!("private/{id}/{name}"),
                crc: crc_of(&*file, file.len(), &p)?,
                size: file.len(),
                name,
            });
        }
        let meta = Meta {
            id,
            time: now(),
            sequence: capture.seq,
            files,
        };
        drop(capture);
        self.write_meta(&meta)?;
        let info = info(&meta);
        self.metas.push(meta);
        Ok(info)
    }

    /// Writes `meta/<id>` atomically: temporary file, sync, rename, sync.
    fn write_meta(&self, meta: &Meta) -> Result<()> {
        let dir = self.dir.join("meta");
        let path = dir.join(meta.id.to_string());
        let tmp = dir.join(format!("{}.tmp", meta.id));
        let mut f = self.fs.create(&tmp).ctx(&tmp)?;
        f.append(&meta.encode()).ctx(&tmp)?;
        f.sync().ctx(&tmp)?;
        drop(f);
        self.fs.rename(&tmp, &path).ctx(&tmp)?;
        self.fs.sync_dir(&dir).ctx(&dir)
    }

    /// Every backup, oldest first.
    pub fn backups(&self) -> Vec<BackupInfo> {
        self.metas.iter().map(info).collect()
    }

    fn meta(&self, id: u64) -> Result<&Meta> {
        self.metas
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| Error::InvalidArgument(format!("no backup with id {id}")))
    }

    /// Reads every file of backup `id`, checking its size and checksum.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the first damaged or missing file;
    /// [`Error::InvalidArgument`] for an unknown id.
    pub fn verify(&self, id: u64) -> Result<()> {
        for f in &self.meta(id)?.files {
            let path = self.dir.join(&f.stored);
            let file = self.fs.open(&path).map_err(|e| {
                Error::corruption(&path, 0, format!("backup file cannot be opened: {e}"))
            })?;
            check(&*file, f, &path)?;
        }
        Ok(())
    }

    /// Restores backup `id` into `target_dir`, which must not exist: a
    /// database that opens with the state the source had when the backup
    /// was taken. Every file's checksum is checked on the way.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `target_dir` exists or the id is
    /// unknown; [`Error::Corruption`] when a backup file is damaged
    /// (nothing is left at `target_dir` then).
    pub fn restore(&self, id: u64, target_dir: impl AsRef<Path>) -> Result<()> {
        let target = target_dir.as_ref();
        let meta = self.meta(id)?;
        let fs = &*self.fs;
        if fs.kind(target).ctx(target)?.is_some() {
            return Err(Error::InvalidArgument(format!(
                "restore target {} already exists",
                target.display()
            )));
        }
        let tmp = with_suffix(target, ".tmp");
        if fs.kind(&tmp).ctx(&tmp)?.is_some() {
            remove_tree(fs, &tmp).ctx(&tmp)?;
        }
        fs.create_dir_all(&tmp).ctx(&tmp)?;
        let copied = meta.files.iter().try_for_each(|f| {
            let from = self.dir.join(&f.stored);
            let file = fs.open(&from).ctx(&from)?;
            check(&*file, f, &from)?;
            let to = tmp.join(&f.name);
            copy_prefix(fs, &*file, &to, f.size).ctx(&to)
        });
        if let Err(e) = copied.and_then(|_| fs.sync_dir(&tmp).ctx(&tmp)) {
            let _ = remove_tree(fs, &tmp);
            return Err(e);
        }
        fs.rename(&tmp, target).ctx(&tmp)?;
        let parent = crate::fs::parent_dir(target);
        fs.sync_dir(&parent).ctx(&parent)
    }

    /// Deletes backup `id`, and the files no other backup uses.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown id; [`Error::Io`].
    pub fn delete(&mut self, id: u64) -> Result<()> {
        self.meta(id)?;
        // The backup is gone once its metadata is; the rest is garbage.
        let dir = self.dir.join("meta");
        let path = dir.join(id.to_string());
        self.fs.remove_file(&path).ctx(&path)?;
        self.fs.sync_dir(&dir).ctx(&dir)?;
        self.metas.retain(|m| m.id != id);
        self.collect_garbage()
    }

    /// Deletes the oldest backups until `keep` remain.
    pub fn purge_old(&mut self, keep: usize) -> Result<()> {
        while self.metas.len() > keep {
            let id = self.metas[0].id;
            self.delete(id)?;
        }
        Ok(())
    }
}

fn info(meta: &Meta) -> BackupInfo {
    BackupInfo {
        id: meta.id,
        timestamp: meta.time,
        sequence: meta.sequence,
        size: meta.files.iter().map(|f| f.size).sum(),
        file_count: meta.files.len(),
    }
}

/// CRC-32 of the first `len` bytes of `file`.
fn crc_of(file: &dyn RandomAccessFile, len: u64, path: &Path) -> Result<u32> {
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; (1 << 20).min(len as usize)];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        file.read_exact_at(at, &mut buf[..n]).ctx(path)?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    Ok(crc.finalize())
}

/// Checks a backup file against its record.
fn check(file: &dyn RandomAccessFile, f: &BackupFile, path: &Path) -> Result<()> {
    if file.len() != f.size {
        return Err(Error::corruption(
            path,
            0,
            format!("backup file has {} bytes, expected {}", file.len(), f.size),
        ));
    }
    let crc = crc_of(file, f.size, path)?;
    if crc != f.crc {
        return Err(Error::corruption(
            path,
            0,
            format!("backup file checksum {crc:08x}, expected {:08x}", f.crc),
        ));
    }
    Ok(())
}
