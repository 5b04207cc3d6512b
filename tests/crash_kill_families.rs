//! Process-level crash test across column families: a child writes
//! batches spanning families while families are created and dropped, and
//! reports each acknowledged one; the parent kills it with SIGKILL at a
//! random moment, reopens, and checks each family as a prefix of the
//! batches that touched it (see `crash_kill.rs` for the single-family
//! variants).
//!
//! `AIDB_CRASH_CYCLES` sets the number of kill cycles (default 150).

mod common;

use aidb::{ColumnFamilyOptions, WriteBatch, WriteOptions, DB};
use common::kill::{check_directory, cycles_or, options, serial, Ops};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this process is one of the children (the parent test then does
/// nothing).
fn is_child() -> bool {
    std::env::var(FAMILIES_ENV).is_ok()
}

const FAMILIES_ENV: &str = "AIDB_CRASH_FAMILIES_DIR";
/// Batches per epoch: just before batch `e * PERIOD` the child drops
/// family `late{e-2}` and creates `late{e}`; the batches of epoch `e`
/// write to `late{e}` and `late{e-1}` (and to the fixed families).
const PERIOD: u64 = 40;
const FIXED_FAMILIES: [&str; 4] = ["default", "a", "b", "rare"];
const FAMILY_KEYS: u64 = 30;
/// In every family a batch touches: the batch's number.
const LAST: &[u8] = b"~last";

/// Different sizes per family, so that flushes and compactions happen at
/// different times in each; the default family has `options`' sizes.
fn family_options(name: &str) -> ColumnFamilyOptions {
    let tiny = ColumnFamilyOptions {
        write_buffer_size: 4 << 10,
        target_file_size: 8 << 10,
        max_bytes_for_level_base: 32 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 512,
        ..Default::default()
    };
    match name {
        "a" => ColumnFamilyOptions {
            target_file_size: 4 << 10,
            max_bytes_for_level_base: 16 << 10,
            block_size: 256,
            ..tiny
        },
        "b" => ColumnFamilyOptions {
            write_buffer_size: 16 << 10,
            target_file_size: 16 << 10,
            max_bytes_for_level_base: 64 << 10,
            level0_file_num_compaction_trigger: 3,
            block_size: 1024,
            ..tiny
        },
        "rare" => ColumnFamilyOptions {
            write_buffer_size: 8 << 10,
            ..tiny
        },
        _ => tiny,
    }
}

/// Family `name`'s life: created just before batch `.0`, dropped just
/// before batch `.1` (never for the fixed families).
fn lifetime(name: &str) -> (u64, Option<u64>) {
    if FIXED_FAMILIES.contains(&name) {
        return (0, None);
    }
    let e: u64 = name
        .strip_prefix("late")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unknown column family {name:?}"));
    (e * PERIOD, Some((e + 2) * PERIOD))
}

/// The family operations done just before batch `i`, in order: `true`
/// creates, `false` drops.
fn ddl_before(i: u64) -> Vec<(bool, String)> {
    let mut ddl = Vec::new();
    if i == 0 {
        ddl.extend(["a", "b", "rare"].map(|n| (true, n.to_string())));
    }
    if i.is_multiple_of(PERIOD) {
        let e = i / PERIOD;
        if e >= 2 {
            ddl.push((false, format!("late{}", e - 2)));
        }
        ddl.push((true, format!("late{e}")));
    }
    ddl
}

/// Whether batch `i` writes to family `name`.
fn touches(i: u64, name: &str) -> bool {
    match name {
        "default" => true,
        "a" => i % 3 != 2,
        "b" => i.is_multiple_of(2),
        "rare" => i % 61 == 7,
        _ => {
            let (created, _) = lifetime(name);
            let (mine, epoch) = (created / PERIOD, i / PERIOD);
            (epoch == mine && i % 4 == 1) || (epoch == mine + 1 && i % 5 == 3)
        }
    }
}

/// The families batch `i` writes to.
fn families_of(i: u64) -> Vec<String> {
    let e = i / PERIOD;
    let mut names: Vec<String> = FIXED_FAMILIES.iter().map(|n| n.to_string()).collect();
    names.push(format!("late{e}"));
    if e > 0 {
        names.push(format!("late{}", e - 1));
    }
    names.retain(|n| touches(i, n));
    names
}

/// Batch `i`'s operations on family `name`: two puts, a delete and the
/// batch number. Values name the family, so data that ends up in the
/// wrong family cannot pass for the right one.
fn family_ops(i: u64, name: &str) -> Ops {
    let salt: u64 = name.bytes().map(u64::from).sum();
    let key = |n: u64| format!("k{:02}", n % FAMILY_KEYS).into_bytes();
    let mut ops: Ops = (0..2)
        .map(|j| {
            let v = format!("{name}:{i}.{j}-")
                .into_bytes()
                .repeat((i % 6 + 1) as usize);
            (key(i * 7 + j * 13 + salt), Some(v))
        })
        .collect();
    ops.push((key(i * 11 + 5 + salt), None));
    ops.push((LAST.to_vec(), Some(i.to_le_bytes().to_vec())));
    ops
}

/// Every family's contents after batches `0..applied`, advanced as the
/// recovered prefix grows (it never shrinks: each child starts one past
/// it).
#[derive(Default)]
struct FamilyModel {
    applied: u64,
    states: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl FamilyModel {
    fn advance(&mut self, last: Option<u64>) {
        let end = last.map_or(0, |l| l + 1);
        assert!(end >= self.applied, "the recovered prefix shrank");
        for i in self.applied..end {
            for name in families_of(i) {
                let state = self.states.entry(name.clone()).or_default();
                for (k, v) in family_ops(i, &name) {
                    match v {
                        Some(v) => state.insert(k, v),
                        None => state.remove(&k),
                    };
                }
            }
        }
        self.applied = end;
        // Families dropped for good.
        self.states
            .retain(|name, _| lifetime(name).1.is_none_or(|d| d >= end));
    }

    /// Family `name`'s contents after batches `0..applied`.
    fn state(&self, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.states.get(name).cloned().unwrap_or_default()
    }
}

fn family_last(cf: &aidb::ColumnFamily) -> Option<u64> {
    cf.get(LAST)
        .unwrap()
        .map(|v| u64::from_le_bytes(v.try_into().expect("marker is 8 bytes")))
}

/// Child: writes batches across the families (synced and not), doing the
/// family operations due before each, and reports every acknowledged
/// batch (`ack N`), creation (`create NAME`) and drop (`drop NAME`).
#[test]
fn crash_child_families() {
    let Ok(dir) = std::env::var(FAMILIES_ENV) else {
        return;
    };
    let db = DB::open_with(options(Path::new(&dir))).expect("child open");
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    let mut next = family_last(&db.default_column_family()).map_or(0, |l| l + 1);
    say(format!("start {next}"));
    loop {
        // The previous run may have been killed among these: do the ones
        // still missing.
        for (create, name) in ddl_before(next) {
            let exists = db.column_family(&name).is_some();
            if create && !exists {
                db.create_column_family(&name, family_options(&name))
                    .expect("child create");
                say(format!("create {name}"));
            } else if !create && exists {
                db.drop_column_family(&name).expect("child drop");
                say(format!("drop {name}"));
            }
        }
        let mut batch = WriteBatch::new();
        for name in families_of(next) {
            let cf = db
                .column_family(&name)
                .unwrap_or_else(|| panic!("child: family {name} missing before batch {next}"));
            for (k, v) in family_ops(next, &name) {
                match v {
                    Some(v) => batch.put_cf(&cf, k, v),
                    None => batch.delete_cf(&cf, k),
                };
            }
        }
        let sync = next % 3 != 1;
        db.write_opt(batch, &WriteOptions { sync })
            .expect("child write");
        say(format!("ack {next}"));
        // Family-level maintenance, besides the background work.
        if next % 50 == 25 {
            db.column_family("b").unwrap().compact_range(..).unwrap();
        }
        // `rare` otherwise keeps its few writes in its memtable, and so old
        // logs alive, for hundreds of batches.
        if next % 305 == 8 {
            db.column_family("rare").unwrap().flush().unwrap();
        }
        next += 1;
    }
}

/// What the families child reported.
#[derive(Debug, Clone, PartialEq)]
enum Ack {
    /// The batch the child starts with: one past what its open found.
    Start(u64),
    Batch(u64),
    Create(String),
    Drop(String),
}

/// How the recovered states ended, over all cycles.
#[derive(Default, Debug)]
struct FamilyCrashStats {
    /// Recovered between batch P and the family operations before P + 1:
    /// none of them done, some done, all done.
    ddl_none: usize,
    ddl_some: usize,
    ddl_all: usize,
    created: usize,
    dropped: usize,
}

/// Checks a reopened database against the families child's acks: returns
/// the recovered batch number. `floor` is the batch every family must
/// hold at least: the last acknowledged one (the child's writes survive
/// a process kill once acknowledged, synced or not), or the one recovered
/// at the previous cycle.
fn check_families(
    db: &DB,
    model: &mut FamilyModel,
    floor: Option<u64>,
    acks: &[Ack],
    cycle: usize,
    stats: &mut FamilyCrashStats,
) -> Option<u64> {
    let last = family_last(&db.default_column_family());
    if let Some(floor) = floor {
        let got = last.unwrap_or_else(|| panic!("cycle {cycle}: acked batch {floor} lost"));
        assert!(
            got >= floor,
            "cycle {cycle}: batch {floor} acknowledged, only {got} recovered"
        );
    }
    // At most the one batch in flight beyond it.
    let next = last.map_or(0, |l| l + 1);
    assert!(
        next <= floor.map_or(0, |f| f + 1) + 1,
        "cycle {cycle}: recovered batch {last:?}, never issued (floor {floor:?}, acks {:?})",
        &acks[acks.len().saturating_sub(6)..]
    );

    // Which families exist: every family operation due before batch
    // `last` was done (it returned before `last` was written); of those
    // due just before `next`, a prefix, including every acknowledged one.
    let names: BTreeSet<String> = db.column_family_names().into_iter().collect();
    for name in &names {
        let (created, dropped) = lifetime(name); // panics for unknown names
        assert!(
            created <= next && dropped.is_none_or(|d| d >= next),
            "cycle {cycle}: family {name} exists after batch {last:?}"
        );
    }
    let mut universe: BTreeSet<String> = names.clone();
    universe.extend(FIXED_FAMILIES.iter().map(|n| n.to_string()));
    universe.extend((0..=next / PERIOD + 1).map(|e| format!("late{e}")));
    for name in &universe {
        let (created, dropped) = lifetime(name);
        let exists = names.contains(name);
        if created < next && dropped.is_none_or(|d| d > next) {
            assert!(
                exists,
                "cycle {cycle}: family {name} lost (recovered batch {last:?})"
            );
        }
        if dropped.is_some_and(|d| d < next) || created > next {
            assert!(
                !exists,
                "cycle {cycle}: family {name} exists (recovered batch {last:?})"
            );
        }
        // An acknowledged creation stands unless the drop due before
        // `next` may have followed it.
        if acks.contains(&Ack::Create(name.clone())) && dropped.is_none_or(|d| d > next) {
            assert!(
                exists,
                "cycle {cycle}: acknowledged creation of {name} lost (recovered batch {last:?}, \
                 families {names:?}, acks {:?})",
                &acks[acks.len().saturating_sub(8)..]
            );
        }
        if acks.contains(&Ack::Drop(name.clone())) {
            assert!(!exists, "cycle {cycle}: acknowledged drop of {name} undone");
        }
    }
    let due = ddl_before(next);
    let done: Vec<bool> = due
        .iter()
        .map(|(create, name)| names.contains(name) == *create)
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] || !w[1]),
        "cycle {cycle}: family operations {due:?} before batch {next}: done {done:?}, not a prefix"
    );
    if !due.is_empty() {
        match done.iter().filter(|d| **d).count() {
            0 => stats.ddl_none += 1,
            n if n == due.len() => stats.ddl_all += 1,
            _ => stats.ddl_some += 1,
        }
    }

    model.advance(last);
    // Every family holds exactly the prefix `0..=last` of its batches: no
    // batch visible in one family and missing from another.
    for name in &names {
        let cf = db.column_family(name).unwrap();
        let expect = model.state(name);
        let expect_last = expect
            .get(LAST)
            .map(|v| u64::from_le_bytes(v.as_slice().try_into().unwrap()));
        let got_last = family_last(&cf);
        assert_eq!(
            got_last, expect_last,
            "cycle {cycle}: family {name} ends at batch {got_last:?}, but batch {last:?} \
             is visible in the default family (a batch split across families)"
        );
        let state: BTreeMap<Vec<u8>, Vec<u8>> = cf.iter().map(|r| r.unwrap()).collect();
        assert!(
            state == expect,
            "cycle {cycle}: family {name} is not the prefix of its batches up to {last:?}"
        );
    }
    last
}

