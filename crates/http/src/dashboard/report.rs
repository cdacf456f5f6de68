//! `GET /campaigns/{id}`: the report page and its tabs; `GET /campaigns?id=`: the
//! campaign switcher.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use smsreport_core::insights::InsightOptions;
use smsreport_core::report::percent as pct;
use smsreport_core::report::Report;
use smsreport_core::{Millis, Row};

use super::format::{group, month_text, query, ratio_pct};
use super::{
    campaign_href, chart, delivery_rows, fig, page, params, recipients_base, share, zone,
    PageError, PageResult, ZONES,
};
use crate::AppState;
use smsreport_core::names::{age_all_stale, age_label, calling_code, row_key, row_name};

// ---------------------------------------------------------------------------------
// GET /campaigns?id=ID: the campaign switcher's form, without script

#[utoipa::path(
    get,
    path = "/campaigns",
    tag = "dashboard",
    security((), ("basic" = [])),
    params(("id" = Option<String>, Query, description = "The campaign to show")),
    responses(
        (status = 303, description = "To `/campaigns/{id}` (the campaign switcher)"),
        (status = 401, description = "No or a wrong password (with a WWW-Authenticate challenge)", content_type = "text/html", body = String),
        (status = "4XX", description = "An error page", content_type = "text/html", body = String),
        (status = "5XX", description = "An error page with the request's id", content_type = "text/html", body = String),
    ),
)]
pub(crate) async fn switch(RawQuery(q): RawQuery) -> PageResult {
    let q = params(&q)?;
    let Some(id) = q.get("id").filter(|v| !v.is_empty()) else {
        return Ok(Redirect::to("/").into_response());
    };
    let rest = query(&[
        ("tab", q.get("tab").unwrap_or("")),
        ("tz", q.get("tz").unwrap_or("")),
        ("as_of", q.get("as_of").unwrap_or("")),
        ("stale_after_h", q.get("stale_after_h").unwrap_or("")),
    ]);
    Ok(Redirect::to(&format!("{}{rest}", campaign_href(id))).into_response())
}

// ---------------------------------------------------------------------------------
// GET /campaigns/{id}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Delivery,
    Links,
    Insights,
}

