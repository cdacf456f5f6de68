//! `/v1/events`, the campaign list, reports, the recipients drill-down, and message
//! registration.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Serialize;
use smsreport_core::event::{check_id, Event, MessageEvent, RejectionKind};
use smsreport_core::gateway::Params;
use smsreport_core::ingest::{ingest_events, split_lines, Summary};
use smsreport_core::insights::{InsightOptions, RecipientFilter, DEFAULT_STALE_AFTER_H};
use smsreport_core::report::RecipientQuery;
use smsreport_core::tz::Zone;
use smsreport_core::{Millis, Outcome, Row};

use crate::links;
use crate::{json_response, now, ApiError, AppState, ErrorBody, MAX_REJECTIONS_LISTED};

/// Lines per store call: a big body is ingested in several durable steps.
const BATCH_LINES: usize = 2_000;

/// Reads a request's body: `413` over `limit` bytes (as soon as the limit is passed, or
/// at once when `Content-Length` says so), `408` when it has not arrived in whole within
/// `timeout` (docs/security.md), `400` when it cannot be read.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the limit of {limit} bytes"),
        )
    };
    let limited = http_body_util::Limited::new(body, limit);
    if http_body::Body::size_hint(&limited)
        .exact()
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "could not read the body: {e}"
        ))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} s", timeout.as_secs_f64()),
        )),
    }
}

/// The query string's parameters.
pub(crate) fn query(q: &Option<String>) -> Result<Params, ApiError> {
    Params::parse(q.as_deref().unwrap_or(""))
        .map_err(|r| ApiError::bad_request(format!("query: {r}")))
}

/// A rejected line: its number (from 1) and why.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RejectedLine {
    line: u64,
    reason: String,
}

/// The rejected lines of an answer: the first [`MAX_REJECTIONS_LISTED`] with their line
/// numbers, and how many there were in all (docs/security.md).
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    pub listed: Vec<RejectedLine>,
    pub count: u64,
}

impl Rejections {
    pub fn push(&mut self, line: u64, reason: String) {
        self.count += 1;
        if self.listed.len() < MAX_REJECTIONS_LISTED {
            self.listed.push(RejectedLine { line, reason });
        }
    }
}

impl std::fmt::Debug for RejectedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What an ingest took.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IngestAnswer {
    ingested: u64,
    duplicates: u64,
    /// At most [`MAX_REJECTIONS_LISTED`].
    rejected: Vec<RejectedLine>,
    /// Every rejected line.
    rejected_count: u64,
}

