//! `aidb::repair`: a database with data in several levels, two column
//! families, range tombstones and merge operands loses its MANIFEST (or has
//! it damaged); after repair every key has its newest value, in its own
//! family.

use aidb::{ColumnFamilyOptions, MergeOperator, Options, DB};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Appends operands, comma-separated.
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "append"
    }
    fn full_merge(&self, _: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        let mut v = existing.map(<[u8]>::to_vec).unwrap_or_default();
        for op in ops {
            if !v.is_empty() {
                v.push(b',');
            }
            v.extend_from_slice(op);
        }
        Some(v)
    }
}

fn cf_opts() -> ColumnFamilyOptions {
    ColumnFamilyOptions {
        write_buffer_size: 16 << 10,
        level0_file_num_compaction_trigger: 2,
        max_bytes_for_level_base: 64 << 10,
        target_file_size: 16 << 10,
        ..ColumnFamilyOptions::default()
    }
}

fn options(dir: &Path) -> Options {
    let mut o = Options::new(dir);
    o.merge_operator = Some(Arc::new(Append));
    o.write_buffer_size = 16 << 10;
    o.level0_file_num_compaction_trigger = 2;
    o.max_bytes_for_level_base = 64 << 10;
    o.target_file_size = 16 << 10;
    o.column_families.insert("users".into(), cf_opts());
    o
}

type Model = BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// Writes rounds of overwrites so data ends in several levels, with a
/// range delete and merges; returns what each family should hold.
fn build(dir: &Path) -> Model {
    let db = DB::open_with(options(dir)).unwrap();
    let users = db.column_family("users").unwrap();
    let mut model = Model::new();
    let value = |round: u32, i: u32| format!("v{round}-{i}-{}", "x".repeat(100)).into_bytes();
    for round in 0..4u32 {
        for i in 0..400u32 {
            let key = format!("key{i:05}").into_bytes();
            db.put(&key, value(round, i)).unwrap();
            model.insert(("default".into(), key.clone()), value(round, i));
            if i % 4 == 0 {
                users.put(&key, value(round + 10, i)).unwrap();
                model.insert(("users".into(), key), value(round + 10, i));
            }
        }
        db.flush().unwrap();
        users.flush().unwrap();
        db.wait_for_idle().unwrap();
    }
    // A range tombstone and merges, flushed into tables of their own.
    db.delete_range("key00100".."key00150").unwrap();
    model.retain(|(cf, k), _| {
        !(cf == "default" && k.as_slice() >= &b"key00100"[..] && k.as_slice() < &b"key00150"[..])
    });
    for i in [5u32, 6, 120] {
        let key = format!("key{i:05}").into_bytes();
        db.merge(&key, "m1").unwrap();
        db.merge(&key, "m2").unwrap();
        let old = model.get(&("default".into(), key.clone())).cloned();
        let mut v = old.unwrap_or_default();
        if !v.is_empty() {
            v.push(b',');
        }
        v.extend_from_slice(b"m1,m2");
        model.insert(("default".into(), key), v);
    }
    db.flush().unwrap();
    // A last write on top of everything.
    db.put("key00007", "in the log").unwrap();
    model.insert(
        ("default".into(), b"key00007".to_vec()),
        b"in the log".to_vec(),
    );
    let levels: Vec<usize> = db.stats().levels.iter().map(|l| l.files).collect();
    assert!(
        levels.iter().filter(|&&n| n > 0).count() >= 2,
        "data should be in several levels: {levels:?}"
    );
    db.close().unwrap();
    model
}

fn check(dir: &Path, model: &Model) {
    let db = DB::open_with(options(dir)).unwrap();
    let users = db
        .column_family("users")
        .expect("family users survives repair");
    let mut seen = Model::new();
    for (cf, handle) in [("default", db.default_column_family()), ("users", users)] {
        for item in handle.iter() {
            let (k, v) = item.unwrap();
            seen.insert((cf.to_string(), k), v);
        }
    }
    assert_eq!(seen.len(), model.len());
    for (key, want) in model {
        assert_eq!(seen.get(key), Some(want), "{key:?}");
    }
    // Point reads agree with the scan.
    for ((cf, k), v) in model.iter().step_by(7) {
        let got = if cf == "default" {
            db.get(k).unwrap()
        } else {
            db.column_family(cf).unwrap().get(k).unwrap()
        };
        assert_eq!(got.as_ref(), Some(v), "{cf} {k:?}");
    }
    assert!(db.verify().is_empty());
}

