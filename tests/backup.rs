//! `BackupEngine`: incremental sharing (measured), restore equals the
//! source at backup time, verify finds damage, and crashes (simulated at
//! every file-system call, and SIGKILL of a child) never hurt earlier
//! backups or the source.

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{BackupEngine, ColumnFamilyOptions, Error, Options, DB};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

type Scan = Vec<(Vec<u8>, Vec<u8>)>;

fn scan_all(db: &DB) -> Vec<(String, Scan)> {
    let mut names = db.column_family_names();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let cf = db.column_family(&n).unwrap();
            let rows = cf.iter().collect::<aidb::Result<_>>().unwrap();
            (n, rows)
        })
        .collect()
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(path).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

fn fill(db: &DB, from: u64, to: u64) {
    for i in from..to {
        db.put(format!("key{i:08}"), vec![(i % 251) as u8; 200])
            .unwrap();
    }
}

#[test]
fn second_backup_copies_only_the_new_data_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path().join("db")).unwrap();
    let cf = db
        .create_column_family("cf", ColumnFamilyOptions::default())
        .unwrap();
    cf.put("in-cf", "1").unwrap();
    fill(&db, 0, 50_000);
    // The family's memtable would otherwise keep the first log alive, and
    // every backup would copy it.
    cf.flush().unwrap();
    db.compact_range(..).unwrap();
    // Let the background settle (it rewrites the last level once no
    // snapshot needs its sequence numbers), or it would rewrite every file
    // between the backups.
    db.wait_for_idle().unwrap();
    let mut engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let first = engine.create_backup(&db).unwrap();
    let after_first = dir_bytes(&dir.path().join("backups"));
    let state_first = scan_all(&db);

    fill(&db, 50_000, 55_000); // 10% more
    db.flush().unwrap();
    db.put("unflushed", "in the log").unwrap();
    db.wait_for_idle().unwrap();
    let state_second = scan_all(&db);
    let second = engine.create_backup(&db).unwrap();
    let copied = dir_bytes(&dir.path().join("backups")) - after_first;
    let ratio = copied as f64 / after_first as f64;
    eprintln!(
        "first backup {after_first} bytes, second copied {copied} bytes ({:.1}%)",
        ratio * 100.0
    );
    assert!(
        ratio < 0.2,
        "second backup copied {copied} of {after_first} bytes"
    );
    assert!(second.size > first.size);
    assert_eq!(engine.backups(), vec![first.clone(), second.clone()]);

    db.put("after", "both backups").unwrap();
    for (info, state) in [(&first, &state_first), (&second, &state_second)] {
        engine.verify(info.id).unwrap();
        let target = dir.path().join(format!("restored{}", info.id));
        engine.restore(info.id, &target).unwrap();
        let restored = DB::open(&target).unwrap();
        assert_eq!(&scan_all(&restored), state, "backup {}", info.id);
        assert!(restored.verify().is_empty());
    }
    assert!(matches!(
        engine.restore(first.id, dir.path().join("restored1")),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        BackupEngine::open(dir.path().join("backups")),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn verify_finds_a_flipped_byte_and_restore_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path().join("db")).unwrap();
    fill(&db, 0, 5000);
    db.flush().unwrap();
    let backups = dir.path().join("backups");
    let mut engine = BackupEngine::open(&backups).unwrap();
    let info = engine.create_backup(&db).unwrap();
    engine.verify(info.id).unwrap();
    let mut files: Vec<_> = ["shared", &format!("private/{}", info.id)]
        .iter()
        .flat_map(|d| std::fs::read_dir(backups.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let original = std::fs::read(&file).unwrap();
        let mut bad = original.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x10;
        std::fs::write(&file, &bad).unwrap();
        let err = engine.verify(info.id).unwrap_err();
        assert!(err.is_corruption(), "{file:?}: {err}");
        let target = dir.path().join("restored");
        assert!(engine
            .restore(info.id, &target)
            .unwrap_err()
            .is_corruption());
        assert!(!target.exists());
        std::fs::write(&file, &original).unwrap();
    }
    engine.verify(info.id).unwrap();
}

#[test]
fn delete_and_purge_keep_what_remaining_backups_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path().join("db")).unwrap();
    let mut engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let mut states = Vec::new();
    for round in 0..4 {
        fill(&db, round * 1000, (round + 1) * 1000);
        db.flush().unwrap();
        let info = engine.create_backup(&db).unwrap();
        states.push((info.id, scan_all(&db)));
    }
    engine.delete(2).unwrap();
    assert!(matches!(engine.delete(2), Err(Error::InvalidArgument(_))));
    engine.purge_old(2).unwrap();
    let ids: Vec<u64> = engine.backups().iter().map(|b| b.id).collect();
    assert_eq!(ids, vec![3, 4]);
    drop(engine);
    let engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    assert_eq!(engine.backups().len(), 2);
    for (id, state) in states.iter().filter(|(id, _)| *id >= 3) {
        engine.verify(*id).unwrap();
        let target = dir.path().join(format!("r{id}"));
        engine.restore(*id, &target).unwrap();
        assert_eq!(&scan_all(&DB::open(&target).unwrap()), state);
    }
    // Nothing is kept that no backup names.
    let info_bytes: u64 = engine.backups().iter().map(|b| b.size).sum::<u64>();
    let shared = dir_bytes(&dir.path().join("backups").join("shared"));
    assert!(shared <= info_bytes, "{shared} > {info_bytes}");
}

