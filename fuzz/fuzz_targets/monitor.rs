//! Monitoring reports (the body of `POST /v1/monitoring/reports`).
//!
//! Promise checked: whatever decodes re-encodes to JSON that decodes to the same message, and that
//! encoding is stable (`mc_fuzz::json_roundtrip`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_fuzz::json_roundtrip;

fuzz_target!(|body: &[u8]| {
    json_roundtrip::<mc_wire::monitor::Report>(body);
});
