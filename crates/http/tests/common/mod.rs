//! The real server on 127.0.0.1 port 0, a small HTTP/1.1 client that sends exactly the
//! bytes it is given (so odd paths reach the server as they are), and the stores:
//! sled in a temporary folder, PostgreSQL in a fresh schema of the test server
//! (`smsreport_conformance::pg`: `SMSREPORT_TEST_PG`, skipped at run time when `skip`).
#![allow(dead_code)]

pub mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smsreport_conformance::pg::Schema;
use smsreport_core::Store;
use smsreport_http::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts the service over `store`; `cfg` gets `public_url` = this server's address
    /// unless `public_url` is not empty.
    pub async fn start(store: Arc<dyn Store>, cfg: Config) -> Server {
        Server::start_with(store, cfg, smsreport_http::ConnLimits::default()).await
    }

    /// [`Server::start`] with these connection limits.
    pub async fn start_with(
        store: Arc<dyn Store>,
        mut cfg: Config,
        limits: smsreport_http::ConnLimits,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        if cfg.public_url.is_empty() {
            cfg.public_url = format!("http://{addr}");
        }
        let app = smsreport_http::router(store.clone(), cfg);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            smsreport_http::serve_with(listener, app, &limits, async move {
                let _ = rx.await;
            })
            .await
        });
        Server {
            addr,
            store,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Asks the server to stop (as SIGTERM does).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(self.addr, "GET", path, &[], b"").await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        send(self.addr, "POST", path, headers, body).await
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        send(self.addr, method, path, headers, body).await
    }

    /// POSTs NDJSON to /v1/events and expects 200.
    pub async fn events(&self, ndjson: &str) -> serde_json::Value {
        let r = self.post("/v1/events", &[], ndjson.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

/// A config with no secrets and the public URL left to [`Server::start`].
pub fn config() -> Config {
    Config::new("")
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    /// Asserts a JSON error answer with this status.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text()
        );
        let v = self.json();
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {v}"))
            .to_owned()
    }
}

/// Sends one request on a new connection (`Connection: close`) and reads the answer.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut has_length = false;
    for (k, v) in headers {
        has_length |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length && (!body.is_empty() || method == "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).ok();
    let (mut r, mut w) = s.into_split();
    let mut data = head.into_bytes();
    data.extend_from_slice(body);
    // Write while reading: a server may answer (413) before the body is all sent.
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&data).await;
        w
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within 60 s");
    let _ = writer.await;
    parse(&buf, method == "HEAD")
}

/// Parses an HTTP/1.1 answer (Content-Length, chunked, or to the end).
pub fn parse(buf: &[u8], head_only: bool) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if head_only {
        Vec::new()
    } else if chunked {
        let mut out = Vec::new();
        let mut p = rest;
        while let Some(nl) = p.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&p[..nl])
                    .split(';')
                    .next()
                    .unwrap_or("0")
                    .trim(),
                16,
            )
            .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&p[nl + 2..nl + 2 + size]);
            p = &p[nl + 2 + size + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// A fresh sled store; the folder goes when the guard is dropped.
pub fn sled_store() -> (Arc<dyn Store>, Box<dyn std::any::Any + Send>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = smsreport_sled::SledStore::open(&dir.path().join("db")).expect("open sled");
    (Arc::new(store), Box::new(dir))
}

/// A fresh PostgreSQL store in its own schema (`smsreport_conformance::pg`), or `None`
/// when `test` is skipped (`smsreport_conformance::or_skip`: a failure under `CI=true`).
pub async fn pg_store(test: &str) -> Option<(Arc<dyn Store>, Box<dyn std::any::Any + Send>)> {
    let schema = smsreport_conformance::or_skip(test, Schema::fresh())?;
    let store = smsreport_sql::PgStore::connect(&schema.url("pool_max=4"))
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL for the tests (set SMSREPORT_TEST_PG to another server, or to `skip`): {e}")
        });
    Some((Arc::new(store), Box::new(schema)))
}

/// A PostgreSQL store whose schema was dropped after it opened: every call fails in the
/// backend, with PostgreSQL's own words (`relation … does not exist`). `None` as for
/// [`pg_store`].
pub async fn broken_pg_store(test: &str) -> Option<Arc<dyn Store>> {
    let schema = smsreport_conformance::or_skip(test, Schema::fresh())?;
    let store = smsreport_sql::PgStore::connect(&schema.url("pool_max=4"))
        .await
        .expect("PostgreSQL for the tests");
    store.drop_schema().await.expect("drop the schema");
    Some(Arc::new(store))
}

/// Runs each named `async fn(Arc<dyn Store>)` of the enclosing module as a test on a
/// sled store and on a PostgreSQL store.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _guard) = $crate::common::sled_store();
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    let Some((store, _guard)) = $crate::common::pg_store(test).await else {
                        return;
                    };
                    super::$name(store).await;
                }
            )*
        }
    };
}
