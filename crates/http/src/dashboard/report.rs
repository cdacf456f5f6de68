//! `GET /campaigns/{id}`: the report page and its tabs; `GET /campaigns?id=`: the
//! campaign switcher.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use smsreport_core::report::percent as pct;
use smsreport_core::report::Report;
use smsreport_core::Row;

use super::format::{group, month_text, query, ratio_pct};
use super::{
    campaign_href, chart, delivery_rows, fig, page, params, recipients_base, share, zone,
    PageError, PageResult, ZONES,
};
use crate::AppState;

// ---------------------------------------------------------------------------------
// GET /campaigns?id=ID: the campaign switcher's form, without script

pub(super) async fn switch(RawQuery(q): RawQuery) -> PageResult {
    let q = params(&q)?;
    let Some(id) = q.get("id").filter(|v| !v.is_empty()) else {
        return Ok(Redirect::to("/").into_response());
    };
    let rest = query(&[
        ("tab", q.get("tab").unwrap_or("")),
        ("tz", q.get("tz").unwrap_or("")),
    ]);
    Ok(Redirect::to(&format!("{}{rest}", campaign_href(id))).into_response())
}

// ---------------------------------------------------------------------------------
// GET /campaigns/{id}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Delivery,
    Links,
}

pub(super) async fn report_page(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let q = params(&q)?;
    let tab = match q.get("tab").unwrap_or("") {
        "" | "delivery" => Tab::Delivery,
        "links" => Tab::Links,
        other => {
            return Err(PageError::bad(format!(
                "tab: {other:?} is not a tab (delivery or links)"
            )))
        }
    };
    let zone = zone(&q)?;
    let report = match &zone {
        None => st.store.report(&id).await?,
        Some(z) => {
            let z = z.clone();
            st.store
                .report_with_offset(&id, &move |t| z.offset_minutes(t))
                .await?
        }
    };
    let campaigns = st.store.campaigns().await?;
    // Without link tracking there is no Link Statistics tab.
    let tab = if report.links.link_tracking {
        tab
    } else {
        Tab::Delivery
    };
    let tz = zone.as_ref().map_or("", |z| z.name());
    let zone_name = if tz.is_empty() { "UTC" } else { tz };
    let tab_name = if tab == Tab::Links { "links" } else { "" };
    let href = campaign_href(&report.campaign_id);
    let recipients = format!("{href}/recipients{}", query(&[("tz", tz)]));
    let body = html! {
        p.crumbs { a href="/" { "Campaigns" } " / " span { (report.name) } }
        h1 { (report.name) }
        p.sub { span.mono { (report.campaign_id) } }
        div.toolbar {
            form method="get" action="/campaigns" {
                div {
                    label for="campaign" { "SMS campaign" }
                    select id="campaign" name="id" {
                        @for c in &campaigns {
                            option value=(c.campaign_id) selected[c.campaign_id == report.campaign_id] { (c.name) }
                        }
                    }
                }
                @if !tab_name.is_empty() { input type="hidden" name="tab" value=(tab_name); }
                @if !tz.is_empty() { input type="hidden" name="tz" value=(tz); }
                button type="submit" { "Open" }
            }
            form method="get" action=(href) {
                div {
                    label for="tz" { "Time zone (clicks per month)" }
                    select id="tz" name="tz" {
                        @for z in zones(zone_name) {
                            option value=(z) selected[z == zone_name] { (z) }
                        }
                    }
                }
                @if !tab_name.is_empty() { input type="hidden" name="tab" value=(tab_name); }
                button type="submit" { "Apply" }
            }
        }
        div.card.list {
            span.muted { "Contact list" }
            @match &report.contact_list {
                Some(l) => {
                    strong data-metric="contact_list.name" data-value=(l.name) { (l.name) }
                    span { (fig("contact_list.subscribers", l.subscribers)) " subscriber" @if l.subscribers != 1 { "s" } }
                }
                None => { span { "none" } }
            }
            a href=(recipients) { "View recipients →" }
        }
        nav.tabs aria-label="Report" {
            a href={ (href) (query(&[("tz", tz)])) } aria-current=[(tab == Tab::Delivery).then_some("page")] { "Delivery Statistics" }
            @if report.links.link_tracking {
                a href={ (href) (query(&[("tab", "links"), ("tz", tz)])) } aria-current=[(tab == Tab::Links).then_some("page")] { "Link Statistics" }
            }
        }
        @match tab {
            Tab::Delivery => (delivery_tab(&report, &recipients_base(&report.campaign_id), tz)),
            Tab::Links => (links_tab(&report, zone_name)),
        }
    };
    Ok(page(StatusCode::OK, &report.name, body))
}

