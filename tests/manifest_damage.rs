//! A MANIFEST damaged after a clean close: open must never pass the damage
//! off as a torn write and delete the tables the lost edits named.

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{Error, Options, DB};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn options(fs: &FaultInjectionFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        ..Options::new("/db")
    }
}

fn files(fs: &FaultInjectionFs, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(suffix) || n.starts_with(suffix))
        .map(|n| Path::new("/db").join(n))
        .collect();
    v.sort();
    v
}

/// Puts `a`, flushes, puts `b`, flushes, closes cleanly.
fn two_tables() -> FaultInjectionFs {
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).unwrap();
    db.put("a", "1").unwrap();
    db.flush().unwrap();
    db.put("b", "2").unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    fs
}

#[test]
fn a_truncated_manifest_after_a_clean_close_is_corruption_and_deletes_nothing() {
    for cut in [20, 60] {
        let fs = two_tables();
        let tables = files(&fs, ".sst");
        assert_eq!(tables.len(), 2);
        let manifest = files(&fs, "MANIFEST-").pop().unwrap();
        let len = fs.file_size(&manifest).unwrap() as usize;
        fs.truncate(&manifest, len - cut).unwrap();
        match DB::open_with(options(&fs)) {
            Err(Error::Corruption { .. }) => {}
            Ok(db) => panic!(
                "cut {cut}: opened with a = {:?}, b = {:?}",
                db.get("a").unwrap(),
                db.get("b").unwrap()
            ),
            Err(e) => panic!("cut {cut}: unexpected error {e}"),
        }
        assert_eq!(
            files(&fs, ".sst"),
            tables,
            "cut {cut}: open deleted a table"
        );
    }
}

#[test]
fn every_cut_of_a_cleanly_closed_manifest_is_corruption_or_loses_nothing() {
    let fs = two_tables();
    let manifest = files(&fs, "MANIFEST-").pop().unwrap();
    let len = fs.file_size(&manifest).unwrap() as usize;
    let tables = files(&fs, ".sst");
    for cut in 1..len {
        let fs = two_tables();
        fs.truncate(&manifest, len - cut).unwrap();
        match DB::open_with(options(&fs)) {
            Err(_) => assert_eq!(files(&fs, ".sst"), tables, "cut {cut}: deleted a table"),
            Ok(db) => {
                assert_eq!(db.get("a").unwrap(), Some(b"1".to_vec()), "cut {cut}");
                assert_eq!(db.get("b").unwrap(), Some(b"2".to_vec()), "cut {cut}");
            }
        }
    }
}

#[test]
fn anything_after_the_clean_close_marker_is_corruption() {
    let fs = two_tables();
    let manifest = files(&fs, "MANIFEST-").pop().unwrap();
    // A second copy of the marker record (7-byte fragment header and a
    // 3-byte edit): a valid record where none can be.
    let data = fs.read_all(&manifest).unwrap();
    let mut f = fs.open_append(&manifest).unwrap();
    f.append(&data[data.len() - 10..]).unwrap();
    f.sync().unwrap();
    drop(f);
    assert!(matches!(
        DB::open_with(options(&fs)),
        Err(Error::Corruption { .. })
    ));
}
