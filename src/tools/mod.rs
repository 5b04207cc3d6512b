//! Decoders for the files of a database, for operators and their tools
//! (the `aidb` command-line tool's `dump-sst`, `dump-wal` and
//! `dump-manifest` use them): describe a table file and read its entries,
//! read a write-ahead log record by record, read a MANIFEST edit by edit.
//!
//! These read files directly, without opening the database (no lock is
//! taken), so they work on a copy, on a database another process has open,
//! and on damaged files: damage is reported where it is found, and what
//! comes before it is still returned. The formats are specified in
//! `docs/format.md`.
//!
//! ```
//! # fn main() -> aidb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = aidb::DB::open(dir.path())?;
//! db.put("k", "v")?;
//! db.flush()?;
//! drop(db);
//! assert!(aidb::tools::database_exists(dir.path()));
//! let manifest = aidb::tools::read_manifest(dir.path())?;
//! let table = &manifest.families[0].files[0];
//! let info = aidb::tools::describe_table(&table.path)?;
//! assert_eq!(info.entries, 1);
//! for entry in aidb::tools::table_entries(&table.path)? {
//!     let entry = entry?;
//!     assert_eq!((entry.key.as_slice(), entry.value.as_slice()), (&b"k"[..], &b"v"[..]));
//! }
//! # Ok(())
//! # }
//! ```

mod log;
mod manifest;
mod table;

pub use self::log::{read_log, read_log_header, LogFileKind, LogHeader, LogItem, LogOperation};
pub use manifest::{read_manifest, FamilyChange, LiveFamily, ManifestDump, ManifestEdit};
pub use table::{
    describe_table, table_entries, BlockInfo, BlockKind, TableEntries, TableEntry, TableInfo,
};

use std::path::Path;

/// What an entry of a table or a log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueKind {
    /// A value.
    Put,
    /// A tombstone: the key is deleted.
    Delete,
    /// A merge operand (see [`MergeOperator`](crate::MergeOperator)).
    Merge,
    /// A range tombstone: every key from the entry's key up to (not
    /// including) its value is deleted. Logs hold them as operations;
    /// tables keep them in a block of their own
    /// ([`TableInfo::range_deletions`]).
    RangeDelete,
}

impl From<crate::types::ValueKind> for ValueKind {
    fn from(k: crate::types::ValueKind) -> ValueKind {
        match k {
            crate::types::ValueKind::Put => ValueKind::Put,
            crate::types::ValueKind::Delete => ValueKind::Delete,
            crate::types::ValueKind::Merge => ValueKind::Merge,
        }
    }
}

/// Whether `dir` holds an AiDb database (its `CURRENT` or `IDENTITY` file
/// is there), without opening or creating anything: what a tool checks
/// before [`DB::open_with`](crate::DB::open_with), which creates the
/// database's lock file.
pub fn database_exists(dir: impl AsRef<Path>) -> bool {
    let dir = dir.as_ref();
    dir.join(crate::version::CURRENT).is_file() || dir.join("IDENTITY").is_file()
}

/// `bytes` as text for a terminal or a script: valid UTF-8 that prints is
/// kept, a backslash is doubled, and every other byte (control characters,
/// tabs and newlines included, and bytes that are not UTF-8) is written
/// `\xHH`. So the result never holds a tab or a newline, and
/// [`unescape`] gives back the bytes.
///
/// ```
/// assert_eq!(aidb::tools::escape(b"user:1\t\xff\\"), r"user:1\x09\xff\\");
/// assert_eq!(aidb::tools::escape("café".as_bytes()), "café");
/// ```
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The bytes [`escape`] wrote: `\\` is a backslash, `\xHH` a byte, `\t`,
/// `\n`, `\r` and `\0` their characters; everything else stands for
/// itself (as UTF-8).
///
/// # Errors
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a
/// backslash followed by anything else, or `\x` without two hex digits.
pub fn unescape(text: &str) -> crate::Result<Vec<u8>> {
    let bad = |why: String| crate::Error::InvalidArgument(format!("{text:?}: {why}"));
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some((_, '\\')) => out.push(b'\\'),
            Some((_, 't')) => out.push(b'\t'),
            Some((_, 'n')) => out.push(b'\n'),
            Some((_, 'r')) => out.push(b'\r'),
            Some((_, '0')) => out.push(0),
            Some((_, 'x')) => {
                let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                let byte = (hex.len() == 2)
                    .then(|| u8::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| bad(format!("\\x at byte {i} needs two hex digits")))?;
                out.push(byte);
            }
            Some((_, other)) => return Err(bad(format!("unknown escape \\{other} at byte {i}"))),
            None => return Err(bad("ends with a lone backslash".into())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_every_byte_string() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"plain".to_vec(),
            b"tab\there\nnewline".to_vec(),
            b"\\x41 is not A".to_vec(),
            "ünïcödé ✓".as_bytes().to_vec(),
            vec![0xff, 0xfe, 0, 1, 0x7f, 0x80],
        ];
        cases.push((0..=255u8).collect());
        for bytes in cases {
            let text = escape(&bytes);
            assert!(!text.contains('\t') && !text.contains('\n'), "{text}");
            assert_eq!(unescape(&text).unwrap(), bytes, "{text}");
        }
        assert_eq!(unescape(r"a\tb\0").unwrap(), b"a\tb\0");
        for bad in [r"\", r"\q", r"\x4", r"\xzz"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }
}
