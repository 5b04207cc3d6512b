//! Background work: flushes (and compactions) on `max_background_jobs`
//! threads, plus the waiting that writers and `wait_for_idle` do.
//!
//! One mutex and condition variable coordinate everything: workers wait on
//! it for work, writers stalled on too many memtables wait on it for a
//! flush, and every finished job wakes them all.

use super::DbInner;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Default)]
pub(crate) struct BgState {
    pub(crate) shutdown: bool,
    pub(crate) flushing: bool,
    pub(crate) compacting: bool,
}

#[derive(Default)]
pub(crate) struct Background {
    pub(crate) state: Mutex<BgState>,
    pub(crate) cv: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

enum Job {
    Flush,
    Compact,
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
                // Fewer threads only means slower background work; at least
                // one more is tried on the next start.
                Err(_) if !threads.is_empty() => break,
                Err(e) => {
                    inner.poison(crate::Error::io(&inner.dir, e));
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
}

fn pick_job(inner: &DbInner, st: &mut BgState) -> Option<Job> {
    if inner.is_poisoned() {
        return None;
    }
    if !st.flushing && !inner.view.read().imms.is_empty() {
        st.flushing = true;
        return Some(Job::Flush);
    }
    if !st.compacting && inner.compaction_wanted() {
        st.compacting = true;
        return Some(Job::Compact);
    }
    None
}

fn worker(inner: &Arc<DbInner>) {
    let bg = &inner.bg;
    let mut st = bg.state.lock();
    loop {
        if st.shutdown {
            return;
        }
        let Some(job) = pick_job(inner, &mut st) else {
            bg.cv.wait(&mut st);
            continue;
        };
        drop(st);
        let result = match job {
            Job::Flush => super::flush::flush_oldest(inner).map(|_| ()),
            Job::Compact => super::compaction::run_one(inner).map(|_| ()),
        };
        if let Err(e) = result {
            inner.poison(e);
        }
        st = bg.state.lock();
        match job {
            Job::Flush => st.flushing = false,
            Job::Compact => st.compacting = false,
        }
        bg.cv.notify_all();
    }
}
