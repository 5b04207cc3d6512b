//! Opening a database: checks, locking, and recovery from the logs.
//!
//! Recovery replays every log in file-number order into a memtable, then
//! checkpoints the recovered state: the newest entry of each key is written
//! to a fresh log under a temporary name, synced, renamed into place, and
//! the old logs are removed. So the logs never grow across restarts, and a
//! log damaged in a way the recovery mode tolerated is never read again
//! (which would put it in front of newer writes).

use super::filenames::{self, log_path, temp_path, FileType, IDENTITY, LOCK};
use super::write::{create_log, WalState};
use super::{DbInner, ReadView};
use crate::batch::WriteBatch;
use crate::error::{Error, IoContext, Result};
use crate::fs::EntryKind;
use crate::internal_iter::InternalIterator;
use crate::memtable::MemTable;
use crate::options::{Options, WalRecoveryMode};
use crate::types::{parse_internal_key, SeqNo, ValueKind};
use crate::wal::{LogKind, LogReader, LogWriter, ReadEvent};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
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
    let exists = names.iter().any(|n| n == IDENTITY);
    if exists && opts.error_if_exists {
        return Err(Error::AlreadyExists { path: dir });
    }
    if !exists {
        if !opts.create_if_missing {
            return Err(Error::NotFound { path: dir });
        }
        write_identity(&opts, &dir)?;
    }

    let mut logs = Vec::new();
    for name in &names {
        match filenames::parse(name) {
            Some(FileType::Log(n)) => logs.push(n),
            Some(FileType::Temp) => {
                let p = dir.join(name);
                fs.remove_file(&p).ctx(&p)?;
            }
            _ => {}
        }
    }
    logs.sort_unstable();

    let max_log = logs.last().copied().unwrap_or(0);
    let checkpoint_number = max_log + 1;
    let recovered = Arc::new(MemTable::new(checkpoint_number));
    let mut last_seq: SeqNo = 0;
    for &number in &logs {
        if !replay_log(&opts, &dir, number, &recovered, &mut last_seq)? {
            break;
        }
    }

    // Carry the recovered writes over into one fresh log, then drop the old
    // ones.
    let mut imms = Vec::new();
    if !recovered.is_empty() {
        checkpoint(&opts, &dir, checkpoint_number, &recovered)?;
        imms.push(recovered);
    }
    for &number in &logs {
        let p = log_path(&dir, number);
        fs.remove_file(&p).ctx(&p)?;
    }
    if !logs.is_empty() {
        fs.sync_dir(&dir).ctx(&dir)?;
    }

    let log_number = checkpoint_number + 1;
    let (path, writer) = create_log(&*fs, &dir, log_number)?;
    Ok(Arc::new(DbInner {
        dir: dir.clone(),
        fs,
        lock: Mutex::new(Some(lock)),
        view: RwLock::new(Arc::new(ReadView {
            mem: Arc::new(MemTable::new(log_number)),
            imms,
        })),
        visible_seq: AtomicU64::new(last_seq),
        writers: Mutex::new(VecDeque::new()),
        wal: Mutex::new(WalState {
            writer,
            number: log_number,
            path,
            last_seq,
        }),
        next_file_number: AtomicU64::new(log_number + 1),
        snapshots: Mutex::new(BTreeMap::new()),
        poisoned: Mutex::new(None),
        closed: AtomicBool::new(false),
        opts,
    }))
}

fn write_identity(opts: &Options, dir: &Path) -> Result<()> {
    let path = dir.join(IDENTITY);
    let mut f = opts.fs.create(&path).ctx(&path)?;
    f.append(b"AiDb database\nformat 1\n").ctx(&path)?;
    f.sync().ctx(&path)?;
    opts.fs.sync_dir(dir).ctx(dir)
}

/// Replays one log into `mem`. Returns false when recovery must stop here
/// (point-in-time recovery hit damage).
fn replay_log(
    opts: &Options,
    dir: &Path,
    number: u64,
    mem: &MemTable,
    last_seq: &mut SeqNo,
) -> Result<bool> {
    let path = log_path(dir, number);
    let data = opts.fs.read_all(&path).ctx(&path)?;
    let mut reader = LogReader::new(&data, LogKind::Wal);
    let mode = opts.wal_recovery_mode;
    loop {
        match reader.next_event() {
            ReadEvent::Eof => return Ok(true),
            ReadEvent::Record { offset, data } => {
                let (first, batch) = WriteBatch::decode(&data)
                    .map_err(|reason| Error::corruption(&path, offset, reason))?;
                super::write::apply(mem, &batch, first);
                if !batch.is_empty() {
                    *last_seq = (*last_seq).max(first + batch.len() as u64 - 1);
                }
            }
            ReadEvent::TornTail { offset, reason } => {
                if mode == WalRecoveryMode::AbsoluteConsistency {
                    return Err(Error::corruption(&path, offset, reason));
                }
                return Ok(mode != WalRecoveryMode::PointInTimeRecovery);
            }
            ReadEvent::Corrupt { offset, reason } => match mode {
                WalRecoveryMode::SkipAnyCorruptedRecords => {}
                WalRecoveryMode::PointInTimeRecovery => return Ok(false),
                _ => return Err(Error::corruption(&path, offset, reason)),
            },
        }
    }
}

/// Writes the newest entry of every key in `mem` to log `number`, atomically
/// (temporary file, sync, rename, directory sync).
fn checkpoint(opts: &Options, dir: &Path, number: u64, mem: &Arc<MemTable>) -> Result<()> {
    let tmp = temp_path(dir, number);
    let fs = &opts.fs;
    let file = fs.create(&tmp).ctx(&tmp)?;
    let mut w = LogWriter::create(file, LogKind::Wal, number).ctx(&tmp)?;
    let mut it = mem.iter();
    it.seek_to_first();
    let mut prev: Option<Vec<u8>> = None;
    while it.valid() {
        if let Some(p) = parse_internal_key(it.key()) {
            if prev.as_deref() != Some(p.user_key) {
                let mut b = WriteBatch::new();
                match p.kind {
                    ValueKind::Put => b.put(p.user_key, it.value()),
                    ValueKind::Delete => b.delete(p.user_key),
                };
                w.add_record(b.encode(p.seq)).ctx(&tmp)?;
                prev = Some(p.user_key.to_vec());
            }
        }
        it.next();
    }
    w.sync().ctx(&tmp)?;
    let path = log_path(dir, number);
    fs.rename(&tmp, &path).ctx(&tmp)?;
    fs.sync_dir(dir).ctx(dir)
}
