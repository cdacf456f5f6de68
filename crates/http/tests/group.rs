//! Group commit through the real server (ARCHITECTURE.md, "Group commit"), on sled and
//! PostgreSQL: requests gathered into one store write each get their own answer, and a
//! failed write fails each of its requests with 503 and stores none of them.
//!
//! To gather requests deterministically, the store is wrapped in a [`Gate`]: one request
//! is held inside the store while the others queue behind it (their order is the order
//! they are sent in, each sent once the one before it waits), then the gate opens and the
//! queued requests go in one write. With several writers, several requests are held in
//! the store at once, and the gate can let the first calls through while holding the
//! later ones.

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
    with_several_writers_concurrent_batches_each_get_their_own_outcome,
    with_several_writers_a_failed_batch_answers_503_to_each_of_its_requests_only,
    many_clients_through_four_writers_lose_nothing_acknowledged,
);

/// A store whose ingests can be held at a gate, and some of whose calls can be failed.
#[derive(Debug, Default)]
struct Gate {
    inner: Option<Arc<dyn Store>>,
    closed: AtomicBool,
    /// While closed, the calls numbered up to this one pass all the same.
    passed: AtomicUsize,
    entered: AtomicUsize,
    /// The number (from 1) of the ingest call to fail; 0: none.
    fail_call: AtomicUsize,
    /// Fails every call whose number is a multiple of this; 0: none.
    fail_every: AtomicUsize,
    /// Each call takes 2 ms more.
    slow: AtomicBool,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
}

impl Gate {
    fn inner(&self) -> &dyn Store {
        self.inner.as_deref().expect("a store behind the gate")
    }

    async fn call(&self, call: usize, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        while self.closed.load(Ordering::SeqCst) && call > self.passed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let every = self.fail_every.load(Ordering::SeqCst);
        if self.fail_call.load(Ordering::SeqCst) == call
            || (every > 0 && call.is_multiple_of(every))
        {
            return Err(StoreError::backend(
                "writing a batch",
                std::io::Error::other("the disk is on fire"),
            ));
        }
        self.inner().ingest(events).await
    }
}

#[async_trait]
impl Store for Gate {
    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let call = self.entered.fetch_add(1, Ordering::SeqCst) + 1;
        let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(inside, Ordering::SeqCst);
        let result = self.call(call, events).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        result
    }
    async fn totals(&self, c: &str) -> Result<Option<CampaignTotals>, StoreError> {
        self.inner().totals(c).await
    }
    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
        self.inner().all_totals().await
    }
    async fn edge_clicks(&self, c: &str) -> Result<BTreeMap<Millis, i64>, StoreError> {
        self.inner().edge_clicks(c).await
    }
    async fn messages(
        &self,
        c: &str,
        f: &MessageFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
        self.inner().messages(c, f, after, limit).await
    }
    async fn recount(&self) -> Result<Recount, StoreError> {
        self.inner().recount().await
    }
    async fn save_links(&self, l: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
        self.inner().save_links(l).await
    }
    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
        self.inner().resolve_link(code).await
    }
}

/// The service over a gated group commit over `store`.
struct Setup {
    gate: Arc<Gate>,
    group: Arc<GroupCommit>,
    server: Server,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    setup_with(store, 1).await
}

async fn setup_with(store: Arc<dyn Store>, writers: usize) -> Setup {
    let gate = Arc::new(Gate {
        inner: Some(store),
        ..Gate::default()
    });
    let group_config = GroupConfig {
        writers,
        ..GroupConfig::default()
    };
    let group = Arc::new(GroupCommit::new(gate.clone(), group_config));
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
    let r = report(&s).await;
    assert_eq!(
        (&r["delivery"]["total"], &r["delivery"]["delivered"]),
        (&json!(2), &json!(0)),
        "{r}"
    );
    // The gateway's retries: each is new, and then all of it is there.
    retry(&s, &queued).await;
    let r = report(&s).await;
    assert_eq!(
        (&r["delivery"]["total"], &r["delivery"]["delivered"]),
        (&json!(8), &json!(2)),
        "{r}"
    );
}

/// Sends a request and waits until it waits in the group commit; its answer to come.
/// The `gc` campaign's report.
async fn report(s: &Setup) -> serde_json::Value {
    common::send(
        s.server.addr,
        "GET",
        "/v1/campaigns/gc/report?as_of=2026-03-05T00:00:00Z",
        &[],
        b"",
    )
    .await
    .json()
}

