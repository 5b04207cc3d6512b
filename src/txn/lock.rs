//! Key locks for pessimistic transactions, with timeouts and deadlock
//! detection.
//!
//! A lock is exclusive and belongs to one transaction (by id) until it
//! releases it at commit, rollback or drop. The locks are spread over
//! shards, each a map from (family id, key) to the owner with a condition
//! variable that waiters of the shard sleep on.
//!
//! Deadlocks are found with a wait-for graph: a transaction about to wait
//! records the edge "I wait for the owner" and follows the owners' edges;
//! if the chain comes back to it, waiting would never end, and it gets
//! `Error::Deadlock` instead (the transaction that closes a cycle gives
//! way; the others keep waiting and get the lock once it is dropped).
//! Adding the edge and following the chain happen under one mutex, so of
//! two transactions closing a cycle at the same time the second sees the
//! first's edge. A transaction waits for one lock at a time, so each has
//! at most one edge. When a lock is released, the edges of its waiters
//! are removed with it (they wait for nobody until they look again), so a
//! stale edge never makes a false cycle.

use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SHARDS: usize = 32;

type LockKey = (u32, Vec<u8>);

#[derive(Default)]
struct Shard {
    /// Lock → owning transaction.
    owners: Mutex<HashMap<LockKey, u64>>,
    /// Signalled when a lock of the shard is released.
    released: Condvar,
}

/// What a waiting transaction waits for.
struct Wait {
    owner: u64,
    key: LockKey,
}

/// The lock table of one database.
#[derive(Default)]
pub(crate) struct LockManager {
    shards: [Shard; SHARDS],
    /// The wait-for graph: waiting transaction → what it waits for. Lock
    /// order: a shard's `owners` before this.
    waits: Mutex<HashMap<u64, Wait>>,
    /// Number of entries in `waits`, so that releasing a lock nobody
    /// waits for does not take the `waits` mutex.
    waiting: AtomicUsize,
}

