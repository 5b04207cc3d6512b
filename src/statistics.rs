//! Engine statistics: counters and latency histograms, from
//! [`DB::statistics`](crate::DB::statistics).
//!
//! The engine records into a [`Recorder`] on its hot paths without any
//! shared lock: every counter and histogram is split into per-thread
//! stripes (see `counter`), so concurrent readers and writers bump
//! different cache lines, and a snapshot sums the stripes. Latencies are
//! measured with `Instant` (two clock reads per operation timed); point
//! lookups and writes are timed one in [`OP_SAMPLE`] per thread and
//! iterator steps one in [`STEP_SAMPLE`], since a clock read costs a few
//! percent of a lookup and about as much as a step. The counters are exact; percentiles come from log-linear
//! buckets (four per power of two), interpolated within a bucket.

use crate::counter::{stripe_index, StripedCounter};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Iterator steps (`next`/`prev`) are timed one in this many.
pub(crate) const STEP_SAMPLE: u64 = 16;

/// Point lookups and writes are timed one in this many on each thread (the
/// first of each run of `OP_SAMPLE` is): two clock reads cost about 4% of
/// a memtable lookup (measured with `benches/statistics_overhead.rs`),
/// one in 8 well under 1%. Their counters stay exact.
pub(crate) const OP_SAMPLE: u32 = 8;

thread_local! {
    /// Per thread: operations seen since the last timed one, for gets and
    /// for writes.
    static TICKS: std::cell::Cell<[u32; 2]> = const { std::cell::Cell::new([0, 0]) };
}

/// What a sampled operation is.
#[derive(Clone, Copy)]
pub(crate) enum Sampled {
    Get = 0,
    Write = 1,
}

/// Whether this thread's current `op` is to be timed.
pub(crate) fn timed(op: Sampled) -> bool {
    TICKS.with(|t| {
        let mut ticks = t.get();
        let i = op as usize;
        let now = ticks[i];
        ticks[i] = if now + 1 == OP_SAMPLE { 0 } else { now + 1 };
        t.set(ticks);
        now == 0
    })
}

/// Values below this get a bucket each.
const LINEAR: usize = 16;
/// Buckets per power of two above `LINEAR`.
const SUB_BITS: u32 = 2;
/// Largest power of two with its own buckets (2^47 ns is about 39 hours);
/// larger values share the last bucket.
const MAX_MSB: u32 = 47;
const BUCKETS: usize = LINEAR + ((MAX_MSB - 3) << SUB_BITS) as usize;
const HIST_STRIPES: usize = 8;

