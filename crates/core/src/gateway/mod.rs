//! SMS gateways' own formats turned into canonical status events: what the README's
//! "Gateway line formats" and "Pointing gateways at it" describe, mapped onto the
//! statuses of docs/rules.md ("Delivery statuses"). Every row of
//! `crates/conformance/fixtures/gateways.md` is a unit test beside its parser.
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
//! first when asked to (`?campaign_id=`); [`parse_callback`] reads one line of a
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
pub use ingest::{ingest_callback_lines, ingest_callbacks};
pub use jasmin::jasmin;
pub use kannel::kannel;
pub use lines::{parse_callback, LineFormat, Parsed};
pub use smpp::{parse_short_date, smpp_receipt, smpp_stat};
pub use twilio::twilio;

use crate::event::{check_id, is_e164, Event, MessageEvent, Rejection, StatusEvent};
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

    pub(super) fn ev(id: &str, status: Status, at: Millis, code: Option<&str>) -> StatusEvent {
        StatusEvent {
            message_id: id.into(),
            key: StatusKey {
                status,
                at,
                error_code: code.map(str::to_owned),
            },
        }
    }

    pub(super) fn form(s: &str) -> Params {
        Params::parse(s).unwrap()
    }
}
