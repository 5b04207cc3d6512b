//! Transfers between accounts in transactions: four threads, retried on
//! conflict, and the total never changes.
//!
//! Run with `cargo run --example transactions [DIR]`.

use aidb::{Result, DB};
use std::sync::Arc;
use std::thread::JoinHandle;

fn balance(v: Option<Vec<u8>>) -> i64 {
    v.map_or(0, |v| {
        i64::from_le_bytes(v.try_into().expect("8-byte balance"))
    })
}

/// Moves `amount` from `from` to `to`, atomically; runs again on conflict.
fn transfer(db: &DB, from: &str, to: &str, amount: i64) -> Result<()> {
    loop {
        let mut txn = db.transaction();
        // get_for_update: a concurrent change of these keys fails the commit.
        let a = balance(txn.get_for_update(from)?);
        let b = balance(txn.get_for_update(to)?);
        txn.put(from, (a - amount).to_le_bytes())?;
        txn.put(to, (b + amount).to_le_bytes())?;
        match txn.commit() {
            Err(e) if e.is_retryable() => continue, // Error::Conflict
            done => return done,
        }
    }
}

/// The sum of both balances.
fn total(db: &DB) -> Result<i64> {
    Ok(balance(db.get("alice")?) + balance(db.get("bob")?))
}

/// Thread `i`: 50 transfers of `i + 1`, one way or the other.
fn spawn_transfers(db: Arc<DB>, i: i64) -> JoinHandle<Result<()>> {
    let (from, to) = if i % 2 == 0 {
        ("alice", "bob")
    } else {
        ("bob", "alice")
    };
    std::thread::spawn(move || (0..50).try_for_each(|_| transfer(&db, from, to, i + 1)))
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1);
    let db = Arc::new(DB::open(dir.as_deref().unwrap_or("transactions-db"))?);
    if db.get("alice")?.is_none() {
        let mut txn = db.transaction();
        txn.put("alice", 100i64.to_le_bytes())?;
        txn.put("bob", 100i64.to_le_bytes())?;
        txn.commit()?; // both accounts, or neither
    }
    let before = total(&db)?;
    let threads: Vec<_> = (0..4).map(|i| spawn_transfers(db.clone(), i)).collect();
    for t in threads {
        t.join().expect("transfer thread panicked")?;
    }
    let (alice, bob) = (balance(db.get("alice")?), balance(db.get("bob")?));
    println!("alice {alice}, bob {bob}, total {} as before", alice + bob);
    assert_eq!(total(&db)?, before, "money appeared or vanished");
    Ok(())
}
