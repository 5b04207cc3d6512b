//! `DB::verify`: reads every live file and reports all damage found.

use super::filenames::{self, log_path, FileType};
use super::DbInner;
use crate::error::Error;
use crate::version::read_current;
use crate::wal::{LogKind, LogReader, ReadEvent};

/// Compares the CRC of a table file's bytes with the one the MANIFEST
/// recorded when it was written (format 2).
fn check_file_crc(inner: &DbInner, meta: &crate::version::FileMeta) -> Option<Error> {
    if meta.file_crc == 0 {
        return None;
    }
    let path = super::filenames::table_path(&inner.dir, meta.number);
    let data = match inner.fs.read_all(&path) {
        Ok(d) => d,
        Err(e) => return Some(Error::io(&path, e)),
    };
    let crc = crc32fast::hash(&data);
    (crc != meta.file_crc).then(|| {
        Error::corruption(
            &path,
            0,
            format!(
                "file checksum {crc:#010x}, the MANIFEST recorded {:#010x}",
                meta.file_crc
            ),
        )
    })
}

/// Reads the live files while the database keeps working: a MANIFEST
/// replaced or a log made obsolete and deleted meanwhile is not damage.
pub(crate) fn verify(inner: &DbInner) -> Vec<Error> {
    let mut errors = Vec::new();
    {
        // Under the version lock no edit is half-appended and no new
        // MANIFEST replaces the one `CURRENT` names while it is read.
        let _versions = inner.versions.lock();
        if let Err(e) = read_current(&*inner.fs, &inner.dir) {
            errors.push(e);
        }
    }
    for family in inner.family_list() {
        let version = family.view.read().version.clone();
        for file in version.levels.iter().flatten() {
            match inner.table_cache.get(file) {
                Ok(table) => errors.extend(table.verify()),
                Err(e) => errors.push(e),
            }
            errors.extend(check_file_crc(inner, &file.meta));
        }
    }
    let log_floor = inner.versions.lock().log_number;
    // The log being written is read only as far as it was written when
    // looked at: past that it holds reserved room (zeros) that appends
    // fill meanwhile, and it is cut back when the writer moves on. Newer
    // logs, started since, are left alone for the same reason.
    let (live_log, live_len) = {
        let wal = inner.wal.lock();
        (wal.number, wal.writer.len())
    };
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
        if n < log_floor || n > live_log {
            continue;
        }
        let path = log_path(&inner.dir, n);
        let read = if n == live_log {
            read_prefix(&*inner.fs, &path, live_len)
        } else {
            inner.fs.read_all(&path)
        };
        let data = match read {
            Ok(d) => d,
            // A flush made it obsolete and deleted it since the listing.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && n < inner.versions.lock().log_number =>
            {
                continue
            }
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

/// The first `len` bytes of the file at `path`.
fn read_prefix(
    fs: &dyn crate::fs::FileSystem,
    path: &std::path::Path,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    let file = fs.open(path)?;
    let mut data = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact_at(0, &mut data)?;
    Ok(data)
}
