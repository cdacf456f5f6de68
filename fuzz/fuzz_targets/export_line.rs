//! Any bytes as one line `ingest` takes, an export's `tracked_link` lines included: an
//! event or a tracked link that meets every field rule, or a rejection with a reason,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsreport_core::event::{is_e164, parse_line, Parsed};
use smsreport_core::forget::is_token;

fuzz_target!(|data: &[u8]| {
    match parse_line(data) {
        Ok(Parsed::TrackedLink(t)) => {
            assert!(!t.code.is_empty() && t.code.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(is_e164(&t.recipient) || is_token(&t.recipient));
        }
        Ok(Parsed::Event(_)) => {}
        Err(r) => assert!(!r.reason.is_empty()),
    }
});
