//! The bank test: 100 accounts, 4 threads moving money between random
//! accounts in transactions (retried on `Conflict`, `Busy`, `Deadlock`),
//! and readers checking through snapshots that the total never changes;
//! optimistic and pessimistic. Each transfer also writes a record of
//! itself, so that the balances can be recomputed from the records.
//!
//! In process: after the run, the total is unchanged and every balance
//! equals its opening balance plus the transfers recorded (every
//! acknowledged transfer recorded, nothing else applied).
//!
//! With crashes: a child process runs the same workload (tiny sizes, so
//! it flushes and compacts all the time; some commits synced) and reports
//! each acknowledged transfer; the parent kills it with SIGKILL at a
//! random moment, reopens, and checks that the total is unchanged, that
//! every acknowledged transfer is there, that each thread's transfers are
//! there without a hole (at most the one in flight beyond its last
//! acknowledgement), and that the balances are what the transfers
//! present make them. Then the next child continues from there, in the
//! other mode. `AIDB_CRASH_CYCLES` sets the number of kills (default 16).

use aidb::{Options, TransactionOptions, WriteBatch, WriteOptions, DB};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNTS: u64 = 100;
const OPENING: u64 = 1_000;
const TOTAL: u64 = ACCOUNTS * OPENING;
const THREADS: u64 = 4;
const CHILD_ENV: &str = "AIDB_TXN_BANK_CHILD_DIR";
const MODE_ENV: &str = "AIDB_TXN_BANK_PESSIMISTIC";

/// Children are forked one test at a time (see `crash_kill.rs`: a child
/// forked while another test holds a database open shares its lock until
/// it execs).
static SERIAL: Mutex<()> = Mutex::new(());

fn account(i: u64) -> String {
    format!("acct/{i:03}")
}

fn record(t: u64, n: u64) -> String {
    format!("xfer/{t}/{n:08}")
}

fn number(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().expect("8-byte number"))
}

/// Tiny sizes: flushes and compactions all the time, so conflict checks
/// and reads go through tables.
fn options(dir: &Path) -> Options {
    Options {
        write_buffer_size: 8 << 10,
        target_file_size: 16 << 10,
        max_bytes_for_level_base: 64 << 10,
        level0_file_num_compaction_trigger: 2,
        ..Options::new(dir)
    }
}

fn txn_options(pessimistic: bool) -> TransactionOptions {
    TransactionOptions {
        pessimistic,
        lock_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Creates the accounts (one atomic batch) unless they exist.
fn open_bank(db: &DB) {
    if db.get(account(0)).unwrap().is_none() {
        let mut b = WriteBatch::new();
        for i in 0..ACCOUNTS {
            b.put(account(i), OPENING.to_le_bytes());
        }
        db.write_opt(b, &WriteOptions { sync: true }).unwrap();
    }
}

/// Transfer `n` of thread `t`.
struct Transfer {
    t: u64,
    n: u64,
    from: u64,
    to: u64,
    amount: u64,
    sync: bool,
}

/// Moves the amount (nothing when `from` is short) in one transaction,
/// with the record of the transfer; retries until it commits. Returns
/// the number of retries.
fn transfer(db: &DB, pessimistic: bool, x: &Transfer) -> u64 {
    let Transfer {
        t,
        n,
        from,
        to,
        amount,
        sync,
    } = *x;
    let mut retries = 0;
    loop {
        let mut txn = db.transaction_with(txn_options(pessimistic));
        let attempt = (|| {
            let a = number(&txn.get_for_update(account(from))?.expect("account"));
            let b = number(&txn.get_for_update(account(to))?.expect("account"));
            let amount = if a < amount { 0 } else { amount };
            txn.put(account(from), (a - amount).to_le_bytes())?;
            txn.put(account(to), (b + amount).to_le_bytes())?;
            let rec = [from.to_le_bytes(), to.to_le_bytes(), amount.to_le_bytes()].concat();
            txn.put(record(t, n), rec)?;
            Ok::<_, aidb::Error>(())
        })();
        match attempt.and_then(|_| txn.commit_opt(&WriteOptions { sync })) {
            Ok(()) => return retries,
            Err(e) if e.is_retryable() => retries += 1,
            Err(e) => panic!("transfer {t}/{n}: {e}"),
        }
    }
}

/// The number of transfers thread `t` has recorded.
fn recorded(db: &DB, t: u64) -> u64 {
    db.prefix(format!("xfer/{t}/")).count() as u64
}

/// Sums the balances through a snapshot (iterating and by gets).
fn check_total(db: &DB) {
    let snap = db.snapshot();
    let by_scan: u64 = snap.prefix("acct/").map(|kv| number(&kv.unwrap().1)).sum();
    assert_eq!(by_scan, TOTAL, "total through a snapshot scan");
    let by_get: u64 = (0..ACCOUNTS)
        .map(|i| number(&snap.get(account(i)).unwrap().expect("account")))
        .sum();
    assert_eq!(by_get, TOTAL, "total through snapshot gets");
}

/// Every balance equals its opening balance plus the recorded transfers;
/// returns the number of records per thread, checking there is no hole.
fn check_books(db: &DB) -> Vec<u64> {
    let mut expected = vec![OPENING as i64; ACCOUNTS as usize];
    let mut counts = vec![0u64; THREADS as usize];
    for kv in db.prefix("xfer/") {
        let (k, v) = kv.unwrap();
        let k = String::from_utf8(k).unwrap();
        let mut parts = k.split('/').skip(1);
        let t: usize = parts.next().unwrap().parse().unwrap();
        let n: u64 = parts.next().unwrap().parse().unwrap();
        assert_eq!(
            n, counts[t],
            "thread {t}: transfer {n} present but not {}",
            counts[t]
        );
        counts[t] += 1;
        let (from, to, amount) = (number(&v[..8]), number(&v[8..16]), number(&v[16..]));
        expected[from as usize] -= amount as i64;
        expected[to as usize] += amount as i64;
    }
    for i in 0..ACCOUNTS {
        let got = number(&db.get(account(i)).unwrap().expect("account")) as i64;
        assert_eq!(
            got, expected[i as usize],
            "account {i} against its transfers"
        );
    }
    counts
}

/// Runs the workload: `THREADS` writers from each one's next transfer
/// number on, and two readers checking the total, until `stop`. `ack`
/// is told of every committed transfer.
fn run_bank(
    db: &Arc<DB>,
    pessimistic: bool,
    stop: &AtomicBool,
    ack: &(dyn Fn(u64, u64) + Sync),
) -> u64 {
    let retries = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, retries) = (db.clone(), &retries);
            s.spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(t ^ rand::random::<u64>());
                let mut n = recorded(&db, t);
                while !stop.load(Ordering::Relaxed) {
                    let from = rng.gen_range(0..ACCOUNTS);
                    let to = (from + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
                    let amount = rng.gen_range(1..=50);
                    let x = Transfer {
                        t,
                        n,
                        from,
                        to,
                        amount,
                        sync: n.is_multiple_of(8),
                    };
                    retries.fetch_add(transfer(&db, pessimistic, &x), Ordering::Relaxed);
                    ack(t, n);
                    n += 1;
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    check_total(db);
                }
            });
        }
    });
    retries.into_inner()
}

