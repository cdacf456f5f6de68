//! smsreport's HTTP service (README.md, "HTTP service"): the ingest API, campaign reports, message
//! registration with tracked links, the `/c/{code}` redirect, SMS gateways' delivery
//! callbacks, health, readiness and Prometheus metrics — an axum [`Router`] over any
//! `Arc<dyn Store>`.
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn smsreport_core::Store>) -> std::io::Result<()> {
//! let config = smsreport_http::Config::new("http://127.0.0.1:7878");
//! let app = smsreport_http::router(store, config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! smsreport_http::serve(listener, app, smsreport_http::shutdown_signal()).await
//! # }
//! ```
//!
//! Guarantees, route by route, are in the README's "HTTP service"; those worth repeating:
//!
//! - a `200` from `POST /v1/events` or a webhook means the events are durable (the store's
//!   `ingest` returned);
//! - a client's mistake is a `4xx` with a JSON body `{"error": "…"}`, never a `500`;
//! - a failure of the server is a `5xx` whose body says only what failed, in general
//!   terms, with the request's id (`{"error": "the store is unavailable", "request_id":
//!   "…"}`); the whole error is logged with [`tracing`] under that id. Every answer
//!   carries its id in the `x-request-id` header;
//! - `/c/{code}` redirects only to the URL of the link the code was registered for.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use routes::Routes;
use smsreport_core::{Millis, Store, StoreError};

mod api;
pub mod auth;
pub mod dashboard;
pub mod group;
mod linkcache;
mod links;
pub mod metrics;
pub mod openapi;
mod ratelimit;
pub mod redact;
mod routes;
mod server;
pub mod spool;
mod webhooks;

pub use auth::{require_basic_auth, twilio_signature};
pub use group::{GroupCommit, GroupConfig, GroupStats};
pub use links::{new_code, render_text};
pub use server::{
    serve_with, ConnLimits, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_WRITE_TIMEOUT,
};
pub use spool::{ClickSpool, SpoolStats, DEFAULT_CLICK_SPOOL_MAX_BYTES};

/// The default body limit: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;
/// The default body limit of the Twilio, Kannel and Jasmin callbacks: 64 KiB (a Twilio
/// callback is under 2 KiB).
pub const DEFAULT_WEBHOOK_BODY_LIMIT: usize = 64 << 10;
/// The default body limit of an SMPP receipt batch: 1 MiB.
pub const DEFAULT_SMPP_BODY_LIMIT: usize = 1 << 20;
/// The default time a request body has to arrive in whole: 60 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The default failed authentications one client address may make per minute: 30.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 30;
/// The default unknown `/c/` codes one client address may ask for per minute: 60.
pub const DEFAULT_UNKNOWN_CODES_PER_MINUTE: u32 = 60;
/// The most rejected lines an answer lists (with their line numbers); the rest are only
/// counted (`rejected_count`).
pub const MAX_REJECTIONS_LISTED: usize = 100;

/// How the service is set up (the options of `serve`, README.md "HTTP service").
#[derive(Clone)]
pub struct Config {
    /// The API bearer token; `None`: no authentication.
    pub token: Option<String>,
    /// How the world reaches this server, without a trailing `/`: tracked links are
    /// `PUBLIC_URL/c/CODE`, and Twilio signs `PUBLIC_URL` + path + query.
    pub public_url: String,
    /// Twilio's auth token; with it, Twilio callbacks must be signed.
    pub twilio_auth_token: Option<String>,
    /// With it, the Kannel, Jasmin and SMPP webhooks need `?key=KEY`.
    pub webhook_key: Option<String>,
    /// The largest request body taken, in bytes (`/v1/events`, message registration).
    pub body_limit: usize,
    /// The region national recipients of callbacks are read in (`--default-region`);
    /// a webhook's `?region=` overrides it.
    pub default_region: Option<smsreport_core::gateway::Region>,
    /// The largest body of a Twilio, Kannel or Jasmin callback, in bytes.
    pub webhook_body_limit: usize,
    /// The largest body of an SMPP receipt batch, in bytes.
    pub smpp_body_limit: usize,
    /// How long a request body may take to arrive in whole (`408` after).
    pub body_timeout: Duration,
    /// Failed authentications (API token, dashboard password, webhook key, Twilio
    /// signature) one client address may make per minute before its requests to guarded
    /// routes are answered `429`; 0: no limit.
    pub auth_failures_per_minute: u32,
    /// Unknown `/c/` codes one client address may ask for per minute before its `/c/`
    /// requests are answered `429`; 0: no limit.
    pub unknown_codes_per_minute: u32,
    /// The group-commit layer the store is wrapped in, if any: `/metrics` shows its
    /// batches (ARCHITECTURE.md, "Group commit").
    pub group: Option<Arc<GroupCommit>>,
    /// Where `/c/` keeps the clicks the store fails to take, to record them once it
    /// takes writes again (docs/security.md, "Clicks while the store is down"); `None`:
    /// such a click is lost (logged and counted). The router drains it every second.
    pub click_spool: Option<Arc<ClickSpool>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are not shown.
        f.debug_struct("Config")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("public_url", &self.public_url)
            .field(
                "twilio_auth_token",
                &self.twilio_auth_token.as_ref().map(|_| "…"),
            )
            .field("webhook_key", &self.webhook_key.as_ref().map(|_| "…"))
            .field("body_limit", &self.body_limit)
            .field("default_region", &self.default_region)
            .field("webhook_body_limit", &self.webhook_body_limit)
            .field("smpp_body_limit", &self.smpp_body_limit)
            .field("body_timeout", &self.body_timeout)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field("unknown_codes_per_minute", &self.unknown_codes_per_minute)
            .field("group", &self.group.is_some())
            .field("click_spool", &self.click_spool.as_ref().map(|s| s.path()))
            .finish()
    }
}

