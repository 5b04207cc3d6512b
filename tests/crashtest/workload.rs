//! The threads of one crash-test cycle: writers, readers that check every
//! view they get against the models, and a "chaos" thread that flushes,
//! compacts, verifies and waits for idle, all on one open database until
//! the crash.

use super::{batch_ops, key, key_prefix, marker_key, rng_for, Marker, Params, Shape, ThreadModel};
use aidb::{ColumnFamily, DbSnapshot, KeyRange, WriteBatch, WriteOptions, DB};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Called with (thread, batch) after each acknowledged write (the child of
/// a kill cycle reports it to its parent).
pub type AckHook = dyn Fn(usize, i64) + Send + Sync;

/// What the threads of a cycle share, and what the cycle learns from them.
pub struct Progress {
    /// Per thread: the last batch acknowledged.
    pub acked: Vec<AtomicI64>,
    /// Per thread: the last batch submitted.
    pub issued: Vec<AtomicI64>,
    /// Per thread: the last batch that must survive a power cut (written
    /// before a synced write or a flush that was acknowledged).
    pub floor: Vec<AtomicI64>,
    pub stop: AtomicBool,
    /// From now on writes, flushes and compactions may fail (a crash or a
    /// fault is armed).
    pub faults_armed: AtomicBool,
    /// From now on reads may fail too (a read fault is injected).
    pub read_faults_armed: AtomicBool,
    /// Check failures and unexpected errors.
    pub errors: Mutex<Vec<String>>,
    pub acks: AtomicU64,
    pub synced: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub checks: AtomicU64,
    pub on_ack: Option<Box<AckHook>>,
}

impl Progress {
    /// Progress of a cycle that starts from the recovered batches `start`.
    pub fn new(start: &[i64], on_ack: Option<Box<AckHook>>) -> Progress {
        let atomics = || start.iter().map(|&s| AtomicI64::new(s)).collect();
        Progress {
            acked: atomics(),
            issued: atomics(),
            floor: atomics(),
            stop: AtomicBool::new(false),
            faults_armed: AtomicBool::new(false),
            read_faults_armed: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
            acks: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            checks: AtomicU64::new(0),
            on_ack,
        }
    }

    pub fn load(v: &[AtomicI64]) -> Vec<i64> {
        v.iter().map(|a| a.load(Ordering::SeqCst)).collect()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Records a failure and ends the cycle.
    pub fn fail(&self, what: String) {
        // Whether the crash or fault had begun tells where to look.
        let when = if self.faults_armed.load(Ordering::SeqCst) {
            " (after the crash or fault was armed)"
        } else {
            " (before any crash or fault)"
        };
        self.errors.lock().push(what + when);
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Everything acknowledged before `before` was taken is durable now.
    fn raise_floor(&self, before: &[i64]) {
        for (f, &b) in self.floor.iter().zip(before) {
            f.fetch_max(b, Ordering::SeqCst);
        }
    }

    /// An operation failed: fine once a crash or fault is armed (`read`:
    /// a read fault), a failure of the test otherwise.
    fn failed(&self, read: bool, what: String) {
        let armed = if read {
            &self.read_faults_armed
        } else {
            &self.faults_armed
        };
        if !armed.load(Ordering::SeqCst) {
            self.fail(what);
        }
    }
}

/// Handles of every family, default first.
pub fn families(db: &DB, shape: &Shape) -> Vec<ColumnFamily> {
    (0..shape.family_count())
        .map(|f| {
            db.column_family(shape.family_name(f))
                .unwrap_or_else(|| panic!("family {} missing", shape.family_name(f)))
        })
        .collect()
}

/// Starts the cycle's threads. `models` are the threads' states the cycle
/// starts from; `seed` makes each thread's choices.
pub fn start(
    db: &Arc<DB>,
    shape: &Arc<Shape>,
    params: &Params,
    models: &[ThreadModel],
    progress: &Arc<Progress>,
    seed: u64,
) -> Vec<JoinHandle<()>> {
    let cfs = Arc::new(families(db, shape));
    let mut handles = Vec::new();
    for t in 0..shape.threads {
        let (db, shape, cfs, progress) = (db.clone(), shape.clone(), cfs.clone(), progress.clone());
        let sync = params.sync_per_mille;
        let rng = rng_for(&[seed, 10, t as u64]);
        handles.push(std::thread::spawn(move || {
            writer(&db, &shape, &cfs, &progress, t, sync, rng)
        }));
    }
    for r in 0..params.readers {
        let mut reader = Reader {
            db: db.clone(),
            shape: shape.clone(),
            cfs: cfs.clone(),
            models: models.to_vec(),
            progress: progress.clone(),
            rng: rng_for(&[seed, 11, r as u64]),
            held: Vec::new(),
        };
        handles.push(std::thread::spawn(move || reader.run()));
    }
    if params.chaos {
        let (db, shape, cfs, progress) = (db.clone(), shape.clone(), cfs.clone(), progress.clone());
        let rng = rng_for(&[seed, 12]);
        handles.push(std::thread::spawn(move || {
            chaos(&db, &shape, &cfs, &progress, rng)
        }));
    }
    handles
}

/// Stops the threads and waits for them; a panic in one is a failure.
pub fn finish(progress: &Progress, handles: Vec<JoinHandle<()>>) {
    progress.stop.store(true, Ordering::SeqCst);
    for h in handles {
        if let Err(panic) = h.join() {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            progress.fail(format!("a workload thread panicked: {msg}"));
        }
    }
}

fn writer(
    db: &DB,
    shape: &Shape,
    cfs: &[ColumnFamily],
    progress: &Progress,
    t: usize,
    sync_per_mille: u32,
    mut rng: StdRng,
) {
    let mut i = progress.acked[t].load(Ordering::SeqCst) + 1;
    while !progress.stopped() {
        // Taken before submitting: every batch acknowledged by now is in
        // the log before this one.
        let before = Progress::load(&progress.acked);
        let mut b = WriteBatch::new();
        for op in batch_ops(shape, t, i as u64) {
            let k = key(t, op.key);
            match (&op.value, op.family) {
                (Some(v), 0) => b.put(&k, v),
                (None, 0) => b.delete(&k),
                (Some(v), f) => b.put_cf(&cfs[f], &k, v),
                (None, f) => b.delete_cf(&cfs[f], &k),
            };
        }
        let marker = Marker {
            batch: i,
            acked: before.clone(),
        };
        b.put(marker_key(t), marker.encode());
        let sync = rng.gen_range(0..1000) < sync_per_mille;
        progress.issued[t].fetch_max(i, Ordering::SeqCst);
        match db.write_opt(b, &WriteOptions { sync }) {
            Ok(()) => {
                progress.acked[t].store(i, Ordering::SeqCst);
                progress.acks.fetch_add(1, Ordering::Relaxed);
                if sync {
                    progress.synced.fetch_add(1, Ordering::Relaxed);
                    progress.raise_floor(&before);
                    progress.floor[t].fetch_max(i, Ordering::SeqCst);
                }
                if let Some(hook) = &progress.on_ack {
                    hook(t, i);
                }
                i += 1;
            }
            Err(e) => {
                progress.failed(false, format!("thread {t}: write of batch {i} failed: {e}"));
                // Under faults, try the same batch again (it is the same
                // batch whether or not the failed attempt reached the log).
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

fn chaos(db: &DB, shape: &Shape, cfs: &[ColumnFamily], progress: &Progress, mut rng: StdRng) {
    while !progress.stopped() {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1..40)));
        let before = Progress::load(&progress.acked);
        let f = rng.gen_range(0..cfs.len());
        let result = match rng.gen_range(0..10) {
            0..=1 => db.flush().map(|_| true),
            2 => cfs[f].flush().map(|_| true),
            3..=5 => {
                let t = rng.gen_range(0..shape.threads);
                let a = rng.gen_range(0..shape.keys);
                let b = rng.gen_range(a..=shape.keys);
                let range = KeyRange::new(key(t, a)..key(t, b));
                let done = if rng.gen_bool(0.2) {
                    cfs[f].compact_range(..)
                } else {
                    cfs[f].compact_range(range)
                };
                progress.compactions.fetch_add(1, Ordering::Relaxed);
                done.map(|_| false)
            }
            6 => db.wait_for_idle().map(|_| false),
            7 => {
                let damage = db.verify();
                if !damage.is_empty() {
                    progress.failed(true, format!("verify() found damage: {damage:?}"));
                }
                Ok(false)
            }
            _ => Ok(false),
        };
        match result {
            Ok(true) => {
                progress.flushes.fetch_add(1, Ordering::Relaxed);
                progress.raise_floor(&before);
            }
            Ok(false) => {}
            Err(e) => progress.failed(false, format!("flush/compaction failed: {e}")),
        }
    }
}

/// A snapshot kept across flushes and compactions, with what it must show.
struct Held {
    snap: DbSnapshot,
    family: usize,
    model: ThreadModel,
}

struct Reader {
    db: Arc<DB>,
    shape: Arc<Shape>,
    cfs: Arc<Vec<ColumnFamily>>,
    /// Each thread's state as of the newest view this reader saw: views
    /// only move forward.
    models: Vec<ThreadModel>,
    progress: Arc<Progress>,
    rng: StdRng,
    held: Vec<Held>,
}

impl Reader {
    fn run(&mut self) {
        while !self.progress.stopped() {
            let result = match self.rng.gen_range(0..10) {
                0..=3 => self.snapshot_check(),
                4..=6 => self.live_get_check(),
                7..=8 => self.live_iter_check(),
                _ => self.held_check(),
            };
            match result {
                Ok(()) => {
                    self.progress.checks.fetch_add(1, Ordering::Relaxed);
                }
                // A wrong answer is a failure even under faults; an error
                // only when no read fault is injected.
                Err(Check::Wrong(what)) => self.progress.fail(what),
                Err(Check::Failed(e)) => self.progress.failed(true, format!("read failed: {e}")),
            }
        }
    }

    fn compare(
        &self,
        what: &str,
        got: Vec<(Vec<u8>, Vec<u8>)>,
        want: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), Check> {
        if got == want {
            return Ok(());
        }
        let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let first = got
            .iter()
            .zip(want)
            .find(|(g, w)| g != w)
            .map(|(g, w)| format!("first difference: got {} want {}", show(&g.0), show(&w.0)))
            .unwrap_or_default();
        Err(Check::Wrong(format!(
            "{what}: {} pairs, expected {}; {first}",
            got.len(),
            want.len()
        )))
    }

    /// Every marker through one snapshot: no hole across threads; then one
    /// thread's keys in one family, by scan (either way) or point reads.
    fn snapshot_check(&mut self) -> Result<(), Check> {
        let s = self.db.snapshot();
        let mut marks = Vec::new();
        for t in 0..self.shape.threads {
            let read = s.get(marker_key(t))?;
            marks.push(match read {
                None => None,
                Some(v) => Some(Marker::decode(&v).map_err(Check::Wrong)?),
            });
        }
        let issued = Progress::load(&self.progress.issued);
        let batch = |m: &Option<Marker>| m.as_ref().map_or(-1, |m| m.batch);
        for (t, m) in marks.iter().enumerate() {
            if batch(m) > issued[t] {
                return Err(Check::Wrong(format!(
                    "snapshot shows thread {t}'s batch {}, never submitted",
                    batch(m)
                )));
            }
            check_no_hole(t, m, &marks)?;
        }
        let t = self.rng.gen_range(0..self.shape.threads);
        self.models[t]
            .advance_to(&self.shape, batch(&marks[t]))
            .map_err(Check::Wrong)?;
        let f = self.rng.gen_range(0..self.cfs.len());
        let want = self.models[t].family(f);
        let what = format!("snapshot of thread {t}, family {f}");
        if self.rng.gen_bool(0.3) {
            for _ in 0..8 {
                let n = self.rng.gen_range(0..self.shape.keys);
                let got = s.get_cf(&self.cfs[f], key(t, n))?;
                if got.as_ref() != self.models[t].get(f, n) {
                    return Err(Check::Wrong(format!("{what}: wrong value for key {n}")));
                }
            }
        } else {
            self.scan_check(&what, &s, f, t, &want)?;
        }
        if self.held.len() < 3 && self.rng.gen_bool(0.2) {
            self.held.push(Held {
                snap: s,
                family: f,
                model: self.models[t].clone(),
            });
        }
        Ok(())
    }

    fn scan_check(
        &mut self,
        what: &str,
        s: &DbSnapshot,
        f: usize,
        t: usize,
        want: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), Check> {
        let range = KeyRange::prefix(key_prefix(t));
        if self.rng.gen_bool(0.5) {
            let got = s
                .range_cf(&self.cfs[f], range)
                .collect::<aidb::Result<_>>()?;
            self.compare(what, got, want)
        } else {
            let mut got: Vec<_> = s
                .range_cf(&self.cfs[f], range)
                .rev()
                .collect::<aidb::Result<_>>()?;
            got.reverse();
            self.compare(&format!("{what} (reverse)"), got, want)
        }
    }

    /// A point read without a snapshot, between two reads of the marker:
    /// the value must be the key's in some state between the two.
    fn live_get_check(&mut self) -> Result<(), Check> {
        let t = self.rng.gen_range(0..self.shape.threads);
        let f = self.rng.gen_range(0..self.cfs.len());
        let n = self.rng.gen_range(0..self.shape.keys);
        let first = Marker::batch_of(&self.db.get(marker_key(t))?).map_err(Check::Wrong)?;
        let got = self.cfs[f].get(key(t, n))?;
        let last = Marker::batch_of(&self.db.get(marker_key(t))?).map_err(Check::Wrong)?;
        let model = &mut self.models[t];
        model.advance_to(&self.shape, first).map_err(Check::Wrong)?;
        loop {
            if model.get(f, n) == got.as_ref() {
                return Ok(());
            }
            if model.applied >= last {
                return Err(Check::Wrong(format!(
                    "thread {t}, family {f}, key {n}: the value read is in no state between batches {first} and {last}"
                )));
            }
            model.step(&self.shape);
        }
    }

    /// An iterator without a snapshot over the thread's keys in the
    /// default family, marker included: one consistent view.
    fn live_iter_check(&mut self) -> Result<(), Check> {
        let t = self.rng.gen_range(0..self.shape.threads);
        let it = self.db.prefix(format!("t{t}/"));
        let mut got: Vec<(Vec<u8>, Vec<u8>)> = if self.rng.gen_bool(0.5) {
            it.collect::<aidb::Result<_>>()?
        } else {
            let mut v: Vec<_> = it.rev().collect::<aidb::Result<_>>()?;
            v.reverse();
            v
        };
        let marker = match got.last() {
            Some((k, v)) if *k == marker_key(t) => {
                let m = Marker::decode(v).map_err(Check::Wrong)?;
                got.pop();
                m.batch
            }
            _ => -1,
        };
        self.models[t]
            .advance_to(&self.shape, marker)
            .map_err(Check::Wrong)?;
        let want = self.models[t].family(0);
        self.compare(&format!("iterator over thread {t}'s keys"), got, &want)
    }

    /// A snapshot held since an earlier check still shows what it did,
    /// whatever flushes and compactions ran since.
    fn held_check(&mut self) -> Result<(), Check> {
        if self.held.is_empty() {
            return Ok(());
        }
        let i = self.rng.gen_range(0..self.held.len());
        let h = &self.held[i];
        let want = h.model.family(h.family);
        let what = format!(
            "snapshot held since thread {}'s batch {}, family {}",
            h.model.t, h.model.applied, h.family
        );
        let got = h
            .snap
            .range_cf(&self.cfs[h.family], KeyRange::prefix(key_prefix(h.model.t)))
            .collect::<aidb::Result<_>>()?;
        let result = self.compare(&what, got, &want);
        if self.rng.gen_bool(0.3) {
            self.held.swap_remove(i);
        }
        result
    }
}

/// Thread `t`'s batch in view (marker `m`) was written after the batches
/// the other threads had acknowledged by then: the view must hold those.
fn check_no_hole(t: usize, m: &Option<Marker>, marks: &[Option<Marker>]) -> Result<(), Check> {
    let Some(m) = m else { return Ok(()) };
    for (u, &needed) in m.acked.iter().enumerate() {
        let has = marks
            .get(u)
            .and_then(|x| x.as_ref())
            .map_or(-1, |x| x.batch);
        if has < needed {
            return Err(Check::Wrong(format!(
                "hole: thread {t}'s batch {} is there, but not thread {u}'s batch {needed}, acknowledged before it was written (only up to {has})",
                m.batch
            )));
        }
    }
    Ok(())
}

/// How a check went wrong.
pub enum Check {
    /// A wrong answer.
    Wrong(String),
    /// An error from the database.
    Failed(aidb::Error),
}

impl From<aidb::Error> for Check {
    fn from(e: aidb::Error) -> Check {
        Check::Failed(e)
    }
}
