//! Twilio status callbacks (form fields `MessageSid`, `MessageStatus`, `ErrorCode`, `To`,
//! `RawDlrDoneDate`).

use super::smpp::parse_short_date;
use super::{
    error_code, field, message_id, read_recipient, status_event, Callback, Params, Region,
};
use crate::event::Rejection;
use crate::status::Status;
use crate::time::Millis;

/// A Twilio status callback (form fields `MessageSid`, `MessageStatus` or its older name
/// `SmsStatus`, `ErrorCode`, `To`, `RawDlrDoneDate`).
///
/// `accepted`, `scheduled`, `queued` → queued; `sending` → enroute; `sent` → sent;
/// `delivered`, `read` → delivered; `canceled` → failed_rejected; `undelivered` and
/// `failed` by `ErrorCode`: 30005 failed_routing, 30003 and 30036 failed_expired, 30004,
/// 30006 and 30007 failed_rejected, any other or none unknown. Any other status
/// (`partially_delivered`, one Twilio adds later) is unknown. `ErrorCode` is the error
/// code (empty: none); `RawDlrDoneDate` (YYMMDDhhmm, UTC) the time, else (or when it
/// cannot be read) the callback is undated; `To` the recipient, read with
/// [`read_recipient`] for `region` (one that cannot be read never rejects the callback).
pub fn twilio(p: &Params, received: Millis, region: Option<Region>) -> Result<Callback, Rejection> {
    let message_id = message_id("MessageSid", p.value("MessageSid"))?;
    let ms = p
        .value("MessageStatus")
        .or_else(|| p.value("SmsStatus"))
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
        _ => Status::Unknown,
    };
    let at = p.value("RawDlrDoneDate").and_then(parse_short_date);
    Ok(Callback {
        status: status_event(message_id, status, at, code, received),
        recipient: read_recipient(p.get("To"), region),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ev, form, rt, t};
    use super::*;
    use crate::event::StatusEvent;

    use Status::*;

    fn accepts(q: &str, want: StatusEvent) {
        assert_eq!(
            twilio(&form(q), rt(), None).map(|c| c.status),
            Ok(want),
            "{q}"
        );
    }

    fn rejects(q: &str, reason: &str) {
        assert_eq!(
            twilio(&form(q), rt(), None).unwrap_err().reason,
            reason,
            "{q}"
        );
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
    fn sms_status_is_message_status() {
        accepts(
            "MessageSid=SM1&SmsStatus=delivered",
            ev("SM1", Delivered, rt(), None),
        );
    }

    #[test]
    fn an_empty_error_code_is_none() {
        accepts(
            "MessageSid=SM1&MessageStatus=delivered&ErrorCode=",
            ev("SM1", Delivered, rt(), None),
        );
    }

    #[test]
    fn partially_delivered_is_unknown() {
        accepts(
            "MessageSid=SM1&MessageStatus=partially_delivered",
            ev("SM1", Unknown, rt(), None),
        );
    }

    #[test]
    fn a_whatsapp_to_is_read() {
        accepts(
            "MessageSid=SM1&MessageStatus=delivered&To=whatsapp%3A%2B37120000001",
            ev("SM1", Delivered, rt(), None),
        );
        let c = twilio(
            &form("MessageSid=SM1&MessageStatus=delivered&To=whatsapp%3A%2B37120000001"),
            rt(),
            None,
        )
        .unwrap();
        assert_eq!(c.recipient.as_deref(), Some("+37120000001"));
    }

    #[test]
    fn a_raw_dlr_done_date_that_cannot_be_read_is_receipt_time() {
        accepts(
            "MessageSid=SM1&MessageStatus=delivered&RawDlrDoneDate=2613451015",
            ev("SM1", Delivered, rt(), None),
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
            let c = twilio(
                &form(&format!("MessageSid=S&MessageStatus={s}")),
                rt(),
                None,
            )
            .unwrap();
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
                None,
            )
            .unwrap();
            assert_eq!(c.status.key.status, want, "{code}");
        }
        assert_eq!(
            twilio(&form("MessageSid=S&MessageStatus=failed"), rt(), None)
                .unwrap()
                .status
                .key
                .status,
            Unknown
        );
        let to = |v: &str| {
            twilio(
                &form(&format!("MessageSid=S&MessageStatus=sent&To={v}")),
                rt(),
                None,
            )
            .unwrap()
            .recipient
        };
        assert_eq!(to("%2B14155550100").as_deref(), Some("+14155550100"));
        assert_eq!(to("+14155550100").as_deref(), Some("+14155550100"));
        // A short code, an alphanumeric sender, digits without `+`: not read, never
        // rejected.
        for v in ["12345", "SHOP", "14155550100", "whatsapp%3A", "%2B1"] {
            assert_eq!(to(v), None, "{v}");
        }
        for s in ["received", "canceled_by_user", "x"] {
            assert_eq!(
                twilio(
                    &form(&format!("MessageSid=S&MessageStatus={s}")),
                    rt(),
                    None
                )
                .unwrap()
                .status
                .key
                .status,
                Unknown,
                "{s}"
            );
        }
        // MessageStatus wins over SmsStatus; neither is a rejection.
        assert_eq!(
            twilio(
                &form("MessageSid=S&SmsStatus=sent&MessageStatus=delivered"),
                rt(),
                None
            )
            .unwrap()
            .status
            .key
            .status,
            Delivered
        );
        assert_eq!(
            twilio(&form("MessageSid=S"), rt(), None)
                .unwrap_err()
                .reason,
            "MessageStatus: missing"
        );
        for d in ["26030", "2602301015", "2603011015000000"] {
            assert_eq!(
                twilio(
                    &form(&format!(
                        "MessageSid=S&MessageStatus=sent&RawDlrDoneDate={d}"
                    )),
                    rt(),
                    None
                )
                .unwrap()
                .status,
                ev("S", Sent, rt(), None),
                "{d}"
            );
        }
    }
}
