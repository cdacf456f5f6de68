//! What every smsreport [`Store`] must do, in the shape of arrow-rs object_store's
//! integration tests: each check is a plain `pub async fn check(store: &dyn Store)` that
//! panics with a readable message when the store misbehaves, and every backend's test
//! file runs all of them with [`conformance_tests!`], given an async factory that returns
//! a fresh, empty store and a guard that cleans it up when dropped (or, for a backend
//! whose server is not available, [`Skip`]; see [`Fresh`]):
//!
//! ```text
//! async fn store() -> (MyStore, TempDir) { … }
//! smsreport_conformance::conformance_tests!(crate::store);
//! ```
//!
//! The checks are listed once, in `suite!` at the end of this file: that list makes the
//! tests and [`CHECKS`]. Adding a check is writing its function and adding its name there.
//!
//! The rules checked are those of docs/events.md and docs/rules.md; their worked examples
//! are in `fixtures/`, copied byte for byte. [`pg`] is the PostgreSQL harness every test
//! of the workspace uses.

use serde_json::Value;
use smsreport_core::ingest::{ingest_events, split_lines, Summary};
use smsreport_core::insights::InsightOptions;
use smsreport_core::report::RecipientQuery;
use smsreport_core::{Millis, Outcome, Report, Row, Store, StoreError};

pub mod pg;
pub mod props;

/// `basic.ndjson` of the worked examples (docs/rules.md).
pub const BASIC: &str = include_str!("../fixtures/basic.ndjson");
/// The report `basic.ndjson` must give for `spring-sale`.
pub const BASIC_EXPECTED: &str = include_str!("../fixtures/basic.expected.json");
/// `insights.ndjson` of the worked examples.
pub const INSIGHTS: &str = include_str!("../fixtures/insights.ndjson");
/// The report `insights.ndjson` must give for `world` as of 2026-03-10T00:00:00Z, stale
/// after 24 hours.
pub const INSIGHTS_EXPECTED: &str = include_str!("../fixtures/insights.expected.json");
/// `rules-1.ndjson`.
pub const RULES_1: &str = include_str!("../fixtures/rules-1.ndjson");
/// What ingesting `rules-1.ndjson` into an empty store counts.
pub const RULES_1_COUNTS: Summary = counts(25, 3, 0);
/// `rules-2.ndjson`, ingested after `rules-1.ndjson`.
pub const RULES_2: &str = include_str!("../fixtures/rules-2.ndjson");
/// What ingesting `rules-2.ndjson` after `rules-1.ndjson` counts.
pub const RULES_2_COUNTS: Summary = counts(3, 0, 12);
/// The lines of `rules-2.ndjson` that must be rejected, verbatim, in input order.
pub const RULES_2_REJECTED: &str = include_str!("../fixtures/rules-2.rejected");
/// The report of `rules` after both files.
pub const RULES_EXPECTED: &str = include_str!("../fixtures/rules.expected.json");

/// Ingests NDJSON text the way the command line does and returns the counts and the
/// rejected lines (verbatim) with their line numbers and reasons.
pub async fn ingest_text(store: &dyn Store, text: &str) -> (Summary, Vec<(u64, String, String)>) {
    let outcomes = ingest_events(store, split_lines(text.as_bytes()))
        .await
        .expect("ingest failed");
    let mut summary = Summary::default();
    let mut rejected = Vec::new();
    for o in outcomes {
        summary.add(&o.outcome);
        if let Outcome::Rejected(r) = o.outcome {
            rejected.push((
                o.line.number,
                String::from_utf8_lossy(&o.line.bytes).into_owned(),
                r.reason,
            ));
        }
    }
    (summary, rejected)
}

/// A [`Summary`], for short: `counts(ingested, duplicates, rejected)`.
pub const fn counts(ingested: u64, duplicates: u64, rejected: u64) -> Summary {
    Summary {
        ingested,
        duplicates,
        rejected,
    }
}

/// Ingests `text` as [`ingest_text`] does and asserts its counts exactly; returns the
/// rejected lines.
pub async fn ingest_expecting(
    store: &dyn Store,
    text: &str,
    want: Summary,
    what: &str,
) -> Vec<(u64, String, String)> {
    let (got, rejected) = ingest_text(store, text).await;
    assert_eq!(got, want, "the counts of {what}; rejected: {rejected:?}");
    rejected
}

/// The moment the suite's reports are answered as of (insights' waiting ages), so that
/// two reports of the same state are equal: 2026-03-10T00:00:00Z, stale after 72 hours.
pub const AS_OF: InsightOptions = InsightOptions {
    as_of: Millis(1_773_100_800_000),
    stale_after_h: 72,
};

/// The report of a campaign as of [`AS_OF`], months in UTC.
pub async fn report(store: &dyn Store, campaign_id: &str) -> Report {
    store
        .report_at(campaign_id, AS_OF, None)
        .await
        .unwrap_or_else(|e| panic!("report {campaign_id}: {e}"))
}

/// The report of a campaign as JSON, as of [`AS_OF`].
pub async fn report_json(store: &dyn Store, campaign_id: &str) -> Value {
    serde_json::to_value(report(store, campaign_id).await).expect("report serialises")
}

