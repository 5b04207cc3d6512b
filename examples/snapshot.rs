//! Consistent reads while writes continue.
//!
//! Run with `cargo run --example snapshot [DIR]`.

use aidb::DB;
use std::sync::Arc;

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn main() -> aidb::Result<()> {
    let dir = std::env::args().nth(1);
    let db = Arc::new(DB::open(dir.as_deref().unwrap_or("snapshot-db"))?);
    db.put("counter", "0")?;

    let snapshot = db.snapshot();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || (1..=1000).try_for_each(|i| db.put("counter", i.to_string())))
    };
    writer.join().expect("writer thread panicked")?;

    let frozen = snapshot.get("counter")?.unwrap_or_default();
    let live = db.get("counter")?.unwrap_or_default();
    println!("snapshot: {}, now: {}", text(&frozen), text(&live));
    assert_eq!(frozen, b"0");
    Ok(())
}
