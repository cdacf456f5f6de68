//! SMS gateways' own formats (SPEC §3, §7) turned into canonical status events.
//!
//! Each parser takes one callback or receipt and the time it was received (this crate
//! has no clock) and returns a [`Callback`] — a [`StatusEvent`], plus the recipient when
//! the callback names one — or a [`Rejection`] whose reason names the gateway's field.
//!
//! | gateway | input | parser |
//! | --- | --- | --- |
//! | SMPP v3.4 delivery receipt | its text (`id:… stat:… done date:…`) | [`smpp_receipt`] |
//! | Kannel DLR | `type`, `id`, `reply`, `to`, `ts` parameters | [`kannel`] |
//! | Jasmin HTTP DLR | `id`, `level`, `message_status`, `donedate`, `err` fields | [`jasmin`] |
//! | Twilio status callback | `MessageSid`, `MessageStatus`, `ErrorCode`, `To`, `RawDlrDoneDate` | [`twilio`] |
//!
//! Parameters arrive form-encoded (a query string or an
//! `application/x-www-form-urlencoded` body); [`Params::parse`] decodes them.
//!
//! [`Callback::events`] makes the events to ingest, registering the message in a campaign
//! first when asked to (`?campaign_id=`); [`ingest_lines`] does the whole job for
//! line-oriented input (`smsreport ingest --format smpp|kannel|jasmin|twilio`, the SMPP
//! webhook).

use std::collections::BTreeMap;

use crate::engine::Outcome;
use crate::event::{check_id, is_e164, Event, MessageEvent, Rejection, StatusEvent};
use crate::ingest::{Line, LineOutcome};
use crate::status::{Status, StatusKey};
use crate::store::{Store, StoreError};
use crate::time::Millis;

/// One gateway callback, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The status it reports.
    pub status: StatusEvent,
    /// The recipient it names (Twilio `To`, Kannel `to`), in E.164 form.
    pub recipient: Option<String>,
}

impl Callback {
    fn status_only(status: StatusEvent) -> Callback {
        Callback {
            status,
            recipient: None,
        }
    }

    /// The events to ingest for this callback, in order.
    ///
    /// With a `campaign_id` and a recipient, a `message` event (that campaign, the
    /// recipient, `at` = `received`, 1 part) comes before the status, so that a gateway's
    /// callbacks alone fill a campaign. For a message already known, that event is a
    /// duplicate (same campaign and recipient) or rejected (another one) and the status
    /// applies as usual.
    pub fn events(&self, campaign_id: Option<&str>, received: Millis) -> Vec<Event> {
        let mut out = Vec::with_capacity(2);
        if let (Some(campaign_id), Some(recipient)) = (campaign_id, &self.recipient) {
            out.push(Event::Message(MessageEvent {
                message_id: self.status.message_id.clone(),
                campaign_id: campaign_id.to_owned(),
                recipient: recipient.clone(),
                parts: 1,
                at: received,
            }));
        }
        out.push(Event::Status(self.status.clone()));
        out
    }
}

/// Decoded form parameters (`a=1&b=x+y%21`), in order. A name given twice keeps both
/// values; [`Params::get`] answers the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Decodes `application/x-www-form-urlencoded` text: pairs split at `&`, name and
    /// value at the first `=`, `+` is a space, `%XX` a byte (a `%` not followed by two hex
    /// digits stays as it is). A leading `?` is dropped. Decoded bytes must be UTF-8.
    pub fn parse(text: &str) -> Result<Params, Rejection> {
        let text = text.strip_prefix('?').unwrap_or(text);
        let mut out = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value).map_err(|r| Rejection::new(format!("{name}: {r}")))?;
            out.push((name, value));
        }
        Ok(Params(out))
    }

    /// The first value of `name` (exact, case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` that is not empty.
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Adds the pairs of `other` after these.
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str) -> Result<String, Rejection> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|e| {
        Rejection::new(format!(
            "not UTF-8 once decoded (invalid byte at {})",
            e.utf8_error().valid_up_to() + 1
        ))
    })
}

fn field(name: &str, problem: impl std::fmt::Display) -> Rejection {
    Rejection::new(format!("{name}: {problem}"))
}

fn quoted(s: &str) -> String {
    if s.chars().count() <= 60 {
        format!("{s:?}")
    } else {
        format!("{:?}…", s.chars().take(57).collect::<String>())
    }
}

/// A gateway's message id, checked against the identifier rule of SPEC §2.
fn message_id(name: &str, v: Option<&str>) -> Result<String, Rejection> {
    let v = v.ok_or_else(|| field(name, "missing"))?;
    check_id(v).map_err(|p| field(name, p))?;
    Ok(v.to_owned())
}

