//! `/metrics` is Prometheus's text format through and through: every line of a scrape is
//! a comment, a `# HELP`/`# TYPE` line or a sample a Prometheus text parser reads, and the
//! figures are the service's.

mod common;

use std::sync::Arc;

use common::{config, Server};
use prometheus_parse::{LineInfo, Scrape, Value};
use smsreport_core::Store;

const BASIC: &str = include_str!("../../conformance/fixtures/basic.ndjson");

on_every_store!(a_scrape_parses_cleanly);

fn form() -> [(&'static str, &'static str); 1] {
    [("Content-Type", "application/x-www-form-urlencoded")]
}

async fn a_scrape_parses_cleanly(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    // A duplicate, then a late receipt: the campaign's data-quality counters.
    for body in [
        &b"MessageSid=m1&MessageStatus=delivered"[..],
        b"MessageSid=m1&MessageStatus=delivered",
        b"MessageSid=m1&MessageStatus=undelivered&ErrorCode=30005",
    ] {
        s.post("/v1/webhooks/twilio", &form(), body).await;
    }
    // A status for a message that never came.
    s.post(
        "/v1/webhooks/twilio",
        &form(),
        b"MessageSid=ghost&MessageStatus=sent",
    )
    .await;
    s.get("/v1/webhooks/kannel?type=3&id=m1").await;
    // Rejected, naming a campaign in the URL: counted in that campaign, in the store.
    let r = s
        .post(
            "/v1/webhooks/twilio?campaign_id=spring-sale",
            &form(),
            b"MessageSid=m1",
        )
        .await;
    assert_eq!(r.status, 400);
    s.get("/v1/webhooks/kannel?type=3&id=m1&campaign_id=spring-sale")
        .await;
    s.get("/v1/webhooks/kannel?type=3&id=m1&campaign_id=no-such-campaign")
        .await;
    s.get("/nowhere").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for line in text.lines() {
        assert!(
            !matches!(LineInfo::parse(line), LineInfo::Ignored),
            "a line no Prometheus parser reads: {line:?}\n{text}"
        );
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse");
    let find = |metric: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {metric} {labels:?} in\n{text}"))
    };
    let counter = |metric: &str, labels: &[(&str, &str)]| match find(metric, labels).value {
        Value::Counter(v) => v,
        ref other => panic!("{metric} {labels:?} is not a counter: {other:?}"),
    };
    assert_eq!(
        counter(
            "smsreport_http_requests_total",
            &[
                ("route", "/v1/events"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        counter("smsreport_events_total", &[("outcome", "ingested")]),
        19.0
    );
    assert_eq!(
        counter("smsreport_events_total", &[("outcome", "rejected")]),
        0.0
    );
    assert_eq!(
        counter(
            "smsreport_gateway_rejected_total",
            &[("gateway", "kannel"), ("reason", "type")]
        ),
        3.0
    );
    assert_eq!(
        counter(
            "smsreport_campaign_callbacks_total",
            &[("campaign", "spring-sale"), ("kind", "duplicate")]
        ),
        2.0
    );
    for (reason, n) in [("MessageStatus", 1.0), ("type", 1.0), ("stat", 0.0)] {
        assert_eq!(
            counter(
                "smsreport_campaign_rejected_callbacks_total",
                &[("campaign", "spring-sale"), ("reason", reason)]
            ),
            n,
            "{reason}"
        );
    }
    assert!(
        !text.contains("no-such-campaign"),
        "a campaign that does not exist has no series"
    );
    let gauge = |metric: &str| match find(metric, &[]).value {
        Value::Gauge(v) => v,
        ref other => panic!("{metric} is not a gauge: {other:?}"),
    };
    assert_eq!(gauge("smsreport_statuses_waiting_for_message"), 1.0);
    // Received just now: a time after the fixture's, in seconds.
    let oldest = gauge("smsreport_statuses_waiting_oldest_timestamp_seconds");
    assert!(oldest > 1_770_000_000.0, "{oldest}");
    assert_eq!(counter("smsreport_store_errors_total", &[]), 0.0);
    assert_eq!(counter("smsreport_clicks_total", &[]), 0.0);
    match find("smsreport_http_connections", &[]).value {
        Value::Gauge(v) => assert!(v >= 1.0, "this scrape's own connection: {v}"),
        ref other => panic!("not a gauge: {other:?}"),
    }
    // The latency histogram of each route: one request to /v1/events, under the largest
    // bucket, and buckets that never decrease.
    let h = find(
        "smsreport_http_request_duration_seconds",
        &[("route", "/v1/events"), ("method", "POST")],
    );
    let Value::Histogram(buckets) = &h.value else {
        panic!("not a histogram: {:?}", h.value);
    };
    assert!(buckets.len() >= 10, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].count <= w[1].count),
        "{buckets:?}"
    );
    let inf = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("+Inf");
    assert_eq!(inf.count, 1.0, "{buckets:?}");
    let count = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "smsreport_http_request_duration_seconds_count"
                && s.labels.get("route") == Some("/v1/events")
        })
        .expect("_count");
    assert!(
        matches!(count.value, Value::Untyped(v) | Value::Counter(v) if v == 1.0),
        "{count:?}"
    );
    // The unmatched path and the scrape itself are routes too.
    find(
        "smsreport_http_request_duration_seconds",
        &[("route", "unmatched"), ("method", "GET")],
    );
}
