//! Table files (SSTables): immutable, sorted runs of internal keys.
//!
//! ```text
//! +---------------+-----+---------------+--------+------------+-------+--------+
//! | data block 0  | ... | data block n  | filter | properties | index | footer |
//! +---------------+-----+---------------+--------+------------+-------+--------+
//! ```
//!
//! Every block is followed by a 5-byte trailer (compression type, masked
//! CRC-32). The byte-level specification is in `docs/format.md`, "Table
//! files". Tables know nothing of the engine: they take a file, return
//! entries, and report damage as `Error::Corruption` with the file's path
//! and the offset of the damaged block.

mod block;
pub(crate) mod bloom;
mod builder;
mod data_block;
mod describe;
mod format;
mod index;
mod reader;

#[cfg(any(test, feature = "internals"))]
pub(crate) use block::Block;
#[cfg(any(test, feature = "internals"))]
pub(crate) use block::BlockBuilder;
pub(crate) use bloom::key_hash as bloom_hash;
#[cfg(feature = "internals")]
pub(crate) use bloom::{build as build_bloom, Filter as BloomFilter};
pub(crate) use builder::{TableBuildOptions, TableBuilder};
#[cfg(feature = "internals")]
pub(crate) use data_block::BlockCursor;
pub(crate) use data_block::DataBlock;
pub(crate) use describe::layout;
#[cfg(feature = "internals")]
pub(crate) use index::Index;
pub(crate) use reader::{BloomStats, Table, TableIterator};

use crate::coding::{get_length_prefixed, get_varint64, put_length_prefixed, put_varint64};
use crate::options::Compression;
use crate::types::SeqNo;

/// Facts about a table, stored in its properties block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TableProperties {
    pub(crate) entries: u64,
    pub(crate) tombstones: u64,
    pub(crate) data_blocks: u64,
    /// Data block bytes before compression.
    pub(crate) raw_data_size: u64,
    /// Data block bytes as stored.
    pub(crate) stored_data_size: u64,
    pub(crate) smallest_seq: SeqNo,
    pub(crate) largest_seq: SeqNo,
    /// Seconds since the Unix epoch.
    pub(crate) creation_time: u64,
    pub(crate) compression: Compression,
    pub(crate) smallest_key: Vec<u8>,
    pub(crate) largest_key: Vec<u8>,
    /// Size of the whole file (not stored; known from the file).
    pub(crate) file_size: u64,
    /// The table's unique id (not stored here: it is in the footer).
    pub(crate) unique_id: u64,
    /// CRC-32 of the whole file, as written (known to the writer only).
    pub(crate) file_crc: u32,
    /// The column family (id, name) it was written for; `None` in tables
    /// written before this was recorded.
    pub(crate) family: Option<(u32, String)>,
}

fn compression_code(c: Compression) -> u64 {
    match c {
        Compression::None => 0,
        Compression::Lz4 => 1,
        Compression::Snappy => 2,
    }
}

impl TableProperties {
    /// Varints in a fixed order, then the two keys length-prefixed.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [
            self.entries,
            self.tombstones,
            self.data_blocks,
            self.raw_data_size,
            self.stored_data_size,
            self.smallest_seq,
            self.largest_seq,
            self.creation_time,
            compression_code(self.compression),
        ] {
            put_varint64(&mut out, v);
        }
        put_length_prefixed(&mut out, &self.smallest_key);
        put_length_prefixed(&mut out, &self.largest_key);
        if let Some((id, name)) = &self.family {
            put_varint64(&mut out, u64::from(*id));
            put_length_prefixed(&mut out, name.as_bytes());
        }
        out
    }

    fn decode(mut src: &[u8], file_size: u64) -> Option<TableProperties> {
        let mut nums = [0u64; 9];
        for n in &mut nums {
            let (v, used) = get_varint64(src)?;
            *n = v;
            src = &src[used..];
        }
        let (smallest, used) = get_length_prefixed(src)?;
        src = &src[used..];
        let (largest, used) = get_length_prefixed(src)?;
        src = &src[used..];
        // The family, recorded since repair needed it: absent in older
        // tables.
        let family = if src.is_empty() {
            None
        } else {
            let (id, used) = get_varint64(src)?;
            let (name, used2) = get_length_prefixed(&src[used..])?;
            if used + used2 != src.len() {
                return None;
            }
            Some((
                u32::try_from(id).ok()?,
                String::from_utf8(name.to_vec()).ok()?,
            ))
        };
        let compression = match nums[8] {
            0 => Compression::None,
            1 => Compression::Lz4,
            2 => Compression::Snappy,
            _ => return None,
        };
        Some(TableProperties {
            entries: nums[0],
            tombstones: nums[1],
            data_blocks: nums[2],
            raw_data_size: nums[3],
            stored_data_size: nums[4],
            smallest_seq: nums[5],
            largest_seq: nums[6],
            creation_time: nums[7],
            compression,
            smallest_key: smallest.to_vec(),
            largest_key: largest.to_vec(),
            file_size,
            unique_id: 0,
            file_crc: 0,
            family,
        })
    }
}

#[cfg(test)]
mod tests;
