//! A counter many threads bump without fighting over one cache line.

use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 16;

#[repr(align(64))]
#[derive(Default)]
struct Stripe(AtomicU64);

/// Sum of per-stripe counters, so concurrent readers on the hot path do
/// not contend. The first threads of the process to count each own a
/// stripe (the same one in every counter) and bump it with a plain load
/// and store: no other thread writes it, and an atomic read-modify-write
/// (a locked instruction, which waits for the store buffer to drain) was
/// two fifths of a table lookup that a bloom filter ruled out. Threads
/// after those share the last stripe and add atomically.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

/// The stripe shared by threads that own none.
const SHARED: usize = STRIPES - 1;

thread_local! {
    static STRIPE: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed).min(SHARED)
    };
}

/// This thread's stripe, in `0..16`: other striped structures (the
/// statistics histograms) use it too.
pub(crate) fn stripe_index() -> usize {
    STRIPE.with(|s| *s)
}

impl StripedCounter {
    pub(crate) fn add(&self, n: u64) {
        self.add_at(stripe_index(), n);
    }

    /// Adds `n` on stripe `i`, which the calling thread owns unless it is
    /// the shared one.
    fn add_at(&self, i: usize, n: u64) {
        let stripe = &self.stripes[i].0;
        if i == SHARED {
            stripe.fetch_add(n, Ordering::Relaxed);
        } else {
            // Only this thread writes its stripe: readers see the old sum
            // or the new one, and no addition is lost.
            stripe.store(stripe.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Both ways of adding, at once: one thread on each owned stripe, and
    /// many on the shared one (which must add atomically: with a plain
    /// load and store there it loses additions).
    #[test]
    fn owned_and_shared_stripes_lose_nothing() {
        const ADDS: u64 = 1_000_000;
        let c = Arc::new(StripedCounter::default());
        let threads = SHARED + 8;
        let start = Arc::new(std::sync::Barrier::new(threads));
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (c, start) = (c.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..ADDS).for_each(|_| c.add_at(t.min(SHARED), 1))
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.get(), threads as u64 * ADDS);
    }

    #[test]
    fn sums_across_threads() {
        let c = Arc::new(StripedCounter::default());
        // More threads than stripes: some own one, the rest share.
        let hs: Vec<_> = (0..40)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..10_000).for_each(|_| c.add(1)))
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.get(), 400_000);
    }
}
