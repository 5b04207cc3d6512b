//! The randomized crash test's building blocks (see `tests/crash_test.rs`):
//! what a database looks like for its whole life ([`Shape`]), the options
//! redrawn at every reopen ([`Params`]), the batches each writer thread
//! writes, and the expected state of each thread's keys ([`ThreadModel`]).
//!
//! Every writer thread owns its keys (`t{t}/k…`, spread over every column
//! family) and writes batches numbered from 0; batch `i` of thread `t` is a
//! pure function of the database's seed, `t` and `i`, so any process can
//! compute what the thread's keys hold after batches `0..=i`. Every batch
//! also puts the thread's marker key (`t{t}/~marker`, in the default
//! family) holding `i` and the batches the other threads had acknowledged
//! when it was submitted (see [`Marker`]): reading the marker tells which
//! prefix of the thread's batches a view holds, and checks across threads
//! that the view has no hole.

#![allow(dead_code)]

pub mod verify;
pub mod workload;

use aidb::fs::FileSystem;
use aidb::{ColumnFamilyOptions, Compression, Options, WalRecoveryMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// A generator seeded by several numbers (mixed, so that nearby seeds give
/// unrelated streams).
pub fn rng_for(parts: &[u64]) -> StdRng {
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    for &p in parts {
        h ^= p.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(h << 6);
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(29);
    }
    StdRng::seed_from_u64(h)
}

fn pick<T: Copy>(rng: &mut StdRng, from: &[T]) -> T {
    from[rng.gen_range(0..from.len())]
}

/// What stays fixed for a database's whole life.
#[derive(Debug, Clone)]
pub struct Shape {
    pub seed: u64,
    /// Column families besides `default`.
    pub families: Vec<String>,
    /// Levels of each family (index 0: default); a table may not end up
    /// below a family's last level, so this cannot change at a reopen.
    pub num_levels: Vec<usize>,
    pub threads: usize,
    /// Keys per thread in each family.
    pub keys: u32,
    /// Most operations in a batch (besides the marker).
    pub max_ops: usize,
    /// Values are up to this long (one in 50 up to 8 times longer).
    pub value_max: usize,
}

impl Shape {
    pub fn draw(seed: u64) -> Shape {
        let mut rng = rng_for(&[seed, 1]);
        let extra = rng.gen_range(0..=3);
        Shape {
            seed,
            families: (1..=extra).map(|i| format!("cf{i}")).collect(),
            num_levels: (0..=extra).map(|_| rng.gen_range(2..=7)).collect(),
            threads: rng.gen_range(1..=4),
            keys: pick(&mut rng, &[8, 32, 128, 512]),
            max_ops: pick(&mut rng, &[1, 4, 8, 16]),
            value_max: pick(&mut rng, &[8, 100, 1000, 4000]),
        }
    }

    pub fn family_count(&self) -> usize {
        1 + self.families.len()
    }

    pub fn family_name(&self, f: usize) -> &str {
        if f == 0 {
            "default"
        } else {
            &self.families[f - 1]
        }
    }
}

/// The key prefix of thread `t`'s data keys (in every family).
pub fn key_prefix(t: usize) -> String {
    format!("t{t}/k")
}

pub fn key(t: usize, n: u32) -> Vec<u8> {
    format!("t{t}/k{n:05}").into_bytes()
}

/// Sorts after every data key of the thread.
pub fn marker_key(t: usize) -> Vec<u8> {
    format!("t{t}/~marker").into_bytes()
}

/// One operation of a batch: a put (`Some`) or delete of key `n` of the
/// thread in family `family`.
#[derive(Debug, Clone)]
pub struct Op {
    pub family: usize,
    pub key: u32,
    pub value: Option<Vec<u8>>,
}

/// Batch `i` of thread `t`, without the marker.
pub fn batch_ops(shape: &Shape, t: usize, i: u64) -> Vec<Op> {
    let mut rng = rng_for(&[shape.seed, 2, t as u64, i]);
    let n = rng.gen_range(1..=shape.max_ops);
    (0..n)
        .map(|j| {
            let family = rng.gen_range(0..shape.family_count());
            let key = rng.gen_range(0..shape.keys);
            let value = (rng.gen_range(0..5) > 0).then(|| {
                let max = if rng.gen_range(0..50) == 0 {
                    shape.value_max * 8
                } else {
                    shape.value_max
                };
                let mut v = format!("t{t}i{i}j{j}:").into_bytes();
                let len = rng.gen_range(0..=max);
                let fill = b'a' + (i % 26) as u8;
                v.resize(v.len() + len, fill);
                v
            });
            Op { family, key, value }
        })
        .collect()
}

/// A marker's value: the batch number, and for every thread the last
/// batch it had acknowledged when this one was submitted (-1: none). A
/// view that holds this batch must hold those too: they were written to
/// the log before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub batch: i64,
    pub acked: Vec<i64>,
}

