//! What the engine reports about its background work: the hooks that
//! flushes, compactions, the write path, failures and file deletion call.
//! Each hook does three things: counts into the statistics, logs through
//! the `log` facade (summaries at info level, targets `aidb::flush`,
//! `aidb::compaction`, `aidb::recovery`, `aidb::stall`, `aidb::error`,
//! `aidb::files`), and hands an event to the listeners.
//!
//! Listeners run on a thread of their own (`aidb-events`), fed through a
//! channel: a hook only sends, so it may be called with engine locks held,
//! and a callback never runs under one (see `crate::listener`). The thread
//! exists only when there are listeners; it ends when the database and
//! every file it still tracks are gone (the last sender drops).

use super::family::{Family, ReadView};
use super::filenames::table_path;
use super::health::{panic_message, Failure};
use super::DbInner;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::Error;
use crate::listener::{
    BackgroundErrorInfo, CompactionJobInfo, CompactionReason, ErrorRecovery, EventListener,
    FlushJobInfo, RecoveryInfo, TableFile, TableFileCreationInfo, TableFileDeletionInfo,
    TableFileReason, WriteStallCondition, WriteStallInfo,
};
use crate::memtable::MemTable;
use crate::types::user_key;
use crate::version::{FileMeta, LiveFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

enum Event {
    FlushBegin(FlushJobInfo),
    FlushCompleted(FlushJobInfo),
    CompactionBegin(CompactionJobInfo),
    CompactionCompleted(CompactionJobInfo),
    TableFileCreated(TableFileCreationInfo),
    TableFileDeleted(TableFileDeletionInfo),
    Stall(WriteStallInfo),
    BackgroundError(BackgroundErrorInfo),
    Recovered(RecoveryInfo),
}

enum Msg {
    Event(Box<Event>),
    /// Answered once every event sent before it was delivered.
    Barrier(mpsc::Sender<()>),
}

/// The listeners of one database and the thread that calls them.
pub(crate) struct Events {
    dir: PathBuf,
    /// `None` without listeners: events are then only counted and logged.
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<ThreadId>,
    next_job: AtomicU64,
    panics: Arc<AtomicU64>,
}

impl Events {
    pub(crate) fn new(dir: &Path, listeners: &[Arc<dyn EventListener>]) -> Events {
        let panics = Arc::new(AtomicU64::new(0));
        let mut events = Events {
            dir: dir.to_path_buf(),
            tx: None,
            thread: None,
            next_job: AtomicU64::new(1),
            panics: panics.clone(),
        };
        if listeners.is_empty() {
            return events;
        }
        let (tx, rx) = mpsc::channel::<Msg>();
        let listeners = listeners.to_vec();
        let spawned = std::thread::Builder::new()
            .name("aidb-events".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Event(event) => deliver(&listeners, &event, &panics),
                        Msg::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => {
                events.thread = Some(handle.thread().id());
                events.tx = Some(tx);
            }
            // Without a thread the listeners get nothing; the engine works.
            Err(e) => log::error!(target: "aidb::error", "no thread for event listeners: {e}"),
        }
        events
    }

    fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Event(Box::new(event)));
        }
    }

    fn has_listeners(&self) -> bool {
        self.tx.is_some()
    }

    /// Waits until every event sent so far was delivered (at close). Not
    /// from a callback: the thread would wait for itself.
    pub(crate) fn drain(&self) {
        let Some(tx) = &self.tx else { return };
        if Some(std::thread::current().id()) == self.thread {
            return;
        }
        let (done_tx, done_rx) = mpsc::channel();
        if tx.send(Msg::Barrier(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    pub(crate) fn listener_panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    fn new_job(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::Relaxed)
    }

    /// A table file was deleted (called by the version's deleter).
    pub(crate) fn table_deleted(&self, number: u64, result: std::io::Result<()>) {
        let path = table_path(&self.dir, number);
        let error = result.err().map(|e| e.to_string());
        match &error {
            None => log::debug!(target: "aidb::files", "deleted table {}", path.display()),
            Some(e) => log::warn!(
                target: "aidb::files",
                "could not delete table {} (the next open will): {e}",
                path.display()
            ),
        }
        if self.has_listeners() {
            self.send(Event::TableFileDeleted(TableFileDeletionInfo {
                file_number: number,
                path,
                error,
            }));
        }
    }
}

fn deliver(listeners: &[Arc<dyn EventListener>], event: &Event, panics: &AtomicU64) {
    for l in listeners {
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match event {
            Event::FlushBegin(i) => l.on_flush_begin(i),
            Event::FlushCompleted(i) => l.on_flush_completed(i),
            Event::CompactionBegin(i) => l.on_compaction_begin(i),
            Event::CompactionCompleted(i) => l.on_compaction_completed(i),
            Event::TableFileCreated(i) => l.on_table_file_created(i),
            Event::TableFileDeleted(i) => l.on_table_file_deleted(i),
            Event::Stall(i) => l.on_stall_conditions_changed(i),
            Event::BackgroundError(i) => l.on_background_error(i),
            Event::Recovered(i) => l.on_error_recovery_completed(i),
        }));
        if let Err(panic) = call {
            panics.fetch_add(1, Ordering::Relaxed);
            log::error!(
                target: "aidb::error",
                "an event listener panicked (ignored): {}",
                panic_message(&*panic)
            );
        }
    }
}

