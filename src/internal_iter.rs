//! The cursor interface shared by every source of internal entries
//! (memtables, table files, the merging iterator).
//!
//! Keys are encoded internal keys (see [`crate::types`]) ordered by
//! [`compare_internal_keys`](crate::types::compare_internal_keys).

use crate::error::Result;

/// A cursor over internal entries in internal-key order. Same contract as
/// [`RawIterator`](crate::RawIterator), but keys carry their trailer and
/// every version of a user key is visible, tombstones included.
pub(crate) trait InternalIterator: Send {
    /// Moves to the first entry.
    fn seek_to_first(&mut self);
    /// Moves to the last entry.
    fn seek_to_last(&mut self);
    /// Moves to the first entry whose internal key is `>= ikey`.
    fn seek(&mut self, ikey: &[u8]);
    /// Moves to the last entry whose internal key is `<= ikey`.
    fn seek_for_prev(&mut self, ikey: &[u8]);
    /// Moves to the next entry. Only while `valid()`.
    fn next(&mut self);
    /// Moves to the previous entry. Only while `valid()`.
    fn prev(&mut self);
    /// True when positioned on an entry.
    fn valid(&self) -> bool;
    /// The current encoded internal key. Only while `valid()`.
    fn key(&self) -> &[u8];
    /// The current value (empty for tombstones). Only while `valid()`.
    fn value(&self) -> &[u8];
    /// The error that made the cursor invalid, if any.
    fn status(&self) -> Result<()>;
}
