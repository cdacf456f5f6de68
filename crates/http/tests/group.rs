//! Group commit through the real server (ARCHITECTURE.md, "Group commit"), on sled and
//! PostgreSQL: requests gathered into one store write each get their own answer, and a
//! failed write fails each of its requests with 503 and stores none of them.
//!
//! To gather requests deterministically, the store is wrapped in a [`Gate`]: one request
//! is held inside the store while the others queue behind it (their order is the order
//! they are sent in, each sent once the one before it waits), then the gate opens and the
//! queued requests go in one write.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{config, Resp, Server};
use serde_json::json;
use smsreport_core::engine::MessageRecord;
use smsreport_core::insights::MessageFilter;
use smsreport_core::report::{CampaignTotals, Recount};
use smsreport_core::{Event, Millis, Outcome, Store, StoreError, TrackedLink};
use smsreport_http::{GroupCommit, GroupConfig};

on_every_store!(
    concurrent_requests_each_get_their_own_outcome,
    a_store_failure_mid_batch_answers_503_to_every_request_in_it,
);

/// A store whose ingests can be held at a gate, and one of whose calls can be failed.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn Store>,
    closed: AtomicBool,
    entered: AtomicUsize,
    /// The number (from 1) of the ingest call to fail; 0: none.
    fail_call: AtomicUsize,
}

#[async_trait]
impl Store for Gate {
    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let call = self.entered.fetch_add(1, Ordering::SeqCst) + 1;
        while self.closed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if self.fail_call.load(Ordering::SeqCst) == call {
            return Err(StoreError::backend(
                "writing a batch",
                std::io::Error::other("the disk is on fire"),
            ));
        }
        self.inner.ingest(events).await
    }
    async fn totals(&self, c: &str) -> Result<Option<CampaignTotals>, StoreError> {
        self.inner.totals(c).await
    }
    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
        self.inner.all_totals().await
    }
    async fn edge_clicks(&self, c: &str) -> Result<BTreeMap<Millis, i64>, StoreError> {
        self.inner.edge_clicks(c).await
    }
    async fn messages(
        &self,
        c: &str,
        f: &MessageFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
        self.inner.messages(c, f, after, limit).await
    }
    async fn recount(&self) -> Result<Recount, StoreError> {
        self.inner.recount().await
    }
    async fn save_links(&self, l: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
        self.inner.save_links(l).await
    }
    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
        self.inner.resolve_link(code).await
    }
}

/// The service over a gated group commit over `store`.
struct Setup {
    gate: Arc<Gate>,
    group: Arc<GroupCommit>,
    server: Server,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    let gate = Arc::new(Gate {
        inner: store,
        closed: AtomicBool::new(false),
        entered: AtomicUsize::new(0),
        fail_call: AtomicUsize::new(0),
    });
    let group = Arc::new(GroupCommit::new(gate.clone(), GroupConfig::default()));
    let mut cfg = config();
    cfg.group = Some(group.clone());
    let server = Server::start(group.clone(), cfg).await;
    Setup {
        gate,
        group,
        server,
    }
}

/// Waits (polling) until `ok` holds; fails after a minute instead of hanging.
async fn until(what: &str, ok: impl Fn() -> bool) {
    for _ in 0..60_000 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("still waiting for {what}");
}