impl Config {
    /// No secrets, the default limits (docs/security.md).
    pub fn new(public_url: &str) -> Config {
        Config {
            token: None,
            public_url: public_url.trim_end_matches('/').to_owned(),
            twilio_auth_token: None,
            webhook_key: None,
            body_limit: DEFAULT_BODY_LIMIT,
            default_region: None,
            webhook_body_limit: DEFAULT_WEBHOOK_BODY_LIMIT,
            smpp_body_limit: DEFAULT_SMPP_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            unknown_codes_per_minute: DEFAULT_UNKNOWN_CODES_PER_MINUTE,
            group: None,
            click_spool: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub store: Arc<dyn Store>,
    pub cfg: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
    /// Failed authentications by client address.
    pub auth_failures: Arc<ratelimit::PerIp>,
    /// Unknown `/c/` codes by client address.
    pub unknown_codes: Arc<ratelimit::PerIp>,
    /// The URLs of the codes registered or resolved here, for `/c/` while the store is
    /// down.
    pub links: Arc<linkcache::LinkCache>,
}

/// The service's routes over `store`.
pub fn router(store: Arc<dyn Store>, cfg: Config) -> Router {
    build(store, cfg).0
}

/// The (method, path template) of every route [`router`] has (axum also answers `HEAD`
/// on each `GET` route). The OpenAPI document ([`openapi`]) describes each one.
pub fn routes() -> Vec<(axum::http::Method, &'static str)> {
    let store: Arc<dyn Store> = Arc::new(smsreport_core::mem::MemStore::default());
    build(store, Config::new("")).1
}

fn build(
    store: Arc<dyn Store>,
    mut cfg: Config,
) -> (Router, Vec<(axum::http::Method, &'static str)>) {
    use axum::http::Method;
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    cfg.public_url = cfg.public_url.trim_end_matches('/').to_owned();
    let body_limit = cfg.body_limit;
    if let (Some(spool), Ok(rt)) = (&cfg.click_spool, tokio::runtime::Handle::try_current()) {
        rt.spawn(spool::drain_loop(
            Arc::downgrade(spool),
            Arc::downgrade(&store),
        ));
    }
    let state = AppState {
        store,
        links: Arc::new(linkcache::LinkCache::default()),
        auth_failures: Arc::new(ratelimit::PerIp::new(cfg.auth_failures_per_minute)),
        unknown_codes: Arc::new(ratelimit::PerIp::new(cfg.unknown_codes_per_minute)),
        cfg: Arc::new(cfg),
        metrics: Arc::new(metrics::Metrics::default()),
    };
    let limit_auth = |r: Router<AppState>| {
        r.route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_auth_failures,
        ))
    };
    let api = Routes::new()
        .add("/v1/events", &[POST], api::events)
        .add("/v1/campaigns", &[GET], api::campaigns)
        .add("/v1/campaigns/{id}/report", &[GET], api::report)
        .add("/v1/campaigns/{id}/recipients", &[GET], api::recipients)
        .add("/v1/campaigns/{id}/messages", &[POST], api::messages)
        .add("/v1/export", &[GET], api::export)
        .add("/v1/recipients/{number}", &[Method::DELETE], api::forget)
        .map(|r| {
            r.route_layer(middleware::from_fn_with_state(
                state.clone(),
                auth::require_bearer,
            ))
        })
        .map(limit_auth);
    let webhooks = Routes::new()
        .add("/v1/webhooks/twilio", &[POST], webhooks::twilio)
        .add("/v1/webhooks/kannel", &[GET, POST], webhooks::kannel)
        .add("/v1/webhooks/jasmin", &[POST], webhooks::jasmin)
        .add("/v1/webhooks/smpp", &[POST], webhooks::smpp)
        .map(limit_auth);
    let open = Routes::new()
        .add("/c/{code}", &[GET], links::click)
        .add("/c/{code}", &[Method::HEAD], links::click_head)
        .add("/healthz", &[GET], healthz)
        .add("/readyz", &[GET], readyz)
        .add("/metrics", &[GET], metrics::handler)
        .add("/openapi.json", &[GET], openapi::handler);
    let dashboard = dashboard::routes(&state).map(limit_auth);
    let all = api.merge(webhooks).merge(open).merge(dashboard);
    let router = all
        .router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    (router, all.list)
}

/// Serves `app` on `listener` with the default [`ConnLimits`] until `shutdown`
/// completes, then stops accepting and returns once the requests in flight are answered
/// (or the shutdown deadline passes): [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, &ConnLimits::default(), shutdown).await
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let int = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = int => {},
        () = term => {},
    }
}

