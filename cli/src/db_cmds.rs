//! The commands that open a database.

use crate::progress::Progress;
use crate::{CmdResult, Failure};
use aidb::tools::{escape, unescape};
use aidb::{ColumnFamily, DbIterator, Error, KeyRange, Options, WriteBatch, WriteOptions, DB};
use std::io::Write;
use std::path::Path;

/// One line for an error, naming what a person needs to act on.
pub(crate) fn describe_error(e: &Error) -> String {
    match e {
        Error::Locked { path } => format!(
            "the database at {} is in use by another process (its LOCK file is held); \
             stop that process or work on a copy",
            path.display()
        ),
        Error::NotFound { path } => format!("no database at {}", path.display()),
        // Errors print on one line already; make sure of it.
        e => e.to_string().replace('\n', " "),
    }
}

/// Opens the database in `dir`, which must exist: a tool never creates a
/// database by mistake (a typo in the path would otherwise leave one).
pub(crate) fn open(dir: &Path) -> Result<DB, Failure> {
    if !aidb::tools::database_exists(dir) {
        return Err(Failure::Error(format!("no database at {}", dir.display())));
    }
    let db = DB::open_with(Options {
        create_if_missing: false,
        ..Options::new(dir)
    })?;
    Ok(db)
}

fn family(db: &DB, cf: Option<&str>) -> Result<ColumnFamily, Failure> {
    match cf {
        None => Ok(db.default_column_family()),
        Some(name) => db.column_family(name).ok_or_else(|| {
            Failure::Error(format!(
                "no column family {name:?} (aidb list-cf lists them)"
            ))
        }),
    }
}

fn arg_bytes(what: &str, text: &str) -> Result<Vec<u8>, Failure> {
    unescape(text).map_err(|e| Failure::Error(format!("{what}: {}", describe_error(&e))))
}

pub(crate) fn show(bytes: &[u8], hex: bool) -> String {
    if hex {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        escape(bytes)
    }
}

/// Writes a line to stdout; a closed pipe (`aidb scan | head`) ends the
/// command quietly instead of panicking.
pub(crate) fn out_line(out: &mut impl Write, line: std::fmt::Arguments) -> Result<bool, Failure> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::Error(format!("writing output: {e}"))),
    }
}

pub(crate) fn get(dir: &Path, key: &str, cf: Option<&str>, hex: bool) -> CmdResult {
    let key = arg_bytes("KEY", key)?;
    let db = open(dir)?;
    let cf = family(&db, cf)?;
    match cf.get(&key)? {
        Some(v) => {
            out_line(
                &mut std::io::stdout().lock(),
                format_args!("{}", show(&v, hex)),
            )?;
            Ok(())
        }
        None => Err(Failure::No(None)),
    }
}

/// `put` (with a value) or `delete`, synced.
pub(crate) fn put(dir: &Path, key: &str, value: Option<&str>, cf: Option<&str>) -> CmdResult {
    let key = arg_bytes("KEY", key)?;
    let value = value.map(|v| arg_bytes("VALUE", v)).transpose()?;
    let db = open(dir)?;
    let cf = family(&db, cf)?;
    let mut batch = WriteBatch::new();
    match value {
        Some(v) => batch.put_cf(&cf, key, v),
        None => batch.delete_cf(&cf, key),
    };
    db.write_opt(batch, &WriteOptions { sync: true })?;
    db.close()?;
    Ok(())
}

type Pair = (Vec<u8>, Vec<u8>);

pub(crate) struct ScanArgs {
    pub(crate) prefix: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) limit: Option<u64>,
    pub(crate) reverse: bool,
    pub(crate) keys_only: bool,
    pub(crate) hex: bool,
}

pub(crate) fn scan(dir: &Path, a: &ScanArgs, cf: Option<&str>) -> CmdResult {
    let from = a
        .from
        .as_deref()
        .map(|t| arg_bytes("--from", t))
        .transpose()?;
    let to = a.to.as_deref().map(|t| arg_bytes("--to", t)).transpose()?;
    let prefix = a
        .prefix
        .as_deref()
        .map(|t| arg_bytes("--prefix", t))
        .transpose()?;
    let db = open(dir)?;
    let cf = family(&db, cf)?;
    let range = match (&from, &to) {
        (Some(f), Some(t)) => KeyRange::new(f.clone()..t.clone()),
        (Some(f), None) => KeyRange::new(f.clone()..),
        (None, Some(t)) => KeyRange::new(..t.clone()),
        (None, None) => match &prefix {
            Some(p) => KeyRange::prefix(p),
            None => KeyRange::all(),
        },
    };
    let iter: DbIterator = cf.range(range);
    let iter: Box<dyn Iterator<Item = aidb::Result<Pair>>> = if a.reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    for item in iter {
        if a.limit.is_some_and(|l| printed >= l) {
            break;
        }
        let (k, v) = item?;
        if prefix.as_ref().is_some_and(|p| !k.starts_with(p)) {
            continue;
        }
        let line = if a.keys_only {
            show(&k, a.hex)
        } else {
            format!("{}\t{}", show(&k, a.hex), show(&v, a.hex))
        };
        if !out_line(&mut out, format_args!("{line}"))? {
            return Ok(());
        }
        printed += 1;
    }
    let _ = out.flush();
    Ok(())
}

