//! Writes a table file.

use super::block::BlockBuilder;
use super::bloom;
use super::format::{
    block_crc, new_unique_id, BlockContext, BlockHandle, Compressor, Footer, BLOCK_TRAILER_LEN,
};
use super::TableProperties;
use crate::error::{Error, IoContext, Result};
use crate::fs::WritableFile;
use crate::options::Compression;
use crate::range_del::Fragments;
use crate::types::{parse_internal_key, user_key, ValueKind};
use std::path::PathBuf;

/// How to build a table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableBuildOptions {
    pub(crate) block_size: usize,
    pub(crate) restart_interval: usize,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) compression: Compression,
}

/// Blocks are handed to the file in writes of this size. A write(2) per
/// block (a few KiB, ending mid-page) made the kernel zero the rest of
/// each new page it began: a fifth of the time of an SST writer's put
/// loop went to that memset. Nothing reads a table before `finish` has
/// written and synced it all, so holding blocks back changes nothing else.
const WRITE_BUFFER: usize = 256 << 10;

/// Writes entries, in increasing internal-key order, into a table file.
pub(crate) struct TableBuilder {
    out: BlockWriter,
    opts: TableBuildOptions,
    data: BlockBuilder,
    index: BlockBuilder,
    /// Handle of the last data block written, whose index entry waits for
    /// the next key (to pick a short separator).
    pending_index: Option<BlockHandle>,
    /// Scratch for encoding an index entry's handle.
    handle_buf: Vec<u8>,
    hashes: Vec<u64>,
    /// The user key last hashed for the bloom filter (none yet: `None`).
    last_user_key: Option<Vec<u8>>,
    props: TableProperties,
    /// Range tombstones to store in the range deletions block.
    range_dels: Fragments,
}

/// Compresses, checksums and writes blocks, keeping its buffers from
/// block to block.
struct BlockWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    unique_id: u64,
    compressor: Compressor,
    sink: Pending,
}

/// Bytes not yet handed to the file (see `WRITE_BUFFER`), with the offset
/// and CRC of everything written so far.
struct Pending {
    bytes: Vec<u8>,
    offset: u64,
    /// CRC of every byte written, for the MANIFEST's record of the file.
    file_crc: crc32fast::Hasher,
}

impl Pending {
    fn push(&mut self, data: &[u8]) {
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(WRITE_BUFFER + (4 << 10));
        }
        self.bytes.extend_from_slice(data);
        self.file_crc.update(data);
        self.offset += data.len() as u64;
    }
}

impl BlockWriter {
    /// Writes a block and its trailer; returns where it went.
    fn block(&mut self, raw: &[u8], compression: Compression) -> Result<BlockHandle> {
        let (stored, kind) = self.compressor.compress(raw, compression);
        let offset = self.sink.offset;
        let context = BlockContext {
            unique_id: self.unique_id,
            offset,
        };
        let crc = block_crc(stored, kind, Some(context));
        let mut trailer = [0u8; BLOCK_TRAILER_LEN];
        trailer[0] = kind;
        trailer[1..].copy_from_slice(&crc.to_le_bytes());
        self.sink.push(stored);
        self.sink.push(&trailer);
        let handle = BlockHandle {
            offset,
            size: stored.len() as u64,
        };
        self.write_out_if_full()?;
        Ok(handle)
    }

    /// Bytes outside any block (the footer).
    fn raw(&mut self, data: &[u8]) -> Result<()> {
        self.sink.push(data);
        self.write_out_if_full()
    }

    fn write_out_if_full(&mut self) -> Result<()> {
        if self.sink.bytes.len() >= WRITE_BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<()> {
        if !self.sink.bytes.is_empty() {
            self.file.append(&self.sink.bytes).ctx(&self.path)?;
            self.sink.bytes.clear();
        }
        Ok(())
    }
}

impl TableBuilder {
    pub(crate) fn new(
        file: Box<dyn WritableFile>,
        path: PathBuf,
        opts: TableBuildOptions,
    ) -> TableBuilder {
        let unique_id = new_unique_id();
        TableBuilder {
            out: BlockWriter {
                file,
                path,
                unique_id,
                compressor: Compressor::default(),
                sink: Pending {
                    bytes: Vec::new(),
                    offset: 0,
                    file_crc: crc32fast::Hasher::new(),
                },
            },
            opts,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            pending_index: None,
            handle_buf: Vec::new(),
            hashes: Vec::new(),
            last_user_key: None,
            props: TableProperties {
                smallest_seq: u64::MAX,
                compression: opts.compression,
                unique_id,
                ..TableProperties::default()
            },
            range_dels: Fragments::default(),
        }
    }

    /// Records the column family the table belongs to in its properties,
    /// so that `aidb::repair` can put it back in its family when the
    /// MANIFEST is lost.
    pub(crate) fn set_family(&mut self, id: u32, name: &str) {
        self.props.family = Some((id, name.to_string()));
    }

    /// Sets the range tombstones the table stores (written by `finish`).
    pub(crate) fn set_range_deletions(&mut self, fragments: Fragments) {
        self.range_dels = fragments;
    }