/// The selector's zones: the usual ones, and the one asked for.
fn zones(asked: &str) -> Vec<&str> {
    let mut z: Vec<&str> = ZONES.to_vec();
    if !z.contains(&asked) {
        z.insert(1, asked);
    }
    z
}

/// The rows of the stacked bar and its legend (every message is in exactly one): short
/// label, CSS class of its colour, count.
fn stack_rows(r: &Report) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
    delivery_rows(r)
        .filter(|&(row, _)| row != Row::Errors)
        .map(|(row, v)| (row.short_label(), row.as_str(), v))
}

fn delivery_tab(r: &Report, recipients: &str, tz: &str) -> Markup {
    let d = &r.delivery;
    let filter = |row: Row| {
        format!(
            "{recipients}{}",
            query(&[("status", row.as_str()), ("tz", tz)])
        )
    };
    html! {
        section aria-labelledby="delivery-h" {
            h2 #delivery-h .hide-s style="position:absolute;left:-9999px" { "Delivery Statistics" }
            div.kpis {
                div.kpi { div.k { "Total SMS" } div.v { (group(d.total)) } div.d { (group(d.segments)) " segments" } }
                div.kpi { div.k { "Delivered" } div.v { (pct(d.delivered, d.total)) } div.d { (group(d.delivered)) " SMS" } }
                div.kpi { div.k { "Delivery errors" } div.v { (pct(d.errors.total, d.total)) } div.d { (group(d.errors.total)) " SMS" } }
                div.kpi { div.k { "Human clicks" } div.v { (group(r.links.total_clicks)) } div.d { "click-to-open " (ratio_pct(r.links.click_to_open_rate)) } }
            }
            div.card {
                h2 { "Where the messages are" }
                @if d.total == 0 {
                    p.empty { "No messages yet." }
                } @else {
                    div.stack role="img" aria-label="Share of the SMS in each report row" {
                        @for (label, class, v) in stack_rows(r) {
                            @if v > 0 {
                                span class={ "s-" (class) } style={ "width:" (format!("{:.3}", v as f64 * 100.0 / d.total as f64)) "%" }
                                    title={ (label) ": " (group(v)) " (" (pct(v, d.total)) ")" } {}
                            }
                        }
                    }
                    ul.legend {
                        @for (label, class, v) in stack_rows(r) {
                            li { span class={ "dot s-" (class) } {} (label) " " (pct(v, d.total)) }
                        }
                    }
                }
            }
            div.card.scroll {
                table {
                    caption style="text-align:left;font-weight:700;padding-bottom:.5rem" { "Delivery statistics" }
                    thead { tr {
                        th scope="col" { "Report row" }
                        th scope="col" .n { "SMS" }
                        th scope="col" .n { "% of total" }
                    } }
                    tbody {
                        tr.total {
                            th scope="row" { a href={ (recipients) (query(&[("tz", tz)])) } { "Total SMS" } span.desc { "every message of the campaign" } }
                            td.n { (fig("delivery.total", d.total)) }
                            td.n { (share("delivery.total", d.total, d.total)) }
                        }
                        @for (row, v) in delivery_rows(r) {
                            tr.sub[row.is_error_kind()] {
                                th scope="row" {
                                    @if !row.is_error_kind() { span class={ "dot s-" (if row == Row::Errors { "routing" } else { row.as_str() }) } {} }
                                    a href=(filter(row)) { (row.label()) }
                                    span.desc { (row.description()) }
                                }
                                td.n { (fig(row.json_path(), v)) }
                                td.n { (share(row.json_path(), v, d.total)) }
                            }
                        }
                        tr {
                            th scope="row" { "Segments" span.desc { "SMS parts sent, over all messages" } }
                            td.n { (fig("delivery.segments", d.segments)) }
                            td.n { span.pct { "—" } }
                        }
                    }
                }
            }
        }
    }
}

