//! What the SIGKILL crash tests (`crash_kill.rs`, `crash_kill_families.rs`)
//! share: tiny options, the check of the directory after a reopen, the
//! number of cycles, and the lock that runs child-spawning tests one at a
//! time.

use aidb::{Options, DB};
use std::path::Path;

/// A batch's operations: key and new value (`None` for a delete).
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The tests that spawn children run one at a time: a child forked while
/// another test of this process holds a database open briefly shares that
/// database's lock (until it execs), which would make the next child of the
/// other test find the directory locked.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tiny sizes, so that the child flushes and compacts all the time.
pub fn options(dir: &Path) -> Options {
    Options {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Options::new(dir)
    }
}

/// After a reopen the directory holds only the tables the MANIFEST lists,
/// one MANIFEST, the live log, and the fixed files.
pub fn check_directory(db: &DB, dir: &Path, cycle: usize) {
    db.wait_for_idle().unwrap();
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let count = |f: &dyn Fn(&str) -> bool| names.iter().filter(|n| f(n)).count();
    let tables = count(&|n| n.ends_with(".sst"));
    // Every family's tables (only the default family's in the tests that
    // create none).
    let listed: usize = db
        .column_family_names()
        .iter()
        .map(|name| {
            let cf = db.column_family(name).expect("listed family");
            cf.stats().levels.iter().map(|l| l.files).sum::<usize>()
        })
        .sum();
    assert_eq!(tables, listed, "cycle {cycle}: stray tables in {names:?}");
    assert_eq!(
        count(&|n| n.starts_with("MANIFEST-")),
        1,
        "cycle {cycle}: {names:?}"
    );
    assert_eq!(
        count(&|n| n.ends_with(".log")),
        1,
        "cycle {cycle}: {names:?}"
    );
    let known = |n: &str| {
        n.ends_with(".sst")
            || n.ends_with(".log")
            || n.starts_with("MANIFEST-")
            || ["CURRENT", "LOCK", "IDENTITY"].contains(&n)
    };
    assert!(
        names.iter().all(|n| known(n)),
        "cycle {cycle}: unexpected files in {names:?}"
    );
}

/// Kill cycles per test: `AIDB_CRASH_CYCLES`, or `default`.
pub fn cycles_or(default: usize) -> usize {
    std::env::var("AIDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