/// Now, in UTC milliseconds.
pub(crate) fn now() -> Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Millis(ms)
}

/// An error answer: a status and `{"error": "…"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// What the client reads.
    pub message: String,
    /// Extra members of the JSON body.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    store_failure: bool,
    /// The whole error, for the log only.
    detail: Option<String>,
}

/// Marks a response caused by a failing store, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreFailure;

/// The whole error behind an answer, with its causes: logged by [`observe`], never sent.
#[derive(Debug, Clone)]
pub(crate) struct ErrorDetail(pub String);

/// The id of one request: in the `x-request-id` header of its answer, in the body of a
/// `5xx`, and in the log line about it.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

impl RequestId {
    /// 16 hex digits from the OS's random source (a counter if it fails).
    fn new() -> RequestId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut b = [0u8; 8];
        let n = match getrandom::getrandom(&mut b) {
            Ok(()) => u64::from_be_bytes(b),
            Err(_) => NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        RequestId(format!("{n:016x}"))
    }
}

/// The header that carries a request's id.
pub const REQUEST_ID: &str = "x-request-id";

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            extra: None,
            store_failure: false,
            detail: None,
        }
    }
    /// A failure of the server: the client reads `message`, a general sentence; the log
    /// gets `detail`.
    pub fn internal(message: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.to_owned(),
            extra: None,
            store_failure: false,
            detail: Some(detail.into()),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn with(mut self, key: &str, value: serde_json::Value) -> ApiError {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let chain = smsreport_core::causes::with_causes(&e);
        let (status, failure) = match &e {
            // The client's mistake: it reads why.
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, None),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, None),
            // The server's: the client reads what failed, the log why.
            StoreError::Corrupt(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("the store's data is inconsistent"),
            ),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("the store is unavailable"),
            ),
        };
        match failure {
            None => ApiError::new(status, chain),
            Some(message) => ApiError {
                status,
                message: message.to_owned(),
                extra: None,
                store_failure: true,
                detail: Some(chain),
            },
        }
    }
}