fn shard_of(family: u32, key: &[u8]) -> usize {
    // FNV-1a: a cheap, stable spread; the keys are not adversarial here
    // (a collision only shares a condition variable).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in family.to_le_bytes().iter().chain(key) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

impl LockManager {
    /// Locks (`family`, `key`) for transaction `txn`, waiting up to
    /// `timeout`. Returns whether the lock is new (false: `txn` held it
    /// already). `Error::Busy` when the time is up, `Error::Deadlock` when
    /// `detect` is set and waiting would close a cycle.
    pub(crate) fn lock(
        &self,
        txn: u64,
        family: u32,
        key: &[u8],
        timeout: Duration,
        detect: bool,
    ) -> Result<bool> {
        let shard = &self.shards[shard_of(family, key)];
        let lock_key: LockKey = (family, key.to_vec());
        let deadline = Instant::now().checked_add(timeout);
        let mut owners = shard.owners.lock();
        let mut waited = false;
        let outcome = loop {
            let owner = match owners.get(&lock_key) {
                None => {
                    owners.insert(lock_key.clone(), txn);
                    break Ok(true);
                }
                Some(&o) if o == txn => break Ok(false),
                Some(&o) => o,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Err(Error::Busy);
            }
            waited = true;
            if self.wait_for(txn, owner, &lock_key, detect) {
                break Err(Error::Deadlock);
            }
            match deadline {
                Some(d) => {
                    shard.released.wait_until(&mut owners, d);
                }
                None => shard.released.wait(&mut owners),
            }
        };
        if waited {
            self.stop_waiting(txn);
        }
        outcome
    }

    /// Records that `txn` waits for `owner`'s lock on `key`; with `detect`,
    /// returns true (recording nothing) when `owner` waits, directly or
    /// through others, for `txn`.
    fn wait_for(&self, txn: u64, owner: u64, key: &LockKey, detect: bool) -> bool {
        let mut waits = self.waits.lock();
        if detect {
            let mut next = owner;
            // Each transaction has at most one edge: a chain longer than
            // the graph has gone round a cycle that does not include us.
            for _ in 0..=waits.len() {
                if next == txn {
                    return true;
                }
                match waits.get(&next) {
                    Some(w) => next = w.owner,
                    None => break,
                }
            }
        }
        let wait = Wait {
            owner,
            key: key.clone(),
        };
        if waits.insert(txn, wait).is_none() {
            self.waiting.fetch_add(1, Ordering::Relaxed);
        }
        false
    }

    fn stop_waiting(&self, txn: u64) {
        let mut waits = self.waits.lock();
        if waits.remove(&txn).is_some() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Releases `txn`'s lock on (`family`, `key`) and wakes its waiters.
    pub(crate) fn unlock(&self, txn: u64, family: u32, key: &[u8]) {
        let shard = &self.shards[shard_of(family, key)];
        let mut owners = shard.owners.lock();
        let lock_key: LockKey = (family, key.to_vec());
        if owners.get(&lock_key) != Some(&txn) {
            return;
        }
        owners.remove(&lock_key);
        // A waiter registered its edge while holding this shard's mutex and
        // seeing the lock held, so its count is visible here.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            let mut waits = self.waits.lock();
            let before = waits.len();
            waits.retain(|_, w| !(w.owner == txn && w.key == lock_key));
            self.waiting
                .fetch_sub(before - waits.len(), Ordering::Relaxed);
        }
        drop(owners);
        shard.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn relock_is_free_and_timeout_is_busy() {
        let m = LockManager::default();
        assert!(m.lock(1, 0, b"k", LONG, true).unwrap());
        assert!(!m.lock(1, 0, b"k", LONG, true).unwrap());
        // Same key, another family: another lock.
        assert!(m.lock(2, 1, b"k", LONG, true).unwrap());
        let start = Instant::now();
        assert!(matches!(
            m.lock(2, 0, b"k", Duration::from_millis(30), true),
            Err(Error::Busy)
        ));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(matches!(
            m.lock(2, 0, b"k", Duration::ZERO, true),
            Err(Error::Busy)
        ));
        m.unlock(1, 0, b"k");
        assert!(m.lock(2, 0, b"k", Duration::ZERO, true).unwrap());
        assert_eq!(m.waits.lock().len(), 0);
    }

    #[test]
    fn a_waiter_gets_the_lock_when_it_is_released() {
        let m = Arc::new(LockManager::default());
        m.lock(1, 0, b"k", LONG, true).unwrap();
        let m2 = m.clone();
        let waiter = std::thread::spawn(move || m2.lock(2, 0, b"k", LONG, true));
        while m.waiting.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        m.unlock(1, 0, b"k");
        assert!(waiter.join().unwrap().unwrap());
        assert_eq!(m.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_cycle_of_three_is_a_deadlock_for_the_one_closing_it() {
        let m = Arc::new(LockManager::default());
        for (t, k) in [(1, b"a"), (2, b"b"), (3, b"c")] {
            m.lock(t, 0, k, LONG, true).unwrap();
        }
        // 1 waits for 2, 2 waits for 3: no cycle yet.
        let spawn = |t: u64, k: &'static [u8]| {
            let m = m.clone();
            std::thread::spawn(move || m.lock(t, 0, k, LONG, true))
        };
        let w1 = spawn(1, b"b");
        while m.waiting.load(Ordering::Relaxed) < 1 {
            std::thread::yield_now();
        }
        let w2 = spawn(2, b"c");
        while m.waiting.load(Ordering::Relaxed) < 2 {
            std::thread::yield_now();
        }
        // 3 waiting for 1 closes the cycle.
        assert!(matches!(
            m.lock(3, 0, b"a", LONG, true),
            Err(Error::Deadlock)
        ));
        // 3 gives way: its lock goes to 2, then 2's to 1.
        m.unlock(3, 0, b"c");
        assert!(w2.join().unwrap().unwrap());
        m.unlock(2, 0, b"b");
        m.unlock(2, 0, b"c");
        assert!(w1.join().unwrap().unwrap());
        // Without detection the same wait just times out.
        m.lock(3, 0, b"x", LONG, true).unwrap();
        assert!(matches!(
            m.lock(1, 0, b"x", Duration::from_millis(10), false),
            Err(Error::Busy)
        ));
    }
}