#[test]
fn crash_at_any_call_of_create_backup_keeps_earlier_backups() {
    let setup = |fs: &FaultInjectionFs| {
        let opts = Options {
            fs: Arc::new(fs.clone()),
            ..Options::new("/db")
        };
        let db = DB::open_with(opts).unwrap();
        fill(&db, 0, 500);
        db.flush().unwrap();
        let mut engine = BackupEngine::open_with("/b", Arc::new(fs.clone())).unwrap();
        engine.create_backup(&db).unwrap();
        let state = scan_all(&db);
        fill(&db, 500, 700);
        db.flush().unwrap();
        fill(&db, 700, 800);
        (db, engine, state)
    };
    let calls = {
        let fs = FaultInjectionFs::new();
        let (db, mut engine, _) = setup(&fs);
        let start = fs.call_count();
        engine.create_backup(&db).unwrap();
        fs.call_count() - start
    };
    for crash_at in 0..calls {
        let fs = FaultInjectionFs::new();
        let (db, mut engine, state) = setup(&fs);
        fs.crash_after(crash_at);
        let result = engine.create_backup(&db);
        fs.power_cut();
        drop((db, engine));
        let engine = BackupEngine::open_with("/b", Arc::new(fs.clone())).unwrap();
        let ids: Vec<u64> = engine.backups().iter().map(|b| b.id).collect();
        assert!(ids == [1] || ids == [1, 2], "crash at {crash_at}: {ids:?}");
        if result.is_ok() {
            assert_eq!(ids, [1, 2], "crash at {crash_at}: acknowledged backup lost");
        }
        for id in ids {
            engine.verify(id).unwrap();
        }
        let target = Path::new("/restored");
        engine.restore(1, target).unwrap();
        let opts = Options {
            fs: Arc::new(fs.clone()),
            ..Options::new(target)
        };
        assert_eq!(
            scan_all(&DB::open_with(opts).unwrap()),
            state,
            "crash at {crash_at}"
        );
        // Leftovers were removed: only named files remain in shared/.
        let named: usize = engine.backups().iter().map(|b| b.file_count).sum();
        assert!(fs.list(Path::new("/b/shared")).unwrap().len() <= named);
    }
}

const CHILD_ENV: &str = "AIDB_BACKUP_CHILD_DIR";

/// The child: writes and backs up again and again until killed.
#[test]
fn backup_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let db = DB::open(dir.join("db")).unwrap();
    let mut engine = BackupEngine::open(dir.join("backups")).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for round in 0..200u64 {
        fill(&db, round * 300, round * 300 + 300);
        db.flush().unwrap();
        engine.create_backup(&db).unwrap();
    }
}

#[test]
fn sigkill_during_create_backup_keeps_earlier_backups() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "backup_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        assert!(out.lines().any(|l| l.unwrap().ends_with("ready")));
        std::thread::sleep(Duration::from_millis(300 + 71 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let engine = BackupEngine::open(dir.path().join("backups")).unwrap();
        let backups = engine.backups();
        for b in &backups {
            engine.verify(b.id).unwrap();
        }
        if let Some(last) = backups.last() {
            let target = dir.path().join(format!("restored{round}"));
            engine.restore(last.id, &target).unwrap();
            let restored = DB::open(&target).unwrap();
            assert!(restored.verify().is_empty());
            assert!(restored.iter().count() > 0);
        }
        let db = DB::open(dir.path().join("db")).unwrap();
        assert!(db.verify().is_empty(), "source damaged in round {round}");
    }
}
