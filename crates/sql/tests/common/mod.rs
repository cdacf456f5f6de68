//! Stores for the tests: SQLite and sled in a temporary folder; PostgreSQL in a fresh
//! schema of the test server (`smsreport_conformance::pg`), dropped afterwards.
#![allow(dead_code)]

use smsreport_conformance::pg::Schema;
use smsreport_conformance::Skip;
use smsreport_sql::{PgStore, SqliteStore};

/// A PostgreSQL store on `schema`, with its own pool.
pub async fn pg_store_on(schema: &Schema) -> PgStore {
    PgStore::connect(&schema.url("pool_max=3"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL for the tests ({}; set SMSREPORT_TEST_PG to another server, or to \
                 `skip`): {e}",
                schema.base.split('@').next_back().unwrap_or_default()
            )
        })
}

/// A fresh, empty PostgreSQL store in its own schema, or why there is none.
pub async fn pg_store() -> Result<(PgStore, Schema), Skip> {
    let schema = Schema::fresh()?;
    Ok((pg_store_on(&schema).await, schema))
}

/// A fresh, empty SQLite store in a temporary folder.
pub async fn sqlite_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("smsreport.db"))
        .await
        .expect("open sqlite");
    (store, dir)
}

/// A fresh sled store.
pub async fn sled_store() -> (smsreport_sled::SledStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = smsreport_sled::SledStore::open(&dir.path().join("db")).expect("open sled");
    (store, dir)
}
