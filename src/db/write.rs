//! The write path: group commit into the write-ahead log, then the memtable.
//!
//! Writers queue up; the writer at the front is the leader. It takes the
//! batches of the writers behind it (up to a size limit), appends them to
//! the log as one record with one `write`, fsyncs once if any of them asked
//! for it, applies them to the memtable, and only then publishes their
//! sequence numbers. Then it wakes the writers it served and hands the lead
//! to the next one in the queue.

use super::filenames::log_path;
use super::health::{panic_message, Failure};
use super::{DbInner, ReadView};
use crate::batch::{BatchOp, WriteBatch};
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::memtable::MemTable;
use crate::types::{SeqNo, ValueKind};
use crate::wal::{LogKind, LogWriter};
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest group a leader assembles, in encoded bytes.
const MAX_GROUP_BYTES: usize = 1 << 20;
/// A small first batch only waits for this much company, so that small
/// writes are not delayed behind big ones.
const SMALL_GROUP_EXTRA: usize = 128 << 10;

/// The log being written and the last sequence number used.
pub(crate) struct WalState {
    pub(crate) writer: LogWriter,
    pub(crate) path: PathBuf,
    pub(crate) last_seq: SeqNo,
}

impl WalState {
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.writer.sync().ctx(&self.path)
    }
}

/// One writer waiting in the queue.
pub(crate) struct Writer {
    batch: Mutex<Option<WriteBatch>>,
    sync: bool,
    /// Set (under the queue lock) by the leader that served this writer.
    result: Mutex<Option<Result<()>>>,
    cv: Condvar,
}

pub(crate) fn write(inner: &DbInner, batch: WriteBatch, sync: bool) -> Result<()> {
    batch.check_limits()?;
    inner.check_writable()?;
    if batch.is_empty() && !sync {
        return Ok(());
    }
    let me = Arc::new(Writer {
        batch: Mutex::new(Some(batch)),
        sync,
        result: Mutex::new(None),
        cv: Condvar::new(),
    });
    let mut queue = inner.writers.lock();
    queue.push_back(me.clone());
    loop {
        if let Some(result) = me.result.lock().take() {
            return result;
        }
        if queue.front().is_some_and(|w| Arc::ptr_eq(w, &me)) {
            break;
        }
        me.cv.wait(&mut queue);
    }

    // Leader: take the batches of a prefix of the queue.
    let mut group_len = 0;
    let mut bytes = 0;
    let mut limit = MAX_GROUP_BYTES;
    let mut any_sync = false;
    let mut merged: Option<WriteBatch> = None;
    for w in queue.iter() {
        let mut slot = w.batch.lock();
        let size = slot.as_ref().map_or(0, WriteBatch::size_in_bytes);
        if group_len == 0 {
            limit = if size <= SMALL_GROUP_EXTRA {
                size + SMALL_GROUP_EXTRA
            } else {
                MAX_GROUP_BYTES
            };
        } else if bytes + size > limit {
            break;
        }
        bytes += size;
        group_len += 1;
        any_sync |= w.sync;
        if let Some(b) = slot.take() {
            match &mut merged {
                None => merged = Some(b),
                Some(m) => m.append(&b),
            }
        }
    }
    drop(queue);

    let result = match inner.check_writable() {
        Ok(()) => {
            // A panic here (a bug, or in a user-provided file system) must
            // still hand the lead on, or every later writer would wait for
            // ever behind a leader that is gone.
            let commit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                commit_group(inner, merged.unwrap_or_default(), any_sync)
            }));
            commit.unwrap_or_else(|panic| {
                let msg = format!("panic while committing a write: {}", panic_message(&*panic));
                Err(inner.stop_writes(Error::Internal(msg), Failure::Fatal))
            })
        }
        Err(e) => Err(e),
    };

    let mut queue = inner.writers.lock();
    for _ in 0..group_len {
        if let Some(w) = queue.pop_front() {
            if !Arc::ptr_eq(&w, &me) {
                let r = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.duplicate()),
                };
                *w.result.lock() = Some(r);
                w.cv.notify_one();
            }
        }
    }
    if let Some(next) = queue.front() {
        next.cv.notify_one();
    }
    result
}

/// Logs and applies one group. Runs only in the leader.
fn commit_group(inner: &DbInner, mut batch: WriteBatch, sync: bool) -> Result<()> {
    let mut wal = inner.wal.lock();
    make_room(inner, &mut wal)?;
    let count = batch.len() as u64;
    let first = wal.last_seq + 1;
    if count > 0 {
        let record = batch.encode(first);
        if let Err(e) = wal.writer.add_record(record) {
            // The log may now end in part of a record: nothing more may be
            // appended to it (see `health`).
            return Err(inner.stop_writes(Error::io(&wal.path, e), Failure::Log));
        }
    }
    if sync {
        if let Err(e) = wal.writer.sync() {
            return Err(inner.stop_writes(Error::io(&wal.path, e), Failure::Fatal));
        }
    }
    if count == 0 {
        return Ok(());
    }
    let mem = inner.view.read().mem.clone();
    apply(&mem, &batch, first);
    inner
        .stats
        .bytes_written
        .fetch_add(batch.size_in_bytes() as u64, Ordering::Relaxed);
    wal.last_seq = first + count - 1;
    inner.visible_seq.store(wal.last_seq, Ordering::Release);
    Ok(())
}

