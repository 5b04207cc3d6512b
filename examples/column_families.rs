//! Column families: separate keyspaces in one database, written together
//! atomically and read through one snapshot.
//!
//! Run with `cargo run --example column_families [DIR]`.

use aidb::{ColumnFamilyOptions, WriteBatch, DB};

fn main() -> aidb::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "cf-db".into());
    let db = DB::open(&dir)?; // opens every family the database has
    let users = match db.column_family("users") {
        Some(cf) => cf,
        None => db.create_column_family("users", ColumnFamilyOptions::default())?,
    };
    let mut batch = WriteBatch::new(); // one batch, atomic across families
    batch.put_cf(&users, "alice", "admin").put("count", "1");
    db.write(batch)?;

    let snapshot = db.snapshot(); // consistent across families
    let alice = snapshot.get_cf(&users, "alice")?;
    println!("families: {:?}", db.column_family_names());
    println!("users/alice = {:?}", alice.map(String::from_utf8));
    println!("default/alice = {:?}", db.get("alice")?);
    Ok(())
}
