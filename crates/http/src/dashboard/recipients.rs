//! `GET /campaigns/{id}/recipients`: the drill-down page; `…/recipients.csv`: its
//! download.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use maud::html;
use smsreport_core::report::{RecipientQuery, RecipientRow, Report};
use smsreport_core::tz::Zone;
use smsreport_core::{Millis, Row, StoreError};

use super::format::{group, query};
use super::{
    campaign_href, delivery_rows, fig, page, params, recipients_base, zone, PageError, PageResult,
    MAX_PAGE, PAGE,
};
use crate::AppState;

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

#[utoipa::path(
    get,
    path = "/campaigns/{id}/recipients",
    tag = "dashboard",
    security((), ("basic" = [])),
    params(
        ("id" = String, Path, description = "The campaign's id"),
        crate::openapi::RecipientFilters,
    ),
    responses(
        (status = 200, description = "The campaign's messages as a page", content_type = "text/html", body = String),
        (status = 401, description = "No or a wrong password (with a WWW-Authenticate challenge)", content_type = "text/html", body = String),
        (status = "4XX", description = "An error page", content_type = "text/html", body = String),
        (status = "5XX", description = "An error page with the request's id", content_type = "text/html", body = String),
    ),
)]
pub(crate) async fn recipients_page(
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
    let filter = crate::api::recipient_filter(&q).map_err(|e| PageError::bad(e.message))?;
    let report = st.store.report(&id).await?;
    let page_rows = st
        .store
        .recipients_filtered(
            &id,
            &RecipientQuery {
                row,
                after: after.clone(),
                limit,
            },
            &filter,
        )
        .await?;
    let tz = zone.as_ref().map_or("", |z| z.name());
    // The insight filters carry on from page to page.
    let keep = |k: &str| q.get(k).unwrap_or_default().to_owned();
    let (age, stale, country, as_of, stale_after_h) = (
        keep("age"),
        keep("stale"),
        keep("country"),
        keep("as_of"),
        keep("stale_after_h"),
    );
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
                        a href={ (base) (query(&[("status", status), ("tz", tz), ("limit", &limit_s), ("age", &age), ("stale", &stale), ("country", &country), ("as_of", &as_of), ("stale_after_h", &stale_after_h)])) } { "← First page" }
                    }
                }
                span {
                    @if let Some(next) = &page_rows.next {
                        a rel="next" href={ (base) (query(&[("status", status), ("after", next), ("tz", tz), ("limit", &limit_s), ("age", &age), ("stale", &stale), ("country", &country), ("as_of", &as_of), ("stale_after_h", &stale_after_h)])) } { "Next page →" }
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

#[utoipa::path(
    get,
    path = "/campaigns/{id}/recipients.csv",
    tag = "dashboard",
    security((), ("basic" = [])),
    params(
        ("id" = String, Path, description = "The campaign's id"),
        crate::openapi::RecipientFilters,
    ),
    responses(
        (status = 200, description = "The campaign's messages as CSV", content_type = "text/csv", body = String),
        (status = 401, description = "No or a wrong password (with a WWW-Authenticate challenge)", content_type = "text/html", body = String),
        (status = "4XX", description = "An error page", content_type = "text/html", body = String),
        (status = "5XX", description = "An error page with the request's id", content_type = "text/html", body = String),
    ),
)]
pub(crate) async fn recipients_csv(
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
    let filter = crate::api::recipient_filter(&q).map_err(|e| PageError::bad(e.message))?;
    // The first page is read before answering, so an unknown campaign is a 404.
    let first = st.store.recipients_filtered(&id, &query, &filter).await?;
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
            let filter = filter.clone();
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
                        match store.recipients_filtered(&campaign, &query, &filter).await {
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
