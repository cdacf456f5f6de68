//! The dashboard (README.md, "Dashboard"): the campaign list, each campaign's report with
//! its three tabs (Delivery Statistics, Link Statistics with the clicks-per-month chart,
//! Insights with the latency chart), and the recipients drill-down with CSV download.
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
//!
//! One file per page: `campaigns.rs` (`/`), `report.rs` (`/campaigns/{id}` and the
//! switcher), `recipients.rs` (the drill-down and its CSV); this file holds the routes,
//! the layout, errors as pages and the helpers the pages share.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use smsreport_core::report::Report;
use smsreport_core::tz::Zone;
use smsreport_core::{Row, StoreError};

use crate::routes::Routes;
use crate::{ApiError, AppState, StoreFailure};

pub(crate) mod campaigns;
pub mod chart;
pub mod format;
pub(crate) mod recipients;
pub(crate) mod report;

use format::{enc, group};
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
pub(crate) fn routes(st: &AppState) -> Routes {
    const GET: &[Method] = &[Method::GET];
    Routes::new()
        .add("/", GET, campaigns::campaigns_page)
        .add("/campaigns", GET, report::switch)
        .add("/campaigns/{id}", GET, report::report_page)
        .add(
            "/campaigns/{id}/recipients",
            GET,
            recipients::recipients_page,
        )
        .add(
            "/campaigns/{id}/recipients.csv",
            GET,
            recipients::recipients_csv,
        )
        .map(|r| {
            r.route_layer(middleware::from_fn_with_state(
                st.cfg.token.clone(),
                crate::auth::require_basic_auth,
            ))
        })
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
    pub(super) fn bad(message: impl Into<String>) -> PageError {
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

pub(super) type PageResult = Result<Response, PageError>;

/// An HTML answer: the page in the layout, with headers that keep it private and
/// forbid scripts and any fetch from elsewhere.
pub(super) fn page(status: StatusCode, title: &str, body: Markup) -> Response {
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

pub(super) fn params(q: &Option<String>) -> Result<smsreport_core::gateway::Params, PageError> {
    crate::api::query(q).map_err(|e| PageError::bad(e.message))
}

/// `?tz=`: `None` for none or empty (UTC).
pub(super) fn zone(q: &smsreport_core::gateway::Params) -> Result<Option<Zone>, PageError> {
    match q.get("tz").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(name) => Zone::get(name)
            .map(Some)
            .map_err(|e| PageError::bad(format!("tz: {e}"))),
    }
}

pub(super) fn campaign_href(id: &str) -> String {
    format!("/campaigns/{}", enc(id))
}

/// A figure: its value, grouped, marked with its JSON path.
pub(super) fn fig(metric: &str, value: u64) -> Markup {
    html! { span data-metric=(metric) data-value=(value) { (group(value)) } }
}

/// A figure's share of the total SMS.
pub(super) fn share(metric: &str, value: u64, total: u64) -> Markup {
    html! { span.pct data-pct=(metric) { (pct(value, total)) } }
}

pub(super) fn recipients_base(id: &str) -> String {
    format!("{}/recipients", campaign_href(id))
}

/// The delivery table's rows (every report row but the total, in the report's order)
/// with their counts.
pub(super) fn delivery_rows(r: &Report) -> impl Iterator<Item = (Row, u64)> + '_ {
    Row::ALL.into_iter().map(|row| (row, r.delivery.row(row)))
}
