#![no_main]
//! Arbitrary bytes as a table's range deletions block: errors are fine; a
//! panic (including the round-trip and re-fragmenting checks inside the
//! hook), hang or out-of-bounds read is a bug.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aidb::internals::range_deletions(data);
});
