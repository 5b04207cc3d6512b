//! Writes that land in the wrong place, and files that are not the ones the
//! MANIFEST names, are found, never read as data: a valid block moved to
//! another offset, a valid table file standing in for another, a file cut
//! back to an older length. (Format 2: each block's checksum covers its
//! table's unique id and its offset; the MANIFEST records every table's
//! size, unique id and whole-file CRC.)

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{Compression, Error, Options, DB};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn options(fs: &FaultInjectionFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        block_size: 512,
        compression: Compression::None,
        ..Options::new("/db")
    }
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i:06}-").repeat(8).into_bytes()
}

/// A closed database holding keys 0..n in one table; returns its path.
fn one_table(fs: &FaultInjectionFs, n: u32) -> PathBuf {
    let db = DB::open_with(options(fs)).unwrap();
    for i in 0..n {
        db.put(format!("key{i:05}"), value(i)).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let mut tables: Vec<PathBuf> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .map(|n| Path::new("/db").join(n))
        .collect();
    assert_eq!(tables.len(), 1);
    tables.pop().unwrap()
}

/// Every key reads back as its own value or as `Corruption`; returns how
/// many reads failed.
fn reads(fs: &FaultInjectionFs, n: u32) -> usize {
    let db = match DB::open_with(options(fs)) {
        Ok(db) => db,
        Err(e) => {
            assert!(e.is_corruption(), "{e}");
            return n as usize;
        }
    };
    let mut failed = 0;
    for i in 0..n {
        match db.get(format!("key{i:05}")) {
            Ok(Some(v)) => assert_eq!(v, value(i), "key {i}: a wrong value"),
            Ok(None) => panic!("key {i} is missing without an error"),
            Err(e) => {
                assert!(e.is_corruption(), "key {i}: {e}");
                failed += 1;
            }
        }
    }
    let scanned: Vec<_> = db.iter().collect();
    if scanned.iter().all(|r| r.is_ok()) {
        assert_eq!(scanned.len(), n as usize);
    }
    failed
}

#[test]
fn a_valid_block_at_another_offset_is_corruption() {
    let n = 300;
    let fs = FaultInjectionFs::new();
    let table = one_table(&fs, n);
    let data = fs.read_all(&table).unwrap();
    let blocks = aidb::internals::table_data_blocks(&data);
    assert!(blocks.len() > 10);
    // Two blocks of the same size (with their trailers), swapped.
    let (a, b) = blocks
        .iter()
        .enumerate()
        .find_map(|(i, x)| {
            blocks[i + 1..]
                .iter()
                .find(|y| y.1 == x.1)
                .map(|y| (*x, *y))
        })
        .expect("two blocks of the same size");
    let len = (a.1 + 5) as usize;
    let mut swapped = data.clone();
    swapped[a.0 as usize..a.0 as usize + len]
        .copy_from_slice(&data[b.0 as usize..b.0 as usize + len]);
    swapped[b.0 as usize..b.0 as usize + len]
        .copy_from_slice(&data[a.0 as usize..a.0 as usize + len]);
    fs.truncate(&table, 0).unwrap();
    let mut f = fs.open_append(&table).unwrap();
    f.append(&swapped).unwrap();
    f.sync().unwrap();
    drop(f);
    assert!(reads(&fs, n) > 0, "the moved blocks were read as data");
}

#[test]
fn another_valid_table_in_a_files_place_is_corruption() {
    let n = 200;
    // Two databases with the same data: their tables have the same size and
    // number, and each is a valid table; only its identity differs.
    let (fs1, fs2) = (FaultInjectionFs::new(), FaultInjectionFs::new());
    let t1 = one_table(&fs1, n);
    let t2 = one_table(&fs2, n);
    assert_eq!(t1, t2);
    let other = fs2.read_all(&t2).unwrap();
    assert_eq!(other.len() as u64, fs1.file_size(&t1).unwrap());
    fs1.truncate(&t1, 0).unwrap();
    let mut f = fs1.open_append(&t1).unwrap();
    f.append(&other).unwrap();
    f.sync().unwrap();
    drop(f);
    assert_eq!(reads(&fs1, n), n as usize);
    let db = DB::open_with(options(&fs1)).unwrap();
    let errors = db.verify();
    assert!(
        !errors.is_empty() && errors.iter().all(Error::is_corruption),
        "{errors:?}"
    );
}

#[test]
fn a_table_cut_back_to_an_older_length_is_corruption() {
    let n = 200;
    let fs = FaultInjectionFs::new();
    let table = one_table(&fs, n);
    let len = fs.file_size(&table).unwrap() as usize;
    for cut in [1, 100, len / 2] {
        let fs = FaultInjectionFs::new();
        let table = one_table(&fs, n);
        fs.truncate(&table, len - cut).unwrap();
        assert_eq!(reads(&fs, n), n as usize, "cut {cut}");
    }
}
