//! The conformance suite on SQLite.
mod common;

pub use common::sqlite_store;

smsreport_conformance::conformance_tests!(crate::sqlite_store);