/// Panics naming the first difference between two JSON values.
pub fn assert_json_eq(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let gv = g.get(k).unwrap_or_else(|| panic!("{path}.{k}: missing"));
                assert_json_eq(gv, wv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: got {got}, want {want}");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_json_eq(gv, wv, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(g), Value::Number(w)) if w.is_f64() || g.is_f64() => {
            assert_eq!(g.as_f64(), w.as_f64(), "{path}");
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// `verify` finds no difference.
pub async fn verify_passes(store: &dyn Store) {
    let v = store.verify().await.expect("verify failed");
    assert!(
        v.differences.is_empty(),
        "verify found differences: {:#?}",
        v.differences
    );
}

/// `basic.ndjson` gives `basic.expected.json` exactly, with no line rejected.
pub async fn worked_example_basic(store: &dyn Store) {
    // 19 lines, each a new event: 1 campaign, 3 contacts, 5 messages, 6 statuses, 4 clicks.
    ingest_expecting(store, BASIC, counts(19, 0, 0), "basic.ndjson").await;
    let want: Value = serde_json::from_str(BASIC_EXPECTED).unwrap();
    assert_json_eq(
        &report_json(store, "spring-sale").await,
        &want,
        "basic.expected.json",
    );
    verify_passes(store).await;
}

/// `insights.ndjson` gives `insights.expected.json` exactly, as of
/// 2026-03-10T00:00:00Z with stale after 24 hours: latency buckets and percentiles,
/// waiting ages, countries (two regions of one calling code, a non-geographic code, no
/// code at all, a country with clicks only).
pub async fn worked_example_insights(store: &dyn Store) {
    // 26 lines, each a new event: 1 campaign, 11 messages, 10 statuses, 4 clicks.
    ingest_expecting(store, INSIGHTS, counts(26, 0, 0), "insights.ndjson").await;
    let opts = InsightOptions {
        as_of: Millis::parse("2026-03-10T00:00:00Z").unwrap(),
        stale_after_h: 24,
    };
    let got = store.report_at("world", opts, None).await.expect("report");
    let want: Value = serde_json::from_str(INSIGHTS_EXPECTED).unwrap();
    assert_json_eq(
        &serde_json::to_value(got).unwrap(),
        &want,
        "insights.expected.json",
    );
    verify_passes(store).await;
}

/// The drill-down's insight filters on `insights.ndjson`, as of 2026-03-10T00:00:00Z:
/// waiting ages (each bucket, stale after 24 h), countries (a region, a calling code, an
/// exact row, no calling code), combined with a report row, and paged.
pub async fn recipients_by_insight_filters(store: &dyn Store) {
    use smsreport_core::insights::{CountryFilter, RecipientFilter, WaitingFilter};
    ingest_expecting(store, INSIGHTS, counts(26, 0, 0), "insights.ndjson").await;
    let as_of = Millis::parse("2026-03-10T00:00:00Z").unwrap();
    let ids = |row: Option<Row>, f: RecipientFilter| async move {
        let q = RecipientQuery {
            row,
            ..RecipientQuery::default()
        };
        let page = store
            .recipients_filtered("world", &q, &f)
            .await
            .expect("recipients");
        assert_eq!(page.next, None);
        page.items
            .into_iter()
            .map(|r| r.message_id)
            .collect::<Vec<_>>()
    };
    let age = |b: &str| RecipientFilter {
        waiting: Some(WaitingFilter::age(as_of, b).unwrap()),
        country: None,
    };
    // w11 was submitted after as_of (age 0); w6 is 1 h old, w10 6 h, w7 24 h, w8 49 h.
    assert_eq!(ids(None, age("under_1h")).await, ["w11"]);
    assert_eq!(ids(None, age("1h_to_6h")).await, ["w6"]);
    assert_eq!(ids(None, age("6h_to_24h")).await, ["w10"]);
    assert_eq!(ids(None, age("24h_to_72h")).await, ["w7", "w8"]);
    assert!(ids(None, age("over_72h")).await.is_empty());
    let stale = RecipientFilter {
        waiting: Some(WaitingFilter::stale(InsightOptions {
            as_of,
            stale_after_h: 24,
        })),
        country: None,
    };
    assert_eq!(ids(None, stale.clone()).await, ["w7", "w8"]);
    assert_eq!(ids(Some(Row::Undelivered), stale.clone()).await, ["w7"]);
    assert!(ids(Some(Row::Delivered), stale).await.is_empty());
    let country = |c: &str| RecipientFilter {
        waiting: None,
        country: Some(CountryFilter::parse(c).unwrap()),
    };
    assert_eq!(ids(None, country("KZ")).await, ["w5"]);
    assert_eq!(ids(None, country("+7")).await, ["w4", "w5"]);
    assert_eq!(ids(None, country("+1/CA")).await, ["w3"]);
    assert_eq!(ids(None, country("+882/001")).await, ["w10"]);
    assert_eq!(ids(None, country("ZZ")).await, ["w7"]);
    assert_eq!(ids(None, country("-/ZZ")).await, ["w7"]);
    assert!(ids(None, country("DE")).await.is_empty(), "DE only clicked");
    assert_eq!(ids(None, country("LV")).await, ["w1", "w11", "w8", "w9"]);
    assert_eq!(ids(Some(Row::Errors), country("LV")).await, ["w9"]);
    let both = RecipientFilter {
        waiting: Some(WaitingFilter::age(as_of, "24h_to_72h").unwrap()),
        country: Some(CountryFilter::parse("LV").unwrap()),
    };
    assert_eq!(ids(None, both).await, ["w8"]);
    // Paged: one at a time, the cursor carries on within the filter.
    let f = country("+7");
    let mut q = RecipientQuery {
        limit: 1,
        ..RecipientQuery::default()
    };
    let first = store.recipients_filtered("world", &q, &f).await.unwrap();
    assert_eq!(first.items[0].message_id, "w4");
    q.after = first.next;
    let second = store.recipients_filtered("world", &q, &f).await.unwrap();
    assert_eq!(second.items[0].message_id, "w5");
    assert_eq!(second.next, None);
}

/// `rules-1` then `rules-2` give `rules.expected.json`; exactly the lines of
/// `rules-2.rejected` are rejected, in order, each with a reason.
pub async fn worked_example_rules(store: &dyn Store) {
    // 28 lines; r6 repeated, c-1 repeated, the same click at 10:05:00Z and 10:05:00.000Z:
    // three duplicates, the 25 others ingested.
    ingest_expecting(store, RULES_1, RULES_1_COUNTS, "rules-1.ndjson").await;
    // 15 lines and an empty one (not counted): the campaign update, r7 and r9 ingested;
    // the 12 others rejected.
    let rej2 = ingest_expecting(store, RULES_2, RULES_2_COUNTS, "rules-2.ndjson").await;
    let got: Vec<&str> = rej2.iter().map(|(_, l, _)| l.as_str()).collect();
    let want: Vec<&str> = RULES_2_REJECTED
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(got, want, "the rejected lines of rules-2");
    let numbers: Vec<u64> = rej2.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(numbers, vec![3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    for (n, _, reason) in &rej2 {
        assert!(!reason.is_empty(), "line {n} has a reason");
    }
    let want: Value = serde_json::from_str(RULES_EXPECTED).unwrap();
    assert_json_eq(
        &report_json(store, "rules").await,
        &want,
        "rules.expected.json",
    );
    verify_passes(store).await;
}

/// The reasons of `rules-2` name the field at fault.
pub async fn rejections_name_the_field(store: &dyn Store) {
    ingest_expecting(store, RULES_1, RULES_1_COUNTS, "rules-1.ndjson").await;
    let rej = ingest_expecting(store, RULES_2, RULES_2_COUNTS, "rules-2.ndjson").await;
    let reason = |n: u64| {
        rej.iter()
            .find(|r| r.0 == n)
            .map(|r| r.2.clone())
            .unwrap_or_default()
    };
    assert!(reason(3).starts_with("message_id:"), "{}", reason(3));
    assert!(reason(4).starts_with("campaign_id:"), "{}", reason(4));
    assert!(reason(6).starts_with("links:"), "{}", reason(6));
    assert!(reason(7).starts_with("link_id:"), "{}", reason(7));
    assert!(reason(8).starts_with("at:"), "{}", reason(8));
    assert!(reason(9).starts_with("status:"), "{}", reason(9));
    assert!(reason(10).starts_with("recipient:"), "{}", reason(10));
    assert!(reason(11).starts_with("parts:"), "{}", reason(11));
    assert!(reason(12).starts_with("message_id:"), "{}", reason(12));
    assert!(reason(13).starts_with("type:"), "{}", reason(13));
    assert!(reason(14).contains("JSON"), "{}", reason(14));
    assert!(reason(15).contains("JSON"), "{}", reason(15));
}

/// Ingesting the same input again changes nothing and reports every event a duplicate.
pub async fn reingest_is_all_duplicates(store: &dyn Store) {
    ingest_expecting(store, BASIC, counts(19, 0, 0), "basic.ndjson").await;
    let before = report_json(store, "spring-sale").await;
    ingest_expecting(store, BASIC, counts(0, 19, 0), "basic.ndjson again").await;
    assert_eq!(report_json(store, "spring-sale").await, before);
    verify_passes(store).await;
}

/// An unknown campaign is `NotFound`, for the report and the drill-down.
pub async fn unknown_campaign_is_not_found(store: &dyn Store) {
    match store.report("nope").await {
        Err(StoreError::NotFound(m)) => assert!(m.contains("no campaign named"), "{m}"),
        other => panic!("want NotFound, got {other:?}"),
    }
    assert!(matches!(
        store.recipients("nope", &RecipientQuery::default()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.campaigns().await.unwrap().is_empty());
    verify_passes(store).await;
}

/// A status before its message is kept and counts when the message arrives, in a later
/// call or the same one.
pub async fn status_before_message_counts(store: &dyn Store) {
    let camp = r#"{"type":"campaign","campaign_id":"c","name":"C"}"#;
    ingest_expecting(store, camp, counts(1, 0, 0), "the campaign").await;
    ingest_expecting(
        store,
        r#"{"type":"status","message_id":"m1","status":"delivered","at":"2026-03-01T10:00:00Z"}"#,
        counts(1, 0, 0),
        "a status of an unknown message (kept)",
    )
    .await;
    let r = report_json(store, "c").await;
    assert_eq!(r["delivery"]["total"], 0, "no message yet");
    ingest_expecting(
        store,
        r#"{"type":"status","message_id":"m2","status":"failed_expired","error_code":"27","at":"2026-03-01T10:00:00Z"}
{"type":"message","message_id":"m2","campaign_id":"c","recipient":"+37120000002","at":"2026-03-01T09:00:00Z"}
{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","parts":2,"at":"2026-03-01T09:00:00Z"}"#,
        counts(3, 0, 0),
        "a status and two messages",
    )
    .await;
    let r = report_json(store, "c").await;
    assert_eq!(r["delivery"]["total"], 2);
    assert_eq!(r["delivery"]["delivered"], 1);
    assert_eq!(r["delivery"]["errors"]["expired"], 1);
    assert_eq!(r["delivery"]["segments"], 3);
    let page = store
        .recipients(
            "c",
            &RecipientQuery {
                row: Some(Row::Expired),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message_id, "m2");
    assert_eq!(page.items[0].error_code.as_deref(), Some("27"));
    assert_eq!(
        page.items[0].status_at.as_deref(),
        Some("2026-03-01T10:00:00.000Z")
    );
    verify_passes(store).await;
}

/// The drill-down pages through a campaign's messages in `message_id` order, filtered by
/// report row, with each recipient's human clicks.
pub async fn recipients_page_and_filter(store: &dyn Store) {
    ingest_expecting(store, BASIC, counts(19, 0, 0), "basic.ndjson").await;
    let all = |row| RecipientQuery {
        row,
        after: None,
        limit: 2,
    };
    let p1 = store.recipients("spring-sale", &all(None)).await.unwrap();
    let ids: Vec<&str> = p1.items.iter().map(|i| i.message_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"]);
    assert_eq!(p1.next.as_deref(), Some("m2"));
    assert_eq!(
        p1.items[0].clicks, 2,
        "+37120000001 clicked twice (humans only)"
    );
    assert_eq!(
        p1.items[1].clicks, 1,
        "+37120000002: one human click, one bot click"
    );
    let p2 = store
        .recipients(
            "spring-sale",
            &RecipientQuery {
                row: None,
                after: p1.next.clone(),
                limit: 2,
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = p2.items.iter().map(|i| i.message_id.as_str()).collect();
    assert_eq!(ids, ["m3", "m4"]);
    let p3 = store
        .recipients(
            "spring-sale",
            &RecipientQuery {
                row: None,
                after: p2.next.clone(),
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(p3.items.len(), 1);
    assert_eq!(p3.next, None);
    let expect = [
        (Row::Delivered, vec!["m1", "m2"]),
        (Row::Sent, vec!["m3"]),
        (Row::Undelivered, vec!["m4"]),
        (Row::Errors, vec!["m5"]),
        (Row::Expired, vec!["m5"]),
        (Row::Routing, vec![]),
        (Row::Queued, vec![]),
        (Row::Other, vec![]),
    ];
    for (row, want) in expect {
        let page = store
            .recipients(
                "spring-sale",
                &RecipientQuery {
                    row: Some(row),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let got: Vec<&str> = page.items.iter().map(|i| i.message_id.as_str()).collect();
        assert_eq!(got, want, "row {row}");
        assert!(page
            .items
            .iter()
            .all(|i| i.row == row || row == Row::Errors));
    }
    assert!(matches!(
        store
            .recipients(
                "spring-sale",
                &RecipientQuery {
                    limit: 0,
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
}

/// The campaign list: newest first, with totals.
pub async fn campaigns_are_listed_newest_first(store: &dyn Store) {
    ingest_expecting(store, BASIC, counts(19, 0, 0), "basic.ndjson").await;
    ingest_expecting(store, RULES_1, RULES_1_COUNTS, "rules-1.ndjson").await;
    ingest_expecting(
        store,
        r#"{"type":"campaign","campaign_id":"older","name":"Older","created_at":"2025-01-01T00:00:00Z"}"#,
        counts(1, 0, 0),
        "campaign older",
    )
    .await;
    let list = store.campaigns().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c.campaign_id.as_str()).collect();
    assert_eq!(
        ids,
        ["spring-sale", "older", "rules"],
        "created_at descending, none last"
    );
    assert_eq!(list[0].total, 5);
    assert_eq!(list[0].delivered, 2);
    assert_eq!(list[0].total_clicks, 3);
    assert_eq!(
        list[0].created_at.as_deref(),
        Some("2026-03-01T08:00:00.000Z")
    );
    assert_eq!(list[2].created_at, None);
}

/// Campaign updates: whole definition each time, links merged, a link's url fixed,
/// `created_at` from the first event giving one, the list's name the latest one.
pub async fn campaign_updates(store: &dyn Store) {
    // Ingested: One, Two, the contact, its name Anna, the contact of list `other`.
    // Duplicates: Two again (a later created_at is ignored), the contact without a name.
    // Rejected: Three, which changes the url of link b.
    let rej = ingest_expecting(
        store,
        r#"{"type":"campaign","campaign_id":"u","name":"One","contact_list":{"list_id":"l","name":"List A"},"link_tracking":true,"links":[{"link_id":"a","url":"https://x.example/a"}]}
{"type":"campaign","campaign_id":"u","name":"Two","created_at":"2026-01-01T00:00:00Z","contact_list":{"list_id":"l","name":"List B"},"links":[{"link_id":"b","url":"https://x.example/b"}]}
{"type":"campaign","campaign_id":"u","name":"Two","created_at":"2026-02-01T00:00:00Z","contact_list":{"list_id":"l","name":"List B"},"links":[{"link_id":"b","url":"https://x.example/b"}]}
{"type":"campaign","campaign_id":"u","name":"Three","links":[{"link_id":"b","url":"https://x.example/other"}]}
{"type":"contact","list_id":"l","recipient":"+37120000001"}
{"type":"contact","list_id":"l","recipient":"+37120000001","name":"Anna"}
{"type":"contact","list_id":"l","recipient":"+37120000001"}
{"type":"contact","list_id":"other","recipient":"+37120000001"}"#,
        counts(5, 2, 1),
        "campaign u's updates",
    )
    .await;
    assert_eq!(rej[0].0, 4, "the url change of link b: {rej:?}");
    let r = report_json(store, "u").await;
    assert_eq!(r["name"], "Two");
    assert_eq!(r["links"]["link_tracking"], false);
    assert_eq!(
        r["contact_list"],
        serde_json::json!({"list_id": "l", "name": "List B", "subscribers": 1})
    );
    let links: Vec<&str> = r["links"]["per_link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["link_id"].as_str().unwrap())
        .collect();
    assert_eq!(links, ["a", "b"]);
    let list = store.campaigns().await.unwrap();
    assert_eq!(
        list[0].created_at.as_deref(),
        Some("2026-01-01T00:00:00.000Z")
    );
    verify_passes(store).await;
}

/// Clicks: identity by `event_id` (global) or by (campaign, link, recipient, at);
/// bots apart; unique = first human click per person and link; months in UTC.
pub async fn click_rules(store: &dyn Store) {
    // Ingested: campaigns k and k2, e1, the unnamed click, both clicks on b by
    // +37120000002, the click by +37120000003. Duplicates: e1 again (in k2: an event_id
    // is global), the unnamed click again with another user agent.
    ingest_expecting(
        store,
        r#"{"type":"campaign","campaign_id":"k","name":"K","links":[{"link_id":"b","url":"https://x.example/b"},{"link_id":"a","url":"https://x.example/a"}]}
{"type":"campaign","campaign_id":"k2","name":"K2","links":[{"link_id":"a","url":"https://y.example/a"}]}
{"type":"click","campaign_id":"k","link_id":"a","recipient":"+37120000001","at":"2026-01-31T23:30:00-01:00","event_id":"e1"}
{"type":"click","campaign_id":"k2","link_id":"a","recipient":"+37120000009","at":"2026-05-01T00:00:00Z","event_id":"e1"}
{"type":"click","campaign_id":"k","link_id":"a","recipient":"+37120000001","at":"2026-02-01T00:30:00Z","user_agent":""}
{"type":"click","campaign_id":"k","link_id":"a","recipient":"+37120000001","at":"2026-02-01T00:30:00Z","user_agent":"other agent, same click"}
{"type":"click","campaign_id":"k","link_id":"b","recipient":"+37120000002","at":"2026-02-02T00:00:00Z","user_agent":"Slackbot-LinkExpanding 1.0"}
{"type":"click","campaign_id":"k","link_id":"b","recipient":"+37120000002","at":"2026-02-03T00:00:00Z","user_agent":"Mozilla/5.0"}
{"type":"click","campaign_id":"k","link_id":"b","recipient":"+37120000003","at":"2026-03-03T00:00:00Z"}"#,
        counts(7, 2, 0),
        "the clicks",
    )
    .await;
    let r = report_json(store, "k").await;
    let l = &r["links"];
    assert_eq!(
        l["total_clicks"], 4,
        "e1, the unnamed click once, two human clicks on b"
    );
    assert_eq!(l["bot_clicks"], 1);
    assert_eq!(l["unique_clicks"], 3);
    assert_eq!(l["links_clicked"], 2);
    assert_eq!(
        l["most_popular"]["link_id"], "b",
        "b has 2 unique clicks, a has 1"
    );
    assert_eq!(l["click_to_open_rate"], Value::Null, "nothing delivered");
    assert_eq!(
        l["clicks_by_month"],
        serde_json::json!([{"month": "2026-02", "clicks": 3}, {"month": "2026-03", "clicks": 1}])
    );
    let r2 = report_json(store, "k2").await;
    assert_eq!(
        r2["links"]["total_clicks"], 0,
        "event_id e1 was taken by campaign k"
    );
    assert_eq!(r2["links"]["most_popular"], Value::Null);
    verify_passes(store).await;
}

/// Statuses of one message in every order give the same state.
pub async fn status_order_does_not_matter(store: &dyn Store) {
    ingest_expecting(
        store,
        r#"{"type":"campaign","campaign_id":"o","name":"O"}"#,
        counts(1, 0, 0),
        "the campaign",
    )
    .await;
    let lines = [
        r#"{"type":"status","message_id":"MID","status":"sent","at":"2026-03-01T09:00:09Z"}"#,
        r#"{"type":"status","message_id":"MID","status":"delivered","at":"2026-03-01T09:00:05Z"}"#,
        r#"{"type":"status","message_id":"MID","status":"failed_routing","error_code":"b","at":"2026-03-01T09:00:05Z"}"#,
        r#"{"type":"status","message_id":"MID","status":"delivered","error_code":"a","at":"2026-03-01T09:00:05Z"}"#,
        r#"{"type":"message","message_id":"MID","campaign_id":"o","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
    ];
    let orders: [[usize; 5]; 4] = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [2, 4, 0, 3, 1],
        [1, 0, 4, 2, 3],
    ];
    for (i, order) in orders.iter().enumerate() {
        let text: Vec<String> = order
            .iter()
            .map(|&k| lines[k].replace("MID", &format!("m{i}")))
            .collect();
        // Four distinct status events and the message, all new.
        ingest_expecting(
            store,
            &text.join("\n"),
            counts(5, 0, 0),
            &format!("order {order:?}"),
        )
        .await;
        let page = store
            .recipients(
                "o",
                &RecipientQuery {
                    row: None,
                    after: Some(format!("m{}", i.wrapping_sub(1))).filter(|_| i > 0),
                    limit: 1,
                },
            )
            .await
            .unwrap();
        let m = &page.items[0];
        assert_eq!(m.message_id, format!("m{i}"));
        assert_eq!(
            (m.status.as_str(), m.error_code.as_deref()),
            ("delivered", Some("a")),
            "order {order:?}"
        );
    }
    let r = report_json(store, "o").await;
    assert_eq!(r["delivery"]["delivered"], 4);
    verify_passes(store).await;
}

/// `clicks_by_month` in a time zone: clicks near a month's start move to the month they
/// fall in locally, with offsets that change over time (as with daylight saving).
pub async fn months_in_a_time_zone(store: &dyn Store) {
    // The campaign and five clicks of five recipients.
    ingest_expecting(
        store,
        r#"{"type":"campaign","campaign_id":"tz","name":"TZ","links":[{"link_id":"a","url":"https://x.example/a"}]}
{"type":"click","campaign_id":"tz","link_id":"a","recipient":"+37120000001","at":"2026-03-31T23:30:00Z"}
{"type":"click","campaign_id":"tz","link_id":"a","recipient":"+37120000002","at":"2026-04-01T05:00:00Z"}
{"type":"click","campaign_id":"tz","link_id":"a","recipient":"+37120000003","at":"2026-04-15T12:00:00Z"}
{"type":"click","campaign_id":"tz","link_id":"a","recipient":"+37120000004","at":"2026-04-30T22:10:00Z"}
{"type":"click","campaign_id":"tz","link_id":"a","recipient":"+37120000005","at":"2026-04-30T22:10:00Z","user_agent":"curl/8"}"#,
        counts(6, 0, 0),
        "the clicks",
    )
    .await;
    let months = |r: smsreport_core::Report| -> Vec<(String, u64)> {
        r.links
            .clicks_by_month
            .into_iter()
            .map(|m| (m.month, m.clicks))
            .collect()
    };
    let m = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    };
    let at = |offset: &'static (dyn Fn(Millis) -> i64 + Send + Sync)| {
        store.report_at("tz", AS_OF, Some(offset))
    };
    let utc = at(&|_| 0).await.unwrap();
    assert_eq!(utc, report(store, "tz").await);
    assert_eq!(months(utc), m(&[("2026-03", 1), ("2026-04", 3)]));
    // UTC+02:00: 23:30Z on 31 March is 01:30 on 1 April; 22:10Z on 30 April is 00:10 on 1 May.
    let east = at(&|_| 120).await.unwrap();
    assert_eq!(months(east), m(&[("2026-04", 3), ("2026-05", 1)]));
    // UTC−08:00: 05:00Z on 1 April is 21:00 on 31 March.
    let west = at(&|_| -480).await.unwrap();
    assert_eq!(months(west), m(&[("2026-03", 2), ("2026-04", 2)]));
    // An offset that changes at 2026-04-01T00:00Z, from +01:00 to −01:00.
    let change = smsreport_core::Millis::parse("2026-04-01T00:00:00Z").unwrap();
    let shifting = store
        .report_at(
            "tz",
            AS_OF,
            Some(&move |t| if t < change { 60 } else { -60 }),
        )
        .await
        .unwrap();
    assert_eq!(
        months(shifting),
        m(&[("2026-04", 4)]),
        "+01:00 before the change, −01:00 after"
    );
    verify_passes(store).await;
}

/// Tracked links: stored durably, resolved by code, one code per (message, link) however
/// often it is registered, and a taken code is a conflict that stores nothing.
pub async fn tracked_links(store: &dyn Store) {
    use smsreport_core::TrackedLink;
    let link = |code: &str, message: &str, link: &str| TrackedLink {
        code: code.into(),
        campaign_id: "spring-sale".into(),
        link_id: link.into(),
        message_id: message.into(),
        recipient: "+37120000001".into(),
    };
    assert_eq!(store.resolve_link("Abc1234").await.unwrap(), None);
    let first = vec![link("Abc1234", "m1", "sale"), link("Xyz9876", "m1", "home")];
    assert_eq!(store.save_links(&first).await.unwrap(), first);
    assert_eq!(
        store.resolve_link("Abc1234").await.unwrap(),
        Some(first[0].clone())
    );
    assert_eq!(
        store.resolve_link("abc1234").await.unwrap(),
        None,
        "codes are case-sensitive"
    );
    // Registering m1 again with fresh codes keeps the old ones.
    let again = store
        .save_links(&[link("New0001", "m1", "sale")])
        .await
        .unwrap();
    assert_eq!(again, vec![first[0].clone()]);
    assert_eq!(store.resolve_link("New0001").await.unwrap(), None);
    // A code taken by another message: a conflict, and nothing of the call is stored.
    match store
        .save_links(&[link("Fresh01", "m2", "sale"), link("Abc1234", "m2", "home")])
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("want a conflict, got {other:?}"),
    }
    assert_eq!(store.resolve_link("Fresh01").await.unwrap(), None);
    // The same (message, link) twice in one call: one code.
    let twice = store
        .save_links(&[link("Twice01", "m3", "sale"), link("Twice02", "m3", "sale")])
        .await
        .unwrap();
    assert_eq!(twice[0], twice[1]);
    assert_eq!(twice[0].code, "Twice01");
}

/// A status event for `message` (`sent` at 09:00:00Z unless `at` says otherwise).
fn status_line(message: &str, status: &str, code: &str, at: &str) -> String {
    format!(
        r#"{{"type":"status","message_id":"{message}","status":"{status}","error_code":"{code}","at":"{at}"}}"#
    )
}

fn message_line(message: &str, recipient: &str) -> String {
    format!(
        r#"{{"type":"message","message_id":"{message}","campaign_id":"c","recipient":"{recipient}","at":"2026-03-01T09:00:00Z"}}"#
    )
}

/// The drill-down of campaign `c`: (message_id, status, error_code, status_at).
async fn states_of_c(store: &dyn Store) -> Vec<(String, String, Option<String>, Option<String>)> {
    let page = store
        .recipients("c", &RecipientQuery::default())
        .await
        .expect("recipients of c");
    assert_eq!(page.next, None);
    page.items
        .into_iter()
        .map(|i| {
            (
                i.message_id,
                i.status.as_str().to_owned(),
                i.error_code,
                i.status_at,
            )
        })
        .collect()
}

/// Forty distinct status events of one message (`sent` at one time, error codes `000` to
/// `039`), for a message that came first and for one that comes after its statuses: the
/// greatest code wins (docs/rules.md, "The current status"), and sending the 1st and
/// the 40th again gives two duplicates and changes nothing (docs/rules.md, "Duplicates").
pub async fn forty_statuses_of_one_message(store: &dyn Store) {
    const AT: &str = "2026-03-01T09:00:00Z";
    ingest_expecting(
        store,
        &[
            r#"{"type":"campaign","campaign_id":"c","name":"C"}"#.to_owned(),
            message_line("m", "+37120000001"),
        ]
        .join("\n"),
        counts(2, 0, 0),
        "the campaign and message m",
    )
    .await;
    let statuses = |m: &str| -> Vec<String> {
        (0..40)
            .map(|i| status_line(m, "sent", &format!("{i:03}"), AT))
            .collect()
    };
    let (m, early) = (statuses("m"), statuses("early"));
    ingest_expecting(store, &m.join("\n"), counts(40, 0, 0), "40 statuses of m").await;
    ingest_expecting(
        store,
        &early.join("\n"),
        counts(40, 0, 0),
        "40 statuses of early, before its message",
    )
    .await;
    ingest_expecting(
        store,
        &message_line("early", "+37120000002"),
        counts(1, 0, 0),
        "message early",
    )
    .await;
    let at = Some("2026-03-01T09:00:00.000Z".to_owned());
    let want = vec![
        (
            "early".to_owned(),
            "sent".to_owned(),
            Some("039".to_owned()),
            at.clone(),
        ),
        (
            "m".to_owned(),
            "sent".to_owned(),
            Some("039".to_owned()),
            at,
        ),
    ];
    assert_eq!(states_of_c(store).await, want, "the greatest code wins");
    let report = report_json(store, "c").await;
    assert_eq!(report["delivery"]["total"], 2);
    assert_eq!(report["delivery"]["sent"], 2);
    verify_passes(store).await;
    for lines in [&m, &early] {
        ingest_expecting(
            store,
            &[lines[0].as_str(), lines[39].as_str()].join("\n"),
            counts(0, 2, 0),
            "the 1st and the 40th status again",
        )
        .await;
    }
    assert_eq!(report_json(store, "c").await, report, "unchanged");
    assert_eq!(states_of_c(store).await, want, "unchanged");
    verify_passes(store).await;
}

/// Undated gateway receipts, each in a batch of its own (docs/rules.md, "Undated
/// receipts"): an undated receipt takes its arrival time, or 1 ms after the message's
/// latest undated status when that is not earlier; a dated status, even one later than
/// the arrival (a gateway's clock ahead of ours), does not push it. A retry of a status
/// and code already recorded is a duplicate and moves nothing.
pub async fn undated_receipts_across_batches(store: &dyn Store) {
    use smsreport_core::gateway::{ingest_callback_lines, LineFormat};
    let t = |s: &str| Millis::parse(s).unwrap();
    ingest_expecting(
        store,
        &[
            r#"{"type":"campaign","campaign_id":"c","name":"C"}"#.to_owned(),
            message_line("m", "+37120000001"),
            message_line("n", "+37120000002"),
        ]
        .join("\n"),
        counts(3, 0, 0),
        "the campaign, messages m and n",
    )
    .await;
    let callback = async |line: &str, received: Millis| -> Vec<Outcome> {
        ingest_callback_lines(
            store,
            LineFormat::Smpp,
            split_lines(line.as_bytes()),
            received,
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.outcome)
        .collect()
    };
    let r = t("2026-03-01T10:00:00Z");
    assert_eq!(callback("id:m stat:ENROUTE", r).await, [Outcome::Ingested]);
    // Dated two hours after the arrival of the first.
    ingest_expecting(
        store,
        &status_line("m", "sent", "0", "2026-03-01T12:00:00Z"),
        counts(1, 0, 0),
        "a dated sent of m, ahead of our clock",
    )
    .await;
    // Received by a clock 5 ms behind the first arrival: 1 ms after the undated ENROUTE.
    assert_eq!(
        callback("id:m stat:DELIVRD", Millis(r.0 - 5)).await,
        [Outcome::Ingested]
    );
    // n: the same steps with a retry of its first receipt last.
    assert_eq!(callback("id:n stat:ENROUTE", r).await, [Outcome::Ingested]);
    assert_eq!(
        callback("id:n stat:UNDELIV err:001", Millis(r.0 + 60_000)).await,
        [Outcome::Ingested]
    );
    assert_eq!(
        callback("id:n stat:ENROUTE", Millis(r.0 + 120_000)).await,
        [Outcome::Duplicate]
    );
    let states = states_of_c(store).await;
    assert_eq!(
        states,
        vec![
            (
                "m".to_owned(),
                "delivered".to_owned(),
                None,
                Some("2026-03-01T10:00:00.001Z".to_owned())
            ),
            (
                "n".to_owned(),
                "failed_routing".to_owned(),
                Some("001".to_owned()),
                Some("2026-03-01T10:01:00.000Z".to_owned())
            ),
        ],
        "undated times"
    );
    // A further undated receipt of m, received before its latest undated one, comes 1 ms
    // after that (the mark survived the store's round trip); it is the latest, so it wins.
    assert_eq!(
        callback("id:m stat:UNDELIV err:002", Millis(r.0 - 10)).await,
        [Outcome::Ingested]
    );
    assert_eq!(
        states_of_c(store).await[0],
        (
            "m".to_owned(),
            "failed_routing".to_owned(),
            Some("002".to_owned()),
            Some("2026-03-01T10:00:00.002Z".to_owned())
        ),
    );
    verify_passes(store).await;
}

/// Statuses waiting for a message that never came ([`Store::orphans`], docs/rules.md,
/// "Data quality"): counted per message id, dated by the pending (greatest) status, and
/// no longer counted once the message arrives.
pub async fn statuses_waiting_for_their_message(store: &dyn Store) {
    use smsreport_core::store::Orphans;
    let t = |s: &str| Some(Millis::parse(s).unwrap());
    assert_eq!(store.orphans().await.unwrap(), Orphans::default(), "empty");
    ingest_expecting(
        store,
        &[
            r#"{"type":"campaign","campaign_id":"c","name":"C"}"#.to_owned(),
            message_line("m", "+37120000001"),
            status_line("m", "delivered", "0", "2026-03-01T09:30:00Z"),
            status_line("x1", "sent", "0", "2026-03-02T10:00:00Z"),
            status_line("x2", "sent", "0", "2026-03-01T08:00:00Z"),
            status_line("x2", "delivered", "0", "2026-03-01T09:00:00Z"),
        ]
        .join("\n"),
        counts(6, 0, 0),
        "m with its status, and statuses of x1 and x2 before their messages",
    )
    .await;
    assert_eq!(
        store.orphans().await.unwrap(),
        Orphans {
            messages: 2,
            oldest: t("2026-03-01T09:00:00Z")
        },
        "x1 and x2 wait; x2's pending status is its delivered"
    );
    ingest_expecting(
        store,
        &message_line("x2", "+37120000002"),
        counts(1, 0, 0),
        "x2's message",
    )
    .await;
    assert_eq!(
        store.orphans().await.unwrap(),
        Orphans {
            messages: 1,
            oldest: t("2026-03-02T10:00:00Z")
        },
        "only x1 waits"
    );
    ingest_expecting(
        store,
        &status_line("x1", "delivered", "0", "2026-03-02T11:00:00Z"),
        counts(1, 0, 0),
        "a later status of x1",
    )
    .await;
    assert_eq!(
        store.orphans().await.unwrap(),
        Orphans {
            messages: 1,
            oldest: t("2026-03-02T11:00:00Z")
        },
        "x1's pending status moved"
    );
    verify_passes(store).await;
}

/// [`Store::count_quality`]: a rejected callback's count lands in a campaign that
/// exists, by the field that decided, durably and additively; a campaign that does not
/// exist gets nothing. The report does not change (docs/rules.md, "Data quality").
pub async fn rejected_callbacks_are_counted_by_campaign(store: &dyn Store) {
    use smsreport_core::engine::Quality;
    ingest_expecting(
        store,
        r#"{"type":"campaign","campaign_id":"c","name":"C"}"#,
        counts(1, 0, 0),
        "the campaign",
    )
    .await;
    let before = report_json(store, "c").await;
    let status = Quality::rejected("MessageStatus: missing");
    let done_date = Quality::rejected("done date: not a date");
    let odd = Quality::rejected("something else entirely");
    for (q, n) in [(status, 1), (status, 2), (done_date, 1), (odd, 1)] {
        assert!(store.count_quality("c", q, n).await.unwrap(), "{q:?}");
    }
    assert!(!store.count_quality("nope", status, 1).await.unwrap());
    let t = store.totals("c").await.unwrap().unwrap();
    let got: Vec<(String, i64)> = t
        .counters
        .quality
        .iter()
        .map(|(q, n)| (q.name(), *n))
        .collect();
    assert_eq!(
        got,
        vec![
            ("rejected:MessageStatus".to_owned(), 3),
            ("rejected:done date".to_owned(), 1),
            ("rejected:other".to_owned(), 1),
        ]
    );
    assert!(store.totals("nope").await.unwrap().is_none());
    assert_eq!(report_json(store, "c").await, before, "not in the report");
    verify_passes(store).await;
}

/// More distinct status events for one message than it remembers
/// ([`MessageState::MAX_SEEN`](smsreport_core::engine::MessageState::MAX_SEEN), 1 024):
/// every one of them still takes part in the max rule, and a repeat of any of the first
/// 1 024 is a duplicate. A repeat of one past them is counted as ingested again, with no
/// effect on any figure (docs/rules.md, "Duplicates").
///
/// `m` comes first and gets `sent` at one time with codes `0000` to `1099`: the last, past
/// the remembered ones, wins. `early` gets `failed_expired` with codes `0000` to `1099`
/// at times going back from 09:18:20Z, before its message: the first wins.
pub async fn more_statuses_than_a_message_remembers(store: &dyn Store) {
    use smsreport_core::engine::MessageState;
    const N: usize = 1100;
    const KEPT: usize = MessageState::MAX_SEEN;
    assert_eq!(KEPT, 1024);
    let at = |second: usize| {
        smsreport_core::Millis::parse("2026-03-01T09:00:00Z")
            .map(|t| smsreport_core::Millis(t.0 + second as i64 * 1000))
            .expect("a time")
            .to_string()
    };
    let m: Vec<String> = (0..N)
        .map(|i| status_line("m", "sent", &format!("{i:04}"), &at(0)))
        .collect();
    let early: Vec<String> = (0..N)
        .map(|i| status_line("early", "failed_expired", &format!("{i:04}"), &at(N - i)))
        .collect();
    ingest_expecting(
        store,
        &[
            r#"{"type":"campaign","campaign_id":"c","name":"C"}"#.to_owned(),
            message_line("m", "+37120000001"),
        ]
        .join("\n"),
        counts(2, 0, 0),
        "the campaign and message m",
    )
    .await;
    ingest_expecting(
        store,
        &m.join("\n"),
        counts(1100, 0, 0),
        "1 100 statuses of m",
    )
    .await;
    ingest_expecting(
        store,
        &early.join("\n"),
        counts(1100, 0, 0),
        "1 100 statuses of early, before its message",
    )
    .await;
    ingest_expecting(
        store,
        &message_line("early", "+37120000002"),
        counts(1, 0, 0),
        "message early",
    )
    .await;
    let want = vec![
        (
            "early".to_owned(),
            "failed_expired".to_owned(),
            Some("0000".to_owned()),
            Some("2026-03-01T09:18:20.000Z".to_owned()),
        ),
        (
            "m".to_owned(),
            "sent".to_owned(),
            Some("1099".to_owned()),
            Some("2026-03-01T09:00:00.000Z".to_owned()),
        ),
    ];
    assert_eq!(states_of_c(store).await, want, "the max rule");
    let report = report_json(store, "c").await;
    assert_eq!(report["delivery"]["total"], 2);
    assert_eq!(report["delivery"]["sent"], 1);
    assert_eq!(report["delivery"]["errors"]["expired"], 1);
    verify_passes(store).await;
    for lines in [&m, &early] {
        ingest_expecting(
            store,
            &lines[..KEPT].join("\n"),
            counts(0, 1024, 0),
            "the first 1 024 statuses again",
        )
        .await;
        ingest_expecting(
            store,
            &lines[KEPT..].join("\n"),
            counts(76, 0, 0),
            "the last 76 statuses again (not remembered)",
        )
        .await;
    }
    assert_eq!(report_json(store, "c").await, report, "unchanged");
    assert_eq!(states_of_c(store).await, want, "unchanged");
    verify_passes(store).await;
}

/// Why a test cannot run here: the server of its backend is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

/// The skip rule of every test of the workspace. `Ok(v)` is `Some(v)`; `Err(skip)` prints
/// `skipped: <test>, because <reason>` and is `None`, so the test passes without running,
/// except under `CI=true`, where a skip is a failure.
pub fn or_skip<T>(test: &str, r: Result<T, Skip>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Skip(reason)) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{test} would be skipped, because {reason}; under CI=true every test must run"
                );
            }
            println!("skipped: {test}, because {reason}");
            None
        }
    }
}

/// What a backend's factory gives: a fresh, empty store and a guard that cleans it up
/// when dropped, either as a pair, or as `Result<pair, Skip>` for a backend that may be
/// unavailable.
pub trait Fresh {
    /// The store.
    type Store: Store;
    /// Cleans the store up when dropped.
    type Guard;
    /// The store and its guard, or why there are none.
    fn fresh(self) -> Result<(Self::Store, Self::Guard), Skip>;
}

impl<S: Store, G> Fresh for (S, G) {
    type Store = S;
    type Guard = G;
    fn fresh(self) -> Result<(S, G), Skip> {
        Ok(self)
    }
}

impl<S: Store, G> Fresh for Result<(S, G), Skip> {
    type Store = S;
    type Guard = G;
    fn fresh(self) -> Result<(S, G), Skip> {
        self
    }
}

/// Runs one check on a fresh store of `factory`, or skips it (see [`or_skip`]).
pub async fn run_check<F, Fut, C>(test: &str, factory: F, check: C)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future,
    Fut::Output: Fresh,
    C: AsyncFnOnce(&dyn Store),
{
    if let Some((store, _guard)) = or_skip(test, factory().await.fresh()) {
        check(&store).await;
    }
}

/// Page size for comparing drill-downs: about ten pages per campaign, at least 2 a page.
fn page_size(total: u64) -> usize {
    (total as usize / 10).clamp(2, 200)
}

/// Every page of a campaign's drill-down, filtered by `row`, with pages of `limit`.
async fn pages(
    store: &dyn Store,
    campaign_id: &str,
    row: Option<Row>,
    limit: usize,
) -> Vec<smsreport_core::report::RecipientPage> {
    let mut out = Vec::new();
    let mut q = RecipientQuery {
        row,
        after: None,
        limit,
    };
    loop {
        let page = store
            .recipients(campaign_id, &q)
            .await
            .unwrap_or_else(|e| panic!("recipients of {campaign_id}: {e}"));
        let next = page.next.clone();
        out.push(page);
        match next {
            Some(n) => q.after = Some(n),
            None => return out,
        }
    }
}

/// Two stores hold the same state: the same campaign list, the same report of every
/// campaign, the same drill-down pages (unfiltered and by every row), and the same
/// `verify` result, with no difference in either. `context` names the comparison.
pub async fn assert_same_state(a: &dyn Store, b: &dyn Store, context: &str) {
    let ca = a.campaigns().await.expect("campaigns");
    assert_eq!(
        ca,
        b.campaigns().await.expect("campaigns"),
        "{context}: campaign lists"
    );
    for c in &ca {
        let id = &c.campaign_id;
        let report = report(a, id).await;
        assert_eq!(
            report,
            self::report(b, id).await,
            "{context}: report of {id}"
        );
        let limit = page_size(report.delivery.total);
        let rows = Row::NAMES
            .iter()
            .map(|n| Some(n.parse::<Row>().expect("a row")));
        for row in std::iter::once(None).chain(rows) {
            assert_eq!(
                pages(a, id, row, limit).await,
                pages(b, id, row, limit).await,
                "{context}: drill-down of {id}, row {row:?}, pages of {limit}"
            );
        }
    }
    let va = a.verify().await.expect("verify");
    assert!(
        va.differences.is_empty(),
        "{context}: verify: {:?}",
        va.differences
    );
    assert_eq!(va, b.verify().await.expect("verify"), "{context}: verify");
    assert_eq!(
        a.orphans().await.expect("orphans"),
        b.orphans().await.expect("orphans"),
        "{context}: statuses waiting for their message"
    );
}

/// A store's export, whole, read in pages of `page` records.
pub async fn export_text(store: &dyn Store, page: usize) -> String {
    let mut ex = smsreport_core::export::Export::new(store).with_page(page);
    let mut out = Vec::new();
    while let Some(chunk) = ex.next_chunk().await.expect("export") {
        out.extend(chunk);
    }
    String::from_utf8(out).expect("an export is UTF-8")
}

/// What the export check adds to the worked examples: a status still waiting for its
/// message, a contact without a name on a list no campaign names, clicks without an
/// `event_id` (a bot's among them), and a message with every optional field.
const EXPORT_EXTRA: &str = r#"{"type":"status","message_id":"ghost-1","status":"delivered","at":"2026-03-02T10:00:00Z"}
{"type":"status","message_id":"ghost-2","status":"failed_routing","error_code":"routing, \"quoted\"","at":"2026-03-02T10:00:00.125Z"}
{"type":"contact","list_id":"loose","recipient":"+37120000099"}
{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000001","at":"2026-03-03T10:00:00Z"}
{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000001","at":"2026-03-03T10:00:00.001Z","user_agent":"Googlebot/2.1"}
{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000002","at":"2026-03-03T09:00:00Z","user_agent":"Mozilla/5.0 é"}
"#;

/// Export: everything a store holds, written as lines and ingested into an empty store,
/// gives the same campaigns, reports, drill-downs, verify and tracked links; the copy
/// exports the same bytes; the page size changes nothing.
pub async fn export_moves_everything(store: &dyn Store) {
    use smsreport_core::mem::MemStore;
    use smsreport_core::TrackedLink;
    for text in [BASIC, RULES_1, RULES_2, INSIGHTS] {
        ingest_text(store, text).await;
    }
    ingest_expecting(
        store,
        EXPORT_EXTRA,
        counts(6, 0, 0),
        "the export's extra lines",
    )
    .await;
    let link = |code: &str, message: &str, link: &str, recipient: &str| TrackedLink {
        code: code.into(),
        campaign_id: "spring-sale".into(),
        link_id: link.into(),
        message_id: message.into(),
        recipient: recipient.into(),
    };
    let links = vec![
        link("Zz00001", "m1", "sale", "+37120000001"),
        link("Aa00002", "m2", "sale", "+37120000002"),
    ];
    store.save_links(&links).await.expect("save links");
    let first = export_text(store, smsreport_core::export::PAGE).await;
    for ty in [
        "campaign",
        "contact",
        "message",
        "status",
        "click",
        "tracked_link",
    ] {
        assert!(
            first.contains(&format!("\"type\":\"{ty}\"")),
            "the export has {ty} lines:\n{first}"
        );
    }
    assert!(first.contains("ghost-2"), "a pending status is exported");
    // Pages of one record, then of three: the same lines.
    assert_eq!(export_text(store, 1).await, first, "pages of 1");
    assert_eq!(export_text(store, 3).await, first, "pages of 3");
    let lines = first.lines().count() as u64;
    let copy = MemStore::default();
    let (summary, rejected) = ingest_text(&copy, &first).await;
    assert!(
        rejected.is_empty(),
        "the export is taken whole: {rejected:?}"
    );
    assert_eq!(
        summary,
        counts(lines, 0, 0),
        "every exported line is ingested"
    );
    assert_same_state(
        store,
        &copy,
        "the store and its export ingested into memory",
    )
    .await;
    for l in &links {
        assert_eq!(
            copy.resolve_link(&l.code).await.expect("resolve"),
            Some(l.clone()),
            "tracked link {} moves",
            l.code
        );
    }
    assert_eq!(
        export_text(&copy, 2).await,
        first,
        "the copy exports the same bytes"
    );
    // Taken back into the store it came from, an export changes nothing.
    ingest_text(store, &first).await;
    assert_same_state(store, &copy, "the store after taking its own export").await;
}

/// Forgetting: three people (one who clicked and was a contact, one only a contact, one
/// only a recipient) leave every report figure as it was but the subscribers; their
/// numbers are in nothing the store answers or exports; drill-downs show `forgotten`;
/// old input ingested again double-counts nothing; the store still moves losslessly.
pub async fn forgetting_a_person(store: &dyn Store) {
    use smsreport_core::forget::Forgotten;
    use smsreport_core::mem::MemStore;
    use smsreport_core::TrackedLink;
    const CLICKER: &str = "+37120000001";
    const CONTACT: &str = "+37120000077";
    const RECIPIENT: &str = "+37120000004";
    let extra = format!(
        "{{\"type\":\"contact\",\"list_id\":\"vip\",\"recipient\":\"{CONTACT}\",\"name\":\"Only a contact\"}}\n\
         {{\"type\":\"click\",\"campaign_id\":\"spring-sale\",\"link_id\":\"sale\",\"recipient\":\"{CLICKER}\",\"at\":\"2026-03-06T10:00:00Z\",\"event_id\":\"ev-1\"}}\n"
    );
    ingest_expecting(store, BASIC, counts(19, 0, 0), "the basic example").await;
    ingest_expecting(store, &extra, counts(2, 0, 0), "a contact and a click").await;
    let link = TrackedLink {
        code: "Fg00001".into(),
        campaign_id: "spring-sale".into(),
        link_id: "sale".into(),
        message_id: "m1".into(),
        recipient: CLICKER.into(),
    };
    store
        .save_links(std::slice::from_ref(&link))
        .await
        .expect("save");
    let before = report_json(store, "spring-sale").await;
    let drill_before = pages(store, "spring-sale", None, 100).await;

    let clicker = store.forget_number(CLICKER).await.expect("forget");
    assert_eq!(
        clicker,
        Forgotten {
            messages: 1,
            contacts: 1,
            clicks: 3,
            tracked_links: 1
        }
    );
    let contact = store.forget_number(CONTACT).await.expect("forget");
    assert_eq!(
        contact,
        Forgotten {
            contacts: 1,
            ..Forgotten::default()
        }
    );
    let recipient = store.forget_number(RECIPIENT).await.expect("forget");
    assert_eq!(
        recipient,
        Forgotten {
            messages: 1,
            ..Forgotten::default()
        }
    );
    assert_eq!(
        store.forget_number("+37129999999").await.expect("forget"),
        Forgotten::default(),
        "a number the store does not hold changes nothing"
    );
    assert!(matches!(
        store.forget_number("37120000001").await,
        Err(StoreError::Invalid(_))
    ));

    // Every figure stays but the subscribers: two of the list's contacts are gone.
    let mut want = before.clone();
    want["contact_list"]["subscribers"] = serde_json::json!(
        before["contact_list"]["subscribers"]
            .as_u64()
            .expect("subscribers")
            - 2
    );
    assert_json_eq(&report_json(store, "spring-sale").await, &want, "");
    verify_passes(store).await;

    // Drill-downs: the same rows, `forgotten` in place of the two numbers.
    let drill = pages(store, "spring-sale", None, 100).await;
    let rows =
        |p: &[smsreport_core::report::RecipientPage]| -> Vec<smsreport_core::report::RecipientRow> {
            p.iter().flat_map(|p| p.items.clone()).collect()
        };
    let (old, new) = (rows(&drill_before), rows(&drill));
    assert_eq!(old.len(), new.len());
    for (o, n) in old.iter().zip(&new) {
        let mut o = o.clone();
        if o.recipient == CLICKER || o.recipient == RECIPIENT {
            o.recipient = "forgotten".into();
        }
        assert_eq!(&o, n, "drill-down row of {}", n.message_id);
    }

    // The tracked link still redirects, for the token.
    let moved = store
        .resolve_link("Fg00001")
        .await
        .expect("resolve")
        .expect("the link");
    assert_eq!(moved.message_id, "m1");
    assert!(
        smsreport_core::forget::is_token(&moved.recipient),
        "{moved:?}"
    );

    // Nothing the store exports holds the numbers.
    let export = export_text(store, 3).await;
    for n in [CLICKER, CONTACT, RECIPIENT] {
        assert!(!export.contains(n), "{n} is in the export:\n{export}");
    }
    assert!(
        export.contains("forgotten:371:LV:"),
        "the tokens are: {export}"
    );
    let copy = MemStore::default();
    let (summary, rejected) = ingest_text(&copy, &export).await;
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(summary.ingested, export.lines().count() as u64);
    assert_same_state(store, &copy, "a forgotten store and its export").await;
    assert_eq!(
        export_text(&copy, 5).await,
        export,
        "the copy exports the same bytes"
    );

    // The old input again: the clicker's contact comes back (forget it again), nothing
    // else counts twice.
    ingest_expecting(store, BASIC, counts(1, 18, 0), "the basic example again").await;
    ingest_expecting(store, &extra, counts(1, 1, 0), "the extra lines again").await;
    assert_json_eq(&report_json(store, "spring-sale").await, &before, "");
    verify_passes(store).await;
    let again = store.forget_number(CLICKER).await.expect("forget");
    assert_eq!(
        again,
        Forgotten {
            contacts: 1,
            ..Forgotten::default()
        },
        "only the contact came back"
    );
}

/// Runs an async test body on a fresh runtime (tests are synchronous; stores are async).
pub fn run<T, F: std::future::Future<Output = T>>(f: F) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// THE list of the suite: `checks` are the `pub async fn(&dyn Store)` of this crate;
/// `properties` are the `pub fn(test, factory)` of [`props`]. It makes the tests of
/// [`conformance_tests!`] and [`CHECKS`].
#[doc(hidden)]
#[macro_export]
macro_rules! suite {
    ($($then:tt)*) => {
        $crate::suite_expand! { [$($then)*]
            checks: worked_example_basic, worked_example_rules, worked_example_insights,
                recipients_by_insight_filters,
                rejections_name_the_field,
                reingest_is_all_duplicates, unknown_campaign_is_not_found,
                status_before_message_counts, recipients_page_and_filter,
                campaigns_are_listed_newest_first, campaign_updates, click_rules,
                status_order_does_not_matter, months_in_a_time_zone, tracked_links,
                forty_statuses_of_one_message, more_statuses_than_a_message_remembers,
                undated_receipts_across_batches, statuses_waiting_for_their_message,
                rejected_callbacks_are_counted_by_campaign,
                export_moves_everything, forgetting_a_person;
            properties: any_order_and_duplication_gives_the_same_reports,
                rows_sum_to_total_and_verify_passes
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! suite_expand {
    ([@tests $factory:path] checks: $($check:ident),*; properties: $($prop:ident),*) => {
        mod conformance {
            $(
                #[test]
                fn $check() {
                    $crate::run($crate::run_check(
                        concat!(module_path!(), "::", stringify!($check)),
                        $factory,
                        async |store| $crate::$check(store).await,
                    ));
                }
            )*
            $(
                #[test]
                fn $prop() {
                    $crate::props::$prop(
                        concat!(module_path!(), "::", stringify!($prop)),
                        || $factory(),
                    );
                }
            )*
        }
    };
    ([@names] checks: $($check:ident),*; properties: $($prop:ident),*) => {
        &[$(stringify!($check),)* $(stringify!($prop),)*]
    };
}

/// The name of every check and property of the suite, in the order of the list.
pub const CHECKS: &[&str] = suite!(@names);

/// Makes every check and property of the suite a `#[test]` for one backend, in a module
/// `conformance`. `$factory` is the full path of an `async fn()` that gives a [`Fresh`]
/// store: `(S, G)`, or `Result<(S, G), Skip>` for a backend that may be unavailable, where
/// `S: Store` is a fresh, empty store and `G` cleans it up when dropped.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::suite!(@tests $factory);
    };
}
