//! Atomic multi-key update: move money between two accounts in one batch.
//!
//! Run with `cargo run --example batch [DIR]`.

use aidb::{WriteBatch, DB};

fn balance(db: &DB, account: &str) -> aidb::Result<i64> {
    let raw = db.get(account)?.unwrap_or_else(|| b"0".to_vec());
    Ok(String::from_utf8_lossy(&raw).parse().unwrap_or(0))
}

fn main() -> aidb::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "batch-db".into());
    let db = DB::open(&dir)?;
    db.put("alice", "100")?;
    db.put("bob", "50")?;

    // Both updates become visible together; after a crash, both or neither.
    let (from, to) = (balance(&db, "alice")?, balance(&db, "bob")?);
    let mut batch = WriteBatch::new();
    batch
        .put("alice", (from - 30).to_string())
        .put("bob", (to + 30).to_string());
    db.write(batch)?;

    println!(
        "alice = {}, bob = {}",
        balance(&db, "alice")?,
        balance(&db, "bob")?
    );
    Ok(())
}
