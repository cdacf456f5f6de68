//! Any text as a callback's recipient, read with a region and without: nothing or an
//! E.164 number, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsreport_core::event::is_e164;
use smsreport_core::gateway::{read_recipient, Region};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for region in [None, Region::parse("LV").ok(), Region::parse("US").ok()] {
        if let Some(n) = read_recipient(Some(text), region) {
            assert!(is_e164(&n), "{text:?} read as {n:?}");
        }
    }
});
