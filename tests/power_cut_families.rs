//! Power cuts at every file-system call of a workload with column
//! families — batches spanning families, creations, drops, a dropped name
//! re-created, flushes and compactions of single families, close and
//! reopen — each under every persistence rule of [`CrashRule::ALL`]. After
//! each: the database opens; the families are exactly the acknowledged
//! creations minus the acknowledged drops (the one interrupted may or may
//! not have happened); every family holds only its own values, never
//! another family's or those of a dropped family of the same name; all
//! families together equal one prefix of the ops covering every write
//! acknowledged as durable; no orphan file remains.

mod common;

use aidb::fs::{CrashRule, FaultInjectionFs};
use aidb::DB;
use common::families::*;
use common::workload::{check_no_orphans, options, State};
use std::collections::{BTreeMap, BTreeSet};

/// Runs the families workload with the file system dying after `k` calls;
/// then, for each rule, cuts the power on a copy of that state, reopens and
/// checks (see `check_recovered`). Returns, per rule, what the crash
/// interrupted.
fn family_crash_at(ops: &[FamilyOp], gens: &[Vec<usize>], k: u64) -> Vec<String> {
    let fs = FaultInjectionFs::new();
    let mut db = Some(DB::open_with(options(&fs)).expect("first open"));
    fs.crash_after(k);
    let mut issued = 0;
    // Batches `..durable` must survive.
    let mut durable = 0;
    let mut failed = None;
    for (i, op) in ops.iter().enumerate() {
        issued = i + 1;
        if let Err(e) = run_family_op(&mut db, &fs, op) {
            failed = Some(e);
            break;
        }
        match op {
            FamilyOp::Batch(_, sync) => {
                if *sync {
                    durable = i + 1;
                }
            }
            // A flush (or compaction, which flushes first) syncs the
            // shared log: every write before it is durable, in any family
            // (see `db_flush_makes_other_families_writes_durable`).
            FamilyOp::Flush(_) | FamilyOp::Compact(_) => durable = i + 1,
            // A clean close flushes every family.
            FamilyOp::Close => durable = i + 1,
            FamilyOp::Create(_) | FamilyOp::Drop(_) | FamilyOp::Open => {}
        }
    }
    let mut interrupted = Vec::new();
    for (r, rule) in CrashRule::ALL.iter().enumerate() {
        let copy = fs.fork();
        copy.power_cut_with(*rule, k * 16 + r as u64);
        let what = format!(
            "crash at call {k} under {} ({issued} ops issued, failure: {failed:?})",
            rule.name()
        );
        interrupted.push(check_recovered(
            &copy, ops, gens, issued, durable, &failed, &what,
        ));
    }
    fs.power_cut();
    drop(db); // the dead machine's handle: all its calls now fail
    let resynced = fs.syncs_after_failure();
    assert!(
        resynced.is_empty(),
        "crash at call {k}: synced again after a failed sync: {resynced:?}"
    );
    interrupted
}