fn bank_in_process(pessimistic: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(DB::open_with(options(dir.path())).unwrap());
    open_bank(&db);
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(vec![0u64; THREADS as usize]);
    let retries = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Ordering::Relaxed);
        });
        run_bank(&db, pessimistic, &stop, &|t, n| {
            acked.lock().unwrap()[t as usize] = n + 1
        })
    });
    check_total(&db);
    let counts = check_books(&db);
    assert_eq!(counts, *acked.lock().unwrap());
    let done: u64 = counts.iter().sum();
    println!(
        "{} transfers, {retries} retries, pessimistic: {pessimistic}",
        done
    );
    assert!(done > 100, "only {done} transfers");
    if pessimistic {
        // Pessimistic transactions only retry after a deadlock.
        assert!(retries < done, "{retries} retries for {done} transfers");
    }
    let stats = db.stats();
    assert!(
        stats.levels.iter().map(|l| l.files).sum::<usize>() > 0,
        "nothing flushed"
    );
}

#[test]
fn bank_optimistic() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    bank_in_process(false);
}

#[test]
fn bank_pessimistic() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    bank_in_process(true);
}

/// The child's work; runs only when the parent starts this test binary
/// with `CHILD_ENV` set. Prints "ack T N" for each committed transfer.
#[test]
fn bank_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let pessimistic = std::env::var(MODE_ENV).is_ok();
    let db = Arc::new(DB::open_with(options(Path::new(&dir))).expect("child open"));
    open_bank(&db);
    let out = Mutex::new(std::io::stdout());
    let stop = AtomicBool::new(false);
    run_bank(&db, pessimistic, &stop, &|t, n| {
        let mut out = out.lock().unwrap();
        writeln!(out, "ack {t} {n}").unwrap();
        out.flush().unwrap();
    });
}

fn cycles() -> usize {
    std::env::var("AIDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

#[test]
fn bank_survives_sigkill_in_both_modes() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7A11);
    let mut total_acked = 0;
    for cycle in 0..cycles() {
        let pessimistic = cycle % 2 == 1;
        let mut cmd = Command::new(&exe);
        cmd.args(["--exact", "bank_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if pessimistic {
            cmd.env(MODE_ENV, "1");
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ack ") {
                    let mut p = rest.split(' ').map(|x| x.parse::<u64>().unwrap());
                    let _ = tx.send((p.next().unwrap(), p.next().unwrap()));
                }
            }
        });
        let mut acked = vec![None::<u64>; THREADS as usize];
        let run_for = Duration::from_millis(rng.gen_range(50..300));
        let start = Instant::now();
        let mut first = None;
        while start.elapsed() < run_for
            || (first.is_none() && start.elapsed() < Duration::from_secs(10))
        {
            if let Ok((t, n)) = rx.recv_timeout(Duration::from_millis(1)) {
                acked[t as usize] = Some(n);
                first.get_or_insert(Instant::now());
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("cycle {cycle}: the child exited on its own: {status}");
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for (t, n) in rx.try_iter() {
            acked[t as usize] = Some(n);
        }
        let db = DB::open_with(options(dir.path()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        check_total(&db);
        let counts = check_books(&db);
        for t in 0..THREADS as usize {
            if let Some(n) = acked[t] {
                total_acked += 1;
                assert!(
                    counts[t] > n,
                    "cycle {cycle}: thread {t}'s acknowledged transfer {n} lost"
                );
                assert!(
                    counts[t] <= n + 2,
                    "cycle {cycle}: thread {t} has {} > issued",
                    counts[t]
                );
            }
        }
        db.close().unwrap();
    }
    assert!(total_acked > 0, "no child ever acknowledged a transfer");
    let db = DB::open_with(options(dir.path())).unwrap();
    let transfers: u64 = check_books(&db).iter().sum();
    println!("{} cycles, {transfers} transfers", cycles());
}
