//! fjall 3 through `Keyspace::insert`/`get`/`iter`/`range`, `Database::batch`
//! and `Database::persist`. fjall has no cursor API, so no `*-raw` rows.

use super::{Counters, Engine, Opened};
use crate::Settings;
use fjall::config::{
    BlockSizePolicy, BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry,
};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

struct Fjall {
    db: Database,
    items: Keyspace,
}

pub fn open(dir: &Path, s: &Settings) -> Opened {
    let db = Database::builder(dir)
        .cache_size(s.cache_size as u64)
        .open()
        .expect("open fjall");
    // fjall compresses only L2 and deeper by default, and builds filters
    // for a false-positive rate in L0; set both like the other engines.
    let (compression, compression_name) = match s.compression.as_str() {
        "none" => (CompressionType::None, "none"),
        _ => (CompressionType::Lz4, "lz4 (all levels)"),
    };
    let filter = if s.bloom_bits > 0 {
        FilterPolicy::all(FilterPolicyEntry::Bloom(
            BloomConstructionPolicy::BitsPerKey(s.bloom_bits as f32),
        ))
    } else {
        FilterPolicy::disabled()
    };
    let write_buffer_size = s.write_buffer_size as u64;
    let items = db
        .keyspace("bench", || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(write_buffer_size)
                .data_block_size_policy(BlockSizePolicy::all(4096))
                .data_block_compression_policy(CompressionPolicy::all(compression))
                .filter_policy(filter)
        })
        .expect("open fjall keyspace");
    let mut settings = format!(
        "max_memtable_size={} cache_size={} data_block_size=4096 bloom_bits_per_key={} (all levels) \
         compression={compression_name} journal=on (flushed to the OS per write, fjall's default), \
         otherwise fjall defaults",
        s.write_buffer_size, s.cache_size, s.bloom_bits
    );
    if s.compression == "snappy" {
        settings.push_str(" [fjall has no Snappy: LZ4 used]");
    }
    Opened {
        engine: Box::new(Fjall { db, items }),
        settings,
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        self.items.insert(key, value).expect("fjall insert");
        if sync {
            self.db
                .persist(PersistMode::SyncData)
                .expect("fjall persist");
        }
    }
    fn batch(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = self.db.batch();
        for (k, v) in items {
            b.insert(&self.items, k.as_slice(), v.as_slice());
        }
        b.commit().expect("fjall batch");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.items.get(key).expect("fjall get").is_some()
    }
    fn scan(&self, reverse: bool) -> u64 {
        let mut n = 0;
        let mut read = |g: fjall::Guard| {
            black_box(g.into_inner().expect("fjall scan"));
            n += 1;
        };
        if reverse {
            self.items.iter().rev().for_each(&mut read);
        } else {
            self.items.iter().for_each(&mut read);
        }
        n
    }
    fn seek_read(&self, key: &[u8], n: usize) -> usize {
        let mut read = 0;
        for g in self.items.range(key..).take(n) {
            black_box(g.into_inner().expect("fjall seek"));
            read += 1;
        }
        read
    }
    fn settle(&self) {
        self.db
            .persist(PersistMode::SyncAll)
            .expect("fjall persist");
        // fjall has no public "wait for background work"; these calls are
        // its hidden test/monitoring hooks. Idle = no queued flush and no
        // running compaction for half a second.
        self.items.rotate_memtable_and_wait().expect("fjall flush");
        let mut idle_polls = 0;
        while idle_polls < 10 {
            std::thread::sleep(Duration::from_millis(50));
            if self.db.outstanding_flushes() == 0 && self.db.active_compactions() == 0 {
                idle_polls += 1;
            } else {
                idle_polls = 0;
            }
        }
    }
    fn counters(&self) -> Option<Counters> {
        None
    }
    fn api(&self, workload: &str) -> &'static str {
        match workload {
            "fillseq" | "fillrandom" | "overwrite" => "keyspace.insert",
            "fillsync" => "keyspace.insert + db.persist(SyncData)",
            "fillbatch" => "db.batch().insert().commit()",
            "readseq" => "keyspace.iter() + into_inner",
            "readreverse" => "keyspace.iter().rev() + into_inner",
            "seekrandom" => "keyspace.range(k..).take(10) + into_inner",
            "readwhilewriting" => "keyspace.get (writer: insert)",
            _ => "keyspace.get",
        }
    }
}
