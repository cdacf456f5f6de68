//! SMS gateways' delivery callbacks: Twilio, Kannel, Jasmin and SMPP receipts.
//!
//! Each answer comes once the status is durable (docs/rules.md, "Gateways": what each
//! gateway does with each answer). A duplicate is a `200` like a new status. A callback
//! no status can be made of is a `400` naming the field: no retry can fix it. When the
//! store cannot take it, `503`, so the gateway retries. With `?campaign_id=ID` and a
//! recipient that can be read (national numbers with `?region=CC` or
//! `--default-region`), a message not known yet is registered in that campaign (same
//! ingest call); a campaign that does not exist then is a `404` and nothing is stored.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use smsreport_core::event::{check_id, RejectionKind};
use smsreport_core::gateway::{self, Callback, LineFormat, Params, Parsed, Region};
use smsreport_core::ingest::{split_lines, Summary};
use smsreport_core::{Outcome, Rejection};

use crate::api::{query, read_body, Rejections};
use crate::auth::{ct_eq, twilio_request_ok};
use crate::redact::mask_numbers;
use crate::{json_response, now, ApiError, AppState, ErrorBody};

/// The counts of a callback's answer.
#[allow(dead_code)] // Only its schema is used: `counts` writes the answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct CallbackAnswer {
    ingested: u64,
    duplicates: u64,
}

/// Checks `?key=` when a webhook key is configured: `403` without the right one.
fn check_key(st: &AppState, q: &Params) -> Result<(), ApiError> {
    if let Some(key) = &st.cfg.webhook_key {
        let ok = q
            .get("key")
            .is_some_and(|k| ct_eq(k.as_bytes(), key.as_bytes()));
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this webhook needs ?key=KEY (the --webhook-key)",
            ));
        }
    }
    Ok(())
}

/// The `campaign_id` of the query, checked.
fn campaign_id(q: &Params) -> Result<Option<String>, ApiError> {
    match q.get("campaign_id") {
        None | Some("") => Ok(None),
        Some(c) => {
            check_id(c).map_err(|e| ApiError::bad_request(format!("campaign_id: {e}")))?;
            Ok(Some(c.to_owned()))
        }
    }
}

/// The region national recipients are read in: `?region=CC`, else `--default-region`.
fn region(st: &AppState, q: &Params) -> Result<Option<Region>, ApiError> {
    match q.get("region") {
        None | Some("") => Ok(st.cfg.default_region),
        Some(r) => Region::parse(r)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("region: {e}"))),
    }
}

/// A form body's parameters.
fn form(b: &Bytes) -> Result<Params, ApiError> {
    let text =
        std::str::from_utf8(b).map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    Params::parse(text).map_err(|r| ApiError::bad_request(r.reason))
}

/// Logs a rejected callback at `INFO`: the gateway, the reason and the callback's fields,
/// every phone number masked (`+371******01`; docs/security.md, "Logs").
fn log_rejected(gateway: &str, reason: &str, fields: &Params) {
    let fields: Vec<String> = fields
        .0
        .iter()
        .filter(|(k, _)| k != "key")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(
        gateway,
        reason = %mask_numbers(reason),
        fields = %mask_numbers(&fields.join("&")),
        "callback rejected"
    );
}

/// Ingests one callback (whose fields are `fields`); the outcome, or the answer for a
/// rejected one.
async fn ingest_one(
    st: &AppState,
    gateway: &'static str,
    fields: &Params,
    parsed: Result<Callback, Rejection>,
    campaign_id: Option<String>,
) -> Result<Outcome, ApiError> {
    let callback = match parsed {
        Ok(c) => c,
        Err(r) => {
            st.metrics.callback(gateway, &Outcome::Rejected(r.clone()));
            log_rejected(gateway, &r.reason, fields);
            count_rejected(st, campaign_id.as_deref(), &r.reason).await;
            return Err(ApiError::bad_request(r.reason));
        }
    };
    let counted_in = campaign_id.clone();
    let parsed = Parsed {
        callback,
        campaign_id,
    };
    let outcome = gateway::ingest_callbacks(&*st.store, vec![Ok(parsed)])
        .await?
        .pop()
        .unwrap_or(Outcome::Duplicate);
    st.metrics.callback(gateway, &outcome);
    if let Outcome::Rejected(r) = &outcome {
        log_rejected(gateway, &r.reason, fields);
    }
    match outcome {
        // `?campaign_id=` names no campaign: core rejected the callback before storing
        // anything of it.
        Outcome::Rejected(r) if r.kind == RejectionKind::UnknownCampaign => {
            Err(ApiError::new(StatusCode::NOT_FOUND, r.reason))
        }
        Outcome::Rejected(r) => {
            count_rejected(st, counted_in.as_deref(), &r.reason).await;
            Err(ApiError::bad_request(r.reason))
        }
        o => Ok(o),
    }
}

