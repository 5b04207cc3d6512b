#![no_main]
//! Arbitrary bytes through one of AiDb's decoders: errors are fine, a
//! panic, hang or out-of-bounds read is a bug.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aidb::internals::block(data);
});