fn files(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect()
}

#[test]
fn repair_after_the_manifest_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = build(dir);
    for p in files(dir, "MANIFEST")
        .into_iter()
        .chain(files(dir, "CURRENT"))
    {
        std::fs::remove_file(p).unwrap();
    }
    assert!(
        DB::open_with(options(dir)).is_err(),
        "no MANIFEST: open fails"
    );
    let report = aidb::repair_with(options(dir)).unwrap();
    assert!(!report.lost_anything(), "{report}");
    assert!(report.tables_assigned_to_default.is_empty(), "{report}");
    assert!(
        report.tables_recovered.iter().any(|t| t.1 == "users"),
        "{report}"
    );
    check(dir, &model);
}

#[test]
fn repair_after_the_manifest_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = build(dir);
    let manifest = files(dir, "MANIFEST").pop().unwrap();
    let mut bytes = std::fs::read(&manifest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&manifest, bytes).unwrap();
    assert!(
        DB::open_with(options(dir)).is_err(),
        "damaged MANIFEST: open fails"
    );
    let report = aidb::repair_with(options(dir)).unwrap();
    assert!(!report.lost_anything(), "{report}");
    check(dir, &model);
}

#[test]
fn a_damaged_table_is_dropped_and_reported_and_the_rest_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut model = build(dir);
    let db = DB::open_with(options(dir)).unwrap();
    db.compact_range(..).unwrap();
    db.column_family("users")
        .unwrap()
        .compact_range(..)
        .unwrap();
    drop(db);
    // Damage one table of "users": its keys are lost, nothing else.
    let manifest = aidb::tools::read_manifest(dir).unwrap();
    let users = manifest
        .families
        .iter()
        .find(|f| f.name == "users")
        .unwrap();
    let victim = &users.files[0];
    let mut bytes = std::fs::read(&victim.path).unwrap();
    bytes[20] ^= 0x55;
    std::fs::write(&victim.path, bytes).unwrap();
    let report = aidb::repair_with(options(dir)).unwrap();
    assert!(report.lost_anything());
    assert_eq!(report.tables_dropped.len(), 1, "{report}");
    assert!(dir
        .join("lost")
        .join(victim.path.file_name().unwrap())
        .exists());
    model.retain(|(cf, k), _| {
        !(cf == "users"
            && k.as_slice() >= &victim.smallest_key[..]
            && k.as_slice() <= &victim.largest_key[..])
    });
    check(dir, &model);
}

/// A compaction output can have a larger file number than a level-0 table
/// holding newer versions of its keys. Repair puts every table in level 0
/// (searched newest file number first), so it must settle the levels by
/// compacting before anything reads, or the older version would be read.
#[test]
fn a_newer_table_holding_older_versions_does_not_win() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = DB::open(dir).unwrap();
    db.put("x", "old").unwrap();
    db.put("y", "1").unwrap();
    db.flush().unwrap();
    db.compact_range(..).unwrap(); // x=old, y=1 in level 1
    db.put("x", "new").unwrap();
    db.flush().unwrap(); // x=new in level 0
    db.compact_range("y".."z").unwrap(); // level 1 → 2: a newer file, x=old
    let manifest = aidb::tools::read_manifest(dir).unwrap();
    let tables = &manifest.families[0].files;
    let newest = tables.iter().max_by_key(|t| t.number).unwrap();
    assert!(
        newest.level > 0 && newest.smallest_key == b"x",
        "{tables:?}"
    );
    assert_eq!(db.get("x").unwrap().as_deref(), Some(&b"new"[..]));
    db.close().unwrap();
    for p in files(dir, "MANIFEST") {
        std::fs::remove_file(p).unwrap();
    }
    let report = aidb::repair(dir).unwrap();
    assert!(!report.lost_anything(), "{report}");
    let db = DB::open(dir).unwrap();
    assert_eq!(db.get("x").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(db.get("y").unwrap().as_deref(), Some(&b"1"[..]));
}
