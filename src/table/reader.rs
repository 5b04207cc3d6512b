//! Reads a table file: point lookups behind the bloom filter, and a
//! two-way iterator. Blocks are read with positional reads through the
//! file-system layer (so fault injection reaches them) and kept, decoded,
//! in the shared block cache.

use super::block::Block;
use super::bloom;
use super::data_block::{BlockCursor, BlockValue, DataBlock};
use super::format::{unpack_block_into, BlockHandle, Footer, BLOCK_TRAILER_LEN, FOOTER_LEN};
use super::index::Index;
use super::TableProperties;
use crate::block_cache::BlockCache;
use crate::counter::StripedCounter;
use crate::error::{Error, IoContext, Result};
use crate::fs::RandomAccessFile;
use crate::internal_iter::InternalIterator;
use crate::range_del::Fragments;
use crate::types::{compare_internal_keys, parse_internal_key, SeqNo, ValueKind};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bloom filter counters shared by the tables of one database.
#[derive(Debug, Default)]
pub(crate) struct BloomStats {
    pub(crate) checks: StripedCounter,
    pub(crate) useful: StripedCounter,
}

/// An open table file. Shared between threads.
pub(crate) struct Table {
    file: Arc<dyn RandomAccessFile>,
    path: PathBuf,
    number: u64,
    cache: Option<Arc<BlockCache>>,
    index: Index,
    /// The data block handles, decoded from the index once.
    handles: Vec<BlockHandle>,
    filter: Option<bloom::Filter>,
    props: TableProperties,
    bloom_stats: Arc<BloomStats>,
    footer: Footer,
    /// Where the footer starts: blocks end before it.
    footer_at: u64,
    /// The table's range tombstones (format 2; usually none).
    range_dels: Fragments,
}

impl Table {
    /// Opens a table, reading and checking its footer, index, filter and
    /// properties.
    pub(crate) fn open(
        file: Arc<dyn RandomAccessFile>,
        path: PathBuf,
        number: u64,
        cache: Option<Arc<BlockCache>>,
        bloom_stats: Arc<BloomStats>,
    ) -> Result<Arc<Table>> {
        let len = file.len();
        let corrupt = |offset: u64, reason: String| Error::corruption(&path, offset, reason);
        let tail_len = (FOOTER_LEN as u64).min(len);
        let tail_at = len - tail_len;
        let mut tail = vec![0u8; tail_len as usize];
        file.read_exact_at(tail_at, &mut tail).ctx(&path)?;
        let footer = Footer::decode(&tail).map_err(|r| {
            if len < super::format::FOOTER_LEN_V1 as u64 {
                corrupt(0, format!("file of {len} bytes is too short to be a table"))
            } else {
                corrupt(tail_at, r)
            }
        })?;
        let footer_at = len - footer.len() as u64;

        let read = |h: BlockHandle| read_raw_block(&*file, &path, h, footer_at, &footer);
        let index = Block::decode(Bytes::from(read(footer.index)?))
            .map_err(|r| corrupt(footer.index.offset, format!("index block: {r}")))?;
        let mut handles = Vec::with_capacity(index.len());
        let mut next_offset = 0;
        for i in 0..index.len() {
            let h = BlockHandle::decode(index.value(i))
                .filter(|h| h.offset == next_offset)
                .ok_or_else(|| {
                    corrupt(
                        footer.index.offset,
                        format!("bad handle in index entry {i}"),
                    )
                })?;
            next_offset = h.offset + h.size + BLOCK_TRAILER_LEN as u64;
            handles.push(h);
        }
        let index = Index::new(index);
        let filter = if footer.filter.size == 0 {
            None
        } else {
            Some(bloom::Filter::parse(read(footer.filter)?))
        };
        let props_raw = read(footer.properties)?;
        let mut props = TableProperties::decode(&props_raw, len).ok_or_else(|| {
            corrupt(
                footer.properties.offset,
                "malformed properties block".into(),
            )
        })?;
        props.unique_id = footer.unique_id;
        let range_dels = if footer.range_deletions.size == 0 {
            Fragments::default()
        } else {
            let raw = read(footer.range_deletions)?;
            Fragments::decode(&raw).map_err(|r| {
                corrupt(
                    footer.range_deletions.offset,
                    format!("range deletions block: {r}"),
                )
            })?
        };
        if props.data_blocks != handles.len() as u64 {
            return Err(corrupt(
                footer.properties.offset,
                "properties and index disagree on the block count".into(),
            ));
        }
        Ok(Arc::new(Table {
            file,
            path,
            number,
            cache,
            index,
            handles,
            filter,
            props,
            bloom_stats,
            footer,
            footer_at,
            range_dels,
        }))
    }

