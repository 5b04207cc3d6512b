//! Range deletes: remove every key in `start..end` with one small write.
//!
//! Run with `cargo run --example range_delete [DIR]`.

use aidb::{WriteBatch, DB};

fn main() -> aidb::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "range-db".into());
    let db = DB::open(&dir)?;
    for i in 0..1000 {
        db.put(format!("log/{i:04}"), format!("entry {i}"))?;
    }
    let before = db.snapshot(); // still sees everything
    db.delete_range("log/0000".."log/0990")?; // end is exclusive

    let mut batch = WriteBatch::new(); // also atomic with other writes
    batch
        .delete_range("log/0995".."log/0998")
        .put("log/gc", "x");
    db.write(batch)?;

    let left = db.prefix("log/").count();
    let kept = before.get("log/0001")?.is_some();
    println!("{left} keys left; the snapshot still has log/0001: {kept}");
    db.compact_range(..)?; // drops covered entries once no snapshot needs them
    Ok(())
}
