//! `GET /v1/export` (docs/events.md, "Export") over real HTTP, on sled and PostgreSQL:
//! the same bytes as the store's own export, behind the bearer token, and taken back
//! whole by `POST /v1/events` of an empty store.

mod common;

use std::sync::Arc;

use common::{config, Server};
use smsreport_conformance::{assert_same_state, export_text};
use smsreport_core::mem::MemStore;
use smsreport_core::Store;
use smsreport_http::Config;

const BASIC: &str = include_str!("../../conformance/fixtures/basic.ndjson");
const INSIGHTS: &str = include_str!("../../conformance/fixtures/insights.ndjson");

on_every_store!(export_streams_the_store);

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