/// An error code: empty is none; only zeros is none where `zeros_none`; at most 64
/// characters.
fn error_code(name: &str, v: Option<&str>, zeros_none: bool) -> Result<Option<String>, Rejection> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if zeros_none && v.bytes().all(|b| b == b'0') {
        return Ok(None);
    }
    let n = v.chars().count();
    if n > 64 {
        return Err(field(
            name,
            format_args!("must be at most 64 characters, not {n}"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// `YYMMDDhhmm` or `YYMMDDhhmmss` in UTC, years 2000–2099.
pub fn parse_short_date(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if !(b.len() == 10 || b.len() == 12) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let sec = if b.len() == 12 { two(10) } else { 0 };
    if two(6) > 23 || two(8) > 59 || sec > 59 {
        return None;
    }
    Millis::from_utc(
        2000 + i64::from(two(0)),
        two(2),
        two(4),
        two(6),
        two(8),
        sec,
        0,
    )
}

fn short_date(name: &str, v: &str) -> Result<Millis, Rejection> {
    parse_short_date(v).ok_or_else(|| {
        field(
            name,
            format_args!(
                "{} is not a date (YYMMDDhhmm or YYMMDDhhmmss, UTC)",
                quoted(v)
            ),
        )
    })
}

/// The canonical status of an SMPP receipt's `stat` (matched ignoring case): `DELIVRD`
/// delivered, `ACCEPTD` sent, `ENROUTE` enroute, `EXPIRED` failed_expired, `DELETED` and
/// `REJECTD` failed_rejected, `UNDELIV` failed_routing, anything else unknown.
pub fn smpp_stat(stat: &str) -> Status {
    match stat.to_ascii_uppercase().as_str() {
        "DELIVRD" => Status::Delivered,
        "ACCEPTD" => Status::Sent,
        "ENROUTE" => Status::Enroute,
        "EXPIRED" => Status::FailedExpired,
        "DELETED" | "REJECTD" => Status::FailedRejected,
        "UNDELIV" => Status::FailedRouting,
        _ => Status::Unknown,
    }
}

/// The fields of an SMPP receipt text, names in lower case (`submit date`, `done date`
/// keep their space). `text` is the rest of the line. A field other than `text` given
/// twice is an error; words without a colon are ignored.
fn receipt_fields(text: &str) -> Result<BTreeMap<String, &str>, Rejection> {
    let mut out: BTreeMap<String, &str> = BTreeMap::new();
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |c: u8| c == b' ' || c == b'\t';
    while i < b.len() {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut end = i;
        while end < b.len() && !ws(b[end]) {
            end += 1;
        }
        let word = &text[i..end];
        // "submit date:" and "done date:" hold a space.
        if word.eq_ignore_ascii_case("submit") || word.eq_ignore_ascii_case("done") {
            let mut j = end;
            while j < b.len() && ws(b[j]) {
                j += 1;
            }
            if b.len() >= j + 5 && b[j..j + 5].eq_ignore_ascii_case(b"date:") {
                let mut k = j + 5;
                while k < b.len() && !ws(b[k]) {
                    k += 1;
                }
                let name = format!("{} date", word.to_ascii_lowercase());
                insert(&mut out, name, &text[j + 5..k])?;
                i = k;
                continue;
            }
        }
        if let Some(colon) = word.find(':') {
            let name = word[..colon].to_ascii_lowercase();
            if name == "text" {
                out.insert(name, &text[i + colon + 1..]);
                break;
            }
            insert(&mut out, name, &word[colon + 1..])?;
        }
        i = end;
    }
    Ok(out)
}

fn insert<'a>(
    out: &mut BTreeMap<String, &'a str>,
    name: String,
    value: &'a str,
) -> Result<(), Rejection> {
    if matches!(name.as_str(), "id" | "stat" | "err" | "done date") && out.contains_key(&name) {
        return Err(field(&name, "given twice"));
    }
    out.entry(name).or_insert(value);
    Ok(())
}

/// What a receipt says about a status: `stat`, `err` and `done date`.
struct ReceiptStatus {
    status: Status,
    error_code: Option<String>,
    done: Option<Millis>,
}

fn receipt_status(f: &BTreeMap<String, &str>) -> Result<Option<ReceiptStatus>, Rejection> {
    let Some(stat) = f.get("stat").copied() else {
        return Ok(None);
    };
    if stat.is_empty() {
        return Err(field("stat", "empty"));
    }
    let done = match f.get("done date").copied().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(short_date("done date", d)?),
    };
    Ok(Some(ReceiptStatus {
        status: smpp_stat(stat),
        error_code: error_code("err", f.get("err").copied(), true)?,
        done,
    }))
}

/// An SMPP v3.4 delivery receipt's text (SPEC §3): `id` is the message id, `stat` the
/// status, `err` the error code (only zeros: none), `done date` the time (UTC; without
/// one, `received`). Field names are matched ignoring case, in any order; `id` and `stat`
/// are required, unknown fields are ignored, `text` is the rest of the line.
pub fn smpp_receipt(text: &str, received: Millis) -> Result<StatusEvent, Rejection> {
    let f = receipt_fields(text)?;
    let message_id = message_id("id", f.get("id").copied())?;
    let r = receipt_status(&f)?.ok_or_else(|| field("stat", "missing"))?;
    Ok(StatusEvent {
        message_id,
        key: StatusKey {
            status: r.status,
            at: r.done.unwrap_or(received),
            error_code: r.error_code,
        },
    })
}

/// A recipient as a gateway gives it, made E.164: `+…` as it is, `00…` becomes `+…`,
/// and digits alone get a `+`.
fn recipient(name: &str, v: Option<&str>) -> Result<Option<String>, Rejection> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let e164 = if v.starts_with('+') {
        v.to_owned()
    } else if let Some(rest) = v.strip_prefix("00") {
        format!("+{rest}")
    } else {
        format!("+{v}")
    };
    if is_e164(&e164) {
        Ok(Some(e164))
    } else {
        Err(field(
            name,
            format_args!("{} is not a phone number in E.164 form", quoted(v)),
        ))
    }
}

/// A Kannel DLR callback (`dlr-url` with `type=%d&id=…&reply=%A&to=%p&ts=%T`).
///
/// `type`: 1 delivered, 2 failed_routing, 4 enroute, 8 sent, 16 failed_rejected; any
/// other is rejected. When `reply` holds an SMPP receipt (a `stat:` field), its `stat`
/// and `err` decide instead. `at` is `ts` (epoch seconds), else the receipt's
/// `done date`, else `received`. `to` is the recipient.
pub fn kannel(p: &Params, received: Millis) -> Result<Callback, Rejection> {
    let ty = p.value("type").ok_or_else(|| field("type", "missing"))?;
    let status = match ty {
        "1" => Status::Delivered,
        "2" => Status::FailedRouting,
        "4" => Status::Enroute,
        "8" => Status::Sent,
        "16" => Status::FailedRejected,
        other => {
            return Err(field(
                "type",
                format_args!(
                    "{} is not a Kannel DLR type (1, 2, 4, 8 or 16)",
                    quoted(other)
                ),
            ))
        }
    };
    let message_id = message_id("id", p.value("id"))?;
    let receipt = match p.value("reply") {
        None => None,
        Some(reply) => receipt_status(&receipt_fields(reply)?)
            .map_err(|r| Rejection::new(format!("reply: {r}")))?,
    };
    let ts = match p.value("ts") {
        None => None,
        Some(ts) => {
            let at = ts
                .parse::<i64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .map(Millis)
                .filter(|m| (Millis::MIN..=Millis::MAX).contains(m));
            Some(at.ok_or_else(|| {
                field(
                    "ts",
                    format_args!("{} is not a time in epoch seconds", quoted(ts)),
                )
            })?)
        }
    };
    let key = match receipt {
        Some(r) => StatusKey {
            status: r.status,
            at: ts.or(r.done).unwrap_or(received),
            error_code: r.error_code,
        },
        None => StatusKey {
            status,
            at: ts.unwrap_or(received),
            error_code: None,
        },
    };
    Ok(Callback {
        status: StatusEvent { message_id, key },
        recipient: recipient("to", p.get("to"))?,
    })
}

/// A Jasmin HTTP DLR (form fields `id`, `level`, `message_status`, `donedate`, `err`).
///
/// At `level` 1, `message_status` `ESME_ROK` is sent and any other `ESME_*`
/// failed_rejected, at the time of receipt. At levels 2 and 3, `message_status` is an
/// SMPP `stat` (see [`smpp_stat`]), `donedate` (YYMMDDhhmm, UTC) the time and `err` the
/// error code (only zeros: none).
pub fn jasmin(p: &Params, received: Millis) -> Result<Callback, Rejection> {
    let message_id = message_id("id", p.value("id"))?;
    let level = p.value("level").ok_or_else(|| field("level", "missing"))?;
    let ms = p
        .value("message_status")
        .ok_or_else(|| field("message_status", "missing"))?;
    let key = match level {
        "1" => {
            let status = if ms == "ESME_ROK" {
                Status::Sent
            } else if ms.starts_with("ESME_") {
                Status::FailedRejected
            } else {
                return Err(field(
                    "message_status",
                    format_args!("{} is not an SMPP command status (ESME_…)", quoted(ms)),
                ));
            };
            StatusKey {
                status,
                at: received,
                error_code: None,
            }
        }
        "2" | "3" => StatusKey {
            status: smpp_stat(ms),
            at: match p.value("donedate") {
                Some(d) => short_date("donedate", d)?,
                None => received,
            },
            error_code: error_code("err", p.get("err"), true)?,
        },
        other => {
            return Err(field(
                "level",
                format_args!("{} is not a Jasmin DLR level (1, 2 or 3)", quoted(other)),
            ))
        }
    };
    Ok(Callback::status_only(StatusEvent { message_id, key }))
}

/// A Twilio status callback (form fields `MessageSid`, `MessageStatus`, `ErrorCode`,
/// `To`, `RawDlrDoneDate`).
///
/// `accepted`, `scheduled`, `queued` → queued; `sending` → enroute; `sent` → sent;
/// `delivered`, `read` → delivered; `canceled` → failed_rejected; `undelivered` and
/// `failed` by `ErrorCode`: 30005 failed_routing, 30003 and 30036 failed_expired, 30004,
/// 30006 and 30007 failed_rejected, any other or none unknown. Any other
/// `MessageStatus` is rejected. `ErrorCode` is the error code; `RawDlrDoneDate`
/// (YYMMDDhhmm, UTC) the time, else `received`; `To` the recipient.
pub fn twilio(p: &Params, received: Millis) -> Result<Callback, Rejection> {
    let message_id = message_id("MessageSid", p.value("MessageSid"))?;
    let ms = p
        .value("MessageStatus")
        .ok_or_else(|| field("MessageStatus", "missing"))?;
    let code = error_code("ErrorCode", p.get("ErrorCode"), false)?;
    let status = match ms.to_ascii_lowercase().as_str() {
        "accepted" | "scheduled" | "queued" => Status::Queued,
        "sending" => Status::Enroute,
        "sent" => Status::Sent,
        "delivered" | "read" => Status::Delivered,
        "canceled" => Status::FailedRejected,
        "undelivered" | "failed" => match code.as_deref() {
            Some("30005") => Status::FailedRouting,
            Some("30003" | "30036") => Status::FailedExpired,
            Some("30004" | "30006" | "30007") => Status::FailedRejected,
            _ => Status::Unknown,
        },
        _ => {
            return Err(field(
                "MessageStatus",
                format_args!("{} is not a Twilio message status", quoted(ms)),
            ))
        }
    };
    let at = match p.value("RawDlrDoneDate") {
        Some(d) => short_date("RawDlrDoneDate", d)?,
        None => received,
    };
    Ok(Callback {
        status: StatusEvent {
            message_id,
            key: StatusKey {
                status,
                at,
                error_code: code,
            },
        },
        recipient: recipient("To", p.get("To"))?,
    })
}

/// A line-oriented gateway input format (`smsreport ingest --format …`, the SMPP
/// webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One SMPP delivery receipt text per line.
    Smpp,
    /// One Kannel DLR query string per line (`type=1&id=m4&ts=…`; a leading `?` is fine).
    Kannel,
    /// One Jasmin DLR form body per line (`id=…&level=3&message_status=DELIVRD&…`).
    Jasmin,
    /// One Twilio status callback form body per line (`MessageSid=…&MessageStatus=…`).
    Twilio,
}

