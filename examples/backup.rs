//! Incremental backups: back up a live database twice (the second copies
//! only new table files), verify, restore, and keep the newest.
//!
//! Run with `cargo run --example backup [DIR]` (DIR must not exist).

use aidb::{BackupEngine, DB};

fn main() -> aidb::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("backup-demo".into()));
    let db = DB::open(dir.join("db"))?;
    let mut engine = BackupEngine::open(dir.join("backups"))?;
    for round in 0..3 {
        for i in 0..10_000 {
            db.put(format!("round{round}:{i:05}"), "some value")?;
        }
        db.flush()?; // table files are shared between backups
        let b = engine.create_backup(&db)?;
        println!("backup {}: {} files, {} bytes", b.id, b.file_count, b.size);
    }
    engine.purge_old(2)?; // keep the newest two; unused files are removed
    let newest = engine.backups().last().map_or(0, |b| b.id);
    engine.verify(newest)?; // every file's checksum
    engine.restore(newest, dir.join("restored"))?; // into a new directory
    let restored = DB::open(dir.join("restored"))?;
    println!("restored {} keys", restored.iter().count());
    Ok(())
}