impl Marker {
    pub fn encode(&self) -> Vec<u8> {
        let acked: Vec<String> = self.acked.iter().map(i64::to_string).collect();
        format!("{}|{}", self.batch, acked.join(",")).into_bytes()
    }

    pub fn decode(data: &[u8]) -> Result<Marker, String> {
        let text = std::str::from_utf8(data).map_err(|e| format!("marker not UTF-8: {e}"))?;
        let bad = || format!("bad marker {text:?}");
        let (batch, acked) = text.split_once('|').ok_or_else(bad)?;
        Ok(Marker {
            batch: batch.parse().map_err(|_| bad())?,
            acked: acked
                .split(',')
                .map(|a| a.parse().map_err(|_| bad()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The batch a marker read says a view holds (-1: none).
    pub fn batch_of(read: &Option<Vec<u8>>) -> Result<i64, String> {
        match read {
            None => Ok(-1),
            Some(v) => Marker::decode(v).map(|m| m.batch),
        }
    }
}

/// What thread `t`'s keys hold after its batches `0..=applied`.
#[derive(Debug, Clone)]
pub struct ThreadModel {
    pub t: usize,
    /// The last batch applied (-1: none).
    pub applied: i64,
    /// (family, key) → value.
    pub state: BTreeMap<(usize, u32), Vec<u8>>,
}

impl ThreadModel {
    pub fn new(t: usize) -> ThreadModel {
        ThreadModel {
            t,
            applied: -1,
            state: BTreeMap::new(),
        }
    }

    /// Applies the next batch.
    pub fn step(&mut self, shape: &Shape) {
        self.applied += 1;
        for op in batch_ops(shape, self.t, self.applied as u64) {
            match op.value {
                Some(v) => self.state.insert((op.family, op.key), v),
                None => self.state.remove(&(op.family, op.key)),
            };
        }
    }

    /// Moves forward to batch `last`; a model never goes back, so a view
    /// older than one already seen is an error.
    pub fn advance_to(&mut self, shape: &Shape, last: i64) -> Result<(), String> {
        if last < self.applied {
            return Err(format!(
                "thread {}: a view holds its batches up to {last}, but an earlier one held up to {}",
                self.t, self.applied
            ));
        }
        while self.applied < last {
            self.step(shape);
        }
        Ok(())
    }

    pub fn get(&self, family: usize, n: u32) -> Option<&Vec<u8>> {
        self.state.get(&(family, n))
    }

    /// The thread's pairs in `family`, in key order.
    pub fn family(&self, family: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state
            .range((family, 0)..(family + 1, 0))
            .map(|((_, n), v)| (key(self.t, *n), v.clone()))
            .collect()
    }
}

/// Options drawn anew at every reopen, as RocksDB's crash test redraws
/// its parameters at every run.
#[derive(Debug, Clone)]
pub struct Params {
    pub families: Vec<ColumnFamilyOptions>,
    pub cache_size: usize,
    pub max_background_jobs: usize,
    pub max_open_files: usize,
    pub paranoid_checks: bool,
    pub wal_recovery_mode: WalRecoveryMode,
    pub max_total_wal_size: u64,
    /// Writes with `sync: true`, per thousand.
    pub sync_per_mille: u32,
    pub readers: usize,
    /// A thread flushing, compacting, verifying and waiting for idle.
    pub chaos: bool,
    /// How long the workload runs before the crash.
    pub run_ms: u64,
}

fn draw_family(rng: &mut StdRng, num_levels: usize) -> ColumnFamilyOptions {
    let compressions = [Compression::None, Compression::Lz4, Compression::Snappy];
    let trigger = rng.gen_range(1..=4);
    let slowdown = trigger + pick(rng, &[0, 2, 8, 16]);
    ColumnFamilyOptions {
        write_buffer_size: pick(rng, &[4 << 10, 8 << 10, 32 << 10, 128 << 10, 1 << 20]),
        max_write_buffer_number: rng.gen_range(2..=4),
        compression: pick(rng, &compressions),
        compression_per_level: if rng.gen_bool(0.3) {
            (0..rng.gen_range(1..=num_levels))
                .map(|_| pick(rng, &compressions))
                .collect()
        } else {
            Vec::new()
        },
        block_size: pick(rng, &[256, 512, 1024, 4096, 16 << 10]),
        block_restart_interval: pick(rng, &[1, 2, 4, 16]),
        bloom_bits_per_key: pick(rng, &[0, 1, 5, 10, 20]),
        num_levels,
        level0_file_num_compaction_trigger: trigger,
        level0_slowdown_writes_trigger: slowdown,
        level0_stop_writes_trigger: slowdown + pick(rng, &[0, 4, 16]),
        max_bytes_for_level_base: pick(rng, &[4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20]),
        max_bytes_for_level_multiplier: pick(rng, &[2.0, 4.0, 10.0]),
        target_file_size: pick(rng, &[2 << 10, 8 << 10, 64 << 10, 256 << 10]),
        // Merges, range deletes and TTL have their own crash suite
        // (tests/crash_merge_range.rs); this model has puts and deletes.
        merge_operator: None,
        compaction_filter: None,
        ttl: None,
        // Drawn per cycle: a database reopened with the other sizing
        // keeps its data where it is and compacts on from there.
        level_compaction_dynamic_level_bytes: rng.gen_bool(0.5),
    }
}

impl Params {
    pub fn draw(shape: &Shape, cycle: u64) -> Params {
        let mut rng = rng_for(&[shape.seed, 3, cycle]);
        Params {
            families: shape
                .num_levels
                .iter()
                .map(|&l| draw_family(&mut rng, l))
                .collect(),
            cache_size: pick(&mut rng, &[0, 64 << 10, 8 << 20]),
            max_background_jobs: rng.gen_range(1..=4),
            max_open_files: pick(&mut rng, &[16, 100, 1000]),
            paranoid_checks: rng.gen_bool(0.8),
            wal_recovery_mode: if rng.gen_bool(0.7) {
                WalRecoveryMode::TolerateCorruptedTailRecords
            } else {
                WalRecoveryMode::PointInTimeRecovery
            },
            max_total_wal_size: pick(&mut rng, &[0, 0, 32 << 10, 1 << 20]),
            sync_per_mille: pick(&mut rng, &[0, 10, 100, 500, 1000]),
            readers: rng.gen_range(0..=3),
            chaos: rng.gen_bool(0.8),
            // Mostly short runs, some long ones.
            run_ms: pick(&mut rng, &[5, 20, 50, 100, 200, 500, 1000]),
        }
    }

    pub fn options(&self, shape: &Shape, path: &Path, fs: Arc<dyn FileSystem>) -> Options {
        let d = &self.families[0];
        let column_families: HashMap<String, ColumnFamilyOptions> = shape
            .families
            .iter()
            .cloned()
            .zip(self.families[1..].iter().cloned())
            .collect();
        Options {
            fs,
            cache_size: self.cache_size,
            write_buffer_size: d.write_buffer_size,
            max_write_buffer_number: d.max_write_buffer_number,
            compression: d.compression,
            compression_per_level: d.compression_per_level.clone(),
            block_size: d.block_size,
            block_restart_interval: d.block_restart_interval,
            bloom_bits_per_key: d.bloom_bits_per_key,
            num_levels: d.num_levels,
            level0_file_num_compaction_trigger: d.level0_file_num_compaction_trigger,
            level0_slowdown_writes_trigger: d.level0_slowdown_writes_trigger,
            level0_stop_writes_trigger: d.level0_stop_writes_trigger,
            max_bytes_for_level_base: d.max_bytes_for_level_base,
            max_bytes_for_level_multiplier: d.max_bytes_for_level_multiplier,
            level_compaction_dynamic_level_bytes: d.level_compaction_dynamic_level_bytes,
            target_file_size: d.target_file_size,
            max_background_jobs: self.max_background_jobs,
            max_open_files: self.max_open_files,
            paranoid_checks: self.paranoid_checks,
            wal_recovery_mode: self.wal_recovery_mode,
            column_families,
            max_total_wal_size: self.max_total_wal_size,
            ..Options::new(path)
        }
    }

    /// One line for logs and failure messages.
    pub fn summary(&self) -> String {
        let fams: Vec<String> = self
            .families
            .iter()
            .map(|f| {
                format!(
                    "wb{}K/b{}/bl{}/{:?}/L{}/l0:{}",
                    f.write_buffer_size >> 10,
                    f.block_size,
                    f.bloom_bits_per_key,
                    f.compression,
                    f.num_levels,
                    f.level0_file_num_compaction_trigger
                )
            })
            .collect();
        format!(
            "families [{}] cache {}K jobs {} files {} paranoid {} {:?} wal-limit {} sync {}‰ readers {} chaos {} run {} ms",
            fams.join(" "),
            self.cache_size >> 10,
            self.max_background_jobs,
            self.max_open_files,
            self.paranoid_checks,
            self.wal_recovery_mode,
            self.max_total_wal_size,
            self.sync_per_mille,
            self.readers,
            self.chaos,
            self.run_ms
        )
    }
}
