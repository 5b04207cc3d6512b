//! [`ColumnFamilyOptions`]: the settings each column family has for itself,
//! and their encoding in the MANIFEST (so a family reopened without options
//! keeps the ones it was created with).

use crate::coding::{
    get_length_prefixed, get_varint32, get_varint64, put_length_prefixed, put_varint32,
    put_varint64,
};
use crate::error::{Error, Result};
use crate::operators::{CompactionFilter, MergeOperator};
use crate::options::{Compression, MAX_TABLE_INPUT_SIZE};
use std::sync::Arc;
use std::time::Duration;

/// Settings of one column family: its memtables, table files and level
/// sizing. Build with struct-update syntax:
///
/// ```
/// let opts = aidb::ColumnFamilyOptions {
///     write_buffer_size: 8 << 20,
///     compression: aidb::Compression::Snappy,
///     ..Default::default()
/// };
/// assert_eq!(opts.block_size, 4096);
/// ```
///
/// The default family takes these settings from the fields of the same
/// names in [`Options`](crate::Options). Every field means what the
/// [`Options`](crate::Options) field of the same name means, for this
/// family only.
#[derive(Clone)]
pub struct ColumnFamilyOptions {
    /// Size a memtable reaches before it is frozen and flushed. Between
    /// 4 KiB and 1 GiB. Default: 64 MiB. Each memtable also keeps a bloom
    /// filter of its keys of 1/64 of this size.
    pub write_buffer_size: usize,
    /// Most memtables (active and frozen) held at once; writes to the
    /// family stall beyond it. At least 2. Default: 4.
    pub max_write_buffer_number: usize,
    /// Compression of table blocks. Default: [`Compression::Lz4`].
    pub compression: Compression,
    /// Per-level override of `compression`. Default: empty.
    pub compression_per_level: Vec<Compression>,
    /// Target uncompressed size of a data block. Between 256 bytes and
    /// 4 MiB. Default: 4096.
    pub block_size: usize,
    /// Keys between restart points in a block. At least 1. Default: 16.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key; 0 disables filters. At most 64.
    /// Default: 10.
    pub bloom_bits_per_key: u32,
    /// Number of levels. Between 2 and 16. Default: 7.
    pub num_levels: usize,
    /// Level-0 file count that starts a compaction. Default: 4.
    pub level0_file_num_compaction_trigger: usize,
    /// Level-0 file count at which writes slow down. Default: 20.
    pub level0_slowdown_writes_trigger: usize,
    /// Level-0 file count at which writes stop. Default: 36.
    pub level0_stop_writes_trigger: usize,
    /// Target size of level 1. Default: 256 MiB.
    pub max_bytes_for_level_base: u64,
    /// Growth factor between levels. Greater than 1. Default: 10.
    pub max_bytes_for_level_multiplier: f64,
    /// Size levels from the bottom up, as RocksDB's option of this name
    /// does: level 0 compacts straight into the highest level that needs
    /// data (the last level while the family is small), and each level's
    /// target is the one below divided by the multiplier, so that most
    /// data is rewritten fewer times. Levels above that one stay empty.
    /// Off: level 0 compacts into level 1, whose target is
    /// `max_bytes_for_level_base`. Default: `false`.
    pub level_compaction_dynamic_level_bytes: bool,
    /// Size at which compaction output is cut. Between 1 KiB and 1 GiB.
    /// Default: 64 MiB.
    pub target_file_size: u64,
    /// Folds the family's merge operands (see [`MergeOperator`]). Its name
    /// is recorded: opening with a differently named one is refused. Not
    /// recorded itself: give it at every open. Default: none.
    pub merge_operator: Option<Arc<dyn MergeOperator>>,
    /// Consulted by compactions (see [`CompactionFilter`]). Default: none.
    pub compaction_filter: Option<Arc<dyn CompactionFilter>>,
    /// Entries older than this are hidden from reads and dropped by
    /// compaction (see `docs/configuration.md`, "Time to live"). Set at
    /// creation: a family with a TTL stores its values with their write
    /// time, so it cannot be turned on or off later (the duration can be
    /// changed). Whole seconds, at least one. Default: none.
    pub ttl: Option<Duration>,
}

