//! `GET /v1/export` (docs/events.md, "Export") and `DELETE /v1/recipients/{E164}`
//! (docs/rules.md, "Forgetting a person") over real HTTP, on sled and PostgreSQL: the
//! export is the store's own bytes, behind the bearer token, and taken back whole by
//! `POST /v1/events` of an empty store; a forgotten number is gone from what the service
//! answers.

mod common;

use std::sync::Arc;

use common::{config, Server};
use smsreport_conformance::{assert_same_state, export_text};
use smsreport_core::mem::MemStore;
use smsreport_core::Store;
use smsreport_http::Config;

const BASIC: &str = include_str!("../../conformance/fixtures/basic.ndjson");
const INSIGHTS: &str = include_str!("../../conformance/fixtures/insights.ndjson");

on_every_store!(export_streams_the_store, forget_over_http);

async fn export_streams_the_store(store: Arc<dyn Store>) {
    let mut cfg = Config::new("");
    cfg.token = Some("a-token-of-sixteen-chars".into());
    let s = Server::start(store.clone(), cfg).await;
    let auth = [("authorization", "Bearer a-token-of-sixteen-chars")];
    for body in [BASIC, INSIGHTS] {
        let r = s.post("/v1/events", &auth, body.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // More than one page of lines, so the body comes in several chunks.
    let mut more = String::new();
    for i in 0..1_500 {
        more.push_str(&format!(
            "{{\"type\":\"message\",\"message_id\":\"bulk-{i:05}\",\"campaign_id\":\"spring-sale\",\"recipient\":\"+3712{i:07}\",\"at\":\"2026-03-01T09:00:00Z\"}}\n"
        ));
    }
    let r = s.post("/v1/events", &auth, more.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let denied = s.get("/v1/export").await;
    denied.assert_error(401);

    let r = s.req("GET", "/v1/export", &auth, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "streamed, not buffered"
    );
    let served = r.text();
    assert_eq!(
        served,
        export_text(&*store, smsreport_core::export::PAGE).await,
        "the served export is the store's export"
    );
    assert!(served.lines().count() > 1_500, "every line is served");

    // An empty store takes it back whole over HTTP.
    let copy: Arc<dyn Store> = Arc::new(MemStore::default());
    let c = Server::start(copy.clone(), config()).await;
    let v = c.events(&served).await;
    assert_eq!(v["ingested"], served.lines().count() as u64, "{v}");
    assert_eq!(v["rejected"], serde_json::json!([]), "{v}");
    assert_same_state(&*store, &*copy, "a store and its export served over HTTP").await;
}

async fn forget_over_http(store: Arc<dyn Store>) {
    let mut cfg = Config::new("");
    cfg.token = Some("a-token-of-sixteen-chars".into());
    let s = Server::start(store.clone(), cfg).await;
    let auth = [("authorization", "Bearer a-token-of-sixteen-chars")];
    let r = s.post("/v1/events", &auth, BASIC.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = s
        .req("GET", "/v1/campaigns/spring-sale/report", &auth, b"")
        .await
        .json();

    s.req("DELETE", "/v1/recipients/%2B37120000001", &[], b"")
        .await
        .assert_error(401);
    s.req("DELETE", "/v1/recipients/37120000001", &auth, b"")
        .await
        .assert_error(400);
    let r = s
        .req("DELETE", "/v1/recipients/%2B37120000001", &auth, b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"messages": 1, "contacts": 1, "clicks": 2, "tracked_links": 0})
    );
    let r = s
        .req("DELETE", "/v1/recipients/%2B37120000001", &auth, b"")
        .await;
    assert_eq!(
        r.json(),
        serde_json::json!({"messages": 0, "contacts": 0, "clicks": 0, "tracked_links": 0}),
        "forgetting again changes nothing"
    );

    let mut want = before.clone();
    want["contact_list"]["subscribers"] = serde_json::json!(2);
    let after = s
        .req("GET", "/v1/campaigns/spring-sale/report", &auth, b"")
        .await
        .json();
    assert_eq!(after["delivery"], want["delivery"]);
    assert_eq!(after["links"], want["links"]);
    assert_eq!(after["contact_list"], want["contact_list"]);
    let page = s
        .req("GET", "/v1/campaigns/spring-sale/recipients", &auth, b"")
        .await;
    let text = page.text();
    assert!(!text.contains("+37120000001"), "{text}");
    assert!(text.contains("\"recipient\":\"forgotten\""), "{text}");
    let export = s.req("GET", "/v1/export", &auth, b"").await.text();
    assert!(!export.contains("+37120000001"), "{export}");
}
