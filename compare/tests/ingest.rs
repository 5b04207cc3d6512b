//! `SstWriter` + `DB::ingest` against RocksDB's `SstFileWriter` +
//! `ingest_external_file`: the same base data (written, partly flushed),
//! a snapshot, the same files ingested, then more writes; full scans of
//! the database and of the snapshot must agree at every step.

use aidb::{IngestOptions, Options, SstWriter, DB};
use rocksdb::{IteratorMode, SstFileWriter};
use std::path::Path;

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

fn rocks_rows(it: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>) -> Rows {
    it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

fn aidb_rows(it: aidb::DbIterator) -> Rows {
    it.collect::<aidb::Result<_>>().unwrap()
}

fn run(seed: u64, dir: &Path) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let ours = DB::open(dir.join("aidb")).unwrap();
    let theirs = rocksdb::DB::open_default(dir.join("rocksdb")).unwrap();

    // Base data over a key space the files will overlap in part.
    for round in 0..3 {
        for _ in 0..300 {
            let k = key(rng.below(2000));
            if rng.below(5) == 0 {
                ours.delete(&k).unwrap();
                theirs.delete(&k).unwrap();
            } else {
                let v = format!("base{round}-{}", rng.below(1000));
                ours.put(&k, &v).unwrap();
                theirs.put(&k, &v).unwrap();
            }
        }
        if round < 2 {
            ours.flush().unwrap();
            theirs.flush().unwrap();
        }
    }
    let our_snap = ours.snapshot();
    let their_snap = theirs.snapshot();

    // One to three files over disjoint ranges; some ranges hit the base
    // data, some (above 2000) do not.
    let files = 1 + rng.below(3);
    let mut our_paths = Vec::new();
    let mut their_paths = Vec::new();
    let opts = Options::new(dir.join("aidb"));
    let rocks_opts = rocksdb::Options::default();
    for f in 0..files {
        let start = f * 1200 + rng.below(200);
        let mut w = SstWriter::create(dir.join(format!("ours{f}.sst")), &opts).unwrap();
        let their_path = dir.join(format!("theirs{f}.sst"));
        let mut rw = SstFileWriter::create(&rocks_opts);
        rw.open(&their_path).unwrap();
        let mut i = start;
        while i < start + 1000 {
            let k = key(i);
            if rng.below(6) == 0 {
                w.delete(&k).unwrap();
                rw.delete(&k).unwrap();
            } else {
                let v = format!("file{f}-{}", rng.below(1000));
                w.put(&k, &v).unwrap();
                rw.put(&k, &v).unwrap();
            }
            i += 1 + rng.below(4);
        }
        our_paths.push(w.finish().unwrap().path);
        rw.finish().unwrap();
        their_paths.push(their_path);
    }
    ours.ingest(&our_paths, IngestOptions::default()).unwrap();
    theirs.ingest_external_file(their_paths).unwrap();

    let check = |what: &str| {
        assert_eq!(
            aidb_rows(ours.iter()),
            rocks_rows(theirs.iterator(IteratorMode::Start)),
            "seed {seed}: database {what}"
        );
    };
    check("after the ingest");
    assert_eq!(
        aidb_rows(our_snap.iter()),
        rocks_rows(their_snap.iterator(IteratorMode::Start)),
        "seed {seed}: snapshot from before the ingest"
    );
    for _ in 0..200 {
        let k = key(rng.below(3600));
        let v = format!("later-{}", rng.below(1000));
        ours.put(&k, &v).unwrap();
        theirs.put(&k, &v).unwrap();
    }
    check("after later writes");
    drop(our_snap);
    ours.compact_range(..).unwrap();
    theirs.compact_range(None::<&[u8]>, None::<&[u8]>);
    check("after compaction");
}

#[test]
fn ingest_agrees_with_rocksdb() {
    for seed in 1..=20 {
        let dir = tempfile::tempdir().unwrap();
        run(seed, dir.path());
    }
}

#[test]
fn out_of_order_keys_are_refused_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SstWriter::create(dir.path().join("a.sst"), &Options::new(dir.path())).unwrap();
    w.put("b", "1").unwrap();
    assert!(w.put("a", "2").is_err());
    assert!(w.put("b", "2").is_err());
    let rocks_opts = rocksdb::Options::default();
    let mut rw = SstFileWriter::create(&rocks_opts);
    rw.open(dir.path().join("r.sst")).unwrap();
    rw.put("b", "1").unwrap();
    assert!(rw.put("a", "2").is_err());
    assert!(rw.put("b", "2").is_err());
}
