//! `smsreport bench` (BENCHMARKS.md), run as a real process on small campaigns.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smsreport");

/// Runs `bench ARGS --format json` on a sled folder and a SQLite file named in `dir`;
/// asserts it succeeded with one row per store, in order, and answers the rows.
fn bench_on_sled_and_sqlite(dir: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let sled = format!("sled:{}", dir.join("sled").display());
    let sqlite = format!("sqlite:{}", dir.join("db.sqlite").display());
    let out = Command::new(BIN)
        .args(["--store", &sled, "--store", &sqlite, "bench"])
        .args(args)
        .args(["--format", "json"])
        .env_remove("SMSREPORT_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["store"], sled.as_str());
    assert_eq!(rows[1]["store"], sqlite.as_str());
    rows
}

/// `bench` left nothing beside the named stores: the sled folder is empty and no SQLite
/// file is in `dir`.
fn assert_nothing_left(dir: &std::path::Path) {
    assert_eq!(
        std::fs::read_dir(dir.join("sled")).map(|d| d.count()).ok(),
        Some(0),
        "nothing left in the sled folder"
    );
    let files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        vec!["sled".to_owned()],
        "no SQLite file left: {files:?}"
    );
}

#[test]
fn bench_measures_each_store_in_a_fresh_one_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bench_on_sled_and_sqlite(dir.path(), &["--messages", "300"]);
    for r in &rows {
        // 300 messages: a campaign line, contacts, messages, receipts and clicks.
        assert!(r["events"].as_u64().unwrap() > 900, "{r}");
        for field in ["ingest_events_per_s", "report_p50_ms", "report_p99_ms"] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{field}: {r}");
        }
        assert!(r["report_p99_ms"].as_f64() >= r["report_p50_ms"].as_f64());
        assert!(r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{r}");
        assert!(r["disk_bytes"].as_u64().unwrap() > 0, "{r}");
    }
    // The fresh stores are gone; the named ones were never written.
    assert_nothing_left(dir.path());
}

#[test]
fn bench_table_and_one_store_per_other_command() {
    let dir = tempfile::tempdir().unwrap();
    let sled = format!("sled:{}", dir.path().join("s").display());
    let out = Command::new(BIN)
        .args(["--store", &sled, "bench", "--messages", "50"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("STORE"), "{table}");
    assert!(table.contains(&sled), "{table}");
    let twice = Command::new(BIN)
        .args(["--store", &sled, "--store", &sled, "campaigns"])
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("only bench"));
    let zero = Command::new(BIN)
        .args(["--store", &sled, "bench", "--messages", "0"])
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn bench_http_clients_posts_callbacks_through_serve_beside_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bench_on_sled_and_sqlite(dir.path(), &["--http-clients", "3", "--callbacks", "60"]);
    for r in &rows {
        assert_eq!(r["clients"], 3, "{r}");
        // Every callback was answered 200 (the bench fails otherwise), and the floor
        // made as many writes, 20 per writer.
        assert_eq!(r["callbacks"], 60, "{r}");
        assert_eq!(r["floor_writes"], 60, "{r}");
        for field in [
            "callbacks_per_s",
            "callback_p50_ms",
            "callback_p99_ms",
            "floor_writes_per_s",
            "ratio",
        ] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{field}: {r}");
        }
        assert!(r["callback_p99_ms"].as_f64() >= r["callback_p50_ms"].as_f64());
        let ratio =
            r["callbacks_per_s"].as_f64().unwrap() / r["floor_writes_per_s"].as_f64().unwrap();
        assert!(
            (r["ratio"].as_f64().unwrap() - ratio).abs() < 1e-6 * ratio,
            "{r}"
        );
    }
    // The served stores and the floors' scratch stores are gone.
    assert_nothing_left(dir.path());
}

#[test]
fn bench_http_clients_with_group_commit_off_and_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let sled = format!("sled:{}", dir.path().join("s").display());
    let out = Command::new(BIN)
        .args([
            "--store",
            &sled,
            "bench",
            "--http-clients",
            "2",
            "--callbacks",
            "10",
            "--group-commit-max",
            "0",
        ])
        .env_remove("SMSREPORT_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("STORE"), "{table}");
    assert!(
        table.contains("CALLBACKS/S") && table.contains("RATIO"),
        "{table}"
    );
    assert!(table.contains(&sled), "{table}");
    for bad in [
        &["bench", "--http-clients", "0"][..],
        &["bench", "--callbacks", "10"][..],
        &["bench", "--http-clients", "2", "--callbacks", "0"][..],
    ] {
        let out = Command::new(BIN)
            .args(["--store", &sled])
            .args(bad)
            .env_remove("SMSREPORT_STORE")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
