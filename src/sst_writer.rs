//! [`SstWriter`]: builds a table file outside any database, for
//! [`DB::ingest`](crate::DB::ingest).
//!
//! The file is an ordinary AiDb table (see `docs/format.md`) whose entries
//! all carry sequence number 0. Ingestion gives them a sequence number
//! newer than everything in the database (see `db/ingest.rs`).

use crate::error::{Error, IoContext, Result};
use crate::options::{Options, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::table::{TableBuildOptions, TableBuilder};
use crate::types::{encode_internal_key, ValueKind};
use std::path::{Path, PathBuf};

/// What [`SstWriter::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstInfo {
    /// The file written.
    pub path: PathBuf,
    /// Its first key.
    pub smallest_key: Vec<u8>,
    /// Its last key.
    pub largest_key: Vec<u8>,
    /// Number of entries (puts and deletes).
    pub entries: u64,
    /// Size of the file in bytes.
    pub size: u64,
}

/// Writes a sorted table file to load into a database with
/// [`DB::ingest`](crate::DB::ingest), much faster than the same writes one
/// by one: no log, no memtable, no compaction.
///
/// Keys must come in strictly ascending order (bytewise), puts and deletes
/// mixed. The block size, compression and bloom filter come from the
/// [`Options`] given (those of the default family).
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let options = aidb::Options::new(dir.path().join("db"));
/// let mut writer = aidb::SstWriter::create(dir.path().join("load.sst"), &options)?;
/// writer.put("a", "1")?;
/// writer.delete("b")?;
/// writer.put("c", "3")?;
/// let info = writer.finish()?;
/// assert_eq!((info.entries, info.smallest_key.as_slice()), (3, &b"a"[..]));
/// # Ok(())
/// # }
/// ```
pub struct SstWriter {
    builder: Option<TableBuilder>,
    path: PathBuf,
    fs: std::sync::Arc<dyn crate::fs::FileSystem>,
    smallest: Option<Vec<u8>>,
    last: Vec<u8>,
    entries: u64,
    ikey: Vec<u8>,
}

impl std::fmt::Debug for SstWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstWriter")
            .field("path", &self.path)
            .field("entries", &self.entries)
            .finish()
    }
}

impl SstWriter {
    /// Creates (or truncates) the file at `path`, through `options.fs`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for invalid options; [`Error::Io`] when
    /// the file cannot be created.
    pub fn create(path: impl AsRef<Path>, options: &Options) -> Result<SstWriter> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let o = options.default_family_options();
        let build = TableBuildOptions {
            block_size: o.block_size,
            restart_interval: o.block_restart_interval,
            bloom_bits_per_key: o.bloom_bits_per_key,
            // Ingested files usually land on the last level.
            compression: o.compression_for_level(o.num_levels.saturating_sub(1)),
        };
        let file = options.fs.create(&path).ctx(&path)?;
        Ok(SstWriter {
            builder: Some(TableBuilder::new(file, path.clone(), build)),
            path,
            fs: options.fs.clone(),
            smallest: None,
            last: Vec::new(),
            entries: 0,
            ikey: Vec::new(),
        })
    }

    /// Adds `key` = `value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `key` is not greater than the
    /// previous key, or the key or value is over the size limits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Put, value.as_ref())
    }

    /// Adds a deletion of `key`: once ingested, the key is gone, whatever
    /// older value the database held.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Delete, b"")
    }

    fn add(&mut self, key: &[u8], kind: ValueKind, value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_SIZE || value.len() > MAX_VALUE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes or value of {} bytes over the limits \
                 ({MAX_KEY_SIZE} and {MAX_VALUE_SIZE})",
                key.len(),
                value.len()
            )));
        }
        if self.smallest.is_some() && key <= self.last.as_slice() {
            return Err(Error::InvalidArgument(format!(
                "SstWriter keys must be strictly ascending: {:?} after {:?}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&self.last)
            )));
        }
        let builder = self.builder.as_mut().ok_or_else(|| {
            Error::InvalidArgument("SstWriter failed earlier; start a new file".into())
        })?;
        self.ikey.clear();
        encode_internal_key(&mut self.ikey, key, 0, kind);
        if let Err(e) = builder.add(&self.ikey, value) {
            self.builder = None;
            return Err(e);
        }
        if self.smallest.is_none() {
            self.smallest = Some(key.to_vec());
        }
        self.last.clear();
        self.last.extend_from_slice(key);
        self.entries += 1;
        Ok(())
    }

    /// Writes the rest of the file and syncs it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when nothing was added (an empty file
    /// cannot be ingested; it is removed) or an earlier call failed;
    /// [`Error::Io`] when writing fails.
    pub fn finish(mut self) -> Result<SstInfo> {
        let builder = self.builder.take().ok_or_else(|| {
            Error::InvalidArgument("SstWriter failed earlier; start a new file".into())
        })?;
        let Some(smallest) = self.smallest.take() else {
            drop(builder);
            let _ = self.fs.remove_file(&self.path);
            return Err(Error::InvalidArgument(
                "SstWriter::finish with no entries: nothing to ingest".into(),
            ));
        };
        let props = builder.finish()?;
        let size = self.fs.file_size(&self.path).ctx(&self.path)?;
        debug_assert_eq!(props.entries, self.entries);
        Ok(SstInfo {
            path: self.path,
            smallest_key: smallest,
            largest_key: self.last,
            entries: self.entries,
            size,
        })
    }
}
