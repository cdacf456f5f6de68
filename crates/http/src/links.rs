//! Tracked links: codes, rewriting a message's text, and the `/c/{code}` redirect.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use smsreport_core::engine::CampaignDef;
use smsreport_core::event::{ClickEvent, Event};
use smsreport_core::{Store, StoreError, TrackedLink};

use crate::ratelimit::{self, ClientIp};
use crate::{now, ApiError, AppState};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Characters in a new code: 62^8 ≈ 2.2 × 10^14 codes.
pub const CODE_LEN: usize = 8;

/// A new code: [`CODE_LEN`] base62 characters from the operating system's CSPRNG,
/// uniformly drawn (bytes of 248 and over are drawn again). `None` if the CSPRNG fails.
pub fn new_code() -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < CODE_LEN {
        getrandom::getrandom(&mut buf).ok()?;
        for b in buf {
            if b < 248 && out.len() < CODE_LEN {
                out.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    Some(out)
}

/// Whether `code` could be one of ours: 7 to 64 base62 characters. Anything else is
/// answered `404` without asking the store.
fn plausible(code: &str) -> bool {
    (7..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Splits `text` at every occurrence of a link's URL, the longest URL winning where
/// several start at the same place: `Ok(piece)` is text kept, `Err(link_id)` a URL to
/// replace.
fn scan<'a>(text: &'a str, links: &'a BTreeMap<String, String>) -> Vec<Result<&'a str, &'a str>> {
    let mut out = Vec::new();
    let mut kept = 0;
    let mut i = 0;
    while i < text.len() {
        let best = links
            .iter()
            .filter(|(_, url)| !url.is_empty() && text[i..].starts_with(url.as_str()))
            .max_by_key(|(_, url)| url.len());
        match best {
            Some((id, url)) => {
                if kept < i {
                    out.push(Ok(&text[kept..i]));
                }
                out.push(Err(id.as_str()));
                i += url.len();
                kept = i;
            }
            None => {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    if kept < text.len() {
        out.push(Ok(&text[kept..]));
    }
    out
}

/// `text` with every occurrence of a link's URL (`links`: link_id → url) replaced by
/// `short(link_id)`; where URLs overlap, the longest one starting first wins.
pub fn render_text(
    text: &str,
    links: &BTreeMap<String, String>,
    short: impl Fn(&str) -> String,
) -> String {
    scan(text, links)
        .into_iter()
        .map(|p| match p {
            Ok(s) => s.to_owned(),
            Err(id) => short(id),
        })
        .collect()
}

/// Gives each (message_id, recipient, text) its text with tracked links: one code per
/// message and link, stored before the answer; a message and link that already have a
/// code keep it.
pub(crate) async fn track(
    store: &dyn Store,
    cache: &crate::linkcache::LinkCache,
    public_url: &str,
    def: &CampaignDef,
    messages: Vec<(String, String, String)>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut wanted: Vec<(String, String, String)> = Vec::new(); // message, link, recipient
    for (message_id, recipient, text) in &messages {
        let mut seen = std::collections::BTreeSet::new();
        for part in scan(text, &def.links) {
            if let Err(link_id) = part {
                if seen.insert(link_id) {
                    wanted.push((message_id.clone(), link_id.to_owned(), recipient.clone()));
                }
            }
        }
    }
    let mut codes: BTreeMap<(String, String), String> = BTreeMap::new();
    if !wanted.is_empty() {
        let mut attempts = 0;
        let stored = loop {
            let mut links = Vec::with_capacity(wanted.len());
            for (message_id, link_id, recipient) in &wanted {
                let code = new_code().ok_or_else(|| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the operating system's random number generator failed",
                    )
                })?;
                links.push(TrackedLink {
                    code,
                    campaign_id: def.campaign_id.clone(),
                    link_id: link_id.clone(),
                    message_id: message_id.clone(),
                    recipient: recipient.clone(),
                });
            }
            match store.save_links(&links).await {
                Ok(s) => break s,
                // A code already taken: draw them all again.
                Err(StoreError::Conflict(_)) if attempts < 8 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        for l in stored {
            if let Some(url) = def.links.get(&l.link_id) {
                cache.put(&l.code, url);
            }
            codes.insert((l.message_id, l.link_id), l.code);
        }
    }
    Ok(messages
        .into_iter()
        .map(|(message_id, _, text)| {
            let rendered = render_text(&text, &def.links, |link_id| {
                match codes.get(&(message_id.clone(), link_id.to_owned())) {
                    Some(code) => format!("{public_url}/c/{code}"),
                    None => def.links.get(link_id).cloned().unwrap_or_default(),
                }
            });
            (message_id, rendered)
        })
        .collect())
}

/// Where a code leads: its link and URL from the store, or, while the store is down,
/// only the URL this process remembers for it (the click is then spooled).
enum Target {
    Link(TrackedLink, String),
    Remembered(std::sync::Arc<str>),
}

/// Where a code leads; `404` for an unknown code, `429` for a client address that asked
/// for too many unknown codes (docs/security.md, "Rate limits"). When the store fails, a
/// code whose URL this process remembers is still redirected if there is a click spool;
/// otherwise the answer is a bare `503` (the details are logged).
async fn target(st: &AppState, ip: Option<IpAddr>, code: &str) -> Result<Target, Response> {
    if let Some(secs) = st.unknown_codes.blocked(ip) {
        return Err(ratelimit::too_many("unknown links", secs));
    }
    let unknown = || {
        st.unknown_codes.failed(ip);
        ApiError::new(StatusCode::NOT_FOUND, "no such link").into_response()
    };
    if !plausible(code) {
        return Err(unknown());
    }
    let link = match st.store.resolve_link(code).await {
        Ok(Some(l)) => l,
        Ok(None) => return Err(unknown()),
        Err(e) => return remembered(st, code, &e).ok_or_else(|| crate::store_unavailable(e)),
    };
    let url = match st.store.totals(&link.campaign_id).await {
        Ok(t) => t.and_then(|t| t.def.links.get(&link.link_id).cloned()),
        Err(e) => return remembered(st, code, &e).ok_or_else(|| crate::store_unavailable(e)),
    };
    match url {
        Some(u) => {
            st.links.put(code, &u);
            Ok(Target::Link(link, u))
        }
        None => Err(unknown()),
    }
}

/// The URL this process remembers for `code`, when the store failed with `e` and there is
/// a click spool to keep the click in.
fn remembered(st: &AppState, code: &str, e: &StoreError) -> Option<Target> {
    st.cfg.click_spool.as_ref()?;
    let url = st.links.get(code)?;
    st.metrics.store_error();
    tracing::warn!(
        error = %crate::redact::mask_numbers(&smsreport_core::causes::with_causes(e)),
        "the store failed to resolve a tracked link; redirecting to the URL remembered for it"
    );
    Some(Target::Remembered(url))
}

fn redirect(url: &str) -> Response {
    // A campaign link's url has no space or control character (docs/events.md, `campaign`); its bytes go
    // out as they are.
    match HeaderValue::from_bytes(url.as_bytes()) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
        )
            .into_response(),
        Err(_) => ApiError::new(StatusCode::NOT_FOUND, "no such link").into_response(),
    }
}

/// `GET /c/{code}`: records the click and redirects to the link's URL. The click is
/// recorded before the answer; if the store fails to record it, it is kept in the click
/// spool (when there is one) and the visitor is still sent on (crate::spool).
#[utoipa::path(
    get,
    path = "/c/{code}",
    tag = "links",
    params(("code" = String, Path, description = "A tracked link's code: 8 base62 characters")),
    responses(
        (status = 302, description = "To the link's URL as registered; the click is recorded first", headers(("location" = String))),
        (status = 404, description = "No such code", body = crate::ErrorBody),
        (status = 429, description = "Too many unknown codes from this address", body = crate::ErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::ErrorBody),
    ),
)]
pub(crate) async fn click(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(code)) = code else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such link").into_response();
    };
    let target = match target(&st, ip, &code).await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let user_agent = headers.get(header::USER_AGENT).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(1024)
            .collect::<String>()
    });
    let at = now();
    let (url, failure) = match target {
        Target::Link(link, url) => {
            let event = Event::Click(ClickEvent {
                campaign_id: link.campaign_id,
                link_id: link.link_id,
                recipient: link.recipient,
                at,
                user_agent: user_agent.clone(),
                event_id: None,
            });
            match st.store.ingest(std::slice::from_ref(&event)).await {
                Ok(_) => {
                    st.metrics.click();
                    (url, None)
                }
                Err(e) => {
                    st.metrics.store_error();
                    (url, Some(smsreport_core::causes::with_causes(&e)))
                }
            }
        }
        Target::Remembered(url) => (url.to_string(), Some("the store is down".to_owned())),
    };
    if let Some(why) = failure {
        spool(&st, &code, at, user_agent, &why).await;
    }
    redirect(&url)
}