fn bucket_of(v: u64) -> usize {
    if v < LINEAR as u64 {
        return v as usize;
    }
    let msb = (63 - v.leading_zeros()).min(MAX_MSB);
    let v = v.min((2u64 << MAX_MSB) - 1);
    let sub = (v >> (msb - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR + (((msb - 4) << SUB_BITS) as usize) + sub as usize
}

/// The values bucket `i` holds: `[lower, upper)`.
fn bucket_bounds(i: usize) -> (u64, u64) {
    if i < LINEAR {
        return (i as u64, i as u64 + 1);
    }
    let k = i - LINEAR;
    let msb = 4 + (k >> SUB_BITS) as u32;
    let sub = (k & ((1 << SUB_BITS) - 1)) as u64;
    let width = 1u64 << (msb - SUB_BITS);
    let lower = (1u64 << msb) + sub * width;
    (lower, lower + width)
}

#[repr(align(64))]
struct HistStripe {
    buckets: [AtomicU64; BUCKETS],
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Default for HistStripe {
    fn default() -> HistStripe {
        HistStripe {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

/// A latency histogram many threads record into, in nanoseconds.
pub(crate) struct HistogramRecorder {
    stripes: Box<[HistStripe]>,
}

impl Default for HistogramRecorder {
    fn default() -> HistogramRecorder {
        HistogramRecorder {
            stripes: (0..HIST_STRIPES).map(|_| HistStripe::default()).collect(),
        }
    }
}

impl HistogramRecorder {
    pub(crate) fn record(&self, nanos: u64) {
        let s = &self.stripes[stripe_index() % HIST_STRIPES];
        s.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        s.sum.fetch_add(nanos, Ordering::Relaxed);
        // Loads first: an atomic read-modify-write on every call would
        // write the line even when nothing changes.
        if nanos > s.max.load(Ordering::Relaxed) {
            s.max.fetch_max(nanos, Ordering::Relaxed);
        }
        if nanos < s.min.load(Ordering::Relaxed) {
            s.min.fetch_min(nanos, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_since(&self, start: Instant) {
        self.record(start.elapsed().as_nanos().min(u64::MAX as u128) as u64);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        let mut buckets = vec![0u64; BUCKETS];
        let mut sum = 0u64;
        let mut min = u64::MAX;
        let mut max = 0u64;
        for s in self.stripes.iter() {
            for (total, b) in buckets.iter_mut().zip(s.buckets.iter()) {
                *total += b.load(Ordering::Relaxed);
            }
            sum = sum.wrapping_add(s.sum.load(Ordering::Relaxed));
            min = min.min(s.min.load(Ordering::Relaxed));
            max = max.max(s.max.load(Ordering::Relaxed));
        }
        let count = buckets.iter().sum();
        Histogram {
            count,
            sum,
            min: if count == 0 { 0 } else { min },
            max,
            buckets,
        }
    }
}

/// A latency distribution: how many operations took how long.
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path())?;
/// db.put("k", "v")?;
/// let get = db.statistics().get_latency;
/// assert_eq!(get.count(), 0);
/// db.get("k")?;
/// let get = db.statistics().get_latency;
/// assert_eq!(get.count(), 1);
/// assert!(get.percentile(50.0) <= get.max());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    count: u64,
    /// Nanoseconds.
    sum: u64,
    min: u64,
    max: u64,
    buckets: Vec<u64>,
}

impl Default for Histogram {
    /// An empty histogram.
    fn default() -> Histogram {
        Histogram {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            buckets: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Number of operations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Total time of the operations recorded.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum)
    }

    /// The fastest operation (zero when none was recorded).
    pub fn min(&self) -> Duration {
        Duration::from_nanos(self.min)
    }

    /// The slowest operation.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// Mean time per operation (zero when none was recorded).
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            n => Duration::from_nanos(self.sum / n),
        }
    }

    /// The time under which `p` percent of the operations completed
    /// (`p` in 0..=100; 50 is the median), interpolated within the bucket
    /// that holds it, so within about 12% of the true value; never below
    /// the minimum nor above the maximum recorded. Zero when nothing was
    /// recorded.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let p = if p.is_nan() {
            50.0
        } else {
            p.clamp(0.0, 100.0)
        };
        if p == 0.0 {
            return self.min();
        }
        let target = (p / 100.0 * self.count as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= target {
                let (lo, hi) = bucket_bounds(i);
                let lo = lo.max(self.min);
                let hi = hi.min(self.max.saturating_add(1)).max(lo);
                let within = (target - seen as f64) / n as f64;
                let v = lo as f64 + within * (hi - lo) as f64;
                let v = (v as u64).clamp(self.min, self.max);
                return Duration::from_nanos(v);
            }
            seen += n;
        }
        self.max()
    }
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Histogram {
    /// `count N mean M p50 A p95 B p99 C p99.9 D max E` (microseconds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "count {} mean {:.2} p50 {:.2} p95 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} (us)",
            self.count,
            micros(self.mean()),
            micros(self.percentile(50.0)),
            micros(self.percentile(95.0)),
            micros(self.percentile(99.0)),
            micros(self.percentile(99.9)),
            micros(self.max()),
        )
    }
}

/// Lookups in a cache: found or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheCounts {
    /// Lookups that found what they looked for.
    pub hits: u64,
    /// Lookups that had to read the file.
    pub misses: u64,
}

/// A snapshot of the database's statistics since it was opened: what users
/// asked of it, what the caches and filters did, and what background work
/// cost, with latency histograms. `Display` prints it as text, one figure
/// per line (`aidb stats` shows it).
///
/// Counters cover every column family. See docs/operations.md for what
/// each means and when to look at it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statistics {
    /// Write calls (`put`, `delete`, `write`, including through column
    /// families); a batch counts once.
    pub writes: u64,
    /// Operations in those writes (puts, deletes, merges and range
    /// deletes).
    pub keys_written: u64,
    /// Bytes of keys, values and merge operands in those writes (a range
    /// delete counts its two bounds).
    pub bytes_written: u64,
    /// Point lookups (`get`, also through snapshots and column families).
    pub keys_read: u64,
    /// Point lookups that found a value.
    pub keys_found: u64,
    /// Bytes of the values point lookups returned.
    pub bytes_read: u64,
    /// Iterator positioning calls (seek, seek to first or last).
    pub iter_seeks: u64,
    /// Iterator steps (next and prev).
    pub iter_steps: u64,
    /// Bytes of keys and values iterators landed on (counted when an
    /// iterator is dropped, or every 1,024 moves).
    pub iter_bytes_read: u64,
    /// Data blocks looked up in the block cache.
    pub data_block_cache: CacheCounts,
    /// Index and filter blocks: they are read when a table is opened and
    /// stay in memory with the open table, so a hit is a lookup that found
    /// its table open (in the table cache) and a miss one that opened it.
    pub index_and_filter_blocks: CacheCounts,
    /// Point lookups that consulted a table's bloom filter.
    pub bloom_checks: u64,
    /// Bloom filter checks that ruled a table out, saving a block read.
    pub bloom_useful: u64,
    /// Time writers spent slowed down or stopped, waiting for flushes and
    /// compactions.
    pub stall_time: Duration,
    /// Memtable flushes completed.
    pub flushes: u64,
    /// Bytes of table files written by flushes.
    pub flush_bytes_written: u64,
    /// Compactions completed, trivial moves included.
    pub compactions: u64,
    /// Compactions that moved a file down a level without rewriting it.
    pub trivial_moves: u64,
    /// Bytes of table files read by compactions.
    pub compaction_bytes_read: u64,
    /// Bytes of table files written by compactions.
    pub compaction_bytes_written: u64,
    /// Fsyncs of the write-ahead log (synced writes share one per commit
    /// group; a new log fsyncs the one before it).
    pub wal_syncs: u64,
    /// Failures that stopped writes (see [`Error::ReadOnly`](crate::Error::ReadOnly)).
    pub background_errors: u64,
    /// Panics caught in event listeners.
    pub listener_panics: u64,
    /// Latency of point lookups, one in 8 timed on each thread (the first
    /// of every 8): `keys_read` is the exact count.
    pub get_latency: Histogram,
    /// Latency of writes, from the call to its return (queueing, log,
    /// memtable, stalls included), one in 8 timed on each thread as for
    /// gets: `writes` is the exact count.
    pub write_latency: Histogram,
    /// Latency of iterator seeks (including seek to first and to last).
    pub seek_latency: Histogram,
    /// Latency of iterator steps (next and prev), sampled one in 16.
    pub next_latency: Histogram,
    /// Duration of flushes.
    pub flush_latency: Histogram,
    /// Duration of compactions.
    pub compaction_latency: Histogram,
    /// Duration of fsyncs of the write-ahead log.
    pub wal_sync_latency: Histogram,
}

