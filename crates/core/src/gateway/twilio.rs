//! Twilio status callbacks (form fields `MessageSid`, `MessageStatus`, `ErrorCode`, `To`,
//! `RawDlrDoneDate`).

use super::smpp::short_date;
use super::{error_code, field, message_id, quoted, recipient, Callback, Params};
use crate::event::{Rejection, StatusEvent};
use crate::status::{Status, StatusKey};
use crate::time::Millis;

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

#[cfg(test)]
mod tests {
    use super::super::test_support::{ev, form, rt, t};
    use super::*;

    use Status::*;

    fn accepts(q: &str, want: StatusEvent) {
        assert_eq!(twilio(&form(q), rt()).map(|c| c.status), Ok(want), "{q}");
    }

    fn rejects(q: &str, reason: &str) {
        assert_eq!(twilio(&form(q), rt()).unwrap_err().reason, reason, "{q}");
    }

    // The rows of gateways.md, in order.

    #[test]
    fn delivered_is_delivered_at_receipt_time() {
        accepts(
            "MessageSid=SM1&MessageStatus=delivered",
            ev("SM1", Delivered, rt(), None),
        );
    }

    #[test]
    fn sending_is_enroute() {
        accepts(
            "MessageSid=SM1&MessageStatus=sending",
            ev("SM1", Enroute, rt(), None),
        );
    }

    #[test]
    fn undelivered_30003_is_failed_expired() {
        accepts(
            "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003",
            ev("SM1", FailedExpired, rt(), Some("30003")),
        );
    }

    #[test]
    fn failed_30005_is_failed_routing() {
        accepts(
            "MessageSid=SM1&MessageStatus=failed&ErrorCode=30005",
            ev("SM1", FailedRouting, rt(), Some("30005")),
        );
    }

    #[test]
    fn undelivered_30007_is_failed_rejected() {
        accepts(
            "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30007",
            ev("SM1", FailedRejected, rt(), Some("30007")),
        );
    }

    #[test]
    fn undelivered_30008_is_unknown() {
        accepts(
            "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30008",
            ev("SM1", Unknown, rt(), Some("30008")),
        );
    }

    #[test]
    fn raw_dlr_done_date_is_the_time() {
        accepts(
            "MessageSid=SM1&MessageStatus=delivered&RawDlrDoneDate=2603011015",
            ev("SM1", Delivered, t("2026-03-01T10:15:00Z"), None),
        );
    }

    #[test]
    fn canceled_is_failed_rejected() {
        accepts(
            "MessageSid=SM1&MessageStatus=canceled",
            ev("SM1", FailedRejected, rt(), None),
        );
    }

    #[test]
    fn rejected_without_message_sid() {
        rejects("MessageStatus=delivered", "MessageSid: missing");
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
}
