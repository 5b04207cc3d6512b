//! Names of the files in a database directory.

use std::path::{Path, PathBuf};

/// Name of the lock file.
pub(crate) const LOCK: &str = "LOCK";
/// Name of the identity file whose presence marks a database directory.
pub(crate) const IDENTITY: &str = "IDENTITY";
/// What `IDENTITY` says: the database format it was created with (the
/// log format version; docs/format.md).
pub(crate) const IDENTITY_TEXT: &[u8] = b"AiDb database\nformat 4\n";

/// The kinds of file AiDb keeps, parsed from a directory listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileType {
    /// `NNNNNN.log`: a write-ahead log.
    Log(u64),
    /// `NNNNNN.sst`: a table file.
    Table(u64),
    /// `*.tmp`: a file being written, abandoned if still there at open.
    Temp,
    /// `MANIFEST-NNNNNN`.
    Manifest(u64),
    /// `CURRENT`.
    Current,
    /// `LOCK`.
    Lock,
    /// `IDENTITY`.
    Identity,
}

pub(crate) fn log_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.log"))
}

pub(crate) fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

/// Classifies a directory entry; `None` for files AiDb does not own.
pub(crate) fn parse(name: &str) -> Option<FileType> {
    match name {
        LOCK => return Some(FileType::Lock),
        IDENTITY => return Some(FileType::Identity),
        crate::version::CURRENT => return Some(FileType::Current),
        _ => {}
    }
    if let Some(n) = name.strip_prefix("MANIFEST-") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return n.parse().ok().map(FileType::Manifest);
        }
        return None;
    }
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = stem.parse().ok()?;
    match ext {
        "log" => Some(FileType::Log(number)),
        "sst" => Some(FileType::Table(number)),
        "tmp" => Some(FileType::Temp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_the_current_format() {
        let want = format!("AiDb database\nformat {}\n", crate::wal::LOG_FORMAT_VERSION);
        assert_eq!(IDENTITY_TEXT, want.as_bytes());
    }

    #[test]
    fn names_round_trip() {
        let p = log_path(Path::new("/d"), 42);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "000042.log");
        assert_eq!(parse(name), Some(FileType::Log(42)));
        assert_eq!(parse("12345678.log"), Some(FileType::Log(12345678)));
        assert_eq!(parse("000001.tmp"), Some(FileType::Temp));
        assert_eq!(parse("LOCK"), Some(FileType::Lock));
        assert_eq!(parse("000007.sst"), Some(FileType::Table(7)));
        assert_eq!(parse("MANIFEST-000003"), Some(FileType::Manifest(3)));
        assert_eq!(parse("MANIFEST-"), None);
        assert_eq!(parse("CURRENT"), Some(FileType::Current));
        assert_eq!(parse("x.log"), None);
        assert_eq!(parse(".log"), None);
        assert_eq!(parse("notes.txt"), None);
    }
}
