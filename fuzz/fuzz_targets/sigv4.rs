//! Admin API requests (raw HTTP/1.1) through SigV4 verification.
//! The invariants checked are documented on the `fuzz_check` called here.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wardmq::sigv4::fuzz_check(data);
});
