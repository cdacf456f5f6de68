//! The HTTP service (README.md, "HTTP service"), spoken to over real HTTP on 127.0.0.1, on every store.

mod common;

use std::sync::Arc;

use common::{config, Server};
use serde_json::{json, Value};
use smsreport_core::Store;
use smsreport_http::{twilio_signature, Config};

const BASIC: &str = include_str!("../../conformance/fixtures/basic.ndjson");
const BASIC_REPORT: &str = include_str!("../../conformance/fixtures/basic.expected.json");
const INSIGHTS: &str = include_str!("../../conformance/fixtures/insights.ndjson");
const INSIGHTS_REPORT: &str = include_str!("../../conformance/fixtures/insights.expected.json");

on_every_store!(
    events_are_ingested_and_counted,
    events_body_rules,
    campaigns_report_and_csv,
    report_in_a_time_zone,
    report_insights_as_of,
    recipients_are_paged,
    bearer_token_guards_v1,
    messages_get_tracked_links,
    clicks_redirect_only_to_the_registered_link,
    twilio_callbacks,
    twilio_signatures,
    kannel_callbacks,
    jasmin_callbacks,
    smpp_receipts,
    webhook_key,
    auto_registration,
    oversized_bodies,
    concurrent_posts,
    health_ready_metrics,
    errors_are_json,
    shutdown_finishes_requests_in_flight,
);

/// A campaign with link tracking and two links, one URL a prefix of the other.
const SHOP: &str = r#"{"type":"campaign","campaign_id":"shop","name":"Shop","link_tracking":true,"links":[{"link_id":"sale","url":"https://shop.example/sale"},{"link_id":"shoes","url":"https://shop.example/sale/shoes?c=1&d=%20"}],"created_at":"2026-03-01T08:00:00Z"}"#;

fn message(id: &str, campaign: &str, recipient: &str) -> String {
    format!(
        r#"{{"type":"message","message_id":"{id}","campaign_id":"{campaign}","recipient":"{recipient}","at":"2026-03-01T09:00:00Z"}}"#
    )
}

