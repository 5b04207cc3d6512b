//! A long-running randomized crash test, after RocksDB's `db_crashtest.py`.
//!
//! Each database gets a random shape (column families, levels, writer
//! threads, key and value sizes) and every reopen redraws the options:
//! write buffer, block size, compression, bloom bits, level-0 triggers,
//! level sizes, cache, background jobs, recovery mode, sync ratio, readers.
//! Each cycle runs concurrent writers, readers (snapshots held across
//! flushes and compactions, iterators both ways, point reads) and a thread
//! that flushes, compacts, verifies and waits for idle, against the
//! expected state of every writer's keys (`crashtest/`); then crashes the
//! database, reopens it and checks it (`crashtest/verify.rs`):
//!
//! - in this process, on the fault-injecting file system: a power cut at a
//!   random moment or at a random file-system call, under a random
//!   [`CrashRule`]; a process crash (everything written survives, so every
//!   acknowledged write must); I/O faults (EIO, ENOSPC, torn ENOSPC, an
//!   fsync that loses data) on a random call, `resume()`, then a power cut;
//!   a clean close, then a power cut; and at times a second crash during
//!   the recovery of the first;
//! - in a child process on the real file system: SIGKILL at a random
//!   moment (every acknowledged write must survive).
//!
//! `AIDB_CRASHTEST_SECS` sets how long it runs (default 120);
//! `AIDB_CRASHTEST_SEED` replays a run's choices (thread timing differs);
//! with it, `AIDB_CRASHTEST_DB=n` runs only database `n` of that run (the
//! failure message names it). `AIDB_CRASHTEST_KEEP_GOING=1` goes on to the
//! next database after a failure and fails at the end with all of them
//! (for long runs).

mod crashtest;

use aidb::fs::{CrashRule, FaultInjectionFs, FaultKind, FsOp, OsFileSystem};
use aidb::{Error, DB};
use crashtest::workload::{self, Progress};
use crashtest::{marker_key, rng_for, verify, Marker, Params, Shape, ThreadModel};
use rand::Rng;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "AIDB_CRASHTEST_CHILD";

/// Counts over a whole run.
#[derive(Default, Debug)]
struct Stats {
    databases: u64,
    cycles: u64,
    crashes: BTreeMap<String, u64>,
    recovery_crashes: u64,
    acks: u64,
    synced: u64,
    flushes: u64,
    compactions: u64,
    checks: u64,
}

impl Stats {
    fn crash(&mut self, kind: impl Into<String>) {
        *self.crashes.entry(kind.into()).or_default() += 1;
    }