impl std::fmt::Debug for ColumnFamilyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnFamilyOptions")
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_write_buffer_number", &self.max_write_buffer_number)
            .field("compression", &self.compression)
            .field("compression_per_level", &self.compression_per_level)
            .field("block_size", &self.block_size)
            .field("block_restart_interval", &self.block_restart_interval)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("num_levels", &self.num_levels)
            .field(
                "level0_file_num_compaction_trigger",
                &self.level0_file_num_compaction_trigger,
            )
            .field(
                "level0_slowdown_writes_trigger",
                &self.level0_slowdown_writes_trigger,
            )
            .field(
                "level0_stop_writes_trigger",
                &self.level0_stop_writes_trigger,
            )
            .field("max_bytes_for_level_base", &self.max_bytes_for_level_base)
            .field(
                "max_bytes_for_level_multiplier",
                &self.max_bytes_for_level_multiplier,
            )
            .field(
                "level_compaction_dynamic_level_bytes",
                &self.level_compaction_dynamic_level_bytes,
            )
            .field("target_file_size", &self.target_file_size)
            .field(
                "merge_operator",
                &self.merge_operator.as_ref().map(|m| m.name().to_string()),
            )
            .field("compaction_filter", &self.compaction_filter.is_some())
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Equal when every setting is, operators compared by name (filters by
/// presence).
impl PartialEq for ColumnFamilyOptions {
    fn eq(&self, o: &Self) -> bool {
        self.encode() == o.encode()
            && self.compaction_filter.is_some() == o.compaction_filter.is_some()
    }
}

impl Default for ColumnFamilyOptions {
    fn default() -> ColumnFamilyOptions {
        ColumnFamilyOptions {
            write_buffer_size: 64 << 20,
            max_write_buffer_number: 4,
            compression: Compression::Lz4,
            compression_per_level: Vec::new(),
            block_size: 4096,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            num_levels: 7,
            level0_file_num_compaction_trigger: 4,
            level0_slowdown_writes_trigger: 20,
            level0_stop_writes_trigger: 36,
            max_bytes_for_level_base: 256 << 20,
            max_bytes_for_level_multiplier: 10.0,
            level_compaction_dynamic_level_bytes: false,
            target_file_size: 64 << 20,
            merge_operator: None,
            compaction_filter: None,
            ttl: None,
        }
    }
}

impl ColumnFamilyOptions {
    /// Compression used for tables written to `level`.
    pub fn compression_for_level(&self, level: usize) -> Compression {
        self.compression_per_level
            .get(level)
            .copied()
            .unwrap_or(self.compression)
    }

    /// Checks every field; the error names `owner::field` (for example
    /// `Options::block_size`) and says why.
    pub(crate) fn validate_as(&self, owner: &str) -> Result<()> {
        let bad = |field: &str, why: String| -> Result<()> {
            Err(Error::InvalidArgument(format!("{owner}::{field} {why}")))
        };
        if !(4096..=MAX_TABLE_INPUT_SIZE as usize).contains(&self.write_buffer_size) {
            return bad(
                "write_buffer_size",
                format!(
                    "is {}, must be between 4096 and {MAX_TABLE_INPUT_SIZE}",
                    self.write_buffer_size
                ),
            );
        }
        if self.max_write_buffer_number < 2 {
            return bad(
                "max_write_buffer_number",
                format!("is {}, must be at least 2", self.max_write_buffer_number),
            );
        }
        if !(256..=4 << 20).contains(&self.block_size) {
            return bad(
                "block_size",
                format!("is {}, must be between 256 and 4194304", self.block_size),
            );
        }
        if self.block_restart_interval == 0 {
            return bad("block_restart_interval", "is 0, must be at least 1".into());
        }
        if self.bloom_bits_per_key > 64 {
            return bad(
                "bloom_bits_per_key",
                format!("is {}, must be at most 64", self.bloom_bits_per_key),
            );
        }
        if !(2..=16).contains(&self.num_levels) {
            return bad(
                "num_levels",
                format!("is {}, must be between 2 and 16", self.num_levels),
            );
        }
        if self.compression_per_level.len() > self.num_levels {
            return bad(
                "compression_per_level",
                format!(
                    "has {} entries but there are only {} levels",
                    self.compression_per_level.len(),
                    self.num_levels
                ),
            );
        }
        if self.level0_file_num_compaction_trigger == 0 {
            return bad(
                "level0_file_num_compaction_trigger",
                "is 0, must be at least 1".into(),
            );
        }
        if self.level0_slowdown_writes_trigger < self.level0_file_num_compaction_trigger {
            return bad(
                "level0_slowdown_writes_trigger",
                format!(
                    "({}) is below level0_file_num_compaction_trigger ({})",
                    self.level0_slowdown_writes_trigger, self.level0_file_num_compaction_trigger
                ),
            );
        }
        if self.level0_stop_writes_trigger < self.level0_slowdown_writes_trigger {
            return bad(
                "level0_stop_writes_trigger",
                format!(
                    "({}) is below level0_slowdown_writes_trigger ({})",
                    self.level0_stop_writes_trigger, self.level0_slowdown_writes_trigger
                ),
            );
        }
        if self.max_bytes_for_level_base < 1024 {
            return bad(
                "max_bytes_for_level_base",
                format!(
                    "is {}, must be at least 1024",
                    self.max_bytes_for_level_base
                ),
            );
        }
        if !(self.max_bytes_for_level_multiplier > 1.0
            && self.max_bytes_for_level_multiplier.is_finite())
        {
            return bad(
                "max_bytes_for_level_multiplier",
                format!(
                    "is {}, must be a finite number greater than 1",
                    self.max_bytes_for_level_multiplier
                ),
            );
        }
        if self.ttl.is_some_and(|t| t.as_secs() == 0) {
            return bad(
                "ttl",
                "is under a second; the write time is kept in seconds".into(),
            );
        }
        if !(1024..=MAX_TABLE_INPUT_SIZE).contains(&self.target_file_size) {
            return bad(
                "target_file_size",
                format!(
                    "is {}, must be between 1024 and {MAX_TABLE_INPUT_SIZE}",
                    self.target_file_size
                ),
            );
        }
        Ok(())
    }

    /// The MANIFEST form: a sequence of `tag: varint32 | length-prefixed
    /// payload`, so a reader skips tags it does not know (see
    /// `docs/format.md`, "Column family options").
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_recording(self.merge_operator.as_ref().map(|m| m.name()))
    }

    /// [`encode`](Self::encode), recording `merge_name` as the merge
    /// operator's name.
    pub(crate) fn encode_recording(&self, merge_name: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut field = |tag: u32, payload: &[u8]| {
            put_varint32(&mut out, tag);
            put_length_prefixed(&mut out, payload);
        };
        let num = |v: u64| {
            let mut b = Vec::new();
            put_varint64(&mut b, v);
            b
        };
        field(1, &num(self.write_buffer_size as u64));
        field(2, &num(self.max_write_buffer_number as u64));
        field(3, &[compression_code(self.compression)]);
        let per_level: Vec<u8> = self
            .compression_per_level
            .iter()
            .map(|c| compression_code(*c))
            .collect();
        field(4, &per_level);
        field(5, &num(self.block_size as u64));
        field(6, &num(self.block_restart_interval as u64));
        field(7, &num(self.bloom_bits_per_key as u64));
        field(8, &num(self.num_levels as u64));
        field(9, &num(self.level0_file_num_compaction_trigger as u64));
        field(10, &num(self.level0_slowdown_writes_trigger as u64));
        field(11, &num(self.level0_stop_writes_trigger as u64));
        field(12, &num(self.max_bytes_for_level_base));
        field(13, &num(self.max_bytes_for_level_multiplier.to_bits()));
        field(14, &num(self.target_file_size));
        if let Some(name) = merge_name {
            field(15, name.as_bytes());
        }
        if let Some(ttl) = self.ttl {
            field(16, &num(ttl.as_secs()));
        }
        if self.level_compaction_dynamic_level_bytes {
            field(17, &num(1));
        }
        out
    }

    /// Decodes [`encode`](Self::encode)'s form; fields it does not hold
    /// keep their defaults. The merge operator cannot be recorded, only its
    /// name, returned beside. The error says what is wrong.
    pub(crate) fn decode(
        mut src: &[u8],
    ) -> std::result::Result<(ColumnFamilyOptions, Option<String>), String> {
        let mut o = ColumnFamilyOptions::default();
        let mut merge_operator = None;
        while !src.is_empty() {
            let (tag, n) = get_varint32(src).ok_or("bad option tag")?;
            let (payload, m) = get_length_prefixed(&src[n..]).ok_or("bad option payload")?;
            src = &src[n + m..];
            let num = || -> std::result::Result<u64, String> {
                get_varint64(payload)
                    .filter(|&(_, used)| used == payload.len())
                    .map(|(v, _)| v)
                    .ok_or_else(|| format!("bad value for option {tag}"))
            };
            let usize_of =
                |v: u64| usize::try_from(v).map_err(|_| format!("option {tag} too large"));
            match tag {
                1 => o.write_buffer_size = usize_of(num()?)?,
                2 => o.max_write_buffer_number = usize_of(num()?)?,
                3 => o.compression = compression_of(payload.first().copied())?,
                4 => {
                    o.compression_per_level = payload
                        .iter()
                        .map(|&c| compression_of(Some(c)))
                        .collect::<std::result::Result<_, _>>()?
                }
                5 => o.block_size = usize_of(num()?)?,
                6 => o.block_restart_interval = usize_of(num()?)?,
                7 => o.bloom_bits_per_key = u32::try_from(num()?).map_err(|e| e.to_string())?,
                8 => o.num_levels = usize_of(num()?)?,
                9 => o.level0_file_num_compaction_trigger = usize_of(num()?)?,
                10 => o.level0_slowdown_writes_trigger = usize_of(num()?)?,
                11 => o.level0_stop_writes_trigger = usize_of(num()?)?,
                12 => o.max_bytes_for_level_base = num()?,
                13 => o.max_bytes_for_level_multiplier = f64::from_bits(num()?),
                14 => o.target_file_size = num()?,
                15 => {
                    let name =
                        std::str::from_utf8(payload).map_err(|_| "bad merge operator name")?;
                    merge_operator = Some(name.to_string());
                }
                16 => o.ttl = Some(Duration::from_secs(num()?)),
                17 => o.level_compaction_dynamic_level_bytes = num()? != 0,
                _ => {} // a newer version's option: skipped
            }
        }
        Ok((o, merge_operator))
    }
}

