//! Open a database on disk, write, read, delete, and scan.
//!
//! Run with `cargo run --release --example quickstart [DIR]`.

use std::borrow::Cow;

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn main() -> aidb::Result<()> {
    let dir = std::env::args().nth(1);
    let dir = dir.as_deref().unwrap_or("quickstart-db");
    let db = aidb::DB::open(dir)?;

    db.put("user:1", "alice")?;
    db.put("user:2", "bob")?;
    println!("user:1 = {}", text(&db.get("user:1")?.unwrap_or_default()));

    db.delete("user:2")?;
    assert_eq!(db.get("user:2")?, None);

    for item in db.prefix("user:") {
        let (key, value) = item?;
        println!("{} => {}", text(&key), text(&value));
    }
    db.close()?;
    println!("database kept in {dir}/; run again to see the data survive");
    Ok(())
}