/// Posts each of `queued` again, as a gateway retries a `503`: each must be new.
async fn retry(s: &Setup, queued: &[Req]) {
    for (path, headers, body) in queued {
        let a = s.server.post(path, headers, body.as_bytes()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(a.json()["ingested"], 1, "{path} {body}: {}", a.text());
    }
}

async fn send_queued(s: &Setup, (path, headers, body): Req) -> tokio::task::JoinHandle<Resp> {
    let waiting = s.group.stats().waiting;
    let addr = s.server.addr;
    let answer =
        tokio::spawn(
            async move { common::send(addr, "POST", path, &headers, body.as_bytes()).await },
        );
    until("the request to wait in the group commit", || {
        s.group.stats().waiting == waiting + 1
    })
    .await;
    answer
}

/// Waits until `calls` ingest calls reached the gate.
async fn until_entered(s: &Setup, calls: usize) {
    until("a call to reach the store", || {
        s.gate.entered.load(Ordering::SeqCst) == calls
    })
    .await;
}

/// Three writers: three requests held in the store at once (one writer would not let the
/// second in while the first is held), then, while two of them still are, the queued
/// requests in one write beside them. Within that write, each request's outcomes are
/// those of sequential calls; the message both concurrent requests b and c send is new
/// in exactly one of them, whichever committed first.
async fn with_several_writers_concurrent_batches_each_get_their_own_outcome(store: Arc<dyn Store>) {
    let s = setup_with(store, 3).await;
    s.server
        .events(&format!("{CAMPAIGN}\n{}", message("m0", "+37120000000")))
        .await;
    s.gate.closed.store(true, Ordering::SeqCst);
    let both = message("both", "+37120000097");
    let mut held = Vec::new();
    for (i, body) in [
        message("a", "+37120000095"),
        format!("{}\n{both}", message("b", "+37120000096")),
        format!("{}\n{both}", message("c", "+37120000094")),
    ]
    .into_iter()
    .enumerate()
    {
        held.push(send_queued(&s, events(body)).await);
        until_entered(&s, 2 + i).await;
    }
    assert_eq!(s.gate.inside.load(Ordering::SeqCst), 3);
    const N: usize = 12;
    let mut queued = Vec::new();
    for i in 1..=N {
        let body = format!(
            "{}\n{}{{\"type\":\"status\"}}\n{}\n{}\n",
            message(&format!("m{i}"), &format!("+371200000{i:02}")),
            "\n".repeat(i),
            message("shared", "+37120000099"),
            delivered(&format!("m{i}")),
        );
        queued.push(send_queued(&s, events(body)).await);
    }
    queued.push(send_queued(&s, twilio("MessageSid=m0&MessageStatus=sent")).await);
    queued.push(send_queued(&s, twilio("MessageSid=m0&MessageStatus=delivered")).await);
    // a's call ends; its writer takes every queued request, and is held with them.
    s.gate.passed.store(2, Ordering::SeqCst);
    until_entered(&s, 5).await;
    assert_eq!(s.gate.inside.load(Ordering::SeqCst), 3);
    s.gate.closed.store(false, Ordering::SeqCst);

    let mut answers = Vec::new();
    for a in held.into_iter().chain(queued) {
        answers.push(a.await.unwrap());
    }
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "request {i}: {}", a.text());
    }
    assert_eq!(answers[0].json()["ingested"], 1);
    let mut bc: Vec<_> = answers[1..3]
        .iter()
        .map(|a| (a.json()["ingested"].clone(), a.json()["duplicates"].clone()))
        .collect();
    bc.sort_by_key(|(i, _)| i.as_u64());
    assert_eq!(
        bc,
        vec![(json!(1), json!(1)), (json!(2), json!(0))],
        "`both` is new in exactly one of b and c"
    );
    for (i, a) in answers[3..3 + N].iter().enumerate() {
        let first = i == 0;
        assert_eq!(
            a.json(),
            json!({
                "ingested": if first { 3 } else { 2 },
                "duplicates": if first { 0 } else { 1 },
                "rejected": [{"line": i + 3, "reason": "message_id: missing"}],
                "rejected_count": 1,
            }),
            "queued request {}",
            i + 1
        );
    }
    for a in &answers[3 + N..] {
        assert_eq!(a.json(), json!({"ingested": 1, "duplicates": 0}));
    }
    let stats = s.group.stats();
    assert_eq!(
        (
            stats.batches,
            stats.max_batch_requests,
            stats.failed_batches,
            stats.waiting
        ),
        (5, (N + 2) as u64, 0, 0),
        "{stats:?}"
    );
    // m0, a, b, c, both, shared and m1..m12; m0 and m1..m12 delivered.
    let report = s
        .server
        .get("/v1/campaigns/gc/report?as_of=2026-03-05T00:00:00Z")
        .await
        .json();
    assert_eq!(report["delivery"]["total"], 18, "{report}");
    assert_eq!(report["delivery"]["delivered"], 13, "{report}");
    let verify = s.group.verify().await.unwrap();
    assert!(verify.differences.is_empty(), "{verify:?}");
}

