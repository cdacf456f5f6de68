//! smsreport's engine: what happened to every SMS of a campaign and every click on its
//! tracked links, and the campaign's report.
//!
//! - [`event`]: the NDJSON event format and its validation (docs/events.md);
//! - [`status`]: delivery statuses, the order that picks the current one, report rows
//!   (docs/rules.md, "Delivery statuses");
//! - [`engine`]: the rules that turn a batch of events into stored changes
//!   (docs/events.md, "Duplicates"; docs/rules.md, "Delivery statuses" and "Clicks");
//! - [`report`]: the report built from stored totals, the drill-down, `verify`
//!   (docs/rules.md, "The report", "Recipients drill-down", "Verify");
//! - [`store`]: the [`Store`] trait every backend implements;
//! - [`ingest`]: lines in, outcomes out, shared by the CLI and the HTTP service;
//! - [`gateway`]: SMPP receipts and Kannel, Jasmin and Twilio callbacks to status events
//!   (README, "Gateway line formats");
//! - [`csv`], [`tz`], [`causes`]: output helpers the CLI and the HTTP service share (the
//!   report's CSV, IANA time zones, error messages with their causes).
//!
//! This crate knows nothing of sled, SQL, HTTP or the command line. Synthetic campaigns
//! for the demo and benchmarks are `smsreport-synth`'s.
//!
//! # Implementing a Store
//!
//! A backend stores five kinds of record ([`engine::CampaignDef`], list names,
//! [`engine::ContactRecord`], [`engine::MessageRecord`], [`engine::ClickRecord`]), a few
//! markers (pending statuses, taken click identities, first clicks) and additive
//! [`engine::Counter`]s. Its `ingest` loads what [`engine::Needs::of`] names, calls
//! [`engine::apply`], and writes the [`engine::Changes`] atomically and durably; see
//! [`Store`]. Run `smsreport-conformance` against it to prove it behaves.

pub mod causes;
pub mod csv;
pub mod engine;
pub mod event;
pub mod export;
pub mod forget;
pub mod gateway;
pub mod ingest;
pub mod insights;
pub mod mem;
pub mod names;
pub mod report;
pub mod status;
pub mod store;
pub mod time;
pub mod tz;

pub use engine::Outcome;
pub use event::{Event, Rejection, RejectionKind};
pub use report::Report;
pub use status::{Row, Status, StatusKey};
pub use store::{Store, StoreError, TrackedLink};
pub use time::{Millis, Month};
