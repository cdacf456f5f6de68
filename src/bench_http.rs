//! `smsreport bench --http-clients N` (BENCHMARKS.md, "Callbacks through serve"): gateway
//! callbacks per second through a real `serve`, beside the floor of one durable write per
//! event from as many writers, for each store, in one run.
//!
//! For each store URL: a fresh store beside it (as `bench` makes one), `smsreport serve`
//! on it as a child process on 127.0.0.1 (a port of its choosing), a campaign and its
//! messages posted to `/v1/events`, then N clients, each on one keep-alive connection,
//! posting one Twilio status callback per request (`sent`, then `delivered`, for each
//! message) until `--callbacks` are answered. Every `200` means durable, so the rate is
//! of durable callbacks. Then the floor, in a scratch store of its own: N writers each
//! making one durable write per event (sled: an insert and a flush; PostgreSQL: a
//! one-row `INSERT` per transaction on a connection of its own; SQLite: the same on a
//! WAL file with `synchronous = FULL`). Load goes to 127.0.0.1 only, bounded by the
//! count and by [`MAX_SECONDS`] per measurement.

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bench::{fresh_url, percentile, redact, unique, Fresh};
use crate::failure::Failure;
use crate::Format;

/// The longest one measurement (the callbacks, or a floor) runs before it stops where
/// it is: 120 s.
pub const MAX_SECONDS: u64 = 120;

/// What the HTTP bench measured on one store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpMeasured {
    /// The store URL as given (a password replaced by `***`).
    pub store: String,
    pub clients: usize,
    /// Callbacks answered `200` (each durable).
    pub callbacks: u64,
    pub callbacks_per_s: f64,
    pub callback_p50_ms: f64,
    pub callback_p99_ms: f64,
    /// `serve --group-commit-max` (absent: serve's default).
    pub group_commit_max: Option<usize>,
    /// `serve --group-commit-writers` (absent: serve's default for the store).
    pub group_commit_writers: Option<usize>,
    /// Durable writes per second of the floor, N writers, one event each.
    pub floor_writes: u64,
    pub floor_writes_per_s: f64,
    /// callbacks_per_s / floor_writes_per_s.
    pub ratio: f64,
}

/// What `bench --http-clients` is asked.
#[derive(Debug, Clone, Copy)]
pub struct HttpBench {
    pub clients: usize,
    pub callbacks: u64,
    pub group_commit_max: Option<usize>,
    pub group_commit_writers: Option<usize>,
}

/// `smsreport bench --http-clients N`: every store in turn, then the table, JSON or CSV.
pub async fn command(stores: &[String], b: HttpBench, format: Format) -> Result<u8, Failure> {
    if b.clients == 0 || b.callbacks == 0 {
        return Err(Failure::Usage(
            "--http-clients and --callbacks must be at least 1".into(),
        ));
    }
    let mut results = Vec::new();
    for url in stores {
        let _ = writeln!(
            io::stderr(),
            "bench: {} — {} callbacks from {} clients through serve…",
            redact(url),
            b.callbacks,
            b.clients
        );
        let (callbacks, elapsed, mut times) = {
            let (served, fresh) = fresh_url(url, "http").await?;
            let measured = through_serve(&served, b).await;
            let removed = fresh.remove().await;
            let m = measured?;
            removed?;
            m
        };
        let _ = writeln!(io::stderr(), "bench: {} — the floor…", redact(url));
        let (floor_writes, floor_elapsed) = floor(url, b.clients, b.callbacks).await?;
        times.sort_by(|a, b| a.total_cmp(b));
        let callbacks_per_s = callbacks as f64 / elapsed.max(1e-9);
        let floor_writes_per_s = floor_writes as f64 / floor_elapsed.max(1e-9);
        results.push(HttpMeasured {
            store: redact(url),
            clients: b.clients,
            callbacks,
            callbacks_per_s,
            callback_p50_ms: percentile(&times, 0.50),
            callback_p99_ms: percentile(&times, 0.99),
            group_commit_max: b.group_commit_max,
            group_commit_writers: b.group_commit_writers,
            floor_writes,
            floor_writes_per_s,
            ratio: callbacks_per_s / floor_writes_per_s.max(1e-9),
        });
    }
    print(&results, format)?;
    Ok(0)
}