/// Inserts the operations of `batch` into `mem` with sequence numbers from
/// `first` on.
pub(crate) fn apply(mem: &MemTable, batch: &WriteBatch, first: SeqNo) {
    for (op, seq) in batch.iter().zip(first..) {
        match op {
            BatchOp::Put { key, value } => mem.insert(key, seq, ValueKind::Put, value),
            BatchOp::Delete { key } => mem.insert(key, seq, ValueKind::Delete, b""),
        }
    }
}

/// Freezes the memtable and starts a new log when the memtable is full,
/// first waiting (stalling the writers queued behind) while too many frozen
/// memtables or level-0 files wait for background work.
fn make_room(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    let opts = &inner.opts;
    let mut slowed_down = false;
    loop {
        let view = inner.view.read().clone();
        let l0_files = view.version.levels[0].len();
        if l0_files >= opts.level0_slowdown_writes_trigger
            && l0_files < opts.level0_stop_writes_trigger
            && !slowed_down
        {
            // Let compaction catch up a little, once per write, as RocksDB
            // does, rather than stopping outright.
            slowed_down = true;
            let start = Instant::now();
            inner.bg.notify();
            std::thread::sleep(Duration::from_millis(1));
            inner.stats.add_stall(start.elapsed());
            continue;
        }
        let full = view.mem.approximate_size() >= opts.write_buffer_size;
        let too_many_imms = full && view.imms.len() + 1 >= opts.max_write_buffer_number;
        let too_many_l0 = l0_files >= opts.level0_stop_writes_trigger;
        if too_many_imms || too_many_l0 {
            let start = Instant::now();
            inner.bg.notify();
            inner.wait_for(|inner, _| {
                let v = inner.view.read();
                v.imms.len() != view.imms.len() || v.version.levels[0].len() != l0_files
            })?;
            inner.stats.add_stall(start.elapsed());
            continue;
        }
        if full {
            rotate(inner, wal)?;
        }
        return Ok(());
    }
}

/// Freezes the current memtable (if it holds anything) and starts a new log
/// and memtable; the caller holds the log lock, so no commit is in flight.
pub(crate) fn rotate(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    if inner.view.read().mem.is_empty() {
        return Ok(());
    }
    new_log(inner, wal)
}

/// Starts a new log even when the memtable is empty: after a failed
/// append, the old log must take no more records.
pub(crate) fn switch_log(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    new_log(inner, wal)
}

fn new_log(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    // The old log must be durable before a newer one can hold data, or a
    // power cut could keep later writes while losing earlier ones.
    wal.sync()
        .map_err(|e| inner.stop_writes(e, Failure::Fatal))?;
    let number = inner.new_file_number();
    let (path, writer) = create_log(&*inner.fs, &inner.dir, number).map_err(|e| {
        // Nothing was written to the new log; the old one is intact.
        let _ = inner.fs.remove_file(&log_path(&inner.dir, number));
        inner.stop_writes(e, Failure::Log)
    })?;
    *wal = WalState {
        writer,
        path,
        last_seq: wal.last_seq,
    };
    {
        let mut view = inner.view.write();
        let mut imms = Vec::with_capacity(view.imms.len() + 1);
        if !view.mem.is_empty() {
            imms.push(view.mem.clone());
        }
        imms.extend(view.imms.iter().cloned());
        *view = Arc::new(ReadView {
            mem: Arc::new(MemTable::new(number)),
            imms,
            version: view.version.clone(),
        });
    }
    inner.bg.notify();
    Ok(())
}

/// Freezes the memtable now, whatever its size (for `DB::flush`). Returns
/// the log number of the newest frozen memtable, if any is waiting: the
/// flush is done when every memtable up to that one is written.
pub(crate) fn freeze_memtable(inner: &DbInner) -> Result<Option<u64>> {
    let mut wal = inner.wal.lock();
    inner.check_writable()?;
    rotate(inner, &mut wal)?;
    Ok(inner.view.read().imms.first().map(|m| m.log_number()))
}

/// Creates log file `number` and makes its name durable.
pub(crate) fn create_log(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
) -> Result<(PathBuf, LogWriter)> {
    let path = log_path(dir, number);
    let file = fs.create(&path).ctx(&path)?;
    let writer = LogWriter::create(file, LogKind::Wal, number).ctx(&path)?;
    fs.sync_dir(dir).ctx(dir)?;
    Ok((path, writer))
}
