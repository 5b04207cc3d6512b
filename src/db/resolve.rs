//! What a key's visible entries add up to: the newest value, unless a
//! point or range tombstone or the time to live hides it, with merge
//! operands folded in. Shared by point lookups and iterators; compaction
//! has its own rules (it must keep what snapshots see).

use crate::cf_options::ColumnFamilyOptions;
use crate::error::{Error, Result};
use crate::operators::MergeOperator;
use crate::ttl;
use crate::types::{SeqNo, ValueKind};
use std::sync::Arc;

/// A family's reading rules.
pub(crate) struct Resolver {
    merge: Option<Arc<dyn MergeOperator>>,
    /// The TTL in seconds, and the time reads compare it with.
    ttl: Option<(u64, u64)>,
    family: Arc<str>,
}

impl Resolver {
    pub(crate) fn new(opts: &ColumnFamilyOptions, family: &Arc<str>) -> Resolver {
        Resolver {
            merge: opts.merge_operator.clone(),
            ttl: opts.ttl.map(|t| (t.as_secs(), ttl::now())),
            family: family.clone(),
        }
    }

    /// Whether stored values end with a write time.
    pub(crate) fn has_ttl(&self) -> bool {
        self.ttl.is_some()
    }

    /// The user's part of a stored value, or `None` when it has expired.
    pub(crate) fn live<'v>(&self, stored: &'v [u8]) -> Option<&'v [u8]> {
        match self.ttl {
            None => Some(stored),
            Some((ttl, now)) => match ttl::split(stored) {
                Some((value, time)) if !ttl::expired(time, ttl, now) => Some(value),
                Some(_) => None,
                // Too short to carry a time: damage; hide it rather than
                // return bytes that are not the user's.
                None => None,
            },
        }
    }

    /// Folds `operands` (newest first) into `base`.
    pub(crate) fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        operands: &[Vec<u8>],
    ) -> Result<Vec<u8>> {
        let Some(op) = &self.merge else {
            return Err(Error::Merge(format!(
                "column family {:?} holds merge operands for a key but has no merge operator \
                 (set one in its options when opening the database)",
                self.family
            )));
        };
        let oldest_first: Vec<&[u8]> = operands.iter().rev().map(Vec::as_slice).collect();
        op.full_merge(key, base, &oldest_first).ok_or_else(|| {
            Error::Merge(format!(
                "merge operator {:?} of column family {:?} refused the operands of a key",
                op.name(),
                self.family
            ))
        })
    }
}

/// Where the fold of one key stands.
pub(crate) enum Fold<'v> {
    /// Give it more (older) entries.
    More,
    /// Decided without operands: the value, or absent.
    Plain(Option<&'v [u8]>),
    /// Decided, with operands collected: fold them into this base.
    Merge(Option<&'v [u8]>),
}

/// Collects one key's entries, newest first.
#[derive(Default)]
pub(crate) struct KeyFold {
    /// The newest range tombstone covering the key, at the read's number.
    pub(crate) covered_below: SeqNo,
    /// Operands so far, newest first (user parts).
    pub(crate) operands: Vec<Vec<u8>>,
}

impl KeyFold {
    pub(crate) fn start(&mut self, covered_below: SeqNo) {
        self.covered_below = covered_below;
        self.operands.clear();
    }

    /// Takes the next older visible entry of the key.
    pub(crate) fn feed<'v>(
        &mut self,
        r: &Resolver,
        seq: SeqNo,
        kind: ValueKind,
        stored: &'v [u8],
    ) -> Fold<'v> {
        let base = if seq < self.covered_below {
            // A newer range tombstone deleted this and everything older.
            None
        } else {
            match kind {
                ValueKind::Delete => None,
                ValueKind::Put => r.live(stored),
                ValueKind::Merge => {
                    if let Some(v) = r.live(stored) {
                        self.operands.push(v.to_vec());
                    }
                    return Fold::More;
                }
            }
        };
        self.end(base)
    }

    /// No older entry: decides with what was collected.
    pub(crate) fn end<'v>(&self, base: Option<&'v [u8]>) -> Fold<'v> {
        if self.operands.is_empty() {
            Fold::Plain(base)
        } else {
            Fold::Merge(base)
        }
    }
}