/// Checks a database a power cut left: the families are exactly the
/// acknowledged creations minus the acknowledged drops (the one operation
/// cut short may or may not have happened), and every family holds what
/// the batches of one prefix of the ops wrote to its generation, a prefix
/// that covers every write acknowledged as durable.
///
/// Returns what the crash interrupted: the kind of the op that failed (or
/// "none") and, for a create or drop, whether it took effect.
fn check_recovered(
    fs: &FaultInjectionFs,
    ops: &[FamilyOp],
    gens: &[Vec<usize>],
    issued: usize,
    durable: usize,
    failed: &Option<aidb::Error>,
    what: &str,
) -> String {
    let db = DB::open_with(options(fs)).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    // The families: every acknowledged create and drop done; the op that
    // failed (if a create or drop) done or not.
    let acked = if failed.is_some() { issued - 1 } else { issued };
    let mut live: BTreeMap<String, usize> = BTreeMap::from([("default".into(), DEFAULT_GEN)]);
    for (i, op) in ops.iter().enumerate().take(acked) {
        match op {
            FamilyOp::Create(n) => {
                live.insert(n.clone(), i);
            }
            FamilyOp::Drop(n) => {
                live.remove(n);
            }
            _ => {}
        }
    }
    let names_acked: BTreeSet<String> = live.keys().cloned().collect();
    let mut allowed = vec![live.clone()];
    if failed.is_some() {
        let mut with_failed = live.clone();
        match &ops[acked] {
            FamilyOp::Create(n) => {
                with_failed.insert(n.clone(), acked);
                allowed.push(with_failed);
            }
            FamilyOp::Drop(n) => {
                with_failed.remove(n);
                allowed.push(with_failed);
            }
            _ => {}
        }
    }
    let names: BTreeSet<String> = db.column_family_names().into_iter().collect();
    let live = allowed
        .into_iter()
        .find(|l| l.keys().cloned().collect::<BTreeSet<_>>() == names)
        .unwrap_or_else(|| {
            panic!("{what}: families {names:?}, expected those of {live:?} (± the failed op)")
        });
    // Every family's contents: only its own generation's values (never
    // another family's, never those of a dropped family of the same name),
    // and together the effect of one prefix of the ops.
    let mut got: BTreeMap<String, State> = BTreeMap::new();
    for (name, gen) in &live {
        let cf = family(&db, name);
        let state = cf
            .iter()
            .collect::<aidb::Result<State>>()
            .unwrap_or_else(|e| panic!("{what}: reading family {name} failed: {e}"));
        let tag = value_tag(name, *gen);
        if let Some((k, v)) = state.iter().find(|(_, v)| !v.starts_with(tag.as_bytes())) {
            panic!(
                "{what}: family {} holds {}={}…, not its own",
                describe(name, *gen),
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&v[..v.len().min(24)])
            );
        }
        got.insert(name.clone(), state);
    }
    let matches = |m: usize| {
        let states = family_states(ops, gens, m);
        live.iter()
            .all(|(name, g)| got[name] == states.get(g).cloned().unwrap_or_default())
    };
    if !(durable..=issued).any(matches) {
        // Say what is wrong with the closest candidates.
        let mut detail = String::new();
        for m in [durable, issued] {
            let states = family_states(ops, gens, m);
            for (name, g) in &live {
                let want = states.get(g).cloned().unwrap_or_default();
                if got[name] != want {
                    let differ = got[name]
                        .keys()
                        .chain(want.keys())
                        .filter(|k| got[name].get(*k) != want.get(*k))
                        .count();
                    detail += &format!(
                        "\n  after op {m}: family {} differs in {differ} keys",
                        describe(name, *g)
                    );
                }
            }
        }
        panic!(
            "{what}: the families' contents are no prefix of the ops in {durable}..={issued}{detail}"
        );
    }
    check_no_orphans(fs, &db, what);
    db.close().unwrap();
    match (failed, ops.get(acked)) {
        (None, _) | (_, None) => "none".into(),
        (Some(_), Some(op @ (FamilyOp::Create(_) | FamilyOp::Drop(_)))) => {
            let done = live.keys().cloned().collect::<BTreeSet<_>>() != names_acked;
            let kind = format!("{op:?}");
            let kind = kind.split('(').next().unwrap_or_default();
            format!("{kind} ({})", if done { "durable" } else { "lost" })
        }
        (Some(_), Some(op)) => {
            let kind = format!("{op:?}");
            kind.split('(').next().unwrap_or_default().to_string()
        }
    }
}

#[test]
fn power_cut_at_every_call_with_column_families_under_every_rule() {
    let ops = family_workload(250, 0);
    let gens = generations(&ops);
    // The workload must exercise what it claims to: a dropped name
    // re-created and written again, batches spanning families, reopens.
    let count = |f: &dyn Fn(&FamilyOp) -> bool| ops.iter().filter(|op| f(op)).count();
    let recreated = FAMILY_POOL
        .iter()
        .any(|n| count(&|op| matches!(op, FamilyOp::Create(c) if c == n)) >= 2);
    assert!(recreated, "no family name is re-created: {ops:?}");
    assert!(count(&|op| matches!(op, FamilyOp::Drop(_))) >= 2);
    assert!(count(&|op| matches!(op, FamilyOp::Close)) >= 1);
    assert!(ops.iter().zip(&gens).any(|(op, g)| {
        matches!(op, FamilyOp::Batch(..)) && g.iter().collect::<BTreeSet<_>>().len() >= 3
    }));

    // How many calls the whole workload makes, and that it ends as the
    // model says.
    let fs = FaultInjectionFs::new();
    let mut db = Some(DB::open_with(options(&fs)).unwrap());
    let start = fs.call_count();
    for op in &ops {
        run_family_op(&mut db, &fs, op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    let total = fs.call_count() - start;
    let db = db.expect("open at the end");
    let states = family_states(&ops, &gens, ops.len());
    for (name, g) in generations_live(&ops) {
        let got: State = family(&db, &name).iter().map(|r| r.unwrap()).collect();
        assert!(
            got == states.get(&g).cloned().unwrap_or_default(),
            "family {name} at the end"
        );
    }
    drop(db);
    let step = std::env::var("AIDB_CRASH_STEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let started = std::time::Instant::now();
    let mut points = 0;
    let mut interrupted: BTreeMap<String, usize> = BTreeMap::new();
    for k in (0..=total + 5).step_by(step) {
        for what in family_crash_at(&ops, &gens, k) {
            *interrupted.entry(what).or_default() += 1;
            points += 1;
        }
    }
    let kinds: BTreeMap<String, usize> = ops.iter().fold(BTreeMap::new(), |mut m, op| {
        let kind = format!("{op:?}");
        *m.entry(kind.split('(').next().unwrap_or_default().to_string())
            .or_default() += 1;
        m
    });
    println!(
        "families workload: {} ops {kinds:?}, {total} file-system calls; \
         cut after every {step} under {} rules: {points} crash states in {:.1?}, 0 violations; \
         op interrupted by the crash: {interrupted:?}",
        ops.len(),
        CrashRule::ALL.len(),
        started.elapsed()
    );
}
