//! CSV (RFC 4180, CRLF line ends, one header line), shared with the command line so that
//! `report --format csv` and `GET /v1/campaigns/{id}/report?format=csv` are the same bytes.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::report::{RecipientRow, Report};
use crate::status::Row;

/// A field for CSV: quoted (with quotes doubled) when it holds a comma, a quote or a line
/// break, as RFC 4180 says; as it is otherwise.
///
/// A field a spreadsheet would read as a formula — one that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return — gets a `'` in front (OWASP, "CSV Injection";
/// docs/security.md), unless it is a plain number such as `+37120000001` or `-5`, which
/// no spreadsheet runs.
pub fn csv_field(s: &str) -> Cow<'_, str> {
    let s: Cow<'_, str> = if is_formula(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        s
    }
}

/// Whether a spreadsheet could take `s` for a formula.
fn is_formula(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r') {
        return false;
    }
    // A sign and digits (with at most one decimal point) is a number.
    let rest = &s[1..];
    let plain_number = matches!(first, '+' | '-')
        && rest.starts_with(|c: char| c.is_ascii_digit())
        && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && rest.bytes().filter(|b| *b == b'.').count() <= 1;
    !plain_number
}

/// Writes one CSV record, ended with CRLF as RFC 4180 says.
pub fn csv_row<S: AsRef<str>>(w: &mut dyn Write, fields: &[S]) -> io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(csv_field(f.as_ref()).as_bytes())?;
    }
    w.write_all(b"\r\n")
}

/// The report as `section,metric,value,percent` rows; the metric names are the JSON
/// report's field names, and `percent` is of the total SMS where it applies.
///
/// The insights follow as rows of their own: `delivery_latency` (`messages`, `p50_s`,
/// `p90_s`, `p99_s`, empty when nothing was delivered, and `le_s:N` for each non-empty
/// histogram bucket), `awaiting_receipt` (`as_of`, `stale_after_h`, `messages`, `stale`,
/// and `age:BUCKET` for each of the five age buckets), and a section per country row,
/// named as the recipients filter names it: `country:+371/LV`, or `country:ZZ` for
/// numbers without a calling code.
pub fn report_csv(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    csv_row(w, &["section", "metric", "value", "percent"])?;
    let d = &r.delivery;
    let pct = |v: u64| {
        if d.total == 0 {
            String::new()
        } else {
            format!("{:.1}", v as f64 * 100.0 / d.total as f64)
        }
    };
    let mut row = |section: &str, metric: &str, value: String, percent: String| {
        csv_row(w, &[section, metric, value.as_str(), percent.as_str()])
    };
    row(
        "campaign",
        "campaign_id",
        r.campaign_id.clone(),
        String::new(),
    )?;
    row("campaign", "name", r.name.clone(), String::new())?;
    if let Some(l) = &r.contact_list {
        row("contact_list", "list_id", l.list_id.clone(), String::new())?;
        row("contact_list", "name", l.name.clone(), String::new())?;
        row(
            "contact_list",
            "subscribers",
            l.subscribers.to_string(),
            String::new(),
        )?;
    }
    row("delivery", "total", d.total.to_string(), pct(d.total))?;
    for r in Row::ALL {
        let metric = r.json_path().trim_start_matches("delivery.");
        let v = d.row(r);
        row("delivery", metric, v.to_string(), pct(v))?;
    }
    row(
        "delivery",
        "segments",
        d.segments.to_string(),
        String::new(),
    )?;
    let l = &r.links;
    row(
        "links",
        "link_tracking",
        l.link_tracking.to_string(),
        String::new(),
    )?;
    for (metric, v) in [
        ("total_clicks", l.total_clicks),
        ("unique_clicks", l.unique_clicks),
        ("links_clicked", l.links_clicked),
        ("bot_clicks", l.bot_clicks),
    ] {
        row("links", metric, v.to_string(), String::new())?;
    }
    if let Some(p) = &l.most_popular {
        row("links", "most_popular", p.link_id.clone(), String::new())?;
    }
    if let Some(c) = l.click_to_open_rate {
        row(
            "links",
            "click_to_open_rate",
            c.to_string(),
            format!("{:.1}", c * 100.0),
        )?;
    }
    for k in &l.per_link {
        let section = format!("link:{}", k.link_id);
        row(&section, "url", k.url.clone(), String::new())?;
        row(&section, "clicks", k.clicks.to_string(), String::new())?;
        row(
            &section,
            "unique_clicks",
            k.unique_clicks.to_string(),
            String::new(),
        )?;
    }
    for m in &l.clicks_by_month {
        row(
            "clicks_by_month",
            &m.month,
            m.clicks.to_string(),
            String::new(),
        )?;
    }
    let i = &r.insights;
    let opt = |v: Option<u32>| v.map_or_else(String::new, |v| v.to_string());
    let lat = &i.delivery_latency;
    row(
        "delivery_latency",
        "messages",
        lat.messages.to_string(),
        String::new(),
    )?;
    row("delivery_latency", "p50_s", opt(lat.p50_s), String::new())?;
    row("delivery_latency", "p90_s", opt(lat.p90_s), String::new())?;
    row("delivery_latency", "p99_s", opt(lat.p99_s), String::new())?;
    for b in &lat.histogram {
        row(
            "delivery_latency",
            &format!("le_s:{}", b.le_s),
            b.messages.to_string(),
            String::new(),
        )?;
    }
    let a = &i.awaiting_receipt;
    row("awaiting_receipt", "as_of", a.as_of.clone(), String::new())?;
    row(
        "awaiting_receipt",
        "stale_after_h",
        a.stale_after_h.to_string(),
        String::new(),
    )?;
    row(
        "awaiting_receipt",
        "messages",
        a.messages.to_string(),
        pct(a.messages),
    )?;
    row(
        "awaiting_receipt",
        "stale",
        a.stale.to_string(),
        pct(a.stale),
    )?;
    for b in &a.by_age {
        row(
            "awaiting_receipt",
            &format!("age:{}", b.age),
            b.messages.to_string(),
            pct(b.messages),
        )?;
    }
    for c in &i.by_country {
        let section = match &c.country_code {
            Some(code) => format!("country:+{code}/{}", c.region),
            None => format!("country:{}", c.region),
        };
        row(&section, "total", c.total.to_string(), pct(c.total))?;
        for (metric, v) in [
            ("delivered", c.delivered),
            ("sent", c.sent),
            ("queued", c.queued),
            ("undelivered", c.undelivered),
            ("errors", c.errors),
            ("other", c.other),
            ("clicks", c.clicks),
        ] {
            row(&section, metric, v.to_string(), String::new())?;
        }
    }
    Ok(())
}

