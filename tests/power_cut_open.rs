//! Power cuts during recovery: at every file-system call of `DB::open`
//! itself (log replay, the flush of recovered data, the new MANIFEST and
//! CURRENT, the removal of obsolete logs, MANIFESTs and orphan tables),
//! each under every persistence rule of [`CrashRule::ALL`], then open
//! again. The database found must be exactly the one an uninterrupted
//! recovery finds: recovery is idempotent, so a crash in the middle of it
//! neither loses what the first attempt had to recover nor replays a log
//! twice nor resurrects a deleted key. The starting states are the
//! workload of `power_cut.rs` stopped at calls spread over its run, each
//! cut under a different rule (or kept whole, as after a process crash).

mod common;

use aidb::fs::{CrashRule, FaultInjectionFs, UnsyncedData, UnsyncedDirChanges};
use aidb::DB;
use common::workload::{apply, check_no_orphans, contents, options, run, workload, Op, State};

/// A process crash: every byte written and every directory change kept.
const PROCESS_CRASH: CrashRule = CrashRule {
    data: UnsyncedData::Kept,
    dirs: UnsyncedDirChanges::Kept,
};

/// The file system a workload leaves when the machine dies after `k` of
/// its calls and the power goes out under `rule`; and how many ops must
/// have survived (`durable`) and how many were issued.
fn start_state(ops: &[Op], k: u64, rule: CrashRule) -> (FaultInjectionFs, usize, usize) {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    fs.crash_after(k);
    let (mut issued, mut durable) = (0, 0);
    for op in ops {
        issued += 1;
        if run(&db, op).is_err() {
            break;
        }
        if matches!(op, Op::Batch(_, true) | Op::Flush | Op::Compact) {
            durable = issued;
        }
    }
    let start = fs.fork();
    start.power_cut_with(rule, k);
    fs.power_cut();
    drop(db);
    (start, durable, issued)
}

/// Opens `fs` and returns what the database holds, checking that it has
/// no leftover files once recovery and the work it started are done.
fn recovered(fs: &FaultInjectionFs, what: &str) -> State {
    let db = DB::open_with(options(fs)).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let got = contents(&db).unwrap_or_else(|e| panic!("{what}: read failed: {e}"));
    check_no_orphans(fs, &db, what);
    db.close()
        .unwrap_or_else(|e| panic!("{what}: close failed: {e}"));
    got
}

/// Checks that `got` is the state after some prefix `ops[..m]`,
/// `durable <= m <= issued`.
fn assert_prefix(got: &State, ops: &[Op], durable: usize, issued: usize, what: &str) {
    let mut state = State::new();
    let mut matched = durable == 0 && state == *got;
    for (i, op) in ops.iter().enumerate().take(issued) {
        if matched {
            break;
        }
        apply(&mut state, op);
        matched = i + 1 >= durable && state == *got;
    }
    assert!(
        matched,
        "{what}: no prefix of the {issued} issued ops (at least {durable} durable)"
    );
}

/// Cuts the power at every call of `DB::open` on `start` under every rule
/// and checks each reopen against `expected`. Returns the crash states
/// checked.
fn cut_every_open_call(start: &FaultInjectionFs, expected: &State, what: &str) -> usize {
    // How many calls an uninterrupted open makes, with the background work
    // it starts (a flush or compaction of what it recovered).
    let probe = start.fork();
    let db = DB::open_with(options(&probe)).unwrap();
    db.wait_for_idle().unwrap();
    let calls = probe.call_count();
    drop(db);
    let mut states = 0;
    for k in 0..=calls + 2 {
        let fs = start.fork();
        fs.crash_after(k);
        // Open may fail (the machine died under it) or succeed and leave
        // background work that fails; either way nothing more reaches disk.
        let db = DB::open_with(options(&fs));
        for (r, rule) in CrashRule::ALL.iter().enumerate() {
            let copy = fs.fork();
            copy.power_cut_with(*rule, k * 16 + r as u64);
            let at = format!("{what}, cut at call {k} of open under {}", rule.name());
            let got = recovered(&copy, &at);
            assert!(
                got == *expected,
                "{at}: recovery is not idempotent: {} keys, expected {}",
                got.len(),
                expected.len()
            );
            states += 1;
        }
        fs.power_cut();
        drop(db);
        let resynced = fs.syncs_after_failure();
        assert!(resynced.is_empty(), "{what}: resynced {resynced:?}");
    }
    states
}

#[test]
fn power_cut_at_every_call_of_open_under_every_rule_then_reopen() {
    let ops = workload(150, 11);
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    let first = fs.call_count();
    for op in &ops {
        run(&db, op).unwrap();
    }
    let total = fs.call_count() - first;
    drop(db);
    let rules: Vec<CrashRule> = CrashRule::ALL
        .iter()
        .copied()
        .chain([PROCESS_CRASH])
        .collect();
    let started = std::time::Instant::now();
    let (mut starts, mut states) = (0, 0);
    // Stops spread over the run, so recovery meets logs of every size,
    // half-finished flushes and compactions, and leftovers to remove.
    for (i, k) in (0..total).step_by((total / 14) as usize).enumerate() {
        let rule = rules[i % rules.len()];
        let (start, durable, issued) = start_state(&ops, k, rule);
        let what = format!("workload stopped at call {k} under {}", rule.name());
        let expected = recovered(&start.fork(), &what);
        assert_prefix(&expected, &ops, durable, issued, &what);
        // Opening the recovered database again changes nothing.
        let again = start.fork();
        assert_eq!(recovered(&again, &what), expected, "{what}: first reopen");
        assert_eq!(recovered(&again, &what), expected, "{what}: second reopen");
        states += cut_every_open_call(&start, &expected, &what);
        starts += 1;
    }
    println!(
        "{starts} starting states; power cut at every call of open under {} rules: \
         {states} crash states in {:.1?}, 0 violations",
        CrashRule::ALL.len(),
        started.elapsed()
    );
}