/// One request to send: path, headers, body.
type Req = (&'static str, Vec<(&'static str, &'static str)>, String);

fn events(body: String) -> Req {
    ("/v1/events", vec![], body)
}

fn twilio(body: &str) -> Req {
    (
        "/v1/webhooks/twilio",
        vec![("Content-Type", "application/x-www-form-urlencoded")],
        body.to_owned(),
    )
}

/// Sends `held`, waits until its store call is held at the gate, sends `queued` one after
/// the other (each once the one before waits in the group commit), opens the gate, and
/// returns every answer: `held`'s first.
async fn one_batch_behind_a_held_one(s: &Setup, held: Req, queued: Vec<Req>) -> Vec<Resp> {
    s.gate.closed.store(true, Ordering::SeqCst);
    let entered = s.gate.entered.load(Ordering::SeqCst);
    let mut answers = Vec::new();
    for (i, (path, headers, body)) in std::iter::once(held).chain(queued).enumerate() {
        let waiting = s.group.stats().waiting;
        let addr = s.server.addr;
        answers.push(tokio::spawn(async move {
            common::send(addr, "POST", path, &headers, body.as_bytes()).await
        }));
        until("the request to wait in the group commit", || {
            s.group.stats().waiting == waiting + 1
        })
        .await;
        if i == 0 {
            until("the held call to reach the store", || {
                s.gate.entered.load(Ordering::SeqCst) == entered + 1
            })
            .await;
        }
    }
    s.gate.closed.store(false, Ordering::SeqCst);
    let mut out = Vec::new();
    for a in answers {
        out.push(a.await.unwrap());
    }
    out
}

const CAMPAIGN: &str = r#"{"type":"campaign","campaign_id":"gc","name":"Group commit"}"#;

fn message(id: &str, recipient: &str) -> String {
    format!(
        r#"{{"type":"message","message_id":"{id}","campaign_id":"gc","recipient":"{recipient}","at":"2026-03-01T09:00:00Z"}}"#
    )
}

fn delivered(id: &str) -> String {
    format!(
        r#"{{"type":"status","message_id":"{id}","status":"delivered","at":"2026-03-01T09:00:07Z"}}"#
    )
}

async fn concurrent_requests_each_get_their_own_outcome(store: Arc<dyn Store>) {
    let s = setup(store).await;
    s.server
        .events(&format!("{CAMPAIGN}\n{}", message("m0", "+37120000000")))
        .await;
    const N: usize = 12;
    // Request i: its own message; i blank lines and a bad line (rejected at line i + 2);
    // a message every request sends; its message's status.
    let mut queued: Vec<Req> = (1..=N)
        .map(|i| {
            events(format!(
                "{}\n{}{{\"type\":\"status\"}}\n{}\n{}\n",
                message(&format!("m{i}"), &format!("+371200000{i:02}")),
                "\n".repeat(i),
                message("shared", "+37120000099"),
                delivered(&format!("m{i}")),
            ))
        })
        .collect();
    // Two statuses of m0, one of them twice (a gateway's retry).
    queued.push(twilio("MessageSid=m0&MessageStatus=sent"));
    queued.push(twilio("MessageSid=m0&MessageStatus=delivered"));
    queued.push(twilio("MessageSid=m0&MessageStatus=delivered"));
    let held = events(message("held", "+37120000098"));
    let answers = one_batch_behind_a_held_one(&s, held, queued).await;

    assert_eq!(answers[0].status, 200, "{}", answers[0].text());
    assert_eq!(answers[0].json()["ingested"], 1);
    for (i, a) in answers.iter().enumerate().take(N + 1).skip(1) {
        assert_eq!(a.status, 200, "request {i}: {}", a.text());
        // The first request in the batch ingests the shared message; every later one
        // finds it a duplicate, as a later call would.
        let first = i == 1;
        assert_eq!(
            a.json(),
            json!({
                "ingested": if first { 3 } else { 2 },
                "duplicates": if first { 0 } else { 1 },
                "rejected": [{"line": i + 2, "reason": "message_id: missing"}],
                "rejected_count": 1,
            }),
            "request {i}"
        );
    }
    let twilio: Vec<_> = answers[N + 1..]
        .iter()
        .map(|a| (a.status, a.json()))
        .collect();
    assert_eq!(
        twilio,
        vec![
            (200, json!({"ingested": 1, "duplicates": 0})),
            (200, json!({"ingested": 1, "duplicates": 0})),
            (200, json!({"ingested": 0, "duplicates": 1})),
        ]
    );
    let stats = s.group.stats();
    assert_eq!(
        (
            stats.max_batch_requests,
            stats.failed_batches,
            stats.waiting
        ),
        ((N + 3) as u64, 0, 0),
        "the queued requests went in one write: {stats:?}"
    );
    // /metrics shows the same: the batch of N + 3 = 15 requests in the `16` bucket (9–16).
    let scrape = s.server.get("/metrics").await.text();
    let sample = |line: &str| {
        scrape
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{scrape}"))
    };
    assert_eq!(
        sample("smsreport_group_commit_batches_total{requests=\"16\"}"),
        1
    );
    assert_eq!(
        sample("smsreport_group_commit_requests_total "),
        stats.requests
    );
    assert_eq!(sample("smsreport_group_commit_failed_batches_total "), 0);
    // m0, held, shared and m1..m12; m0 and m1..m12 delivered.
    let report = s
        .server
        .get("/v1/campaigns/gc/report?as_of=2026-03-05T00:00:00Z")
        .await
        .json();
    assert_eq!(report["delivery"]["total"], 15, "{report}");
    assert_eq!(report["delivery"]["delivered"], 13, "{report}");
    let verify = s.group.verify().await.unwrap();
    assert!(verify.differences.is_empty(), "{verify:?}");
}

async fn a_store_failure_mid_batch_answers_503_to_every_request_in_it(store: Arc<dyn Store>) {
    let s = setup(store).await;
    s.server
        .events(&format!("{CAMPAIGN}\n{}", message("m0", "+37120000000")))
        .await;
    // The held call (2) succeeds; the queued requests' write (3) fails.
    s.gate.fail_call.store(3, Ordering::SeqCst);
    let mut queued: Vec<Req> = (1..=6)
        .map(|i| events(message(&format!("m{i}"), &format!("+371200000{i:02}"))))
        .collect();
    queued.push(twilio("MessageSid=m0&MessageStatus=delivered"));
    queued.push((
        "/v1/webhooks/smpp",
        vec![],
        "id:m0 sub:001 dlvrd:001 submit date:2603010900 done date:2603010905 stat:DELIVRD err:000 text:x".into(),
    ));
    queued.push(events(delivered("held")));
    let held = events(message("held", "+37120000098"));
    let answers = one_batch_behind_a_held_one(&s, held, queued.clone()).await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].text());
    for (i, a) in answers[1..].iter().enumerate() {
        assert_eq!(
            a.assert_error(503),
            "the store is unavailable",
            "request {i}"
        );
    }
    let stats = s.group.stats();
    assert_eq!((stats.failed_batches, stats.waiting), (1, 0), "{stats:?}");
    // What was acknowledged is there; nothing of the failed write is.
    let report = |s: &Setup| {
        let addr = s.server.addr;
        async move {
            common::send(
                addr,
                "GET",
                "/v1/campaigns/gc/report?as_of=2026-03-05T00:00:00Z",
                &[],
                b"",
            )
            .await
            .json()
        }
    };
    let r = report(&s).await;
    assert_eq!(
        (&r["delivery"]["total"], &r["delivery"]["delivered"]),
        (&json!(2), &json!(0)),
        "{r}"
    );
    // The gateway's retries: each is new, and then all of it is there.
    for (path, headers, body) in &queued {
        let a = s.server.post(path, headers, body.as_bytes()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(a.json()["ingested"], 1, "{path} {body}: {}", a.text());
    }
    let r = report(&s).await;
    assert_eq!(
        (&r["delivery"]["total"], &r["delivery"]["delivered"]),
        (&json!(8), &json!(2)),
        "{r}"
    );
}
