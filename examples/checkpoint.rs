//! Checkpoints: an openable copy of a live database, made of hard links.
//!
//! Run with `cargo run --example checkpoint [DIR]` (DIR must not exist).

use aidb::DB;

fn main() -> aidb::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("ckpt-demo".into()));
    let db = DB::open(dir.join("db"))?;
    for i in 0..10_000 {
        db.put(format!("user:{i:05}"), format!("profile {i}"))?;
    }
    db.flush()?; // tables are linked, not copied; the log is copied
    db.put("user:00000", "changed after the checkpoint")?;
    db.checkpoint(dir.join("checkpoint"))?; // a consistent copy, writes go on
    db.put("user:00001", "not in the checkpoint")?;

    let copy = DB::open(dir.join("checkpoint"))?; // a database of its own
    let first = copy.get("user:00000")?.unwrap_or_default();
    println!(
        "checkpoint has {} keys; user:00000 = {}",
        copy.iter().count(),
        String::from_utf8_lossy(&first)
    );
    Ok(())
}
