//! Stores for the tests: SQLite in a temporary folder; PostgreSQL in a fresh schema of
//! the server `SMSREPORT_TEST_PG` names (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use smsreport_sql::{PgStore, SqliteStore};

/// The server the PostgreSQL tests use.
pub fn pg_url() -> String {
    std::env::var("SMSREPORT_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URL of a schema on the test server.
pub fn schema_url(schema: &str) -> String {
    let base = pg_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema={schema}&pool_max=3")
}

/// Drops its schema when dropped.
#[derive(Debug)]
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = self.0.clone();
        // Drop cannot be async: a thread with its own runtime does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                let (url, _) = smsreport_sql::PgOptions::from_url(&pg_url()).expect("test url");
                match sqlx::PgConnection::connect(&url).await {
                    Ok(mut c) => {
                        if let Err(e) =
                            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                                .execute(&mut c)
                                .await
                        {
                            eprintln!("could not drop test schema {schema}: {e}");
                        }
                    }
                    Err(e) => eprintln!("could not drop test schema {schema}: {e}"),
                }
            })
        })
        .join();
    }
}

/// A fresh, empty PostgreSQL store in its own schema.
pub async fn pg_store() -> (PgStore, SchemaGuard) {
    let schema = fresh_schema();
    let guard = SchemaGuard(schema.clone());
    let store = PgStore::connect(&schema_url(&schema))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL for the tests ({}; set SMSREPORT_TEST_PG to another server, or to \
                 `skip`): {e}",
                pg_url().split('@').next_back().unwrap_or_default()
            )
        });
    (store, guard)
}

/// Another store (its own pool) on the same schema.
pub async fn pg_store_on(schema: &str) -> PgStore {
    PgStore::connect(&schema_url(schema))
        .await
        .expect("connect")
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
