//! CreateSecurityProfile request bodies, validated as the admin API does.
//! The invariants checked are documented on the `fuzz_check` called here.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wardmq_defender::catalog::fuzz_check(data);
});
