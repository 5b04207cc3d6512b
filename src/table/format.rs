//! Table file framing: block handles, the block trailer, compression and
//! the footer. See `docs/format.md`, "Table files".

use crate::coding::{get_u32_le, get_u64_le, get_varint64, mask_crc, put_varint64, unmask_crc};
use crate::options::Compression;

/// Bytes after every block: compression type, then the masked CRC.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;
/// Size of the footer at the end of a table of the current format (2).
pub(crate) const FOOTER_LEN: usize = 88;
/// Size of a format 1 footer.
pub(crate) const FOOTER_LEN_V1: usize = 64;
/// Last 8 bytes of a format 1 table: "AIDBSST\x01" read as a u64 LE.
pub(crate) const TABLE_MAGIC_V1: u64 = u64::from_le_bytes(*b"AIDBSST\x01");
/// Last 8 bytes of a format 2 table: "AIDBSST\x02" read as a u64 LE.
pub(crate) const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"AIDBSST\x02");
/// Version of the table format written.
pub(crate) const TABLE_FORMAT_VERSION: u32 = 2;
/// Largest block contents a reader accepts, before or after decompression.
///
/// Every block the writer can produce within the documented limits fits:
/// a data block holds at most `block_size` (4 MiB at most) of entries plus
/// one more of up to `MAX_KEY_SIZE + MAX_VALUE_SIZE`; a table holds at most
/// `max(write_buffer_size, target_file_size)` (1 GiB at most) plus one
/// entry, and its index block is about the size of its keys and its
/// filter at most 8 bytes per key, both well below this. Block offsets
/// inside a block are 32-bit, so it must stay under 4 GiB. A damaged length
/// cannot make the reader allocate more than the file holds (stored size)
/// or than the compression ratio allows (see `decompress`).
pub(crate) const MAX_BLOCK_SIZE: usize = 3 << 30;

/// LZ4 expands at most about 255 times (a match is extended by one byte
/// per 255 bytes); Snappy about 22 times (a 3-byte copy of 64 bytes). A
/// claimed size beyond these is damage, whatever the checksum says.
const MAX_LZ4_RATIO: usize = 256;
const MAX_SNAPPY_RATIO: usize = 32;

/// Compression type byte of a block trailer. Part of the format: never
/// renumber.
pub(crate) const NO_COMPRESSION: u8 = 0;
pub(crate) const LZ4: u8 = 1;
pub(crate) const SNAPPY: u8 = 2;

/// Where a block lives in the file (contents only, trailer excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

impl BlockHandle {
    pub(crate) fn encode_to(&self, dst: &mut Vec<u8>) {
        put_varint64(dst, self.offset);
        put_varint64(dst, self.size);
    }

    pub(crate) fn decode(src: &[u8]) -> Option<BlockHandle> {
        let (offset, n) = get_varint64(src)?;
        let (size, _) = get_varint64(src.get(n..)?)?;
        Some(BlockHandle { offset, size })
    }
}

/// Compresses blocks into one buffer kept from block to block: a table
/// builder compresses every 4 KiB of data, and a fresh output buffer
/// each time was a malloc and free per block.
#[derive(Default)]
pub(crate) struct Compressor {
    /// Never shrunk, so it is not zeroed again for each block.
    out: Vec<u8>,
}

impl Compressor {
    /// The stored form of `raw` under `compression` and its type byte:
    /// `raw` itself, uncompressed, when compression saves less than 1/8.
    pub(crate) fn compress<'a>(
        &'a mut self,
        raw: &'a [u8],
        compression: Compression,
    ) -> (&'a [u8], u8) {
        let packed = match compression {
            Compression::None => None,
            Compression::Lz4 => {
                // LZ4 blocks start with the raw length (u32 LE), as
                // `decompress` reads them.
                let need = 4 + lz4_flex::block::get_maximum_output_size(raw.len());
                self.grow(need);
                self.out[..4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
                lz4_flex::block::compress_into(raw, &mut self.out[4..need])
                    .ok()
                    .map(|n| (4 + n, LZ4))
            }
            Compression::Snappy => {
                let need = snap::raw::max_compress_len(raw.len());
                self.grow(need);
                snap::raw::Encoder::new()
                    .compress(raw, &mut self.out[..need])
                    .ok()
                    .map(|n| (n, SNAPPY))
            }
        };
        match packed {
            Some((n, kind)) if n < raw.len() - raw.len() / 8 => (&self.out[..n], kind),
            _ => (raw, NO_COMPRESSION),
        }
    }

    fn grow(&mut self, len: usize) {
        if self.out.len() < len {
            self.out.resize(len, 0);
        }
    }
}