/// Two writers: a write of nine requests fails while another write is in the store
/// beside it: each of the nine is answered 503, the other request 200, and nothing of
/// the nine is stored until the gateways post them again.
async fn with_several_writers_a_failed_batch_answers_503_to_each_of_its_requests_only(
    store: Arc<dyn Store>,
) {
    let s = setup_with(store, 2).await;
    s.server
        .events(&format!("{CAMPAIGN}\n{}", message("m0", "+37120000000")))
        .await;
    s.gate.closed.store(true, Ordering::SeqCst);
    let a = send_queued(&s, events(message("a", "+37120000098"))).await;
    until_entered(&s, 2).await;
    let b = send_queued(&s, events(message("b", "+37120000097"))).await;
    until_entered(&s, 3).await;
    let mut queued: Vec<Req> = (1..=6)
        .map(|i| events(message(&format!("m{i}"), &format!("+371200000{i:02}"))))
        .collect();
    queued.push(twilio("MessageSid=m0&MessageStatus=delivered"));
    queued.push((
        "/v1/webhooks/smpp",
        vec![],
        "id:m0 sub:001 dlvrd:001 submit date:2603010900 done date:2603010905 stat:DELIVRD err:000 text:x".into(),
    ));
    queued.push(events(delivered("a")));
    let mut rest = Vec::new();
    for r in queued.clone() {
        rest.push(send_queued(&s, r).await);
    }
    // a's call ends; the nine go in call 4, which fails while b's call 3 is held.
    s.gate.fail_call.store(4, Ordering::SeqCst);
    s.gate.passed.store(2, Ordering::SeqCst);
    until_entered(&s, 4).await;
    let a = a.await.unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    s.gate.closed.store(false, Ordering::SeqCst);
    for (i, r) in rest.into_iter().enumerate() {
        let r = r.await.unwrap();
        assert_eq!(
            r.assert_error(503),
            "the store is unavailable",
            "request {i}"
        );
    }
    let b = b.await.unwrap();
    assert_eq!(b.status, 200, "{}", b.text());
    assert_eq!(b.json()["ingested"], 1);
    let stats = s.group.stats();
    assert_eq!(
        (stats.batches, stats.failed_batches, stats.waiting),
        (4, 1, 0),
        "{stats:?}"
    );
    let r = report(&s).await;
    assert_eq!(
        (&r["delivery"]["total"], &r["delivery"]["delivered"]),
        (&json!(3), &json!(0)),
        "{r}"
    );
    retry(&s, &queued).await;
    let r = report(&s).await;
    assert_eq!(
        (&r["delivery"]["total"], &r["delivery"]["delivered"]),
        (&json!(9), &json!(2)),
        "{r}"
    );
}

/// Four writers, 16 clients posting 12 requests each (a message of its own and a
/// status of m0), every fourth store call failing: more than one write in the store at
/// once and never more than four; every request answered 200 or 503; every message
/// answered 200 stored and none answered 503; each 503, posted again, new.
async fn many_clients_through_four_writers_lose_nothing_acknowledged(store: Arc<dyn Store>) {
    let s = setup_with(store, 4).await;
    s.server
        .events(&format!("{CAMPAIGN}\n{}", message("m0", "+37120000000")))
        .await;
    s.gate.slow.store(true, Ordering::SeqCst);
    s.gate.fail_every.store(4, Ordering::SeqCst);
    const CLIENTS: usize = 16;
    const EACH: usize = 12;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let addr = s.server.addr;
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..EACH {
                    let body = format!(
                        "{}\n{}\n",
                        message(&format!("m{c}-{i}"), &format!("+3712{c:02}{i:05}")),
                        delivered("m0")
                    );
                    let r = common::send(addr, "POST", "/v1/events", &[], body.as_bytes()).await;
                    answers.push((body, r));
                }
                answers
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        for (body, r) in c.await.unwrap() {
            match r.status {
                200 => {
                    ok += 1;
                    assert_eq!(
                        r.json()["ingested"].as_u64().unwrap()
                            + r.json()["duplicates"].as_u64().unwrap(),
                        2,
                        "{}",
                        r.text()
                    );
                }
                _ => {
                    assert_eq!(r.assert_error(503), "the store is unavailable");
                    failed.push(body);
                }
            }
        }
    }
    let stats = s.group.stats();
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert!(stats.failed_batches > 0 && !failed.is_empty(), "{stats:?}");
    assert_eq!(ok + failed.len(), CLIENTS * EACH);
    let most = s.gate.most_inside.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&most),
        "{most} writes in the store at once"
    );
    let total = |s: &Setup| {
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
            .json()["delivery"]["total"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(total(&s).await, 1 + ok as u64);
    s.gate.fail_every.store(0, Ordering::SeqCst);
    for body in &failed {
        let a = s.server.post("/v1/events", &[], body.as_bytes()).await;
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["ingested"], 1, "{body}: {}", a.text());
    }
    assert_eq!(total(&s).await, 1 + (CLIENTS * EACH) as u64);
    let verify = s.group.verify().await.unwrap();
    assert!(verify.differences.is_empty(), "{verify:?}");
}
