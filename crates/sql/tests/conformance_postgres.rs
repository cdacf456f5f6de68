//! The conformance suite on PostgreSQL, each test in its own schema.
mod common;

pub use common::pg_store;

#[cfg(not(pg_tests_skipped))]
smsreport_conformance::conformance_tests!(crate::pg_store);

#[cfg(pg_tests_skipped)]
#[test]
fn postgres_conformance_skipped() {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "SMSREPORT_TEST_PG=skip is refused under CI=true: the PostgreSQL tests must run"
    );
    println!("skipped: the PostgreSQL conformance suite, because SMSREPORT_TEST_PG=skip");
}
