//! The attacks of the second security review (docs/security.md), each against a real
//! server over sled and PostgreSQL: every test here failed before its fix.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, Server};
use serde_json::json;
use smsreport_core::Store;
use smsreport_http::ConnLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

on_every_store!(
    metrics_labels_are_bounded,
    slow_silent_and_idle_connections_are_closed,
    a_slow_body_is_408,
    connections_are_capped,
    an_oversized_head_is_431_json,
    shutdown_has_a_deadline,
    a_client_that_never_reads_is_cut,
    a_slow_reader_is_not_cut,
    webhooks_check_secrets_before_the_body,
    callback_bodies_have_a_small_limit,
    echoed_rejections_are_capped,
    many_short_bad_lines_are_answered_in_linear_time,
    csv_cells_are_no_formulas,
    nul_is_rejected_alike_everywhere,
    failed_auth_is_rate_limited,
    unknown_codes_are_rate_limited,
    unauthenticated_routes_hide_store_errors,
    a_replayed_signed_callback_moves_nothing,
);

/// Waits for `f`, failing the test if it takes over a minute (a server that never
/// answers would hang it otherwise).
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 60 s"))
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(c: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    // A reset is a close too.
    let _ = within("the server closing the connection", c.read_to_end(&mut buf)).await;
    buf
}

fn short(header: u64, shutdown: u64) -> ConnLimits {
    ConnLimits {
        header_timeout: Duration::from_secs(header),
        shutdown_timeout: Duration::from_secs(shutdown),
        ..ConnLimits::default()
    }
}

async fn metrics_labels_are_bounded(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    for i in 0..40 {
        let method = format!("X{i}{}", "M".repeat(2000));
        s.req(&method, "/healthz", &[], b"").await;
        s.get(&format!("/no/such/route/{i}")).await;
    }
    let m = s.get("/metrics").await.text();
    assert!(!m.contains("MMMM"), "a client's method became a label");
    assert!(!m.contains("/no/such"), "a client's path became a label");
    assert!(m.contains("method=\"other\""), "{m}");
    assert!(m.contains("route=\"unmatched\""), "{m}");
    let series = m
        .lines()
        .filter(|l| l.starts_with("smsreport_http_requests_total{"))
        .count();
    assert!(series <= 4, "{series} series:\n{m}");
}

async fn slow_silent_and_idle_connections_are_closed(store: Arc<dyn Store>) {
    let s = Server::start_with(store, config(), short(1, 30)).await;
    // Silent.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert!(until_closed(&mut c).await.is_empty());
    // A header line now and then, never the end of the head.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (mut r, mut w) = c.into_split();
    let drip = tokio::spawn(async move {
        for i in 0..200 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if w.write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    });
    let mut buf = Vec::new();
    let _ = within("closing a slow head", r.read_to_end(&mut buf)).await;
    drip.abort();
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "a head that never ended was answered"
    );
    // Idle after an answer (keep-alive).
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let buf = until_closed(&mut c).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