/// The `?as_of=` and `?stale_after_h=` given (empty when not), to carry into links.
type Asked = [(&'static str, String); 2];

/// A link's query with the page's `?as_of=` and `?stale_after_h=` added.
type Keep<'a> = dyn Fn(&[(&str, &str)]) -> String + 'a;

/// `?as_of=` and `?stale_after_h=` as the API takes them (empty means not given): the
/// options, and the values given, to carry into links.
fn insight_query(
    q: &smsreport_core::gateway::Params,
) -> Result<(InsightOptions, Asked), PageError> {
    let as_of = q.get("as_of").unwrap_or("").to_owned();
    let stale = q.get("stale_after_h").unwrap_or("").to_owned();
    let mut opts = InsightOptions::now();
    if !as_of.is_empty() {
        opts.as_of = Millis::parse(&as_of).map_err(|e| {
            PageError::bad(format!(
                "as_of: {e} (an RFC 3339 time; write + as %2B in a URL)"
            ))
        })?;
    }
    if !stale.is_empty() {
        opts.stale_after_h = InsightOptions::parse_stale_after(&stale).map_err(PageError::bad)?;
    }
    Ok((opts, [("as_of", as_of), ("stale_after_h", stale)]))
}

#[utoipa::path(
    get,
    path = "/campaigns/{id}",
    tag = "dashboard",
    security((), ("basic" = [])),
    params(
        ("id" = String, Path, description = "The campaign's id"),
        ("tab" = Option<String>, Query, description = "`links` or `insights`; delivery without it"),
        ("tz" = Option<String>, Query, description = "Months in this IANA time zone"),
        ("as_of" = Option<String>, Query, description = "Insights as of this RFC 3339 time"),
        ("stale_after_h" = Option<u32>, Query, description = "Waiting this many hours or more is stale (1 to 8760)"),
    ),
    responses(
        (status = 200, description = "The campaign's report as a page", content_type = "text/html", body = String),
        (status = 401, description = "No or a wrong password (with a WWW-Authenticate challenge)", content_type = "text/html", body = String),
        (status = "4XX", description = "An error page", content_type = "text/html", body = String),
        (status = "5XX", description = "An error page with the request's id", content_type = "text/html", body = String),
    ),
)]
pub(crate) async fn report_page(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let q = params(&q)?;
    let tab = match q.get("tab").unwrap_or("") {
        "" | "delivery" => Tab::Delivery,
        "links" => Tab::Links,
        "insights" => Tab::Insights,
        other => {
            return Err(PageError::bad(format!(
                "tab: {other:?} is not a tab (delivery, links or insights)"
            )))
        }
    };
    let zone = zone(&q)?;
    let (opts, asked) = insight_query(&q)?;
    let report = match &zone {
        None => st.store.report_at(&id, opts, None).await?,
        Some(z) => {
            let z = z.clone();
            st.store
                .report_at(&id, opts, Some(&move |t| z.offset_minutes(t)))
                .await?
        }
    };
    let campaigns = st.store.campaigns().await?;
    // Without link tracking there is no Link Statistics tab.
    let tab = if tab == Tab::Links && !report.links.link_tracking {
        Tab::Delivery
    } else {
        tab
    };
    let tz = zone.as_ref().map_or("", |z| z.name());
    let zone_name = if tz.is_empty() { "UTC" } else { tz };
    let tab_name = match tab {
        Tab::Delivery => "",
        Tab::Links => "links",
        Tab::Insights => "insights",
    };
    let (as_of, stale_after_h) = (asked[0].1.as_str(), asked[1].1.as_str());
    // The insights' options given, carried by every link and form of the page.
    let keep = |pairs: &[(&str, &str)]| {
        let mut all = pairs.to_vec();
        all.extend([("as_of", as_of), ("stale_after_h", stale_after_h)]);
        query(&all)
    };
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
                (hidden_insight_inputs(as_of, stale_after_h))
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
                (hidden_insight_inputs(as_of, stale_after_h))
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
            a href={ (href) (keep(&[("tz", tz)])) } aria-current=[(tab == Tab::Delivery).then_some("page")] { "Delivery Statistics" }
            @if report.links.link_tracking {
                a href={ (href) (keep(&[("tab", "links"), ("tz", tz)])) } aria-current=[(tab == Tab::Links).then_some("page")] { "Link Statistics" }
            }
            a href={ (href) (keep(&[("tab", "insights"), ("tz", tz)])) } aria-current=[(tab == Tab::Insights).then_some("page")] { "Insights" }
        }
        @match tab {
            Tab::Delivery => (delivery_tab(&report, &recipients_base(&report.campaign_id), tz)),
            Tab::Links => (links_tab(&report, zone_name)),
            Tab::Insights => (insights_tab(&report, &recipients_base(&report.campaign_id), &keep)),
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

/// The hidden inputs that keep `?as_of=` and `?stale_after_h=` across a form.
fn hidden_insight_inputs(as_of: &str, stale_after_h: &str) -> Markup {
    html! {
        @if !as_of.is_empty() { input type="hidden" name="as_of" value=(as_of); }
        @if !stale_after_h.is_empty() { input type="hidden" name="stale_after_h" value=(stale_after_h); }
    }
}

/// A figure that may be absent: `data-value` is its JSON (`null` when absent).
fn opt_fig(metric: &str, value: Option<u32>, text: impl Fn(u32) -> String) -> Markup {
    match value {
        Some(v) => html! { span data-metric=(metric) data-value=(v) { (text(v)) } },
        None => html! { span.pct data-metric=(metric) data-value="null" { "—" } },
    }
}

/// The Insights tab (docs/rules.md, "Insights"): the latency histogram, the messages
/// awaiting a final receipt by age (the stale buckets set apart), the countries. Every
/// age bucket and country links to its recipients; `keep` adds the page's `?as_of=` and
/// `?stale_after_h=` to a link's query.
fn insights_tab(r: &Report, recipients: &str, keep: &Keep) -> Markup {
    let i = &r.insights;
    let l = &i.delivery_latency;
    let a = &i.awaiting_receipt;
    let secs = |s: u32| format!("≤ {}", chart::duration_label(s));
    html! {
        section aria-labelledby="insights-h" {
            h2 #insights-h style="position:absolute;left:-9999px" { "Insights" }
            div.kpis {
                div.kpi { div.k { "Median latency" } div.v { (opt_fig("insights.delivery_latency.p50_s", l.p50_s, secs)) } div.d { "p90 " (opt_fig("insights.delivery_latency.p90_s", l.p90_s, secs)) " · p99 " (opt_fig("insights.delivery_latency.p99_s", l.p99_s, secs)) } }
                div.kpi { div.k { "Delivered" } div.v { (fig("insights.delivery_latency.messages", l.messages)) } div.d { "messages with a latency" } }
                div.kpi { div.k { "Awaiting a receipt" } div.v { (fig("insights.awaiting_receipt.messages", a.messages)) } div.d { "queued, sent or undelivered" } }
                div.kpi { div.k { "Stale" } div.v { a.stale-total href={ (recipients) (keep(&[("stale", "true")])) } { (fig("insights.awaiting_receipt.stale", a.stale)) } } div.d { "waiting " (fig("insights.awaiting_receipt.stale_after_h", u64::from(a.stale_after_h))) " h or more" } }
            }
            div.cols {
                div.card {
                    h2 { "Delivery latency" }
                    p.sub style="margin-bottom:.5rem" { "Delivered messages by the time from submit to delivery receipt; p50, p90 and p99 marked." }
                    @match chart::latency_svg(l) {
                        Some(svg) => div.chart-wrap { (svg) },
                        None => p.empty { "Nothing delivered yet." },
                    }
                    @if !l.histogram.is_empty() {
                        details {
                            summary { "Latency as a table" }
                            table {
                                thead { tr { th scope="col" { "Latency" } th scope="col" .n { "Messages" } } }
                                tbody {
                                    @for b in &l.histogram {
                                        tr { th scope="row" { (secs(b.le_s)) } td.n { (fig(&format!("insights.delivery_latency.histogram.{}", b.le_s), b.messages)) } }
                                    }
                                }
                            }
                        }
                    }
                }
                div.card {
                    h2 { "Awaiting a final receipt" }
                    p.sub style="margin-bottom:.5rem" {
                        "Queued, sent or undelivered messages by age, as of "
                        span data-metric="insights.awaiting_receipt.as_of" data-value=(a.as_of) { (a.as_of) }
                        "; stale after " (a.stale_after_h) " h."
                    }
                    div.ages {
                        @for b in &a.by_age {
                            @let stale = age_all_stale(&b.age, a.stale_after_h);
                            a.age.stale[stale] href={ (recipients) (keep(&[("age", &b.age)])) } title={ (age_label(&b.age)) @if stale { " (stale)" } } {
                                span.k { (age_label(&b.age)) }
                                span.v { (fig(&format!("insights.awaiting_receipt.by_age.{}", b.age), b.messages)) }
                            }
                        }
                    }
                    p {
                        a.stale-total href={ (recipients) (keep(&[("stale", "true")])) } {
                            (group(a.stale)) " stale"
                        }
                        span.muted { " — waiting " (a.stale_after_h) " hours or more"
                            @if a.messages > 0 { " (" (pct(a.stale, a.messages)) " of those waiting)" } }
                    }
                }
            }
            div.card.scroll style="margin-top:1rem" {
                table {
                    caption style="text-align:left;font-weight:700;padding-bottom:.5rem" { "Countries" }
                    thead { tr {
                        th scope="col" { "Country" }
                        th scope="col" { "Region" }
                        th scope="col" { "Code" }
                        th scope="col" .n { "SMS" }
                        th scope="col" .n { "Delivered" }
                        th scope="col" .n .hide-s { "Sent" }
                        th scope="col" .n .hide-s { "Queued" }
                        th scope="col" .n .hide-s { "Undelivered" }
                        th scope="col" .n { "Errors" }
                        th scope="col" .n .hide-s { "Other" }
                        th scope="col" .n { "Clicks" }
                    } }
                    tbody {
                        @for c in &i.by_country {
                            @let key = row_key(c);
                            @let m = |f: &str| format!("insights.by_country.{key}.{f}");
                            tr data-country=(key) {
                                th scope="row" { a href={ (recipients) (keep(&[("country", &key)])) } { (row_name(c)) } }
                                td.mono { (c.region) }
                                td.mono { (calling_code(c)) }
                                td.n { (fig(&m("total"), c.total)) }
                                td.n { (fig(&m("delivered"), c.delivered)) " " span.pct { (pct(c.delivered, c.total)) } }
                                td.n.hide-s { (fig(&m("sent"), c.sent)) }
                                td.n.hide-s { (fig(&m("queued"), c.queued)) }
                                td.n.hide-s { (fig(&m("undelivered"), c.undelivered)) }
                                td.n { (fig(&m("errors"), c.errors)) }
                                td.n.hide-s { (fig(&m("other"), c.other)) }
                                td.n { (fig(&m("clicks"), c.clicks)) }
                            }
                        }
                        @if i.by_country.is_empty() {
                            tr { td colspan="11" .empty { "No messages yet." } }
                        }
                    }
                }
            }
        }
    }
}