/// Undoes [`Compressor::compress`] into `out`'s memory (its contents are
/// replaced: a reader reuses the memory of a block the cache evicted); the
/// error says what is wrong.
fn decompress_into(stored: &[u8], kind: u8, mut out: Vec<u8>) -> Result<Vec<u8>, String> {
    out.clear();
    match kind {
        NO_COMPRESSION => {
            fit(&mut out, stored.len());
            out.extend_from_slice(stored)
        }
        LZ4 => {
            let len = get_u32_le(stored).ok_or("lz4 block too short")? as usize;
            if len > MAX_BLOCK_SIZE || len > stored.len() * MAX_LZ4_RATIO + 64 {
                return Err(format!(
                    "lz4 block of {} bytes claims {len} bytes",
                    stored.len()
                ));
            }
            fit(&mut out, len);
            out.resize(len, 0);
            let n = lz4_flex::block::decompress_into(&stored[4..], &mut out)
                .map_err(|e| format!("lz4 decompression failed: {e}"))?;
            out.truncate(n);
        }
        SNAPPY => {
            let len =
                snap::raw::decompress_len(stored).map_err(|e| format!("snappy header: {e}"))?;
            if len > MAX_BLOCK_SIZE || len > stored.len() * MAX_SNAPPY_RATIO + 64 {
                return Err(format!(
                    "snappy block of {} bytes claims {len} bytes",
                    stored.len()
                ));
            }
            fit(&mut out, len);
            out.resize(len, 0);
            let n = snap::raw::Decoder::new()
                .decompress(stored, &mut out)
                .map_err(|e| format!("snappy decompression failed: {e}"))?;
            out.truncate(n);
        }
        other => return Err(format!("unknown compression type {other}")),
    }
    Ok(out)
}

/// Drops a reused buffer more than twice the size needed: a small block
/// must not keep a large block's memory (the cache charges capacity).
fn fit(out: &mut Vec<u8>, len: usize) {
    if out.capacity() > len.saturating_mul(2).max(4096) {
        *out = Vec::with_capacity(len);
    }
}

/// Where a block belongs: its table's unique id and its offset. Format 2
/// checksums cover it, so a block that is intact but in the wrong place
/// (written to another offset or file by a misdirected write, or a whole
/// file swapped for another) fails its checksum instead of being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockContext {
    pub(crate) unique_id: u64,
    pub(crate) offset: u64,
}

/// The CRC stored in a block trailer: over the stored contents, the type
/// byte, and (format 2) the block's context, unique id then offset, each
/// u64 LE. Format 1 (`context` `None`) had no context.
pub(crate) fn block_crc(contents: &[u8], kind: u8, context: Option<BlockContext>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(contents);
    h.update(&[kind]);
    if let Some(c) = context {
        h.update(&c.unique_id.to_le_bytes());
        h.update(&c.offset.to_le_bytes());
    }
    mask_crc(h.finalize())
}

/// Checks a block read with its trailer and returns the uncompressed
/// contents.
pub(crate) fn unpack_block(
    with_trailer: &[u8],
    context: Option<BlockContext>,
) -> Result<Vec<u8>, String> {
    unpack_block_into(with_trailer, context, Vec::new())
}

/// [`unpack_block`] into `out`'s memory (its contents are replaced).
pub(crate) fn unpack_block_into(
    with_trailer: &[u8],
    context: Option<BlockContext>,
    out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let split = with_trailer
        .len()
        .checked_sub(BLOCK_TRAILER_LEN)
        .ok_or("block shorter than its trailer")?;
    let (contents, trailer) = with_trailer.split_at(split);
    let kind = trailer[0];
    let stored = get_u32_le(&trailer[1..]).ok_or("short trailer")?;
    if stored != block_crc(contents, kind, context) {
        return Err(match context {
            Some(_) => {
                "block checksum mismatch (damaged, or not this file's block at this offset)".into()
            }
            None => "block checksum mismatch".into(),
        });
    }
    decompress_into(contents, kind, out)
}

/// The fixed-size footer. Format 2 (88 bytes):
///
/// ```text
/// index handle  (offset u64 LE, size u64 LE)
/// filter handle (offset u64 LE, size u64 LE; size 0 = no filter)
/// properties handle (offset u64 LE, size u64 LE)
/// range deletion handle (offset u64 LE, size u64 LE; size 0 = none)
/// unique id u64 LE | format version u32 LE | masked crc32 of the preceding 76 bytes u32 LE | magic u64 LE
/// ```
///
/// Format 1 (64 bytes) had no unique id, its CRC covered 52 bytes, and its
/// magic ends in `\x01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) index: BlockHandle,
    pub(crate) filter: BlockHandle,
    pub(crate) properties: BlockHandle,
    /// The range deletions block (size 0 when the table has none; always
    /// so in format 1).
    pub(crate) range_deletions: BlockHandle,
    /// Random, chosen when the table is written (0 in format 1).
    pub(crate) unique_id: u64,
    pub(crate) version: u32,
}