#[test]
fn sigkill_with_batches_across_column_families() {
    if is_child() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xCF);
    let cycles = cycles_or(150);
    let mut recovered: Option<u64> = None;
    let mut model = FamilyModel::default();
    let mut stats = FamilyCrashStats::default();
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_families",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FAMILIES_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ack = match line.split_once(' ') {
                    Some(("start", n)) => Ack::Start(n.parse().unwrap()),
                    Some(("ack", n)) => Ack::Batch(n.parse().unwrap()),
                    Some(("create", name)) => Ack::Create(name.to_string()),
                    Some(("drop", name)) => Ack::Drop(name.to_string()),
                    _ => continue,
                };
                let _ = tx.send(ack);
            }
        });
        // Every second cycle aims at the family operations: the kill comes
        // 0-1.5 ms after the last batch of an epoch is acknowledged, while
        // the child drops and creates families. The others kill at a random
        // moment.
        let aimed = cycle % 2 == 1;
        let run_for = if aimed {
            Duration::from_secs(3)
        } else {
            Duration::from_millis(rng.gen_range(5..150))
        };
        let start = Instant::now();
        let mut acks = Vec::new();
        while start.elapsed() < run_for {
            if let Ok(ack) = rx.recv_timeout(Duration::from_millis(1)) {
                let epoch_end = matches!(ack, Ack::Batch(i) if (i + 1) % PERIOD == 0);
                acks.push(ack);
                if aimed && epoch_end {
                    std::thread::sleep(Duration::from_micros(rng.gen_range(0..1500)));
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        // Only the kill may end it: a child that stopped on its own (say, it
        // found a family missing) would pass unnoticed otherwise.
        #[cfg(unix)]
        assert!(
            status.code().is_none(),
            "cycle {cycle}: the child exited on its own: {status}"
        );
        #[cfg(not(unix))]
        let _ = status;
        reader.join().unwrap();
        acks.extend(rx.try_iter());
        stats.created += acks.iter().filter(|a| matches!(a, Ack::Create(_))).count();
        stats.dropped += acks.iter().filter(|a| matches!(a, Ack::Drop(_))).count();
        // The child's open must have found what the parent's open found
        // at the end of the previous cycle (the parent closed it cleanly
        // in between).
        if let Some(Ack::Start(start)) = acks.first() {
            assert_eq!(
                *start,
                recovered.map_or(0, |l| l + 1),
                "cycle {cycle}: the child's open found a different last batch than the \
                 parent's open before it"
            );
        }
        let acked = acks.iter().rev().find_map(|a| match a {
            Ack::Batch(i) => Some(*i),
            _ => None,
        });

        let db = DB::open_with(options(dir.path()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        recovered = check_families(
            &db,
            &mut model,
            acked.or(recovered),
            &acks,
            cycle,
            &mut stats,
        );
        check_directory(&db, dir.path(), cycle);
        db.close().unwrap();
    }
    println!(
        "{cycles} cycles in {:.1?}: {} batches recovered; {stats:?}",
        started.elapsed(),
        recovered.map_or(0, |l| l + 1)
    );
    assert!(recovered.is_some(), "the child never got to write a batch");
    let db = DB::open_with(options(dir.path())).unwrap();
    let compacted = db.column_family_names().iter().any(|name| {
        let cf = db.column_family(name).unwrap();
        name != "default" && cf.stats().levels.iter().skip(1).any(|l| l.files > 0)
    });
    assert!(compacted, "no compaction output in the created families");
}