    fn add(&mut self, p: &Progress) {
        self.acks += p.acks.load(Ordering::Relaxed);
        self.synced += p.synced.load(Ordering::Relaxed);
        self.flushes += p.flushes.load(Ordering::Relaxed);
        self.compactions += p.compactions.load(Ordering::Relaxed);
        self.checks += p.checks.load(Ordering::Relaxed);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn randomized_crash_test() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let secs = env_u64("AIDB_CRASHTEST_SECS").unwrap_or(120);
    let seed = env_u64("AIDB_CRASHTEST_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    println!("crash test: {secs} s, AIDB_CRASHTEST_SEED={seed}");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut stats = Stats::default();
    let only = env_u64("AIDB_CRASHTEST_DB");
    let keep_going = std::env::var("AIDB_CRASHTEST_KEEP_GOING").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut n = only.unwrap_or(0);
    while Instant::now() < deadline && only.is_none_or(|o| n == o) {
        let db_seed: u64 = rng_for(&[seed, n]).gen();
        // No database lives longer than a fraction of the run, so that a
        // short run still sees several shapes.
        let until = deadline.min(Instant::now() + Duration::from_secs((secs / 4).clamp(5, 300)));
        let kill = n % 3 == 2;
        let result = if kill {
            kill_cycles(db_seed, until, &mut stats)
        } else {
            in_process_cycles(db_seed, until, &mut stats)
        };
        if let Err(e) = result {
            let msg = format!(
                "AIDB_CRASHTEST_SEED={seed} AIDB_CRASHTEST_DB={n} ({}, seed {db_seed}, shape {:?}): {e}",
                if kill { "SIGKILL" } else { "in process" },
                Shape::draw(db_seed)
            );
            assert!(keep_going, "{msg}");
            println!("FAILURE {}: {msg}", failures.len() + 1);
            failures.push(msg);
        }
        stats.databases += 1;
        n += 1;
    }
    let crashes: u64 = stats.crashes.values().sum();
    println!(
        "crash test: {:.0?}, {} databases, {} cycles, {crashes} crashes {:?}, \
         {} crashes during recovery; {} batches acknowledged ({} synced), {} flushes, \
         {} compactions, {} reader checks; {} failures",
        started.elapsed(),
        stats.databases,
        stats.cycles,
        stats.crashes,
        stats.recovery_crashes,
        stats.acks,
        stats.synced,
        stats.flushes,
        stats.compactions,
        stats.checks,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(crashes > 0, "no crash happened");
}

/// How an in-process cycle ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Power cut at a random moment.
    PowerCut,
    /// The machine dies at a random file-system call, then a power cut.
    AtCall,
    /// Everything written survives (a process crash).
    ProcessCrash,
    /// An I/O fault, `resume()`, then a power cut.
    Fault,
    /// A clean close, then a power cut.
    CleanClose,
}

fn open(fs: &FaultInjectionFs, shape: &Shape, params: &Params) -> aidb::Result<DB> {
    DB::open_with(params.options(shape, Path::new("/db"), Arc::new(fs.clone())))
}

fn in_process_cycles(db_seed: u64, until: Instant, stats: &mut Stats) -> Result<(), String> {
    let shape = Arc::new(Shape::draw(db_seed));
    let fs = FaultInjectionFs::new();
    let mut models: Vec<ThreadModel> = (0..shape.threads).map(ThreadModel::new).collect();
    let none = vec![-1; shape.threads];
    let mut db = open(&fs, &shape, &Params::draw(&shape, 0)).map_err(|e| format!("create: {e}"))?;
    verify::recovered(&db, &fs, &shape, &mut models, &none, &none)?;
    let mut cycle = 0;
    while Instant::now() < until && cycle < 200 {
        let params = Params::draw(&shape, cycle);
        let at = |e: String| format!("cycle {cycle} ({}): {e}", params.summary());
        let mut rng = rng_for(&[db_seed, 5, cycle]);
        let start: Vec<i64> = models.iter().map(|m| m.applied).collect();
        let progress = Arc::new(Progress::new(&start, None));
        let shared = Arc::new(db);
        let handles = workload::start(&shared, &shape, &params, &models, &progress, rng.gen());
        let ending = [
            Ending::PowerCut,
            Ending::PowerCut,
            Ending::AtCall,
            Ending::ProcessCrash,
            Ending::Fault,
            Ending::Fault,
            Ending::CleanClose,
        ][rng.gen_range(0..7)];
        let run = Duration::from_millis(params.run_ms);
        let arm = || progress.faults_armed.store(true, Ordering::SeqCst);
        let mut rule = CrashRule::ALL[rng.gen_range(0..CrashRule::ALL.len())];
        let mut everything_acked_survives = false;
        match ending {
            Ending::PowerCut | Ending::ProcessCrash => {
                std::thread::sleep(run);
                arm();
                fs.crash_after(0);
            }
            Ending::AtCall => {
                arm();
                fs.crash_after(rng.gen_range(0..3000));
                std::thread::sleep(run);
                fs.crash_after(0);
            }
            Ending::Fault => {
                std::thread::sleep(run / 2);
                inject_fault(&fs, &progress, &mut rng);
                std::thread::sleep(run / 2);
                fs.clear_faults();
                match shared.resume() {
                    Ok(()) | Err(Error::ReopenRequired { .. }) => {}
                    Err(e) => progress.fail(format!("resume() after the faults were lifted: {e}")),
                }
                std::thread::sleep(run / 2);
                fs.crash_after(0);
            }
            Ending::CleanClose => {
                std::thread::sleep(run);
            }
        }
        workload::finish(&progress, handles);
        if let Ending::CleanClose = ending {
            let db = Arc::try_unwrap(shared).map_err(|_| at("database still shared".into()))?;
            db.close().map_err(|e| at(format!("clean close: {e}")))?;
            everything_acked_survives = true;
        } else {
            drop(shared);
        }
        if let Ending::ProcessCrash = ending {
            rule = CrashRule {
                data: aidb::fs::UnsyncedData::Kept,
                dirs: aidb::fs::UnsyncedDirChanges::Kept,
            };
            everything_acked_survives = true;
        }
        let errors = progress.errors.lock().clone();
        if !errors.is_empty() {
            return Err(at(format!("{ending:?}: {}", errors.join("; "))));
        }
        let resynced = fs.syncs_after_failure();
        if !resynced.is_empty() {
            return Err(at(format!(
                "a file was synced again after its sync failed: {resynced:?}"
            )));
        }
        let floor = if everything_acked_survives {
            Progress::load(&progress.acked)
        } else {
            Progress::load(&progress.floor)
        };
        let issued = Progress::load(&progress.issued);
        let cut_seed = rng.gen();
        fs.power_cut_with(rule, cut_seed);
        stats.crash(match ending {
            Ending::PowerCut | Ending::AtCall => format!("power cut {}", rule.name()),
            other => format!("{other:?}"),
        });
        if rng.gen_bool(0.2) {
            // Power fails again while the database recovers.
            fs.crash_after(rng.gen_range(0..300));
            let early = open(&fs, &shape, &Params::draw(&shape, cycle + 1));
            let rule2 = CrashRule::ALL[rng.gen_range(0..CrashRule::ALL.len())];
            fs.power_cut_with(rule2, rng.gen());
            drop(early);
            stats.recovery_crashes += 1;
        }
        db = open(&fs, &shape, &Params::draw(&shape, cycle + 1))
            .map_err(|e| at(format!("reopen after {ending:?} ({}): {e}", rule.name())))?;
        verify::recovered(&db, &fs, &shape, &mut models, &floor, &issued)
            .map_err(|e| at(format!("after {ending:?} ({}): {e}", rule.name())))?;
        stats.add(&progress);
        stats.cycles += 1;
        cycle += 1;
    }
    db.close().map_err(|e| format!("final close: {e}"))
}

/// Injects one random fault: a call, a kind, a file type, after a random
/// number of matching calls, once or a few times or until lifted.
fn inject_fault(fs: &FaultInjectionFs, progress: &Progress, rng: &mut impl Rng) {
    let ops = [
        FsOp::Append,
        FsOp::Sync,
        FsOp::Create,
        FsOp::SyncDir,
        FsOp::Rename,
        FsOp::Remove,
        FsOp::Read,
    ];
    let op = ops[rng.gen_range(0..ops.len())];
    let kinds = [
        FaultKind::Eio,
        FaultKind::Enospc,
        FaultKind::TornEnospc,
        FaultKind::EioDropsUnsynced,
    ];
    let kind = kinds[rng.gen_range(0..kinds.len())];
    let paths = [
        None,
        Some(".log"),
        Some(".sst"),
        Some("MANIFEST"),
        Some("CURRENT"),
    ];
    let path = paths[rng.gen_range(0..paths.len())];
    let times = [Some(1), Some(3), None][rng.gen_range(0..3)];
    progress.faults_armed.store(true, Ordering::SeqCst);
    if op == FsOp::Read {
        progress.read_faults_armed.store(true, Ordering::SeqCst);
    }
    fs.inject(op, kind, path, rng.gen_range(0..20), times);
}

/// The child of a kill cycle: `AIDB_CRASHTEST_CHILD` is
/// `dir|database seed|cycle`. Reports `ready`, then `ack T I` for every
/// acknowledged batch, until killed; a failed check exits with status 3.
#[test]
fn crashtest_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.rsplitn(3, '|').collect();
    let (cycle, db_seed, dir): (u64, u64, &str) = (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2],
    );
    let shape = Arc::new(Shape::draw(db_seed));
    let params = Params::draw(&shape, cycle);
    let db = DB::open_with(params.options(&shape, Path::new(dir), OsFileSystem::shared()))
        .unwrap_or_else(|e| {
            eprintln!("child open: {e}");
            std::process::exit(3)
        });
    let mut models: Vec<ThreadModel> = (0..shape.threads).map(ThreadModel::new).collect();
    for (t, m) in models.iter_mut().enumerate() {
        let batch = Marker::batch_of(&db.get(marker_key(t)).unwrap()).unwrap();
        m.advance_to(&shape, batch).unwrap();
    }
    let start: Vec<i64> = models.iter().map(|m| m.applied).collect();
    let report = |t: usize, i: i64| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ack {t} {i}");
        let _ = out.flush();
    };
    let progress = Arc::new(Progress::new(&start, Some(Box::new(report))));
    let db = Arc::new(db);
    println!("ready");
    let _ = std::io::stdout().flush();
    let _handles = workload::start(&db, &shape, &params, &models, &progress, db_seed ^ cycle);
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let errors = progress.errors.lock().clone();
        if !errors.is_empty() {
            eprintln!("child check failed: {}", errors.join("; "));
            std::process::exit(3);
        }
    }
}

