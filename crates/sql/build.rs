// Rebuild when a migration changes: `sqlx::migrate!` embeds them at compile time.
//
// `SMSREPORT_TEST_PG=skip` compiles the PostgreSQL tests out (a single test then says so,
// and fails under CI=true): the conformance macro's tests cannot skip at run time.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=SMSREPORT_TEST_PG");
    println!("cargo::rustc-check-cfg=cfg(pg_tests_skipped)");
    if std::env::var("SMSREPORT_TEST_PG").is_ok_and(|v| v == "skip") {
        println!("cargo:rustc-cfg=pg_tests_skipped");
    }
}
