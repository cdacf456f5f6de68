//! Ingest throughput and report latency, every backend side by side, with the floors they
//! are measured against (BENCHMARKS.md):
//!
//! - `ingest/{sled,sqlite,postgres}`: a synthetic campaign of about 100 000 events through
//!   the same path as `smsreport ingest` (batches of 2 000 lines), into a fresh store;
//! - `floor/sled_append`: as many event-sized records appended to a fresh sled database in
//!   batches of 1 000, each flushed; `floor/postgres_copy`: as many rows COPYed into an
//!   unindexed PostgreSQL table;
//! - `report/{backend}/{messages}`: one report of a campaign of 10k, 100k and 1M messages.
//!
//! At the end it prints the ratios the goals are stated in. Environment:
//! `SMSREPORT_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`; `skip`
//! leaves PostgreSQL out), `SMSREPORT_BENCH_SIZES` (default `10000,100000,1000000`).
//!
//! `cargo bench --bench stores`; one group: `cargo bench --bench stores -- ingest`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use smsreport_core::ingest::{ingest_events, Line};
use smsreport_core::{Millis, Store};
use smsreport_sql::{PgStore, SqliteStore};
use smsreport_synth::{events, SynthConfig};
use tokio::runtime::Runtime;

const BATCH: usize = 2_000;

fn campaign(messages: u64) -> SynthConfig {
    SynthConfig {
        campaign_id: "bench".into(),
        name: "Benchmark campaign".into(),
        messages,
        seed: 9,
        start: Millis::from_utc(2026, 3, 2, 8, 0, 0, 0).expect("a date"),
    }
}

fn lines(messages: u64) -> Vec<Vec<u8>> {
    events(&campaign(messages))
        .map(String::into_bytes)
        .collect()
}

fn pg_url() -> Option<String> {
    match std::env::var("SMSREPORT_BENCH_PG") {
        Ok(v) if v == "skip" => None,
        Ok(v) => Some(v),
        Err(_) => Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
    }
}

/// A fresh store of one backend, removed when dropped.
struct Fresh {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgStore>,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some(pg) = self.pg.take() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = rt.block_on(pg.drop_schema());
        }
    }
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn schema() -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("smsreport_benches_{}_{n}", std::process::id())
}

async fn fresh(backend: &str) -> Fresh {
    match backend {
        "sled" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = smsreport_sled::SledStore::open(&dir.path().join("db")).expect("sled");
            Fresh {
                store: Arc::new(store),
                _dir: Some(dir),
                pg: None,
            }
        }
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = SqliteStore::open(&dir.path().join("db.sqlite"))
                .await
                .expect("sqlite");
            Fresh {
                store: Arc::new(store),
                _dir: Some(dir),
                pg: None,
            }
        }
        _ => {
            let url = pg_url().expect("PostgreSQL is not skipped");
            let store = PgStore::connect(&format!("{url}?schema={}", schema()))
                .await
                .expect("PostgreSQL");
            Fresh {
                store: Arc::new(store.clone()),
                _dir: None,
                pg: Some(store),
            }
        }
    }
}

async fn ingest_all(store: &dyn Store, lines: &[Vec<u8>]) {
    let mut n = 0;
    for chunk in lines.chunks(BATCH) {
        let batch = chunk
            .iter()
            .map(|b| {
                n += 1;
                Line::new(n, b.clone())
            })
            .collect();
        ingest_events(store, batch).await.expect("ingest");
    }
}

fn backends() -> Vec<&'static str> {
    let mut b = vec!["sled", "sqlite"];
    if pg_url().is_some() {
        b.push("postgres");
    }
    b
}

