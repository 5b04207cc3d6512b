//! Group commit: concurrent synced writers share fsyncs.

use aidb::fs::{EntryKind, FileLock, FileSystem, OsFileSystem, RandomAccessFile, WritableFile};
use aidb::{Options, WriteOptions, DB};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The real file system, counting file syncs.
#[derive(Debug, Default)]
struct CountingFs {
    syncs: Arc<AtomicU64>,
}

struct CountingFile {
    inner: Box<dyn WritableFile>,
    syncs: Arc<AtomicU64>,
}

impl WritableFile for CountingFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl FileSystem for CountingFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        OsFileSystem.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(CountingFile {
            inner: OsFileSystem.create(path)?,
            syncs: self.syncs.clone(),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(CountingFile {
            inner: OsFileSystem.open_append(path)?,
            syncs: self.syncs.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        OsFileSystem.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsFileSystem.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsFileSystem.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        OsFileSystem.remove_dir(path)
    }
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsFileSystem.link(from, to)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        OsFileSystem.list(dir)
    }
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        OsFileSystem.kind(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsFileSystem.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        OsFileSystem.lock(path)
    }
}

#[test]
fn eight_threads_of_synced_writes_share_fsyncs() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(CountingFs::default());
    let syncs = fs.syncs.clone();
    let opts = Options {
        fs,
        ..Options::new(dir.path())
    };
    let db = Arc::new(DB::open_with(opts.clone()).unwrap());
    let before = syncs.load(Ordering::Relaxed);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let batch_opts = WriteOptions { sync: true };
                for i in 0..PER_THREAD {
                    let mut b = aidb::WriteBatch::new();
                    b.put(format!("t{t}-k{i:04}"), format!("{t}:{i}"));
                    db.write_opt(b, &batch_opts).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let used = syncs.load(Ordering::Relaxed) - before;
    let writes = (THREADS * PER_THREAD) as u64;
    println!("{writes} synced writes cost {used} fsyncs");
    assert!(
        used < writes / 2,
        "{used} fsyncs for {writes} synced writes"
    );
    drop(db);

    let db = DB::open_with(opts).unwrap();
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            assert_eq!(
                db.get(format!("t{t}-k{i:04}")).unwrap(),
                Some(format!("{t}:{i}").into_bytes())
            );
        }
    }
    assert_eq!(db.iter().count(), THREADS * PER_THREAD);
}
