//! I/O faults while several things are in flight at once: three writer
//! threads, a thread calling `compact_range`, and three background jobs
//! (flushes and compactions) run while random faults (EIO, ENOSPC, ENOSPC
//! that tears the write) hit random calls on logs, tables and the MANIFEST.
//! So a failure hits one job while another is running (a torn MANIFEST
//! record while a compaction is about to install, a full disk during a
//! flush while the log is being written). After each round the faults are
//! lifted and writes resumed (or the database reopened when `resume` says
//! it must be): every acknowledged write must be there, and no write may
//! come back older than an acknowledged one.
//!
//! `AIDB_FAULT_ROUNDS` sets the number of rounds (default 40).

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{Error, Options, DB};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WRITERS: usize = 3;
const KEYS: usize = 150;

fn options(fs: &FaultInjectionFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        max_background_jobs: 3,
        block_size: 512,
        ..Options::new("/db")
    }
}

fn key(t: usize, k: usize) -> Vec<u8> {
    format!("w{t}-{k:04}").into_bytes()
}

fn value(version: u64) -> Vec<u8> {
    let mut v = version.to_be_bytes().to_vec();
    v.extend(std::iter::repeat_n(b'v', 40 + (version % 50) as usize));
    v
}

/// Per writer and key: the last acknowledged and the last attempted version.
type Versions = Vec<Vec<(u64, u64)>>;

fn check(db: &DB, versions: &Versions, what: &str) {
    for (t, keys) in versions.iter().enumerate() {
        for (k, &(acked, attempted)) in keys.iter().enumerate() {
            let got = db
                .get(key(t, k))
                .unwrap_or_else(|e| panic!("{what}: read failed: {e}"))
                .map(|v| u64::from_be_bytes(v[..8].try_into().unwrap()))
                .unwrap_or(0);
            assert!(
                acked <= got && got <= attempted,
                "{what}: writer {t} key {k}: got version {got}, acknowledged {acked}, attempted {attempted}"
            );
        }
    }
}

fn random_fault(rng: &mut impl Rng, fs: &FaultInjectionFs) {
    let op = [
        FsOp::Append,
        FsOp::Sync,
        FsOp::Create,
        FsOp::SyncDir,
        FsOp::Read,
    ][rng.gen_range(0..5)];
    let kind = [FaultKind::Eio, FaultKind::Enospc, FaultKind::TornEnospc][rng.gen_range(0..3)];
    let path = [Some(".sst"), Some(".log"), Some("MANIFEST"), None][rng.gen_range(0..4)];
    fs.inject(
        op,
        kind,
        path,
        rng.gen_range(0..20),
        Some(rng.gen_range(1..4)),
    );
}

#[test]
fn faults_with_writers_flushes_and_compactions_in_flight_lose_nothing() {
    let rounds: usize = std::env::var("AIDB_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let fs = FaultInjectionFs::new();
    let mut db = Arc::new(DB::open_with(options(&fs)).unwrap());
    let versions: Arc<Mutex<Versions>> = Arc::new(Mutex::new(vec![vec![(0, 0); KEYS]; WRITERS]));
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let (mut reopens, mut resumes, mut failed_writes) = (0, 0, 0);
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..WRITERS {
            let (db, versions, stop) = (db.clone(), versions.clone(), stop.clone());
            let seed = (round * WRITERS + t) as u64;
            threads.push(std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut failed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let k = rng.gen_range(0..KEYS);
                    let next = {
                        let mut v = versions.lock();
                        v[t][k].1 += 1;
                        v[t][k].1
                    };
                    // Only this thread writes its keys, so versions of a
                    // key reach the engine in order.
                    match db.put(key(t, k), value(next)) {
                        Ok(()) => versions.lock()[t][k].0 = next,
                        Err(_) => {
                            failed += 1;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                failed
            }));
        }
        let compactor = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = db.compact_range(..);
                    std::thread::sleep(Duration::from_millis(3));
                }
            })
        };
        for _ in 0..rng.gen_range(1..4) {
            std::thread::sleep(Duration::from_millis(rng.gen_range(1..15)));
            random_fault(&mut rng, &fs);
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..30)));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            failed_writes += t.join().unwrap();
        }
        compactor.join().unwrap();
        fs.clear_faults();

        let what = format!("round {round}");
        let resumed = db.resume();
        match resumed {
            Ok(()) => resumes += 1,
            Err(Error::ReopenRequired { .. }) => {
                check(&db, &versions.lock(), &format!("{what}, before reopening"));
                drop(db);
                db = Arc::new(
                    DB::open_with(options(&fs)).unwrap_or_else(|e| panic!("{what}: reopen: {e}")),
                );
                reopens += 1;
            }
            Err(e) => panic!("{what}: resume with the faults lifted: {e}"),
        }
        check(&db, &versions.lock(), &what);
        db.put("probe", "after the round")
            .unwrap_or_else(|e| panic!("{what}: writes did not come back: {e}"));
    }
    println!(
        "{rounds} rounds: {resumes} resumed, {reopens} reopened, {failed_writes} writes failed"
    );
    db.wait_for_idle().unwrap();
    let names = fs.list(Path::new("/db")).unwrap();
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    let live: usize = db.stats().levels.iter().map(|l| l.files).sum();
    assert_eq!(tables, live, "orphan tables: {names:?}");
    drop(db);
    let db = DB::open_with(options(&fs)).unwrap();
    check(&db, &versions.lock(), "after the final reopen");
    assert!(failed_writes > 0, "no fault ever hit a write");
}
