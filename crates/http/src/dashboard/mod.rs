//! The dashboard (README.md, "Dashboard"): the campaign list, each campaign's report with its two tabs
//! (Delivery Statistics, Link Statistics) and its clicks-per-month chart, and the
//! recipients drill-down with CSV download.
//!
//! Pages are HTML rendered here (maud, which escapes every interpolated string), with
//! the stylesheet compiled into the binary and inlined; the chart is inline SVG drawn
//! in Rust. Nothing is fetched from another host, no script runs (the Content Security
//! Policy forbids it), and every control is a link or a GET form. With a token set,
//! every dashboard route needs HTTP Basic authentication whose password is the token.
//!
//! Every figure is marked `data-metric="PATH" data-value="V"`, where `PATH` is the JSON
//! report's field (`delivery.errors.expired`, `links.per_link.LINK_ID.clicks`,
//! `links.clicks_by_month.YYYY-MM`) and `V` its value, so tests (and scrapers) can hold
//! the page to the JSON report.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use smsreport_core::report::{RecipientQuery, RecipientRow, Report};
use smsreport_core::tz::Zone;
use smsreport_core::{Millis, Row, StoreError};

use crate::{ApiError, AppState, StoreFailure};

pub mod chart;
pub mod format;

use format::{enc, group, month_text, query, ratio_pct};
use smsreport_core::report::percent as pct;

/// The stylesheet, inlined into every page.
const CSS: &str = include_str!("style.css");

/// The zones the time zone selector offers (any other IANA name works in `?tz=` and is
/// added to the list when asked for).
pub const ZONES: [&str; 16] = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Riga",
    "Europe/Helsinki",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
];

/// Recipients per page unless `?limit=` says otherwise (at most [`MAX_PAGE`]).
pub const PAGE: usize = 50;
/// The largest `?limit=` on the recipients page.
pub const MAX_PAGE: usize = 1000;

/// The dashboard's routes, behind HTTP Basic authentication when a token is set.
pub(crate) fn routes(st: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(campaigns_page))
        .route("/campaigns", get(switch))
        .route("/campaigns/{id}", get(report_page))
        .route("/campaigns/{id}/recipients", get(recipients_page))
        .route("/campaigns/{id}/recipients.csv", get(recipients_csv))
        .route_layer(middleware::from_fn_with_state(
            st.cfg.token.clone(),
            crate::auth::require_basic_auth,
        ))
}

/// An error shown as a page.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    message: String,
    store_failure: bool,
    /// The whole error, for the log only.
    detail: Option<String>,
}

impl PageError {
    fn bad(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            store_failure: false,
            detail: None,
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        let api = ApiError::from(e);
        PageError {
            status: api.status,
            message: api.message,
            store_failure: api.store_failure,
            detail: api.detail,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "That did not work",
            _ => "The store did not answer",
        };
        let body = html! {
            h1 { (title) }
            div.card.error {
                p { (self.message) }
                p { a href="/" { "Back to the campaigns" } }
            }
        };
        let mut resp = page(self.status, title, body);
        if self.store_failure {
            resp.extensions_mut().insert(StoreFailure);
        }
        if let Some(d) = self.detail {
            resp.extensions_mut().insert(crate::ErrorDetail(d));
        }
        resp
    }
}

type PageResult = Result<Response, PageError>;

/// An HTML answer: the page in the layout, with headers that keep it private and
/// forbid scripts and any fetch from elsewhere.
fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (title) " · smsreport" }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                header.masthead {
                    div.in {
                        a.brand href="/" { "sms" span { "report" } }
                        nav aria-label="Main" { a href="/" { "Campaigns" } }
                    }
                }
                main { (body) }
                footer { "smsreport · SMS campaign delivery and click reports" }
            }
        }
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                     form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        doc.into_string(),
    )
        .into_response()
}

fn params(q: &Option<String>) -> Result<smsreport_core::gateway::Params, PageError> {
    crate::api::query(q).map_err(|e| PageError::bad(e.message))
}

/// `?tz=`: `None` for none or empty (UTC).
fn zone(q: &smsreport_core::gateway::Params) -> Result<Option<Zone>, PageError> {
    match q.get("tz").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(name) => Zone::get(name)
            .map(Some)
            .map_err(|e| PageError::bad(format!("tz: {e}"))),
    }
}

/// `?status=`: a report row, or `None` for all.
fn row(q: &smsreport_core::gateway::Params) -> Result<Option<Row>, PageError> {
    match q.get("status").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<Row>()
            .map(Some)
            .map_err(|e| PageError::bad(format!("status: {e}"))),
    }
}

fn campaign_href(id: &str) -> String {
    format!("/campaigns/{}", enc(id))
}

/// A figure: its value, grouped, marked with its JSON path.
fn fig(metric: &str, value: u64) -> Markup {
    html! { span data-metric=(metric) data-value=(value) { (group(value)) } }
}

