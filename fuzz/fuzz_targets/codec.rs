//! Decodes arbitrary bytes as a fresh, a 3.1.1 and a 5.0 connection; every
//! packet that decodes must re-encode and decode to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wardmq_broker::codec::roundtrip_check(data);
});