/// Every error answer's body: `{"error": "…"}`, with `request_id` on a `5xx`, and, on
/// some answers, more members (`rejected`, `rejected_count`, `ingested_before_failure`,
/// `duplicates_before_failure`, `messages`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What is wrong; a client's mistake names the field.
    error: String,
    /// The request's id (its `x-request-id`), on a `5xx`; the log has the whole error
    /// under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            request_id: None,
            extra: self.extra.unwrap_or_default(),
        };
        let mut resp = json_response(self.status, &body);
        if self.store_failure {
            resp.extensions_mut().insert(StoreFailure);
        }
        if let Some(d) = self.detail {
            resp.extensions_mut().insert(ErrorDetail(d));
        }
        resp
    }
}

/// A JSON answer.
pub(crate) fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        }
        Err(e) => {
            ApiError::internal("the answer could not be written", e.to_string()).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// The body of `/healthz` and `/readyz`.
#[allow(dead_code)] // Only its schema is used.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Status {
    /// `ok` or `ready`.
    status: String,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive: {\"status\": \"ok\"}", body = Status)),
)]
async fn healthz() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The store answered: {\"status\": \"ready\"}", body = Status),
        (status = 503, description = "The store did not answer within 5 s", body = ErrorBody),
    ),
)]
async fn readyz(State(st): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(5), st.store.resolve_link("readyz")).await {
        Ok(Ok(_)) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Ok(Err(e)) => store_unavailable(e),
        Err(_) => store_unavailable(StoreError::backend(
            "checking readiness",
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the store did not answer within 5 seconds",
            ),
        )),
    }
}

/// The answer of a route without authentication (`/readyz`, `/c/`) to a store failure:
/// a generic `503` whatever the error (docs/security.md); the whole error goes to the log
/// under the request's id.
pub(crate) fn store_unavailable(e: StoreError) -> Response {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "the store is unavailable".to_owned(),
        extra: None,
        store_failure: true,
        detail: Some(smsreport_core::causes::with_causes(&e)),
    }
    .into_response()
}

/// Counts every request; gives it an id (the `x-request-id` header of the answer, and
/// `request_id` in the JSON body of a `5xx`); logs every `5xx` with its whole error; and
/// makes every error answer that is not a dashboard page JSON (axum's own 404, 405 and
/// extractor rejections are plain text or empty).
async fn observe(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    // No store keeps a NUL character alike (PostgreSQL refuses it): a path that holds
    // one (`%00`) names nothing (404), a query that holds one is a 400, for every route
    // (docs/security.md).
    let nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    let mut resp = if nul(req.uri().path()) {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "the path holds a NUL character (%00), so it names nothing",
        )
        .into_response()
    } else if req.uri().query().is_some_and(nul) {
        ApiError::bad_request("the query holds a NUL character (%00), which no value may hold")
            .into_response()
    } else {
        next.run(req).await
    };
    let status = resp.status();
    let detail = resp.extensions().get::<ErrorDetail>().map(|d| d.0.clone());
    if status.is_server_error() {
        tracing::error!(
            request_id = %id.0,
            %method,
            route = %route,
            status = status.as_u16(),
            error = %redact::mask_numbers(detail.as_deref().unwrap_or("(no detail)")),
            "request failed"
        );
    } else if status.is_client_error() {
        tracing::debug!(request_id = %id.0, %method, route = %route, status = status.as_u16(), "request refused");
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The dashboard's error pages are HTML, and stay so.
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if (status.is_client_error() || status.is_server_error()) && !is_json && !is_html {
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        let mut body = serde_json::json!({ "error": reason });
        if status.is_server_error() {
            body["request_id"] = id.0.clone().into();
        }
        set_json_body(&mut resp, &body);
    } else if status.is_server_error() && is_json {
        // Our own JSON error: add the id the log line carries.
        let body = std::mem::take(resp.body_mut());
        let mut value = match axum::body::to_bytes(body, 1 << 20).await {
            Ok(b) => serde_json::from_slice::<serde_json::Value>(&b).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        if !value.is_object() {
            let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
            value = serde_json::json!({ "error": reason });
        }
        value["request_id"] = id.0.clone().into();
        set_json_body(&mut resp, &value);
    }
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    st.metrics.request(
        &route,
        method.as_str(),
        status.as_u16(),
        resp.extensions().get::<StoreFailure>().is_some(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// Replaces an answer's body with `value` as JSON.
fn set_json_body(resp: &mut Response, value: &serde_json::Value) {
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *resp.body_mut() = axum::body::Body::from(format!("{value}\n"));
}