/// One line of a gateway format: the callback and the campaign to register its message
/// in (a `campaign_id` parameter on the line; SMPP receipts have none).
pub fn parse_line(format: LineFormat, line: &[u8], received: Millis) -> Result<Parsed, Rejection> {
    let text = std::str::from_utf8(line).map_err(|e| {
        Rejection::new(format!(
            "not UTF-8 text (invalid byte at column {})",
            e.valid_up_to() + 1
        ))
    })?;
    if format == LineFormat::Smpp {
        return Ok(Parsed {
            callback: Callback::status_only(smpp_receipt(text, received)?),
            campaign_id: None,
        });
    }
    let p = Params::parse(text.trim())?;
    let callback = match format {
        LineFormat::Kannel => kannel(&p, received)?,
        LineFormat::Jasmin => jasmin(&p, received)?,
        _ => twilio(&p, received)?,
    };
    let campaign_id = match p.value("campaign_id") {
        None => None,
        Some(c) => {
            check_id(c).map_err(|e| field("campaign_id", e))?;
            Some(c.to_owned())
        }
    };
    Ok(Parsed {
        callback,
        campaign_id,
    })
}

/// A parsed gateway line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub callback: Callback,
    pub campaign_id: Option<String>,
}

/// Ingests parsed callbacks in one store call and answers one outcome per item, in
/// order; durable when it returns `Ok`.
///
/// An item whose callback would register its message in a campaign that does not exist
/// is rejected (`campaign_id: no campaign named …`) and nothing of it is stored. An
/// item counts as ingested when any of its events was; the `message` event of a message
/// already known is not reported.
pub async fn ingest_callbacks(
    store: &dyn Store,
    items: Vec<Result<Parsed, Rejection>>,
    received: Millis,
) -> Result<Vec<Outcome>, StoreError> {
    let mut campaigns: BTreeMap<String, bool> = BTreeMap::new();
    for p in items.iter().flatten() {
        if let (Some(c), Some(_)) = (&p.campaign_id, &p.callback.recipient) {
            if !campaigns.contains_key(c) {
                let exists = store.totals(c).await?.is_some();
                campaigns.insert(c.clone(), exists);
            }
        }
    }
    let mut events = Vec::new();
    let mut spans = Vec::with_capacity(items.len());
    for item in items {
        let item = item.and_then(|p| match (&p.campaign_id, &p.callback.recipient) {
            (Some(c), Some(_)) if !campaigns.get(c).copied().unwrap_or(false) => Err(field(
                "campaign_id",
                format_args!("no campaign named {}", quoted(c)),
            )),
            _ => Ok(p),
        });
        match item {
            Ok(p) => {
                let evs = p.callback.events(p.campaign_id.as_deref(), received);
                spans.push(Ok(evs.len()));
                events.extend(evs);
            }
            Err(r) => spans.push(Err(r)),
        }
    }
    let outcomes = if events.is_empty() {
        Vec::new()
    } else {
        store.ingest(&events).await?
    };
    if outcomes.len() != events.len() {
        return Err(StoreError::Corrupt(format!(
            "the store answered {} outcomes for {} events",
            outcomes.len(),
            events.len()
        )));
    }
    let mut it = outcomes.into_iter();
    Ok(spans
        .into_iter()
        .map(|span| match span {
            Err(r) => Outcome::Rejected(r),
            Ok(n) => {
                let mine: Vec<Outcome> = it.by_ref().take(n).collect();
                let status = mine.last().cloned().unwrap_or(Outcome::Duplicate);
                if mine.contains(&Outcome::Ingested) {
                    Outcome::Ingested
                } else {
                    status
                }
            }
        })
        .collect())
}