/// `POST /v1/events`: NDJSON in; counts and rejected lines out, once durable.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "api",
    security(("bearer" = [])),
    request_body(content = String, content_type = "application/x-ndjson", description = "One event per line (docs/events.md); at most --body-limit bytes"),
    responses(
        (status = 200, description = "Ingested and durable; bad lines are listed, not refused", body = IngestAnswer),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn events(State(st): State<AppState>, b: Body) -> Result<Response, ApiError> {
    let b = read_body(b, st.cfg.body_limit, st.cfg.body_timeout).await?;
    if let Err(e) = std::str::from_utf8(&b) {
        return Err(ApiError::bad_request(format!(
            "the body is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    let lines = split_lines(&b);
    drop(b);
    let mut summary = Summary::default();
    let mut rejected = Rejections::default();
    // Batches taken off one iterator: each line is moved once, whatever the body's size.
    let mut lines = lines.into_iter();
    loop {
        let batch: Vec<_> = lines.by_ref().take(BATCH_LINES).collect();
        if batch.is_empty() {
            break;
        }
        let outcomes = ingest_events(&*st.store, batch).await;
        let outcomes = match outcomes {
            Ok(o) => o,
            Err(e) => {
                st.metrics.events(&summary);
                let done = summary;
                return Err(ApiError::from(e)
                    .with("ingested_before_failure", done.ingested.into())
                    .with("duplicates_before_failure", done.duplicates.into()));
            }
        };
        for o in outcomes {
            summary.add(&o.outcome);
            if let Outcome::Rejected(r) = o.outcome {
                rejected.push(o.line.number, r.reason);
            }
        }
    }
    st.metrics.events(&summary);
    Ok(json_response(
        StatusCode::OK,
        &IngestAnswer {
            ingested: summary.ingested,
            duplicates: summary.duplicates,
            rejected_count: rejected.count,
            rejected: rejected.listed,
        },
    ))
}

/// `GET /v1/campaigns`.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "api",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The campaigns, newest first: campaign_id, name, created_at, total, delivered, total_clicks", body = Vec<Object>),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn campaigns(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, &st.store.campaigns().await?))
}

/// The insights' options of a query (docs/rules.md, "Insights"): `?as_of=` an RFC 3339
/// time (now when absent), `?stale_after_h=` whole hours from 1 to 8760 (72 when
/// absent); a bad value is a `400` naming the parameter.
pub(crate) fn insight_options(q: &Params) -> Result<InsightOptions, ApiError> {
    let mut opts = InsightOptions::now();
    if let Some(t) = q.get("as_of") {
        opts.as_of = Millis::parse(t).map_err(|e| {
            ApiError::bad_request(format!(
                "as_of: {e} (an RFC 3339 time; write + as %2B in a URL)"
            ))
        })?;
    }
    if let Some(h) = q.get("stale_after_h") {
        opts.stale_after_h = InsightOptions::parse_stale_after(h).map_err(ApiError::bad_request)?;
    }
    Ok(opts)
}

/// `GET /v1/campaigns/{id}/report?format=json|csv&tz=Area/City&as_of=TIME&stale_after_h=H`.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/report",
    tag = "api",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The campaign's id"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
        ("tz" = Option<String>, Query, description = "Clicks per month in this IANA time zone; UTC without it"),
        ("as_of" = Option<String>, Query, description = "Insights as of this RFC 3339 time (+ written %2B); now without it"),
        ("stale_after_h" = Option<u32>, Query, description = "Waiting this many hours or more is stale (1 to 8760, default 72)"),
    ),
    responses(
        (status = 200, description = "The report, field for field as docs/rules.md (\"The report\") describes it", content(
            (Object = "application/json"),
            (String = "text/csv"),
        )),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn report(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(&q)?;
    let csv = match q.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format: {other:?} is not a report format (json or csv)"
            )))
        }
    };
    let opts = insight_options(&q)?;
    let report = match q.get("tz") {
        None => st.store.report_at(&id, opts, None).await?,
        Some(name) => {
            let zone = Zone::get(name).map_err(|e| ApiError::bad_request(format!("tz: {e}")))?;
            st.store
                .report_at(&id, opts, Some(&move |t| zone.offset_minutes(t)))
                .await?
        }
    };
    if !csv {
        return Ok(json_response(StatusCode::OK, &report));
    }
    let mut out = Vec::new();
    smsreport_core::csv::report_csv(&report, &mut out)
        .map_err(|e| ApiError::internal("the report could not be written", e.to_string()))?;
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-report.csv\"",
        report.campaign_id
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    )
        .into_response())
}

/// `GET /v1/campaigns/{id}/recipients?status=ROW&limit=N&after=CURSOR`.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/recipients",
    tag = "api",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The campaign's id"),
        crate::openapi::RecipientFilters,
        ("limit" = Option<usize>, Query, description = "Messages per page, 1 to 10000 (default 1000)"),
        ("after" = Option<String>, Query, description = "The `next` cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of messages (docs/rules.md, \"Recipients drill-down\"): {\"items\": […], \"next\": CURSOR or null}", body = Object),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn recipients(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(&q)?;
    let row = match q.get("status") {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<Row>()
                .map_err(|e| ApiError::bad_request(format!("status: {e}")))?,
        ),
    };
    let limit = match q.get("limit") {
        None | Some("") => 1000,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit: {s:?} is not a number from 1 to 10000"
                )))
            }
        },
    };
    let query = RecipientQuery {
        row,
        after: q.get("after").filter(|a| !a.is_empty()).map(str::to_owned),
        limit,
    };
    let filter = recipient_filter(&q)?;
    Ok(json_response(
        StatusCode::OK,
        &st.store.recipients_filtered(&id, &query, &filter).await?,
    ))
}