impl fmt::Display for Statistics {
    /// One `name value` line per counter, then one line per histogram
    /// (microseconds); the names are the field names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counters: [(&str, u64); 25] = [
            ("writes", self.writes),
            ("keys_written", self.keys_written),
            ("bytes_written", self.bytes_written),
            ("keys_read", self.keys_read),
            ("keys_found", self.keys_found),
            ("bytes_read", self.bytes_read),
            ("iter_seeks", self.iter_seeks),
            ("iter_steps", self.iter_steps),
            ("iter_bytes_read", self.iter_bytes_read),
            ("data_block_cache.hits", self.data_block_cache.hits),
            ("data_block_cache.misses", self.data_block_cache.misses),
            (
                "index_and_filter_blocks.hits",
                self.index_and_filter_blocks.hits,
            ),
            (
                "index_and_filter_blocks.misses",
                self.index_and_filter_blocks.misses,
            ),
            ("bloom_checks", self.bloom_checks),
            ("bloom_useful", self.bloom_useful),
            ("stall_micros", self.stall_time.as_micros() as u64),
            ("flushes", self.flushes),
            ("flush_bytes_written", self.flush_bytes_written),
            ("compactions", self.compactions),
            ("trivial_moves", self.trivial_moves),
            ("compaction_bytes_read", self.compaction_bytes_read),
            ("compaction_bytes_written", self.compaction_bytes_written),
            ("wal_syncs", self.wal_syncs),
            ("background_errors", self.background_errors),
            ("listener_panics", self.listener_panics),
        ];
        for (name, v) in counters {
            writeln!(f, "{name} {v}")?;
        }
        let histograms = [
            ("get_latency", &self.get_latency),
            ("write_latency", &self.write_latency),
            ("seek_latency", &self.seek_latency),
            ("next_latency", &self.next_latency),
            ("flush_latency", &self.flush_latency),
            ("compaction_latency", &self.compaction_latency),
            ("wal_sync_latency", &self.wal_sync_latency),
        ];
        for (name, h) in histograms {
            writeln!(f, "{name} {h}")?;
        }
        Ok(())
    }
}