/// Parses and ingests lines of a gateway format in one store call (see
/// [`ingest_callbacks`]); every line's outcome, in input order. Durable on `Ok`.
pub async fn ingest_lines(
    store: &dyn Store,
    format: LineFormat,
    lines: Vec<Line>,
    received: Millis,
) -> Result<Vec<LineOutcome>, StoreError> {
    let items = lines
        .iter()
        .map(|l| match l.overlong {
            Some(n) => Err(Rejection::new(format!(
                "the line is {n} bytes long, over the limit of {}",
                crate::ingest::MAX_LINE_BYTES
            ))),
            None => parse_line(format, &l.bytes, received),
        })
        .collect();
    let outcomes = ingest_callbacks(store, items, received).await?;
    Ok(lines
        .into_iter()
        .zip(outcomes)
        .map(|(line, outcome)| LineOutcome { line, outcome })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receipt time used in the tests: 2026-05-05T05:05:05Z.
    fn rt() -> Millis {
        Millis::from_utc(2026, 5, 5, 5, 5, 5, 0).unwrap()
    }

    fn t(s: &str) -> Millis {
        Millis::parse(s).unwrap()
    }

    fn ev(id: &str, status: Status, at: Millis, code: Option<&str>) -> StatusEvent {
        StatusEvent {
            message_id: id.into(),
            key: StatusKey {
                status,
                at,
                error_code: code.map(str::to_owned),
            },
        }
    }

    fn form(s: &str) -> Params {
        Params::parse(s).unwrap()
    }

    use Status::*;

    #[test]
    fn smpp_rows_of_gateways_md() {
        let rows: [(&str, StatusEvent); 8] = [
            ("id:m5 sub:001 dlvrd:001 submit date:2603010900 done date:2603030900 stat:DELIVRD err:000 text:Sale",
             ev("m5", Delivered, t("2026-03-03T09:00:00Z"), None)),
            ("id:0a1b2c sub:001 dlvrd:000 submit date:2603010900 done date:260301091530 stat:UNDELIV err:001 text:",
             ev("0a1b2c", FailedRouting, t("2026-03-01T09:15:30Z"), Some("001"))),
            ("id:77 sub:001 dlvrd:000 submit date:2603010900 done date:2603020900 stat:EXPIRED err:027 Text:Hello there",
             ev("77", FailedExpired, t("2026-03-02T09:00:00Z"), Some("027"))),
            ("Id:77 Stat:REJECTD Err:069 Done date:2603010901",
             ev("77", FailedRejected, t("2026-03-01T09:01:00Z"), Some("069"))),
            ("id:m9 stat:ACCEPTD done date:2603010900", ev("m9", Sent, t("2026-03-01T09:00:00Z"), None)),
            ("id:m9 stat:ENROUTE", ev("m9", Enroute, rt(), None)),
            ("id:m9 stat:DELETED done date:2603010900", ev("m9", FailedRejected, t("2026-03-01T09:00:00Z"), None)),
            ("id:m9 stat:SKIPPED done date:2603010900", ev("m9", Unknown, t("2026-03-01T09:00:00Z"), None)),
        ];
        for (text, want) in rows {
            assert_eq!(smpp_receipt(text, rt()), Ok(want), "{text}");
        }
        for (text, reason) in [
            ("sub:001 stat:DELIVRD", "id: missing"),
            ("id:m9 done date:2603010900", "stat: missing"),
            (
                "id:m9 stat:DELIVRD done date:2613450900",
                "done date: \"2613450900\" is not a date (YYMMDDhhmm or YYMMDDhhmmss, UTC)",
            ),
        ] {
            assert_eq!(
                smpp_receipt(text, rt()).unwrap_err().reason,
                reason,
                "{text}"
            );
        }
    }

    #[test]
    fn smpp_details() {
        // text is the rest of the line, whatever it holds.
        let e = smpp_receipt("id:a stat:DELIVRD text:stat:UNDELIV id:b", rt()).unwrap();
        assert_eq!((e.message_id.as_str(), e.key.status), ("a", Delivered));
        // Other statuses of the table, case of the value ignored.
        assert_eq!(
            smpp_receipt("id:a stat:undeliv", rt()).unwrap().key.status,
            FailedRouting
        );
        assert_eq!(
            smpp_receipt("id:a stat:UNKNOWN", rt()).unwrap().key.status,
            Unknown
        );
        assert_eq!(
            smpp_receipt("id:a stat:EXPIRED", rt()).unwrap().key.status,
            FailedExpired
        );
        // Unknown fields and words are ignored; a repeated id is refused.
        assert!(smpp_receipt("hello id:a foo:bar stat:DELIVRD", rt()).is_ok());
        assert_eq!(
            smpp_receipt("id:a id:b stat:DELIVRD", rt())
                .unwrap_err()
                .reason,
            "id: given twice"
        );
        assert_eq!(
            smpp_receipt("id: stat:DELIVRD", rt()).unwrap_err().reason,
            "id: must not be empty"
        );
        assert!(smpp_receipt("id:a/b stat:DELIVRD", rt())
            .unwrap_err()
            .reason
            .starts_with("id: "));
        assert_eq!(
            smpp_receipt("id:a stat:", rt()).unwrap_err().reason,
            "stat: empty"
        );
        let long = format!("id:a stat:UNDELIV err:{}", "1".repeat(65));
        assert!(smpp_receipt(&long, rt())
            .unwrap_err()
            .reason
            .starts_with("err: must be at most 64"));
        assert_eq!(
            smpp_receipt("id:a stat:DELIVRD done date:2602300900", rt())
                .unwrap_err()
                .reason,
            "done date: \"2602300900\" is not a date (YYMMDDhhmm or YYMMDDhhmmss, UTC)"
        );
        assert!(smpp_receipt("", rt()).is_err());
        assert!(smpp_receipt("\u{1F600}:x id:é stat:x", rt()).is_err());
    }

    #[test]
    fn kannel_rows_of_gateways_md() {
        let rows = [
            ("type=1&id=m4", ev("m4", Delivered, rt(), None)),
            ("type=2&id=m4&ts=1772355600", ev("m4", FailedRouting, t("2026-03-01T09:00:00Z"), None)),
            ("type=4&id=m4", ev("m4", Enroute, rt(), None)),
            ("type=8&id=m4", ev("m4", Sent, rt(), None)),
            ("type=16&id=m4", ev("m4", FailedRejected, rt(), None)),
            ("type=1&id=m4&reply=id%3Am4%20stat%3AEXPIRED%20err%3A027%20done%20date%3A2603011000",
             ev("m4", FailedExpired, t("2026-03-01T10:00:00Z"), Some("027"))),
        ];
        for (q, want) in rows {
            assert_eq!(kannel(&form(q), rt()).map(|c| c.status), Ok(want), "{q}");
        }
        assert_eq!(
            kannel(&form("type=3&id=m4"), rt()).unwrap_err().reason,
            "type: \"3\" is not a Kannel DLR type (1, 2, 4, 8 or 16)"
        );
        assert_eq!(
            kannel(&form("type=1"), rt()).unwrap_err().reason,
            "id: missing"
        );
    }

    #[test]
    fn kannel_details() {
        // The recipient, made E.164.
        for (to, want) in [
            ("%2B37120000001", "+37120000001"),
            ("37120000001", "+37120000001"),
            ("0037120000001", "+37120000001"),
        ] {
            let c = kannel(&form(&format!("type=1&id=m&to={to}")), rt()).unwrap();
            assert_eq!(c.recipient.as_deref(), Some(want));
        }
        assert_eq!(
            kannel(&form("type=1&id=m&to=12"), rt()).unwrap_err().reason,
            "to: \"12\" is not a phone number in E.164 form"
        );
        assert_eq!(
            kannel(&form("type=1&id=m&to="), rt()).unwrap().recipient,
            None
        );
        // ts wins over the receipt's done date; a reply without stat: leaves the type.
        let c = kannel(
            &form("type=1&id=m&ts=1772355600&reply=id:x+stat:UNDELIV+done+date:2603011000"),
            rt(),
        )
        .unwrap();
        assert_eq!(
            c.status,
            ev("m", FailedRouting, t("2026-03-01T09:00:00Z"), None)
        );
        let c = kannel(&form("type=8&id=m&reply=ACK%2F"), rt()).unwrap();
        assert_eq!(c.status.key.status, Sent);
        for bad in [
            "type=1&id=m&ts=x",
            "type=1&id=m&ts=-5",
            "type=1&id=m&ts=99999999999999999",
            "type=1&id=m&reply=stat:DELIVRD+done+date:99",
        ] {
            assert!(kannel(&form(bad), rt()).is_err(), "{bad}");
        }
    }

    #[test]
    fn twilio_rows_of_gateways_md() {
        let rows = [
            (
                "MessageSid=SM1&MessageStatus=delivered",
                ev("SM1", Delivered, rt(), None),
            ),
            (
                "MessageSid=SM1&MessageStatus=sending",
                ev("SM1", Enroute, rt(), None),
            ),
            (
                "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003",
                ev("SM1", FailedExpired, rt(), Some("30003")),
            ),
            (
                "MessageSid=SM1&MessageStatus=failed&ErrorCode=30005",
                ev("SM1", FailedRouting, rt(), Some("30005")),
            ),
            (
                "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30007",
                ev("SM1", FailedRejected, rt(), Some("30007")),
            ),
            (
                "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30008",
                ev("SM1", Unknown, rt(), Some("30008")),
            ),
            (
                "MessageSid=SM1&MessageStatus=delivered&RawDlrDoneDate=2603011015",
                ev("SM1", Delivered, t("2026-03-01T10:15:00Z"), None),
            ),
            (
                "MessageSid=SM1&MessageStatus=canceled",
                ev("SM1", FailedRejected, rt(), None),
            ),
        ];
        for (q, want) in rows {
            assert_eq!(twilio(&form(q), rt()).map(|c| c.status), Ok(want), "{q}");
        }
        assert_eq!(
            twilio(&form("MessageStatus=delivered"), rt())
                .unwrap_err()
                .reason,
            "MessageSid: missing"
        );
    }

    #[test]
    fn twilio_details() {
        for (s, want) in [
            ("accepted", Queued),
            ("scheduled", Queued),
            ("queued", Queued),
            ("sent", Sent),
            ("read", Delivered),
        ] {
            let c = twilio(&form(&format!("MessageSid=S&MessageStatus={s}")), rt()).unwrap();
            assert_eq!(c.status.key.status, want, "{s}");
        }
        for (code, want) in [
            ("30036", FailedExpired),
            ("30004", FailedRejected),
            ("30006", FailedRejected),
        ] {
            let c = twilio(
                &form(&format!(
                    "MessageSid=S&MessageStatus=failed&ErrorCode={code}"
                )),
                rt(),
            )
            .unwrap();
            assert_eq!(c.status.key.status, want, "{code}");
        }
        assert_eq!(
            twilio(&form("MessageSid=S&MessageStatus=failed"), rt())
                .unwrap()
                .status
                .key
                .status,
            Unknown
        );
        let c = twilio(
            &form("MessageSid=S&MessageStatus=sent&To=%2B14155550100"),
            rt(),
        )
        .unwrap();
        assert_eq!(c.recipient.as_deref(), Some("+14155550100"));
        assert_eq!(
            twilio(&form("MessageSid=S&MessageStatus=received"), rt())
                .unwrap_err()
                .reason,
            "MessageStatus: \"received\" is not a Twilio message status"
        );
        assert!(twilio(
            &form("MessageSid=S&MessageStatus=sent&RawDlrDoneDate=26030"),
            rt()
        )
        .is_err());
    }

    #[test]
    fn jasmin_rows_of_gateways_md() {
        let rows = [
            (
                "id=t1&level=1&message_status=ESME_ROK",
                ev("t1", Sent, rt(), None),
            ),
            (
                "id=t1&level=1&message_status=ESME_RSUBMITFAIL",
                ev("t1", FailedRejected, rt(), None),
            ),
            (
                "id=t1&level=3&message_status=DELIVRD&donedate=2603011020&err=000",
                ev("t1", Delivered, t("2026-03-01T10:20:00Z"), None),
            ),
            (
                "id=t1&level=2&message_status=EXPIRED&donedate=2603021020&err=027",
                ev("t1", FailedExpired, t("2026-03-02T10:20:00Z"), Some("027")),
            ),
        ];
        for (q, want) in rows {
            assert_eq!(jasmin(&form(q), rt()).map(|c| c.status), Ok(want), "{q}");
        }
        for bad in [
            "level=1&message_status=ESME_ROK",
            "id=t1&level=4&message_status=DELIVRD",
            "id=t1&level=1&message_status=DELIVRD",
            "id=t1&level=1",
            "id=t1&level=3&message_status=DELIVRD&donedate=yesterday",
        ] {
            assert!(jasmin(&form(bad), rt()).is_err(), "{bad}");
        }
        assert_eq!(
            jasmin(&form("id=t1&level=3&message_status=DELIVRD"), rt())
                .unwrap()
                .status
                .key
                .at,
            rt()
        );
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            form("?a=1&b=x+y%21&&c&a=2").0,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into()),
                ("a".into(), "2".into())
            ]
        );
        assert_eq!(form("a=1&a=2").get("a"), Some("1"));
        assert_eq!(
            form("a=%zz%4").get("a"),
            Some("%zz%4"),
            "a bad escape stays as it is"
        );
        assert_eq!(form("a=%C3%A9").get("a"), Some("é"));
        assert_eq!(form("a=%41%").get("a"), Some("A%"));
        assert!(Params::parse("a=%FF").is_err());
    }

    #[test]
    fn auto_registration_events() {
        let c = twilio(
            &form("MessageSid=S&MessageStatus=sent&To=%2B14155550100"),
            rt(),
        )
        .unwrap();
        let evs = c.events(Some("camp"), rt());
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0],
            Event::Message(MessageEvent {
                message_id: "S".into(),
                campaign_id: "camp".into(),
                recipient: "+14155550100".into(),
                parts: 1,
                at: rt()
            })
        );
        assert_eq!(c.events(None, rt()).len(), 1);
        let no_to = twilio(&form("MessageSid=S&MessageStatus=sent"), rt()).unwrap();
        assert_eq!(no_to.events(Some("camp"), rt()).len(), 1);
        let p = parse_line(
            LineFormat::Kannel,
            b"?type=1&id=m&to=37120000001&campaign_id=c1",
            rt(),
        )
        .unwrap();
        assert_eq!(p.campaign_id.as_deref(), Some("c1"));
        assert!(parse_line(
            LineFormat::Twilio,
            b"MessageSid=S&MessageStatus=sent&campaign_id=a%2Fb",
            rt()
        )
        .is_err());
        assert!(parse_line(LineFormat::Smpp, b"id:\xff stat:DELIVRD", rt()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_line_parses_or_is_rejected(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                          words in "(id|stat|err|done date|submit date|text|type|to|ts|reply|level|message_status|donedate|MessageSid|MessageStatus|ErrorCode|RawDlrDoneDate|[ :=&%+0-9A-Za-z])*") {
            for format in [LineFormat::Smpp, LineFormat::Kannel, LineFormat::Jasmin, LineFormat::Twilio] {
                let _ = parse_line(format, &line, rt());
                let _ = parse_line(format, words.as_bytes(), rt());
            }
        }
    }
}
