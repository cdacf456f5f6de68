//! Per-address limits on failures (docs/security.md, "Rate limits"): failed
//! authentications and unknown `/c/` codes, counted per client address in windows of one
//! minute. An address over its limit is answered `429` until its window ends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(60);
/// The most addresses remembered; past it, windows that ended are forgotten, and if none
/// has, every address is.
const MAX_ADDRESSES: usize = 100_000;

/// Failures per client address.
#[derive(Debug)]
pub(crate) struct PerIp {
    /// Failures allowed per window; 0: no limit.
    limit: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PerIp {
    pub fn new(limit: u32) -> PerIp {
        PerIp {
            limit,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The seconds until `ip` may try again, if it is over the limit now.
    pub fn blocked(&self, ip: Option<IpAddr>) -> Option<u64> {
        let ip = ip?;
        if self.limit == 0 {
            return None;
        }
        let seen = self.seen.lock().ok()?;
        let (start, n) = seen.get(&ip)?;
        let age = start.elapsed();
        (age < WINDOW && *n >= self.limit).then(|| (WINDOW - age).as_secs().max(1))
    }

    /// Counts one failure of `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if self.limit == 0 {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = Instant::now();
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&ip) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if seen.len() >= MAX_ADDRESSES {
                seen.clear();
            }
        }
        let e = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

/// The client's address, when the server put it on the request.
pub(crate) fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address as an extractor (`None` when the router runs without
/// [`crate::serve_with`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientIp, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `429` with `Retry-After`.
pub(crate) fn too_many(what: &str, retry_after: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many {what} from this address; try again in {retry_after} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Middleware around a guarded route: an address over its limit of failed
/// authentications is answered `429`; a `401` or `403` answer counts as a failure and is
/// logged (the address and the route, never the credentials).
pub(crate) async fn limit_auth_failures(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let ip = client_ip(&req);
    if let Some(secs) = st.auth_failures.blocked(ip) {
        return too_many("failed authentications", secs);
    }
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if matches!(
        resp.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        st.auth_failures.failed(ip);
        tracing::warn!(
            client = %ip.map_or_else(|| "unknown".to_owned(), |i| i.to_string()),
            path = %crate::redact::mask_numbers(&path.chars().take(200).collect::<String>()),
            status = resp.status().as_u16(),
            "authentication failed"
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_limit_is_blocked_alone() {
        let p = PerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        p.failed(Some(a));
        assert_eq!(p.blocked(Some(a)), None);
        p.failed(Some(a));
        assert!(p.blocked(Some(a)).is_some());
        assert_eq!(p.blocked(Some(b)), None);
        assert_eq!(p.blocked(None), None);
        let off = PerIp::new(0);
        for _ in 0..10 {
            off.failed(Some(a));
        }
        assert_eq!(off.blocked(Some(a)), None);
    }
}