/// The drill-down's insight filters from `?stale=true`, `?age=`, `?country=`, with ages
/// as of `?as_of=` (now without it) and stale after `?stale_after_h=` (72); a bad value
/// is a `400` naming the parameter.
pub(crate) fn recipient_filter(q: &Params) -> Result<RecipientFilter, ApiError> {
    let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let as_of = match nonempty("as_of") {
        None => Millis::now(),
        Some(s) => Millis::parse(s).map_err(|e| ApiError::bad_request(format!("as_of: {e}")))?,
    };
    let stale_after_h = match nonempty("stale_after_h") {
        None => DEFAULT_STALE_AFTER_H,
        Some(s) => InsightOptions::parse_stale_after(s).map_err(ApiError::bad_request)?,
    };
    let stale = match nonempty("stale") {
        None | Some("false") => false,
        Some("true") => true,
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "stale: {s:?} is not true or false"
            )))
        }
    };
    RecipientFilter::from_options(
        stale,
        nonempty("age"),
        nonempty("country"),
        InsightOptions {
            as_of,
            stale_after_h,
        },
    )
    .map_err(ApiError::bad_request)
}

/// The answer of a registration.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MessagesOut {
    messages: Vec<MessageOut>,
}

/// The `409` of a registration: an error, the messages refused and those registered.
#[allow(dead_code)] // Only its schema is used; the answer is built by ApiError::with.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MessagesConflict {
    error: String,
    rejected: Vec<MessageRejected>,
    messages: Vec<MessageOut>,
}

/// The most messages one registration request may hold.
pub const MAX_MESSAGES: usize = 10_000;

/// Messages to register.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct MessagesIn {
    messages: Vec<MessageIn>,
}

/// One message to register.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct MessageIn {
    message_id: String,
    /// E.164.
    recipient: String,
    /// The text; a campaign link in it becomes a tracked link.
    text: String,
    /// Segments, 1 to 255 (1 when absent).
    #[schema(value_type = Option<u32>)]
    parts: Option<serde_json::Value>,
}

/// A registered message's text, with tracked links.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MessageOut {
    message_id: String,
    text: String,
}

/// A message not registered, and why.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MessageRejected {
    message_id: String,
    reason: String,
}

/// `POST /v1/campaigns/{id}/messages`: registers messages (a `message` event each, at
/// the current time) and answers their texts with campaign links made tracked links.
///
/// The whole body is checked first: one bad message is a `400` and nothing is stored.
/// A message the store refuses (its id is already another campaign's or recipient's)
/// is left out of the answer and the answer is `409`, naming it; the others are
/// registered. Registering the same message again gives the same short URLs.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/messages",
    tag = "api",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    request_body(content = MessagesIn, description = "At most 10000 messages"),
    responses(
        (status = 200, description = "Registered; their texts with tracked links", body = MessagesOut),
        (status = 409, description = "Some messages were not registered (`rejected`); the others were (`messages`)", body = MessagesConflict),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn messages(
    State(st): State<AppState>,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let b = read_body(b, st.cfg.body_limit, st.cfg.body_timeout).await?;
    let input: MessagesIn =
        serde_json::from_slice(&b).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if input.messages.len() > MAX_MESSAGES {
        return Err(ApiError::bad_request(format!(
            "messages: at most {MAX_MESSAGES} per request, not {}",
            input.messages.len()
        )));
    }
    let no_campaign = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("campaign_id: no campaign named {id:?}"),
        )
    };
    // The path's id is no campaign's if it breaks the identifier rule.
    check_id(&id).map_err(|_| no_campaign())?;
    let at = now();
    let mut events = Vec::with_capacity(input.messages.len());
    for (i, m) in input.messages.iter().enumerate() {
        let event = MessageEvent::checked(&m.message_id, &id, &m.recipient, m.parts.as_ref(), at)
            .map_err(|r| ApiError::bad_request(format!("messages[{i}].{}", r.reason)))?;
        events.push(Event::Message(event));
    }
    let outcomes = if events.is_empty() {
        Vec::new()
    } else {
        st.store.ingest(&events).await?
    };
    let mut summary = Summary::default();
    outcomes.iter().for_each(|o| summary.add(o));
    st.metrics.events(&summary);
    // Every message names the same campaign: if one was refused for naming no campaign,
    // the request is about no campaign.
    if let Some(r) = outcomes.iter().find_map(|o| match o {
        Outcome::Rejected(r) if r.kind == RejectionKind::UnknownCampaign => Some(r),
        _ => None,
    }) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, r.reason.clone()));
    }
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (m, o) in input.messages.into_iter().zip(outcomes) {
        match o {
            Outcome::Rejected(r) => rejected.push(MessageRejected {
                message_id: m.message_id,
                reason: r.reason,
            }),
            _ => accepted.push(m),
        }
    }
    // Read after the ingest, which decided the campaign exists when there were messages;
    // with none, this is what says so.
    let totals = st.store.totals(&id).await?.ok_or_else(no_campaign)?;
    let texts = if totals.def.link_tracking {
        let pairs: Vec<(String, String, String)> = accepted
            .into_iter()
            .map(|m| (m.message_id, m.recipient, m.text))
            .collect();
        links::track(
            &*st.store,
            &st.links,
            &st.cfg.public_url,
            &totals.def,
            pairs,
        )
        .await?
    } else {
        accepted
            .into_iter()
            .map(|m| (m.message_id, m.text))
            .collect()
    };
    let out: Vec<MessageOut> = texts
        .into_iter()
        .map(|(message_id, text)| MessageOut { message_id, text })
        .collect();
    if rejected.is_empty() {
        return Ok(json_response(
            StatusCode::OK,
            &MessagesOut { messages: out },
        ));
    }
    let n = rejected.len();
    Err(ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "{n} message{} not registered (see \"rejected\"); the others were",
            if n == 1 { " was" } else { "s were" }
        ),
    )
    .with(
        "rejected",
        serde_json::to_value(&rejected).unwrap_or_default(),
    )
    .with("messages", serde_json::to_value(&out).unwrap_or_default()))
}

