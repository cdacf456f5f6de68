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
use axum::routing::{get, post};
use axum::Router;
use smsreport_core::{Millis, Store, StoreError};

mod api;
pub mod auth;
pub mod dashboard;
pub mod insights;
mod links;
pub mod metrics;
mod webhooks;

pub use auth::{require_basic_auth, twilio_signature};
pub use links::{new_code, render_text};

/// The default body limit: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;

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
    /// The largest request body taken, in bytes.
    pub body_limit: usize,
    /// The region national recipients of callbacks are read in (`--default-region`);
    /// a webhook's `?region=` overrides it.
    pub default_region: Option<smsreport_core::gateway::Region>,
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
            .finish()
    }
}

impl Config {
    /// No secrets, the default body limit.
    pub fn new(public_url: &str) -> Config {
        Config {
            token: None,
            public_url: public_url.trim_end_matches('/').to_owned(),
            twilio_auth_token: None,
            webhook_key: None,
            body_limit: DEFAULT_BODY_LIMIT,
            default_region: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub store: Arc<dyn Store>,
    pub cfg: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
}

/// The service's routes over `store`.
pub fn router(store: Arc<dyn Store>, mut cfg: Config) -> Router {
    cfg.public_url = cfg.public_url.trim_end_matches('/').to_owned();
    let body_limit = cfg.body_limit;
    let state = AppState {
        store,
        cfg: Arc::new(cfg),
        metrics: Arc::new(metrics::Metrics::default()),
    };
    let api = Router::new()
        .route("/v1/events", post(api::events))
        .route("/v1/campaigns", get(api::campaigns))
        .route("/v1/campaigns/{id}/report", get(api::report))
        .route("/v1/campaigns/{id}/recipients", get(api::recipients))
        .route("/v1/campaigns/{id}/messages", post(api::messages))
        .route("/v1/export", get(api::export))
        .route(
            "/v1/recipients/{number}",
            axum::routing::delete(api::forget),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ));
    let webhooks = Router::new()
        .route("/v1/webhooks/twilio", post(webhooks::twilio))
        .route(
            "/v1/webhooks/kannel",
            get(webhooks::kannel).post(webhooks::kannel),
        )
        .route("/v1/webhooks/jasmin", post(webhooks::jasmin))
        .route("/v1/webhooks/smpp", post(webhooks::smpp));
    let open = Router::new()
        .route("/c/{code}", get(links::click).head(links::click_head))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::handler));
    let dashboard = dashboard::routes(&state);
    Router::new()
        .merge(api)
        .merge(webhooks)
        .merge(open)
        .merge(dashboard)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and
/// returns once the requests in flight are answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra.unwrap_or_default();
        body.insert("error".into(), self.message.into());
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

async fn healthz() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

async fn readyz(State(st): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(5), st.store.resolve_link("readyz")).await {
        Ok(Ok(_)) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Ok(Err(e)) => {
            let mut resp = ApiError::from(e).into_response();
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp
        }
        Err(_) => {
            let mut e = ApiError::from(StoreError::backend(
                "checking readiness",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the store did not answer within 5 seconds",
                ),
            ));
            e.status = StatusCode::SERVICE_UNAVAILABLE;
            e.into_response()
        }
    }
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
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    let mut resp = next.run(req).await;
    let status = resp.status();
    let detail = resp.extensions().get::<ErrorDetail>().map(|d| d.0.clone());
    if status.is_server_error() {
        tracing::error!(
            request_id = %id.0,
            %method,
            route = %route,
            status = status.as_u16(),
            error = detail.as_deref().unwrap_or("(no detail)"),
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