    /// Adds an entry. Keys must be strictly increasing internal keys.
    pub(crate) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let parsed = parse_internal_key(ikey)
            .ok_or_else(|| Error::InvalidArgument("table entries need internal keys".into()))?;
        if let Some(handle) = self.pending_index.take() {
            let sep = separator(self.data_last_key(), ikey);
            self.add_index_entry(&sep, handle);
        }
        if self.props.entries == 0 {
            self.props.smallest_key = ikey.to_vec();
        }
        self.props.largest_key.clear();
        self.props.largest_key.extend_from_slice(ikey);
        self.props.entries += 1;
        if parsed.kind == ValueKind::Delete {
            self.props.tombstones += 1;
        }
        self.props.smallest_seq = self.props.smallest_seq.min(parsed.seq);
        self.props.largest_seq = self.props.largest_seq.max(parsed.seq);
        if self.opts.bloom_bits_per_key > 0
            && self.last_user_key.as_deref() != Some(parsed.user_key)
        {
            self.hashes.push(bloom::key_hash(parsed.user_key));
            // Reuses the buffer: a fresh Vec here was a malloc and free per
            // entry.
            let last = self.last_user_key.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(parsed.user_key);
        }
        self.data.add(ikey, value);
        if self.data.estimated_size() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    fn data_last_key(&self) -> &[u8] {
        &self.props.largest_key
    }

    fn add_index_entry(&mut self, separator: &[u8], handle: BlockHandle) {
        let mut v = std::mem::take(&mut self.handle_buf);
        v.clear();
        handle.encode_to(&mut v);
        self.index.add(separator, &v);
        self.handle_buf = v;
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let compression = self.opts.compression;
        let out = &mut self.out;
        let (raw_len, handle) = self
            .data
            .finish_with(|raw| (raw.len(), out.block(raw, compression)));
        let handle = handle?;
        self.props.raw_data_size += raw_len as u64;
        self.props.stored_data_size += handle.size;
        self.props.data_blocks += 1;
        self.pending_index = Some(handle);
        Ok(())
    }

    /// Bytes written so far plus the block being built.
    pub(crate) fn estimated_size(&self) -> u64 {
        self.out.sink.offset + self.data.estimated_size() as u64
    }

    /// Writes the remaining blocks and the footer, syncs the file and
    /// returns the table's properties.
    pub(crate) fn finish(mut self) -> Result<TableProperties> {
        self.flush_data_block()?;
        if let Some(handle) = self.pending_index.take() {
            let sep = successor(self.data_last_key());
            self.add_index_entry(&sep, handle);
        }
        let filter = if self.opts.bloom_bits_per_key > 0 {
            let f = bloom::build(&self.hashes, self.opts.bloom_bits_per_key);
            self.out.block(&f, Compression::None)?
        } else {
            BlockHandle::default()
        };
        if self.props.entries == 0 {
            self.props.smallest_seq = 0;
        }
        self.props.creation_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let range_deletions = if self.range_dels.is_empty() {
            BlockHandle::default()
        } else {
            let block = self.range_dels.encode();
            self.out.block(&block, Compression::None)?
        };
        let props = self.props.encode();
        let properties = self.out.block(&props, Compression::None)?;
        let (out, compression) = (&mut self.out, self.opts.compression);
        let index = self.index.finish_with(|raw| out.block(raw, compression))?;
        let footer = Footer {
            index,
            filter,
            properties,
            range_deletions,
            unique_id: self.props.unique_id,
            version: super::format::TABLE_FORMAT_VERSION,
        };
        self.out.raw(&footer.encode())?;
        self.out.write_out()?;
        self.out.file.sync().ctx(&self.out.path)?;
        self.props.file_size = self.out.sink.offset;
        self.props.file_crc = self.out.sink.file_crc.clone().finalize();
        Ok(self.props)
    }
}

/// A short internal key `k` with `last <= k < next` (both internal keys of
/// different user keys, `last < next`): the shortest user key between them
/// with the largest trailer, or `last` itself when none is shorter.
fn separator(last: &[u8], next: &[u8]) -> Vec<u8> {
    let (a, b) = (user_key(last), user_key(next));
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if common < a.len() && common < b.len() {
        let byte = a[common];
        if byte < 0xff && byte + 1 < b[common] {
            let mut k = a[..=common].to_vec();
            k[common] += 1;
            return with_max_trailer(k);
        }
    }
    last.to_vec()
}

/// A short internal key `>= last`: the user key cut after its first byte
/// that can be incremented, with the largest trailer.
fn successor(last: &[u8]) -> Vec<u8> {
    let a = user_key(last);
    match a.iter().position(|&b| b != 0xff) {
        Some(i) if i + 1 < a.len() => {
            let mut k = a[..=i].to_vec();
            k[i] += 1;
            with_max_trailer(k)
        }
        _ => last.to_vec(),
    }
}

fn with_max_trailer(user_key: Vec<u8>) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_key.len() + 8);
    crate::types::encode_internal_key(&mut k, &user_key, crate::types::MAX_SEQNO, ValueKind::SEEK);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{compare_internal_keys, encode_internal_key};
    use std::cmp::Ordering;

    fn ik(k: &[u8], seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_internal_key(&mut v, k, seq, ValueKind::Put);
        v
    }

    #[test]
    fn separators_are_between_and_short() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"abcdef", b"abzz"),
            (b"abc", b"abd"),
            (b"ab", b"abc"),
            (b"a\xff\xff", b"b"),
            (b"", b"a"),
        ];
        for (a, b) in cases {
            let (last, next) = (ik(a, 3), ik(b, 9));
            let s = separator(&last, &next);
            assert_ne!(
                compare_internal_keys(&s, &last),
                Ordering::Less,
                "{a:?} {b:?}"
            );
            assert_eq!(
                compare_internal_keys(&s, &next),
                Ordering::Less,
                "{a:?} {b:?}"
            );
        }
        assert_eq!(
            user_key(&separator(&ik(b"abcdef", 1), &ik(b"abzz", 1))),
            b"abd"
        );
        let s = successor(&ik(b"hello", 4));
        assert_eq!(user_key(&s), b"i");
        assert_ne!(compare_internal_keys(&s, &ik(b"hello", 4)), Ordering::Less);
        let s = successor(&ik(b"\xff\xff", 4));
        assert_eq!(s, ik(b"\xff\xff", 4));
    }
}
