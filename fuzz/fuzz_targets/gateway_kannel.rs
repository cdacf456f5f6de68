//! Any bytes as one Kannel line (`smsreport ingest --format kannel`, the webhook): a callback
//! whose events are valid, or a rejection with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsreport_core::gateway::{parse_callback, LineFormat, Region};
use smsreport_core::Millis;

fuzz_target!(|data: &[u8]| {
    let received = Millis::parse("2026-03-01T09:00:00Z").unwrap();
    match parse_callback(LineFormat::Kannel, data, received, Region::parse("LV").ok()) {
        Ok(parsed) => {
            let event = parsed.callback.event(parsed.campaign_id.as_deref());
            assert!(matches!(event, smsreport_core::Event::Status(_)));
        }
        Err(r) => assert!(!r.reason.is_empty()),
    }
});
