//! The conformance suite on PostgreSQL, each test in its own schema; skipped at run time
//! when `SMSREPORT_TEST_PG=skip` (a failure under `CI=true`).
mod common;

pub use common::pg_store;

smsreport_conformance::conformance_tests!(crate::pg_store);