/// Keeps a click the store did not take in the click spool, or logs it as lost.
async fn spool(
    st: &AppState,
    code: &str,
    at: smsreport_core::Millis,
    user_agent: Option<String>,
    why: &str,
) {
    let why = crate::redact::mask_numbers(why);
    let Some(spool) = &st.cfg.click_spool else {
        tracing::error!(code = %code, error = %why, "a click was not recorded (no click spool)");
        return;
    };
    match spool.keep(code, at, user_agent).await {
        Ok(()) => tracing::warn!(
            code = %code,
            error = %why,
            "the store did not take a click; it is kept in the click spool"
        ),
        Err(e) => tracing::error!(
            code = %code,
            error = %why,
            spool_error = %e,
            "a click was not recorded, and the click spool could not keep it"
        ),
    }
}

/// `HEAD /c/{code}`: the same answer, nothing recorded.
#[utoipa::path(
    head,
    path = "/c/{code}",
    tag = "links",
    params(("code" = String, Path, description = "A tracked link's code")),
    responses(
        (status = 302, description = "As GET, nothing recorded", headers(("location" = String))),
        (status = 404, description = "No such code"),
    ),
)]
pub(crate) async fn click_head(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path(code)) = code else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such link").into_response();
    };
    match target(&st, ip, &code).await {
        Ok(Target::Link(_, url)) => redirect(&url),
        Ok(Target::Remembered(url)) => redirect(&url),
        Err(resp) => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_base62_and_differ() {
        let a = new_code().unwrap();
        let b = new_code().unwrap();
        assert_eq!(a.len(), CODE_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(plausible(&a));
        assert!(!plausible("abc"));
        assert!(!plausible("abcdefg/"));
        assert!(!plausible("..%2Fevil"));
    }

    #[test]
    fn rendering_prefers_the_longest_url() {
        let links: BTreeMap<String, String> = [
            ("sale".to_owned(), "https://shop.example/sale".to_owned()),
            (
                "shoes".to_owned(),
                "https://shop.example/sale/shoes".to_owned(),
            ),
        ]
        .into();
        let text = "Sale! https://shop.example/sale/shoes and https://shop.example/sale. Ünï https://shop.example/sale";
        let got = render_text(text, &links, |id| format!("<{id}>"));
        assert_eq!(got, "Sale! <shoes> and <sale>. Ünï <sale>");
        assert_eq!(render_text("no links", &links, |id| id.into()), "no links");
    }
}