    /// The table's range tombstones.
    pub(crate) fn range_deletions(&self) -> &Fragments {
        &self.range_dels
    }

    /// The newest range tombstone in this table covering `key` at `seq`
    /// (0: none).
    pub(crate) fn max_covering(&self, key: &[u8], seq: SeqNo) -> SeqNo {
        if self.range_dels.is_empty() {
            return 0;
        }
        self.range_dels.max_covering(key, seq)
    }

    /// (offset, size) of every data block.
    #[cfg(feature = "internals")]
    pub(crate) fn data_block_handles(&self) -> Vec<(u64, u64)> {
        self.handles.iter().map(|h| (h.offset, h.size)).collect()
    }

    /// The table's unique id, from its footer (0 for format 1 tables).
    pub(crate) fn unique_id(&self) -> u64 {
        self.footer.unique_id
    }

    pub(crate) fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// The newest entry for `user_key` with sequence number `<= seq`,
    /// tombstones included.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        seq: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        let found = self.lookup(&crate::types::LookupKey::new(user_key, seq))?;
        Ok(found.map(|(seq, kind, value)| (seq, kind, value.to_vec())))
    }

    /// The newest entry for `key`'s user key visible at its sequence
    /// number, tombstones included.
    pub(crate) fn lookup(
        &self,
        key: &crate::types::LookupKey,
    ) -> Result<Option<(SeqNo, ValueKind, BlockValue)>> {
        let user_key = key.user_key();
        if let Some(filter) = &self.filter {
            self.bloom_stats.checks.add(1);
            if !filter.may_contain(key.filter_hash()) {
                self.bloom_stats.useful.add(1);
                return Ok(None);
            }
        }
        let target = key.internal_key();
        let mut b = self.index.seek(target);
        let mut key_buf = KEY_BUF.take();
        let found = loop {
            if b >= self.handles.len() {
                break Ok(None);
            }
            let block = match self.block(b) {
                Ok(block) => block,
                Err(e) => break Err(e),
            };
            let mut c = BlockCursor::new(block, key_buf);
            c.seek(target);
            let step = if let Some(why) = c.error() {
                Some(Err(self.block_error(b, why)))
            } else if c.valid() {
                Some(match parse_internal_key(c.key()) {
                    None => Err(self.block_error(b, "malformed internal key")),
                    Some(p) if p.user_key != user_key => Ok(None),
                    Some(p) => Ok(Some((p.seq, p.kind, c.value_ref()))),
                })
            } else {
                // The separator may exceed the block's last key: the
                // entry, if any, starts the next block.
                b += 1;
                None
            };
            key_buf = c.into_key_buf();
            if let Some(r) = step {
                break r;
            }
        };
        KEY_BUF.set(key_buf);
        found
    }

    fn block_error(&self, i: usize, why: &str) -> Error {
        Error::corruption(
            &self.path,
            self.handles[i].offset,
            format!("data block: {why}"),
        )
    }

    fn block(&self, i: usize) -> Result<Arc<DataBlock>> {
        let h = self.handles[i];
        if let Some(cache) = &self.cache {
            if let Some(b) = cache.get(self.number, h.offset) {
                return Ok(b);
            }
        }
        let raw = read_raw_block(&*self.file, &self.path, h, self.footer_at, &self.footer)?;
        let block = DataBlock::new(raw).map_err(|r| self.block_error(i, &r))?;
        let block = Arc::new(block);
        if let Some(cache) = &self.cache {
            cache.insert(self.number, h.offset, block.clone());
        }
        Ok(block)
    }

    /// Reads every data block, checking checksums and structure, and that
    /// the blocks hold as many entries as the properties say. Returns every
    /// failure found.
    pub(crate) fn verify(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        let mut entries = 0u64;
        for &h in &self.handles {
            let block = read_raw_block(&*self.file, &self.path, h, self.footer_at, &self.footer)
                .and_then(|raw| {
                    Block::decode(Bytes::from(raw)).map_err(|r| {
                        Error::corruption(&self.path, h.offset, format!("data block: {r}"))
                    })
                });
            match block {
                Ok(b) => entries += b.len() as u64,
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() && entries != self.props.entries {
            errors.push(Error::corruption(
                &self.path,
                0,
                format!(
                    "blocks hold {entries} entries, properties say {}",
                    self.props.entries
                ),
            ));
        }
        errors
    }

    /// A cursor over every entry.
    pub(crate) fn iter(self: &Arc<Self>) -> TableIterator {
        TableIterator {
            table: self.clone(),
            cursor: None,
            block_idx: 0,
            key_buf: Vec::new(),
            error: None,
        }
    }
}

/// Reads a block and its trailer, checks the checksum and decompresses.
fn read_raw_block(
    file: &dyn RandomAccessFile,
    path: &Path,
    h: BlockHandle,
    limit: u64,
    footer: &Footer,
) -> Result<Vec<u8>> {
    let end = h
        .offset
        .checked_add(h.size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN as u64));
    let len = match end {
        Some(end) if end <= limit && h.size <= super::format::MAX_BLOCK_SIZE as u64 => {
            (h.size as usize) + BLOCK_TRAILER_LEN
        }
        _ => {
            return Err(Error::corruption(
                path,
                h.offset,
                format!("block handle ({}, {}) outside the file", h.offset, h.size),
            ))
        }
    };
    // The stored bytes go to a per-thread scratch buffer, and the block to
    // memory the block cache took back from a block this thread evicted.
    // With the cache full, a fresh allocation per block read and a free
    // per eviction (often of memory another thread's allocator arena
    // owns) cost more than the decompression.
    READ_BUF.with(|cell| {
        let mut buf = cell.take();
        buf.clear();
        buf.resize(len, 0);
        let read = file.read_exact_at(h.offset, &mut buf).ctx(path);
        let out = read.and_then(|()| {
            unpack_block_into(
                &buf,
                footer.context(h.offset),
                crate::block_cache::spare_buffer(),
            )
            .map_err(|r| Error::corruption(path, h.offset, r))
        });
        if buf.capacity() <= crate::block_cache::MAX_SPARE_CAPACITY {
            cell.set(buf);
        }
        out
    })
}

