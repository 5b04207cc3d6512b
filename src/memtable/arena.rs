//! Bump allocation for one memtable's skiplist nodes.
//!
//! A memtable only grows until it is flushed and dropped whole, so its
//! nodes need no individual frees: carving them out of large chunks
//! replaces one `malloc` per entry (and one `free` per entry when the
//! flushed memtable goes, often on another thread) with a pointer bump,
//! and packs the nodes densely so that a full memtable holds more
//! entries.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Every allocation is aligned to this (the node's atomic pointers).
pub(super) const ALIGN: usize = 8;

/// The first chunk is small, so that a tiny memtable (tests, idle column
/// families) costs little; each next one doubles up to `MAX_CHUNK`.
const FIRST_CHUNK: usize = 4 << 10;
const MAX_CHUNK: usize = 1 << 20;

/// Allocations larger than this get a chunk of their own, so that a large
/// value does not waste the rest of a shared chunk.
const OWN_CHUNK_ABOVE: usize = MAX_CHUNK / 4;

/// The chunks of one memtable. Not thread-safe by itself: the skiplist
/// keeps it behind its writer lock. Memory handed out stays valid, at a
/// fixed address, until the arena drops.
pub(super) struct Arena {
    /// Every chunk allocated, to free them on drop. Raw pointers rather
    /// than `Box`es: readers on other threads read memory inside them
    /// while the writer holds `&mut Arena`, which a `Box` (asserting
    /// unique access to its contents) would not allow.
    chunks: Vec<(NonNull<u8>, Layout)>,
    /// Free space left in the current chunk, starting at `next`.
    next: *mut u8,
    left: usize,
    next_chunk: usize,
    /// Bytes handed out, plus those left unused at the end of a chunk
    /// when a new one was started.
    used: usize,
}

// SAFETY: the arena owns its chunks (plain bytes); moving it to another
// thread moves that ownership. Shared access goes through the skiplist,
// which serialises the writer and gives readers only published nodes.
unsafe impl Send for Arena {}

impl Arena {
    pub(super) fn new() -> Arena {
        Arena {
            chunks: Vec::new(),
            next: std::ptr::null_mut(),
            left: 0,
            next_chunk: FIRST_CHUNK,
            used: 0,
        }
    }

    /// `size` bytes aligned to [`ALIGN`], uninitialised.
    pub(super) fn allocate(&mut self, size: usize) -> NonNull<u8> {
        let size = size.next_multiple_of(ALIGN);
        if size > self.left {
            if size > OWN_CHUNK_ABOVE {
                self.used += size;
                return self.new_chunk(size);
            }
            // What is left of the current chunk is given up.
            self.used += self.left;
            while self.next_chunk < size {
                self.next_chunk *= 2;
            }
            let chunk_size = self.next_chunk;
            self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
            self.next = self.new_chunk(chunk_size).as_ptr();
            self.left = chunk_size;
        }
        let at = self.next;
        // SAFETY: `size <= left`, so both stay inside the current chunk.
        self.next = unsafe { self.next.add(size) };
        self.left -= size;
        self.used += size;
        // SAFETY: `at` points into a live chunk, so it is not null.
        unsafe { NonNull::new_unchecked(at) }
    }

    fn new_chunk(&mut self, size: usize) -> NonNull<u8> {
        let layout = match Layout::from_size_align(size, ALIGN) {
            Ok(l) => l,
            // Only for sizes near isize::MAX, which no entry reaches
            // (keys, values and batches are limited far below that).
            Err(_) => handle_alloc_error(Layout::new::<u64>()),
        };
        // SAFETY: `size` is non-zero (callers allocate a node header at
        // least).
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        self.chunks.push((ptr, layout));
        ptr
    }

    /// Bytes used, counting chunk tails given up.
    pub(super) fn used(&self) -> usize {
        self.used
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for &(ptr, layout) in &self.chunks {
            // SAFETY: allocated in `new_chunk` with this layout, freed once.
            unsafe { dealloc(ptr.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_counted() {
        let mut a = Arena::new();
        let mut spans = Vec::new();
        for size in [1usize, 7, 8, 9, 100, 3000, 5000, 70_000, 300_000, 16] {
            let ptr = a.allocate(size).as_ptr();
            let p = ptr as usize;
            assert_eq!(p % ALIGN, 0);
            // Writable over its whole length.
            unsafe { std::ptr::write_bytes(ptr, 0xab, size) };
            spans.push((p, p + size));
        }
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping allocations {w:?}");
        }
        let asked: usize = [1usize, 7, 8, 9, 100, 3000, 5000, 70_000, 300_000, 16]
            .iter()
            .map(|s| s.next_multiple_of(ALIGN))
            .sum();
        assert!(a.used() >= asked);
        // Tails given up are bounded by the chunks started.
        assert!(a.used() < asked + FIRST_CHUNK * 2 + MAX_CHUNK);
    }
}
