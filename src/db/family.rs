//! One column family inside the engine: its options, its memtables and
//! version (the read view), and its own counters and compaction state.
//!
//! Families share the log, the MANIFEST, the sequence numbers, the table
//! and block caches and the background threads (see `DbInner`); everything
//! that makes an LSM tree is per family.

use crate::cf_options::ColumnFamilyOptions;
use crate::memtable::MemTable;
use crate::types::SeqNo;
use crate::version::Version;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What a reader needs to see one family: the memtables, newest first,
/// and the table files. Immutable once published; the write path, flushes
/// and compactions publish a new one (under the family's `view` write
/// lock, reading the current one there) to change it.
pub(crate) struct ReadView {
    /// The memtable taking writes.
    pub(crate) mem: Arc<MemTable>,
    /// Frozen memtables waiting for flush, newest first.
    pub(crate) imms: Vec<Arc<MemTable>>,
    /// The live table files.
    pub(crate) version: Arc<Version>,
}

/// Counters kept per family (the database-wide ones are in `Stats`).
#[derive(Default)]
pub(crate) struct FamilyStats {
    pub(crate) bytes_written: AtomicU64,
    pub(crate) bytes_flushed: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) trivial_moves: AtomicU64,
}

/// A column family.
pub(crate) struct Family {
    pub(crate) id: u32,
    /// Unique in the process: tells this family from one with the same id
    /// in another database (see `ColumnFamily`).
    pub(crate) uid: u64,
    pub(crate) name: Arc<str>,
    pub(crate) opts: ColumnFamilyOptions,
    pub(crate) view: RwLock<Arc<ReadView>>,
    pub(crate) stats: FamilyStats,
    /// Set once the family is dropped: its handles fail from then on.
    pub(crate) dropped: AtomicBool,
    /// Last-level files a rewrite in place left with sequence numbers that
    /// no reader needs (see `compaction::bottom_garbage`).
    pub(crate) settled_bottom: Mutex<HashSet<u64>>,
    /// The write stall condition last reported (see `events::note_stall`).
    pub(crate) stall: std::sync::atomic::AtomicU8,
}

impl Family {
    pub(crate) fn new(
        id: u32,
        name: Arc<str>,
        opts: ColumnFamilyOptions,
        mem: Arc<MemTable>,
        version: Arc<Version>,
    ) -> Family {
        Family {
            id,
            uid: crate::column_family::new_uid(),
            name,
            opts,
            view: RwLock::new(Arc::new(ReadView {
                mem,
                imms: Vec::new(),
                version,
            })),
            stats: FamilyStats::default(),
            dropped: AtomicBool::new(false),
            settled_bottom: Mutex::new(HashSet::new()),
            stall: super::events::new_stall_state(),
        }
    }

    /// The sequence number and view a new read uses, taken at one point.
    ///
    /// Both come from under the `view` read lock. A compaction drops the
    /// versions hidden at the sequence number it read when it started, and
    /// installs its output under the write lock: a reader that took its
    /// number before that start but its view after the install would find
    /// the versions it needs gone. Under the lock, a reader gets either the
    /// view before the install (which still holds every version) or the
    /// view after it with a number at least the compaction's. Writers
    /// publish a number only after its entries are in the memtable of the
    /// current view, so the view holds everything up to the number.
    pub(crate) fn current_view(&self, visible_seq: &AtomicU64) -> (SeqNo, Arc<ReadView>) {
        let view = self.view.read();
        let seq = visible_seq.load(Ordering::Acquire);
        #[cfg(feature = "internals")]
        crate::internals::read_view_pause();
        (seq, Arc::clone(&view))
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// The oldest log that may hold data of this family not yet in a
    /// table, leaving out `flushing` (whose table is being installed);
    /// `None` when the family holds nothing unflushed.
    pub(crate) fn oldest_unflushed_log(&self, flushing: Option<&Arc<MemTable>>) -> Option<u64> {
        let view = self.view.read();
        let oldest_imm = view
            .imms
            .iter()
            .rev()
            .find(|m| flushing.is_none_or(|f| !Arc::ptr_eq(m, f)));
        match oldest_imm {
            Some(m) => Some(m.log_number()),
            None if !view.mem.is_empty() => Some(view.mem.log_number()),
            None => None,
        }
    }

    /// The log number of the memtable after `imm` (the next newer frozen
    /// one, or the active one): every write of this family in an older log
    /// is in `imm` or an older table.
    pub(crate) fn log_after(&self, imm: &Arc<MemTable>) -> u64 {
        let view = self.view.read();
        let pos = view.imms.iter().position(|m| Arc::ptr_eq(m, imm));
        match pos {
            Some(p) if p > 0 => view.imms[p - 1].log_number(),
            _ => view.mem.log_number(),
        }
    }
}

/// The open families, by id.
pub(crate) type Families = BTreeMap<u32, Arc<Family>>;