/// Compression codes in recorded options (the same as the block trailer's).
fn compression_code(c: Compression) -> u8 {
    match c {
        Compression::None => 0,
        Compression::Lz4 => 1,
        Compression::Snappy => 2,
    }
}

fn compression_of(code: Option<u8>) -> std::result::Result<Compression, String> {
    match code {
        Some(0) => Ok(Compression::None),
        Some(1) => Ok(Compression::Lz4),
        Some(2) => Ok(Compression::Snappy),
        other => Err(format!("unknown compression code {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_fields() {
        let o = ColumnFamilyOptions {
            write_buffer_size: 123_456,
            compression: Compression::Snappy,
            compression_per_level: vec![Compression::None, Compression::Lz4],
            max_bytes_for_level_multiplier: 7.5,
            level_compaction_dynamic_level_bytes: true,
            num_levels: 3,
            ..Default::default()
        };
        let mut enc = o.encode();
        assert_eq!(ColumnFamilyOptions::decode(&enc).unwrap().0, o);
        put_varint32(&mut enc, 999);
        put_length_prefixed(&mut enc, b"future");
        assert_eq!(ColumnFamilyOptions::decode(&enc).unwrap().0, o);
        for cut in 1..enc.len() - 8 {
            let _ = ColumnFamilyOptions::decode(&enc[..cut]);
        }
    }
}
