//! Whether the database takes writes, and how it gets back to taking them
//! after a failure.
//!
//! A failure that may leave the files in a state the engine no longer
//! knows stops writes; reads go on. What it takes to start again depends
//! on what failed:
//!
//! - [`Failure::Background`]: a flush or compaction failed before its
//!   MANIFEST edit (writing, syncing or reading a table). Its output files
//!   are removed and its inputs are untouched, so the work can simply run
//!   again: the background threads retry with back-off, and
//!   [`DB::resume`](crate::DB::resume) retries at once.
//! - [`Failure::Log`]: appending to the log, or starting a new log, failed.
//!   The log may end in part of a record, so nothing may be appended to it
//!   again: `resume` starts a new log and flushes every memtable, which
//!   makes the damaged log obsolete before any new write lands.
//! - [`Failure::Fatal`]: a failed fsync of the log (the kernel may have
//!   dropped the data it could not write, so no later sync proves
//!   anything), a failed MANIFEST write (which may have left part of a
//!   record), a damaged table found by a compaction, or a panic. Only
//!   recovery at open can sort these out; `resume` says so.

use super::{flush, write, DbInner};
use crate::error::{Error, Result};
use crate::version::VersionEdit;
use std::sync::Arc;

/// What kind of failure stopped writes, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Failure {
    Background,
    Log,
    Fatal,
}

/// Why writes are stopped.
pub(crate) struct Stopped {
    pub(crate) cause: Arc<Error>,
    pub(crate) failure: Failure,
}

impl DbInner {
    /// Stops writes because of `err`, unless a failure at least as severe
    /// already did. Returns `err` for the caller to pass on.
    pub(crate) fn stop_writes(&self, err: Error, failure: Failure) -> Error {
        {
            let mut stopped = self.stopped.lock();
            if stopped.as_ref().is_none_or(|s| s.failure < failure) {
                let cause = Arc::new(err.duplicate());
                super::events::background_error(self, &cause, failure);
                *stopped = Some(Stopped { cause, failure });
            }
        }
        if failure == Failure::Background {
            self.bg.schedule_retry();
        }
        // Stalled writers wait on the background condition: wake them so
        // they see the failure instead of waiting for work that stopped.
        self.bg.notify();
        err
    }

    /// Stops writes for good after a failed fsync of the log, and returns
    /// the error for the caller: `ReopenRequired`, because after a failed
    /// fsync the kernel may have dropped the data it could not write and
    /// report the next fsync as a success, so no later sync of this log
    /// (which AiDb never attempts) could prove anything; only recovery at
    /// open, from what is really on disk, can.
    pub(crate) fn log_sync_failed(&self, err: Error) -> Error {
        Error::ReopenRequired {
            cause: Arc::new(self.stop_writes(err, Failure::Fatal)),
        }
    }

    /// The failure class writes are stopped for, if they are.
    pub(crate) fn stopped_for(&self) -> Option<Failure> {
        self.stopped.lock().as_ref().map(|s| s.failure)
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if let Some(f) = &self.follower {
            return Err(Error::InvalidArgument(format!(
                "the database was opened {}: this handle takes no writes, \
                 flushes or compactions",
                if f.secondary {
                    "as a secondary (DB::open_secondary)"
                } else {
                    "read-only (DB::open_read_only)"
                }
            )));
        }
        match &*self.stopped.lock() {
            Some(s) => Err(Error::ReadOnly {
                cause: s.cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Gets writes going again after a retryable failure. The caller holds
    /// the flush slot (see `Background::claim_flush`), so no other flush
    /// runs meanwhile. On failure, writes stay stopped.
    pub(crate) fn recover(&self) -> Result<()> {
        let failure = match &*self.stopped.lock() {
            None => return Ok(()),
            Some(s) if s.failure == Failure::Fatal => {
                return Err(Error::ReopenRequired {
                    cause: s.cause.clone(),
                })
            }
            Some(s) => s.failure,
        };
        if failure == Failure::Log {
            // No commit is in flight while the log lock is held; new ones
            // are refused until the failure is cleared.
            let mut wal = self.wal.lock();
            write::switch_log(self, &mut wal)?;
        }
        for family in self.family_list() {
            while flush::flush_oldest(self, &family)? {}
        }
        if failure == Failure::Log {
            self.retire_old_logs()?;
        }
        let mut stopped = self.stopped.lock();
        // A failure during the flushes above may have made things worse.
        if stopped.as_ref().is_some_and(|s| s.failure <= failure) {
            if let Some(s) = stopped.take() {
                super::events::recovered(self, s.cause);
            }
        }
        drop(stopped);
        self.bg.recovered();
        Ok(())
    }

    /// Records in the MANIFEST that no log older than the ones families
    /// still need holds data, then removes them.
    fn retire_old_logs(&self) -> Result<()> {
        let mut versions = self.versions.lock();
        let oldest = self.oldest_live_log(None);
        if versions.log_number < oldest {
            let edit = VersionEdit {
                log_number: Some(oldest),
                ..VersionEdit::default()
            };
            versions
                .log_and_apply(
                    edit,
                    self.next_file_number
                        .load(std::sync::atomic::Ordering::Relaxed),
                    self.visible_seq.load(std::sync::atomic::Ordering::Acquire),
                    || self.new_file_number(),
                )
                .map_err(|e| self.stop_writes(e, Failure::Fatal))?;
        }
        drop(versions);
        flush::remove_logs_below(self, oldest);
        Ok(())
    }
}

/// A panic's message, for the error that reports it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
