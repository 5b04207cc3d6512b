//! Synced writes survive a power cut once the call returns; every write
//! survives closing and reopening the database.
//!
//! Run with `cargo run --example durability [DIR]`.

use aidb::{WriteBatch, WriteOptions, DB};

fn main() -> aidb::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "durability-db".into());
    {
        let db = DB::open(&dir)?;
        let mut batch = WriteBatch::new();
        batch.put("order:42", "paid").put("stock:widget", "9");
        db.write_opt(batch, &WriteOptions { sync: true })?; // fsynced before returning
        db.put("note", "unsynced, but safe from a process crash")?;
        db.close()?; // clean close: everything is durable
    }
    let db = DB::open(&dir)?;
    for key in ["order:42", "stock:widget", "note"] {
        let value = db
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        println!("{key} = {value:?}");
    }
    Ok(())
}
