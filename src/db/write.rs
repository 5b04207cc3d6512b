//! The write path: group commit into the write-ahead log, then the memtable.
//!
//! Writers queue up; the writer at the front is the leader. It takes the
//! batches of the writers behind it (up to a size limit), appends them to
//! the log as one record with one `write`, fsyncs once if any of them asked
//! for it, applies them to the memtable, and only then publishes their
//! sequence numbers. Then it wakes the writers it served and hands the lead
//! to the next one in the queue.
//!
//! All column families share the log. Each family has its own memtables;
//! a memtable records the number of the log that was current when it was
//! created, the oldest that can hold its writes. When one family's
//! memtable fills up, a new log is started and only that memtable is
//! frozen, so a log stays needed until every family has flushed what it
//! holds of it (see `DbInner::oldest_live_log`); `max_total_wal_size`
//! flushes a rarely written family that would otherwise keep logs alive.
//!
//! A transaction's commit is a writer with a conflict check
//! (`conflict::ConflictCheck`). From the first such writer of a group on,
//! the leader keeps the batches apart, and with the log lock held runs
//! each check in queue order (`screen`): a batch whose check fails is left
//! out of the group and its writer answered with the error, so the check
//! and the write are one atomic step.

use super::conflict::{self, ConflictCheck, EarlierWrites};
use super::family::{Family, ReadView};
use super::filenames::log_path;
use super::health::{panic_message, Failure};
use super::DbInner;
use crate::batch::{BatchOp, WriteBatch};
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::memtable::{filter_bytes, MemTable};
use crate::types::{SeqNo, ValueKind};
use crate::wal::{LogKind, LogWriter};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
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
    pub(crate) number: u64,
    pub(crate) last_seq: SeqNo,
    /// The last sequence number written by something that takes no key
    /// locks: a plain write, an optimistic commit, an ingest (conservative:
    /// a whole group counts once one member is such). A pessimistic
    /// commit need not look up a key it locked at `since` when this is
    /// not above `since`: only lock holders wrote since then, and none
    /// but itself can hold that key's lock (see `conflict::verify`).
    pub(crate) unlocked_seq: SeqNo,
    /// Sizes of the earlier logs of this session, by number, for
    /// `max_total_wal_size` (pruned as they become obsolete).
    pub(crate) closed_logs: BTreeMap<u64, u64>,
}

impl WalState {
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.writer.sync().ctx(&self.path)
    }

    /// Cuts the log back to its records (see `LogWriter::trim`).
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.writer.trim().ctx(&self.path)
    }
}

/// One writer waiting in the queue.
pub(crate) struct Writer {
    batch: Mutex<Option<WriteBatch>>,
    sync: bool,
    /// A transaction's conflict check, run by the leader under the log
    /// lock before the batch may join the group.
    check: Option<ConflictCheck>,
    /// Set by the leader when the check failed: the batch was left out.
    rejected: Mutex<Option<Error>>,
    /// Set (under the queue lock) by the leader that served this writer.
    result: Mutex<Option<Result<()>>>,
    cv: Condvar,
}

pub(crate) fn write(inner: &DbInner, batch: WriteBatch, sync: bool) -> Result<()> {
    write_checked(inner, batch, sync, None)
}

/// Writes `batch` if `check` (when given) passes at the moment of the
/// write; `Err(Error::Conflict)`, writing nothing, if it does not.
pub(crate) fn write_checked(
    inner: &DbInner,
    batch: WriteBatch,
    sync: bool,
    check: Option<ConflictCheck>,
) -> Result<()> {
    batch.check_limits()?;
    inner.check_writable()?;
    let batch = if inner.ttl_in_use.load(Ordering::Relaxed) {
        let families = inner.families.read();
        let stamped = |id: u32| families.get(&id).is_some_and(|f| f.opts.ttl.is_some());
        batch.with_write_time(stamped, crate::ttl::now())
    } else {
        batch
    };
    if batch.is_empty() && !sync && check.is_none() {
        return Ok(());
    }
    if !batch.families().is_empty() {
        let families = inner.families.read();
        for &(id, uid) in batch.families() {
            if families.get(&id).is_none_or(|f| f.uid != uid) {
                return Err(Error::InvalidArgument(format!(
                    "the batch writes to column family id {id}, which was dropped \
                     (or belongs to another database)"
                )));
            }
        }
    }
    let me = Arc::new(Writer {
        batch: Mutex::new(Some(batch)),
        sync,
        check,
        rejected: Mutex::new(None),
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
    // From the first writer with a conflict check on, batches stay apart
    // until the checks have run (under the log lock, in `screen`).
    let mut apart: Vec<(Arc<Writer>, WriteBatch)> = Vec::new();
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
            if w.check.is_some() || !apart.is_empty() {
                apart.push((w.clone(), b));
                continue;
            }
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
                commit_group(inner, merged.unwrap_or_default(), apart, any_sync)
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
                let r = match (w.rejected.lock().take(), &result) {
                    (Some(e), _) => Err(e),
                    (None, Ok(())) => Ok(()),
                    (None, Err(e)) => Err(e.duplicate()),
                };
                *w.result.lock() = Some(r);
                w.cv.notify_one();
            }
        }
    }
    if let Some(next) = queue.front() {
        next.cv.notify_one();
    }
    let rejected = me.rejected.lock().take();
    match rejected {
        Some(e) => Err(e),
        None => result,
    }
}

