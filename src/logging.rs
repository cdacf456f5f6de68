//! Where the service's and the CLI's logs go: `tracing` events to standard error, as
//! text or JSON lines (`--log-format`, `SMSREPORT_LOG_FORMAT`), filtered as `RUST_LOG`
//! says (`RUST_LOG=debug`, `RUST_LOG=smsreport_http=debug,warn`). Without `RUST_LOG`,
//! `serve` logs `INFO` and above ([`SERVE`]), every other command `WARN` and above, so a
//! command's own output stays as it was.
//!
//! A phone number is never logged whole: the events that could carry one mask it to its
//! calling code and last two digits (`smsreport_core::forget::masked`,
//! `smsreport_http::redact::mask_numbers`; docs/security.md, "Logs").

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// `serve`'s filter without `RUST_LOG`: `INFO` and up, but sqlx's only from `WARN` (it
/// logs PostgreSQL's notices, such as "schema already exists, skipping" when two
/// instances open one schema at once, at `INFO`).
pub const SERVE: &str = "info,sqlx=warn";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event: time, level, message, fields.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`).
    Json,
}

/// Sets the process's log subscriber; `default` is the filter without `RUST_LOG`.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second call (never made) would leave the first subscriber in place.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
