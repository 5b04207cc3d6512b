//! Writes a table file.

use super::block::BlockBuilder;
use super::bloom;
use super::format::{block_crc, compress, new_unique_id, BlockContext, BlockHandle, Footer};
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
    file: Box<dyn WritableFile>,
    /// Blocks not yet handed to the file (see `WRITE_BUFFER`).
    out: Vec<u8>,
    path: PathBuf,
    opts: TableBuildOptions,
    offset: u64,
    data: BlockBuilder,
    index: BlockBuilder,
    /// Handle of the last data block written, whose index entry waits for
    /// the next key (to pick a short separator).
    pending_index: Option<BlockHandle>,
    hashes: Vec<u64>,
    last_user_key: Option<Vec<u8>>,
    props: TableProperties,
    /// CRC of every byte written, for the MANIFEST's record of the file.
    file_crc: crc32fast::Hasher,
    /// Range tombstones to store in the range deletions block.
    range_dels: Fragments,
}

impl TableBuilder {
    pub(crate) fn new(
        file: Box<dyn WritableFile>,
        path: PathBuf,
        opts: TableBuildOptions,
    ) -> TableBuilder {
        TableBuilder {
            file,
            out: Vec::new(),
            path,
            opts,
            offset: 0,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            pending_index: None,
            hashes: Vec::new(),
            last_user_key: None,
            props: TableProperties {
                smallest_seq: u64::MAX,
                compression: opts.compression,
                unique_id: new_unique_id(),
                ..TableProperties::default()
            },
            file_crc: crc32fast::Hasher::new(),
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

    fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.out.capacity() == 0 {
            self.out.reserve_exact(WRITE_BUFFER);
        }
        self.out.extend_from_slice(data);
        self.file_crc.update(data);
        self.offset += data.len() as u64;
        if self.out.len() >= WRITE_BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.file.append(&self.out).ctx(&self.path)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Adds an entry. Keys must be strictly increasing internal keys.
    pub(crate) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let parsed = parse_internal_key(ikey)
            .ok_or_else(|| Error::InvalidArgument("table entries need internal keys".into()))?;
        if let Some(handle) = self.pending_index.take() {
            let sep = separator(self.data_last_key(), ikey);
            let mut v = Vec::new();
            handle.encode_to(&mut v);
            self.index.add(&sep, &v);
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
            self.last_user_key = Some(parsed.user_key.to_vec());
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

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let raw = self.data.finish();
        self.props.raw_data_size += raw.len() as u64;
        let handle = self.write_block(&raw, self.opts.compression)?;
        self.props.stored_data_size += handle.size;
        self.props.data_blocks += 1;
        self.pending_index = Some(handle);
        Ok(())
    }

    fn write_block(&mut self, raw: &[u8], compression: Compression) -> Result<BlockHandle> {
        let (stored, kind) = compress(raw, compression);
        let mut buf = stored;
        let handle = BlockHandle {
            offset: self.offset,
            size: buf.len() as u64,
        };
        let context = BlockContext {
            unique_id: self.props.unique_id,
            offset: self.offset,
        };
        let crc = block_crc(&buf, kind, Some(context));
        buf.push(kind);
        buf.extend_from_slice(&crc.to_le_bytes());
        self.append(&buf)?;
        Ok(handle)
    }

    /// Bytes written so far plus the block being built.
    pub(crate) fn estimated_size(&self) -> u64 {
        self.offset + self.data.estimated_size() as u64
    }

    /// Writes the remaining blocks and the footer, syncs the file and
    /// returns the table's properties.
    pub(crate) fn finish(mut self) -> Result<TableProperties> {
        self.flush_data_block()?;
        if let Some(handle) = self.pending_index.take() {
            let sep = successor(self.data_last_key());
            let mut v = Vec::new();
            handle.encode_to(&mut v);
            self.index.add(&sep, &v);
        }
        let filter = if self.opts.bloom_bits_per_key > 0 {
            let f = bloom::build(&self.hashes, self.opts.bloom_bits_per_key);
            self.write_block(&f, Compression::None)?
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
            self.write_block(&block, Compression::None)?
        };
        let props = self.props.encode();
        let properties = self.write_block(&props, Compression::None)?;
        let index_raw = self.index.finish();
        let index = self.write_block(&index_raw, self.opts.compression)?;
        let footer = Footer {
            index,
            filter,
            properties,
            range_deletions,
            unique_id: self.props.unique_id,
            version: super::format::TABLE_FORMAT_VERSION,
        };
        self.append(&footer.encode())?;
        self.write_out()?;
        self.file.sync().ctx(&self.path)?;
        self.props.file_size = self.offset;
        self.props.file_crc = self.file_crc.clone().finalize();
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
