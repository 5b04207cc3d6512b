//! User code the engine calls on a column family's data: the
//! [`MergeOperator`] that folds merge operands, and the
//! [`CompactionFilter`] that compactions consult.

/// Folds merge operands (written with [`DB::merge`](crate::DB::merge) or
/// [`WriteBatch::merge`](crate::WriteBatch::merge)) into a value, the way a
/// counter, a set or an append-only list would without a read before each
/// write.
///
/// Set one per column family (`ColumnFamilyOptions::merge_operator`,
/// `Options::merge_operator` for the default family). Its name is recorded
/// with the family: opening the database with a differently named operator
/// is refused, and reading a key that has operands with no operator set is
/// an [`Error::Merge`](crate::Error::Merge).
///
/// ```
/// use aidb::MergeOperator;
///
/// /// Adds 64-bit little-endian integers.
/// struct Add;
///
/// impl MergeOperator for Add {
///     fn name(&self) -> &str {
///         "add-u64"
///     }
///     fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
///         let num = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
///         let mut total = match existing {
///             Some(v) => num(v)?,
///             None => 0,
///         };
///         for op in operands {
///             total = total.wrapping_add(num(op)?);
///         }
///         Some(total.to_le_bytes().to_vec())
///     }
/// }
/// ```
pub trait MergeOperator: Send + Sync {
    /// A stable name, recorded with the family.
    fn name(&self) -> &str;

    /// The value of `key` after applying `operands` (oldest first) to
    /// `existing` (`None`: the key had no value). `None` means the operands
    /// cannot be applied: the read fails with `Error::Merge` (the operands
    /// are kept, never dropped).
    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>>;

    /// One operand equivalent to `operands` (oldest first), when the
    /// operator can combine operands without the value (for an associative
    /// operation). Compaction uses it to shrink runs of operands; `None`
    /// (the default) keeps them apart.
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        let _ = (key, operands);
        None
    }
}

/// What a [`CompactionFilter`] decides about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDecision {
    /// Keep the entry as it is.
    Keep,
    /// Remove the key (as a delete would: older versions are hidden too).
    Remove,
    /// Replace the value.
    ChangeValue(Vec<u8>),
}

/// Consulted by compactions for each value they rewrite, so that an
/// application can drop or rewrite data in the background (expired
/// sessions, a schema change). Set one per column family
/// (`ColumnFamilyOptions::compaction_filter`, `Options::compaction_filter`).
///
/// It is only called for the newest value of a key, and only when that
/// value is newer than every live snapshot: data a snapshot can still see
/// is never changed under it. It may run on several threads at once.
pub trait CompactionFilter: Send + Sync {
    /// Decides about `key` = `value`, found while compacting into `level`.
    fn filter(&self, level: usize, key: &[u8], value: &[u8]) -> FilterDecision;
}
