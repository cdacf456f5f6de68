//! `smsreport bench` (BENCHMARKS.md): a synthetic campaign ingested into a fresh store per
//! store URL, each in a child process of its own so that its peak memory is its own.
//!
//! The parent runs `smsreport --store URL bench-worker --messages N` once per store and
//! reads one JSON line from each; the worker makes a fresh store next to the one the URL
//! names (a new folder inside a sled folder, a new file beside a SQLite file, a new schema
//! in a PostgreSQL database), measures, and removes it again.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use smsreport_core::{Millis, Store};
use smsreport_synth::SynthConfig;

use crate::failure::Failure;
use crate::ingest::{self, Progress, TextLines};
use crate::Format;

/// Report calls timed per store.
const REPORT_CALLS: usize = 300;

/// What one store measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    /// The store URL as given (a password replaced by `***`).
    pub store: String,
    /// Events ingested (lines of the synthetic campaign).
    pub events: u64,
    pub ingest_events_per_s: f64,
    pub report_p50_ms: f64,
    pub report_p99_ms: f64,
    /// The worker process's peak resident memory.
    pub peak_rss_bytes: u64,
    /// What the store took on disk after the ingest.
    pub disk_bytes: u64,
}

/// `smsreport bench`: one worker process per store, then the table or JSON.
pub async fn command(stores: &[String], messages: u64, format: Format) -> Result<u8, Failure> {
    if messages == 0 {
        return Err(Failure::Usage("--messages must be at least 1".into()));
    }
    let exe =
        std::env::current_exe().map_err(|e| Failure::io("finding the smsreport binary", e))?;
    let mut results = Vec::new();
    for url in stores {
        let _ = writeln!(
            io::stderr(),
            "bench: {} with {messages} messages…",
            redact(url)
        );
        let out = std::process::Command::new(&exe)
            .arg("--store")
            .arg(url)
            .args(["bench-worker", "--messages", &messages.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| Failure::io("starting a bench worker", e))?;
        if !out.status.success() {
            return Err(Failure::Other(format!(
                "the bench of {} failed ({})",
                redact(url),
                out.status
            )));
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let m: Measured = serde_json::from_str(line.trim())
            .map_err(|e| Failure::Other(format!("a bench worker answered {line:?}: {e}")))?;
        results.push(m);
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match format {
        Format::Json => crate::output::json(&results, &mut out)?,
        Format::Csv => {
            writeln!(out, "store,events,ingest_events_per_s,report_p50_ms,report_p99_ms,peak_rss_bytes,disk_bytes\r")?;
            for m in &results {
                writeln!(
                    out,
                    "{},{},{:.0},{:.3},{:.3},{},{}\r",
                    smsreport_core::csv::csv_field(&m.store),
                    m.events,
                    m.ingest_events_per_s,
                    m.report_p50_ms,
                    m.report_p99_ms,
                    m.peak_rss_bytes,
                    m.disk_bytes
                )?;
            }
        }
        Format::Table => {
            let w = results
                .iter()
                .map(|m| m.store.chars().count())
                .max()
                .unwrap_or(5)
                .max(5);
            writeln!(
                out,
                "{:<w$}  {:>9}  {:>10}  {:>10}  {:>10}  {:>9}  {:>9}",
                "STORE", "EVENTS", "EVENTS/S", "REPORT p50", "REPORT p99", "PEAK RSS", "DISK"
            )?;
            for m in &results {
                writeln!(
                    out,
                    "{:<w$}  {:>9}  {:>10.0}  {:>8.3}ms  {:>8.3}ms  {:>6.1}MiB  {:>6.1}MiB",
                    m.store,
                    m.events,
                    m.ingest_events_per_s,
                    m.report_p50_ms,
                    m.report_p99_ms,
                    m.peak_rss_bytes as f64 / 1048576.0,
                    m.disk_bytes as f64 / 1048576.0
                )?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// A store URL with any password replaced, for output.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) if !a.contains('/') => (a, h),
        _ => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// A fresh store beside the one a URL names, and how to measure and remove it.
pub(crate) enum Fresh {
    Sled(PathBuf),
    Sqlite(PathBuf),
    Postgres(smsreport_sql::PgStore),
}

pub(crate) fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000)
}

async fn fresh(url: &str) -> Result<(Arc<dyn Store>, Fresh), Failure> {
    if let Some(path) = url.strip_prefix("sled:") {
        let dir = Path::new(path).join(format!("bench-{}", unique()));
        let store = smsreport_sled::SledStore::open(&dir)?;
        return Ok((Arc::new(store), Fresh::Sled(dir)));
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = Path::new(path.strip_prefix("//").unwrap_or(path));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "smsreport".into());
        let file = path.with_file_name(format!("{name}.bench-{}", unique()));
        let store = smsreport_sql::SqliteStore::open(&file).await?;
        return Ok((Arc::new(store), Fresh::Sqlite(file)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let schema = format!("smsreport_bench_{}", unique());
        let sep = if url.contains('?') { '&' } else { '?' };
        let store = smsreport_sql::PgStore::connect(&format!("{url}{sep}schema={schema}")).await?;
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        return Ok((shared, Fresh::Postgres(store)));
    }
    Err(Failure::Usage(format!(
        "bench: unknown store URL {:?}; use sled:PATH, sqlite:PATH or postgres://…",
        redact(url)
    )))
}

/// A fresh store beside the one `url` names, not opened (but a PostgreSQL schema, made
/// and migrated): its URL, for another process to open, and how to remove it. `tag`
/// goes into its name.
pub(crate) async fn fresh_url(url: &str, tag: &str) -> Result<(String, Fresh), Failure> {
    if let Some(path) = url.strip_prefix("sled:") {
        let dir = Path::new(path).join(format!("bench-{tag}-{}", unique()));
        return Ok((format!("sled:{}", dir.display()), Fresh::Sled(dir)));
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = Path::new(path.strip_prefix("//").unwrap_or(path));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "smsreport".into());
        let file = path.with_file_name(format!("{name}.bench-{tag}-{}", unique()));
        return Ok((format!("sqlite:{}", file.display()), Fresh::Sqlite(file)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let schema = format!("smsreport_bench_{tag}_{}", unique());
        let sep = if url.contains('?') { '&' } else { '?' };
        let fresh = format!("{url}{sep}schema={schema}");
        let store = smsreport_sql::PgStore::connect(&fresh).await?;
        return Ok((fresh, Fresh::Postgres(store)));
    }
    Err(Failure::Usage(format!(
        "bench: unknown store URL {:?}; use sled:PATH, sqlite:PATH or postgres://…",
        redact(url)
    )))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

impl Fresh {
    async fn disk_bytes(&self) -> Result<u64, Failure> {
        Ok(match self {
            Fresh::Sled(dir) => dir_size(dir),
            Fresh::Sqlite(file) => ["", "-wal", "-shm"]
                .iter()
                .map(|s| dir_size(Path::new(&format!("{}{s}", file.display()))))
                .sum(),
            Fresh::Postgres(store) => store.size_on_disk().await?,
        })
    }

    pub(crate) async fn remove(self) -> Result<(), Failure> {
        match self {
            Fresh::Sled(dir) => std::fs::remove_dir_all(&dir)
                .map_err(|e| Failure::io(format!("removing {}", dir.display()), e)),
            Fresh::Sqlite(file) => {
                for s in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{s}", file.display()));
                }
                Ok(())
            }
            Fresh::Postgres(store) => Ok(store.drop_schema().await?),
        }
    }
}

/// The peak resident memory of this process (Linux: `VmHWM`), 0 where unknown.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The synthetic campaign a bench ingests.
pub fn campaign(messages: u64) -> SynthConfig {
    SynthConfig {
        campaign_id: "bench".into(),
        name: "Benchmark campaign".into(),
        messages,
        seed: 9,
        start: Millis::from_utc(2026, 3, 2, 8, 0, 0, 0).unwrap_or(Millis::MIN),
    }
}

/// `smsreport bench-worker` (hidden): measures one store and prints one JSON line.
pub async fn worker(url: &str, messages: u64) -> Result<u8, Failure> {
    let (store, fresh) = fresh(url).await?;
    let result = measure(&*store, url, messages, &fresh).await;
    drop(store);
    let removed = fresh.remove().await;
    let m = result?;
    removed?;
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, &m).map_err(|e| Failure::Other(e.to_string()))?;
    writeln!(out)?;
    Ok(0)
}

async fn measure(
    store: &dyn Store,
    url: &str,
    messages: u64,
    fresh: &Fresh,
) -> Result<Measured, Failure> {
    let cfg = campaign(messages);
    let mut source = TextLines::new(smsreport_synth::events(&cfg));
    let progress = Progress::new(None, "events");
    let started = Instant::now();
    let summary = ingest::run(store, &mut source, ingest::Input::ndjson(), None, &progress)
        .await
        .map_err(|(_, f)| f)?;
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish();
    let events = summary.ingested + summary.duplicates + summary.rejected;
    let mut times = Vec::with_capacity(REPORT_CALLS);
    for _ in 0..REPORT_CALLS {
        let t = Instant::now();
        store.report(&cfg.campaign_id).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(Measured {
        store: redact(url),
        events,
        ingest_events_per_s: events as f64 / elapsed.max(1e-9),
        report_p50_ms: percentile(&times, 0.50),
        report_p99_ms: percentile(&times, 0.99),
        peak_rss_bytes: peak_rss(),
        disk_bytes: fresh.disk_bytes().await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sled:/tmp/x"), "sled:/tmp/x");
    }

    #[test]
    fn percentiles_of_sorted_samples() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