/// The columns of the recipients drill-down in CSV (`recipients --format csv`, the
/// dashboard's download).
pub const RECIPIENT_COLUMNS: [&str; 9] = [
    "message_id",
    "recipient",
    "status",
    "row",
    "error_code",
    "status_at",
    "clicks",
    "parts",
    "submitted_at",
];

/// One recipient's fields, in [`RECIPIENT_COLUMNS`] order.
pub fn recipient_fields(r: &RecipientRow) -> [String; 9] {
    [
        r.message_id.clone(),
        r.recipient.clone(),
        r.status.to_string(),
        r.row.to_string(),
        r.error_code.clone().unwrap_or_default(),
        r.status_at.clone().unwrap_or_default(),
        r.clicks.to_string(),
        r.parts.to_string(),
        r.submitted_at.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        let mut out = Vec::new();
        csv_row(&mut out, &["x", "y,z", ""]).unwrap();
        assert_eq!(out, b"x,\"y,z\",\r\n");
    }

    #[test]
    fn formulas_are_neutralised() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://evil\")",
                "\"'=HYPERLINK(\"\"http://evil\"\")\"",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "\"'\r=1\""),
            ("=a,b", "\"'=a,b\""),
            ("-", "'-"),
            ("+", "'+"),
        ] {
            assert_eq!(csv_field(cell), want, "{cell:?}");
        }
        // Numbers are no formulas: an E.164 recipient, a negative count, a share.
        for cell in ["+37120000001", "-5", "40.0", "-0.5", "a=b", ""] {
            assert_eq!(csv_field(cell), cell);
        }
    }
}