fn print(results: &[HttpMeasured], format: Format) -> Result<(), Failure> {
    let mut out = BufWriter::new(io::stdout().lock());
    match format {
        Format::Json => crate::output::json(&results, &mut out)?,
        Format::Csv => {
            writeln!(out, "store,clients,callbacks,callbacks_per_s,callback_p50_ms,callback_p99_ms,group_commit_max,group_commit_writers,floor_writes,floor_writes_per_s,ratio\r")?;
            for m in results {
                writeln!(
                    out,
                    "{},{},{},{:.0},{:.3},{:.3},{},{},{},{:.0},{:.3}\r",
                    smsreport_core::csv::csv_field(&m.store),
                    m.clients,
                    m.callbacks,
                    m.callbacks_per_s,
                    m.callback_p50_ms,
                    m.callback_p99_ms,
                    m.group_commit_max.map_or(String::new(), |n| n.to_string()),
                    m.group_commit_writers
                        .map_or(String::new(), |n| n.to_string()),
                    m.floor_writes,
                    m.floor_writes_per_s,
                    m.ratio
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
                "{:<w$}  {:>7}  {:>9}  {:>11}  {:>10}  {:>10}  {:>9}  {:>6}",
                "STORE", "CLIENTS", "CALLBACKS", "CALLBACKS/S", "p50", "p99", "FLOOR/S", "RATIO"
            )?;
            for m in results {
                writeln!(
                    out,
                    "{:<w$}  {:>7}  {:>9}  {:>11.0}  {:>8.3}ms  {:>8.3}ms  {:>9.0}  {:>5.2}×",
                    m.store,
                    m.clients,
                    m.callbacks,
                    m.callbacks_per_s,
                    m.callback_p50_ms,
                    m.callback_p99_ms,
                    m.floor_writes_per_s,
                    m.ratio
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `serve` as a child process; killed when dropped.
struct ServeChild(Child);

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on `store` on 127.0.0.1 and answers its address.
fn start_serve(store: &str, b: HttpBench) -> Result<(ServeChild, String), Failure> {
    let exe =
        std::env::current_exe().map_err(|e| Failure::io("finding the smsreport binary", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--store")
        .arg(store)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    if let Some(n) = b.group_commit_max {
        cmd.args(["--group-commit-max", &n.to_string()]);
    }
    if let Some(n) = b.group_commit_writers {
        cmd.args(["--group-commit-writers", &n.to_string()]);
    }
    // The bench's own server: no secrets or settings from the environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("SMSREPORT_") && k != "SMSREPORT_SLED_CACHE_MB" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::io("starting serve", e))?;
    let stderr = child.stderr.take();
    let child = ServeChild(child);
    let mut lines = BufReader::new(stderr.ok_or_else(|| Failure::Other("no stderr".into()))?);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return Err(Failure::Other(format!("serve did not start: {seen}")));
        }
        if let Some(addr) = line
            .split("listening on http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            let addr = addr.to_owned();
            // Keep reading its standard error, so that it never blocks on it.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while lines.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return Ok((child, addr));
        }
        seen.push_str(&line);
    }
}

/// One HTTP/1.1 keep-alive connection.
struct Conn {
    stream: tokio::io::BufReader<TcpStream>,
    addr: String,
}

impl Conn {
    async fn open(addr: &str) -> io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            stream: tokio::io::BufReader::new(s),
            addr: addr.to_owned(),
        })
    }

    /// POSTs `body`; the status and the body of the answer.
    async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.get_mut().write_all(&req).await?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(bad("the server closed the connection"));
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(bad("the answer ended in its head"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().map_err(|_| bad("bad Content-Length"))?;
                }
            }
        }
        let mut answer = vec![0; length];
        self.stream.read_exact(&mut answer).await?;
        Ok((status, answer))
    }
}

/// Posts the campaign and its messages, then the callbacks from `b.clients` clients:
/// (callbacks answered, seconds, each callback's latency in ms).
async fn through_serve(store: &str, b: HttpBench) -> Result<(u64, f64, Vec<f64>), Failure> {
    let (child, addr) = start_serve(store, b)?;
    let failed =
        |what: &str, e: io::Error| Failure::io(format!("bench: {what} (serve at {addr})"), e);
    let messages = b.callbacks.div_ceil(2);
    let mut conn = Conn::open(&addr)
        .await
        .map_err(|e| failed("connecting", e))?;
    let mut body = String::from(
        r#"{"type":"campaign","campaign_id":"bench","name":"Benchmark campaign","created_at":"2026-03-02T08:00:00Z"}"#,
    );
    body.push('\n');
    for m in 0..messages {
        body.push_str(&format!(
            r#"{{"type":"message","message_id":"bm{m}","campaign_id":"bench","recipient":"+3712{:07}","at":"2026-03-02T09:00:00Z"}}"#,
            m % 10_000_000
        ));
        body.push('\n');
        if body.len() > 1 << 20 || m + 1 == messages {
            let (status, answer) = conn
                .post("/v1/events", "application/x-ndjson", body.as_bytes())
                .await
                .map_err(|e| failed("posting the messages", e))?;
            if status != 200 {
                return Err(Failure::Other(format!(
                    "bench: posting the messages answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                )));
            }
            body.clear();
        }
    }
    drop(conn);
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(MAX_SECONDS);
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..b.clients {
        let (next, addr) = (next.clone(), addr.clone());
        let total = b.callbacks;
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            let mut times = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total || Instant::now() > deadline {
                    return Ok::<_, io::Error>(times);
                }
                let status = if k % 2 == 0 { "sent" } else { "delivered" };
                let body = format!("MessageSid=bm{}&MessageStatus={status}", k / 2);
                let t = Instant::now();
                let (code, answer) = conn
                    .post(
                        "/v1/webhooks/twilio",
                        "application/x-www-form-urlencoded",
                        body.as_bytes(),
                    )
                    .await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                if code != 200 {
                    return Err(io::Error::other(format!(
                        "a callback was answered {code}: {}",
                        String::from_utf8_lossy(&answer)
                    )));
                }
            }
        }));
    }
    let mut times = Vec::new();
    for c in clients {
        let t = c
            .await
            .map_err(|e| Failure::Other(format!("bench: a client failed: {e}")))?
            .map_err(|e| failed("posting callbacks", e))?;
        times.extend(t);
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(child);
    Ok((times.len() as u64, elapsed, times))
}

/// The floor beside the store `url` names: `clients` writers making `writes` durable
/// writes in all, one event each, in a scratch store removed afterwards: (writes made,
/// seconds).
async fn floor(url: &str, clients: usize, writes: u64) -> Result<(u64, f64), Failure> {
    let per_client = writes.div_ceil(clients as u64);
    let deadline = Instant::now() + Duration::from_secs(MAX_SECONDS);
    let value = vec![b'x'; 64];
    if let Some(path) = url.strip_prefix("sled:") {
        let dir = Path::new(path).join(format!("bench-floor-{}", unique()));
        let result = sled_floor(&dir, clients, per_client, deadline, &value);
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    }
    let (scratch, fresh) = fresh_url(url, "floor").await?;
    let result = match &fresh {
        Fresh::Postgres(store) => {
            let pool = store.pool();
            sqlx::query("CREATE TABLE bench_floor (writer int, n bigint, body text)")
                .execute(pool)
                .await
                .map_err(|e| Failure::Other(format!("bench: the floor's table: {e}")))?;
            let _ = scratch;
            let (base, _) = smsreport_sql::PgOptions::from_url(url)?;
            let schema = store.schema().unwrap_or("public").to_owned();
            // A connection of its own per writer, beside the store's pool.
            sql_floor(clients, per_client, deadline, move || {
                let (base, schema) = (base.clone(), schema.clone());
                async move { pg_conn(&base, &schema).await }
            })
            .await
        }
        Fresh::Sqlite(file) => {
            let file = file.clone();
            sqlite_setup(&file).await?;
            sql_floor(clients, per_client, deadline, || {
                let file = file.clone();
                async move { sqlite_conn(&file).await }
            })
            .await
        }
        Fresh::Sled(_) => unreachable!("sled's floor is above"),
    };
    fresh.remove().await?;
    result
}

fn sled_floor(
    dir: &PathBuf,
    clients: usize,
    per_client: u64,
    deadline: Instant,
    value: &[u8],
) -> Result<(u64, f64), Failure> {
    let db = sled::Config::new()
        .path(dir)
        .open()
        .map_err(|e| Failure::Other(format!("bench: a scratch sled database: {e}")))?;
    let started = Instant::now();
    let done = std::thread::scope(|s| {
        let writers: Vec<_> = (0..clients)
            .map(|w| {
                let db = &db;
                s.spawn(move || -> Result<u64, sled::Error> {
                    let mut n = 0;
                    while n < per_client && Instant::now() < deadline {
                        db.insert(format!("{w:04}:{n:012}"), value)?;
                        db.flush()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|h| h.join().unwrap_or(Ok(0)))
            .sum::<Result<u64, sled::Error>>()
    })
    .map_err(|e| Failure::Other(format!("bench: the sled floor: {e}")))?;
    Ok((done, started.elapsed().as_secs_f64()))
}

/// A connection of the floor: inserts one row per transaction.
trait FloorConn: Send {
    fn insert(
        &mut self,
        writer: i32,
        n: i64,
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

struct PgConn(sqlx::PgConnection);
struct SqliteConn(sqlx::SqliteConnection);

impl FloorConn for PgConn {
    async fn insert(&mut self, writer: i32, n: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO bench_floor (writer, n, body) VALUES ($1, $2, $3)")
            .bind(writer)
            .bind(n)
            .bind("x".repeat(64))
            .execute(&mut self.0)
            .await
            .map(|_| ())
    }
}

impl FloorConn for SqliteConn {
    async fn insert(&mut self, writer: i32, n: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO bench_floor (writer, n, body) VALUES (?1, ?2, ?3)")
            .bind(writer)
            .bind(n)
            .bind("x".repeat(64))
            .execute(&mut self.0)
            .await
            .map(|_| ())
    }
}

async fn pg_conn(base: &str, schema: &str) -> Result<PgConn, Failure> {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let opts = sqlx::postgres::PgConnectOptions::from_str(base)
        .map_err(|e| Failure::Other(format!("bench: {e}")))?
        .options([
            ("synchronous_commit", "on".to_owned()),
            ("search_path", format!("\"{schema}\"")),
        ]);
    Ok(PgConn(opts.connect().await.map_err(|e| {
        Failure::Other(format!("bench: connecting the floor: {e}"))
    })?))
}

fn sqlite_options(file: &Path) -> sqlx::sqlite::SqliteConnectOptions {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(MAX_SECONDS))
}

async fn sqlite_setup(file: &Path) -> Result<(), Failure> {
    use sqlx::{ConnectOptions, Connection};
    let mut c = sqlite_options(file)
        .connect()
        .await
        .map_err(|e| Failure::Other(format!("bench: the floor's SQLite file: {e}")))?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_floor (writer int, n bigint, body text)")
        .execute(&mut c)
        .await
        .map_err(|e| Failure::Other(format!("bench: the floor's table: {e}")))?;
    let _ = c.close().await;
    Ok(())
}

async fn sqlite_conn(file: &Path) -> Result<SqliteConn, Failure> {
    use sqlx::ConnectOptions;
    Ok(SqliteConn(sqlite_options(file).connect().await.map_err(
        |e| Failure::Other(format!("bench: connecting the floor: {e}")),
    )?))
}

/// `clients` connections (from `connect`), each making up to `per_client` one-row
/// transactions on a task of its own.
async fn sql_floor<C, F, Fut>(
    clients: usize,
    per_client: u64,
    deadline: Instant,
    connect: F,
) -> Result<(u64, f64), Failure>
where
    C: FloorConn + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<C, Failure>>,
{
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(connect().await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(w, mut c)| {
            tokio::spawn(async move {
                let mut n = 0u64;
                while n < per_client && Instant::now() < deadline {
                    c.insert(w as i32, n as i64).await?;
                    n += 1;
                }
                Ok::<u64, sqlx::Error>(n)
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t
            .await
            .map_err(|e| Failure::Other(format!("bench: a floor writer failed: {e}")))?
            .map_err(|e| Failure::Other(format!("bench: a floor writer failed: {e}")))?;
    }
    Ok((done, started.elapsed().as_secs_f64()))
}