thread_local! {
    /// Stored (compressed) bytes of the block being read.
    static READ_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

thread_local! {
    /// The key buffer point lookups rebuild keys in, kept between calls so
    /// that a lookup allocates nothing on a cache hit.
    static KEY_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Two-way cursor over a table.
pub(crate) struct TableIterator {
    table: Arc<Table>,
    cursor: Option<BlockCursor>,
    block_idx: usize,
    /// Kept while no block is loaded, so moving between blocks reuses one
    /// key allocation.
    key_buf: Vec<u8>,
    error: Option<Error>,
}

impl TableIterator {
    /// Loads block `i`, unpositioned; false (and invalid) on error or past
    /// the end.
    fn load(&mut self, i: usize) -> bool {
        if let Some(c) = self.cursor.take() {
            self.key_buf = c.into_key_buf();
        }
        if i >= self.table.handles.len() {
            return false;
        }
        match self.table.block(i) {
            Ok(b) => {
                self.cursor = Some(BlockCursor::new(b, std::mem::take(&mut self.key_buf)));
                self.block_idx = i;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// After a cursor movement: turns a malformed entry into the
    /// iterator's error. True when the cursor is on an entry.
    fn check(&mut self) -> bool {
        let Some(c) = &self.cursor else {
            return false;
        };
        if c.valid() {
            return true;
        }
        if let Some(why) = c.error() {
            self.error = Some(self.table.block_error(self.block_idx, why));
            self.cursor = None;
        }
        false
    }

    /// Moves forward over exhausted blocks until an entry is found.
    fn settle_forward(&mut self) {
        while self.cursor.is_some() && !self.check() {
            if self.error.is_some() {
                return;
            }
            let next = self.block_idx + 1;
            if !self.load(next) {
                return;
            }
            if let Some(c) = &mut self.cursor {
                c.seek_to_first();
            }
        }
    }

    /// Moves to the last entry of the nearest non-empty block before block
    /// `idx` (invalid when there is none, or on error).
    fn last_entry_before_block(&mut self, mut idx: usize) {
        while idx > 0 {
            idx -= 1;
            if !self.load(idx) {
                return;
            }
            if let Some(c) = &mut self.cursor {
                c.seek_to_last();
            }
            if self.check() || self.error.is_some() {
                return;
            }
        }
        self.cursor = None;
    }

    fn current(&self) -> Option<&BlockCursor> {
        self.cursor.as_ref().filter(|c| c.valid())
    }
}

impl InternalIterator for TableIterator {
    fn seek_to_first(&mut self) {
        self.error = None;
        if self.load(0) {
            if let Some(c) = &mut self.cursor {
                c.seek_to_first();
            }
            self.settle_forward();
        }
    }

    fn seek_to_last(&mut self) {
        self.error = None;
        let n = self.table.handles.len();
        if n > 0 && self.load(n - 1) {
            if let Some(c) = &mut self.cursor {
                c.seek_to_last();
            }
            if !self.check() && self.error.is_none() {
                self.last_entry_before_block(n - 1);
            }
        }
    }

    fn seek(&mut self, ikey: &[u8]) {
        self.error = None;
        let i = self.table.index.seek(ikey);
        if self.load(i) {
            if let Some(c) = &mut self.cursor {
                c.seek(ikey);
            }
            self.settle_forward();
        }
    }

    fn seek_for_prev(&mut self, ikey: &[u8]) {
        self.error = None;
        let n = self.table.handles.len();
        let i = self.table.index.seek(ikey).min(n.saturating_sub(1));
        if n == 0 || !self.load(i) {
            return;
        }
        // The last entry <= ikey: the first entry >= ikey unless it is
        // greater, else the one before it.
        let Some(c) = &mut self.cursor else {
            return;
        };
        c.seek(ikey);
        if c.valid() {
            if compare_internal_keys(c.key(), ikey).is_gt() {
                c.prev();
            }
        } else if c.error().is_none() {
            c.seek_to_last();
        }
        if !self.check() && self.error.is_none() {
            self.last_entry_before_block(i);
        }
    }

    fn next(&mut self) {
        if let Some(c) = &mut self.cursor {
            if c.valid() {
                c.next();
                self.settle_forward();
            }
        }
    }

    fn prev(&mut self) {
        let Some(c) = &mut self.cursor else {
            return;
        };
        if !c.valid() {
            return;
        }
        c.prev();
        if !self.check() && self.error.is_none() {
            self.last_entry_before_block(self.block_idx);
        }
    }

    fn valid(&self) -> bool {
        self.current().is_some()
    }

    fn key(&self) -> &[u8] {
        self.current().map_or(&[][..], |c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.current().map_or(&[][..], |c| c.value())
    }

    fn status(&self) -> Result<()> {
        match &self.error {
            None => Ok(()),
            Some(e) => Err(e.duplicate()),
        }
    }
}