/// `GET /v1/export`: the store as `smsreport export` writes it (docs/events.md, "Export"),
/// streamed a page at a time: nothing is buffered beyond one page. A store failure after
/// the first bytes ends the body early (the client sees a cut connection, never a
/// shorter export passed off as whole), and is logged.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "api",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole store as NDJSON events (docs/events.md, \"Export\"), streamed; a failure midway cuts the body", content_type = "application/x-ndjson", body = String),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub async fn export(State(st): State<AppState>) -> Response {
    use futures_util::stream;
    use smsreport_core::export::Export;
    let body = stream::unfold(Some(Export::new(st.store.clone())), |ex| async move {
        let mut ex = ex?;
        match ex.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), Some(ex))),
            Ok(None) => {
                tracing::info!(lines = ex.lines(), "export streamed");
                None
            }
            Err(e) => {
                tracing::error!(error = %crate::redact::mask_numbers(&smsreport_core::causes::with_causes(&e)), "export failed midway");
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// `DELETE /v1/recipients/{E164}`: forgets a person (docs/rules.md, "Forgetting a
/// person") and answers what changed: `{"messages", "contacts", "clicks",
/// "tracked_links"}`, all 0 for a number the store does not hold. Not E.164: `400`.
#[utoipa::path(
    delete,
    path = "/v1/recipients/{number}",
    tag = "api",
    security(("bearer" = [])),
    params(("number" = String, Path, description = "An E.164 number, + written %2B")),
    responses(
        (status = 200, description = "What changed (docs/rules.md, \"Forgetting a person\"): {\"messages\", \"contacts\", \"clicks\", \"tracked_links\"}, all 0 for a number the store does not hold", body = Object),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server, with the request's id", body = ErrorBody),
    ),
)]
pub async fn forget(
    State(st): State<AppState>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    if !smsreport_core::event::is_e164(&number) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "recipient: not an E.164 phone number (+, then 7 to 15 digits, not starting with 0; write + as %2B)",
        ));
    }
    let f = st.store.forget_number(&number).await?;
    tracing::info!(
        number = %smsreport_core::forget::masked(&number),
        messages = f.messages,
        contacts = f.contacts,
        clicks = f.clicks,
        tracked_links = f.tracked_links,
        "forgot a person"
    );
    Ok(json_response(StatusCode::OK, &f))
}
