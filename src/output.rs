//! How reports, the campaign list and the recipients drill-down are printed: as a table
//! for people, as JSON, or as CSV (RFC 4180, one header line).

use std::borrow::Cow;
use std::io::{self, Write};

use smsreport_core::insights::Insights;
use smsreport_core::names::{age_all_stale, age_label, calling_code, row_name};
use smsreport_core::report::{CampaignSummary, RecipientRow};
use smsreport_core::Report;

pub use smsreport_core::csv::{csv_row, report_csv};
use smsreport_core::csv::{recipient_fields, RECIPIENT_COLUMNS};
pub use smsreport_core::report::percent;
use smsreport_core::Row;

/// Text from events made safe for a terminal: control characters (a newline in a
/// campaign name, an escape sequence) are shown escaped instead of acting.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// A ratio with at most four decimals and no trailing zeros (`1.5`, `0.1235`).
pub fn ratio(r: f64) -> String {
    let s = format!("{r:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

fn lpad(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

/// The report as aligned text, laid out like Mailigen's report page: the campaign and
/// its contact list, Delivery Statistics, Link Statistics; then the insights.
pub fn report_table(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "SMS campaign   {}  ({})", clean(&r.name), r.campaign_id)?;
    match &r.contact_list {
        Some(l) => writeln!(
            w,
            "Contact list   {}  ({}, {} subscriber{})",
            clean(&l.name),
            l.list_id,
            l.subscribers,
            if l.subscribers == 1 { "" } else { "s" }
        )?,
        None => writeln!(w, "Contact list   (none)")?,
    }

    let d = &r.delivery;
    let total = d.total;
    let rows: Vec<(String, u64)> = std::iter::once(("Total SMS".to_owned(), d.total))
        .chain(Row::ALL.into_iter().map(|row| {
            let indent = if row.is_error_kind() { "  " } else { "" };
            (format!("{indent}{}", row.label()), d.row(row))
        }))
        .collect();
    let l = &r.links;
    let label_w = 34;
    let count_w = rows
        .iter()
        .map(|(_, v)| v.to_string().len())
        .chain([
            d.segments.to_string().len(),
            l.total_clicks.to_string().len(),
            l.bot_clicks.to_string().len(),
        ])
        .max()
        .unwrap_or(1)
        .max(5);

    writeln!(w)?;
    writeln!(w, "Delivery Statistics")?;
    for (label, v) in rows {
        writeln!(
            w,
            "  {}{}  {:>6}",
            pad(&label, label_w),
            lpad(&v.to_string(), count_w),
            percent(v, total)
        )?;
    }
    let per_sms = if total == 0 {
        String::new()
    } else {
        format!("  ({:.2} per SMS)", d.segments as f64 / total as f64)
    };
    writeln!(
        w,
        "  {}{}{per_sms}",
        pad("Segments", label_w),
        lpad(&d.segments.to_string(), count_w)
    )?;

    writeln!(w)?;
    let tracking = if l.link_tracking {
        "on"
    } else {
        "off; clicks are still counted"
    };
    writeln!(w, "Link Statistics (link tracking {tracking})")?;
    let numbers: [(&str, u64); 4] = [
        ("Total clicks", l.total_clicks),
        ("Individual links clicked", l.links_clicked),
        ("Total unique clicks", l.unique_clicks),
        ("Bot clicks (not counted above)", l.bot_clicks),
    ];
    for (label, v) in numbers {
        writeln!(
            w,
            "  {}{}",
            pad(label, label_w),
            lpad(&v.to_string(), count_w)
        )?;
    }
    let popular = match &l.most_popular {
        Some(p) => format!(
            "{}  {}  ({} unique click{}, {} click{})",
            p.link_id,
            p.url,
            p.unique_clicks,
            if p.unique_clicks == 1 { "" } else { "s" },
            p.clicks,
            if p.clicks == 1 { "" } else { "s" }
        ),
        None => "—".to_owned(),
    };
    writeln!(w, "  {}{popular}", pad("Most popular", label_w))?;
    let rate = match l.click_to_open_rate {
        Some(r) => format!("{}  ({:.1}%)", ratio(r), r * 100.0),
        None => "—  (nothing delivered)".to_owned(),
    };
    writeln!(w, "  {}{rate}", pad("Click to open rate", label_w))?;

    if !l.per_link.is_empty() {
        writeln!(w)?;
        let id_w = l
            .per_link
            .iter()
            .map(|k| width(&k.link_id))
            .max()
            .unwrap_or(0)
            .max(4);
        let url_w = l
            .per_link
            .iter()
            .map(|k| width(&k.url))
            .max()
            .unwrap_or(0)
            .max(3);
        let n_w = l
            .per_link
            .iter()
            .map(|k| k.clicks.to_string().len())
            .max()
            .unwrap_or(0)
            .max(6);
        writeln!(
            w,
            "  {}  {}  {}  {}",
            pad("Link", id_w),
            pad("URL", url_w),
            lpad("Clicks", n_w),
            lpad("Unique", n_w)
        )?;
        for k in &l.per_link {
            writeln!(
                w,
                "  {}  {}  {}  {}",
                pad(&k.link_id, id_w),
                pad(&k.url, url_w),
                lpad(&k.clicks.to_string(), n_w),
                lpad(&k.unique_clicks.to_string(), n_w)
            )?;
        }
    }

    if !l.clicks_by_month.is_empty() {
        writeln!(w)?;
        writeln!(w, "  Clicks by month (UTC)")?;
        let max = l
            .clicks_by_month
            .iter()
            .map(|m| m.clicks)
            .max()
            .unwrap_or(0)
            .max(1);
        let n_w = l
            .clicks_by_month
            .iter()
            .map(|m| m.clicks.to_string().len())
            .max()
            .unwrap_or(0)
            .max(6);
        for m in &l.clicks_by_month {
            const BAR: u64 = 40;
            let len = if m.clicks == 0 {
                0
            } else {
                ((m.clicks * BAR + max / 2) / max).max(1)
            };
            writeln!(
                w,
                "  {}  {}  {}",
                m.month,
                lpad(&m.clicks.to_string(), n_w),
                "█".repeat(len as usize)
            )?;
        }
    }
    insights_table(&r.insights, label_w, count_w, w)
}

/// The insights' three sections (docs/rules.md, "Insights"): delivery latency, messages
/// awaiting a final receipt, countries.
fn insights_table(
    i: &Insights,
    label_w: usize,
    count_w: usize,
    w: &mut dyn Write,
) -> io::Result<()> {
    let line = |w: &mut dyn Write, label: &str, v: String| {
        writeln!(w, "  {}{}", pad(label, label_w), lpad(&v, count_w))
    };
    let secs = |s: Option<u32>| s.map_or_else(|| "—".to_owned(), |s| format!("≤ {s} s"));

    let l = &i.delivery_latency;
    writeln!(w)?;
    writeln!(
        w,
        "Delivery latency (delivered messages, status time − submit time)"
    )?;
    line(w, "Messages", l.messages.to_string())?;
    writeln!(
        w,
        "  {}p50 {}  p90 {}  p99 {}",
        pad("Percentiles", label_w),
        secs(l.p50_s),
        secs(l.p90_s),
        secs(l.p99_s)
    )?;
    for b in &l.histogram {
        line(w, &format!("  ≤ {} s", b.le_s), b.messages.to_string())?;
    }

    let a = &i.awaiting_receipt;
    writeln!(w)?;
    writeln!(
        w,
        "Awaiting a final receipt (as of {}, stale after {} h)",
        a.as_of, a.stale_after_h
    )?;
    line(w, "Messages", a.messages.to_string())?;
    for b in &a.by_age {
        let stale = if age_all_stale(&b.age, a.stale_after_h) {
            "  stale"
        } else {
            ""
        };
        writeln!(
            w,
            "  {}{}{stale}",
            pad(&format!("  {}", age_label(&b.age)), label_w),
            lpad(&b.messages.to_string(), count_w)
        )?;
    }
    line(
        w,
        &format!("Stale ({} h or more)", a.stale_after_h),
        a.stale.to_string(),
    )?;

    writeln!(w)?;
    writeln!(w, "Countries")?;
    if i.by_country.is_empty() {
        return writeln!(w, "  (no messages)");
    }
    const HEAD: [&str; 11] = [
        "CODE",
        "REGION",
        "COUNTRY",
        "TOTAL",
        "DELIVERED",
        "SENT",
        "QUEUED",
        "UNDELIVERED",
        "ERRORS",
        "OTHER",
        "CLICKS",
    ];
    let rows: Vec<[String; 11]> = i
        .by_country
        .iter()
        .map(|c| {
            [
                calling_code(c),
                c.region.clone(),
                row_name(c).to_owned(),
                c.total.to_string(),
                c.delivered.to_string(),
                c.sent.to_string(),
                c.queued.to_string(),
                c.undelivered.to_string(),
                c.errors.to_string(),
                c.other.to_string(),
                c.clicks.to_string(),
            ]
        })
        .collect();
    let mut widths = HEAD.map(width);
    for r in &rows {
        for (k, f) in r.iter().enumerate() {
            widths[k] = widths[k].max(width(f));
        }
    }
    let fmt = |f: &[String; 11]| {
        (0..11)
            .map(|k| {
                if k >= 3 {
                    lpad(&f[k], widths[k])
                } else {
                    pad(&f[k], widths[k])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(w, "  {}", fmt(&HEAD.map(String::from)).trim_end())?;
    for r in &rows {
        writeln!(w, "  {}", fmt(r).trim_end())?;
    }
    Ok(())
}

/// Pretty JSON and a final newline.
pub fn json<T: serde::Serialize>(value: &T, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

/// The campaign list as a table.
pub fn campaigns_table(list: &[CampaignSummary], w: &mut dyn Write) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(w, "no campaigns yet (try `smsreport demo`)");
    }
    let header = [
        "CAMPAIGN",
        "NAME",
        "CREATED",
        "TOTAL",
        "DELIVERED",
        "CLICKS",
    ];
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|c| {
            [
                c.campaign_id.clone(),
                clean(&c.name).into_owned(),
                c.created_at.clone().unwrap_or_else(|| "—".into()),
                c.total.to_string(),
                c.delivered.to_string(),
                c.total_clicks.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(width);
    for r in &rows {
        for (i, f) in r.iter().enumerate() {
            widths[i] = widths[i].max(width(f));
        }
    }
    let line = |f: &[String; 6]| {
        (0..6)
            .map(|i| {
                if i >= 3 {
                    lpad(&f[i], widths[i])
                } else {
                    pad(&f[i], widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(w, "{}", line(&header.map(String::from)).trim_end())?;
    for r in &rows {
        writeln!(w, "{}", line(r).trim_end())?;
    }
    Ok(())
}

/// One campaign's line of `health`.
#[derive(Debug)]
pub struct HealthRow {
    pub campaign_id: String,
    /// Duplicate callbacks.
    pub duplicate: i64,
    /// Receipts after a final status.
    pub late: i64,
    /// Rejected callbacks that named the campaign, by the field that decided.
    pub rejected: std::collections::BTreeMap<&'static str, i64>,
}

/// `health` as a table: campaign, duplicate callbacks, late receipts, rejected callbacks
/// (with their fields).
pub fn health_table(rows: &[HealthRow], w: &mut dyn Write) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(w, "no campaigns yet");
    }
    let header = ["CAMPAIGN", "DUPLICATE", "LATE", "REJECTED"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let total: i64 = r.rejected.values().sum();
            let rejected = if r.rejected.is_empty() {
                total.to_string()
            } else {
                let by: Vec<String> = r.rejected.iter().map(|(f, n)| format!("{f} {n}")).collect();
                format!("{total} ({})", by.join(", "))
            };
            [
                clean(&r.campaign_id).into_owned(),
                r.duplicate.to_string(),
                r.late.to_string(),
                rejected,
            ]
        })
        .collect();
    let mut widths = header.map(width);
    for r in &cells {
        for (i, f) in r.iter().enumerate() {
            widths[i] = widths[i].max(width(f));
        }
    }
    let line = |w: &mut dyn Write, r: [&str; 4]| {
        writeln!(
            w,
            "{}  {}  {}  {}",
            pad(r[0], widths[0]),
            lpad(r[1], widths[1]),
            lpad(r[2], widths[2]),
            pad(r[3], widths[3]).trim_end()
        )
    };
    line(w, header)?;
    for r in &cells {
        line(w, [&r[0], &r[1], &r[2], &r[3]])?;
    }
    Ok(())
}

/// `health`'s last line: statuses waiting for a message that never came.
pub fn waiting_line(o: &smsreport_core::store::Orphans, w: &mut dyn Write) -> io::Result<()> {
    match o.oldest {
        Some(oldest) if o.messages > 0 => writeln!(
            w,
            "statuses waiting for their message: {} (the oldest pending status is of {oldest})",
            o.messages
        ),
        _ => writeln!(w, "statuses waiting for their message: 0"),
    }
}

/// The campaign list as CSV.
pub fn campaigns_csv(list: &[CampaignSummary], w: &mut dyn Write) -> io::Result<()> {
    csv_row(
        w,
        &[
            "campaign_id",
            "name",
            "created_at",
            "total",
            "delivered",
            "total_clicks",
        ],
    )?;
    for c in list {
        csv_row(
            w,
            &[
                c.campaign_id.clone(),
                c.name.clone(),
                c.created_at.clone().unwrap_or_default(),
                c.total.to_string(),
                c.delivered.to_string(),
                c.total_clicks.to_string(),
            ],
        )?;
    }
    Ok(())
}

/// Prints the recipients drill-down page by page, without holding more than one page.
#[derive(Debug)]
pub struct RecipientsWriter {
    format: crate::Format,
    /// Rows written so far.
    count: u64,
    /// Table column widths, set by the first page.
    widths: Option<[usize; 9]>,
}

impl RecipientsWriter {
    pub fn new(format: crate::Format) -> Self {
        RecipientsWriter {
            format,
            count: 0,
            widths: None,
        }
    }

    /// Writes what comes before the first row.
    pub fn begin(&mut self, w: &mut dyn Write) -> io::Result<()> {
        match self.format {
            crate::Format::Json => w.write_all(b"["),
            crate::Format::Csv => csv_row(w, &RECIPIENT_COLUMNS),
            crate::Format::Table => Ok(()),
        }
    }

    /// Writes one page of rows.
    pub fn page(&mut self, rows: &[RecipientRow], w: &mut dyn Write) -> io::Result<()> {
        for r in rows {
            match self.format {
                crate::Format::Json => {
                    w.write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *w, r).map_err(io::Error::from)?;
                }
                crate::Format::Csv => csv_row(w, &recipient_fields(r))?,
                crate::Format::Table => {
                    let widths = match self.widths {
                        Some(x) => x,
                        None => {
                            let mut x = RECIPIENT_COLUMNS.map(width);
                            for r in rows {
                                for (i, f) in recipient_fields(r).iter().enumerate() {
                                    x[i] = x[i].max(width(&clean(f)));
                                }
                            }
                            self.widths = Some(x);
                            self.table_line(
                                &RECIPIENT_COLUMNS.map(str::to_ascii_uppercase),
                                &x,
                                w,
                            )?;
                            x
                        }
                    };
                    let fields = recipient_fields(r).map(|f| clean(&f).into_owned());
                    self.table_line(&fields, &widths, w)?;
                }
            }
            self.count += 1;
        }
        Ok(())
    }

    fn table_line(
        &self,
        fields: &[String; 9],
        widths: &[usize; 9],
        w: &mut dyn Write,
    ) -> io::Result<()> {
        let line = (0..9)
            .map(|i| {
                let f = if fields[i].is_empty() {
                    "—"
                } else {
                    fields[i].as_str()
                };
                if i == 6 || i == 7 {
                    lpad(f, widths[i])
                } else {
                    pad(f, widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ");
        writeln!(w, "{}", line.trim_end())
    }

    /// Writes what comes after the last row.
    pub fn finish(&mut self, w: &mut dyn Write) -> io::Result<()> {
        match self.format {
            crate::Format::Json if self.count == 0 => w.write_all(b"]\n"),
            crate::Format::Json => w.write_all(b"\n]\n"),
            crate::Format::Table if self.count == 0 => writeln!(w, "no messages"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_expect() {
        assert_eq!(percent(2, 5), "40.0%");
        assert_eq!(percent(0, 0), "—");
        assert_eq!(ratio(1.5), "1.5");
        assert_eq!(ratio(0.75), "0.75");
        assert_eq!(ratio(2.0), "2");
        assert_eq!(ratio(0.123456), "0.1235");
        assert_eq!(clean("Sale\n\u{1b}[31m"), "Sale\\n\\u{1b}[31m");
    }
}