fn kill_cycles(db_seed: u64, until: Instant, stats: &mut Stats) -> Result<(), String> {
    let shape = Shape::draw(db_seed);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = tmp.path().join("db");
    let fs = OsFileSystem::shared();
    let mut models: Vec<ThreadModel> = (0..shape.threads).map(ThreadModel::new).collect();
    let none = vec![-1; shape.threads];
    let open =
        |cycle: u64| DB::open_with(Params::draw(&shape, cycle).options(&shape, &path, fs.clone()));
    let db = open(0).map_err(|e| format!("create: {e}"))?;
    verify::recovered(&db, &*fs, &shape, &mut models, &none, &none)?;
    db.close().map_err(|e| format!("close: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cycle = 0;
    while Instant::now() < until && cycle < 100 {
        let params = Params::draw(&shape, cycle);
        let at = |e: String| format!("cycle {cycle} ({}): {e}", params.summary());
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crashtest_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{db_seed}|{cycle}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| at(format!("spawn: {e}")))?;
        let acked = Arc::new(Mutex::new(vec![-1i64; shape.threads]));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // (The test harness may print "test … " before the
                    // child's first line.)
                    if line.ends_with("ready") {
                        let _ = ready_tx.send(());
                    } else if let Some((_, rest)) = line.split_once("ack ") {
                        let mut it = rest.split(' ').map(|x| x.parse::<i64>().unwrap_or(-1));
                        if let (Some(t), Some(i)) = (it.next(), it.next()) {
                            let mut a = acked.lock().unwrap();
                            if let Some(slot) = a.get_mut(t as usize) {
                                *slot = (*slot).max(i);
                            }
                        }
                    }
                }
            })
        };
        let mut stderr = child.stderr.take().expect("piped stderr");
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(60)).is_ok();
        if ready {
            std::thread::sleep(Duration::from_millis(params.run_ms));
        }
        let exited = child.try_wait().map_err(|e| e.to_string())?;
        let _ = child.kill(); // SIGKILL
        let status = child.wait().map_err(|e| e.to_string())?;
        reader
            .join()
            .map_err(|_| at("reader thread panicked".into()))?;
        let child_stderr = errors.join().unwrap_or_default();
        if exited.is_some() || !ready {
            return Err(at(format!(
                "the child ended before the kill ({status}, ready: {ready}): {child_stderr}"
            )));
        }
        stats.crash("SIGKILL");
        // A killed process loses nothing it had acknowledged, synced or
        // not; each thread had at most one batch in flight.
        let acked = acked.lock().unwrap().clone();
        let floor: Vec<i64> = models
            .iter()
            .zip(&acked)
            .map(|(m, &a)| m.applied.max(a))
            .collect();
        let issued: Vec<i64> = floor.iter().map(|f| f + 1).collect();
        stats.acks += acked
            .iter()
            .zip(&models)
            .map(|(&a, m)| (a - m.applied).max(0) as u64)
            .sum::<u64>();
        let db = open(cycle + 1).map_err(|e| at(format!("reopen after SIGKILL: {e}")))?;
        verify::recovered(&db, &*fs, &shape, &mut models, &floor, &issued)
            .map_err(|e| at(format!("after SIGKILL: {e}")))?;
        db.close().map_err(|e| at(format!("close: {e}")))?;
        stats.cycles += 1;
        cycle += 1;
    }
    Ok(())
}