fn links_tab(r: &Report, zone: &str) -> Markup {
    let l = &r.links;
    let top = l.most_popular.as_ref().map(|m| m.link_id.as_str());
    html! {
        section aria-labelledby="links-h" {
            h2 #links-h style="position:absolute;left:-9999px" { "Link Statistics" }
            div.kpis {
                div.kpi { div.k { "Total clicks" } div.v { (group(l.total_clicks)) } div.d { (group(l.bot_clicks)) " bot clicks left out" } }
                div.kpi { div.k { "Unique clicks" } div.v { (group(l.unique_clicks)) } div.d { "first click per person and link" } }
                div.kpi { div.k { "Links clicked" } div.v { (group(l.links_clicked)) } div.d { "of " (l.per_link.len()) " link" @if l.per_link.len() != 1 { "s" } } }
                div.kpi { div.k { "Click-to-open rate" } div.v { (ratio_pct(l.click_to_open_rate)) } div.d { "clicks per delivered SMS" } }
            }
            div.cols {
                div.card.scroll {
                    table {
                        caption style="text-align:left;font-weight:700;padding-bottom:.5rem" { "Link statistics" }
                        tbody {
                            tr { th scope="row" { "Total clicks" span.desc { "every human click on a tracked link" } } td.n { (fig("links.total_clicks", l.total_clicks)) } }
                            tr { th scope="row" { "Total unique clicks" span.desc { "each person's first click on each link" } } td.n { (fig("links.unique_clicks", l.unique_clicks)) } }
                            tr { th scope="row" { "Individual links clicked" span.desc { "links with at least one click" } } td.n { (fig("links.links_clicked", l.links_clicked)) } }
                            tr { th scope="row" { "Bot clicks" span.desc { "link previews and scanners; in no other figure" } } td.n { (fig("links.bot_clicks", l.bot_clicks)) } }
                            tr {
                                th scope="row" { "Most popular" span.desc { "most unique clicks" } }
                                td.n {
                                    @match &l.most_popular {
                                        Some(m) => { span.mono data-metric="links.most_popular.link_id" data-value=(m.link_id) { (m.link_id) } }
                                        None => { span.pct { "—" } }
                                    }
                                }
                            }
                            tr {
                                th scope="row" { "Click-to-open rate" span.desc { "total clicks ÷ delivered SMS" } }
                                td.n {
                                    @match l.click_to_open_rate {
                                        Some(c) => { span data-metric="links.click_to_open_rate" data-value=(c) { (ratio_pct(Some(c))) } }
                                        None => { span.pct { "—" } }
                                    }
                                }
                            }
                        }
                    }
                }
                div.card {
                    h2 { "Clicks per month" }
                    p.sub style="margin-bottom:.5rem" { "Human clicks, months in " (zone) "." }
                    @match chart::svg(&l.clicks_by_month, zone) {
                        Some(svg) => div.chart-wrap { (svg) },
                        None => p.empty { "No clicks yet." },
                    }
                    @if !l.clicks_by_month.is_empty() {
                        details {
                            summary { "Clicks per month as a table" }
                            table {
                                thead { tr { th scope="col" { "Month" } th scope="col" .n { "Clicks" } } }
                                tbody {
                                    @for m in &l.clicks_by_month {
                                        tr { th scope="row" { (month_text(&m.month)) } td.n { (fig(&format!("links.clicks_by_month.{}", m.month), m.clicks)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.card.scroll style="margin-top:1rem" {
                table {
                    caption style="text-align:left;font-weight:700;padding-bottom:.5rem" { "Links" }
                    thead { tr {
                        th scope="col" { "Link" }
                        th scope="col" { "URL" }
                        th scope="col" .n { "Clicks" }
                        th scope="col" .n { "Unique" }
                        th scope="col" .n .hide-s { "% of clicks" }
                    } }
                    tbody {
                        @for k in &l.per_link {
                            tr.popular[Some(k.link_id.as_str()) == top] {
                                th scope="row" {
                                    span.mono { (k.link_id) }
                                    @if Some(k.link_id.as_str()) == top { " " span.badge { "Most popular" } }
                                }
                                td.url { a href=(k.url) rel="noopener noreferrer nofollow" { (k.url) } }
                                td.n { (fig(&format!("links.per_link.{}.clicks", k.link_id), k.clicks)) }
                                td.n { (fig(&format!("links.per_link.{}.unique_clicks", k.link_id), k.unique_clicks)) }
                                td.n.hide-s { span.pct { (pct(k.clicks, l.total_clicks)) } }
                            }
                        }
                        @if l.per_link.is_empty() {
                            tr { td colspan="5" .empty { "This campaign has no links." } }
                        }
                    }
                }
            }
        }
    }
}
