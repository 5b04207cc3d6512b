//! The engine's side of transactions: the conflict check a commit runs
//! atomically with its write, and the read a pessimistic transaction makes
//! of a key it has just locked.
//!
//! A transaction hands its commit to the write path with a
//! [`ConflictCheck`]: the keys it wrote or read for update, each with the
//! sequence number after which no other write may have changed it. The
//! commit-group leader runs the check with the log lock held, just before
//! it appends the group, so nothing can land between the check and the
//! write (see `write::screen`). A key has changed when its newest entry —
//! value or tombstone, in a memtable or a table — has a larger sequence
//! number, or when a member of the same group queued ahead of the
//! transaction writes it (that member gets the smaller sequence numbers).
//!
//! Why the newest entry is still there to see: the transaction holds a
//! snapshot at or below every `since`, and compaction neither drops the
//! newest entry of a key nor zeroes the sequence number of an entry newer
//! than the oldest snapshot (see `compaction`). And because the entries
//! of one key get older from memtables down through the levels, a table
//! whose largest sequence number is at most `since` cannot decide the
//! answer and is skipped: a transaction checked soon after it started
//! reads no table at all.

use super::family::Family;
use super::{read, DbInner};
use crate::batch::{BatchOp, WriteBatch};
use crate::error::{Error, Result};
use crate::types::{LookupKey, SeqNo, MAX_SEQNO};
use std::collections::HashSet;
use std::sync::Arc;

/// What a commit must re-check under the log lock.
pub(crate) struct ConflictCheck {
    /// `(family id, key, since)`: the commit may go ahead only if no write
    /// with a sequence number above `since` changed the key.
    pub(crate) keys: Vec<(u32, Vec<u8>, SeqNo)>,
    /// The transaction held each key's lock from `since` on (pessimistic).
    pub(crate) locked: bool,
}

/// The keys written by the members of a commit group accepted so far,
/// built only when a member with a check follows others.
#[derive(Default)]
pub(crate) struct EarlierWrites {
    keys: HashSet<(u32, Vec<u8>)>,
    /// `(family id, start, end)` of their range deletions: each changes
    /// every key in `start..end`.
    ranges: Vec<(u32, Vec<u8>, Vec<u8>)>,
    built: bool,
}

impl EarlierWrites {
    /// The writes, taken from `merged` (every accepted batch so far) the
    /// first time they are needed.
    pub(crate) fn built(&mut self, merged: &WriteBatch) -> &EarlierWrites {
        if !self.built {
            self.built = true;
            self.add(merged);
        }
        self
    }

    /// Whether one of the accepted batches writes `key` of family `id`
    /// (a put, delete or merge of it, or a range deletion covering it).
    fn touches(&self, id: u32, key: &[u8]) -> bool {
        (!self.keys.is_empty() && self.keys.contains(&(id, key.to_vec())))
            || self
                .ranges
                .iter()
                .any(|(f, start, end)| *f == id && start.as_slice() <= key && key < end.as_slice())
    }

    /// Notes the keys of `batch`, accepted into the group (nothing to do
    /// until the set is built: it is built from the merged batch).
    pub(crate) fn accept(&mut self, batch: &WriteBatch) {
        if self.built {
            self.add(batch);
        }
    }

    fn add(&mut self, batch: &WriteBatch) {
        for (family, op) in batch.iter_cf() {
            match op {
                BatchOp::DeleteRange { start, end } => {
                    self.ranges.push((family, start.to_vec(), end.to_vec()))
                }
                _ => {
                    self.keys.insert((family, op.key().to_vec()));
                }
            }
        }
    }
}

/// The family with id `id`, if it is not dropped.
fn family(inner: &DbInner, id: u32) -> Result<Arc<Family>> {
    if id == 0 {
        return Ok(inner.default.clone());
    }
    inner.families.read().get(&id).cloned().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the transaction uses column family id {id}, which was dropped"
        ))
    })
}

/// Runs `check`: `Err(Error::Conflict)` when a key changed, another error
/// when a key could not be looked up (a damaged table, a dropped family).
/// The caller holds the log lock; `earlier` are the keys of the group
/// members ahead of this one; `unlocked_seq` is the last sequence number
/// written without key locks (`WalState::unlocked_seq`).
///
/// A locked key needs no lookup when nothing lock-free was written after
/// its `since`: every write since then came from a pessimistic commit,
/// which held the lock of each key it wrote, and this transaction has
/// held this key's lock all along. (Lock-free writers in this group are
/// in `earlier`.) This saves a pessimistic commit its memtable searches.
pub(crate) fn verify(
    inner: &DbInner,
    check: &ConflictCheck,
    earlier: &EarlierWrites,
    unlocked_seq: SeqNo,
) -> Result<()> {
    let mut current: Option<Arc<Family>> = None;
    for (id, key, since) in &check.keys {
        let f = match current.take() {
            Some(f) if f.id == *id => f,
            _ => family(inner, *id)?,
        };
        if earlier.touches(*id, key) {
            return Err(Error::Conflict);
        }
        if check.locked && unlocked_seq <= *since {
            current = Some(f);
            continue;
        }
        if changed_since(inner, &f, key, *since)? {
            return Err(Error::Conflict);
        }
        current = Some(f);
    }
    Ok(())
}

/// Whether the newest entry of `key` in `family` — a value, tombstone or
/// merge operand of the key, or a range tombstone covering it — was
/// written after `since`. (A range deletion counts even when the key had
/// no value, as in RocksDB: the check looks at sequence numbers only.)
pub(crate) fn changed_since(
    inner: &DbInner,
    family: &Family,
    key: &[u8],
    since: SeqNo,
) -> Result<bool> {
    let view = family.view.read().clone();
    let lookup = LookupKey::new(key, MAX_SEQNO);
    for mem in std::iter::once(&view.mem).chain(view.imms.iter()) {
        if mem.max_covering(key, MAX_SEQNO) > since {
            return Ok(true);
        }
        if let Some(seq) = mem.newest_seq(&lookup) {
            return Ok(seq > since);
        }
    }
    let version = &view.version;
    for level in 0..version.levels.len() {
        for file in version.files_for_key(level, key) {
            // Nothing in it is newer than `since`; and if it holds the key,
            // every entry of the key below it is older still.
            if file.meta.largest_seq <= since {
                continue;
            }
            let table = inner.table_cache.get_ref(file)?;
            if table.max_covering(key, MAX_SEQNO) > since {
                return Ok(true);
            }
            if let Some((seq, _, _)) = table.lookup(&lookup)? {
                return Ok(seq > since);
            }
        }
    }
    Ok(false)
}

/// The newest value of `key` in `family` and the sequence number it was
/// read at (a pessimistic transaction's `get_for_update`, after locking).
pub(crate) fn get_latest(
    inner: &DbInner,
    family: &Family,
    key: &[u8],
) -> Result<(SeqNo, Option<Vec<u8>>)> {
    inner.check_open()?;
    if family.is_dropped() {
        return Err(Error::InvalidArgument(format!(
            "column family {:?} was dropped",
            family.name
        )));
    }
    let (seq, view) = family.current_view(&inner.visible_seq);
    Ok((seq, read::get(inner, family, &view, key, seq)?))
}