/// Runs the conflict checks of the members kept apart, in queue order,
/// adding to `batch` the batch of each member that passes (or has none);
/// a member that fails is left out and will be answered with its error.
/// The caller holds the log lock, so no write lands between a check and
/// the group's append.
fn screen(
    inner: &DbInner,
    batch: &mut WriteBatch,
    apart: Vec<(Arc<Writer>, WriteBatch)>,
    unlocked_seq: SeqNo,
) {
    let mut earlier = EarlierWrites::default();
    for (w, b) in apart {
        if let Some(check) = &w.check {
            if let Err(e) = conflict::verify(inner, check, earlier.built(batch), unlocked_seq) {
                *w.rejected.lock() = Some(e);
                continue;
            }
        }
        earlier.accept(&b);
        batch.append(&b);
    }
}

/// The families a batch writes to, looked up once for the whole group
/// (a family dropped meanwhile is left out: its writes go nowhere).
fn families_of(inner: &DbInner, batch: &WriteBatch) -> Vec<Arc<Family>> {
    let mut out = Vec::with_capacity(1 + batch.families().len());
    if batch.touches_default() {
        out.push(inner.default.clone());
    }
    if !batch.families().is_empty() {
        let families = inner.families.read();
        for (id, _) in batch.families() {
            if let Some(f) = families.get(id) {
                if !out.iter().any(|o| o.id == *id) {
                    out.push(f.clone());
                }
            }
        }
    }
    out
}

/// Logs and applies one group. Runs only in the leader.
fn commit_group(
    inner: &DbInner,
    mut batch: WriteBatch,
    apart: Vec<(Arc<Writer>, WriteBatch)>,
    sync: bool,
) -> Result<()> {
    let mut wal = inner.wal.lock();
    let unlocked = !batch.is_empty()
        || apart
            .iter()
            .any(|(w, _)| !w.check.as_ref().is_some_and(|c| c.locked));
    if !apart.is_empty() {
        screen(inner, &mut batch, apart, wal.unlocked_seq);
    }
    // Most groups write only to the default family: no lists to build.
    let only_default = batch.families().is_empty();
    let families = if only_default {
        Vec::new()
    } else {
        families_of(inner, &batch)
    };
    if only_default {
        make_room_in(inner, &mut wal, &inner.default)?;
    } else {
        make_room(inner, &mut wal, &families)?;
    }
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
        if let Err(e) = inner.stats.rec.time_wal_sync(|| wal.writer.sync()) {
            return Err(inner.log_sync_failed(Error::io(&wal.path, e)));
        }
    }
    if count == 0 {
        return Ok(());
    }
    if only_default {
        let mem = inner.default.view.read().mem.clone();
        let mut bytes = 0u64;
        apply(&batch, first, |_, len| {
            bytes += len as u64;
            Some(&*mem)
        });
        inner
            .default
            .stats
            .bytes_written
            .fetch_add(bytes, Ordering::Relaxed);
    } else {
        let mems: Vec<(u32, Arc<MemTable>)> = families
            .iter()
            .map(|f| (f.id, f.view.read().mem.clone()))
            .collect();
        let mut bytes = vec![0u64; mems.len()];
        apply(&batch, first, |id, len| {
            let i = mems.iter().position(|(f, _)| *f == id)?;
            bytes[i] += len as u64;
            Some(&*mems[i].1)
        });
        for (family, written) in families.iter().zip(bytes) {
            family
                .stats
                .bytes_written
                .fetch_add(written, Ordering::Relaxed);
        }
    }
    wal.last_seq = first + count - 1;
    if unlocked {
        wal.unlocked_seq = wal.last_seq;
    }
    inner.visible_seq.store(wal.last_seq, Ordering::Release);
    Ok(())
}

