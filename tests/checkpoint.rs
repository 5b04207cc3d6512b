//! `DB::checkpoint`: a copy at one sequence number that opens on its own,
//! taken while writes go on; failures and a SIGKILL mid-checkpoint leave
//! the source intact and nothing half-made under the target name.

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{ColumnFamilyOptions, Error, Options, WriteBatch, DB};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Small buffers: flushes and compactions run while the checkpoint is taken.
fn options(dir: &Path) -> Options {
    let mut o = Options {
        write_buffer_size: 16 << 10,
        target_file_size: 16 << 10,
        max_bytes_for_level_base: 64 << 10,
        level0_file_num_compaction_trigger: 2,
        ..Options::new(dir)
    };
    o.column_families.insert(
        "cf".into(),
        ColumnFamilyOptions {
            write_buffer_size: 8 << 10,
            ..ColumnFamilyOptions::default()
        },
    );
    o
}

fn scan(db: &DB, cf: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cf = db.column_family(cf).unwrap();
    cf.iter().collect::<aidb::Result<_>>().unwrap()
}

/// One operation: family index, key, value (`None`: a delete).
type Op = (u8, Vec<u8>, Option<Vec<u8>>);

/// Batch `b` (three operations, so batch `b` ends at sequence 3b+3): puts
/// into both families and deletes a key of the default one.
fn batch(b: u64) -> (WriteBatch, [Op; 3]) {
    let k = |i: u64| format!("key{:04}", i % 500).into_bytes();
    let v = format!("value-{b}-{}", "x".repeat(40)).into_bytes();
    let mut batch = WriteBatch::new();
    batch.put(k(b), &v);
    batch.delete(k(b * 7 + 3));
    (
        batch,
        [
            (0, k(b), Some(v.clone())),
            (0, k(b * 7 + 3), None),
            (1, k(b * 3), Some(v)),
        ],
    )
}

/// What both families hold after the first `n` batches.
fn model(n: u64) -> [BTreeMap<Vec<u8>, Vec<u8>>; 2] {
    let mut m = [BTreeMap::new(), BTreeMap::new()];
    for b in 0..n {
        for (f, k, v) in batch(b).1 {
            match v {
                Some(v) => m[f as usize].insert(k, v),
                None => m[f as usize].remove(&k),
            };
        }
    }
    m
}

fn write_batch(db: &DB, b: u64) {
    let (mut wb, ops) = batch(b);
    let cf = db.column_family("cf").unwrap();
    wb.put_cf(&cf, &ops[2].1, ops[2].2.as_ref().unwrap());
    db.write(wb).unwrap();
}

#[test]
fn checkpoint_under_writes_is_one_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(DB::open_with(options(&dir.path().join("db"))).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut b = 0;
            while !stop.load(Ordering::Relaxed) {
                write_batch(&db, b);
                b += 1;
            }
            b
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    for round in 0..5 {
        let before = db.snapshot();
        let target = dir.path().join(format!("ckpt{round}"));
        db.checkpoint(&target).unwrap();
        let after = db.snapshot();
        let copy = DB::open_with(options(&target)).unwrap();
        let seq = copy.stats().last_sequence;
        assert!(before.sequence() <= seq && seq <= after.sequence());
        assert_eq!(seq % 3, 0, "a batch was cut in two: {seq}");
        // The snapshot taken before equals the model at its own number, and
        // the checkpoint equals the model at its own number.
        let m = model(seq / 3);
        let as_vec = |m: &BTreeMap<Vec<u8>, Vec<u8>>| m.clone().into_iter().collect::<Vec<_>>();
        assert_eq!(scan(&copy, "default"), as_vec(&m[0]), "round {round}");
        assert_eq!(scan(&copy, "cf"), as_vec(&m[1]), "round {round}");
        let snap_model = model(before.sequence() / 3);
        let snap: Vec<_> = before.iter().collect::<aidb::Result<_>>().unwrap();
        assert_eq!(snap, as_vec(&snap_model[0]));
        assert!(copy.verify().is_empty());
        // The copy is a database of its own: writes to it stay in it.
        copy.put("only-in-copy", "1").unwrap();
        assert_eq!(db.get("only-in-copy").unwrap(), None);
    }
    stop.store(true, Ordering::Relaxed);
    let batches = writer.join().unwrap();
    assert!(batches > 0);
    assert!(db.verify().is_empty());
}

#[test]
fn existing_target_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path().join("db")).unwrap();
    db.put("k", "v").unwrap();
    let target = dir.path().join("there");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("mine"), b"keep").unwrap();
    assert!(matches!(
        db.checkpoint(&target),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(std::fs::read(target.join("mine")).unwrap(), b"keep");
}

#[test]
fn tables_are_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path().join("db")).unwrap();
    for i in 0..1000 {
        db.put(format!("k{i}"), "v").unwrap();
    }
    db.flush().unwrap();
    db.checkpoint(dir.path().join("c")).unwrap();
    let tables: Vec<_> = std::fs::read_dir(dir.path().join("c"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    assert!(!tables.is_empty());
    #[cfg(unix)]
    for t in &tables {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(t).unwrap().nlink(), 2, "{t:?}");
    }
    drop(db);
    let copy = DB::open(dir.path().join("c")).unwrap();
    assert_eq!(copy.get("k999").unwrap(), Some(b"v".to_vec()));
}

