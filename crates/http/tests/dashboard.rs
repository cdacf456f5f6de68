//! The dashboard (README.md, "Dashboard"), fetched over real HTTP from the real server on 127.0.0.1,
//! on sled and PostgreSQL: the pages show exactly the JSON report's figures, every
//! user-supplied string is escaped, and a token guards every page.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::page::{assert_same, figures, insight_figures, report_figures, shares, unescape};
use common::{config, Server};
use smsreport_core::Store;

const BASIC: &str = include_str!("../../conformance/fixtures/basic.ndjson");
const INSIGHTS: &str = include_str!("../../conformance/fixtures/insights.ndjson");

on_every_store!(
    report_pages_show_the_json_report,
    report_page_in_a_time_zone,
    insights_tab_shows_the_json_insights,
    campaign_list_matches_the_api,
    user_strings_are_escaped,
    recipients_are_filtered_paged_and_downloaded,
    basic_auth_guards_every_page,
    errors_are_pages,
);

/// Both tabs' figures together.
async fn page_figures(s: &Server, path: &str) -> BTreeMap<String, String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let delivery = s.get(path).await;
    assert_eq!(delivery.status, 200, "{}", delivery.text());
    let links = s.get(&format!("{path}{sep}tab=links")).await;
    assert_eq!(links.status, 200, "{}", links.text());
    let mut all = figures(&delivery.text());
    for (k, v) in figures(&links.text()) {
        if let Some(old) = all.insert(k.clone(), v.clone()) {
            assert_eq!(old, v, "{k} differs between the tabs");
        }
    }
    all
}