/// Inserts the operations of `batch` with sequence numbers from `first`
/// on, each into the memtable `mem_for` gives for its family and size (an
/// operation of a family it has none for is skipped: a dropped family).
pub(crate) fn apply<'a>(
    batch: &WriteBatch,
    first: SeqNo,
    mut mem_for: impl FnMut(u32, usize) -> Option<&'a MemTable>,
) {
    for ((family, op), seq) in batch.iter_cf().zip(first..) {
        match op {
            BatchOp::Put { key, value } => {
                if let Some(mem) = mem_for(family, key.len() + value.len()) {
                    mem.insert(key, seq, ValueKind::Put, value)
                }
            }
            BatchOp::Delete { key } => {
                if let Some(mem) = mem_for(family, key.len()) {
                    mem.insert(key, seq, ValueKind::Delete, b"")
                }
            }
            BatchOp::Merge { key, operand } => {
                if let Some(mem) = mem_for(family, key.len() + operand.len()) {
                    mem.insert(key, seq, ValueKind::Merge, operand)
                }
            }
            BatchOp::DeleteRange { start, end } => {
                if let Some(mem) = mem_for(family, start.len() + end.len()) {
                    mem.insert_range_delete(start, end, seq)
                }
            }
        }
    }
}

/// Freezes a family's memtable and starts a new log when the memtable is
/// full, first waiting (stalling the writers queued behind) while too many
/// frozen memtables or level-0 files of the family wait for background
/// work.
fn make_room(inner: &DbInner, wal: &mut WalState, families: &[Arc<Family>]) -> Result<()> {
    for family in families {
        make_room_in(inner, wal, family)?;
    }
    Ok(())
}

fn make_room_in(inner: &DbInner, wal: &mut WalState, family: &Family) -> Result<()> {
    let opts = &family.opts;
    let mut slowed_down = false;
    loop {
        let view = family.view.read().clone();
        super::events::note_stall(inner, family, &view);
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
            inner.wait_for(|_, _| {
                let v = family.view.read();
                family.is_dropped()
                    || v.imms.len() != view.imms.len()
                    || v.version.levels[0].len() != l0_files
            })?;
            inner.stats.add_stall(start.elapsed());
            continue;
        }
        if full {
            rotate(inner, wal, family)?;
            limit_log_size(inner, wal)?;
        }
        return Ok(());
    }
}

/// When the live logs together exceed `max_total_wal_size`, freezes the
/// memtable of the family that keeps the oldest of them alive, so its flush
/// lets that log go.
fn limit_log_size(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    let oldest = inner.oldest_live_log(None);
    wal.closed_logs.retain(|&n, _| n >= oldest);
    let total: u64 = wal.closed_logs.values().sum::<u64>() + wal.writer.len();
    if total <= max_total_wal_size(inner) {
        return Ok(());
    }
    let pinning = inner.family_list().into_iter().find(|f| {
        let view = f.view.read();
        // A family with a frozen memtable on that log is flushing it
        // already; only an active memtable needs freezing.
        view.imms.is_empty() && !view.mem.is_empty() && view.mem.log_number() == oldest
    });
    match pinning {
        Some(family) => rotate(inner, wal, &family),
        None => Ok(()),
    }
}

fn max_total_wal_size(inner: &DbInner) -> u64 {
    match inner.opts.max_total_wal_size {
        0 => {
            let per_family: u64 = inner
                .family_list()
                .iter()
                .map(|f| (f.opts.write_buffer_size * f.opts.max_write_buffer_number) as u64)
                .sum();
            4 * per_family
        }
        limit => limit,
    }
}

/// Freezes `family`'s memtable (if it holds anything) and starts a new log
/// and memtable for it; the caller holds the log lock, so no commit is in
/// flight. Other families keep their memtables.
pub(crate) fn rotate(inner: &DbInner, wal: &mut WalState, family: &Family) -> Result<()> {
    if family.view.read().mem.is_empty() {
        return Ok(());
    }
    new_log(inner, wal)?;
    freeze(family, wal.number);
    inner.bg.notify();
    Ok(())
}