/// Counts a rejected callback in the campaign its URL named (docs/rules.md, "Data
/// quality"), if that campaign exists. The answer stays the rejection whatever becomes
/// of the count; a store that cannot take it is logged.
async fn count_rejected(st: &AppState, campaign_id: Option<&str>, reason: &str) {
    let Some(campaign_id) = campaign_id else {
        return;
    };
    let quality = smsreport_core::engine::Quality::rejected(reason);
    if let Err(e) = st.store.count_quality(campaign_id, quality, 1).await {
        st.metrics.store_error();
        tracing::warn!(error = %mask_numbers(&e.to_string()), "a rejected callback was not counted");
    }
}

fn counts(o: &Outcome) -> Response {
    let mut s = Summary::default();
    s.add(o);
    json_response(
        StatusCode::OK,
        &serde_json::json!({"ingested": s.ingested, "duplicates": s.duplicates}),
    )
}

/// A JSON object body's members as parameters (strings as they are, numbers and
/// booleans as their JSON text), for Twilio's `application/json` callbacks.
fn json_form(b: &Bytes) -> Result<Params, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(b)
        .map_err(|e| ApiError::bad_request(format!("the JSON body cannot be read: {e}")))?;
    let serde_json::Value::Object(members) = v else {
        return Err(ApiError::bad_request("the JSON body must be an object"));
    };
    Ok(Params(
        members
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Null => None,
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
                other => Some((k, other.to_string())),
            })
            .collect(),
    ))
}

/// `POST /v1/webhooks/twilio`: a status callback, form-encoded or JSON, signed when
/// `--twilio-auth-token` is set (`403` for a missing or wrong `X-Twilio-Signature`;
/// checked as Twilio's libraries do, with and without the URL's port, and a JSON body by
/// its `bodySHA256`).
#[utoipa::path(
    post,
    path = "/v1/webhooks/twilio",
    tag = "webhooks",
    security((), ("twilio_signature" = [])),
    params(("campaign_id" = Option<String>, Query, description = "Registers a message not yet known in this campaign (a campaign that does not exist: 404)"),
        ("region" = Option<String>, Query, description = "Reads national recipients as numbers of this region (ISO 3166-1 alpha-2); --default-region without it"),),
    request_body(description = "A Twilio status callback (MessageSid, MessageStatus, ErrorCode, To, …), at most --webhook-body-limit bytes", content(
        (Object = "application/x-www-form-urlencoded"),
        (Object = "application/json"),
    )),
    responses(
        (status = 200, description = "Stored (or a duplicate)", body = CallbackAnswer),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server (503: retry), with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn twilio(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    b: Body,
) -> Result<Response, ApiError> {
    let signature_missing = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "X-Twilio-Signature is missing or does not match this request",
        )
    };
    // The signature covers the body, but one that is missing is refused before the body
    // is read (docs/security.md).
    if st.cfg.twilio_auth_token.is_some() && !headers.contains_key("x-twilio-signature") {
        return Err(signature_missing());
    }
    let b = read_body(b, st.cfg.webhook_body_limit, st.cfg.body_timeout).await?;
    let q = query(&raw)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if let Some(token) = &st.cfg.twilio_auth_token {
        // Twilio signs the URL it was given: PUBLIC_URL + path + query.
        let url = format!(
            "{}{}",
            st.cfg.public_url,
            uri.path_and_query().map_or(uri.path(), |p| p.as_str())
        );
        let params = if json { Params::default() } else { form(&b)? };
        let body = json.then_some(&b[..]);
        let ok = headers
            .get("x-twilio-signature")
            .is_some_and(|s| twilio_request_ok(token, &url, &params.0, body, s.as_bytes()));
        if !ok {
            return Err(signature_missing());
        }
    }
    let fields = if json { json_form(&b)? } else { form(&b)? };
    let received = now();
    let o = ingest_one(
        &st,
        "twilio",
        &fields,
        gateway::twilio(&fields, received, region(&st, &q)?),
        campaign_id(&q)?,
    )
    .await?;
    Ok(counts(&o))
}

/// `GET` or `POST /v1/webhooks/kannel`: a DLR, parameters in the query (and, for `POST`,
/// a form body).
#[utoipa::path(
    method(get, post),
    path = "/v1/webhooks/kannel",
    tag = "webhooks",
    security((), ("webhook_key" = [])),
    params(
        ("key" = Option<String>, Query, description = "The --webhook-key, when one is set (else 403)"),
        ("campaign_id" = Option<String>, Query, description = "Registers a message not yet known in this campaign (a campaign that does not exist: 404)"),
        ("region" = Option<String>, Query, description = "Reads national recipients as numbers of this region (ISO 3166-1 alpha-2); --default-region without it"),
        ("id" = Option<String>, Query, description = "The message id"),
        ("type" = Option<String>, Query, description = "Kannel's DLR type (%d)"),
        ("reply" = Option<String>, Query, description = "The SMSC's receipt (%A)"),
        ("to" = Option<String>, Query, description = "The recipient (%p)"),
        ("ts" = Option<String>, Query, description = "The time, Unix seconds (%T)"),
    ),
    request_body(description = "POST: the same parameters as a form", content = Object, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Stored (or a duplicate)", body = CallbackAnswer),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server (503: retry), with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn kannel(
    State(st): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    b: Body,
) -> Result<Response, ApiError> {
    let q = query(&raw)?;
    check_key(&st, &q)?;
    let mut params = q.clone();
    if method == Method::POST {
        let b = read_body(b, st.cfg.webhook_body_limit, st.cfg.body_timeout).await?;
        params.extend(form(&b)?);
    }
    let received = now();
    let o = ingest_one(
        &st,
        "kannel",
        &params,
        gateway::kannel(&params, received, region(&st, &q)?),
        campaign_id(&q)?,
    )
    .await?;
    Ok(counts(&o))
}

