//! A merge operator: counters updated with `merge`, without reading first.
//!
//! Run with `cargo run --example merge_counter [DIR]`.

use aidb::{MergeOperator, Options, DB};
use std::sync::Arc;

/// Adds little-endian `u64` operands to the existing value.
struct Add;

impl MergeOperator for Add {
    fn name(&self) -> &str {
        "add_u64"
    }
    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
        let mut sum = existing.map_or(Some(0), decode)?;
        for op in ops {
            sum = sum.wrapping_add(decode(op)?);
        }
        Some(sum.to_le_bytes().to_vec())
    }
    fn partial_merge(&self, key: &[u8], ops: &[&[u8]]) -> Option<Vec<u8>> {
        self.full_merge(key, None, ops)
    }
}

/// `None` (not 8 bytes) makes the read fail with `Error::Merge`.
fn decode(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn main() -> aidb::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "merge-db".into());
    let options = Options {
        merge_operator: Some(Arc::new(Add)),
        ..Options::new(&dir)
    };
    let db = DB::open_with(options)?;
    for page in ["home", "about", "home", "home"] {
        db.merge(format!("hits/{page}"), 1u64.to_le_bytes())?;
    }
    db.flush()?; // operands fold across memtable and tables alike
    db.merge("hits/home", 10u64.to_le_bytes())?;
    for (key, value) in db.prefix("hits/").map(|r| r.unwrap()) {
        let count = decode(&value).expect("counters are u64");
        println!("{} = {count}", String::from_utf8_lossy(&key));
    }
    Ok(())
}
