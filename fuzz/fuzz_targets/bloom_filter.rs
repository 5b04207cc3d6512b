#![no_main]
//! Arbitrary bytes as a bloom filter block, and filters built from
//! arbitrary keys: a panic, or a built filter ruling out one of its own
//! keys, is a bug.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aidb::internals::bloom(data);
});