/// `POST /v1/webhooks/jasmin`: an HTTP DLR; answers `ACK/Jasmin` to every DLR taken, a
/// duplicate too (Jasmin retries otherwise).
#[utoipa::path(
    post,
    path = "/v1/webhooks/jasmin",
    tag = "webhooks",
    security((), ("webhook_key" = [])),
    params(
        ("key" = Option<String>, Query, description = "The --webhook-key, when one is set (else 403)"),
        ("campaign_id" = Option<String>, Query, description = "Registers a message not yet known in this campaign"),
    ),
    request_body(description = "A Jasmin HTTP DLR (id, level, message_status, donedate, err)", content = Object, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Stored (or a duplicate): `ACK/Jasmin`, so Jasmin does not retry", content_type = "text/plain", body = String),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server (503: retry), with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn jasmin(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
    b: Body,
) -> Result<Response, ApiError> {
    let q = query(&raw)?;
    check_key(&st, &q)?;
    let b = read_body(b, st.cfg.webhook_body_limit, st.cfg.body_timeout).await?;
    let fields = form(&b)?;
    let received = now();
    ingest_one(
        &st,
        "jasmin",
        &fields,
        gateway::jasmin(&fields, received),
        campaign_id(&q)?,
    )
    .await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "ACK/Jasmin",
    )
        .into_response())
}

/// `POST /v1/webhooks/smpp`: one SMPP delivery receipt per line. Answers like
/// `/v1/events` (`{"ingested", "duplicates", "rejected": [{"line", "reason"}]}`); `400`
/// when no line was taken (an empty body, or every line rejected).
#[utoipa::path(
    post,
    path = "/v1/webhooks/smpp",
    tag = "webhooks",
    security((), ("webhook_key" = [])),
    params(("key" = Option<String>, Query, description = "The --webhook-key, when one is set (else 403)"),),
    request_body(description = "SMPP delivery receipt texts, one per line, at most --smpp-body-limit bytes", content = String, content_type = "text/plain"),
    responses(
        (status = 200, description = "The receipts taken; bad lines are listed", body = crate::api::IngestAnswer),
        (status = "4XX", description = "The client's mistake; the reason names it", body = ErrorBody),
        (status = "5XX", description = "A failure of the server (503: retry), with the request's id", body = ErrorBody),
    ),
)]
pub(crate) async fn smpp(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
    b: Body,
) -> Result<Response, ApiError> {
    let q = query(&raw)?;
    check_key(&st, &q)?;
    let b = read_body(b, st.cfg.smpp_body_limit, st.cfg.body_timeout).await?;
    if std::str::from_utf8(&b).is_err() {
        return Err(ApiError::bad_request("the body is not UTF-8 text"));
    }
    let lines = split_lines(&b);
    if lines.is_empty() {
        return Err(ApiError::bad_request(
            "the body holds no receipt (one SMPP delivery receipt per line)",
        ));
    }
    let received = now();
    let outcomes =
        gateway::ingest_callback_lines(&*st.store, LineFormat::Smpp, lines, received, None).await?;
    let mut s = Summary::default();
    // The first rejections with their line numbers, and a count (docs/security.md).
    let mut rejected = Rejections::default();
    let mut first_reason = None;
    for o in outcomes {
        s.add(&o.outcome);
        st.metrics.callback("smpp", &o.outcome);
        if let Outcome::Rejected(r) = o.outcome {
            tracing::info!(
                gateway = "smpp",
                line = o.line.number,
                reason = %mask_numbers(&r.reason),
                "callback rejected"
            );
            first_reason.get_or_insert_with(|| r.reason.clone());
            rejected.push(o.line.number, r.reason);
        }
    }
    let count = rejected.count;
    let listed = serde_json::to_value(&rejected.listed).unwrap_or_default();
    if s.ingested + s.duplicates == 0 {
        let reason = first_reason.unwrap_or_else(|| "rejected".to_owned());
        return Err(ApiError::bad_request(reason)
            .with("rejected", listed)
            .with("rejected_count", count.into()));
    }
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"ingested": s.ingested, "duplicates": s.duplicates, "rejected": listed, "rejected_count": count}),
    ))
}
