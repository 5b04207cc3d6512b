//! `DB::verify`: reads every live file and reports all damage found.

use super::filenames::{self, log_path, FileType};
use super::DbInner;
use crate::error::Error;
use crate::version::read_current;
use crate::wal::{LogKind, LogReader, ReadEvent};

pub(crate) fn verify(inner: &DbInner) -> Vec<Error> {
    let mut errors = Vec::new();
    if let Err(e) = read_current(&*inner.fs, &inner.dir, inner.opts.num_levels) {
        errors.push(e);
    }
    let version = inner.view.read().version.clone();
    for file in version.levels.iter().flatten() {
        match inner.table_cache.get(&file.meta) {
            Ok(table) => errors.extend(table.verify()),
            Err(e) => errors.push(e),
        }
    }
    let log_floor = inner.versions.lock().log_number;
    let names = match inner.fs.list(&inner.dir) {
        Ok(n) => n,
        Err(e) => {
            errors.push(Error::io(&inner.dir, e));
            return errors;
        }
    };
    for name in names {
        let Some(FileType::Log(n)) = filenames::parse(&name) else {
            continue;
        };
        if n < log_floor {
            continue;
        }
        let path = log_path(&inner.dir, n);
        let data = match inner.fs.read_all(&path) {
            Ok(d) => d,
            Err(e) => {
                errors.push(Error::io(&path, e));
                continue;
            }
        };
        let mut reader = LogReader::new(&data, LogKind::Wal);
        loop {
            match reader.next_event() {
                ReadEvent::Eof | ReadEvent::TornTail { .. } => break,
                ReadEvent::Record { .. } => {}
                ReadEvent::Corrupt { offset, reason } => {
                    errors.push(Error::corruption(&path, offset, reason))
                }
            }
        }
    }
    errors
}