impl Footer {
    /// The context blocks at `offset` are checksummed with.
    pub(crate) fn context(&self, offset: u64) -> Option<BlockContext> {
        (self.version >= 2).then_some(BlockContext {
            unique_id: self.unique_id,
            offset,
        })
    }

    /// Length of this footer on disk.
    pub(crate) fn len(&self) -> usize {
        if self.version >= 2 {
            FOOTER_LEN
        } else {
            FOOTER_LEN_V1
        }
    }

    /// The current format's footer.
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        let fields = [
            self.index.offset,
            self.index.size,
            self.filter.offset,
            self.filter.size,
            self.properties.offset,
            self.properties.size,
            self.range_deletions.offset,
            self.range_deletions.size,
            self.unique_id,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out[72..76].copy_from_slice(&TABLE_FORMAT_VERSION.to_le_bytes());
        let crc = mask_crc(crc32fast::hash(&out[..76]));
        out[76..80].copy_from_slice(&crc.to_le_bytes());
        out[80..88].copy_from_slice(&TABLE_MAGIC.to_le_bytes());
        out
    }

    /// Decodes the footer at the end of `tail` (the last `FOOTER_LEN`
    /// bytes of the file, or all of it when shorter), of either format.
    pub(crate) fn decode(tail: &[u8]) -> Result<Footer, String> {
        let magic_at = tail.len().checked_sub(8).ok_or("short footer")?;
        let (len, crc_at, version_at, fields) = match get_u64_le(&tail[magic_at..]) {
            Some(TABLE_MAGIC) => (FOOTER_LEN, 76, 72, 9),
            Some(TABLE_MAGIC_V1) => (FOOTER_LEN_V1, 52, 48, 6),
            _ => return Err("bad table magic (not an AiDb table)".into()),
        };
        let src = tail
            .get(tail.len().checked_sub(len).ok_or("short footer")?..)
            .ok_or("short footer")?;
        let stored = get_u32_le(&src[crc_at..]).unwrap_or(0);
        if unmask_crc(stored) != crc32fast::hash(&src[..crc_at]) {
            return Err("footer checksum mismatch".into());
        }
        let version = get_u32_le(&src[version_at..]).unwrap_or(0);
        let expected = if len == FOOTER_LEN {
            TABLE_FORMAT_VERSION
        } else {
            1
        };
        if version != expected {
            return Err(format!("unsupported table format version {version}"));
        }
        let f = |i: usize| get_u64_le(&src[i * 8..]).unwrap_or(0);
        Ok(Footer {
            index: BlockHandle {
                offset: f(0),
                size: f(1),
            },
            filter: BlockHandle {
                offset: f(2),
                size: f(3),
            },
            properties: BlockHandle {
                offset: f(4),
                size: f(5),
            },
            range_deletions: if fields == 9 {
                BlockHandle {
                    offset: f(6),
                    size: f(7),
                }
            } else {
                BlockHandle::default()
            },
            unique_id: if fields == 9 { f(8) } else { 0 },
            version,
        })
    }
}

/// A fresh random table id (never 0).
pub(crate) fn new_unique_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block decoded into a reused buffer comes out whole whatever the
    /// buffer held, and does not keep a buffer much larger than itself.
    #[test]
    fn decoding_into_a_reused_buffer() {
        let raw: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        for compression in [Compression::None, Compression::Lz4, Compression::Snappy] {
            let mut c = Compressor::default();
            let (stored, kind) = c.compress(&raw, compression);
            let stored = stored.to_vec();
            let mut big = vec![0xAAu8; 1 << 20];
            big.truncate(10);
            let out = decompress_into(&stored, kind, big).unwrap();
            assert_eq!(out, raw, "{compression:?}");
            assert!(
                out.capacity() <= 2 * raw.len().max(4096),
                "{}",
                out.capacity()
            );
            let mut near = Vec::with_capacity(4096);
            near.extend_from_slice(&[0x55; 100]);
            let at = near.as_ptr();
            let out = decompress_into(&stored, kind, near).unwrap();
            assert_eq!(out, raw, "{compression:?}");
            assert_eq!(
                out.as_ptr(),
                at,
                "a buffer of about the right size is reused"
            );
        }
    }
}