fn bench_ingest(c: &mut Criterion, rt: &Runtime) {
    let input = lines(25_000);
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(input.len() as u64));
    for backend in backends() {
        g.bench_function(backend, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let f = rt.block_on(fresh(backend));
                    let t = Instant::now();
                    rt.block_on(ingest_all(&*f.store, &input));
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("floor");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("sled_append", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = sled::Config::new()
                    .path(dir.path().join("raw"))
                    .cache_capacity(smsreport_sled::DEFAULT_CACHE_BYTES)
                    .open()
                    .expect("sled");
                let t = Instant::now();
                for (i, chunk) in input.chunks(1_000).enumerate() {
                    let mut batch = sled::Batch::default();
                    for (j, line) in chunk.iter().enumerate() {
                        batch.insert(&((i * 1_000 + j) as u64).to_be_bytes(), line.as_slice());
                    }
                    db.apply_batch(batch).expect("apply");
                    db.flush().expect("flush");
                }
                total += t.elapsed();
            }
            total
        })
    });
    if let Some(url) = pg_url() {
        g.bench_function("postgres_copy", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += copy_floor(&url, &input).await;
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

/// COPY of every line, as one text column, into an unindexed table in a fresh schema.
async fn copy_floor(url: &str, input: &[Vec<u8>]) -> Duration {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let s = schema();
    sqlx::query(&format!("CREATE SCHEMA {s}"))
        .execute(&mut conn)
        .await
        .expect("schema");
    sqlx::query(&format!("CREATE TABLE {s}.raw (line text)"))
        .execute(&mut conn)
        .await
        .expect("table");
    let mut data = Vec::with_capacity(input.iter().map(|l| l.len() + 8).sum());
    for line in input {
        // COPY text format: escape backslashes; event lines hold no tab or newline.
        for &b in line {
            if b == b'\\' {
                data.push(b'\\');
            }
            data.push(b);
        }
        data.push(b'\n');
    }
    let t = Instant::now();
    let mut tx = conn.begin().await.expect("begin");
    let mut copy = tx
        .copy_in_raw(&format!("COPY {s}.raw (line) FROM STDIN"))
        .await
        .expect("copy");
    copy.send(data).await.expect("send");
    copy.finish().await.expect("finish");
    tx.commit().await.expect("commit");
    let elapsed = t.elapsed();
    sqlx::query(&format!("DROP SCHEMA {s} CASCADE"))
        .execute(&mut conn)
        .await
        .expect("drop");
    elapsed
}

fn sizes() -> Vec<u64> {
    std::env::var("SMSREPORT_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

fn bench_report(c: &mut Criterion, rt: &Runtime) {
    let mut g = c.benchmark_group("report");
    g.sample_size(100).measurement_time(Duration::from_secs(5));
    for messages in sizes() {
        let input = lines(messages);
        for backend in backends() {
            eprintln!("report: loading {messages} messages into {backend}…");
            let f = rt.block_on(fresh(backend));
            rt.block_on(ingest_all(&*f.store, &input));
            g.bench_with_input(BenchmarkId::new(backend, messages), &f, |b, f| {
                b.iter(|| rt.block_on(f.store.report("bench")).expect("report"))
            });
        }
    }
    g.finish();
}

/// The mean time of a finished benchmark, from criterion's estimates.
fn mean_ns(id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = Path::new(&dir)
        .join("criterion")
        .join(id)
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// A percentile of a finished benchmark's samples (time per iteration), in ms.
fn percentile_ms(id: &str, p: f64) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = Path::new(&dir)
        .join("criterion")
        .join(id)
        .join("new/sample.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let iters = v["iters"].as_array()?;
    let times = v["times"].as_array()?;
    let mut per: Vec<f64> = iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .collect();
    per.sort_by(|a, b| a.total_cmp(b));
    let i = ((per.len() as f64 - 1.0) * p).round() as usize;
    per.get(i).map(|ns| ns / 1e6)
}

fn ratios() {
    println!("\nRatios (from this run's means):");
    if let (Some(ingest), Some(floor)) = (mean_ns("ingest/sled"), mean_ns("floor/sled_append")) {
        println!(
            "  sled ingest / raw sled append           {:.2}x  (goal >= 0.8x, BENCHMARKS.md)",
            floor / ingest
        );
    }
    if let (Some(ingest), Some(floor)) =
        (mean_ns("ingest/postgres"), mean_ns("floor/postgres_copy"))
    {
        println!(
            "  PostgreSQL ingest / raw COPY            {:.2}x  (goal >= 0.2x, BENCHMARKS.md)",
            floor / ingest
        );
    }
    let sizes = sizes();
    for backend in backends() {
        for &m in &sizes {
            if let (Some(p50), Some(p99)) = (
                percentile_ms(&format!("report/{backend}/{m}"), 0.5),
                percentile_ms(&format!("report/{backend}/{m}"), 0.99),
            ) {
                println!(
                    "  report {backend:<8} {m:>8} messages     p50 {p50:.3} ms, p99 {p99:.3} ms"
                );
            }
        }
        if let (Some(&lo), Some(&hi)) = (sizes.first(), sizes.last()) {
            if let (Some(a), Some(b)) = (
                percentile_ms(&format!("report/{backend}/{lo}"), 0.5),
                percentile_ms(&format!("report/{backend}/{hi}"), 0.5),
            ) {
                println!(
                    "  report {backend:<8} p50 growth {lo} -> {hi} messages: {:.2}x  (goal <= 2x)",
                    b / a
                );
            }
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut c = Criterion::default().configure_from_args();
    bench_ingest(&mut c, &rt);
    bench_report(&mut c, &rt);
    c.final_summary();
    ratios();
}
