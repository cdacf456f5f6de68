//! Any text as a form body or query string (the webhooks' parameters): parameters or a
//! rejection with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsreport_core::gateway::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Params::parse(text) {
        Ok(p) => {
            let _ = p.get("MessageStatus");
        }
        Err(r) => assert!(!r.reason.is_empty()),
    }
});