async fn a_slow_body_is_408(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.body_timeout = Duration::from_secs(1);
    let s = Server::start(store, cfg).await;
    // Announced, then stalled.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"type\"")
        .await
        .unwrap();
    let r = common::parse(&until_closed(&mut c).await, false);
    assert!(r.assert_error(408).contains("did not arrive within 1 s"));
    // Chunked, a byte at a time.
    let c = TcpStream::connect(s.addr).await.unwrap();
    let (mut rd, mut w) = c.into_split();
    w.write_all(
        b"POST /v1/webhooks/smpp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let drip = tokio::spawn(async move {
        for _ in 0..200 {
            if w.write_all(b"1\r\nx\r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut buf = Vec::new();
    let _ = within("answering a dripping body", rd.read_to_end(&mut buf)).await;
    drip.abort();
    common::parse(&buf, false).assert_error(408);
}

async fn connections_are_capped(store: Arc<dyn Store>) {
    let limits = ConnLimits {
        max_connections: 2,
        ..ConnLimits::default()
    };
    let s = Server::start_with(store, config(), limits).await;
    // Two keep-alive connections, each answered once, so both are being served.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = within("an answer", c.read(&mut buf)).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(c);
    }
    // A third is told so, in JSON, and closed.
    let r = s.get("/healthz").await;
    assert!(r.assert_error(503).contains("too many connections"));
    // Once one goes, there is room again.
    drop(held.pop());
    let mut answered = false;
    for _ in 0..200 {
        if s.get("/healthz").await.status == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "no room after a connection closed");
}

async fn an_oversized_head_is_431_json(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let big = "v".repeat(20 << 10);
    let r = s.req("GET", "/healthz", &[("X-Big", &big)], b"").await;
    assert!(r.assert_error(431).contains("request head"));
    let r = s.get(&format!("/healthz?{big}")).await;
    assert!(r.status == 431 || r.status == 414, "{}", r.status);
    r.assert_error(r.status);
    // Far over the limit: refused without reading it all.
    let huge = "v".repeat(380 << 10);
    s.req("GET", "/healthz", &[("X-Big", &huge)], b"")
        .await
        .assert_error(431);
    // Under it, fine.
    let ok = "v".repeat(8 << 10);
    assert_eq!(
        s.req("GET", "/healthz", &[("X-Ok", &ok)], b"").await.status,
        200
    );
}

async fn shutdown_has_a_deadline(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.body_timeout = Duration::from_secs(3600);
    let mut s = Server::start_with(store, cfg, short(3600, 1)).await;
    // A request whose body never comes.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    // It is in a handler once a later request on another connection is answered.
    assert_eq!(s.get("/healthz").await.status, 200);
    s.shutdown();
    let done = within("the server stopping", s.task.take().unwrap()).await;
    assert!(done.unwrap().is_ok());
    drop(c);
}

/// A request for the 54 KB OpenAPI document: many of them pipelined make many MB of
/// answers from little work.
const BIG_GET: &[u8] = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";

/// A connection whose receive buffer is a few KiB, so that the server's writes stall as
/// soon as its own send buffer is full; `n` pipelined [`BIG_GET`]s are written to it in
/// the background. The write half comes back from the task (dropping it would send FIN).
async fn pipelined(
    addr: std::net::SocketAddr,
    n: usize,
) -> (
    tokio::net::tcp::OwnedReadHalf,
    tokio::task::JoinHandle<tokio::net::tcp::OwnedWriteHalf>,
) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let c = socket.connect(addr).await.unwrap();
    let (r, mut w) = c.into_split();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&BIG_GET.repeat(n)).await;
        w
    });
    (r, writer)
}

/// How many answers `buf` holds (whole or begun).
fn answers(buf: &[u8]) -> usize {
    buf.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count()
}

/// The length of one answer to [`BIG_GET`], head and body (every one is as long: the
/// `date` header has a fixed width).
async fn answer_len(addr: std::net::SocketAddr) -> usize {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(BIG_GET).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let k = within("one answer", c.read(&mut chunk)).await.unwrap();
        assert!(k > 0, "closed before a whole answer");
        buf.extend_from_slice(&chunk[..k]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .expect("a content-length")
                .trim()
                .parse()
                .unwrap();
            if buf.len() >= end + 4 + length {
                return end + 4 + length;
            }
        }
    }
}

