//! Log replay at open: the write batches of the live logs, in order, into
//! memtables, with the checks that tell a write torn by a crash from
//! damage.
//!
//! Only the end of the newest log that holds data can be torn by a crash:
//! the engine syncs a log before it starts the next one, and after a failed
//! append it flushes every memtable before anything is written to a new log
//! (see `health`). So a damaged or incomplete last record in a log followed
//! by a later log with data is damage, and so is a record whose sequence
//! numbers do not follow the previous one's: a hole where acknowledged
//! writes were. The recovery mode decides what damage does: fail the open
//! (the default), stop there (point in time), or skip it and go on; skipped
//! and stopped-at damage is counted for [`DbStats`](crate::DbStats).
//!
//! Each column family has its own memtable here. A family's writes in logs
//! older than its own log number are already in its tables and are passed
//! over; writes to a family that was dropped are too.

use crate::batch::WriteBatch;
use crate::cf_options::ColumnFamilyOptions;
use crate::error::{Error, IoContext, Result};
use crate::memtable::MemTable;
use crate::options::{Options, WalRecoveryMode};
use crate::types::SeqNo;
use crate::wal::{LogKind, LogReader, ReadEvent};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::filenames::log_path;

/// One family being recovered.
pub(crate) struct ReplayFamily<'a> {
    /// Its writes in logs numbered below this are in its tables.
    pub(crate) log_number: u64,
    pub(crate) opts: &'a ColumnFamilyOptions,
    pub(crate) mem: Arc<MemTable>,
}

/// Replays logs into memtables. `flush` is called with each memtable that
/// fills up (and is then replaced by an empty one).
pub(crate) struct Replay<'a> {
    opts: &'a Options,
    pub(crate) families: BTreeMap<u32, ReplayFamily<'a>>,
    /// Every family id up to this was handed out: ids not in `families`
    /// below it were dropped.
    max_family_id: u32,
    /// The MANIFEST's last sequence number: the first replayed record may
    /// start at most one past it.
    manifest_last: SeqNo,
    /// Sequence number of the last write applied, if any.
    prev_last: Option<SeqNo>,
    /// Damage seen that a later record must answer for: under the default
    /// mode, a damaged end of a log is fine only if no data follows it.
    pending: Option<Error>,
    /// The last event was skipped damage, so a gap in sequence numbers
    /// after it is expected.
    after_damage: bool,
    stopped: bool,
    /// Damaged regions skipped or stopped at.
    pub(crate) damage: u64,
    pub(crate) last_seq: SeqNo,
}

impl<'a> Replay<'a> {
    pub(crate) fn new(
        opts: &'a Options,
        families: BTreeMap<u32, ReplayFamily<'a>>,
        max_family_id: u32,
        manifest_last: SeqNo,
    ) -> Replay<'a> {
        Replay {
            opts,
            families,
            max_family_id,
            manifest_last,
            prev_last: None,
            pending: None,
            after_damage: false,
            stopped: false,
            damage: 0,
            last_seq: manifest_last,
        }
    }

    /// Replays log `number`, calling `flush` with every memtable that
    /// fills up (and its family's id). Does nothing once point-in-time
    /// recovery has stopped.
    pub(crate) fn log(
        &mut self,
        number: u64,
        flush: &mut dyn FnMut(u32, &Arc<MemTable>) -> Result<()>,
    ) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let path = log_path(&self.opts.path, number);
        let data = self.opts.fs.read_all(&path).ctx(&path)?;
        let mut reader = LogReader::new(&data, LogKind::Wal);
        loop {
            match reader.next_event() {
                ReadEvent::Eof => return Ok(()),
                ReadEvent::TornTail { offset, reason } => {
                    if self.opts.wal_recovery_mode == WalRecoveryMode::AbsoluteConsistency {
                        return Err(Error::corruption(&path, offset, reason));
                    }
                    // Fine at the end of the last log with data; damage if
                    // a record follows (checked when one does).
                    self.pending = Some(Error::corruption(
                        &path,
                        offset,
                        format!("{reason}, and a later log holds more writes"),
                    ));
                    return Ok(());
                }
                ReadEvent::Corrupt { offset, reason } => {
                    self.damaged(Error::corruption(&path, offset, reason))?;
                    if self.stopped {
                        return Ok(());
                    }
                }
                ReadEvent::Record { offset, data } => {
                    let (first, batch) = WriteBatch::decode(&data)
                        .map_err(|reason| Error::corruption(&path, offset, reason))?;
                    if let Some(damage) = self.pending.take() {
                        self.damaged(damage)?;
                        if self.stopped {
                            return Ok(());
                        }
                    }
                    if batch.is_empty() {
                        // Written by an ingest: sequence numbers up to
                        // `first` were used by tables, not by the log.
                        if self.prev_last.is_none_or(|p| first > p) {
                            self.prev_last = Some(first);
                            self.last_seq = self.last_seq.max(first);
                        }
                        continue;
                    }
                    if let Some(e) = self.out_of_order(first, &path, offset) {
                        let backwards = self.prev_last.is_some_and(|p| first <= p);
                        self.damaged(e)?;
                        if self.stopped {
                            return Ok(());
                        }
                        if backwards {
                            // Never apply a record that does not come after
                            // the last one applied.
                            continue;
                        }
                    }
                    if let Some(id) = batch
                        .iter_cf()
                        .map(|(id, _)| id)
                        .find(|id| *id > self.max_family_id)
                    {
                        return Err(Error::corruption(
                            &path,
                            offset,
                            format!("record for column family {id}, which never existed"),
                        ));
                    }
                    let families = &self.families;
                    super::write::apply(&batch, first, |id, _| {
                        let f = families.get(&id)?;
                        (number >= f.log_number).then_some(&*f.mem)
                    });
                    let last = first + batch.len() as u64 - 1;
                    self.prev_last = Some(last);
                    self.last_seq = self.last_seq.max(last);
                    self.after_damage = false;
                    for (&id, f) in self.families.iter_mut() {
                        if f.mem.approximate_size() >= f.opts.write_buffer_size {
                            flush(id, &f.mem)?;
                            f.mem = Arc::new(MemTable::new(0, 0));
                        }
                    }
                }
            }
        }
    }

    /// Whether a record starting at `first` breaks the sequence: going
    /// backwards, or leaving a gap that no skipped damage explains.
    fn out_of_order(&self, first: SeqNo, path: &std::path::Path, offset: u64) -> Option<Error> {
        let expected = self.prev_last.map_or(self.manifest_last + 1, |p| p + 1);
        let problem = match self.prev_last {
            Some(p) if first <= p => format!(
                "record's sequence numbers start at {first}, not after the previous record's {p}"
            ),
            _ if first > expected && !self.after_damage => format!(
                "record starts at sequence number {first}, but {expected} was expected: \
                 acknowledged writes are missing"
            ),
            _ => return None,
        };
        Some(Error::corruption(path, offset, problem))
    }

    /// Handles damage by the recovery mode: fail, stop, or count and go on.
    fn damaged(&mut self, e: Error) -> Result<()> {
        match self.opts.wal_recovery_mode {
            WalRecoveryMode::TolerateCorruptedTailRecords
            | WalRecoveryMode::AbsoluteConsistency => Err(e),
            WalRecoveryMode::PointInTimeRecovery => {
                self.damage += 1;
                self.stopped = true;
                Ok(())
            }
            WalRecoveryMode::SkipAnyCorruptedRecords => {
                self.damage += 1;
                self.after_damage = true;
                Ok(())
            }
        }
    }
}
