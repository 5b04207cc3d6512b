//! The `aidb` binary end to end, on real databases on disk.

use std::path::Path;
use std::process::{Command, Output};

fn aidb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aidb"))
        .args(args)
        .output()
        .expect("run aidb")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A database with a few keys, some in a table file, closed.
fn make_db(dir: &Path) {
    let db = aidb::DB::open(dir).unwrap();
    db.put("apple", "red").unwrap();
    db.put("banana", "yellow").unwrap();
    db.flush().unwrap();
    db.put("cherry", "dark red").unwrap();
    db.put(b"bin\x01\xff", b"v\tx").unwrap();
    db.close().unwrap();
}

fn p(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[test]
fn put_get_delete_scan_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_db(d);
    let out = aidb(&["put", p(d), "date", "brown"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = aidb(&["get", p(d), "date"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "brown\n".into())
    );
    // Absent: exit 1, nothing printed.
    let out = aidb(&["get", p(d), "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());

    let out = aidb(&["scan", p(d)]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "apple\tred\nbanana\tyellow\nbin\\x01\\xff\tv\\x09x\ncherry\tdark red\ndate\tbrown\n"
    );
    // Escaped keys are accepted as arguments.
    let out = aidb(&["get", p(d), r"bin\x01\xff", "--hex"]);
    assert_eq!(text(&out.stdout), "760978\n");

    let out = aidb(&["delete", p(d), "banana"]);
    assert!(out.status.success());
    assert_eq!(aidb(&["get", p(d), "banana"]).status.code(), Some(1));

    let scan = |args: &[&str]| {
        let mut all = vec!["scan", p(d)];
        all.extend_from_slice(args);
        let out = aidb(&all);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(scan(&["--prefix", "b", "--keys-only"]), "bin\\x01\\xff\n");
    assert_eq!(
        scan(&["--from", "b", "--to", "d", "--keys-only"]),
        "bin\\x01\\xff\ncherry\n"
    );
    assert_eq!(
        scan(&["--reverse", "--limit", "2", "--keys-only"]),
        "date\ncherry\n"
    );
    assert_eq!(scan(&["--limit", "1", "--hex"]), "6170706c65\t726564\n");
}

#[test]
fn column_family_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_db(d);
    assert!(aidb(&["create-cf", p(d), "users"]).status.success());
    assert!(aidb(&["put", p(d), "k", "in users", "--cf", "users"])
        .status
        .success());
    assert_eq!(text(&aidb(&["list-cf", p(d)]).stdout), "default\nusers\n");
    let out = aidb(&["get", p(d), "k", "--cf", "users"]);
    assert_eq!(text(&out.stdout), "in users\n");
    assert_eq!(aidb(&["get", p(d), "k"]).status.code(), Some(1));
    assert_eq!(
        text(&aidb(&["scan", p(d), "--cf", "users"]).stdout),
        "k\tin users\n"
    );
    assert!(aidb(&["drop-cf", p(d), "users"]).status.success());
    assert_eq!(text(&aidb(&["list-cf", p(d)]).stdout), "default\n");
    let out = aidb(&["get", p(d), "k", "--cf", "users"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no column family"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_or_locked_database_gives_one_line_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    for args in [
        vec!["get", p(&missing), "k"],
        vec!["put", p(&missing), "k", "v"],
        vec!["scan", p(&missing)],
        vec!["stats", p(&missing)],
        vec!["verify", p(&missing)],
        vec!["repair", p(&missing)],
        vec!["dump-manifest", p(&missing)],
    ] {
        let out = aidb(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("no database"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created something");
    }
    // An empty directory stays empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(aidb(&["put", p(&empty), "k", "v"]).status.code(), Some(2));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    let d = tmp.path().join("db");
    make_db(&d);
    // The lock is a flock on an open file, and another test of this
    // binary may be forking a child at the moment make_db closes it: the
    // child shares the descriptor until its exec closes it, so the lock
    // can outlive the close by that instant. Wait it out.
    let start = std::time::Instant::now();
    let held = loop {
        match aidb::DB::open(&d) {
            Err(aidb::Error::Locked { .. }) if start.elapsed().as_secs() < 5 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => break other.unwrap(),
        }
    };
    let out = aidb(&["get", p(&d), "apple"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("in use by another process"), "{err}");
    drop(held);
}

#[test]
fn stats_properties_and_compact() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_db(d);
    let out = aidb(&["stats", p(d)]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    for want in [
        "column_family default",
        "keys_written ",
        "get_latency count",
    ] {
        assert!(s.contains(want), "{want} missing from {s}");
    }
    let out = aidb(&["properties", p(d)]);
    assert!(text(&out.stdout).contains("aidb.estimate-num-keys"));
    assert!(aidb(&["compact", p(d)]).status.success());
    let out = aidb(&[
        "properties",
        p(d),
        "aidb.num-files-at-level0",
        "aidb.estimate-num-keys",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "aidb.num-files-at-level0\t0\naidb.estimate-num-keys\t4\n"
    );
    let out = aidb(&["properties", p(d), "no.such"]);
    assert_eq!(out.status.code(), Some(2));
}

fn tables(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut t: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    t.sort();
    t
}

#[test]
fn dump_sst_wal_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_db(d);
    let sst = tables(d).into_iter().next().unwrap(); // apple and banana
    let out = aidb(&["dump-sst", sst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "entries 2",
        "Data ",
        "Index ",
        "Footer ",
        "  apple\t",
        "\tput\tred",
    ] {
        assert!(s.contains(want), "{want:?} missing from {s}");
    }
    let out = aidb(&["dump-manifest", p(d)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("cf 0 \"default\""));

    // A log with writes in it: open, write, and copy it while open.
    let db = aidb::DB::open(d).unwrap();
    db.put("logged", "value").unwrap();
    let log = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .unwrap();
    let out = aidb(&["dump-wal", log.to_str().unwrap()]);
    drop(db);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("put\tlogged\tvalue"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn verify_names_a_damaged_table_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_db(d);
    let out = aidb(&["verify", p(d)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok\n");
    let sst = tables(d).pop().unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    bytes[10] ^= 0x55; // inside the first data block
    std::fs::write(&sst, bytes).unwrap();
    let out = aidb(&["verify", p(d)]);
    assert_eq!(out.status.code(), Some(1));
    let name = sst.file_name().unwrap().to_str().unwrap();
    assert!(text(&out.stderr).contains(name), "{}", text(&out.stderr));
}

#[test]
fn repair_rebuilds_a_deleted_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_db(d);
    for e in std::fs::read_dir(d).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("MANIFEST") || name == "CURRENT" {
            std::fs::remove_file(path).unwrap();
        }
    }
    let out = aidb(&["repair", p(d)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("tables recovered, 0 dropped"));
    assert_eq!(text(&aidb(&["get", p(d), "cherry"]).stdout), "dark red\n");
}

#[test]
fn help_documents_every_command() {
    let out = aidb(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in [
        "get",
        "put",
        "delete",
        "scan",
        "stats",
        "properties",
        "verify",
        "compact",
        "list-cf",
        "create-cf",
        "drop-cf",
        "dump-sst",
        "dump-wal",
        "dump-manifest",
        "repair",
        "Exit codes",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from --help");
    }
    let out = aidb(&["scan", "--help"]);
    for opt in [
        "--prefix",
        "--from",
        "--to",
        "--limit",
        "--reverse",
        "--hex",
        "--cf",
    ] {
        assert!(
            text(&out.stdout).contains(opt),
            "{opt} missing from scan --help"
        );
    }
}