/// A figure's share of the total SMS.
fn share(metric: &str, value: u64, total: u64) -> Markup {
    html! { span.pct data-pct=(metric) { (pct(value, total)) } }
}

/// A date from an RFC 3339 time (`2026-03-01`).
fn date(t: &Option<String>) -> &str {
    t.as_deref().and_then(|s| s.get(..10)).unwrap_or("—")
}

// ---------------------------------------------------------------------------------
// GET /

async fn campaigns_page(State(st): State<AppState>) -> PageResult {
    let list = st.store.campaigns().await?;
    let body = html! {
        h1 { "Campaigns" }
        p.sub { "Newest first. Delivered is a share of each campaign's SMS; clicks are human clicks." }
        @if list.is_empty() {
            div.card.empty {
                p { "No campaigns yet." }
                p { "Send events with " code { "smsreport ingest" } " or " code { "POST /v1/events" }
                    ", or try " code { "smsreport demo" } "." }
            }
        } @else {
            div.card.scroll {
                table {
                    caption.muted style="text-align:left;caption-side:bottom;padding-top:.5rem;font-size:.85rem" {
                        (list.len()) " campaign" @if list.len() != 1 { "s" }
                    }
                    thead { tr {
                        th scope="col" { "Campaign" }
                        th scope="col" .hide-s { "Created" }
                        th scope="col" .n { "SMS" }
                        th scope="col" .n { "Delivered" }
                        th scope="col" .n { "Delivered %" }
                        th scope="col" .n { "Clicks" }
                    } }
                    tbody {
                        @for c in &list {
                            tr data-campaign=(c.campaign_id) {
                                th scope="row" {
                                    a href=(campaign_href(&c.campaign_id)) { (c.name) }
                                    span.desc.mono { (c.campaign_id) }
                                }
                                td.hide-s { (date(&c.created_at)) }
                                td.n { (fig("total", c.total)) }
                                td.n { (fig("delivered", c.delivered)) }
                                td.n { (share("delivered", c.delivered, c.total)) }
                                td.n { (fig("total_clicks", c.total_clicks)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, "Campaigns", body))
}

// ---------------------------------------------------------------------------------
// GET /campaigns?id=ID: the campaign switcher's form, without script

async fn switch(RawQuery(q): RawQuery) -> PageResult {
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

async fn report_page(
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

fn recipients_base(id: &str) -> String {
    format!("{}/recipients", campaign_href(id))
}

/// The delivery table's rows (every report row but the total, in the report's order)
/// with their counts.
fn delivery_rows(r: &Report) -> impl Iterator<Item = (Row, u64)> + '_ {
    Row::ALL.into_iter().map(|row| (row, r.delivery.row(row)))
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

// ---------------------------------------------------------------------------------
// GET /campaigns/{id}/recipients

/// The filter's choices: value, label, count.
fn row_choices(r: &Report) -> Vec<(&'static str, String, u64)> {
    let d = &r.delivery;
    let mut out = vec![("", "All messages".to_owned(), d.total)];
    out.extend(delivery_rows(r).map(|(row, v)| {
        let label = if row.is_error_kind() {
            format!("— {}", row.label())
        } else {
            row.label().to_owned()
        };
        (row.as_str(), label, v)
    }));
    out
}

async fn recipients_page(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let q = params(&q)?;
    let row = row(&q)?;
    let zone = zone(&q)?;
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(PageError::bad(format!(
                    "limit: {s:?} is not a number from 1 to {MAX_PAGE}"
                )))
            }
        },
    };
    let after = q.get("after").filter(|a| !a.is_empty()).map(str::to_owned);
    let report = st.store.report(&id).await?;
    let page_rows = st
        .store
        .recipients(
            &id,
            &RecipientQuery {
                row,
                after: after.clone(),
                limit,
            },
        )
        .await?;
    let tz = zone.as_ref().map_or("", |z| z.name());
    let zone_name = if tz.is_empty() { "UTC" } else { tz };
    let status = row.map_or("", Row::as_str);
    let limit_s = if limit == PAGE {
        String::new()
    } else {
        limit.to_string()
    };
    let base = recipients_base(&report.campaign_id);
    let choices = row_choices(&report);
    let in_filter = choices
        .iter()
        .find(|(v, _, _)| *v == status)
        .map_or(0, |c| c.2);
    let shown_zone = match &zone {
        Some(z) => z.clone(),
        None => Zone::get("UTC").map_err(PageError::bad)?,
    };
    let when = |r: &RecipientRow| -> String {
        match r.status_at.as_deref().map(Millis::parse) {
            Some(Ok(t)) => shown_zone.local_time(t),
            _ => "—".to_owned(),
        }
    };
    let body = html! {
        p.crumbs {
            a href="/" { "Campaigns" } " / "
            a href={ (campaign_href(&report.campaign_id)) (query(&[("tz", tz)])) } { (report.name) } " / "
            span { "Recipients" }
        }
        h1 { "Recipients" }
        p.sub {
            (report.name) " · "
            @match &report.contact_list {
                Some(l) => { "contact list " strong { (l.name) } ", " (fig("contact_list.subscribers", l.subscribers)) " subscriber" @if l.subscribers != 1 { "s" } }
                None => { "no contact list" }
            }
        }
        div.toolbar {
            form method="get" action=(base) {
                div {
                    label for="status" { "Report row" }
                    select id="status" name="status" {
                        @for (v, label, n) in &choices {
                            option value=(v) selected[*v == status] { (label) " (" (group(*n)) ")" }
                        }
                    }
                }
                @if !tz.is_empty() { input type="hidden" name="tz" value=(tz); }
                @if !limit_s.is_empty() { input type="hidden" name="limit" value=(limit_s); }
                button type="submit" { "Filter" }
            }
            a href={ (base) ".csv" (query(&[("status", status), ("tz", tz)])) } download { "Download CSV" }
        }
        div.card.scroll {
            table {
                caption.muted style="text-align:left;padding-bottom:.5rem;font-size:.9rem" {
                    (group(in_filter)) " message" @if in_filter != 1 { "s" }
                    @if let Some(r) = row { " in “" (choices.iter().find(|c| c.0 == r.as_str()).map_or("", |c| c.1.trim_start_matches("— "))) "”" }
                    @if after.is_some() { " · a later page" }
                }
                thead { tr {
                    th scope="col" { "Recipient" }
                    th scope="col" .hide-s { "Message" }
                    th scope="col" { "Status" }
                    th scope="col" { "Error code" }
                    th scope="col" { "Status time (" (zone_name) ")" }
                    th scope="col" .n { "Clicks" }
                } }
                tbody {
                    @for r in &page_rows.items {
                        tr data-message=(r.message_id) {
                            th scope="row" .mono { (r.recipient) }
                            td.mono.hide-s { (r.message_id) }
                            td { span.status title=(r.status.as_str()) { span class={ "dot s-" (r.row.as_str()) } {} (r.row.short_label()) } }
                            td.mono { (r.error_code.as_deref().unwrap_or("—")) }
                            td { (when(r)) }
                            td.n { (group(r.clicks)) }
                        }
                    }
                    @if page_rows.items.is_empty() {
                        tr { td colspan="6" .empty { "No messages here." } }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                span {
                    @if after.is_some() {
                        a href={ (base) (query(&[("status", status), ("tz", tz), ("limit", &limit_s)])) } { "← First page" }
                    }
                }
                span {
                    @if let Some(next) = &page_rows.next {
                        a rel="next" href={ (base) (query(&[("status", status), ("after", next), ("tz", tz), ("limit", &limit_s)])) } { "Next page →" }
                    }
                }
            }
        }
    };
    Ok(page(
        StatusCode::OK,
        &format!("Recipients · {}", report.name),
        body,
    ))
}

// ---------------------------------------------------------------------------------
// GET /campaigns/{id}/recipients.csv: every recipient (of a row), streamed page by page

async fn recipients_csv(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let q = params(&q)?;
    let row = row(&q)?;
    let query = RecipientQuery {
        row,
        after: None,
        limit: 1000,
    };
    // The first page is read before answering, so an unknown campaign is a 404.
    let first = st.store.recipients(&id, &query).await?;
    let mut head = Vec::new();
    let _ = smsreport_core::csv::csv_row(&mut head, &smsreport_core::csv::RECIPIENT_COLUMNS);
    let store = st.store.clone();
    let campaign = id.clone();
    // State: the header still to send, the page read and not yet sent, the query.
    let stream = futures_util::stream::unfold(
        (Some(head), Some(first), query),
        move |(head, page, mut query)| {
            let store = store.clone();
            let campaign = campaign.clone();
            async move {
                if let Some(h) = head {
                    return Some((Ok::<_, StoreError>(h), (None, page, query)));
                }
                let page = page?;
                let mut out = Vec::new();
                for r in &page.items {
                    let _ = smsreport_core::csv::csv_row(
                        &mut out,
                        &smsreport_core::csv::recipient_fields(r),
                    );
                }
                let next = match page.next {
                    None => None,
                    Some(after) => {
                        query.after = Some(after);
                        match store.recipients(&campaign, &query).await {
                            Ok(p) => Some(p),
                            Err(e) => return Some((Err(e), (None, None, query))),
                        }
                    }
                };
                Some((Ok(out), (None, next, query)))
            }
        },
    );
    let name = match row {
        Some(r) => format!("{id}-recipients-{r}.csv"),
        None => format!("{id}-recipients.csv"),
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
