//! The OpenAPI 3.1 document of the service (`GET /openapi.json`, committed as
//! `docs/openapi.json`), derived by `utoipa` from the handlers' `#[utoipa::path]`
//! attributes and the types they read and answer. `tests/openapi.rs` checks that it has
//! every route of [`crate::routes`] and that the committed copy is what is served.
//!
//! The report, the campaign list, the recipients page and a forgetting's counts are
//! core's types; their fields are documented in docs/rules.md ("The report", "Recipients
//! drill-down", "Forgetting a person") and here as JSON objects.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{api, dashboard, links, metrics, webhooks, ErrorBody};

/// The document's description of the service.
const DESCRIPTION: &str = "smsreport records what happened to every SMS of a marketing \
campaign and every click on its tracked links, and answers the campaign's report \
(README.md, \"HTTP service\"). Every error is JSON, `{\"error\": \"…\"}`; a `5xx` also \
carries `request_id`, the `x-request-id` header of every answer (docs/security.md).";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "smsreport",
        description = DESCRIPTION,
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        api::events,
        api::campaigns,
        api::report,
        api::recipients,
        api::messages,
        api::export,
        api::forget,
        webhooks::twilio,
        webhooks::kannel,
        webhooks::jasmin,
        webhooks::smpp,
        links::click,
        links::click_head,
        crate::healthz,
        crate::readyz,
        metrics::handler,
        handler,
        dashboard::campaigns::campaigns_page,
        dashboard::report::switch,
        dashboard::report::report_page,
        dashboard::recipients::recipients_page,
        dashboard::recipients::recipients_csv,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "api", description = "The ingest and report API (bearer token)."),
        (name = "webhooks", description = "SMS gateways' delivery callbacks (docs/rules.md, \"Gateways\")."),
        (name = "links", description = "Tracked links."),
        (name = "operations", description = "Health, readiness, metrics and this document; no authentication."),
        (name = "dashboard", description = "The dashboard's HTML pages (HTTP Basic, password = the token)."),
    ),
)]
struct ApiDoc;

/// The security schemes the paths name.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        c.add_security_scheme(
            "webhook_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "key",
                "The --webhook-key, when one is set.",
            ))),
        );
        c.add_security_scheme(
            "twilio_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Twilio-Signature",
                "HMAC-SHA1 of PUBLIC_URL + path + query + the sorted form fields, with \
                 the --twilio-auth-token, when one is set.",
            ))),
        );
    }
}

/// The document, as `GET /openapi.json` serves it (pretty JSON and a newline).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        let mut s = doc
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    })
}

/// `GET /openapi.json`: this document; no authentication (docs/security.md).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of the service", content_type = "application/json", body = Object)),
)]
pub(crate) async fn handler() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}

/// The recipients filters (docs/rules.md, "Recipients drill-down"), as the API route, the
/// dashboard page and its CSV all take them: described once, for the document only (the
/// handlers read the query themselves).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct RecipientFilters {
    /// A report row: delivered, sent, queued, undelivered, errors, routing, expired, rejected, other
    status: Option<String>,
    /// Only messages awaiting a final receipt for stale_after_h hours or more
    stale: Option<bool>,
    /// under_1h, 1h_to_6h, 6h_to_24h, 24h_to_72h or over_72h
    age: Option<String>,
    /// A region (KZ), a calling code (+882, written %2B882) or a report row (+882/001)
    country: Option<String>,
    /// Ages as of this RFC 3339 time; now without it
    as_of: Option<String>,
    /// Waiting this many hours or more is stale (1 to 8760, default 72)
    stale_after_h: Option<u32>,
}
