//! AWS IoT policy documents: parsed, re-parsed from their compact form, evaluated.
//! The invariants checked are documented on the `fuzz_check` called here.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wardmq_broker::authz::fuzz_check(data);
});
