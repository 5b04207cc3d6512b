//! Checking a database reopened after a crash against the models.

use super::workload::families;
use super::{key_prefix, marker_key, Marker, Shape, ThreadModel};
use aidb::fs::FileSystem;
use aidb::{KeyRange, DB};
use std::collections::BTreeMap;

/// What a reopened database must hold: for every thread, at least its
/// batches up to `floor` (what the crash could not lose) and at most up to
/// `issued`; exactly the effect of a prefix of each thread's batches in
/// every family; no hole across threads; no damage; no stray files.
/// Moves the models to the recovered state. Returns the batches recovered.
pub fn recovered(
    db: &DB,
    fs: &dyn FileSystem,
    shape: &Shape,
    models: &mut [ThreadModel],
    floor: &[i64],
    issued: &[i64],
) -> Result<Vec<i64>, String> {
    let mut names = db.column_family_names();
    names.sort();
    let mut want_names: Vec<String> = (0..shape.family_count())
        .map(|f| shape.family_name(f).to_string())
        .collect();
    want_names.sort();
    if names != want_names {
        return Err(format!("families {names:?}, expected {want_names:?}"));
    }
    let cfs = families(db, shape);
    let read = |e: aidb::Error| format!("read failed after recovery: {e}");
    let mut marks = Vec::new();
    for t in 0..shape.threads {
        let m = match db.get(marker_key(t)).map_err(read)? {
            None => None,
            Some(v) => Some(Marker::decode(&v)?),
        };
        marks.push(m);
    }
    let batches: Vec<i64> = marks
        .iter()
        .map(|m| m.as_ref().map_or(-1, |m| m.batch))
        .collect();
    for t in 0..shape.threads {
        if batches[t] < floor[t] {
            return Err(format!(
                "thread {t}: recovered up to batch {}, but batch {} had to survive \
                 (acknowledged before a synced write or flush, or before a process kill)",
                batches[t], floor[t]
            ));
        }
        if batches[t] > issued[t] {
            return Err(format!(
                "thread {t}: recovered batch {}, but only {} were submitted",
                batches[t], issued[t]
            ));
        }
        if let Some(m) = &marks[t] {
            for (u, &needed) in m.acked.iter().enumerate() {
                if batches.get(u).copied().unwrap_or(-1) < needed {
                    return Err(format!(
                        "hole: thread {t}'s batch {} survived, but not thread {u}'s batch \
                         {needed}, acknowledged before it was written (recovered up to {})",
                        m.batch, batches[u]
                    ));
                }
            }
        }
        models[t].advance_to(shape, batches[t])?;
    }
    for (f, cf) in cfs.iter().enumerate() {
        let mut got: BTreeMap<Vec<u8>, Vec<u8>> =
            cf.iter().collect::<aidb::Result<_>>().map_err(read)?;
        let mut backwards: Vec<(Vec<u8>, Vec<u8>)> =
            cf.iter().rev().collect::<aidb::Result<_>>().map_err(read)?;
        backwards.reverse();
        if !backwards.iter().map(|(k, v)| (k, v)).eq(got.iter()) {
            return Err(format!(
                "family {f}: a reverse scan differs from a forward one"
            ));
        }
        if f == 0 {
            for t in 0..shape.threads {
                got.remove(&marker_key(t));
            }
        }
        let want: BTreeMap<Vec<u8>, Vec<u8>> = models.iter().flat_map(|m| m.family(f)).collect();
        if got != want {
            let differ: Vec<String> = got
                .keys()
                .chain(want.keys())
                .filter(|k| got.get(*k) != want.get(*k))
                .take(5)
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            return Err(format!(
                "family {f} is not the effect of the recovered batches {batches:?}: {} keys, \
                 expected {}; differing keys include {differ:?}",
                got.len(),
                want.len()
            ));
        }
        // A range scan of one thread's keys agrees with the full scan.
        if let Some(t) = (0..shape.threads).last() {
            let part: Vec<(Vec<u8>, Vec<u8>)> = cf
                .range(KeyRange::prefix(key_prefix(t)))
                .collect::<aidb::Result<_>>()
                .map_err(read)?;
            if part != models[t].family(f) {
                return Err(format!("family {f}: a prefix scan of thread {t} differs"));
            }
        }
    }
    let damage = db.verify();
    if !damage.is_empty() {
        return Err(format!("verify() after recovery: {damage:?}"));
    }
    check_files(db, fs)?;
    Ok(batches)
}

/// Once background work is done, the directory holds only the tables the
/// families list, one MANIFEST, no temporary file.
fn check_files(db: &DB, fs: &dyn FileSystem) -> Result<(), String> {
    db.wait_for_idle()
        .map_err(|e| format!("wait_for_idle after recovery: {e}"))?;
    let names = fs
        .list(db.path())
        .map_err(|e| format!("listing the directory: {e}"))?;
    let count = |f: &dyn Fn(&str) -> bool| names.iter().filter(|n| f(n)).count();
    let listed: usize = db
        .column_family_names()
        .iter()
        .filter_map(|name| db.column_family(name))
        .map(|cf| cf.stats().levels.iter().map(|l| l.files).sum::<usize>())
        .sum();
    let tables = count(&|n| n.ends_with(".sst"));
    let manifests = count(&|n| n.starts_with("MANIFEST-"));
    let temps = count(&|n| n.ends_with(".tmp"));
    if tables != listed || manifests != 1 || temps != 0 {
        return Err(format!(
            "after recovery: {tables} tables ({listed} listed), {manifests} MANIFESTs, \
             {temps} temporary files: {names:?}"
        ));
    }
    Ok(())
}