/// Where the engine records. One per database, inside `DbInner::stats`.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) writes: StripedCounter,
    pub(crate) keys_written: StripedCounter,
    pub(crate) bytes_written: StripedCounter,
    pub(crate) keys_read: StripedCounter,
    pub(crate) keys_found: StripedCounter,
    pub(crate) bytes_read: StripedCounter,
    pub(crate) iter_seeks: StripedCounter,
    pub(crate) iter_steps: StripedCounter,
    pub(crate) iter_bytes_read: StripedCounter,
    // Background work is rare: plain atomics.
    pub(crate) flushes: AtomicU64,
    pub(crate) flush_bytes_written: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) trivial_moves: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) wal_syncs: AtomicU64,
    pub(crate) background_errors: AtomicU64,
    pub(crate) get: HistogramRecorder,
    pub(crate) write: HistogramRecorder,
    pub(crate) seek: HistogramRecorder,
    pub(crate) next: HistogramRecorder,
    pub(crate) flush: HistogramRecorder,
    pub(crate) compaction: HistogramRecorder,
    pub(crate) wal_sync: HistogramRecorder,
}

impl Recorder {
    /// Runs `sync` (an fsync of the log), counting and timing it.
    pub(crate) fn time_wal_sync<T>(&self, sync: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let r = sync();
        self.wal_sync.record_since(start);
        self.wal_syncs.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// The recorder's part of a [`Statistics`]; the caller fills in what
    /// other parts of the engine count (caches, bloom filters, stalls).
    pub(crate) fn snapshot(&self) -> Statistics {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Statistics {
            writes: self.writes.get(),
            keys_written: self.keys_written.get(),
            bytes_written: self.bytes_written.get(),
            keys_read: self.keys_read.get(),
            keys_found: self.keys_found.get(),
            bytes_read: self.bytes_read.get(),
            iter_seeks: self.iter_seeks.get(),
            iter_steps: self.iter_steps.get(),
            iter_bytes_read: self.iter_bytes_read.get(),
            flushes: load(&self.flushes),
            flush_bytes_written: load(&self.flush_bytes_written),
            compactions: load(&self.compactions),
            trivial_moves: load(&self.trivial_moves),
            compaction_bytes_read: load(&self.compaction_bytes_read),
            compaction_bytes_written: load(&self.compaction_bytes_written),
            wal_syncs: load(&self.wal_syncs),
            background_errors: load(&self.background_errors),
            get_latency: self.get.snapshot(),
            write_latency: self.write.snapshot(),
            seek_latency: self.seek.snapshot(),
            next_latency: self.next.snapshot(),
            flush_latency: self.flush.snapshot(),
            compaction_latency: self.compaction.snapshot(),
            wal_sync_latency: self.wal_sync.snapshot(),
            ..Statistics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 30, (1 << 40) + 12345, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last || v < 100_000, "{v}");
            assert!(b < BUCKETS, "{v} -> {b}");
            let (lo, hi) = bucket_bounds(b);
            if v < (2u64 << MAX_MSB) {
                assert!(lo <= v && v < hi, "{v} not in [{lo}, {hi}) (bucket {b})");
            }
            last = b;
        }
        // Consecutive buckets tile the value range.
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket_bounds(i).1, bucket_bounds(i + 1).0, "bucket {i}");
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let h = HistogramRecorder::default();
        // 1..=10,000 microseconds, uniformly.
        for us in 1..=10_000u64 {
            h.record(us * 1000);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10_000);
        assert_eq!(s.min(), Duration::from_micros(1));
        assert_eq!(s.max(), Duration::from_micros(10_000));
        assert_eq!(s.mean(), Duration::from_nanos(5_000_500));
        for (p, expect) in [(50.0, 5_000.0), (90.0, 9_000.0), (99.0, 9_900.0)] {
            let got = s.percentile(p).as_nanos() as f64 / 1000.0;
            assert!(
                (got - expect).abs() / expect < 0.13,
                "p{p}: {got} us, expected about {expect}"
            );
        }
        assert_eq!(s.percentile(100.0), s.max());
        assert_eq!(s.percentile(0.0), s.min());
        assert_eq!(
            HistogramRecorder::default().snapshot().percentile(50.0),
            Duration::ZERO
        );
    }

    #[test]
    fn records_from_many_threads() {
        let h = std::sync::Arc::new(HistogramRecorder::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || (0..1000).for_each(|i| h.record(t * 1000 + i)))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 4000);
        assert_eq!(s.min(), Duration::ZERO);
        assert_eq!(s.max(), Duration::from_nanos(3999));
        assert_eq!(s.sum(), Duration::from_nanos((0..4000u64).sum()));
    }
}
