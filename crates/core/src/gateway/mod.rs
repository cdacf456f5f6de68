//! SMS gateways' own formats turned into canonical status events: what the README's
//! "Gateway line formats" and "Pointing gateways at it" describe, mapped onto the
//! statuses of docs/rules.md ("Delivery statuses"). Every row of
//! `crates/conformance/fixtures/gateways.md` is a unit test beside its parser.
//!
//! Each parser takes one callback or receipt and the time it was received (this crate
//! has no clock) and returns a [`Callback`] — a [`StatusEvent`], plus the recipient when
//! the callback names one that can be read — or a [`Rejection`] whose reason names the
//! gateway's field. Only what no status can be made of is rejected (no message id, no
//! status): a receipt time that cannot be read makes the receipt undated, a recipient
//! that cannot be read is left out (docs/rules.md, "Gateways").
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
//! [`Callback::event`] makes the event to ingest, registering the message in a campaign
//! when asked to (`?campaign_id=`); [`parse_callback`] reads one line of a
//! [`LineFormat`], and [`ingest_callback_lines`] does the whole job for line-oriented
//! input (`smsreport ingest --format smpp|kannel|jasmin|twilio`, the SMPP webhook).
//!
//! The modules: `form` (form decoding), `smpp` (receipt text, short dates), `kannel`,
//! `jasmin`, `twilio`, `lines` (one line of a format) and `ingest` (callbacks into a
//! [`Store`](crate::Store)).

mod form;
mod ingest;
mod jasmin;
mod kannel;
mod lines;
mod smpp;
mod twilio;

pub use form::Params;

/// The fields a gateway rejection can name (its reason's text before `:`), then `other`
/// for any other reason: the values of [`crate::engine::Quality::Rejected`] and of
/// `/metrics`' `reason` label, a fixed list so both stay few. Only ever append to it:
/// stored counters name these.
pub const REJECTION_FIELDS: [&str; 14] = [
    "id",
    "stat",
    "err",
    "type",
    "level",
    "message_status",
    "MessageSid",
    "MessageStatus",
    "ErrorCode",
    "campaign_id",
    "region",
    "done date",
    "text",
    "other",
];

/// The index in [`REJECTION_FIELDS`] of the field `reason` names; `other`'s for any other.
pub fn rejection_field(reason: &str) -> usize {
    let name = reason.split_once(':').map_or("", |(n, _)| n);
    REJECTION_FIELDS[..REJECTION_FIELDS.len() - 1]
        .iter()
        .position(|f| *f == name)
        .unwrap_or(REJECTION_FIELDS.len() - 1)
}
pub use ingest::{ingest_callback_lines, ingest_callbacks};
pub use jasmin::jasmin;
pub use kannel::kannel;
pub use lines::{parse_callback, LineFormat, Parsed};
pub use smpp::{parse_short_date, smpp_receipt, smpp_stat};
pub use twilio::twilio;

use crate::event::{check_id, is_e164, Event, FromCallback, Registration, Rejection, StatusEvent};
use crate::status::{Status, StatusKey};
use crate::time::Millis;

/// One gateway callback, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The status it reports (its `callback` part says whether it is undated).
    pub status: StatusEvent,
    /// The recipient it names (Twilio `To`, Kannel `to`) in E.164 form, when it can be
    /// read (see [`read_recipient`]).
    pub recipient: Option<String>,
}

impl Callback {
    fn status_only(status: StatusEvent) -> Callback {
        Callback {
            status,
            recipient: None,
        }
    }

    /// The event to ingest for this callback.
    ///
    /// With a `campaign_id` and a recipient, the status also registers its message in
    /// that campaign (1 part, at the status's time) when the message is not known yet,
    /// so that a gateway's callbacks alone fill a campaign; the campaign must then exist.
    /// For a message already known, the campaign does not matter.
    pub fn event(&self, campaign_id: Option<&str>) -> Event {
        let mut status = self.status.clone();
        if let (Some(campaign_id), Some(recipient)) = (campaign_id, &self.recipient) {
            status
                .callback
                .get_or_insert_with(FromCallback::default)
                .register = Some(Registration {
                campaign_id: campaign_id.to_owned(),
                recipient: recipient.clone(),
            });
        }
        Event::Status(status)
    }
}

