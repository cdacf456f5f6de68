//! The drill-down's insight filters over HTTP (`?stale=true`, `?age=`, `?country=`, with
//! `?as_of=` and `?stale_after_h=`), on sled and PostgreSQL, and their 400s.

mod common;

use std::sync::Arc;

use common::{config, Server};
use smsreport_core::Store;

const INSIGHTS: &str = include_str!("../../conformance/fixtures/insights.ndjson");

on_every_store!(
    filters_select_and_bad_values_are_400,
    the_dashboard_page_honours_the_filters
);

/// The Insights tab links to `/campaigns/{id}/recipients?age=…`, `?country=…`: the page
/// shows just those messages.
async fn the_dashboard_page_honours_the_filters(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(INSIGHTS).await;
    let page = s
        .get("/campaigns/world/recipients?as_of=2026-03-10T00:00:00Z&country=%2B7")
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    for id in ["w4", "w5"] {
        assert!(html.contains(&format!(">{id}<")), "{id} missing");
    }
    for id in ["w1", "w7", "w10"] {
        assert!(!html.contains(&format!(">{id}<")), "{id} shown");
    }
    let csv = s
        .get("/campaigns/world/recipients.csv?as_of=2026-03-10T00:00:00Z&age=24h_to_72h")
        .await
        .text();
    let ids: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["w7", "w8"]);
    let bad = s.get("/campaigns/world/recipients?age=2h").await;
    assert_eq!(bad.status, 400);
}

async fn ids(s: &Server, query: &str) -> Vec<String> {
    let r = s
        .get(&format!(
            "/v1/campaigns/world/recipients?as_of=2026-03-10T00:00:00Z&{query}"
        ))
        .await;
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["message_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn filters_select_and_bad_values_are_400(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(INSIGHTS).await;
    assert_eq!(ids(&s, "stale=true&stale_after_h=24").await, ["w7", "w8"]);
    assert_eq!(ids(&s, "age=6h_to_24h").await, ["w10"]);
    assert_eq!(ids(&s, "country=KZ").await, ["w5"]);
    assert_eq!(ids(&s, "country=%2B7").await, ["w4", "w5"]);
    assert_eq!(ids(&s, "country=%2B1/US").await, ["w2"]);
    assert_eq!(ids(&s, "country=LV&status=errors").await, ["w9"]);
    assert_eq!(ids(&s, "country=LV&age=24h_to_72h&limit=1").await, ["w8"]);
    for (query, names) in [
        ("age=2h", "age"),
        ("country=371", "country"),
        ("stale=yes", "stale"),
        ("stale=true&stale_after_h=0", "stale_after_h"),
        ("as_of=yesterday", "as_of"),
    ] {
        let r = s
            .get(&format!("/v1/campaigns/world/recipients?{query}"))
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().starts_with(names),
            "{query}: {}",
            r.text()
        );
    }
}
