//! Any body split into lines: no line holds a `\n`, none is blank, numbers ascend, no
//! line is longer than the limit, and every line parses or is rejected with a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsreport_core::event::parse_event;
use smsreport_core::ingest::{is_blank, split_lines, MAX_LINE_BYTES};

fuzz_target!(|data: &[u8]| {
    let lines = split_lines(data);
    let mut last = 0;
    for l in &lines {
        assert!(l.number > last, "line numbers ascend");
        last = l.number;
        assert!(!l.bytes.contains(&b'\n'));
        assert!(l.bytes.len() <= MAX_LINE_BYTES);
        if l.overlong.is_none() {
            assert!(!is_blank(&l.bytes));
            if let Err(r) = parse_event(&l.bytes) {
                assert!(!r.reason.is_empty());
            }
        }
    }
    // Never more lines than there are line feeds, plus one.
    let feeds = data.iter().filter(|b| **b == b'\n').count() as u64;
    assert!(last <= feeds + 1);
});