pub(crate) fn stats(dir: &Path, cf: Option<&str>) -> CmdResult {
    let db = open(dir)?;
    let cf = family(&db, cf)?;
    let s = cf.stats();
    let mut out = std::io::stdout().lock();
    out_line(&mut out, format_args!("column_family {}", cf.name()))?;
    out_line(&mut out, format_args!("level files bytes"))?;
    for (i, l) in s.levels.iter().enumerate() {
        out_line(&mut out, format_args!("{i} {} {}", l.files, l.bytes))?;
    }
    out_line(
        &mut out,
        format_args!("memtable_bytes {}", s.memtable_bytes),
    )?;
    out_line(&mut out, format_args!("last_sequence {}", s.last_sequence))?;
    out_line(
        &mut out,
        format_args!("log_damage_skipped {}", s.log_damage_skipped),
    )?;
    // The database-wide statistics since this open (recovery included).
    write!(out, "{}", db.statistics()).map_err(|e| Failure::Error(e.to_string()))?;
    Ok(())
}

pub(crate) fn properties(dir: &Path, names: &[String], cf: Option<&str>) -> CmdResult {
    let db = open(dir)?;
    let cf = family(&db, cf)?;
    let mut out = std::io::stdout().lock();
    if names.is_empty() {
        for (name, what) in aidb::PROPERTIES {
            out_line(&mut out, format_args!("{name}\t{what}"))?;
        }
        return Ok(());
    }
    for name in names {
        match cf.property(name) {
            Some(v) if v.contains('\n') => {
                out_line(&mut out, format_args!("{name}\n{}", v.trim_end()))?
            }
            Some(v) => out_line(&mut out, format_args!("{name}\t{v}"))?,
            None => {
                return Err(Failure::Error(format!(
                    "unknown property {name:?} (aidb properties DB lists them)"
                )))
            }
        };
    }
    Ok(())
}

pub(crate) fn verify(dir: &Path) -> CmdResult {
    let db = open(dir)?;
    let progress = Progress::start("verifying");
    let errors = db.verify();
    progress.finish();
    if errors.is_empty() {
        println!("ok");
        return Ok(());
    }
    for e in &errors {
        eprintln!("damaged: {}", describe_error(e));
    }
    Err(Failure::No(Some(format!(
        "{} problem(s) found",
        errors.len()
    ))))
}

pub(crate) fn compact(dir: &Path, cf: Option<&str>) -> CmdResult {
    let db = open(dir)?;
    let families: Vec<ColumnFamily> = match cf {
        Some(_) => vec![family(&db, cf)?],
        None => db
            .column_family_names()
            .iter()
            .filter_map(|n| db.column_family(n))
            .collect(),
    };
    let total = families.len();
    for (i, f) in families.iter().enumerate() {
        let progress = Progress::start(&format!(
            "compacting column family {:?} ({}/{total})",
            f.name(),
            i + 1
        ));
        let result = f.compact_range(..);
        progress.finish();
        result?;
    }
    db.close()?;
    Ok(())
}

pub(crate) fn list_cf(dir: &Path) -> CmdResult {
    let db = open(dir)?;
    let mut out = std::io::stdout().lock();
    for name in db.column_family_names() {
        if !out_line(&mut out, format_args!("{name}"))? {
            break;
        }
    }
    Ok(())
}

pub(crate) fn create_cf(dir: &Path, name: &str) -> CmdResult {
    let db = open(dir)?;
    db.create_column_family(name, aidb::ColumnFamilyOptions::default())?;
    db.close()?;
    Ok(())
}

pub(crate) fn drop_cf(dir: &Path, name: &str) -> CmdResult {
    let db = open(dir)?;
    db.drop_column_family(name)?;
    db.close()?;
    Ok(())
}

pub(crate) fn repair(dir: &Path) -> CmdResult {
    if !dir.is_dir() {
        return Err(Failure::Error(format!("no database at {}", dir.display())));
    }
    let report = aidb::repair(dir)?;
    print!("{report}");
    if report.lost_anything() {
        return Err(Failure::No(Some(
            "repair dropped some data (see above)".into(),
        )));
    }
    Ok(())
}
