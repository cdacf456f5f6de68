//! Writes a synthetic campaign's events as NDJSON to standard output, for trying
//! `smsreport ingest` at scale:
//!
//! ```text
//! cargo run --release --example synth -- 250000 > events.ndjson   # ≈ 1M events
//! ```
//!
//! Arguments: number of messages (default 10 000), seed (default 1), campaign id
//! (default `synthetic`). Memory stays constant whatever the size.

use std::io::{BufWriter, Write};

use smsreport_core::Millis;
use smsreport_synth::{events, SynthConfig};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let campaign_id = args.next().unwrap_or_else(|| "synthetic".into());
    let cfg = SynthConfig {
        name: format!("Synthetic campaign {campaign_id}"),
        campaign_id,
        messages,
        seed,
        start: Millis::parse("2026-03-01T08:00:00Z").expect("a valid start"),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in events(&cfg) {
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e);
        }
    }
    out.flush()
}
