//! Range, prefix and reverse scans.
//!
//! Run with `cargo run --example iterator [DIR]`.

use aidb::DB;

fn show(
    label: &str,
    iter: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>,
) -> aidb::Result<()> {
    let keys: Vec<String> = iter
        .map(|kv| kv.map(|(k, _)| String::from_utf8_lossy(&k).into_owned()))
        .collect::<aidb::Result<_>>()?;
    println!("{label:<24} {keys:?}");
    Ok(())
}

fn main() -> aidb::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "iterator-db".into());
    let db = DB::open(&dir)?;
    for key in ["apple", "apricot", "banana", "blueberry", "cherry"] {
        db.put(key, key.len().to_string())?;
    }
    show("everything", db.iter())?;
    show("range b..c", db.range("b".."c"))?;
    show("prefix \"ap\"", db.prefix("ap"))?;
    show("reverse from cherry", db.range(..="cherry").rev())?;
    let mut it = db.iter();
    it.seek("banana");
    show("after seek(banana)", it)?;
    Ok(())
}