/// The public description of a table file.
pub(crate) fn table_file(dir: &Path, level: usize, meta: &FileMeta) -> TableFile {
    TableFile {
        number: meta.number,
        path: table_path(dir, meta.number),
        level,
        size: meta.size,
        smallest_key: user_key(&meta.smallest).to_vec(),
        largest_key: user_key(&meta.largest).to_vec(),
        smallest_seq: meta.smallest_seq,
        largest_seq: meta.largest_seq,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A flush in progress (see `flush::flush_oldest`).
pub(crate) struct FlushJob {
    info: FlushJobInfo,
    start: Instant,
}

impl FlushJob {
    /// Starts reporting the flush of `imm` of `family`.
    pub(crate) fn begin(inner: &DbInner, family: &Family, imm: &MemTable) -> FlushJob {
        let info = FlushJobInfo {
            column_family: family.name.to_string(),
            job_id: inner.events.new_job(),
            memtable_bytes: imm.approximate_size() as u64,
            output: None,
            duration: Duration::ZERO,
        };
        if inner.events.has_listeners() {
            inner.events.send(Event::FlushBegin(info.clone()));
        }
        FlushJob {
            info,
            start: Instant::now(),
        }
    }

    /// The flush wrote its table (synced), or none (`None`).
    pub(crate) fn wrote(&mut self, inner: &DbInner, meta: Option<&FileMeta>) {
        let Some(meta) = meta else { return };
        let file = table_file(&inner.dir, 0, meta);
        if inner.events.has_listeners() {
            inner
                .events
                .send(Event::TableFileCreated(TableFileCreationInfo {
                    column_family: self.info.column_family.clone(),
                    job_id: self.info.job_id,
                    reason: TableFileReason::Flush,
                    file: file.clone(),
                }));
        }
        self.info.output = Some(file);
    }

    /// The flush's table is installed.
    pub(crate) fn completed(mut self, inner: &DbInner) {
        self.info.duration = self.start.elapsed();
        let rec = &inner.stats.rec;
        let size = self.info.output.as_ref().map_or(0, |t| t.size);
        rec.flushes.fetch_add(1, Ordering::Relaxed);
        rec.flush_bytes_written.fetch_add(size, Ordering::Relaxed);
        rec.flush.record(self.info.duration.as_nanos() as u64);
        let i = &self.info;
        match &i.output {
            Some(t) => log::info!(
                target: "aidb::flush",
                "[{}] flush job {}: {} bytes of memtable to table {} (level 0, {} bytes, \
                 sequence numbers {}..={}) in {:.1} ms",
                i.column_family,
                i.job_id,
                i.memtable_bytes,
                t.number,
                t.size,
                t.smallest_seq,
                t.largest_seq,
                ms(i.duration)
            ),
            None => log::info!(
                target: "aidb::flush",
                "[{}] flush job {}: memtable needed no table, {:.1} ms",
                i.column_family,
                i.job_id,
                ms(i.duration)
            ),
        }
        if inner.events.has_listeners() {
            inner.events.send(Event::FlushCompleted(self.info));
        }
    }
}

/// A compaction in progress (see `compaction::execute`).
pub(crate) struct CompactionJob {
    info: CompactionJobInfo,
    start: Instant,
}

impl CompactionJob {
    /// Starts reporting a compaction of `inputs` (from `level`) and `next`
    /// (from `out_level`) of `family` into `out_level`. `manual` is a
    /// `compact_range`; `trivial` says the inputs move down as they are
    /// (`Compaction::is_move`).
    pub(crate) fn begin(
        inner: &DbInner,
        family: &Family,
        c: &super::compaction::Compaction,
        manual: bool,
        trivial: bool,
    ) -> CompactionJob {
        let reason = if manual {
            CompactionReason::Manual
        } else if c.out_level == c.level {
            CompactionReason::BottommostGarbage
        } else if c.level == 0 {
            CompactionReason::Level0FileCount
        } else {
            CompactionReason::LevelSize
        };
        let files = |files: &[Arc<LiveFile>], level: usize| {
            files
                .iter()
                .map(|f| table_file(&inner.dir, level, &f.meta))
                .collect::<Vec<_>>()
        };
        let mut inputs = files(&c.inputs, c.level);
        inputs.extend(files(&c.next, c.out_level));
        let info = CompactionJobInfo {
            column_family: family.name.to_string(),
            job_id: inner.events.new_job(),
            reason,
            input_level: c.level,
            output_level: c.out_level,
            bytes_read: if trivial {
                0
            } else {
                inputs.iter().map(|t| t.size).sum()
            },
            inputs,
            outputs: Vec::new(),
            trivial_move: trivial,
            bytes_written: 0,
            duration: Duration::ZERO,
        };
        if inner.events.has_listeners() {
            inner.events.send(Event::CompactionBegin(info.clone()));
        }
        CompactionJob {
            info,
            start: Instant::now(),
        }
    }

    /// The compaction wrote (and synced) `outputs`.
    pub(crate) fn wrote(&mut self, inner: &DbInner, outputs: &[FileMeta]) {
        let level = self.info.output_level;
        for meta in outputs {
            let file = table_file(&inner.dir, level, meta);
            self.info.bytes_written += file.size;
            if inner.events.has_listeners() {
                inner
                    .events
                    .send(Event::TableFileCreated(TableFileCreationInfo {
                        column_family: self.info.column_family.clone(),
                        job_id: self.info.job_id,
                        reason: TableFileReason::Compaction,
                        file: file.clone(),
                    }));
            }
            self.info.outputs.push(file);
        }
    }

    /// The compaction is installed.
    pub(crate) fn completed(mut self, inner: &DbInner) {
        self.info.duration = self.start.elapsed();
        if self.info.trivial_move {
            let level = self.info.output_level;
            self.info.outputs = self.info.inputs.clone();
            for t in &mut self.info.outputs {
                t.level = level;
            }
        }
        let rec = &inner.stats.rec;
        let i = &self.info;
        rec.compactions.fetch_add(1, Ordering::Relaxed);
        if i.trivial_move {
            rec.trivial_moves.fetch_add(1, Ordering::Relaxed);
        }
        rec.compaction_bytes_read
            .fetch_add(i.bytes_read, Ordering::Relaxed);
        rec.compaction_bytes_written
            .fetch_add(i.bytes_written, Ordering::Relaxed);
        rec.compaction.record(i.duration.as_nanos() as u64);
        let numbers = |files: &[TableFile]| {
            files
                .iter()
                .map(|t| t.number.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        if i.trivial_move {
            log::info!(
                target: "aidb::compaction",
                "[{}] compaction job {} ({:?}): moved table {} from level {} to level {}",
                i.column_family,
                i.job_id,
                i.reason,
                numbers(&i.inputs),
                i.input_level,
                i.output_level
            );
        } else {
            log::info!(
                target: "aidb::compaction",
                "[{}] compaction job {} ({:?}): level {} -> {}, {} tables [{}] ({} bytes) \
                 into {} tables [{}] ({} bytes) in {:.1} ms",
                i.column_family,
                i.job_id,
                i.reason,
                i.input_level,
                i.output_level,
                i.inputs.len(),
                numbers(&i.inputs),
                i.bytes_read,
                i.outputs.len(),
                numbers(&i.outputs),
                i.bytes_written,
                ms(i.duration)
            );
        }
        if inner.events.has_listeners() {
            inner.events.send(Event::CompactionCompleted(self.info));
        }
    }
}

/// Per-family stall state, stored in `Family::stall`.
fn stall_code(c: WriteStallCondition) -> u8 {
    match c {
        WriteStallCondition::Normal => 0,
        WriteStallCondition::Delayed => 1,
        _ => 2,
    }
}

fn stall_of(code: u8) -> WriteStallCondition {
    match code {
        0 => WriteStallCondition::Normal,
        1 => WriteStallCondition::Delayed,
        _ => WriteStallCondition::Stopped,
    }
}

/// The condition the write path applies to a family with `view` (as
/// `write::make_room_in` decides it).
pub(crate) fn stall_condition(opts: &ColumnFamilyOptions, view: &ReadView) -> WriteStallCondition {
    let l0 = view.version.levels[0].len();
    let full = view.mem.approximate_size() >= opts.write_buffer_size;
    if l0 >= opts.level0_stop_writes_trigger
        || (full && view.imms.len() + 1 >= opts.max_write_buffer_number)
    {
        WriteStallCondition::Stopped
    } else if l0 >= opts.level0_slowdown_writes_trigger {
        WriteStallCondition::Delayed
    } else {
        WriteStallCondition::Normal
    }
}

/// Called by the write path for every commit group with the view it is
/// about to check: reports a change of the family's stall condition. The
/// common case is one atomic load.
pub(crate) fn note_stall(inner: &DbInner, family: &Family, view: &ReadView) {
    let now = stall_code(stall_condition(&family.opts, view));
    let before = family.stall.load(Ordering::Relaxed);
    if now == before || family.stall.swap(now, Ordering::Relaxed) == now {
        return;
    }
    let info = WriteStallInfo {
        column_family: family.name.to_string(),
        condition: stall_of(now),
        previous: stall_of(before),
    };
    let l0 = view.version.levels[0].len();
    match info.condition {
        WriteStallCondition::Normal => log::info!(
            target: "aidb::stall",
            "[{}] writes no longer held back ({} level-0 files, {} memtables waiting)",
            info.column_family,
            l0,
            view.imms.len()
        ),
        c => log::warn!(
            target: "aidb::stall",
            "[{}] writes {}: {} level-0 files, {} memtables waiting for flush",
            info.column_family,
            if c == WriteStallCondition::Delayed {
                "slowed down"
            } else {
                "stopped"
            },
            l0,
            view.imms.len()
        ),
    }
    if inner.events.has_listeners() {
        inner.events.send(Event::Stall(info));
    }
}

/// A failure stopped writes (called by `DbInner::stop_writes` when it
/// changes the state).
pub(crate) fn background_error(inner: &DbInner, error: &Arc<Error>, failure: Failure) {
    let recovery = match failure {
        Failure::Background => ErrorRecovery::Automatic,
        Failure::Log => ErrorRecovery::Resume,
        Failure::Fatal => ErrorRecovery::Reopen,
    };
    inner
        .stats
        .rec
        .background_errors
        .fetch_add(1, Ordering::Relaxed);
    log::error!(
        target: "aidb::error",
        "writes stopped ({}): {error}",
        match recovery {
            ErrorRecovery::Automatic => "retried in the background; DB::resume retries at once",
            ErrorRecovery::Resume => "DB::resume starts a new log once the cause is fixed",
            _ => "close and reopen the database",
        }
    );
    if inner.events.has_listeners() {
        inner
            .events
            .send(Event::BackgroundError(BackgroundErrorInfo {
                error: error.clone(),
                recovery,
            }));
    }
}

/// Writes are accepted again after `error`.
pub(crate) fn recovered(inner: &DbInner, error: Arc<Error>) {
    log::info!(target: "aidb::recovery", "writes resumed after: {error}");
    if inner.events.has_listeners() {
        inner.events.send(Event::Recovered(RecoveryInfo { error }));
    }
}

/// The summary of an open: what recovery found and did.
pub(crate) fn opened(inner: &DbInner, logs_replayed: usize, tables_from_logs: usize) {
    if !log::log_enabled!(target: "aidb::recovery", log::Level::Info) {
        return;
    }
    let families = inner.family_list();
    let (mut tables, mut bytes) = (0usize, 0u64);
    for f in &families {
        let view = f.view.read().clone();
        for file in view.version.levels.iter().flatten() {
            tables += 1;
            bytes += file.meta.size;
        }
    }
    let damage = inner.stats.log_damage_skipped.load(Ordering::Relaxed);
    log::info!(
        target: "aidb::recovery",
        "opened {}: {} column families, {} tables ({} bytes); replayed {} logs into {} \
         level-0 tables; last sequence number {}{}",
        inner.dir.display(),
        families.len(),
        tables,
        bytes,
        logs_replayed,
        tables_from_logs,
        inner.visible_seq.load(Ordering::Acquire),
        if damage > 0 {
            format!("; {damage} damaged places in the logs skipped (writes there lost)")
        } else {
            String::new()
        }
    );
}

/// The stall state a new family starts with.
pub(crate) fn new_stall_state() -> AtomicU8 {
    AtomicU8::new(stall_code(WriteStallCondition::Normal))
}