async fn events_are_ingested_and_counted(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let bad = "\n{\"type\":\"status\"}\n";
    let body = format!("{BASIC}{bad}");
    let v = s.events(&body).await;
    let lines = BASIC.lines().count() as u64;
    assert_eq!(v["ingested"], lines, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    assert_eq!(
        v["rejected"],
        json!([{"line": lines + 2, "reason": "message_id: missing"}])
    );
    // The same again changes nothing.
    let again = s.events(BASIC).await;
    assert_eq!(again["ingested"], 0);
    assert_eq!(again["duplicates"], lines);
    // The report is the worked example (docs/rules.md, "The report"), with the insights
    // of docs/rules.md, "Insights", as of the moment that example is answered at.
    let r = s
        .get("/v1/campaigns/spring-sale/report?as_of=2026-03-05T00:00:00Z")
        .await;
    assert_eq!(r.status, 200);
    let mut got = r.json();
    let insights = got.as_object_mut().unwrap().remove("insights");
    let want: Value = serde_json::from_str(BASIC_REPORT).unwrap();
    assert_eq!(got, want);
    assert_eq!(
        insights,
        Some(json!({
            "delivery_latency": {
                "messages": 2, "p50_s": 10, "p90_s": 10, "p99_s": 10,
                "histogram": [{"le_s": 10, "messages": 2}]
            },
            "awaiting_receipt": {
                "as_of": "2026-03-05T00:00:00.000Z", "stale_after_h": 72,
                "messages": 2, "stale": 2,
                "by_age": [{"age": "under_1h", "messages": 0}, {"age": "1h_to_6h", "messages": 0},
                           {"age": "6h_to_24h", "messages": 0}, {"age": "24h_to_72h", "messages": 0},
                           {"age": "over_72h", "messages": 2}]
            },
            "by_country": [
                {"country_code": "371", "region": "LV", "total": 5, "delivered": 2, "sent": 1, "queued": 0,
                 "undelivered": 1, "errors": 1, "other": 0, "clicks": 3}
            ]
        }))
    );
}

async fn events_body_rules(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    // Not UTF-8: 400.
    let r = s
        .post("/v1/events", &[], b"{\"type\":\"contact\"}\n\xff\xfe\n")
        .await;
    assert!(r.assert_error(400).contains("not UTF-8"));
    // Empty body: nothing to do.
    let v = s.events("").await;
    assert_eq!(
        v,
        json!({"ingested": 0, "duplicates": 0, "rejected": [], "rejected_count": 0})
    );
    // A line over 1 MiB is rejected by number; its neighbours go in.
    let long = format!(
        "{{\"type\":\"contact\",\"name\":\"{}\"}}",
        "x".repeat(1 << 20)
    );
    let body = format!(
        "{long}\n{{\"type\":\"contact\",\"list_id\":\"l\",\"recipient\":\"+37120000001\"}}\r\n"
    );
    let v = s.events(&body).await;
    assert_eq!(v["ingested"], 1);
    assert_eq!(v["rejected"][0]["line"], 1);
    assert!(v["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("over the limit of 1048576"));
    // Chunked transfer works as well as Content-Length.
    let line = "{\"type\":\"contact\",\"list_id\":\"l\",\"recipient\":\"+37120000002\"}\n";
    let chunked = format!("{:x}\r\n{line}\r\n0\r\n\r\n", line.len());
    let r = s
        .post(
            "/v1/events",
            &[("Transfer-Encoding", "chunked")],
            chunked.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ingested"], 1);
}

async fn campaigns_report_and_csv(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    s.events(SHOP).await;
    let r = s.get("/v1/campaigns").await;
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        list[0],
        json!({"campaign_id": "shop", "name": "Shop", "created_at": "2026-03-01T08:00:00.000Z",
               "total": 0, "delivered": 0, "total_clicks": 0})
    );
    assert_eq!(list[1]["campaign_id"], "spring-sale");
    assert_eq!(list[1]["total"], 5);
    assert_eq!(list[1]["delivered"], 2);
    assert_eq!(list[1]["total_clicks"], 3);

    let r = s.get("/v1/campaigns/spring-sale/report?format=csv").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = r.text();
    assert!(
        text.starts_with("section,metric,value,percent\r\n"),
        "{text}"
    );
    assert!(text.contains("delivery,delivered,2,40.0\r\n"), "{text}");
    assert!(text.contains("clicks_by_month,2026-03,3,\r\n"), "{text}");
    let json = s.get("/v1/campaigns/spring-sale/report?format=json").await;
    assert_eq!(json.json()["delivery"]["total"], 5);

    assert!(s
        .get("/v1/campaigns/nope/report")
        .await
        .assert_error(404)
        .contains("no campaign named \"nope\""));
    assert!(s
        .get("/v1/campaigns/spring-sale/report?format=xml")
        .await
        .assert_error(400)
        .starts_with("format:"));
    s.get("/v1/campaigns/nope/report?format=csv")
        .await
        .assert_error(404);
}

async fn report_in_a_time_zone(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    // Clicks just before midnight UTC at the end of March: April in Riga (UTC+3).
    let clicks = [
        r#"{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000001","at":"2026-03-31T22:30:00Z"}"#,
        r#"{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000002","at":"2026-03-31T20:30:00Z"}"#,
    ]
    .join("\n");
    s.events(&clicks).await;
    let utc = s.get("/v1/campaigns/spring-sale/report").await.json();
    assert_eq!(
        utc["links"]["clicks_by_month"],
        json!([{"month": "2026-03", "clicks": 5}])
    );
    let riga = s
        .get("/v1/campaigns/spring-sale/report?tz=Europe/Riga")
        .await
        .json();
    assert_eq!(
        riga["links"]["clicks_by_month"],
        json!([{"month": "2026-03", "clicks": 4}, {"month": "2026-04", "clicks": 1}])
    );
    let encoded = s
        .get("/v1/campaigns/spring-sale/report?tz=Europe%2FRiga&format=csv")
        .await;
    assert!(encoded.text().contains("clicks_by_month,2026-04,1,\r\n"));
    // New York (UTC−4 in March): the same clicks stay in March.
    let ny = s
        .get("/v1/campaigns/spring-sale/report?tz=America/New_York")
        .await
        .json();
    assert_eq!(
        ny["links"]["clicks_by_month"],
        json!([{"month": "2026-03", "clicks": 5}])
    );
    let e = s
        .get("/v1/campaigns/spring-sale/report?tz=Mars/Olympus")
        .await
        .assert_error(400);
    assert!(e.contains("unknown time zone \"Mars/Olympus\""), "{e}");
    s.get("/v1/campaigns/spring-sale/report?tz=")
        .await
        .assert_error(400);
}

/// The insights worked example (docs/rules.md, "Insights"): `?as_of=` and
/// `?stale_after_h=` answer it exactly, in JSON and CSV, with `tz=` too; bad values are
/// `400`s naming the parameter.
async fn report_insights_as_of(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let v = s.events(INSIGHTS).await;
    assert_eq!(v["rejected"], json!([]), "{v}");
    let want: Value = serde_json::from_str(INSIGHTS_REPORT).unwrap();
    let path = "/v1/campaigns/world/report?as_of=2026-03-10T00:00:00Z&stale_after_h=24";
    let r = s.get(path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), want);
    // The same moment with an offset (`+` written %2B), months in a zone.
    let r = s
        .get("/v1/campaigns/world/report?as_of=2026-03-10T02:00:00%2B02:00&stale_after_h=24&tz=Europe/Riga")
        .await
        .json();
    assert_eq!(r["insights"], want["insights"]);
    let csv = s.get(&format!("{path}&format=csv")).await;
    assert_eq!(csv.status, 200);
    let text = csv.text();
    for line in [
        "delivery_latency,p50_s,60,\r\n",
        "awaiting_receipt,as_of,2026-03-10T00:00:00.000Z,\r\n",
        "awaiting_receipt,stale,2,18.2\r\n",
        "country:+371/LV,clicks,2,\r\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    // Without them: as of now, stale after 72 h.
    let now = s.get("/v1/campaigns/world/report").await.json();
    assert_eq!(now["insights"]["awaiting_receipt"]["stale_after_h"], 72);
    assert_eq!(
        now["insights"]["by_country"],
        want["insights"]["by_country"]
    );

    for (query, names) in [
        ("as_of=yesterday", "as_of:"),
        ("as_of=2026-03-10T00:00:00+02:00", "as_of:"),
        ("as_of=", "as_of:"),
        ("stale_after_h=0", "stale_after_h:"),
        ("stale_after_h=8761", "stale_after_h:"),
        ("stale_after_h=x", "stale_after_h:"),
        ("stale_after_h=24&as_of=2026-13-01T00:00:00Z", "as_of:"),
    ] {
        for format in ["", "&format=csv"] {
            let e = s
                .get(&format!("/v1/campaigns/world/report?{query}{format}"))
                .await
                .assert_error(400);
            assert!(e.starts_with(names), "{query}: {e}");
        }
    }
}

async fn recipients_are_paged(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    let p1 = s
        .get("/v1/campaigns/spring-sale/recipients?limit=2")
        .await
        .json();
    let ids: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1", "m2"]);
    assert_eq!(p1["next"], "m2");
    assert_eq!(p1["items"][0]["recipient"], "+37120000001");
    assert_eq!(p1["items"][0]["status"], "delivered");
    let p3 = s
        .get("/v1/campaigns/spring-sale/recipients?limit=2&after=m4")
        .await
        .json();
    assert_eq!(p3["items"].as_array().unwrap().len(), 1);
    assert_eq!(p3["next"], Value::Null);
    let delivered = s
        .get("/v1/campaigns/spring-sale/recipients?status=delivered")
        .await
        .json();
    assert_eq!(delivered["items"].as_array().unwrap().len(), 2);
    let errors = s
        .get("/v1/campaigns/spring-sale/recipients?status=errors")
        .await
        .json();
    assert_eq!(errors["items"][0]["message_id"], "m5");
    assert_eq!(errors["items"][0]["error_code"], "27");
    s.get("/v1/campaigns/spring-sale/recipients?status=lost")
        .await
        .assert_error(400);
    for bad in ["0", "10001", "x", "-1"] {
        s.get(&format!("/v1/campaigns/spring-sale/recipients?limit={bad}"))
            .await
            .assert_error(400);
    }
    s.get("/v1/campaigns/nope/recipients")
        .await
        .assert_error(404);
}

async fn bearer_token_guards_v1(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.token = Some("s3cret-token".into());
    let s = Server::start(store, cfg).await;
    let ok = [("Authorization", "Bearer s3cret-token")];
    let r = s.post("/v1/events", &ok, BASIC.as_bytes()).await;
    assert_eq!(r.status, 200);
    for (method, path) in [
        ("POST", "/v1/events"),
        ("GET", "/v1/campaigns"),
        ("GET", "/v1/campaigns/spring-sale/report"),
        ("GET", "/v1/campaigns/spring-sale/recipients"),
        ("POST", "/v1/campaigns/spring-sale/messages"),
    ] {
        for h in [
            vec![],
            vec![("Authorization", "Bearer wrong")],
            vec![("Authorization", "Bearer s3cret-tokenX")],
            vec![("Authorization", "Basic czNjcmV0LXRva2Vu")],
            vec![("Authorization", "s3cret-token")],
        ] {
            let r = s.req(method, path, &h, b"{}").await;
            assert!(
                r.assert_error(401).contains("Bearer"),
                "{method} {path} {h:?}"
            );
            assert!(r.header("www-authenticate").is_some());
        }
    }
    let r = s.req("GET", "/v1/campaigns", &ok, b"").await;
    assert_eq!(r.status, 200);
    let r = s
        .req(
            "GET",
            "/v1/campaigns",
            &[("authorization", "bearer s3cret-token")],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "the scheme ignores case");
    // Webhooks, /healthz, /readyz, /metrics and /c/ need none.
    let r = s
        .post(
            "/v1/webhooks/twilio",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"MessageSid=m1&MessageStatus=delivered",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(s.get(path).await.status, 200, "{path}");
    }
    s.get("/c/AAAAAAAA").await.assert_error(404);
}

async fn messages_get_tracked_links(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.public_url = "https://sms.example/".into();
    let s = Server::start(store, cfg).await;
    s.events(SHOP).await;
    let text = "Sale! https://shop.example/sale/shoes?c=1&d=%20 or https://shop.example/sale — https://shop.example/sale";
    let body = json!({"messages": [
        {"message_id": "s1", "recipient": "+37120000001", "text": text},
        {"message_id": "s2", "recipient": "+37120000002", "text": "No link", "parts": 2},
    ]});
    let r = s
        .post(
            "/v1/campaigns/shop/messages",
            &[],
            body.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let out = v["messages"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(v["messages"][0]["message_id"], "s1");
    assert_eq!(
        v["messages"][1],
        json!({"message_id": "s2", "text": "No link"})
    );
    // Three URLs, two links: two codes, the second used twice.
    let codes: Vec<&str> = out
        .split("https://sms.example/c/")
        .skip(1)
        .map(|t| t.split(' ').next().unwrap())
        .collect();
    assert_eq!(codes.len(), 3, "{out}");
    assert_ne!(codes[0], codes[1]);
    assert_eq!(codes[1], codes[2]);
    for c in &codes {
        assert!(
            c.len() >= 7 && c.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{c}"
        );
    }
    assert_eq!(
        out,
        format!(
            "Sale! https://sms.example/c/{} or https://sms.example/c/{} — https://sms.example/c/{}",
            codes[0], codes[1], codes[1]
        )
    );
    // Registering again: duplicates, the same short URLs.
    let again = s
        .post(
            "/v1/campaigns/shop/messages",
            &[],
            body.to_string().as_bytes(),
        )
        .await
        .json();
    assert_eq!(again["messages"][0]["text"], out);
    let report = s.get("/v1/campaigns/shop/report").await.json();
    assert_eq!(report["delivery"]["total"], 2);
    assert_eq!(report["delivery"]["queued"], 2);
    assert_eq!(report["delivery"]["segments"], 3);

    // Without link tracking the text stays as it is.
    s.events(r#"{"type":"campaign","campaign_id":"plain","name":"Plain","links":[{"link_id":"a","url":"https://a.example/"}]}"#).await;
    let r = s
        .post(
            "/v1/campaigns/plain/messages",
            &[],
            br#"{"messages":[{"message_id":"p1","recipient":"+37120000001","text":"see https://a.example/"}]}"#,
        )
        .await;
    assert_eq!(r.json()["messages"][0]["text"], "see https://a.example/");

    // Mistakes: 400 and nothing stored; an unknown campaign 404; a taken id 409.
    for (bad, field) in [
        (
            json!({"messages": [{"message_id": "x 1", "recipient": "+37120000001", "text": ""}]}),
            "messages[0].message_id",
        ),
        (
            json!({"messages": [{"message_id": "x1", "recipient": "+3712", "text": ""}]}),
            "messages[0].recipient",
        ),
        (
            json!({"messages": [{"message_id": "x1", "recipient": "+37120000001", "text": "", "parts": 0}]}),
            "messages[0].parts",
        ),
        (
            json!({"messages": [{"message_id": "x1", "recipient": "+37120000001"}]}),
            "body",
        ),
        (json!({"message": []}), "body"),
    ] {
        let e = s
            .post(
                "/v1/campaigns/shop/messages",
                &[],
                bad.to_string().as_bytes(),
            )
            .await
            .assert_error(400);
        assert!(e.starts_with(field), "{e}");
    }
    s.post("/v1/campaigns/shop/messages", &[], b"not json")
        .await
        .assert_error(400);
    assert_eq!(
        s.get("/v1/campaigns/shop/report").await.json()["delivery"]["total"],
        2
    );
    s.post("/v1/campaigns/nope/messages", &[], br#"{"messages":[]}"#)
        .await
        .assert_error(404);
    // With messages, the 404 comes from core's rejection of them, in core's words.
    let e = s
        .post(
            "/v1/campaigns/nope/messages",
            &[],
            br#"{"messages":[{"message_id":"n1","recipient":"+37120000001","text":"x"}]}"#,
        )
        .await
        .assert_error(404);
    assert!(e.contains("no campaign named \"nope\""), "{e}");
    // A bad recipient is rejected in the words of a `message` line's rejection.
    let e = s
        .post(
            "/v1/campaigns/shop/messages",
            &[],
            br#"{"messages":[{"message_id":"x1","recipient":"+3712","text":""}]}"#,
        )
        .await
        .assert_error(400);
    assert_eq!(
        e,
        "messages[0].recipient: \"+3712\" is not an E.164 phone number (+, then 7 to 15 digits, not starting with 0)"
    );
    let r = s
        .post(
            "/v1/campaigns/plain/messages",
            &[],
            br#"{"messages":[{"message_id":"s1","recipient":"+37120000001","text":"x"},{"message_id":"p2","recipient":"+37120000003","text":"y"}]}"#,
        )
        .await;
    r.assert_error(409);
    let v = r.json();
    assert_eq!(v["rejected"][0]["message_id"], "s1");
    assert_eq!(v["messages"], json!([{"message_id": "p2", "text": "y"}]));
}

async fn clicks_redirect_only_to_the_registered_link(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(SHOP).await;
    let r = s
        .post(
            "/v1/campaigns/shop/messages",
            &[],
            br#"{"messages":[{"message_id":"s1","recipient":"+37120000001","text":"https://shop.example/sale/shoes?c=1&d=%20"}]}"#,
        )
        .await;
    let text = r.json()["messages"][0]["text"].as_str().unwrap().to_owned();
    let public = format!("http://{}", s.addr);
    let code = text
        .strip_prefix(&format!("{public}/c/"))
        .unwrap()
        .to_owned();
    let target = "https://shop.example/sale/shoes?c=1&d=%20";

    // HEAD: the same answer, no click.
    let r = s.req("HEAD", &format!("/c/{code}"), &[], b"").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(target));
    // GET: a click, then the redirect; extra query parameters change nothing.
    for path in [
        format!("/c/{code}"),
        format!("/c/{code}?url=https://evil.example/&next=//evil.example&redirect=x"),
    ] {
        let r = s
            .req("GET", &path, &[("User-Agent", "Mozilla/5.0")], b"")
            .await;
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(r.header("location"), Some(target), "{path}");
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // A previewer's click counts as a bot click.
    let r = s
        .req(
            "GET",
            &format!("/c/{code}"),
            &[("User-Agent", "WhatsApp/2.0")],
            b"",
        )
        .await;
    assert_eq!(r.status, 302);
    let report = s.get("/v1/campaigns/shop/report").await.json();
    assert_eq!(report["links"]["total_clicks"], 2);
    assert_eq!(report["links"]["unique_clicks"], 1);
    assert_eq!(report["links"]["bot_clicks"], 1);
    assert_eq!(report["links"]["most_popular"]["link_id"], "shoes");
    let rec = s.get("/v1/campaigns/shop/recipients").await.json();
    assert_eq!(rec["items"][0]["clicks"], 2);

    // Attacks: unknown codes, odd encodings, extra segments — 404, never a redirect.
    let lower = code.to_lowercase();
    let upper = code.to_uppercase();
    let other_case = if lower != code { lower } else { upper };
    for path in [
        "/c/AAAAAAAA".to_owned(),
        "/c/".to_owned(),
        "/c".to_owned(),
        "/c/abc".to_owned(),
        format!("/c/{code}/https://evil.example"),
        format!("/c/{code}%2F..%2F..%2Fevil"),
        format!("/c/{code}%00"),
        format!("/c/{code}%20"),
        "/c/%2F%2Fevil.example".to_owned(),
        "/c/..%2F..%2Fv1%2Fcampaigns".to_owned(),
        "/c/%FF%FE%FD%FC%FB%FA%F9".to_owned(),
        "/c/https:%2F%2Fevil.example".to_owned(),
        "//c/evil.example".to_owned(),
        format!("/c/{other_case}"),
        format!("/c/{}", "A".repeat(5000)),
    ] {
        let r = s.get(&path).await;
        assert!(r.header("location").is_none(), "{path}: {:?}", r.headers);
        assert!(r.status == 404 || r.status == 400, "{path}: {}", r.status);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    }
    // Nothing was recorded by those.
    let report = s.get("/v1/campaigns/shop/report").await.json();
    assert_eq!(report["links"]["total_clicks"], 2);
    s.req("POST", &format!("/c/{code}"), &[], b"")
        .await
        .assert_error(405);
}

fn form() -> [(&'static str, &'static str); 1] {
    [("Content-Type", "application/x-www-form-urlencoded")]
}

async fn twilio_callbacks(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let mut ndjson = String::from(r#"{"type":"campaign","campaign_id":"tw","name":"Twilio"}"#);
    for i in 1..=13 {
        ndjson.push('\n');
        ndjson.push_str(&message(
            &format!("SM{i:02}"),
            "tw",
            &format!("+3712000000{i}"),
        ));
    }
    s.events(&ndjson).await;
    // The rows of gateways.md, one message each.
    let rows = [
        ("MessageSid=SM01&MessageStatus=delivered", "delivered", None),
        ("MessageSid=SM02&MessageStatus=sending", "enroute", None),
        (
            "MessageSid=SM03&MessageStatus=undelivered&ErrorCode=30003",
            "failed_expired",
            Some("30003"),
        ),
        (
            "MessageSid=SM04&MessageStatus=failed&ErrorCode=30005",
            "failed_routing",
            Some("30005"),
        ),
        (
            "MessageSid=SM05&MessageStatus=undelivered&ErrorCode=30007",
            "failed_rejected",
            Some("30007"),
        ),
        (
            "MessageSid=SM06&MessageStatus=undelivered&ErrorCode=30008",
            "unknown",
            Some("30008"),
        ),
        (
            "MessageSid=SM07&MessageStatus=delivered&RawDlrDoneDate=2603011015",
            "delivered",
            None,
        ),
        (
            "MessageSid=SM08&MessageStatus=canceled",
            "failed_rejected",
            None,
        ),
        ("MessageSid=SM09&SmsStatus=delivered", "delivered", None),
        (
            "MessageSid=SM10&MessageStatus=delivered&ErrorCode=",
            "delivered",
            None,
        ),
        (
            "MessageSid=SM11&MessageStatus=partially_delivered",
            "unknown",
            None,
        ),
        (
            "MessageSid=SM12&MessageStatus=delivered&To=whatsapp%3A%2B37120000001",
            "delivered",
            None,
        ),
        (
            "MessageSid=SM13&MessageStatus=delivered&RawDlrDoneDate=2613451015",
            "delivered",
            None,
        ),
    ];
    for (body, _, _) in rows {
        let r = s
            .post("/v1/webhooks/twilio", &form(), body.as_bytes())
            .await;
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        assert_eq!(r.json(), json!({"ingested": 1, "duplicates": 0}), "{body}");
    }
    // A callback again is a duplicate, with a time of its own or without (a retry never
    // moves the status time): 200, so the gateway stops retrying.
    let before = s.get("/v1/campaigns/tw/recipients").await.json()["items"][0]["status_at"].clone();
    for i in [6, 0, 0] {
        let again = s
            .post("/v1/webhooks/twilio", &form(), rows[i].0.as_bytes())
            .await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json(), json!({"ingested": 0, "duplicates": 1}));
    }
    let after = s.get("/v1/campaigns/tw/recipients").await.json()["items"][0]["status_at"].clone();
    assert_eq!(before, after);
    // JSON bodies too.
    let r = s
        .post(
            "/v1/webhooks/twilio",
            &[("Content-Type", "application/json")],
            br#"{"MessageSid": "SM02", "MessageStatus": "sent", "ErrorCode": null}"#,
        )
        .await;
    assert_eq!(r.json(), json!({"ingested": 1, "duplicates": 0}));
    let items = s.get("/v1/campaigns/tw/recipients").await.json()["items"].clone();
    for (i, (body, status, code)) in rows.iter().enumerate() {
        let status = if i == 1 { "sent" } else { status };
        assert_eq!(items[i]["status"], *status, "{body}");
        assert_eq!(items[i]["error_code"], json!(code), "{body}");
    }
    assert_eq!(items[6]["status_at"], "2026-03-01T10:15:00.000Z");
    let e = s
        .post("/v1/webhooks/twilio", &form(), b"MessageStatus=delivered")
        .await
        .assert_error(400);
    assert_eq!(e, "MessageSid: missing");
    // A status Twilio adds later is unknown, not a rejection.
    let r = s
        .post(
            "/v1/webhooks/twilio",
            &form(),
            b"MessageSid=SM1&MessageStatus=bogus",
        )
        .await;
    assert_eq!(r.status, 200);
    s.post(
        "/v1/webhooks/twilio",
        &form(),
        b"MessageSid=SM1&MessageStatus=%FF",
    )
    .await
    .assert_error(400);
    s.get("/v1/webhooks/twilio").await.assert_error(405);
}

async fn twilio_signatures(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.public_url = "https://sms.example".into();
    cfg.twilio_auth_token = Some("12345".into());
    let s = Server::start(store, cfg).await;
    let body = "MessageSid=SM9&MessageStatus=delivered&To=%2B14155550100&AccountSid=AC1";
    let params = smsreport_core::gateway::Params::parse(body).unwrap().0;
    let path = "/v1/webhooks/twilio?x=1";
    let good = twilio_signature("12345", &format!("https://sms.example{path}"), &params);
    let r = s
        .post(
            path,
            &[form()[0], ("X-Twilio-Signature", &good)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let wrong_url = twilio_signature("12345", "https://sms.example/v1/webhooks/twilio", &params);
    let wrong_key = twilio_signature("54321", &format!("https://sms.example{path}"), &params);
    for sig in [
        None,
        Some(""),
        Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        Some(wrong_url.as_str()),
        Some(wrong_key.as_str()),
    ] {
        let mut h = vec![form()[0]];
        if let Some(sig) = sig {
            h.push(("X-Twilio-Signature", sig));
        }
        let e = s.post(path, &h, body.as_bytes()).await.assert_error(403);
        assert!(e.contains("X-Twilio-Signature"), "{e}");
    }
    // A changed body with the old signature.
    s.post(
        path,
        &[form()[0], ("X-Twilio-Signature", &good)],
        body.replace("delivered", "failed").as_bytes(),
    )
    .await
    .assert_error(403);
    // Signed over the URL with its default port, as Twilio sometimes does.
    let with_port = twilio_signature("12345", &format!("https://sms.example:443{path}"), &params);
    let r = s
        .post(
            path,
            &[form()[0], ("X-Twilio-Signature", &with_port)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A JSON body: the URL carries its SHA-256, the signature covers the URL alone.
    let json_body = br#"{"MessageSid": "SM10", "MessageStatus": "delivered"}"#;
    let hash = "c0e7a88b8bd6dd9a1b1fdc5e4f2d0b56c51327c6a35b7b0dbd1aac4a0b6f5a8d";
    let real_hash = sha256_hex(json_body);
    let json_path = format!("/v1/webhooks/twilio?bodySHA256={real_hash}");
    let sig = twilio_signature("12345", &format!("https://sms.example{json_path}"), &[]);
    let json_ct = ("Content-Type", "application/json");
    let r = s
        .post(
            &json_path,
            &[json_ct, ("X-Twilio-Signature", &sig)],
            json_body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Another body, or a URL without the hash, fails.
    s.post(
        &json_path,
        &[json_ct, ("X-Twilio-Signature", &sig)],
        br#"{"MessageSid": "SM10", "MessageStatus": "failed"}"#,
    )
    .await
    .assert_error(403);
    let bad_path = format!("/v1/webhooks/twilio?bodySHA256={hash}");
    let sig = twilio_signature("12345", &format!("https://sms.example{bad_path}"), &[]);
    s.post(
        &bad_path,
        &[json_ct, ("X-Twilio-Signature", &sig)],
        json_body,
    )
    .await
    .assert_error(403);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

async fn kannel_callbacks(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let mut ndjson = String::from(r#"{"type":"campaign","campaign_id":"k","name":"Kannel"}"#);
    for i in 1..=8 {
        ndjson.push('\n');
        ndjson.push_str(&message(&format!("m{i}"), "k", &format!("+3712000000{i}")));
    }
    s.events(&ndjson).await;
    let rows = [
        ("type=1&id=m1", "delivered", None),
        (
            "type=2&id=m2&ts=1772355600",
            "failed_routing",
            Some("2026-03-01T09:00:00.000Z"),
        ),
        ("type=4&id=m3", "enroute", None),
        ("type=8&id=m4", "sent", None),
        ("type=16&id=m5", "failed_rejected", None),
        (
            "type=1&id=m6&reply=id%3Am4%20stat%3AEXPIRED%20err%3A027%20done%20date%3A2603011000",
            "failed_expired",
            Some("2026-03-01T10:00:00.000Z"),
        ),
        (
            "type=1&id=m7&reply=id%3Am4%20stat%3A%20err%3A000",
            "delivered",
            None,
        ),
        ("type=1&id=m8&to=0291234567", "delivered", None),
    ];
    for (i, (q, _, _)) in rows.iter().enumerate() {
        // GET as Kannel does; POST with a form body works too.
        let r = if i % 2 == 0 {
            s.get(&format!("/v1/webhooks/kannel?{q}")).await
        } else {
            s.post("/v1/webhooks/kannel", &form(), q.as_bytes()).await
        };
        assert_eq!(r.status, 200, "{q}: {}", r.text());
    }
    let items = s.get("/v1/campaigns/k/recipients").await.json()["items"].clone();
    for (i, (q, status, at)) in rows.iter().enumerate() {
        assert_eq!(items[i]["status"], *status, "{q}");
        if let Some(at) = at {
            assert_eq!(items[i]["status_at"], *at, "{q}");
        }
    }
    assert_eq!(items[5]["error_code"], "027");
    assert!(s
        .get("/v1/webhooks/kannel?type=3&id=m4")
        .await
        .assert_error(400)
        .starts_with("type:"));
    assert_eq!(
        s.get("/v1/webhooks/kannel?type=1").await.assert_error(400),
        "id: missing"
    );
    s.req("PUT", "/v1/webhooks/kannel?type=1&id=m1", &[], b"")
        .await
        .assert_error(405);
}

async fn jasmin_callbacks(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(&format!(
        "{}\n{}\n{}",
        r#"{"type":"campaign","campaign_id":"j","name":"Jasmin"}"#,
        message("t1", "j", "+37120000001"),
        message("t2", "j", "+37120000002")
    ))
    .await;
    for body in [
        "id=t1&level=1&message_status=ESME_ROK",
        "id=t1&level=3&message_status=DELIVRD&donedate=2603011020&err=000&subdate=2603011019&sub=001&dlvrd=001",
        "id=t2&level=1&message_status=ESME_RSUBMITFAIL",
    ] {
        let r = s.post("/v1/webhooks/jasmin", &form(), body.as_bytes()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        assert_eq!(r.text(), "ACK/Jasmin");
    }
    let items = s.get("/v1/campaigns/j/recipients").await.json()["items"].clone();
    assert_eq!(items[0]["status"], "delivered");
    assert_eq!(items[0]["status_at"], "2026-03-01T10:20:00.000Z");
    assert_eq!(items[0]["error_code"], Value::Null);
    assert_eq!(items[1]["status"], "failed_rejected");
    let r = s
        .post(
            "/v1/webhooks/jasmin",
            &form(),
            b"id=t1&level=2&message_status=EXPIRED&donedate=2603021020&err=027",
        )
        .await;
    assert_eq!(r.text(), "ACK/Jasmin");
    // A duplicate is acknowledged too, and a donedate that cannot be read is no
    // rejection.
    for body in [
        "id=t1&level=2&message_status=EXPIRED&donedate=2603021020&err=027",
        "id=t2&level=3&message_status=UNDELIV&donedate=2613451020",
    ] {
        let r = s
            .post("/v1/webhooks/jasmin", &form(), body.as_bytes())
            .await;
        assert_eq!(
            (r.status, r.text()),
            (200, "ACK/Jasmin".to_owned()),
            "{body}"
        );
    }
    s.post(
        "/v1/webhooks/jasmin",
        &form(),
        b"id=t1&level=9&message_status=DELIVRD",
    )
    .await
    .assert_error(400);
    s.get("/v1/webhooks/jasmin?id=t1").await.assert_error(405);
}

async fn smpp_receipts(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(&format!(
        "{}\n{}\n{}",
        r#"{"type":"campaign","campaign_id":"sm","name":"SMPP"}"#,
        message("m5", "sm", "+37120000001"),
        message("0a1b2c", "sm", "+37120000002")
    ))
    .await;
    let body = "id:m5 sub:001 dlvrd:001 submit date:2603010900 done date:2603030900 stat:DELIVRD err:000 text:Sale\r\n\
                id:0a1b2c sub:001 dlvrd:000 submit date:2603010900 done date:260301091530 stat:UNDELIV err:001 text:\n\
                sub:001 stat:DELIVRD\n";
    let r = s.post("/v1/webhooks/smpp", &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"ingested": 2, "duplicates": 0, "rejected": [{"line": 3, "reason": "id: missing"}],
               "rejected_count": 1})
    );
    let items = s.get("/v1/campaigns/sm/recipients").await.json()["items"].clone();
    assert_eq!(items[0]["message_id"], "0a1b2c");
    assert_eq!(items[0]["status"], "failed_routing");
    assert_eq!(items[0]["status_at"], "2026-03-01T09:15:30.000Z");
    assert_eq!(items[1]["status"], "delivered");
    // A done date that cannot be read, or an empty stat, is no rejection.
    let r = s
        .post(
            "/v1/webhooks/smpp",
            &[],
            b"id:m5 stat:DELIVRD done date:2613450900\nid:0a1b2c stat: done date:2603010900",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"ingested": 1, "duplicates": 1, "rejected": [], "rejected_count": 0})
    );
    // Every line rejected, or nothing: 400.
    let e = s
        .post("/v1/webhooks/smpp", &[], b"sub:001 stat:DELIVRD")
        .await
        .assert_error(400);
    assert_eq!(e, "id: missing");
    s.post("/v1/webhooks/smpp", &[], b"")
        .await
        .assert_error(400);
    s.post("/v1/webhooks/smpp", &[], b"id:\xff stat:DELIVRD")
        .await
        .assert_error(400);
}

async fn webhook_key(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.webhook_key = Some("k3y".into());
    cfg.token = Some("t0ken".into());
    let s = Server::start(store, cfg).await;
    for (method, path, body) in [
        ("GET", "/v1/webhooks/kannel?type=1&id=m1", ""),
        ("POST", "/v1/webhooks/kannel?type=1&id=m1", ""),
        (
            "POST",
            "/v1/webhooks/jasmin",
            "id=t1&level=1&message_status=ESME_ROK",
        ),
        ("POST", "/v1/webhooks/smpp", "id:m1 stat:DELIVRD"),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        for bad in ["", "&key=wrong", "&key=", "&KEY=k3y", "&key=k3y%20"] {
            let p = if bad.is_empty() {
                path.to_owned()
            } else {
                format!("{path}{sep}{}", &bad[1..])
            };
            let e = s
                .req(method, &p, &form(), body.as_bytes())
                .await
                .assert_error(403);
            assert!(e.contains("key"), "{e}");
        }
        let r = s
            .req(
                method,
                &format!("{path}{sep}key=k3y"),
                &form(),
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    }
    // Twilio is signed instead (no auth token set here: open).
    let r = s
        .post(
            "/v1/webhooks/twilio",
            &form(),
            b"MessageSid=m2&MessageStatus=sent",
        )
        .await;
    assert_eq!(r.status, 200);
}

async fn auto_registration(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(r#"{"type":"campaign","campaign_id":"auto","name":"Auto"}"#)
        .await;
    // Twilio: To names the recipient.
    let r = s
        .post(
            "/v1/webhooks/twilio?campaign_id=auto",
            &form(),
            b"MessageSid=SMa&MessageStatus=sent&To=%2B14155550100",
        )
        .await;
    assert_eq!(r.json(), json!({"ingested": 1, "duplicates": 0}));
    let r = s
        .post(
            "/v1/webhooks/twilio?campaign_id=auto",
            &form(),
            b"MessageSid=SMa&MessageStatus=delivered&To=%2B14155550100",
        )
        .await;
    assert_eq!(r.json(), json!({"ingested": 1, "duplicates": 0}));
    // Kannel: to (%p) names it.
    let r = s
        .get("/v1/webhooks/kannel?campaign_id=auto&region=LV&type=16&id=k1&to=20000009")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Jasmin and a callback without a recipient register nothing.
    s.post(
        "/v1/webhooks/twilio?campaign_id=auto",
        &form(),
        b"MessageSid=SMb&MessageStatus=sent",
    )
    .await;
    let report = s.get("/v1/campaigns/auto/report").await.json();
    assert_eq!(report["delivery"]["total"], 2);
    assert_eq!(report["delivery"]["delivered"], 1);
    assert_eq!(report["delivery"]["errors"]["rejected"], 1);
    let items = s.get("/v1/campaigns/auto/recipients").await.json()["items"].clone();
    assert_eq!(items[0]["message_id"], "SMa");
    assert_eq!(items[0]["recipient"], "+14155550100");
    assert_eq!(items[1]["recipient"], "+37120000009");
    // The pending status of SMb counts once its message arrives.
    s.events(&message("SMb", "auto", "+37120000010")).await;
    let report = s.get("/v1/campaigns/auto/report").await.json();
    assert_eq!(report["delivery"]["sent"], 1);
    // An unknown campaign: 404 and nothing stored; a bad id: 400.
    let e = s
        .post(
            "/v1/webhooks/twilio?campaign_id=nope",
            &form(),
            b"MessageSid=SMc&MessageStatus=sent&To=%2B14155550100",
        )
        .await
        .assert_error(404);
    assert!(e.contains("no campaign named \"nope\""), "{e}");
    s.post(
        "/v1/webhooks/twilio?campaign_id=a%2Fb",
        &form(),
        b"MessageSid=SMc&MessageStatus=sent&To=%2B14155550100",
    )
    .await
    .assert_error(400);
    s.get("/v1/webhooks/kannel?campaign_id=auto&region=XX&type=1&id=k2")
        .await
        .assert_error(400);
    // A recipient that cannot be read (no region for a national number, a short code)
    // registers nothing, and the status is kept for its message.
    for q in ["type=1&id=k2&to=20000002", "type=1&id=k3&to=12"] {
        let r = s
            .get(&format!("/v1/webhooks/kannel?campaign_id=auto&{q}"))
            .await;
        assert_eq!(r.status, 200, "{q}: {}", r.text());
    }
    // An unknown campaign_id does not matter for a message already known.
    let r = s
        .get("/v1/webhooks/kannel?campaign_id=nope&type=1&id=k1&to=%2B37120000009")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A message already in another campaign keeps it; the status still applies.
    s.events(r#"{"type":"campaign","campaign_id":"other","name":"Other"}"#)
        .await;
    let r = s
        .post(
            "/v1/webhooks/twilio?campaign_id=other",
            &form(),
            b"MessageSid=SMa&MessageStatus=failed&ErrorCode=30005&To=%2B14155550100",
        )
        .await;
    assert_eq!(r.status, 200);
    let other = s.get("/v1/campaigns/other/report").await.json();
    assert_eq!(other["delivery"]["total"], 0);
}

async fn oversized_bodies(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.body_limit = 4096;
    cfg.webhook_body_limit = 4096;
    cfg.smpp_body_limit = 4096;
    let s = Server::start(store, cfg).await;
    let big = vec![b'x'; 5000];
    for path in [
        "/v1/events",
        "/v1/webhooks/smpp",
        "/v1/webhooks/twilio",
        "/v1/webhooks/jasmin",
        "/v1/webhooks/kannel",
        "/v1/campaigns/x/messages",
    ] {
        let e = s.post(path, &[], &big).await.assert_error(413);
        assert!(e.contains("4096"), "{path}: {e}");
    }
    // Chunked, with no length announced.
    let mut chunked = Vec::new();
    for _ in 0..5 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend(std::iter::repeat_n(b'y', 1024));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    s.post("/v1/events", &[("Transfer-Encoding", "chunked")], &chunked)
        .await
        .assert_error(413);
    // At the limit is fine.
    let mut ok = vec![b' '; 4096];
    ok[0] = b'\n';
    assert_eq!(s.post("/v1/events", &[], &ok).await.status, 200);
}

async fn oversized_default_limit(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let big = vec![b'\n'; (16 << 20) + 1];
    s.post("/v1/events", &[], &big).await.assert_error(413);
}

async fn concurrent_posts(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(r#"{"type":"campaign","campaign_id":"cc","name":"Concurrent"}"#)
        .await;
    let addr = s.addr;
    let mut tasks = Vec::new();
    for t in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut body = String::new();
            for i in 0..50 {
                body.push_str(&message(&format!("c{t}-{i}"), "cc", &format!("+3712{t:03}{i:04}")));
                body.push('\n');
                body.push_str(&format!(
                    r#"{{"type":"status","message_id":"c{t}-{i}","status":"delivered","at":"2026-03-01T10:00:00Z"}}"#
                ));
                body.push('\n');
            }
            // Some overlap: every task also sends task 0's first message.
            body.push_str(&message("c0-0", "cc", "+37120000000"));
            common::send(addr, "POST", "/v1/events", &[], body.as_bytes()).await
        }));
    }
    let mut ingested = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        ingested += r.json()["ingested"].as_u64().unwrap();
    }
    // 800 distinct events; c0-0's duplicate lines are duplicates (or conflicts).
    assert_eq!(ingested, 800);
    let report = s.get("/v1/campaigns/cc/report").await.json();
    assert_eq!(report["delivery"]["total"], 400);
    assert_eq!(report["delivery"]["delivered"], 400);
}

async fn health_ready_metrics(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    assert_eq!(s.get("/healthz").await.json(), json!({"status": "ok"}));
    assert_eq!(s.get("/readyz").await.json(), json!({"status": "ready"}));
    s.events(BASIC).await;
    s.post(
        "/v1/webhooks/twilio",
        &form(),
        b"MessageSid=m1&MessageStatus=delivered",
    )
    .await;
    // A late receipt: m1's status is final already.
    s.post(
        "/v1/webhooks/twilio",
        &form(),
        b"MessageSid=m1&MessageStatus=undelivered&ErrorCode=30005",
    )
    .await;
    s.get("/v1/webhooks/kannel?type=3&id=m1").await;
    s.get("/nowhere").await;
    let m = s.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    for want in [
        "# TYPE smsreport_http_requests_total counter",
        "smsreport_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"200\"} 1",
        "smsreport_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "smsreport_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "smsreport_events_total{outcome=\"ingested\"} 19",
        "smsreport_events_total{outcome=\"duplicate\"} 0",
        // m1 is delivered already: an undated delivered is a duplicate.
        "smsreport_gateway_callbacks_total{gateway=\"twilio\",outcome=\"duplicate\"} 1",
        "smsreport_gateway_callbacks_total{gateway=\"kannel\",outcome=\"rejected\"} 1",
        "smsreport_gateway_rejected_total{gateway=\"kannel\",reason=\"type\"} 1",
        "smsreport_campaign_callbacks_total{campaign=\"spring-sale\",kind=\"duplicate\"} 1",
        "smsreport_campaign_callbacks_total{campaign=\"spring-sale\",kind=\"late\"} 1",
        "smsreport_store_errors_total 0",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
}

async fn errors_are_json(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.get("/nowhere").await.assert_error(404);
    s.get("/v1/events").await.assert_error(405);
    s.req("DELETE", "/v1/campaigns", &[], b"")
        .await
        .assert_error(405);
    s.get("/v1/campaigns/%FF/report").await.assert_error(400);
    s.get("/v1/campaigns/x/report?tz=%FF")
        .await
        .assert_error(400);
    // Garbage of every kind is a 4xx, never a 500.
    for (m, p, b) in [
        ("POST", "/v1/events", &b"\x00\x01{"[..]),
        ("POST", "/v1/campaigns/x/messages", b"{\"messages\":{}}"),
        ("POST", "/v1/webhooks/twilio", b"%%%&&&==="),
        ("POST", "/v1/webhooks/jasmin", b"\xff"),
        ("GET", "/v1/webhooks/kannel?%%", b""),
        ("POST", "/v1/webhooks/smpp", b"\n\n\n"),
    ] {
        let r = s.req(m, p, &[], b).await;
        assert!(r.status < 500, "{m} {p}: {}", r.status);
        if r.status >= 400 {
            r.assert_error(r.status);
        }
    }
}

/// A failing store: the client reads a short message and the request's id, never the
/// backend's words; unauthenticated routes answer a bare 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_hide_the_backend() {
    let Some(store) = common::broken_pg_store("server_errors_hide_the_backend").await else {
        return;
    };
    let s = Server::start(store, config()).await;
    for path in [
        "/v1/campaigns/x/report",
        "/v1/campaigns",
        "/readyz",
        "/c/4fQk9ZbT",
    ] {
        let r = s.get(path).await;
        assert!(r.status >= 500, "{path}: {}", r.text());
        let e = r.assert_error(r.status);
        assert!(e == "the store is unavailable", "{path}: {e}");
        let text = r.text();
        for backend in [
            "relation",
            "does not exist",
            "http_broken",
            "postgres",
            "42P01",
        ] {
            assert!(!text.contains(backend), "{path}: {text}");
        }
        let id = r.header("x-request-id").expect("x-request-id").to_owned();
        assert_eq!(r.json()["request_id"], id.as_str(), "{path}");
    }
    let r = s
        .post(
            "/v1/events",
            &[],
            message("m1", "x", "+37120000001").as_bytes(),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(!r.text().contains("relation"), "{}", r.text());
    // Client errors keep their words, and carry an id too.
    let r = s.get("/v1/campaigns/x/report?format=xml").await;
    assert!(r.assert_error(400).starts_with("format:"));
    assert!(r.header("x-request-id").is_some());
    assert!(r.json().get("request_id").is_none());
}

async fn shutdown_finishes_requests_in_flight(store: Arc<dyn Store>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = Server::start(store, config()).await;
    s.events(r#"{"type":"campaign","campaign_id":"sd","name":"Shutdown"}"#)
        .await;
    // A request whose body is still on its way when the server is told to stop.
    let body = message("sd1", "sd", "+37120000001");
    let (first, second) = body.split_at(20);
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    s.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // New connections are no longer served.
    let refused = tokio::net::TcpStream::connect(s.addr).await;
    if let Ok(mut late) = refused {
        let _ = late
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            late.read_to_end(&mut buf),
        )
        .await;
        assert!(
            buf.is_empty(),
            "served after shutdown: {}",
            String::from_utf8_lossy(&buf)
        );
    }
    c.write_all(second.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).await.unwrap();
    let r = common::parse(&buf, false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ingested"], 1);
    let done = tokio::time::timeout(std::time::Duration::from_secs(10), s.task.take().unwrap())
        .await
        .expect("the server stops once the request is answered");
    assert!(done.unwrap().is_ok());
    // What was answered is stored.
    let report = s.store.report("sd").await.unwrap();
    assert_eq!(report.delivery.total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_default_limit_on_sled() {
    let (store, _g) = common::sled_store();
    oversized_default_limit(store).await;
}

#[tokio::test]
async fn a_failing_store_is_503_not_500() {
    let s = Server::start(Arc::new(failing::Failing), Config::new("")).await;
    s.get("/readyz").await.assert_error(503);
    s.post(
        "/v1/events",
        &[],
        b"{\"type\":\"campaign\",\"campaign_id\":\"c\",\"name\":\"C\"}",
    )
    .await
    .assert_error(503);
    s.get("/v1/campaigns").await.assert_error(503);
    s.get("/healthz").await;
    let m = s.get("/metrics").await.text();
    assert!(m.contains("smsreport_store_errors_total 3"), "{m}");
}

mod failing {
    use smsreport_core::engine::MessageRecord;
    use smsreport_core::report::{CampaignTotals, Recount};
    use smsreport_core::{Event, Outcome, Store, StoreError, TrackedLink};

    /// A store whose every call fails, as a store whose server is down.
    #[derive(Debug)]
    pub struct Failing;

    fn down() -> StoreError {
        StoreError::backend(
            "reaching the store",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"),
        )
    }

    #[async_trait::async_trait]
    impl Store for Failing {
        async fn ingest(&self, _: &[Event]) -> Result<Vec<Outcome>, StoreError> {
            Err(down())
        }
        async fn totals(&self, _: &str) -> Result<Option<CampaignTotals>, StoreError> {
            Err(down())
        }
        async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
            Err(down())
        }
        async fn messages(
            &self,
            _: &str,
            _: &smsreport_core::insights::MessageFilter,
            _: Option<&str>,
            _: usize,
        ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
            Err(down())
        }
        async fn recount(&self) -> Result<Recount, StoreError> {
            Err(down())
        }
        async fn edge_clicks(
            &self,
            _: &str,
        ) -> Result<std::collections::BTreeMap<smsreport_core::Millis, i64>, StoreError> {
            Err(down())
        }
        async fn save_links(&self, _: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
            Err(down())
        }
        async fn resolve_link(&self, _: &str) -> Result<Option<TrackedLink>, StoreError> {
            Err(down())
        }
    }
}

#[tokio::test]
async fn dashboard_basic_auth_middleware() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/", get(|| async { "campaigns" }))
        .route_layer(axum::middleware::from_fn_with_state(
            Some("t0ken".to_owned()),
            smsreport_http::require_basic_auth,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(smsreport_http::serve(listener, app, std::future::pending()));
    let r = common::send(addr, "GET", "/", &[], b"").await;
    r.assert_error(401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // "admin:t0ken" and ":t0ken": any user, the token as the password.
    for (cred, status) in [
        ("YWRtaW46dDBrZW4=", 200),
        ("OnQwa2Vu", 200),
        ("YWRtaW46d3Jvbmc=", 401),
        ("!!!", 401),
    ] {
        let auth = format!("Basic {cred}");
        let r = common::send(addr, "GET", "/", &[("Authorization", &auth)], b"").await;
        assert_eq!(r.status, status, "{cred}");
    }
}
