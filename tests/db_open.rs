//! Opening databases: errors for bad paths and options, locking, reopening.

use aidb::{Error, Options, DB};

#[test]
fn open_on_a_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a database").unwrap();
    match DB::open(&file) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path.as_deref(), Some(file.as_path()));
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
        }
        other => panic!("expected Io error, got {other:?}"),
    }
}

#[test]
fn missing_directory_without_create_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing");
    let opts = Options {
        create_if_missing: false,
        ..Options::new(&path)
    };
    assert!(matches!(DB::open_with(opts), Err(Error::NotFound { .. })));
    assert!(!path.exists(), "nothing may be created");
}

#[test]
fn empty_directory_without_create_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        create_if_missing: false,
        ..Options::new(dir.path())
    };
    assert!(matches!(DB::open_with(opts), Err(Error::NotFound { .. })));
}

#[test]
fn error_if_exists() {
    let dir = tempfile::tempdir().unwrap();
    DB::open(dir.path()).unwrap().close().unwrap();
    let opts = Options {
        error_if_exists: true,
        ..Options::new(dir.path())
    };
    assert!(matches!(
        DB::open_with(opts),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
fn invalid_options_are_rejected_with_the_field_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        Options {
            write_buffer_size: 1,
            ..Options::new(dir.path())
        },
        Options {
            max_background_jobs: 0,
            ..Options::new(dir.path())
        },
        Options {
            level0_slowdown_writes_trigger: 1,
            ..Options::new(dir.path())
        },
        Options {
            bloom_bits_per_key: 1000,
            ..Options::new(dir.path())
        },
        Options::default(),
    ];
    let fields = [
        "write_buffer_size",
        "max_background_jobs",
        "level0_slowdown_writes_trigger",
        "bloom_bits_per_key",
        "path",
    ];
    for (opts, field) in cases.into_iter().zip(fields) {
        match DB::open_with(opts) {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(field), "{msg}"),
            other => panic!("{field}: expected InvalidArgument, got {other:?}"),
        }
    }
}

#[test]
fn second_open_is_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    assert!(matches!(DB::open(dir.path()), Err(Error::Locked { .. })));
    drop(db);
    let again = DB::open(dir.path()).unwrap();
    again.close().unwrap();
}

#[test]
fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = DB::open(dir.path()).unwrap();
        db.put("a", "1").unwrap();
        db.put("b", "2").unwrap();
        db.delete("a").unwrap();
        db.put("", "empty key").unwrap();
        db.put("c", "").unwrap();
    }
    for _ in 0..3 {
        let db = DB::open(dir.path()).unwrap();
        assert_eq!(db.get("a").unwrap(), None);
        assert_eq!(db.get("b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(db.get("").unwrap(), Some(b"empty key".to_vec()));
        assert_eq!(db.get("c").unwrap(), Some(Vec::new()));
        let all: Vec<_> = db.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(all, vec![b"".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }
}

#[test]
fn oversized_keys_and_values_are_invalid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(dir.path()).unwrap();
    let big_key = vec![b'k'; aidb::MAX_KEY_SIZE + 1];
    assert!(matches!(
        db.put(&big_key, "v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.delete(&big_key),
        Err(Error::InvalidArgument(_))
    ));
    let max_key = vec![b'k'; aidb::MAX_KEY_SIZE];
    db.put(&max_key, "v").unwrap();
    assert_eq!(db.get(&max_key).unwrap(), Some(b"v".to_vec()));
    // Still usable after a rejected write.
    db.put("x", "y").unwrap();
}

#[test]
fn memtable_rotation_keeps_everything_readable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 4096,
        ..Options::new(dir.path())
    };
    {
        let db = DB::open_with(opts.clone()).unwrap();
        for i in 0..2000u32 {
            db.put(format!("key{:05}", i % 700), i.to_le_bytes())
                .unwrap();
        }
        for i in 0..700u32 {
            let want = (1400 + i).to_le_bytes();
            let want = if 1400 + i < 2000 {
                want
            } else {
                (700 + i).to_le_bytes()
            };
            assert_eq!(db.get(format!("key{i:05}")).unwrap(), Some(want.to_vec()));
        }
        assert_eq!(db.iter().count(), 700);
        assert_eq!(db.iter().rev().count(), 700);
    }
    let db = DB::open_with(opts).unwrap();
    assert_eq!(db.iter().count(), 700);
}

#[test]
fn handles_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<DB>();
    send_sync::<aidb::DbSnapshot>();
    send_sync::<aidb::MemoryBackend>();
    send::<aidb::DbIterator>();
    send_sync::<aidb::Error>();
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(DB::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    db.put(format!("{t}-{i}"), "v").unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(db.iter().count(), 400);
}
