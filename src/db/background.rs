//! Background work: flushes (and compactions) on `max_background_jobs`
//! threads, plus the waiting that writers and `wait_for_idle` do.
//!
//! One mutex and condition variable coordinate everything: workers wait on
//! it for work, writers stalled on too many memtables wait on it for a
//! flush, and every finished job wakes them all. After a background failure
//! (see `health`) the workers retry with back-off instead of flushing and
//! compacting.

use super::family::Family;
use super::health::{panic_message, Failure};
use super::DbInner;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The first automatic retry after a background failure waits this long;
/// each failed retry doubles the wait, up to `MAX_RETRY_DELAY`.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

pub(crate) struct BgState {
    pub(crate) shutdown: bool,
    pub(crate) flushing: bool,
    pub(crate) compacting: bool,
    /// The family flushed last: the next flush looks at the families after
    /// it first, so a busy family cannot starve another's flushes.
    last_flushed: u32,
    /// When the next automatic retry after a background failure is due.
    retry_at: Option<Instant>,
    /// The wait before the retry after the next failure.
    retry_delay: Duration,
}

impl Default for BgState {
    fn default() -> BgState {
        BgState {
            shutdown: false,
            flushing: false,
            compacting: false,
            last_flushed: 0,
            retry_at: None,
            retry_delay: FIRST_RETRY_DELAY,
        }
    }
}

#[derive(Default)]
pub(crate) struct Background {
    pub(crate) state: Mutex<BgState>,
    pub(crate) cv: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Clone)]
enum Job {
    Flush(Arc<Family>),
    Compact,
    /// Retry after a background failure (see `health`).
    Recover,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Flush(family) => write!(f, "flush of column family {:?}", family.name),
            Job::Compact => f.write_str("compaction"),
            Job::Recover => f.write_str("recovery"),
        }
    }
}

enum Pick {
    Run(Job),
    Idle,
    WaitUntil(Instant),
}

/// The right to run flushes, held by one thread at a time: a background
/// flush, or `DB::resume`. Released on drop.
pub(crate) struct FlushSlot<'a>(&'a Background);

impl Drop for FlushSlot<'_> {
    fn drop(&mut self) {
        self.0.state.lock().flushing = false;
        self.0.cv.notify_all();
    }
}

impl Background {
    pub(crate) fn start(inner: &Arc<DbInner>) {
        let mut threads = inner.bg.threads.lock();
        for i in 0..inner.opts.max_background_jobs {
            let worker_inner = inner.clone();
            let handle = std::thread::Builder::new()
                .name(format!("aidb-bg-{i}"))
                .spawn(move || worker(&worker_inner));
            match handle {
                Ok(h) => threads.push(h),
                // Fewer threads only means slower background work.
                Err(_) if !threads.is_empty() => break,
                Err(e) => {
                    inner.stop_writes(crate::Error::io(&inner.dir, e), Failure::Fatal);
                    break;
                }
            }
        }
    }

    /// Wakes workers and waiters to look at the state again.
    pub(crate) fn notify(&self) {
        let _st = self.state.lock();
        self.cv.notify_all();
    }

    pub(crate) fn stop(&self) {
        self.state.lock().shutdown = true;
        self.cv.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, BgState> {
        self.state.lock()
    }

    /// Waits until no flush runs, then takes the flush slot.
    pub(crate) fn claim_flush(&self) -> FlushSlot<'_> {
        let mut st = self.state.lock();
        while st.flushing {
            self.cv.wait(&mut st);
        }
        st.flushing = true;
        FlushSlot(self)
    }

    /// Plans an automatic retry after a background failure, unless one is
    /// planned already; each plan waits twice as long as the one before.
    pub(crate) fn schedule_retry(&self) {
        let mut st = self.state.lock();
        if st.retry_at.is_none() {
            st.retry_at = Some(Instant::now() + st.retry_delay);
            st.retry_delay = (st.retry_delay * 2).min(MAX_RETRY_DELAY);
        }
        self.cv.notify_all();
    }

    /// Writes are going again: no retry is due.
    pub(crate) fn recovered(&self) {
        self.state.lock().retry_at = None;
        self.cv.notify_all();
    }
}

fn pick_job(inner: &DbInner, st: &mut BgState) -> Pick {
    match inner.stopped_for() {
        Some(Failure::Fatal) | Some(Failure::Log) => Pick::Idle,
        Some(Failure::Background) => {
            if st.flushing {
                return Pick::Idle;
            }
            match st.retry_at {
                Some(at) if Instant::now() < at => Pick::WaitUntil(at),
                _ => {
                    st.retry_at = None;
                    st.flushing = true;
                    Pick::Run(Job::Recover)
                }
            }
        }
        None => {
            if !st.flushing {
                if let Some(family) = next_to_flush(inner, st.last_flushed) {
                    st.flushing = true;
                    st.last_flushed = family.id;
                    return Pick::Run(Job::Flush(family));
                }
            }
            if !st.compacting && inner.compaction_wanted() {
                st.compacting = true;
                return Pick::Run(Job::Compact);
            }
            match inner.next_ttl_expiry() {
                // Wake when a table's data expires, to compact it away.
                Some(at) if !st.compacting => {
                    let wait = at.saturating_sub(crate::ttl::now()).clamp(1, 3600);
                    Pick::WaitUntil(Instant::now() + Duration::from_secs(wait))
                }
                _ => Pick::Idle,
            }
        }
    }
}

/// The first family after `last` (in id order, wrapping round) with a
/// frozen memtable waiting.
fn next_to_flush(inner: &DbInner, last: u32) -> Option<Arc<Family>> {
    let families = inner.family_list();
    let waiting = |f: &&Arc<Family>| !f.view.read().imms.is_empty();
    let after = families.iter().filter(|f| f.id > last).find(waiting);
    after.or_else(|| families.iter().find(waiting)).cloned()
}

fn run(inner: &DbInner, job: &Job) -> bool {
    // A panic in a job (a bug, or in user code such as a custom file
    // system) must not kill the thread with its flag still set, which
    // would leave every writer waiting for a flush that never comes.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| match job {
        Job::Flush(family) => super::flush::flush_oldest(inner, family).map(|_| ()),
        Job::Compact => super::compaction::run_one(inner).map(|_| ()),
        Job::Recover => inner.recover(),
    }));
    match result {
        Ok(r) => r.is_ok(),
        Err(panic) => {
            let msg = format!(
                "panic in a background {job:?} job: {}",
                panic_message(&*panic)
            );
            inner.stop_writes(crate::Error::Internal(msg), Failure::Fatal);
            false
        }
    }
}

fn worker(inner: &Arc<DbInner>) {
    let bg = &inner.bg;
    let mut st = bg.state.lock();
    loop {
        if st.shutdown {
            return;
        }
        let job = match pick_job(inner, &mut st) {
            Pick::Run(job) => job,
            Pick::Idle => {
                bg.cv.wait(&mut st);
                continue;
            }
            Pick::WaitUntil(at) => {
                bg.cv.wait_until(&mut st, at);
                continue;
            }
        };
        drop(st);
        let ok = run(inner, &job);
        st = bg.state.lock();
        match job {
            Job::Flush(_) | Job::Recover => st.flushing = false,
            Job::Compact => st.compacting = false,
        }
        if ok && !matches!(job, Job::Recover) {
            // Real progress: the next failure starts the back-off afresh.
            st.retry_delay = FIRST_RETRY_DELAY;
        }
        bg.cv.notify_all();
    }
}
