//! Device Defender metrics reports sent on the JSON topic.
//! The invariants checked are documented on the `fuzz_check` called here.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wardmq_defender::report::ReportFormat;

fuzz_target!(|data: &[u8]| {
    wardmq_defender::report::fuzz_check(ReportFormat::Json, data);
});