fn mem_options(fs: &FaultInjectionFs, path: &str) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        ..options(Path::new(path))
    }
}

#[test]
fn failure_mid_checkpoint_leaves_nothing_and_power_cut_keeps_source() {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(mem_options(&fs, "/db")).unwrap();
    for b in 0..300 {
        write_batch(&db, b);
    }
    // A failing copy of the log: the checkpoint fails, nothing is left.
    fs.inject(FsOp::Append, FaultKind::Enospc, Some("/c1"), 0, Some(1));
    assert!(db.checkpoint("/c1").is_err());
    assert_eq!(fs.kind(Path::new("/c1")).unwrap(), None);
    assert_eq!(fs.kind(Path::new("/c1.tmp")).unwrap(), None);
    db.checkpoint("/c2").unwrap();
    // A power cut right after: the checkpoint was made durable.
    fs.power_cut();
    drop(db);
    let m = model(300);
    for path in ["/db", "/c2"] {
        let db = DB::open_with(mem_options(&fs, path)).unwrap();
        let got: BTreeMap<_, _> = scan(&db, "default").into_iter().collect();
        if path == "/c2" {
            assert_eq!(got, m[0]);
        } else {
            // Unsynced writes of the source may be lost, but it opens and
            // whatever it kept is a prefix.
            assert!(db.verify().is_empty());
        }
    }
}

#[test]
fn crash_at_any_call_leaves_source_and_no_partial_checkpoint() {
    // Count the calls of one checkpoint, then crash at each of them.
    let calls = {
        let fs = FaultInjectionFs::new();
        let db = DB::open_with(mem_options(&fs, "/db")).unwrap();
        for b in 0..200 {
            write_batch(&db, b);
        }
        let start = fs.call_count();
        db.checkpoint("/c").unwrap();
        fs.call_count() - start
    };
    for crash_at in 0..calls {
        let fs = FaultInjectionFs::new();
        let db = DB::open_with(mem_options(&fs, "/db")).unwrap();
        for b in 0..200 {
            write_batch(&db, b);
        }
        db.flush().unwrap();
        fs.crash_after(crash_at);
        let result = db.checkpoint("/c");
        fs.power_cut();
        drop(db);
        let db = DB::open_with(mem_options(&fs, "/db")).unwrap();
        let got: BTreeMap<_, _> = scan(&db, "default").into_iter().collect();
        assert_eq!(got, model(200)[0], "source after crash at {crash_at}");
        if fs.kind(Path::new("/c")).unwrap().is_some() {
            let copy = DB::open_with(mem_options(&fs, "/c")).unwrap();
            let got: BTreeMap<_, _> = scan(&copy, "default").into_iter().collect();
            assert_eq!(got, model(200)[0], "checkpoint after crash at {crash_at}");
        } else {
            assert!(result.is_err());
        }
    }
}

const CHILD_ENV: &str = "AIDB_CHECKPOINT_CHILD_DIR";

/// The child: checkpoints its database again and again until killed.
#[test]
fn checkpoint_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let db = DB::open_with(options(&dir.join("db"))).unwrap();
    // The same batches every time, left in the log (never flushed).
    for b in 2000..2100 {
        write_batch(&db, b);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    // Bounded, so that a parent that fails to kill it does not fill the disk.
    for n in 0..100 {
        db.checkpoint(dir.join(format!("c{n}"))).unwrap();
    }
}

#[test]
fn sigkill_during_checkpoint_leaves_source_intact() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let db = DB::open_with(options(&dir.path().join("db"))).unwrap();
        for b in 0..2000 {
            write_batch(&db, b);
        }
    }
    for round in 0..5u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "checkpoint_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        assert!(out.lines().any(|l| l.unwrap().ends_with("ready")));
        std::thread::sleep(Duration::from_millis(150 + 37 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let db = DB::open_with(options(&dir.path().join("db"))).unwrap();
        let m = model(2100);
        let got: BTreeMap<_, _> = scan(&db, "default").into_iter().collect();
        assert_eq!(got, m[0], "round {round}");
        assert!(db.verify().is_empty());
        drop(db);
        // Every checkpoint that got its final name is whole.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.starts_with('c') && !name.ends_with(".tmp") {
                let copy = DB::open_with(options(&dir.path().join(&name))).unwrap();
                let got: BTreeMap<_, _> = scan(&copy, "default").into_iter().collect();
                assert_eq!(got, m[0], "{name}");
                drop(copy);
                std::fs::remove_dir_all(dir.path().join(&name)).unwrap();
            }
        }
    }
}
