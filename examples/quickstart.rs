//! Open a database on disk, write, read, delete, and scan.
//!
//! Run with `cargo run --release --example quickstart [DIR]`.

fn main() -> aidb::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart-db".into());
    let db = aidb::DB::open(&dir)?;

    db.put("user:1", "alice")?;
    db.put("user:2", "bob")?;
    println!("user:1 = {:?}", db.get("user:1")?.map(String::from_utf8));

    db.delete("user:2")?;
    assert_eq!(db.get("user:2")?, None);

    for item in db.prefix("user:") {
        let (key, value) = item?;
        println!(
            "{} => {}",
            String::from_utf8_lossy(&key),
            String::from_utf8_lossy(&value)
        );
    }
    db.close()?;
    println!("database kept in {dir}/ — run again to see the data survive");
    Ok(())
}
