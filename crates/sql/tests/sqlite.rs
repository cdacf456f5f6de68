//! SQLite specifics.
mod common;

use smsreport_core::StoreError;
use smsreport_sql::SqliteStore;

/// A file migrated by a newer smsreport is refused with a clear message and left as it was.
#[tokio::test]
async fn a_newer_file_is_refused_and_left_alone() {
    let (store, dir) = common::sqlite_store().await;
    let path = dir.path().join("smsreport.db");
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::query("UPDATE schema_info SET value = 5 WHERE key = 'format'")
        .execute(&pool)
        .await
        .unwrap();
    drop(store);
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("newer smsreport"), "{err}");
    let v: (i64,) = sqlx::query_as("SELECT value FROM schema_info WHERE key = 'format'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v.0, 5);
}

/// What an ingest returns is in the file: another open sees it.
#[tokio::test]
async fn reopened_file_keeps_everything() {
    let (store, dir) = common::sqlite_store().await;
    smsreport_conformance::ingest_text(&store, smsreport_conformance::BASIC).await;
    drop(store);
    let again = SqliteStore::open(&dir.path().join("smsreport.db"))
        .await
        .unwrap();
    let r = smsreport_conformance::report_json(&again, "spring-sale").await;
    assert_eq!(r["delivery"]["total"], 5);
}
