//! The layout of a table file — footer, block handles, each block's
//! compression — for `aidb::tools::describe_table` (`aidb dump-sst`).
//! Reads the file the way `Table::open` does, but keeps what a reader has
//! no use for.

use super::block::Block;
use super::format::{unpack_block, BlockHandle, Footer, BLOCK_TRAILER_LEN, FOOTER_LEN};
use crate::error::{Error, IoContext, Result};
use crate::fs::RandomAccessFile;
use bytes::Bytes;
use std::path::Path;

/// Where everything is in a table file.
pub(crate) struct Layout {
    pub(crate) version: u32,
    pub(crate) unique_id: u64,
    pub(crate) footer_offset: u64,
    pub(crate) footer_len: u64,
    /// (offset, size without trailer, compression byte) of each block.
    pub(crate) index: (u64, u64, u8),
    pub(crate) filter: Option<(u64, u64, u8)>,
    pub(crate) properties: (u64, u64, u8),
    pub(crate) range_deletions: Option<(u64, u64, u8)>,
    pub(crate) data: Vec<(u64, u64, u8)>,
}

/// Reads the footer and the index of the table in `file`, and the
/// compression byte of every block's trailer.
pub(crate) fn layout(file: &dyn RandomAccessFile, path: &Path) -> Result<Layout> {
    let len = file.len();
    let tail_len = (FOOTER_LEN as u64).min(len);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(len - tail_len, &mut tail).ctx(path)?;
    let footer = Footer::decode(&tail).map_err(|r| Error::corruption(path, len - tail_len, r))?;
    let footer_offset = len - footer.len() as u64;
    let trailer_kind = |h: BlockHandle| -> Result<(u64, u64, u8)> {
        let at = h
            .offset
            .checked_add(h.size)
            .filter(|end| end + BLOCK_TRAILER_LEN as u64 <= footer_offset)
            .ok_or_else(|| {
                Error::corruption(
                    path,
                    h.offset,
                    format!("block handle ({}, {}) outside the file", h.offset, h.size),
                )
            })?;
        let mut kind = [0u8; 1];
        file.read_exact_at(at, &mut kind).ctx(path)?;
        Ok((h.offset, h.size, kind[0]))
    };
    let index_at = trailer_kind(footer.index)?;
    let mut raw = vec![0u8; footer.index.size as usize + BLOCK_TRAILER_LEN];
    file.read_exact_at(footer.index.offset, &mut raw)
        .ctx(path)?;
    let index = unpack_block(&raw, footer.context(footer.index.offset))
        .and_then(|b| Block::decode(Bytes::from(b)))
        .map_err(|r| Error::corruption(path, footer.index.offset, format!("index block: {r}")))?;
    let mut data = Vec::with_capacity(index.len());
    for i in 0..index.len() {
        let h = BlockHandle::decode(index.value(i)).ok_or_else(|| {
            Error::corruption(
                path,
                footer.index.offset,
                format!("bad handle in index entry {i}"),
            )
        })?;
        data.push(trailer_kind(h)?);
    }
    let optional = |h: BlockHandle| -> Result<Option<(u64, u64, u8)>> {
        if h.size == 0 {
            Ok(None)
        } else {
            trailer_kind(h).map(Some)
        }
    };
    Ok(Layout {
        version: footer.version,
        unique_id: footer.unique_id,
        footer_offset,
        footer_len: footer.len() as u64,
        index: index_at,
        filter: optional(footer.filter)?,
        properties: trailer_kind(footer.properties)?,
        range_deletions: optional(footer.range_deletions)?,
        data,
    })
}
