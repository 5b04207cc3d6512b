//! Statistics on the user-facing paths: point lookups, writes and
//! iterators are wrapped here, at the API boundary, so the paths
//! themselves (`read`, `write`) stay as they are. See `crate::statistics`
//! for how recording stays cheap.

use super::DbInner;
use crate::batch::{BatchOp, WriteBatch};
use crate::error::Result;
use crate::iterator::RawIterator;
use crate::statistics::{timed, Sampled, STEP_SAMPLE};
use std::sync::Arc;
use std::time::Instant;

/// Fsyncs the log of `wal`, counting and timing it.
pub(crate) fn sync_wal(inner: &DbInner, wal: &mut super::write::WalState) -> Result<()> {
    inner.stats.rec.time_wal_sync(|| wal.sync())
}

/// Runs a point lookup, counting and timing it.
pub(crate) fn get(
    inner: &DbInner,
    lookup: impl FnOnce() -> Result<Option<Vec<u8>>>,
) -> Result<Option<Vec<u8>>> {
    if !inner.stats.per_op {
        return lookup();
    }
    let rec = &inner.stats.rec;
    let result = if timed(Sampled::Get) {
        let start = Instant::now();
        let result = lookup();
        rec.get.record_since(start);
        result
    } else {
        lookup()
    };
    rec.keys_read.add(1);
    if let Ok(Some(v)) = &result {
        rec.keys_found.add(1);
        rec.bytes_read.add(v.len() as u64);
    }
    result
}

/// Runs a write of `batch`, counting its operations and bytes and timing
/// it (a failed write is timed but not counted).
pub(crate) fn write(
    inner: &DbInner,
    batch: WriteBatch,
    write: impl FnOnce(WriteBatch) -> Result<()>,
) -> Result<()> {
    if !inner.stats.per_op {
        return write(batch);
    }
    let start = timed(Sampled::Write).then(Instant::now);
    let keys = batch.len() as u64;
    let bytes: u64 = batch
        .iter()
        .map(|op| match op {
            BatchOp::Put { key, value } => key.len() + value.len(),
            BatchOp::Delete { key } => key.len(),
            BatchOp::Merge { key, operand } => key.len() + operand.len(),
            BatchOp::DeleteRange { start, end } => start.len() + end.len(),
        } as u64)
        .sum();
    let result = write(batch);
    let rec = &inner.stats.rec;
    if let Some(start) = start {
        rec.write.record_since(start);
    }
    if result.is_ok() {
        rec.writes.add(1);
        rec.keys_written.add(keys);
        rec.bytes_written.add(bytes);
    }
    result
}

/// Counts are published to the shared counters at least this often.
const PUBLISH_EVERY: u64 = 1024;

/// An iterator that counts and times what passes through it. Counts are
/// kept in the iterator and published every `PUBLISH_EVERY` moves and when
/// it is dropped, so a step costs no shared write.
pub(crate) struct StatsIterator<I: RawIterator> {
    iter: I,
    inner: Arc<DbInner>,
    seeks: u64,
    steps: u64,
    bytes: u64,
    unpublished: u64,
}

impl<I: RawIterator> StatsIterator<I> {
    pub(crate) fn new(iter: I, inner: Arc<DbInner>) -> StatsIterator<I> {
        StatsIterator {
            iter,
            inner,
            seeks: 0,
            steps: 0,
            bytes: 0,
            unpublished: 0,
        }
    }

    fn landed(&mut self) {
        if self.iter.valid() {
            self.bytes += (self.iter.key().len() + self.iter.value().len()) as u64;
        }
        self.unpublished += 1;
        if self.unpublished >= PUBLISH_EVERY {
            self.publish();
        }
    }

    fn seek_with(&mut self, f: impl FnOnce(&mut I)) {
        let start = Instant::now();
        f(&mut self.iter);
        self.inner.stats.rec.seek.record_since(start);
        self.seeks += 1;
        self.landed();
    }

    fn step_with(&mut self, f: impl FnOnce(&mut I)) {
        // A step costs about as much as reading the clock twice: time one
        // in STEP_SAMPLE.
        if self.steps.is_multiple_of(STEP_SAMPLE) {
            let start = Instant::now();
            f(&mut self.iter);
            self.inner.stats.rec.next.record_since(start);
        } else {
            f(&mut self.iter);
        }
        self.steps += 1;
        self.landed();
    }

    fn publish(&mut self) {
        let rec = &self.inner.stats.rec;
        if self.seeks > 0 {
            rec.iter_seeks.add(std::mem::take(&mut self.seeks));
        }
        if self.steps > 0 {
            rec.iter_steps.add(std::mem::take(&mut self.steps));
        }
        if self.bytes > 0 {
            rec.iter_bytes_read.add(std::mem::take(&mut self.bytes));
        }
        self.unpublished = 0;
    }
}

impl<I: RawIterator> Drop for StatsIterator<I> {
    fn drop(&mut self) {
        self.publish();
    }
}

impl<I: RawIterator> RawIterator for StatsIterator<I> {
    fn seek_to_first(&mut self) {
        self.seek_with(|i| i.seek_to_first());
    }
    fn seek_to_last(&mut self) {
        self.seek_with(|i| i.seek_to_last());
    }
    fn seek(&mut self, key: &[u8]) {
        self.seek_with(|i| i.seek(key));
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        self.seek_with(|i| i.seek_for_prev(key));
    }
    fn next(&mut self) {
        self.step_with(|i| i.next());
    }
    fn prev(&mut self) {
        self.step_with(|i| i.prev());
    }
    fn valid(&self) -> bool {
        self.iter.valid()
    }
    fn key(&self) -> &[u8] {
        self.iter.key()
    }
    fn value(&self) -> &[u8] {
        self.iter.value()
    }
    fn status(&self) -> Result<()> {
        self.iter.status()
    }
}
