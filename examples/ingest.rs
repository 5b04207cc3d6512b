//! Bulk loading: write a sorted file with `SstWriter`, then ingest it in
//! one step; its values win over older ones, snapshots keep the old ones.
//!
//! Run with `cargo run --example ingest [DIR]`.

use aidb::{IngestOptions, Options, SstWriter, DB};

fn main() -> aidb::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("ingest-demo".into()));
    let options = Options::new(dir.join("db"));
    let db = DB::open_with(options.clone())?; // creates `dir` too
    db.put("item:000001", "old price")?;
    let before = db.snapshot();

    let mut writer = SstWriter::create(dir.join("load.sst"), &options)?;
    for i in 0..100_000 {
        writer.put(format!("item:{i:06}"), format!("price {}", i % 100))?; // ascending
    }
    let info = writer.finish()?;
    db.ingest(&[&info.path], IngestOptions::default())?; // all or nothing
    let now = db.get("item:000001")?; // the file's value: newer than every write
    let then = before.get("item:000001")?; // the snapshot still sees the old one
    println!("{} entries; now {now:?}, snapshot {then:?}", info.entries);
    Ok(())
}
