//! Any bytes as one NDJSON line: an event or a rejection with a reason, never a panic.
//! What parses is applied by the engine, which answers one outcome for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsreport_core::engine::{apply, Loaded};
use smsreport_core::event::parse_event;

fuzz_target!(|data: &[u8]| {
    match parse_event(data) {
        Ok(event) => {
            let (outcomes, _) = apply(Loaded::default(), std::slice::from_ref(&event));
            assert_eq!(outcomes.len(), 1);
        }
        Err(r) => assert!(!r.reason.is_empty()),
    }
});
