//! Transactions: [`Transaction`] and [`TransactionOptions`].
//!
//! A transaction reads a snapshot taken when it starts, overlaid with its
//! own pending writes (`write_set`, merged into iterators by `iter`), and
//! commits them as one write batch: one log record, atomic across column
//! families, durable as any batch.
//!
//! Conflicts are found at commit by the write path (`db::conflict`): each
//! key the transaction wrote or read with `get_for_update` carries the
//! sequence number after which no other write may have changed it — the
//! snapshot's for an optimistic transaction, the one current when the lock
//! was taken for a pessimistic one — and the commit-group leader checks
//! them with the log lock held, just before it appends the batch. A
//! pessimistic transaction also locks those keys (`lock`), so other
//! pessimistic transactions wait for it instead of conflicting with it.
//!
//! The isolation this gives, stated precisely in docs/transactions.md:
//! snapshot isolation, with
//! `get_for_update` to take a read into the conflict check (which makes a
//! transaction that reads everything it depends on that way serializable).

mod iter;
mod lock;
mod transaction;
mod write_set;

pub(crate) use lock::LockManager;
pub use transaction::Transaction;

use crate::db::DB;
use std::time::Duration;

/// How a transaction detects conflicts; see [`DB::transaction_with`].
///
/// ```
/// # fn main() -> aidb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = aidb::DB::open(dir.path())?;
/// let mut txn = db.transaction_with(aidb::TransactionOptions {
///     pessimistic: true,
///     lock_timeout: std::time::Duration::from_millis(100),
///     ..Default::default()
/// });
/// let n = txn.get_for_update("n")?; // locked until commit or drop
/// txn.put("n", if n.is_some() { "more" } else { "one" })?;
/// txn.commit()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionOptions {
    /// `false` (the default): optimistic. Nothing is locked; the commit
    /// fails with [`Error::Conflict`](crate::Error::Conflict) if another
    /// commit after the transaction's start changed a key it wrote or read
    /// with `get_for_update`. Best when conflicts are rare.
    ///
    /// `true`: pessimistic. Each key is locked when the transaction first
    /// writes it or reads it with `get_for_update` (which then reads the
    /// newest committed value, not the snapshot), and stays locked until
    /// commit, rollback or drop; other pessimistic transactions wait for
    /// the lock. Best when transactions often touch the same keys.
    pub pessimistic: bool,
    /// How long a pessimistic transaction waits for a lock another one
    /// holds before the operation fails with
    /// [`Error::Busy`](crate::Error::Busy). Default 1 second;
    /// `Duration::ZERO` fails at once; `Duration::MAX` waits for ever
    /// (only sensible with `deadlock_detect`).
    pub lock_timeout: Duration,
    /// Whether a pessimistic transaction about to wait checks that the
    /// wait can end: if the lock's owner waits, directly or through
    /// others, for a lock this transaction holds, the operation fails at
    /// once with [`Error::Deadlock`](crate::Error::Deadlock). Default
    /// `true`. With `false`, a deadlock lasts until `lock_timeout` and
    /// ends in `Busy`.
    pub deadlock_detect: bool,
}

impl Default for TransactionOptions {
    fn default() -> TransactionOptions {
        TransactionOptions {
            pessimistic: false,
            lock_timeout: Duration::from_secs(1),
            deadlock_detect: true,
        }
    }
}

impl DB {
    /// Starts an optimistic transaction (see [`Transaction`]): it reads a
    /// snapshot taken now plus its own writes, and its
    /// [`commit`](Transaction::commit) fails with
    /// [`Error::Conflict`](crate::Error::Conflict), writing nothing, if
    /// another commit since changed a key it wrote or read with
    /// [`get_for_update`](Transaction::get_for_update).
    ///
    /// ```
    /// # fn main() -> aidb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = aidb::DB::open(dir.path())?;
    /// db.put("alice", "10")?;
    /// let mut txn = db.transaction();
    /// let balance: u64 = String::from_utf8_lossy(&txn.get_for_update("alice")?.unwrap()).parse().unwrap();
    /// txn.put("alice", (balance - 3).to_string())?;
    /// txn.put("bob", "3")?;
    /// assert_eq!(db.get("bob")?, None); // not yet committed
    /// txn.commit()?; // both writes, atomically
    /// assert_eq!(db.get("alice")?, Some(b"7".to_vec()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn transaction(&self) -> Transaction {
        self.transaction_with(TransactionOptions::default())
    }

    /// Starts a transaction with `options`: optimistic or pessimistic, and
    /// how pessimistic lock waits end (see [`TransactionOptions`]).
    pub fn transaction_with(&self, options: TransactionOptions) -> Transaction {
        Transaction::new(self.inner().clone(), options)
    }
}
