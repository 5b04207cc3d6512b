//! The log format, shared by the write-ahead log and (later) the MANIFEST.
//!
//! A log file is a sequence of 32 KiB blocks. Logical records are split into
//! fragments so that no fragment crosses a block boundary:
//!
//! ```text
//! fragment := masked crc32: u32 LE | length: u16 LE | type: u8 | payload (length bytes)
//! ```
//!
//! The CRC covers the type byte and the payload. Types: 1 FULL (a whole
//! record), 2 FIRST, 3 MIDDLE, 4 LAST (the pieces of a longer record).
//! When fewer than 7 bytes remain in a block, they are zero padding and the
//! next fragment starts in the next block.
//!
//! The first logical record of every file is a header:
//!
//! ```text
//! magic "AIDBLOG\0" (8 bytes) | format version: u32 LE | file kind: u8 | file number: u64 LE
//! ```
//!
//! See `docs/format.md` for the full specification, including how damaged
//! and torn records are told apart.

mod reader;
mod writer;

pub(crate) use reader::{LogReader, ReadEvent};
pub(crate) use writer::LogWriter;

/// Size of a log block.
pub(crate) const BLOCK_SIZE: usize = 32 * 1024;
/// Size of a fragment header.
pub(crate) const HEADER_SIZE: usize = 7;

/// Magic bytes at the start of the header record.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"AIDBLOG\0";
/// Version of the log format, written in every new log and MANIFEST. Bump
/// on any incompatible change. Version 2 (column families) added record
/// contents older readers do not know: batch records naming a family, and
/// family fields in version edits; the framing is unchanged. Version 3
/// (range deletes and merges) added batch operations 2 and 3 and the
/// new-file record tag 12. Version 4 changed no log or MANIFEST record:
/// it marks databases whose tables may hold cache-local bloom filters,
/// which code of version 3 reads as "may contain" (correct, unfiltered).
pub(crate) const LOG_FORMAT_VERSION: u32 = 4;
/// The oldest version this code still reads.
pub(crate) const OLDEST_LOG_FORMAT_VERSION: u32 = 1;
/// Length of the header record's payload.
pub(crate) const FILE_HEADER_LEN: usize = 8 + 4 + 1 + 8;

/// What a log file holds (a byte of the header; part of the format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum LogKind {
    /// A write-ahead log: each record is an encoded write batch.
    Wal = 1,
    /// A MANIFEST: each record is a version edit.
    Manifest = 2,
}

/// Fragment types. Part of the format: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FragmentType {
    Full = 1,
    First = 2,
    Middle = 3,
    Last = 4,
}

impl TryFrom<u8> for FragmentType {
    type Error = u8;
    fn try_from(v: u8) -> Result<Self, u8> {
        match v {
            1 => Ok(FragmentType::Full),
            2 => Ok(FragmentType::First),
            3 => Ok(FragmentType::Middle),
            4 => Ok(FragmentType::Last),
            other => Err(other),
        }
    }
}

/// CRC of a fragment: over its type byte, then its payload.
pub(crate) fn fragment_crc(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// The header record's payload.
pub(crate) fn encode_file_header(kind: LogKind, number: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(FILE_HEADER_LEN);
    v.extend_from_slice(&LOG_MAGIC);
    v.extend_from_slice(&LOG_FORMAT_VERSION.to_le_bytes());
    v.push(kind as u8);
    v.extend_from_slice(&number.to_le_bytes());
    v
}

#[cfg(test)]
mod tests;
