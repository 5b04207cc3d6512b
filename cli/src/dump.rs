//! The commands that read files directly, without opening the database
//! (so they take no lock and work on copies and damaged files):
//! `dump-sst`, `dump-wal`, `dump-manifest`.

use crate::db_cmds::{describe_error, out_line, show};
use crate::{CmdResult, Failure};
use aidb::tools::{self, LogItem, ValueKind};
use std::io::Write;
use std::path::Path;

fn kind(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Put => "put",
        ValueKind::Delete => "delete",
        ValueKind::Merge => "merge",
        ValueKind::RangeDelete => "delete-range",
        _ => "unknown",
    }
}

fn must_be_file(path: &Path) -> CmdResult {
    if path.is_file() {
        Ok(())
    } else {
        Err(Failure::Error(format!("no file at {}", path.display())))
    }
}

pub(crate) fn sst(path: &Path, entries: bool, limit: Option<u64>, hex: bool) -> CmdResult {
    must_be_file(path)?;
    let info = tools::describe_table(path)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = |args: std::fmt::Arguments| out_line(&mut out, args);
    line(format_args!("file {}", info.path.display()))?;
    line(format_args!("file_size {}", info.file_size))?;
    line(format_args!("format_version {}", info.format_version))?;
    line(format_args!("unique_id {:016x}", info.unique_id))?;
    line(format_args!("entries {}", info.entries))?;
    line(format_args!("tombstones {}", info.tombstones))?;
    line(format_args!("range_deletions {}", info.range_deletions))?;
    line(format_args!("data_blocks {}", info.data_blocks))?;
    line(format_args!("raw_data_size {}", info.raw_data_size))?;
    line(format_args!("stored_data_size {}", info.stored_data_size))?;
    line(format_args!(
        "sequence_numbers {}..={}",
        info.smallest_seq, info.largest_seq
    ))?;
    line(format_args!("creation_time {}", info.creation_time))?;
    line(format_args!("compression {:?}", info.compression))?;
    line(format_args!(
        "smallest_key {}",
        show(&info.smallest_key, hex)
    ))?;
    line(format_args!("largest_key {}", show(&info.largest_key, hex)))?;
    line(format_args!("blocks (kind offset size compression):"))?;
    for b in &info.blocks {
        let c = b
            .compression
            .map_or("unknown".to_string(), |c| format!("{c:?}"));
        line(format_args!("  {:?} {} {} {c}", b.kind, b.offset, b.size))?;
    }
    line(format_args!(
        "  Footer {} {}",
        info.footer_offset, info.footer_len
    ))?;
    if entries {
        out_line(&mut out, format_args!("entries (key seq kind value):"))?;
        for (n, e) in tools::table_entries(path)?.enumerate() {
            if limit.is_some_and(|l| n as u64 >= l) {
                break;
            }
            let e = e?;
            let shown = format!(
                "  {}\t{}\t{}\t{}",
                show(&e.key, hex),
                e.seq,
                kind(e.kind),
                show(&e.value, hex)
            );
            if !out_line(&mut out, format_args!("{shown}"))? {
                return Ok(());
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

pub(crate) fn wal(path: &Path, hex: bool) -> CmdResult {
    must_be_file(path)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut damaged = false;
    let mut failed: Option<Failure> = None;
    let header = tools::read_log(path, |item| {
        let text = match item {
            LogItem::Batch {
                offset,
                first_seq,
                ops,
            } => {
                let mut s = format!("@{offset} batch seq {first_seq} ({} ops)", ops.len());
                for (i, op) in ops.iter().enumerate() {
                    s.push_str(&format!(
                        "\n  {}\tcf {}\t{}\t{}\t{}",
                        first_seq + i as u64,
                        op.column_family,
                        kind(op.kind),
                        show(&op.key, hex),
                        show(&op.value, hex)
                    ));
                }
                s
            }
            LogItem::Undecodable { offset, reason } => {
                damaged = true;
                format!("@{offset} undecodable record: {reason}")
            }
            LogItem::Damaged { offset, reason } => {
                damaged = true;
                format!("@{offset} damaged: {reason}")
            }
            LogItem::TornTail { offset, reason } => {
                format!("@{offset} torn tail (a write cut short by a crash): {reason}")
            }
            _ => "unknown item".to_string(),
        };
        match out_line(&mut out, format_args!("{text}")) {
            Ok(more) => more,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(f) = failed {
        return Err(f);
    }
    let _ = out.flush();
    match header {
        None => Err(Failure::No(Some(format!(
            "{}: no valid log header",
            path.display()
        )))),
        Some(_) if damaged => Err(Failure::No(Some(format!(
            "{}: damaged records (see above)",
            path.display()
        )))),
        Some(_) => Ok(()),
    }
}

pub(crate) fn manifest(dir: &Path) -> CmdResult {
    if !dir.exists() {
        return Err(Failure::Error(format!("no database at {}", dir.display())));
    }
    let dump = tools::read_manifest(dir).map_err(|e| Failure::Error(describe_error(&e)))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    out_line(&mut out, format_args!("manifest {}", dump.path.display()))?;
    for e in &dump.edits {
        let mut s = format!("@{} edit", e.offset);
        if let Some(n) = e.log_number {
            s.push_str(&format!(" log_number={n}"));
        }
        if let Some(n) = e.next_file_number {
            s.push_str(&format!(" next_file={n}"));
        }
        if let Some(n) = e.last_sequence {
            s.push_str(&format!(" last_seq={n}"));
        }
        if let Some(n) = e.max_column_family {
            s.push_str(&format!(" max_cf={n}"));
        }
        if e.clean_close {
            s.push_str(" clean_close");
        }
        for f in &e.families {
            s.push_str(&format!("\n  cf {}", f.id));
            if let Some((name, _)) = &f.added {
                s.push_str(&format!(" add {name:?}"));
            }
            if f.dropped {
                s.push_str(" drop");
            }
            if let Some(n) = f.log_number {
                s.push_str(&format!(" log_number={n}"));
            }
            for (level, n) in &f.deleted_files {
                s.push_str(&format!("\n    - L{level} #{n}"));
            }
            for t in &f.new_files {
                s.push_str(&format!(
                    "\n    + L{} #{} {} bytes [{} .. {}] seq {}..={}",
                    t.level,
                    t.number,
                    t.size,
                    show(&t.smallest_key, false),
                    show(&t.largest_key, false),
                    t.smallest_seq,
                    t.largest_seq
                ));
            }
        }
        if !out_line(&mut out, format_args!("{s}"))? {
            return Ok(());
        }
    }
    out_line(&mut out, format_args!("state:"))?;
    for f in &dump.families {
        out_line(
            &mut out,
            format_args!("  cf {} {:?}: {} tables", f.id, f.name, f.files.len()),
        )?;
        for t in &f.files {
            out_line(
                &mut out,
                format_args!("    L{} #{} {} bytes", t.level, t.number, t.size),
            )?;
        }
    }
    let _ = out.flush();
    if let Some((offset, reason)) = &dump.damage {
        return Err(Failure::No(Some(format!(
            "{}: damaged at offset {offset}: {reason} (aidb repair rebuilds it)",
            dump.path.display()
        ))));
    }
    Ok(())
}
