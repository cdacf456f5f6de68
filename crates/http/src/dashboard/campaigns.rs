//! `GET /`: the campaign list.

use axum::extract::State;
use axum::http::StatusCode;
use maud::html;

use super::{campaign_href, fig, page, share, PageResult};
use crate::AppState;

/// A date from an RFC 3339 time (`2026-03-01`).
fn date(t: &Option<String>) -> &str {
    t.as_deref().and_then(|s| s.get(..10)).unwrap_or("—")
}

// ---------------------------------------------------------------------------------
// GET /

#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    security((), ("basic" = [])),
    responses(
        (status = 200, description = "The campaigns, newest first (README.md, \"Dashboard\")", content_type = "text/html", body = String),
        (status = 401, description = "No or a wrong password (with a WWW-Authenticate challenge)", content_type = "text/html", body = String),
        (status = "4XX", description = "An error page", content_type = "text/html", body = String),
        (status = "5XX", description = "An error page with the request's id", content_type = "text/html", body = String),
    ),
)]
pub(crate) async fn campaigns_page(State(st): State<AppState>) -> PageResult {
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