async fn report_pages_show_the_json_report(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    let json = s.get("/v1/campaigns/spring-sale/report").await.json();
    let page = page_figures(&s, "/campaigns/spring-sale").await;
    assert_same(&page, &report_figures(&json));
    // By hand: 5 SMS, 2 delivered (40.0 %), an expired error, 3 clicks, rate 1.5.
    assert_eq!(page["delivery.total"], "5");
    assert_eq!(page["delivery.errors.expired"], "1");
    assert_eq!(page["links.click_to_open_rate"], "1.5");
    let r = s.get("/campaigns/spring-sale").await;
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    let pct = shares(&html);
    assert_eq!(pct["delivery.total"], "100.0%");
    assert_eq!(pct["delivery.delivered"], "40.0%");
    assert_eq!(pct["delivery.sent"], "20.0%");
    assert_eq!(pct["delivery.queued"], "0.0%");
    assert_eq!(pct["delivery.undelivered"], "20.0%");
    assert_eq!(pct["delivery.errors.total"], "20.0%");
    assert_eq!(pct["delivery.errors.expired"], "20.0%");
    assert_eq!(pct["delivery.errors.routing"], "0.0%");
    assert_eq!(pct["delivery.other"], "0.0%");
    // The page: language, tabs, the switcher, the contact list linking to recipients.
    assert!(
        html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
        "{html}"
    );
    assert!(html.contains("aria-current=\"page\">Delivery Statistics</a>"));
    assert!(html.contains(">Link Statistics</a>"));
    assert!(html.contains("<option value=\"spring-sale\" selected>Spring sale</option>"));
    assert!(html.contains("href=\"/campaigns/spring-sale/recipients\""));
    assert!(html.contains(">VIP customers<"));
    assert!(html.contains("<label for=\"campaign\">"));
    assert!(html.contains("<th scope=\"row\">"));
    // Nothing from elsewhere, no script.
    for banned in ["<script", "<link", " src=", "@import", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    // The Link Statistics tab: the chart, the most popular link marked.
    let links = s.get("/campaigns/spring-sale?tab=links").await.text();
    assert!(links.contains("aria-current=\"page\">Link Statistics</a>"));
    assert!(links.contains("<svg class=\"chart\""));
    assert!(links.contains("<title>March 2026: 3 clicks</title>"));
    assert!(links.contains(">Month (UTC)</text>"));
    assert!(links.contains("<span class=\"badge\">Most popular</span>"));
    assert!(
        links.contains(">150.0%<"),
        "click-to-open rate as a percentage"
    );

    // Without link tracking: no Link Statistics tab, even when asked for.
    s.events(r#"{"type":"campaign","campaign_id":"plain","name":"Plain","created_at":"2026-01-01T00:00:00Z"}"#)
        .await;
    let plain = s.get("/campaigns/plain?tab=links").await;
    assert_eq!(plain.status, 200);
    let html = plain.text();
    assert!(!html.contains("Link Statistics</a>"));
    assert!(html.contains("aria-current=\"page\">Delivery Statistics</a>"));
    // Nothing sent: shares are "—", figures 0.
    assert_eq!(shares(&html)["delivery.delivered"], "—");
    let json = s.get("/v1/campaigns/plain/report").await.json();
    let mut want = report_figures(&json);
    let page = figures(&html);
    want.retain(|k, _| k.starts_with("delivery.") || k.starts_with("contact_list."));
    assert_same(&page, &want);
}

/// The Insights tab (docs/rules.md, "Insights") on the worked example: every figure is
/// the JSON report's, as of the same moment; the chart, the stale buckets set apart,
/// countries by English name, and links to the recipients of each bucket and country.
async fn insights_tab_shows_the_json_insights(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(INSIGHTS).await;
    let at = "as_of=2026-03-10T00:00:00Z&stale_after_h=24";
    let json = s
        .get(&format!("/v1/campaigns/world/report?{at}"))
        .await
        .json();
    let r = s.get(&format!("/campaigns/world?tab=insights&{at}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    let mut page = figures(&html);
    page.retain(|k, _| k.starts_with("insights."));
    let want = insight_figures(&json);
    assert_same(&page, &want);
    // By hand, from insights.expected.json.
    assert_eq!(page["insights.delivery_latency.p50_s"], "60");
    assert_eq!(page["insights.awaiting_receipt.stale"], "2");
    assert_eq!(
        page["insights.awaiting_receipt.as_of"],
        "2026-03-10T00:00:00.000Z"
    );
    assert_eq!(page["insights.by_country.+371/LV.total"], "4");
    assert_eq!(page["insights.by_country.ZZ.undelivered"], "1");
    assert_eq!(page["insights.by_country.+49/DE.clicks"], "1");

    assert!(
        html.contains("aria-current=\"page\">Insights</a>"),
        "{html}"
    );
    assert!(html.contains("<svg class=\"chart latency\""), "{html}");
    assert!(html.contains(">p50</text>") && html.contains(">p99</text>"));
    // Countries by English name beside region and calling code.
    for name in [
        ">Latvia</a>",
        ">Kazakhstan</a>",
        ">International (non-geographic)</a>",
        ">Unknown</a>",
        ">Germany</a>",
    ] {
        assert!(html.contains(name), "no {name} in {html}");
    }
    let base = "/campaigns/world/recipients?";
    let keep = "&amp;as_of=2026-03-10T00%3A00%3A00Z&amp;stale_after_h=24";
    assert!(
        html.contains(&format!("href=\"{base}country=%2B371%2FLV{keep}\"")),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"{base}country=ZZ{keep}\"")));
    assert!(html.contains(&format!("href=\"{base}stale=true{keep}\"")));
    for age in [
        "under_1h",
        "1h_to_6h",
        "6h_to_24h",
        "24h_to_72h",
        "over_72h",
    ] {
        assert!(
            html.contains(&format!("href=\"{base}age={age}{keep}\"")),
            "{age}"
        );
    }
    // Stale after 24 h: the two oldest buckets are set apart.
    assert_eq!(html.matches("class=\"age stale\"").count(), 2, "{html}");
    // The other tabs keep the moment asked for.
    assert!(html.contains("href=\"/campaigns/world?tab=links&amp;as_of="));

    // Without ?as_of=: as of now, the countries the same.
    let now = s.get("/campaigns/world?tab=insights").await.text();
    let page = figures(&now);
    assert_eq!(page["insights.awaiting_receipt.stale_after_h"], "72");
    assert_eq!(page["insights.by_country.+371/LV.clicks"], "2");
    // Bad values are 400 pages naming the parameter.
    for q in [
        "as_of=soon",
        "stale_after_h=0",
        "stale_after_h=8761",
        "stale_after_h=x",
    ] {
        let r = s.get(&format!("/campaigns/world?tab=insights&{q}")).await;
        assert_eq!(r.status, 400, "{q}");
        let name = q.split('=').next().unwrap();
        assert!(r.text().contains(&format!("{name}:")), "{q}");
    }
    // Nothing delivered, nothing waiting: no chart, a word instead.
    s.events(r#"{"type":"campaign","campaign_id":"plain","name":"Plain","created_at":"2026-01-01T00:00:00Z"}"#)
        .await;
    let plain = s.get("/campaigns/plain?tab=insights").await.text();
    assert!(plain.contains("Nothing delivered yet."));
    assert!(plain.contains("aria-current=\"page\">Insights</a>"));
}

async fn report_page_in_a_time_zone(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    // Just before midnight UTC on 31 March: April in Riga.
    s.events(r#"{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000001","at":"2026-03-31T22:30:00Z"}"#)
        .await;
    for tz in ["Europe/Riga", "America/New_York", "UTC"] {
        let json = s
            .get(&format!("/v1/campaigns/spring-sale/report?tz={tz}"))
            .await
            .json();
        let path = format!("/campaigns/spring-sale?tz={}", tz.replace('/', "%2F"));
        assert_same(&page_figures(&s, &path).await, &report_figures(&json));
    }
    let riga = s
        .get("/campaigns/spring-sale?tab=links&tz=Europe/Riga")
        .await
        .text();
    assert_eq!(figures(&riga)["links.clicks_by_month.2026-04"], "1");
    assert!(riga.contains("<option value=\"Europe/Riga\" selected>"));
    assert!(riga.contains(">Month (Europe/Riga)</text>"));
    // The tabs keep the zone.
    assert!(riga.contains("href=\"/campaigns/spring-sale?tz=Europe%2FRiga\""));
    // A zone not in the list is added to it.
    let lima = s.get("/campaigns/spring-sale?tz=America/Lima").await.text();
    assert!(lima.contains("<option value=\"America/Lima\" selected>"));
}

async fn campaign_list_matches_the_api(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let empty = s.get("/").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains("No campaigns yet."));
    s.events(BASIC).await;
    s.events(r#"{"type":"campaign","campaign_id":"newer","name":"Newer","created_at":"2026-04-01T00:00:00Z"}"#)
        .await;
    let html = s.get("/").await.text();
    let api = s.get("/v1/campaigns").await.json();
    // Newest first, as the API lists them; each row's figures are the API's.
    let rows: Vec<&str> = html.split("<tr data-campaign=\"").skip(1).collect();
    assert_eq!(rows.len(), 2);
    for (row, c) in rows.iter().zip(api.as_array().unwrap()) {
        let id = c["campaign_id"].as_str().unwrap();
        assert!(row.starts_with(&format!("{id}\"")), "{row}");
        let f = figures(row.split("</tr>").next().unwrap());
        for k in ["total", "delivered", "total_clicks"] {
            assert_eq!(f[k], c[k].to_string(), "{id} {k}");
        }
        assert!(row.contains(&format!("href=\"/campaigns/{id}\"")));
    }
    assert!(rows[1].contains(">40.0%<"), "spring-sale: 2 of 5 delivered");
    assert!(rows[0].contains(">—<"), "newer: nothing sent");
}

/// A campaign named like a script, a list named with every HTML special character, a
/// link whose URL has quotes and angle brackets.
const HOSTILE: &str = r#"{"type":"campaign","campaign_id":"xss","name":"<script>alert(1)</script>","contact_list":{"list_id":"l1","name":"&<>\"' list"},"link_tracking":true,"links":[{"link_id":"q","url":"https://x.example/?q=\"a'b\"<c>&d=1"}],"created_at":"2026-02-01T00:00:00Z"}
{"type":"message","message_id":"x1","campaign_id":"xss","recipient":"+37120000009","at":"2026-02-01T09:00:00Z"}
{"type":"status","message_id":"x1","status":"failed_rejected","error_code":"<b>x</b>","at":"2026-02-01T09:00:01Z"}
{"type":"click","campaign_id":"xss","link_id":"q","recipient":"+37120000009","at":"2026-02-02T09:00:00Z","user_agent":"<img src=x onerror=alert(1)>"}"#;

async fn user_strings_are_escaped(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    let v = s.events(HOSTILE).await;
    assert_eq!(v["ingested"], 4, "{v}");
    s.events(BASIC).await;
    let pages = [
        "/",
        "/campaigns/xss",
        "/campaigns/xss?tab=links",
        "/campaigns/xss/recipients",
        "/campaigns/spring-sale",
    ];
    for p in pages {
        let r = s.get(p).await;
        assert_eq!(r.status, 200, "{p}");
        let html = r.text();
        assert!(!html.contains("<script"), "{p}");
        assert!(!html.contains("<b>"), "{p}");
        assert!(!html.contains("<img"), "{p}");
        assert!(!html.contains("<c>"), "{p}");
        assert!(!html.contains("&<>"), "{p}");
        // The campaign's name, escaped, in the list, the title, the switcher.
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{p}: {html}"
        );
    }
    let report = s.get("/campaigns/xss").await.text();
    assert!(report.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
    assert!(report.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt; · smsreport</title>"));
    assert!(report.contains("&amp;&lt;&gt;&quot;' list"), "{report}");
    let links = s.get("/campaigns/xss?tab=links").await.text();
    assert!(
        links.contains("href=\"https://x.example/?q=&quot;a'b&quot;&lt;c&gt;&amp;d=1\""),
        "{links}"
    );
    assert!(links.contains(">https://x.example/?q=&quot;a'b&quot;&lt;c&gt;&amp;d=1</a>"));
    let recipients = s.get("/campaigns/xss/recipients").await.text();
    assert!(
        recipients.contains(">&lt;b&gt;x&lt;/b&gt;<"),
        "{recipients}"
    );
    // The figures still equal the JSON report's (names compared unescaped).
    let json = s.get("/v1/campaigns/xss/report").await.json();
    assert_same(
        &page_figures(&s, "/campaigns/xss").await,
        &report_figures(&json),
    );
}

async fn recipients_are_filtered_paged_and_downloaded(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    let all = s.get("/campaigns/spring-sale/recipients").await;
    assert_eq!(all.status, 200);
    let html = all.text();
    let rows = |html: &str| -> Vec<String> {
        html.split("<tr data-message=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(rows(&html), ["m1", "m2", "m3", "m4", "m5"]);
    assert!(html.contains("<option value=\"\" selected>All messages (5)</option>"));
    assert!(html.contains("<option value=\"errors\">Delivery errors (1)</option>"));
    assert!(html.contains("<label for=\"status\">Report row</label>"));
    assert!(html.contains(">VIP customers<"));
    assert_eq!(figures(&html)["contact_list.subscribers"], "3");
    // m5: expired with error code 27 at its status time; m1 with its 2 clicks.
    let m5 = html.split("data-message=\"m5\"").nth(1).unwrap();
    let m5 = m5.split("</tr>").next().unwrap();
    assert!(m5.contains(">Expired<"), "{m5}");
    assert!(m5.contains(">27<"), "{m5}");
    assert!(m5.contains(">2026-03-02 09:00:01<"), "{m5}");
    let m1 = html.split("data-message=\"m1\"").nth(1).unwrap();
    let m1 = m1.split("</tr>").next().unwrap();
    assert!(m1.contains("<td class=\"n\">2</td>"), "{m1}");
    // Status times in a zone.
    let riga = s
        .get("/campaigns/spring-sale/recipients?tz=Europe%2FRiga&status=errors")
        .await
        .text();
    assert!(riga.contains(">2026-03-02 11:00:01<"), "{riga}");
    assert!(riga.contains("Status time (Europe/Riga)"));
    // Filtered by row.
    let errors = s
        .get("/campaigns/spring-sale/recipients?status=errors")
        .await
        .text();
    assert_eq!(rows(&errors), ["m5"]);
    let delivered = s
        .get("/campaigns/spring-sale/recipients?status=delivered")
        .await
        .text();
    assert_eq!(rows(&delivered), ["m1", "m2"]);
    // Paged: two at a time, following the "next" links.
    let mut path = "/campaigns/spring-sale/recipients?limit=2".to_owned();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let html = s.get(&path).await.text();
        seen.extend(rows(&html));
        match html.split("rel=\"next\" href=\"").nth(1) {
            Some(rest) => path = unescape(rest.split('"').next().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, ["m1", "m2", "m3", "m4", "m5"]);
    assert!(path.contains("after=m4"), "{path}");
    // The CSV: every row of the filter, as the API lists them.
    let csv = s.get("/campaigns/spring-sale/recipients.csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv
        .header("content-disposition")
        .unwrap()
        .contains("spring-sale-recipients.csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "message_id,recipient,status,row,error_code,status_at,clicks,parts,submitted_at"
    );
    assert_eq!(lines.len(), 6, "{text}");
    let api = s.get("/v1/campaigns/spring-sale/recipients").await.json();
    for (line, item) in lines[1..].iter().zip(api["items"].as_array().unwrap()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0], item["message_id"]);
        assert_eq!(f[1], item["recipient"]);
        assert_eq!(f[2], item["status"]);
        assert_eq!(f[6], item["clicks"].to_string());
    }
    assert_eq!(
        lines[5],
        "m5,+37120000005,failed_expired,expired,27,2026-03-02T09:00:01.000Z,0,1,2026-03-01T09:00:01.000Z"
    );
    let errors = s
        .get("/campaigns/spring-sale/recipients.csv?status=errors")
        .await
        .text();
    assert_eq!(errors.lines().count(), 2, "{errors}");
    // The download link keeps the filter.
    let page = s
        .get("/campaigns/spring-sale/recipients?status=errors")
        .await
        .text();
    assert!(page.contains("href=\"/campaigns/spring-sale/recipients.csv?status=errors\""));
}

/// More recipients than a store page (1000): the CSV streams them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_streams_every_page_on_sled() {
    let (store, _g) = common::sled_store();
    let s = Server::start(store, config()).await;
    let mut body = String::from(r#"{"type":"campaign","campaign_id":"big","name":"Big"}"#);
    for i in 0..2500 {
        body.push_str(&format!(
            "\n{{\"type\":\"message\",\"message_id\":\"m{i:05}\",\"campaign_id\":\"big\",\"recipient\":\"+3712{i:07}\",\"at\":\"2026-03-01T09:00:00Z\"}}"
        ));
    }
    s.events(&body).await;
    let text = s.get("/campaigns/big/recipients.csv").await.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2501);
    assert!(lines[2500].starts_with("m02499,"));
    // The page shows 50 and links to the next.
    let html = s.get("/campaigns/big/recipients").await.text();
    assert_eq!(html.matches("<tr data-message=").count(), 50);
    assert!(html.contains("after=m00049"));
}

async fn basic_auth_guards_every_page(store: Arc<dyn Store>) {
    let mut cfg = config();
    cfg.token = Some("s3cret".into());
    let s = Server::start(store, cfg).await;
    s.post(
        "/v1/events",
        &[("Authorization", "Bearer s3cret")],
        BASIC.as_bytes(),
    )
    .await;
    let pages = [
        "/",
        "/campaigns?id=spring-sale",
        "/campaigns/spring-sale",
        "/campaigns/spring-sale?tab=links",
        "/campaigns/spring-sale/recipients",
        "/campaigns/spring-sale/recipients.csv",
        "/campaigns/nope",
    ];
    // "admin:s3cret", ":s3cret", "admin:wrong".
    for p in pages {
        let r = s.get(p).await;
        r.assert_error(401);
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        for (auth, ok) in [
            ("Basic YWRtaW46czNjcmV0", true),
            ("Basic OnMzY3JldA==", true),
            ("Basic YWRtaW46d3Jvbmc=", false),
            ("Bearer s3cret", false),
        ] {
            let r = s.req("GET", p, &[("Authorization", auth)], b"").await;
            assert_eq!(r.status == 401, !ok, "{p} {auth}: {}", r.status);
        }
    }
}

async fn errors_are_pages(store: Arc<dyn Store>) {
    let s = Server::start(store, config()).await;
    s.events(BASIC).await;
    for (path, status, text) in [
        ("/campaigns/nope", 404, "no campaign named &quot;nope&quot;"),
        ("/campaigns/nope/recipients", 404, "no campaign named"),
        (
            "/campaigns/spring-sale?tz=Mars/Olympus",
            400,
            "unknown time zone",
        ),
        ("/campaigns/spring-sale?tab=x", 400, "tab:"),
        (
            "/campaigns/spring-sale/recipients?status=lost",
            400,
            "status:",
        ),
        ("/campaigns/spring-sale/recipients?limit=0", 400, "limit:"),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert!(r.text().contains(text), "{path}: {}", r.text());
    }
    assert_eq!(s.get("/campaigns/nope/recipients.csv").await.status, 404);
    // The switcher's form: a redirect to the chosen campaign, keeping tab and zone.
    let r = s
        .get("/campaigns?id=spring-sale&tab=links&tz=Europe%2FRiga")
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/campaigns/spring-sale?tab=links&tz=Europe%2FRiga")
    );
    // Whatever is asked for stays on this site.
    let r = s.get("/campaigns?id=%2F%2Fevil.example").await;
    assert_eq!(r.header("location"), Some("/campaigns/%2F%2Fevil.example"));
    assert_eq!(s.get("/campaigns").await.header("location"), Some("/"));
    // The API's errors stay JSON.
    s.get("/v1/nope").await.assert_error(404);
}
