//! Reading the dashboard's pages: the figures they mark, compared with the JSON report.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

/// `&amp;` and friends back to text.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `data-metric="PATH" data-value="V"` of a page; a path seen twice must have
/// the same value.
pub fn figures(html: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in html.split("data-metric=\"").skip(1) {
        let (metric, rest) = part.split_once('"').unwrap();
        let value = rest
            .strip_prefix(" data-value=\"")
            .and_then(|r| r.split_once('"'))
            .unwrap_or_else(|| panic!("{metric}: no data-value"))
            .0;
        let (metric, value) = (unescape(metric), unescape(value));
        if let Some(old) = out.insert(metric.clone(), value.clone()) {
            assert_eq!(old, value, "{metric} shown as {old} and as {value}");
        }
    }
    out
}

/// The text of every `data-pct="PATH"` element.
pub fn shares(html: &str) -> BTreeMap<String, String> {
    html.split("data-pct=\"")
        .skip(1)
        .map(|part| {
            let (metric, rest) = part.split_once('"').unwrap();
            let text = rest[1..].split('<').next().unwrap();
            (metric.to_owned(), text.to_owned())
        })
        .collect()
}

/// Every figure of a JSON report (docs/rules.md, "The report"), by the paths the dashboard uses.
pub fn report_figures(r: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: String, v: &Value| {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(k, text);
    };
    if !r["contact_list"].is_null() {
        put("contact_list.name".into(), &r["contact_list"]["name"]);
        put(
            "contact_list.subscribers".into(),
            &r["contact_list"]["subscribers"],
        );
    }
    let d = &r["delivery"];
    for k in [
        "total",
        "delivered",
        "sent",
        "queued",
        "undelivered",
        "other",
        "segments",
    ] {
        put(format!("delivery.{k}"), &d[k]);
    }
    for k in ["total", "routing", "expired", "rejected"] {
        put(format!("delivery.errors.{k}"), &d["errors"][k]);
    }
    let l = &r["links"];
    for k in [
        "total_clicks",
        "unique_clicks",
        "links_clicked",
        "bot_clicks",
    ] {
        put(format!("links.{k}"), &l[k]);
    }
    if !l["most_popular"].is_null() {
        put(
            "links.most_popular.link_id".into(),
            &l["most_popular"]["link_id"],
        );
    }
    if !l["click_to_open_rate"].is_null() {
        put("links.click_to_open_rate".into(), &l["click_to_open_rate"]);
    }
    for k in l["per_link"].as_array().unwrap() {
        let id = k["link_id"].as_str().unwrap();
        put(format!("links.per_link.{id}.clicks"), &k["clicks"]);
        put(
            format!("links.per_link.{id}.unique_clicks"),
            &k["unique_clicks"],
        );
    }
    for m in l["clicks_by_month"].as_array().unwrap() {
        put(
            format!("links.clicks_by_month.{}", m["month"].as_str().unwrap()),
            &m["clicks"],
        );
    }
    out
}

/// The figures compared as numbers where they are numbers (the click-to-open rate is
/// a float).
pub fn assert_same(page: &BTreeMap<String, String>, json: &BTreeMap<String, String>) {
    let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(page), keys(json), "the page shows other figures");
    for (k, want) in json {
        let got = &page[k];
        match (got.parse::<f64>(), want.parse::<f64>()) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{k}"),
            _ => assert_eq!(got, want, "{k}"),
        }
    }
}

/// Every figure of a JSON report's insights (docs/rules.md, "Insights"), by the paths the
/// dashboard's Insights tab uses: `insights.delivery_latency.histogram.LE_S`,
/// `insights.awaiting_receipt.by_age.BUCKET`, `insights.by_country.+CODE/REGION.FIELD`
/// (`ZZ` alone for a row without a calling code).
pub fn insight_figures(r: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: String, v: &Value| {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(k, text);
    };
    let i = &r["insights"];
    let l = &i["delivery_latency"];
    for k in ["messages", "p50_s", "p90_s", "p99_s"] {
        put(format!("insights.delivery_latency.{k}"), &l[k]);
    }
    for b in l["histogram"].as_array().unwrap() {
        put(
            format!("insights.delivery_latency.histogram.{}", b["le_s"]),
            &b["messages"],
        );
    }
    let a = &i["awaiting_receipt"];
    for k in ["as_of", "stale_after_h", "messages", "stale"] {
        put(format!("insights.awaiting_receipt.{k}"), &a[k]);
    }
    for b in a["by_age"].as_array().unwrap() {
        put(
            format!(
                "insights.awaiting_receipt.by_age.{}",
                b["age"].as_str().unwrap()
            ),
            &b["messages"],
        );
    }
    for c in i["by_country"].as_array().unwrap() {
        let region = c["region"].as_str().unwrap();
        let key = match c["country_code"].as_str() {
            Some(code) => format!("+{code}/{region}"),
            None => region.to_owned(),
        };
        for k in [
            "total",
            "delivered",
            "sent",
            "queued",
            "undelivered",
            "errors",
            "other",
            "clicks",
        ] {
            put(format!("insights.by_country.{key}.{k}"), &c[k]);
        }
    }
    out
}