async fn a_client_that_never_reads_is_cut(store: Arc<dyn Store>) {
    let limits = ConnLimits {
        write_timeout: Duration::from_secs(1),
        // Only the write timeout may close it.
        header_timeout: Duration::from_secs(3600),
        ..ConnLimits::default()
    };
    let s = Server::start_with(store, config(), limits).await;
    // About 27 MB of answers: far more than the server's send buffer (4 MiB at most)
    // and the client's receive buffer hold.
    let n = 500;
    let (mut r, writer) = pipelined(s.addr, n).await;
    // Never read while the server fills its buffers, stalls, and gives up after 1 s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // What was already sent, then EOF or a reset; without the write timeout the server
    // would go on sending all `n` answers and then hold the idle connection for an hour.
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut buf)).await;
    assert!(
        ended.is_ok(),
        "the connection was still open 24 s after its client stopped reading ({} answers read)",
        answers(&buf)
    );
    let total = n * answer_len(s.addr).await;
    assert!(
        buf.len() < total,
        "all {n} answers were sent to a client that did not read"
    );
    // The server is fine.
    assert_eq!(s.get("/healthz").await.status, 200);
    writer.abort();
}

async fn a_slow_reader_is_not_cut(store: Arc<dyn Store>) {
    let limits = ConnLimits {
        write_timeout: Duration::from_secs(1),
        ..ConnLimits::default()
    };
    let s = Server::start_with(store, config(), limits).await;
    // About 11 MB, read at about 2.5 MB/s: more than the server's send buffer holds, so
    // its writes wait for the reader again and again, for several times the timeout.
    // (The kernel takes more of a blocked write only once about a third of its send
    // buffer is free: a client reading far less than that per timeout would be cut.)
    let n = 200;
    let total = n * answer_len(s.addr).await;
    let (mut r, writer) = pipelined(s.addr, n).await;
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    // 256 KiB, then a pause of 100 ms, until every answer is in.
    while buf.len() < total {
        let mark = buf.len();
        while buf.len() - mark < 256 << 10 && buf.len() < total {
            let read = within("a slow reader's next bytes", r.read(&mut chunk)).await;
            let k = match read {
                Ok(k) if k > 0 => k,
                other => panic!(
                    "a reader that kept reading was cut ({other:?}) after {} of {n} answers, {:?} in",
                    answers(&buf),
                    started.elapsed()
                ),
            };
            buf.extend_from_slice(&chunk[..k]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answers(&buf), n);
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the reads did not outlast the write timeout ({:?}): the test proves nothing",
        started.elapsed()
    );
    drop(writer.await.unwrap());
}

async fn webhooks_check_secrets_before_the_body(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.webhook_key = Some("k".repeat(20));
    cfg.twilio_auth_token = Some("t".repeat(20));
    let s = Server::start(store, cfg).await;
    // A head announcing 16 MiB, and no body at all: the answer comes anyway.
    for (path, extra) in [
        ("/v1/webhooks/smpp", ""),
        ("/v1/webhooks/jasmin", ""),
        ("/v1/webhooks/kannel", ""),
        ("/v1/webhooks/smpp?key=wrong", ""),
        ("/v1/webhooks/twilio", ""),
    ] {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n",
            16 << 20
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = within(path, c.read(&mut buf)).await.unwrap();
        let r = common::parse(&buf[..n], false);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
}

async fn callback_bodies_have_a_small_limit(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let big = format!(
        "MessageSid=SM1&MessageStatus=delivered&To=%2B37120000001&Pad={}",
        "x".repeat(70 << 10)
    );
    for path in [
        "/v1/webhooks/twilio",
        "/v1/webhooks/jasmin",
        "/v1/webhooks/kannel",
    ] {
        let r = s
            .post(
                path,
                &[("Content-Type", "application/x-www-form-urlencoded")],
                big.as_bytes(),
            )
            .await;
        assert!(r.assert_error(413).contains("65536"), "{path}");
    }
    let lines = "id:m1 stat:DELIVRD\n".repeat((1 << 20) / 19 + 1);
    let r = s.post("/v1/webhooks/smpp", &[], lines.as_bytes()).await;
    assert!(r.assert_error(413).contains("1048576"));
}

async fn echoed_rejections_are_capped(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let bad = "{\"type\":\"status\"}\n".repeat(250);
    let v = s.events(&bad).await;
    let listed = v["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), 100, "{v}");
    assert_eq!(
        listed[0],
        json!({"line": 1, "reason": "message_id: missing"})
    );
    assert_eq!(listed[99]["line"], 100);
    assert_eq!(v["rejected_count"], 250);
    // SMPP: the same cap, with the line numbers, whether or not some line went in.
    s.events(r#"{"type":"campaign","campaign_id":"c","name":"C"}"#)
        .await;
    s.events(r#"{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#)
        .await;
    let body = format!(
        "{}id:m1 sub:001 dlvrd:001 submit date:2603010900 done date:2603010901 stat:DELIVRD err:000\n",
        "stat:DELIVRD\n".repeat(150)
    );
    let r = s.post("/v1/webhooks/smpp", &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ingested"], 1);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 100);
    assert_eq!(v["rejected"][99]["line"], 100);
    assert_eq!(v["rejected_count"], 150);
    let r = s
        .post(
            "/v1/webhooks/smpp",
            &[],
            "stat:DELIVRD\n".repeat(150).as_bytes(),
        )
        .await;
    r.assert_error(400);
    assert_eq!(r.json()["rejected"].as_array().unwrap().len(), 100);
    assert_eq!(r.json()["rejected_count"], 150);
}

async fn many_short_bad_lines_are_answered_in_linear_time(store: Arc<dyn Store>) {
    // 4 million one-byte lines: before the fix each batch of 2000 moved the rest of the
    // body, and this took minutes (the client gives up after 60 s).
    let s = Server::start(store, config()).await;
    let body = "x\n".repeat(4_000_000);
    let v = s.events(&body).await;
    assert_eq!(v["rejected_count"], 4_000_000);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 100);
    assert_eq!(v["ingested"], 0);
}

async fn csv_cells_are_no_formulas(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let lines = [
        r#"{"type":"campaign","campaign_id":"f","name":"=HYPERLINK(\"http://evil.example\",\"x\")"}"#,
        r#"{"type":"message","message_id":"m1","campaign_id":"f","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
        r#"{"type":"status","message_id":"m1","status":"failed_routing","error_code":"@SUM(1+1)*cmd|' /C calc'!A0","at":"2026-03-01T09:01:00Z"}"#,
    ]
    .join("\n");
    s.events(&lines).await;
    let report = s
        .get("/v1/campaigns/f/report?format=csv&as_of=2026-03-05T00:00:00Z")
        .await
        .text();
    assert!(
        report.contains("campaign,name,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\","),
        "{report}"
    );
    let recipients = s.get("/campaigns/f/recipients.csv").await.text();
    assert!(
        recipients.contains(",'@SUM(1+1)*cmd|' /C calc'!A0,"),
        "{recipients}"
    );
    // A recipient is a number, left as it is.
    assert!(recipients.contains("m1,+37120000001,"), "{recipients}");
}

async fn nul_is_rejected_alike_everywhere(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let lines = [
        r#"{"type":"campaign","campaign_id":"n","name":"N"}"#,
        r#"{"type":"campaign","campaign_id":"n2","name":"bad\u0000name"}"#,
        r#"{"type":"message","message_id":"m1","campaign_id":"n","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
        r#"{"type":"status","message_id":"m1","status":"failed_routing","error_code":"3\u00004","at":"2026-03-01T09:01:00Z"}"#,
        r#"{"type":"contact","list_id":"l","recipient":"+37120000001","name":"\u0000"}"#,
        r#"{"type":"click","campaign_id":"n","link_id":"l","recipient":"+37120000001","at":"2026-03-01T09:00:00Z","user_agent":"a\u0000"}"#,
    ]
    .join("\n");
    // The batch is not lost: the good lines go in, each bad one is named.
    let v = s.events(&lines).await;
    assert_eq!(v["ingested"], 2, "{v}");
    let nul = "holds a NUL character (U+0000), which no text may hold";
    assert_eq!(
        v["rejected"],
        json!([
            {"line": 2, "reason": format!("name: {nul}")},
            {"line": 4, "reason": format!("error_code: {nul}")},
            {"line": 5, "reason": format!("name: {nul}")},
            {"line": 6, "reason": format!("user_agent: {nul}")},
        ])
    );
    // A gateway's error code.
    let e = s
        .post(
            "/v1/webhooks/twilio",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"MessageSid=m1&MessageStatus=undelivered&ErrorCode=30%0003&To=%2B37120000001",
        )
        .await
        .assert_error(400);
    assert_eq!(e, format!("ErrorCode: {nul}"));
    // In a URL: a 404 (a path naming nothing) or a 400 (a query), naming it, never the
    // store's words.
    for (path, status) in [
        ("/v1/campaigns/n%00/report", 404),
        ("/campaigns/n%00", 404),
        ("/c/AAAAAAA%00", 404),
        ("/v1/campaigns/n/recipients?after=%00", 400),
        ("/campaigns/n/recipients?after=x%00", 400),
        ("/v1/webhooks/kannel?type=1&id=m1&err=%00", 400),
    ] {
        let e = s.get(path).await.assert_error(status);
        assert!(e.contains("NUL"), "{path}: {e}");
    }
    // Nothing of it was stored.
    let r = s.get("/v1/campaigns/n/recipients").await.json();
    assert_eq!(r["items"][0]["status"], "queued", "{r}");
}

async fn failed_auth_is_rate_limited(store: Arc<dyn Store>) {
    let mut cfg = config();
    let token = "a-long-enough-token-0123456789";
    cfg.token = Some(token.to_owned());
    cfg.webhook_key = Some("k".repeat(20));
    cfg.auth_failures_per_minute = 3;
    let s = Server::start(store, cfg).await;
    let right = format!("Bearer {token}");
    let ok = s
        .req("GET", "/v1/campaigns", &[("Authorization", &right)], b"")
        .await;
    assert_eq!(ok.status, 200);
    s.get("/v1/campaigns").await.assert_error(401);
    s.get("/").await.assert_error(401);
    s.post("/v1/webhooks/smpp?key=nope", &[], b"x")
        .await
        .assert_error(403);
    // Three failures: this address now waits, even with the right token.
    let r = s
        .req("GET", "/v1/campaigns", &[("Authorization", &right)], b"")
        .await;
    assert!(r
        .assert_error(429)
        .contains("too many failed authentications"));
    assert!(r.header("retry-after").is_some());
    s.get("/").await.assert_error(429);
    // Routes without authentication are not affected.
    assert_eq!(s.get("/healthz").await.status, 200);
}

async fn unknown_codes_are_rate_limited(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.unknown_codes_per_minute = 3;
    let s = Server::start(store, cfg).await;
    for code in ["AAAAAAAA", "AAAAAAAB", "bad"] {
        s.get(&format!("/c/{code}")).await.assert_error(404);
    }
    let r = s.get("/c/AAAAAAAC").await;
    assert!(r.assert_error(429).contains("too many unknown links"));
    s.req("HEAD", "/c/AAAAAAAD", &[], b"").await;
    assert_eq!(s.req("HEAD", "/c/AAAAAAAD", &[], b"").await.status, 429);
}

/// A store whose link lookups fail with words of its own, as a store can.
#[derive(Debug)]
struct Leaky(Arc<dyn Store>);

#[async_trait::async_trait]
impl Store for Leaky {
    async fn ingest(
        &self,
        e: &[smsreport_core::Event],
    ) -> Result<Vec<smsreport_core::Outcome>, smsreport_core::StoreError> {
        self.0.ingest(e).await
    }
    async fn totals(
        &self,
        c: &str,
    ) -> Result<Option<smsreport_core::report::CampaignTotals>, smsreport_core::StoreError> {
        self.0.totals(c).await
    }
    async fn all_totals(
        &self,
    ) -> Result<Vec<smsreport_core::report::CampaignTotals>, smsreport_core::StoreError> {
        self.0.all_totals().await
    }
    async fn messages(
        &self,
        c: &str,
        f: &smsreport_core::insights::MessageFilter,
        a: Option<&str>,
        n: usize,
    ) -> Result<Vec<(smsreport_core::engine::MessageRecord, i64)>, smsreport_core::StoreError> {
        self.0.messages(c, f, a, n).await
    }
    async fn recount(&self) -> Result<smsreport_core::report::Recount, smsreport_core::StoreError> {
        self.0.recount().await
    }
    async fn edge_clicks(
        &self,
        c: &str,
    ) -> Result<std::collections::BTreeMap<smsreport_core::Millis, i64>, smsreport_core::StoreError>
    {
        self.0.edge_clicks(c).await
    }
    async fn save_links(
        &self,
        l: &[smsreport_core::TrackedLink],
    ) -> Result<Vec<smsreport_core::TrackedLink>, smsreport_core::StoreError> {
        self.0.save_links(l).await
    }
    async fn resolve_link(
        &self,
        _: &str,
    ) -> Result<Option<smsreport_core::TrackedLink>, smsreport_core::StoreError> {
        Err(smsreport_core::StoreError::Invalid(
            "value \"secret-host:5432\" violates check constraint".into(),
        ))
    }
}

async fn unauthenticated_routes_hide_store_errors(store: Arc<dyn Store>) {
    let s = Server::start(Arc::new(Leaky(store)), config()).await;
    for path in ["/readyz", "/c/AAAAAAAA"] {
        let r = s.get(path).await;
        assert_eq!(
            r.assert_error(503),
            "the store is unavailable",
            "{path}: {}",
            r.text()
        );
        assert!(!r.text().contains("secret-host"), "{path}: {}", r.text());
    }
}

/// Finding 5: a signed Twilio `undelivered`, replayed after `delivered`, took its arrival
/// time and made the message undelivered again. An undated status that repeats a status
/// and error code already recorded for its message is a duplicate (docs/rules.md,
/// "Undated receipts").
async fn a_replayed_signed_callback_moves_nothing(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.public_url = "https://sms.example".into();
    cfg.twilio_auth_token = Some("a-twilio-token-of-32-characters!".into());
    let s = Server::start(store, cfg).await;
    s.events(concat!(
        r#"{"type":"campaign","campaign_id":"tw","name":"Twilio"}"#,
        "\n",
        r#"{"type":"message","message_id":"SM1","campaign_id":"tw","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
    ))
    .await;
    let path = "/v1/webhooks/twilio";
    let signed = |status: &str, code: &str| {
        let body = format!("MessageSid=SM1&MessageStatus={status}&ErrorCode={code}&AccountSid=AC1");
        let params = smsreport_core::gateway::Params::parse(&body).unwrap().0;
        let sig = smsreport_http::twilio_signature(
            "a-twilio-token-of-32-characters!",
            &format!("https://sms.example{path}"),
            &params,
        );
        (body, sig)
    };
    let post = |(body, sig): (String, String)| {
        let s = &s;
        async move {
            let r = s
                .post(
                    path,
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("X-Twilio-Signature", &sig),
                    ],
                    body.as_bytes(),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()
        }
    };
    let undelivered = signed("undelivered", "30003");
    assert_eq!(
        post(undelivered.clone()).await,
        json!({"ingested": 1, "duplicates": 0})
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        post(signed("delivered", "")).await,
        json!({"ingested": 1, "duplicates": 0})
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The attacker replays the first callback, signature and all.
    assert_eq!(
        post(undelivered).await,
        json!({"ingested": 0, "duplicates": 1}),
        "a replay is a duplicate"
    );
    let report = s.get("/v1/campaigns/tw/report").await.json();
    assert_eq!(report["delivery"]["delivered"], 1, "{report}");
    assert_eq!(report["delivery"]["undelivered"], 0, "{report}");
}
