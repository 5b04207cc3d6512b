//! Table files: their properties and block layout, and their entries.

use super::ValueKind;
use crate::error::{Error, IoContext, Result};
use crate::fs::{FileSystem, OsFileSystem};
use crate::internal_iter::InternalIterator;
use crate::options::Compression;
use crate::table::{Table, TableIterator};
use crate::types::parse_internal_key;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a table file's block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// Entries.
    Data,
    /// The bloom filter.
    Filter,
    /// The properties.
    Properties,
    /// The range deletions.
    RangeDeletions,
    /// The index: one entry per data block.
    Index,
}

/// One block of a table file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockInfo {
    /// What it holds.
    pub kind: BlockKind,
    /// Where its contents start.
    pub offset: u64,
    /// Size of its contents as stored (the 5-byte trailer not included).
    pub size: u64,
    /// How the contents are stored; `None` when the trailer names no known
    /// compression (damage: `aidb verify` says more).
    pub compression: Option<Compression>,
}

/// A table file described: its properties and where its blocks are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_size: u64,
    /// Table format version (1 or 2).
    pub format_version: u32,
    /// The unique id chosen when it was written (0 for format 1).
    pub unique_id: u64,
    /// Entries, tombstones included.
    pub entries: u64,
    /// Tombstones.
    pub tombstones: u64,
    /// Range tombstones (fragments of its range deletions block, one per
    /// sequence number; see docs/format.md). Not in `entries`.
    pub range_deletions: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// Bytes of data blocks before compression.
    pub raw_data_size: u64,
    /// Bytes of data blocks as stored.
    pub stored_data_size: u64,
    /// The smallest sequence number of its entries.
    pub smallest_seq: u64,
    /// The largest sequence number of its entries.
    pub largest_seq: u64,
    /// When it was written, in seconds since the Unix epoch.
    pub creation_time: u64,
    /// The compression it was written with.
    pub compression: Compression,
    /// The smallest user key.
    pub smallest_key: Vec<u8>,
    /// The largest user key.
    pub largest_key: Vec<u8>,
    /// Every block in file order, then the footer's offset and length.
    pub blocks: Vec<BlockInfo>,
    /// Where the footer starts.
    pub footer_offset: u64,
    /// The footer's length (88 bytes in format 2, 64 in format 1).
    pub footer_len: u64,
}

fn compression_of(code: u8) -> Option<Compression> {
    match code {
        0 => Some(Compression::None),
        1 => Some(Compression::Lz4),
        2 => Some(Compression::Snappy),
        _ => None,
    }
}

fn open(path: &Path) -> Result<Arc<Table>> {
    let file = OsFileSystem.open(path).ctx(path)?;
    Table::open(file, path.to_path_buf(), 0, None, Arc::default())
}

/// Describes the table file at `path`: its properties (checked as a read
/// checks them) and the place and compression of every block.
///
/// # Errors
/// [`Error::Io`] when it cannot be read, [`Error::Corruption`] (naming the
/// offset) when its footer, index, filter or properties are damaged or it
/// is not a table.
pub fn describe_table(path: impl AsRef<Path>) -> Result<TableInfo> {
    let path = path.as_ref();
    let table = open(path)?;
    let file = OsFileSystem.open(path).ctx(path)?;
    let layout = crate::table::layout(&*file, path)?;
    let p = table.properties();
    let block = |kind, (offset, size, code): (u64, u64, u8)| BlockInfo {
        kind,
        offset,
        size,
        compression: compression_of(code),
    };
    let mut blocks: Vec<BlockInfo> = layout
        .data
        .iter()
        .map(|&b| block(BlockKind::Data, b))
        .collect();
    blocks.extend(layout.filter.map(|b| block(BlockKind::Filter, b)));
    blocks.push(block(BlockKind::Properties, layout.properties));
    blocks.extend(
        layout
            .range_deletions
            .map(|b| block(BlockKind::RangeDeletions, b)),
    );
    blocks.push(block(BlockKind::Index, layout.index));
    blocks.sort_by_key(|b| b.offset);
    Ok(TableInfo {
        path: path.to_path_buf(),
        file_size: p.file_size,
        format_version: layout.version,
        unique_id: layout.unique_id,
        entries: p.entries,
        tombstones: p.tombstones,
        range_deletions: table.range_deletions().tombstones().count() as u64,
        data_blocks: p.data_blocks,
        raw_data_size: p.raw_data_size,
        stored_data_size: p.stored_data_size,
        smallest_seq: p.smallest_seq,
        largest_seq: p.largest_seq,
        creation_time: p.creation_time,
        compression: p.compression,
        smallest_key: crate::types::user_key(&p.smallest_key).to_vec(),
        largest_key: crate::types::user_key(&p.largest_key).to_vec(),
        blocks,
        footer_offset: layout.footer_offset,
        footer_len: layout.footer_len,
    })
}

/// One entry of a table: a user key's version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableEntry {
    /// The user key.
    pub key: Vec<u8>,
    /// Its sequence number (0 in the last level once no reader needs it).
    pub seq: u64,
    /// Value, tombstone or merge operand.
    pub kind: ValueKind,
    /// The value or operand (empty for a tombstone).
    pub value: Vec<u8>,
}

/// The entries of a table file in order (by key, then newest first), from
/// [`table_entries`]. Damage ends it with one `Err` naming the block.
pub struct TableEntries {
    iter: TableIterator,
    started: bool,
    done: bool,
    path: PathBuf,
}

impl std::fmt::Debug for TableEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableEntries")
            .field("path", &self.path)
            .finish()
    }
}

/// Every entry of the table file at `path`, tombstones and older versions
/// included, checking each block's checksum as it is read.
///
/// # Errors
/// As [`describe_table`]; damage in a data block is the iterator's last
/// item.
pub fn table_entries(path: impl AsRef<Path>) -> Result<TableEntries> {
    let path = path.as_ref();
    let table = open(path)?;
    Ok(TableEntries {
        iter: table.iter(),
        started: false,
        done: false,
        path: path.to_path_buf(),
    })
}

impl Iterator for TableEntries {
    type Item = Result<TableEntry>;

    fn next(&mut self) -> Option<Result<TableEntry>> {
        if self.done {
            return None;
        }
        if self.started {
            self.iter.next();
        } else {
            self.started = true;
            self.iter.seek_to_first();
        }
        if !self.iter.valid() {
            self.done = true;
            return self.iter.status().err().map(Err);
        }
        let Some(p) = parse_internal_key(self.iter.key()) else {
            self.done = true;
            return Some(Err(Error::corruption(
                &self.path,
                0,
                "an entry's key is not an internal key",
            )));
        };
        Some(Ok(TableEntry {
            key: p.user_key.to_vec(),
            seq: p.seq,
            kind: p.kind.into(),
            value: self.iter.value().to_vec(),
        }))
    }
}
