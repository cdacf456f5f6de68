//! Kannel delivery reports (the `dlr-url` query: `type=%d&id=…&reply=%A&to=%p&ts=%T`).

use super::smpp::{receipt_fields, receipt_status};
use super::{field, message_id, quoted, recipient, Callback, Params};
use crate::event::{Rejection, StatusEvent};
use crate::status::{Status, StatusKey};
use crate::time::Millis;

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

#[cfg(test)]
mod tests {
    use super::super::test_support::{ev, form, rt, t};
    use super::*;

    use Status::*;

    fn accepts(q: &str, want: StatusEvent) {
        assert_eq!(kannel(&form(q), rt()).map(|c| c.status), Ok(want), "{q}");
    }

    fn rejects(q: &str, reason: &str) {
        assert_eq!(kannel(&form(q), rt()).unwrap_err().reason, reason, "{q}");
    }

    // The rows of gateways.md, in order.

    #[test]
    fn type_1_is_delivered_at_receipt_time() {
        accepts("type=1&id=m4", ev("m4", Delivered, rt(), None));
    }

    #[test]
    fn type_2_is_failed_routing_at_ts() {
        accepts(
            "type=2&id=m4&ts=1772355600",
            ev("m4", FailedRouting, t("2026-03-01T09:00:00Z"), None),
        );
    }

    #[test]
    fn type_4_is_enroute() {
        accepts("type=4&id=m4", ev("m4", Enroute, rt(), None));
    }

    #[test]
    fn type_8_is_sent() {
        accepts("type=8&id=m4", ev("m4", Sent, rt(), None));
    }

    #[test]
    fn type_16_is_failed_rejected() {
        accepts("type=16&id=m4", ev("m4", FailedRejected, rt(), None));
    }

    #[test]
    fn a_receipt_in_reply_decides() {
        accepts(
            "type=1&id=m4&reply=id%3Am4%20stat%3AEXPIRED%20err%3A027%20done%20date%3A2603011000",
            ev("m4", FailedExpired, t("2026-03-01T10:00:00Z"), Some("027")),
        );
    }

    #[test]
    fn rejected_type_3() {
        rejects(
            "type=3&id=m4",
            "type: \"3\" is not a Kannel DLR type (1, 2, 4, 8 or 16)",
        );
    }

    #[test]
    fn rejected_without_id() {
        rejects("type=1", "id: missing");
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
}
