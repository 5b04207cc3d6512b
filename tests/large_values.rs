//! Values and tables at the documented size limits: everything `put`
//! accepts can be read back after flush, compaction and reopen, and
//! options that would make unreadable tables are refused.

use aidb::{Error, Options, DB, MAX_VALUE_SIZE};

/// Incompressible bytes, so the stored block is as large as the value.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Values between 64 MiB and `MAX_VALUE_SIZE` used to be accepted and then
/// unreadable once flushed ("block handle outside the file"), and every
/// later compaction failed.
#[test]
fn values_up_to_the_limit_survive_flush_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let big = noise(100 << 20, 1);
    let max = noise(MAX_VALUE_SIZE, 2);
    {
        let db = DB::open(dir.path()).unwrap();
        db.put("big", &big).unwrap();
        db.put("small", "x").unwrap();
        db.flush().unwrap();
        assert!(db.get("big").unwrap().as_deref() == Some(&big[..]));
        db.put("max", &max).unwrap();
        db.flush().unwrap();
        db.compact_range(..).unwrap();
        assert!(db.get("max").unwrap().as_deref() == Some(&max[..]));
        assert!(db.verify().is_empty());
        db.close().unwrap();
    }
    let db = DB::open(dir.path()).unwrap();
    assert!(db.get("big").unwrap().as_deref() == Some(&big[..]));
    assert!(db.get("max").unwrap().as_deref() == Some(&max[..]));
    assert_eq!(db.get("small").unwrap(), Some(b"x".to_vec()));
    let mut too_big = max;
    too_big.push(0);
    assert!(matches!(
        db.put("over", &too_big),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn table_sizes_beyond_what_a_table_can_index_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for opts in [
        Options {
            write_buffer_size: (1 << 30) + 1,
            ..Options::new(dir.path())
        },
        Options {
            target_file_size: 8 << 30,
            ..Options::new(dir.path())
        },
    ] {
        match DB::open_with(opts) {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains("size"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    // The largest allowed sizes are accepted.
    let db = DB::open_with(Options {
        write_buffer_size: 1 << 30,
        target_file_size: 1 << 30,
        ..Options::new(dir.path())
    })
    .unwrap();
    db.put("k", "v").unwrap();
}
