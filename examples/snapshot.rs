//! Consistent reads while writes continue.
//!
//! Run with `cargo run --example snapshot [DIR]`.

use aidb::DB;
use std::sync::Arc;

fn main() -> aidb::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "snapshot-db".into());
    let db = Arc::new(DB::open(&dir)?);
    db.put("counter", "0")?;

    let snapshot = db.snapshot();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || (1..=1000).try_for_each(|i| db.put("counter", i.to_string())))
    };
    writer.join().expect("writer thread panicked")?;

    let frozen = snapshot.get("counter")?.unwrap_or_default();
    let live = db.get("counter")?.unwrap_or_default();
    println!(
        "snapshot sees {}, database now holds {}",
        String::from_utf8_lossy(&frozen),
        String::from_utf8_lossy(&live)
    );
    assert_eq!(frozen, b"0");
    Ok(())
}