/// A callback's status event: at `at`, or undated (at `received`) without one.
fn status_event(
    message_id: String,
    status: Status,
    at: Option<Millis>,
    error_code: Option<String>,
    received: Millis,
) -> StatusEvent {
    StatusEvent {
        message_id,
        key: StatusKey {
            status,
            at: at.unwrap_or(received),
            error_code,
        },
        callback: Some(FromCallback {
            undated: at.is_none(),
            register: None,
        }),
    }
}

/// A default region for national phone numbers (`serve --default-region LV`,
/// `?region=LV`, `ingest --default-region LV`): an ISO 3166-1 alpha-2 code that
/// libphonenumber knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// Reads a region code, ignoring ASCII case (`LV`, `lv`).
    pub fn parse(code: &str) -> Result<Region, String> {
        let id: Option<phonenumber::country::Id> = code.trim().to_ascii_uppercase().parse().ok();
        match id {
            Some(id) if phonenumber::metadata::DATABASE.by_id(id.as_ref()).is_some() => {
                Ok(Region(id))
            }
            _ => Err(format!(
                "{} is not a region libphonenumber knows (an ISO 3166-1 alpha-2 code such as LV)",
                quoted(code)
            )),
        }
    }

    /// Its code (`LV`).
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
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

/// A gateway's message id, checked against the identifier rule (docs/events.md, "Field
/// rules").
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
    if v.contains('\0') {
        return Err(field(name, crate::event::NUL));
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

/// The recipient of a callback (Twilio `To`, Kannel `to`) in E.164 form, or `None` when
/// it cannot be read (docs/rules.md, "Recipients of callbacks"): a leading `whatsapp:`
/// (any `channel:`) is removed, a leading space is a `+` (a form decoder's `+`), then it
/// must be an E.164 number, or, with a default region, a valid national number by
/// libphonenumber's rules for that region. A short code, an alphanumeric sender or a
/// national number without a region cannot be read; digits are never guessed into a
/// country.
pub fn read_recipient(v: Option<&str>, region: Option<Region>) -> Option<String> {
    let mut v = v?;
    if let Some((channel, rest)) = v.split_once(':') {
        if !channel.is_empty() && channel.bytes().all(|b| b.is_ascii_alphabetic()) {
            v = rest;
        }
    }
    let v = match v.strip_prefix(' ') {
        Some(rest) if !rest.trim_start().starts_with('+') => format!("+{}", rest.trim()),
        _ => v.trim().to_owned(),
    };
    if v.is_empty() {
        return None;
    }
    if is_e164(&v) {
        return Some(v);
    }
    let region = region?;
    if v.starts_with('+') {
        return None;
    }
    let n = phonenumber::parse(Some(region.0), &v).ok()?;
    if !phonenumber::is_valid(&n) {
        return None;
    }
    let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
    is_e164(&e164).then_some(e164)
}

/// What the gateways' tests share.
#[cfg(test)]
mod test_support {
    use super::Params;
    use crate::event::StatusEvent;
    use crate::status::{Status, StatusKey};
    use crate::time::Millis;

    /// The receipt time used in the tests: 2026-05-05T05:05:05Z.
    pub(super) fn rt() -> Millis {
        Millis::from_utc(2026, 5, 5, 5, 5, 5, 0).unwrap()
    }

    pub(super) fn t(s: &str) -> Millis {
        Millis::parse(s).unwrap()
    }

    /// The status event a callback becomes; at [`rt`], the receipt time, it is undated.
    pub(super) fn ev(id: &str, status: Status, at: Millis, code: Option<&str>) -> StatusEvent {
        StatusEvent {
            message_id: id.into(),
            key: StatusKey {
                status,
                at,
                error_code: code.map(str::to_owned),
            },
            callback: Some(crate::event::FromCallback {
                undated: at == rt(),
                register: None,
            }),
        }
    }

    pub(super) fn form(s: &str) -> Params {
        Params::parse(s).unwrap()
    }
}
