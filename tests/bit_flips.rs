//! Single bit flips in the files of a closed database (tables, MANIFEST,
//! CURRENT, log, IDENTITY): every read returns the right value or
//! `Corruption` naming that file, never a wrong value or a missing key,
//! and `DB::verify()` reports every damage that reads ran into.

mod common;

use aidb::fs::{FaultInjectionFs, FileSystem};
use aidb::{Error, DB};
use common::workload::{apply, contents, options, run, workload, State};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// Copies every file of `/db` from one file system into a fresh one.
fn clone_fs(files: &[(PathBuf, Vec<u8>)]) -> FaultInjectionFs {
    let fs = FaultInjectionFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    for (p, data) in files {
        let mut f = fs.create(p).unwrap();
        f.append(data).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new("/db")).unwrap();
    fs
}

#[test]
fn a_flipped_bit_in_any_file_is_detected_never_a_wrong_answer() {
    let fs = FaultInjectionFs::new();
    let mut model = State::new();
    {
        let db = DB::open_with(options(&fs)).unwrap();
        for (i, op) in workload(400, 5).iter().enumerate() {
            run(&db, op).unwrap();
            apply(&mut model, op);
            if i == 380 {
                db.flush().unwrap();
            }
        }
        db.close().unwrap();
    }
    let files: Vec<(PathBuf, Vec<u8>)> = fs
        .list(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n != "LOCK")
        .map(|n| {
            let p = Path::new("/db").join(n);
            let d = fs.read_all(&p).unwrap();
            (p, d)
        })
        .collect();
    let flips: usize = std::env::var("AIDB_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut detected = 0;
    for _ in 0..flips {
        let (path, data) = &files[rng.gen_range(0..files.len())];
        if data.is_empty() {
            continue;
        }
        let offset = rng.gen_range(0..data.len());
        let bit = 1u8 << rng.gen_range(0..8);
        let mut damaged: Vec<(PathBuf, Vec<u8>)> = files.clone();
        for (p, d) in &mut damaged {
            if p == path {
                d[offset] ^= bit;
            }
        }
        let fs = clone_fs(&damaged);
        let what = format!("bit {bit:#04x} at {}:{offset}", path.display());
        let db = match DB::open_with(options(&fs)) {
            Ok(db) => db,
            Err(Error::Corruption { file, .. }) => {
                // A damaged CURRENT may name a MANIFEST that does not exist;
                // the error then names that missing file.
                let dangling =
                    path.ends_with("CURRENT") && file.to_string_lossy().contains("MANIFEST-");
                assert!(
                    &file == path || dangling,
                    "{what}: corruption blamed on {}",
                    file.display()
                );
                detected += 1;
                continue;
            }
            Err(e) => panic!("{what}: open failed with {e}"),
        };
        let mut saw_corruption = false;
        for (k, v) in &model {
            match db.get(k) {
                Ok(got) => assert_eq!(got.as_ref(), Some(v), "{what}: wrong answer"),
                Err(Error::Corruption { file, .. }) => {
                    assert_eq!(&file, path, "{what}");
                    saw_corruption = true;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        match contents(&db) {
            Ok(got) => assert!(got == model, "{what}: scan returned wrong data"),
            Err(Error::Corruption { .. }) => saw_corruption = true,
            Err(e) => panic!("{what}: {e}"),
        }
        let report = db.verify();
        if saw_corruption {
            assert!(
                !report.is_empty(),
                "{what}: verify() missed damage that reads found"
            );
            detected += 1;
        }
        drop(db);
    }
    println!("{flips} flips, {detected} detected, the rest harmless, 0 wrong answers");
}
