//! Write-ahead logs (and the header shared with MANIFESTs), record by
//! record.

use super::ValueKind;
use crate::batch::BatchOp;
use crate::error::{Error, IoContext, Result};
use crate::fs::{FileSystem, OsFileSystem};
use crate::wal::{LogKind, LogReader, ReadEvent, FILE_HEADER_LEN, HEADER_SIZE, LOG_MAGIC};
use std::path::Path;

/// What a log-format file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFileKind {
    /// A write-ahead log (`NNNNNN.log`): write batches.
    WriteAheadLog,
    /// A MANIFEST: version edits.
    Manifest,
}

/// The header record every log and MANIFEST starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogHeader {
    /// Log format version (1 or 2).
    pub format_version: u32,
    /// Log or MANIFEST.
    pub kind: LogFileKind,
    /// The file number it was created with.
    pub number: u64,
}

/// Reads the header of the log or MANIFEST at `path`.
///
/// # Errors
/// [`Error::Io`] when it cannot be read; [`Error::Corruption`] (at offset
/// 0) when it does not start with a valid header.
pub fn read_log_header(path: impl AsRef<Path>) -> Result<LogHeader> {
    let path = path.as_ref();
    let data = OsFileSystem.read_all(path).ctx(path)?;
    parse_header(&data).ok_or_else(|| Error::corruption(path, 0, "no AiDb log header"))
}

/// The header from the file's first fragment, which holds it whole (the
/// log writer starts every file with it).
pub(super) fn parse_header(data: &[u8]) -> Option<LogHeader> {
    let payload = data.get(HEADER_SIZE..HEADER_SIZE + FILE_HEADER_LEN)?;
    let len = u16::from_le_bytes([*data.get(4)?, *data.get(5)?]) as usize;
    if len != FILE_HEADER_LEN || payload[..8] != LOG_MAGIC {
        return None;
    }
    let kind = match payload[12] {
        1 => LogFileKind::WriteAheadLog,
        2 => LogFileKind::Manifest,
        _ => return None,
    };
    Some(LogHeader {
        format_version: u32::from_le_bytes(payload[8..12].try_into().ok()?),
        kind,
        number: u64::from_le_bytes(payload[13..21].try_into().ok()?),
    })
}

/// One operation of a write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogOperation {
    /// The column family's id (0 is the default family; `aidb
    /// dump-manifest` shows the names).
    pub column_family: u32,
    /// Put, delete, merge or range delete.
    pub kind: ValueKind,
    /// The key (for a range delete, the first key removed).
    pub key: Vec<u8>,
    /// The value: empty for a delete, the operand for a merge, and for a
    /// range delete the end of the range (not removed).
    pub value: Vec<u8>,
}

/// What reading a log finds, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogItem {
    /// A write batch: operation `i` has sequence number `first_seq + i`.
    Batch {
        /// Where the record starts.
        offset: u64,
        /// Sequence number of the first operation.
        first_seq: u64,
        /// The operations.
        ops: Vec<LogOperation>,
    },
    /// A record that passed its checksums but is not a write batch.
    Undecodable {
        /// Where the record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Damage; reading resumes at the next 32 KiB block.
    Damaged {
        /// Where the damage is.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The file ends inside a record (a write cut short by a crash):
    /// nothing follows.
    TornTail {
        /// Where the incomplete record starts.
        offset: u64,
        /// What was found.
        reason: String,
    },
}

/// Reads the write-ahead log at `path`, calling `visit` with each record
/// (and each damaged place) in file order until the end or until `visit`
/// returns `false`. Returns the header, if the file has a valid one.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read. Damage is not an error: it
/// is reported to `visit`.
pub fn read_log(
    path: impl AsRef<Path>,
    mut visit: impl FnMut(LogItem) -> bool,
) -> Result<Option<LogHeader>> {
    let path = path.as_ref();
    let data = OsFileSystem.read_all(path).ctx(path)?;
    let header = parse_header(&data);
    let mut reader = LogReader::new(&data, LogKind::Wal);
    loop {
        let item = match reader.next_event() {
            ReadEvent::Eof => break,
            ReadEvent::TornTail { offset, reason } => LogItem::TornTail { offset, reason },
            ReadEvent::Corrupt { offset, reason } => LogItem::Damaged { offset, reason },
            ReadEvent::Record { offset, data } => match crate::batch::WriteBatch::decode(&data) {
                Ok((first_seq, batch)) => LogItem::Batch {
                    offset,
                    first_seq,
                    ops: batch
                        .iter_cf()
                        .map(|(family, op)| match op {
                            BatchOp::Put { key, value } => LogOperation {
                                column_family: family,
                                kind: ValueKind::Put,
                                key: key.to_vec(),
                                value: value.to_vec(),
                            },
                            BatchOp::Delete { key } => LogOperation {
                                column_family: family,
                                kind: ValueKind::Delete,
                                key: key.to_vec(),
                                value: Vec::new(),
                            },
                            BatchOp::Merge { key, operand } => LogOperation {
                                column_family: family,
                                kind: ValueKind::Merge,
                                key: key.to_vec(),
                                value: operand.to_vec(),
                            },
                            BatchOp::DeleteRange { start, end } => LogOperation {
                                column_family: family,
                                kind: ValueKind::RangeDelete,
                                key: start.to_vec(),
                                value: end.to_vec(),
                            },
                        })
                        .collect(),
                },
                Err(reason) => LogItem::Undecodable { offset, reason },
            },
        };
        let last = matches!(item, LogItem::TornTail { .. });
        if !visit(item) || last {
            break;
        }
    }
    Ok(header)
}
