//! smsreport's HTTP service (SPEC §7): the ingest API, campaign reports, message
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
//! Guarantees, route by route, are in SPEC §7 and the README; those worth repeating:
//!
//! - a `200` from `POST /v1/events` or a webhook means the events are durable (the store's
//!   `ingest` returned);
//! - a client's mistake is a `4xx` with a JSON body `{"error": "…"}`, never a `500`;
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
mod links;
pub mod metrics;
mod webhooks;

pub use auth::{require_basic_auth, twilio_signature};
pub use links::{new_code, render_text};

/// The default body limit: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;

/// How the service is set up (SPEC §7's `serve` options).
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
    pub message: String,
    /// Extra members of the JSON body.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    store_failure: bool,
}

/// Marks a response caused by a failing store, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreFailure;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            extra: None,
            store_failure: false,
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
        let (status, store_failure) = match &e {
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, false),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, false),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, false),
            StoreError::Corrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, true),
            _ => (StatusCode::SERVICE_UNAVAILABLE, true),
        };
        let message = smsreport_core::causes::with_causes(&e);
        ApiError {
            status,
            message,
            extra: None,
            store_failure,
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
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            format!("{{\"error\":{:?}}}\n", e.to_string()),
        )
            .into_response(),
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
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store did not answer within 5 seconds",
        )
        .into_response(),
    }
}

/// Counts every request, and makes every error answer that is not a dashboard page JSON
/// (axum's own 404, 405 and extractor rejections are plain text or empty).
async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().clone();
    let mut resp = next.run(req).await;
    let status = resp.status();
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
        let body = format!("{}\n", serde_json::json!({ "error": reason }));
        resp.headers_mut().remove(header::CONTENT_LENGTH);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        *resp.body_mut() = axum::body::Body::from(body);
    }
    st.metrics.request(
        &route,
        method.as_str(),
        status.as_u16(),
        resp.extensions().get::<StoreFailure>().is_some(),
    );
    resp
}