/// Starts a new log and freezes every family's memtable that holds
/// anything (at close, so that everything gets flushed).
pub(crate) fn freeze_all(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    let families = inner.family_list();
    if families.iter().all(|f| f.view.read().mem.is_empty()) {
        return Ok(());
    }
    switch_log(inner, wal)
}

/// Starts a new log even when every memtable is empty, freezing the ones
/// that are not: after a failed append, the old log must take no more
/// records, and every write in it must reach a table before it can go.
pub(crate) fn switch_log(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    new_log(inner, wal)?;
    for family in inner.family_list() {
        if !family.view.read().mem.is_empty() {
            freeze(&family, wal.number);
        }
    }
    inner.bg.notify();
    Ok(())
}

/// Moves `family`'s memtable to its frozen ones and gives it an empty one
/// whose writes start in log `log_number`.
fn freeze(family: &Family, log_number: u64) {
    let mut view = family.view.write();
    let mut imms = Vec::with_capacity(view.imms.len() + 1);
    imms.push(view.mem.clone());
    imms.extend(view.imms.iter().cloned());
    *view = Arc::new(ReadView {
        mem: Arc::new(MemTable::new(
            log_number,
            filter_bytes(family.opts.write_buffer_size),
        )),
        imms,
        version: view.version.clone(),
    });
}

fn new_log(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    // The old log must be durable before a newer one can hold data, or a
    // power cut could keep later writes while losing earlier ones. It is
    // cut back to its records first: only the newest log may end in
    // zeros (replay takes them for a torn tail, which is damage in any
    // log but the last with data).
    wal.trim().map_err(|e| inner.stop_writes(e, Failure::Log))?;
    super::instrument::sync_wal(inner, wal).map_err(|e| inner.log_sync_failed(e))?;
    let number = inner.new_file_number();
    let reserve = log_reserve(&inner.opts);
    let (path, writer) = create_log(&*inner.fs, &inner.dir, number, reserve).map_err(|e| {
        // Nothing was written to the new log; the old one is intact.
        let _ = inner.fs.remove_file(&log_path(&inner.dir, number));
        inner.stop_writes(e, Failure::Log)
    })?;
    let old_size = wal.writer.len();
    wal.closed_logs.insert(wal.number, old_size);
    wal.writer = writer;
    wal.path = path;
    wal.number = number;
    inner.current_log.store(number, Ordering::Release);
    Ok(())
}

/// Freezes `family`'s memtable now, whatever its size (for `flush`).
/// Returns the log number of the family's newest frozen memtable, if any
/// is waiting: the flush is done when every memtable up to that one is
/// written.
pub(crate) fn freeze_memtable(inner: &DbInner, family: &Family) -> Result<Option<u64>> {
    let mut wal = inner.wal.lock();
    inner.check_writable()?;
    if family.view.read().mem.is_empty() {
        // Nothing of this family to freeze, but the promise holds for every
        // write made before the call: other families' writes are in the
        // shared log, which a rotation would have synced.
        super::instrument::sync_wal(inner, &mut wal).map_err(|e| inner.log_sync_failed(e))?;
    }
    rotate(inner, &mut wal, family)?;
    Ok(family.view.read().imms.first().map(|m| m.log_number()))
}

/// Creates log file `number`, with room reserved for `reserve` bytes, and
/// makes its name durable.
pub(crate) fn create_log(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    reserve: u64,
) -> Result<(PathBuf, LogWriter)> {
    let path = log_path(dir, number);
    let file = fs.create(&path).ctx(&path)?;
    let mut writer = LogWriter::create(file, LogKind::Wal, number).ctx(&path)?;
    // Only speed depends on it: without the room, each sync also commits
    // the file's new size.
    if let Err(e) = writer.preallocate(reserve) {
        log::warn!("could not reserve room in {}: {e}", path.display());
    }
    fs.sync_dir(dir).ctx(dir)?;
    Ok((path, writer))
}

/// Room reserved in a new log: what it holds when the default family's
/// memtable fills, as RocksDB sizes its log preallocation (its
/// `write_buffer_size` plus a tenth), at most 256 MiB.
pub(crate) fn log_reserve(opts: &crate::options::Options) -> u64 {
    let size = opts.write_buffer_size as u64;
    (size + size / 10).min(256 << 20)
}
